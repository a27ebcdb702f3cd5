"""A script sent to Redis now whose reply is read later, so the caller can work while Redis answers.

Why: a worker's begin script sits on the serial path of a chain, and a round trip on a busy 2-core machine
costs far more in wake-ups than the script itself. The step's next chain link is pure computation (Celery
builds and serializes its message), so the worker sends the begin, builds the link, then reads the begin's
reply: nothing takes effect before that reply says the step may run, and the two overlap.

The reply is read on the connection the command went out on, which returns to the pool only once its reply is
consumed (or the connection dropped), so no other caller can read a reply that is not its own. When the
command could not be sent, its reply is lost, or Redis no longer knows the script (NOSCRIPT after a restart),
``result`` runs the script the ordinary way, which also reloads it. So the command must be safe to repeat,
as the begin script is for one lease token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.exceptions import NoScriptError

from orchestrator.runtime.redis_client import TRANSIENT_ERRORS, RedisClient, send_evalsha


class DeferredScript:
    """``script(keys, args)`` sent at construction; ``result()`` returns its reply (call it exactly once)."""

    def __init__(self, client: RedisClient, script: Any, keys: list[str], args: list[Any]) -> None:
        self._again: Callable[[], Any] = lambda: script(keys=keys, args=args)
        self._pool: Any = getattr(client, "connection_pool", None)
        self._connection: Any = None
        if self._pool is None or getattr(script, "sha", None) is None:
            return
        try:
            connection = self._pool.get_connection()
        except TRANSIENT_ERRORS:
            return
        try:
            send_evalsha(connection, script.sha, keys, args)
        except TRANSIENT_ERRORS:
            self._drop(connection)
            return
        self._connection = connection

    @property
    def sent(self) -> bool:
        """Whether the command went out (otherwise ``result`` sends it the ordinary way)."""
        return self._connection is not None

    def result(self) -> Any:
        """The reply. A lost reply is answered by running the script again, whose transient errors propagate
        (so a ``durable`` caller retries); a script error is raised as Redis reported it."""
        connection, self._connection = self._connection, None
        if connection is None:
            return self._again()
        try:
            reply = connection.read_response()
        except NoScriptError:
            self._pool.release(connection)
            return self._again()
        except TRANSIENT_ERRORS:
            self._drop(connection)
            return self._again()
        except BaseException:
            self._drop(connection)  # a reply half read (or an interrupt): the connection cannot be reused
            raise
        self._pool.release(connection)
        return reply

    def _drop(self, connection: Any) -> None:
        connection.disconnect()
        self._pool.release(connection)
