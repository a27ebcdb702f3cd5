"""Redis connections: one pool per URL and process, re-created after fork, with timeouts and retries.

Why: every Celery prefork child and every API process needs its own sockets; sharing a pool across a fork
corrupts it. Keyed by pid so a forked child transparently gets fresh connections. Every client carries a
connect and a read timeout (a dead Redis never hangs a caller) and retries connection errors with jittered
exponential backoff, so a Redis restart (with AOF, seconds) is ridden out instead of surfacing as a 500.
Blocking reads (pub/sub, XREAD BLOCK) use clients of their own with a read timeout longer than the block.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import hiredis
import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.client import EMPTY_RESPONSE
from redis.exceptions import BusyLoadingError, DataError, ExecAbortError, NoScriptError, ResponseError, WatchError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

# redis-py 8 types every reply as a union of bytes/str/awaitables; our clients always decode to str, so the
# boundary type is Any rather than casts at every call site.
RedisClient = Any

_clients: dict[tuple[int, str], RedisClient] = {}


# Errors that mean "Redis is not there right now" (restarting, loading its AOF, a dropped connection).
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)


def client_options(*, socket_timeout: float = 5.0, connect_timeout: float = 2.0, retries: int = 5) -> dict[str, Any]:
    """Keyword arguments for ``Redis.from_url``: timeouts, and retries with backoff on transient errors."""
    return {
        "decode_responses": True,
        "health_check_interval": 30,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(ExponentialWithJitterBackoff(cap=2.0, base=0.05), retries),
        "retry_on_error": [BusyLoadingError],
    }


_options: dict[str, Any] = {}

# redis-py cuts a pipeline's packed commands into ~6 KB pieces and writes each with its own ``sendall``; a run's
# creation transaction (plan, canvas, audit bodies) is larger than that, so it took three writes and Redis could
# wake up for each. Packed pieces up to this size are joined into one write instead (a command larger than it
# still goes out on its own, without a copy).
PIPELINE_WRITE_BYTES = 1 << 20


class OneWriteConnection(redis.Connection):
    """A TCP connection that writes a whole pipeline with one ``sendall`` (see ``PIPELINE_WRITE_BYTES``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._buffer_cutoff = PIPELINE_WRITE_BYTES


def configure(*, socket_timeout: float, connect_timeout: float, retries: int) -> None:
    """Set the timeouts and retries of clients created from now on in this process (from settings)."""
    _options.update(socket_timeout=socket_timeout, connect_timeout=connect_timeout, retries=retries)


def get_redis(url: str) -> RedisClient:
    """A shared client with ``decode_responses=True`` for this process and URL."""
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        tcp = {"connection_class": OneWriteConnection} if url.startswith("redis://") else {}
        client = redis.Redis.from_url(url, **client_options(**_options), **tcp)
        _clients[key] = client
    return client


def probe_client(url: str, timeout: float = 0.5) -> RedisClient:
    """A client for health probes: short timeouts and no retries, so a dead Redis is reported in ~``timeout``."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def ping(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis answers at ``url`` (used to decide whether to start an embedded one)."""
    try:
        client: RedisClient = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


# -- Lua scripts on pipelines ---------------------------------------------------------------------------------
# Non-transactional pipelines call scripts by SHA (no script text on the wire per call). redis-py would otherwise
# check SCRIPT EXISTS before every such pipeline; instead, the rare NOSCRIPT reply (Redis restarted or flushed
# its script cache) is answered by re-running exactly that command with EVAL, which also re-caches the script.
# Inside MULTI a NOSCRIPT would fail that one command after the rest committed, so transactions use
# ``queue_script``, which sends EVAL there.
_SCRIPTS: dict[str, str] = {}


def script_sha(source: str) -> str:
    """The SHA-1 Redis names ``source`` by; remembers the source for NOSCRIPT recovery."""
    import hashlib

    sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis identifies scripts by SHA-1
    _SCRIPTS[sha] = source
    return sha


def queue_script(pipe: Any, source: str, keys: list[str], args: list[Any]) -> None:
    """Queue a script on ``pipe``: by SHA on a plain pipeline, by full text inside a transaction."""
    if getattr(pipe, "transaction", False):
        pipe.eval(source, len(keys), *keys, *args)
    else:
        pipe.evalsha(script_sha(source), len(keys), *keys, *args)


def run_script(client: RedisClient, script: Any, keys: list[Any], args: list[Any]) -> Any:
    """``script(keys=keys, args=args)`` (a registered redis-py ``Script``) sent straight on a pooled connection.

    Why: a worker calls its finish script once per step, and redis-py 8 wraps every command in layers (option
    filtering, observability records, a reply callback lookup) that cost about as much as packing it. Kept: the
    client's retry of a lost connection (the connection's own ``Retry``), and a NOSCRIPT (Redis restarted or
    flushed its scripts) answered by the ordinary call, which loads the script. A reply half read never goes back
    to the pool: redis-py drops such a connection itself.
    """
    try:
        return _on_pooled_connection(client.connection_pool, lambda c: _evalsha(c, script.sha, keys, args))
    except NoScriptError:
        return script(keys=keys, args=args)


def _on_pooled_connection(pool: Any, call: Callable[[Any], Any]) -> Any:
    """``call(connection)`` on a connection borrowed from ``pool``, run again on a fresh connection after a lost
    one (the connection's own ``Retry``, as redis-py runs its commands), and the connection given back."""
    connection = pool.get_connection()
    try:
        return connection.retry.call_with_retry(lambda: call(connection), lambda _error: connection.disconnect())
    finally:
        pool.release(connection)


def send_evalsha(connection: Any, sha: str, keys: list[Any], args: list[Any]) -> None:
    """Write ``EVALSHA`` on a connection borrowed from a pool; its reply is the caller's to read."""
    connection.send_packed_command(packed([("EVALSHA", sha, len(keys), *keys, *args)]))


def _evalsha(connection: Any, sha: str, keys: list[Any], args: list[Any]) -> Any:
    send_evalsha(connection, sha, keys, args)
    return connection.read_response()


def execute_pipeline(client: RedisClient, pipe: Any) -> list[Any]:
    """Run ``pipe`` and recover any EVALSHA that hit NOSCRIPT; other errors are raised as usual."""
    stack = [args for args, _options in pipe.command_stack]
    replies: list[Any] = pipe.execute(raise_on_error=False)
    for index, reply in enumerate(replies):
        if isinstance(reply, NoScriptError):
            args = stack[index]
            source = _SCRIPTS.get(str(args[1]))
            if source is None:
                raise reply
            replies[index] = client.eval(source, *args[2:])
        elif isinstance(reply, Exception):
            raise reply
    return replies


def packed(commands: list[tuple[Any, ...]]) -> list[bytes]:
    """``commands`` in the Redis protocol as one piece, each packed by hiredis.

    redis-py's own packer calls the same ``hiredis.pack_command`` for each command, after a pass over every
    argument in Python; that pass cost more than the packing itself. Here it runs only for a command that needs
    it (a name of several words, such as ``SCRIPT LOAD``, or a buffer among the arguments), so the bytes are
    always the ones redis-py would send.
    """
    pieces = []
    for command in commands:
        name = command[0]
        several_words = " " in name if isinstance(name, str) else b" " in name  # hiredis would send one word
        try:
            pieces.append(_pack_as_redis_py(command) if several_words else hiredis.pack_command(command))
        except TypeError:  # a buffer among the arguments
            pieces.append(_pack_as_redis_py(command))
    return [b"".join(pieces)]


def _as_redis_py_sends(command: tuple[Any, ...]) -> tuple[Any, ...]:
    """``command`` shaped as redis-py's packer shapes it: its name split into words, buffers copied to bytes."""
    name, *arguments = command
    words = tuple((name.encode() if isinstance(name, str) else bytes(name)).split())
    return (*words, *(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in arguments))


def _pack_as_redis_py(command: tuple[Any, ...]) -> bytes:
    try:
        return hiredis.pack_command(_as_redis_py_sends(command))  # type: ignore[no-any-return]
    except TypeError as exc:  # an argument Redis cannot take (None, a dict): refused as redis-py refuses it
        raise DataError(str(exc)) from exc


def execute_transaction(pipe: Any) -> list[Any]:
    """Run the transaction ``pipe`` with one write and its replies read straight off a pooled connection.

    Why: redis-py runs a pipeline through layers that cost more than the round trip (each argument checked in
    Python before packing, each ``QUEUED`` reply parsed through its whole stack, a callback over each result of
    ``EXEC``, observability records); a run's creation sends ten commands whose results nobody reads. The replies
    come back raw (no callbacks: an ``HSET`` is its integer, a ``ZADD`` too). Kept from redis-py: the pooled
    connection, the retry of the whole transaction after a lost connection (the connection's own ``Retry``), and
    the errors raised (a command Redis refused raises, an aborted ``EXEC`` raises the refusal that caused it).
    Pipelines that watch keys, carry registered scripts or expect empty replies take redis-py's own path.
    """
    commands = pipe.command_stack
    if (
        not getattr(pipe, "transaction", False)
        or pipe.watching
        or pipe.scripts
        or any(EMPTY_RESPONSE in options for _, options in commands)
    ):
        return list(pipe.execute())
    payload = packed([("MULTI",), *(args for args, _ in commands), ("EXEC",)])
    try:
        return _on_pooled_connection(  # type: ignore[no-any-return]
            pipe.connection_pool, lambda connection: _transact(pipe, connection, payload, commands)
        )
    finally:
        pipe.reset()


def _transact(pipe: Any, connection: Any, payload: list[bytes], commands: list[Any]) -> list[Any]:
    """Send the packed transaction and read its replies: ``MULTI``'s, one per queued command, then ``EXEC``'s."""
    connection.send_packed_command(payload)
    read = connection.read_response
    errors: list[tuple[int, ResponseError]] = []
    for index in range(-1, len(commands)):  # -1: MULTI's own reply
        try:
            read()
        except ResponseError as exc:
            if index >= 0:
                pipe.annotate_exception(exc, index + 1, commands[index][0])
            errors.append((max(index, 0), exc))
    try:
        response = read()
    except ExecAbortError:
        if errors:
            raise errors[0][1] from None
        raise
    if response is None:
        raise WatchError("Watched variable changed.")
    for index, refusal in errors:
        response.insert(index, refusal)
    if len(response) != len(commands):
        connection.disconnect()
        raise ResponseError("Wrong number of response items from pipeline execution")
    pipe.raise_first_error(commands, response)
    return list(response)


def masked(url: str) -> str:
    """``url`` with its password (and user) replaced by ``***``: safe to print and log."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    _credentials, _, host = rest.partition("@")
    return f"{scheme}://***@{host}"
