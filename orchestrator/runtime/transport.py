"""kombu's Redis transport, able to hand a publish back to the caller instead of sending it.

Why: when the broker is the Redis that holds run state, a start can put its first messages on the queue in the
same MULTI...EXEC that records the run (and a finished step its successors in the script that records it). One
round trip instead of two, and no window in which the run is recorded but not enqueued (the outbox, which covers
that window, has nothing to do). Celery still builds every message (``apply_async`` with its routing, priorities
and canvas options); only kombu's final ``LPUSH`` is captured, with exactly the key and payload kombu would have
sent; so is the chord size Celery's result backend writes when a chord is applied (``CapturingRedisBackend``), as
``("CHORDSIZE", key, size, ttl)``. Outside ``captured_publishes`` the transport and the backend are kombu's and
Celery's own, byte for byte; the one difference is that the transport keeps one redis-py client per connection
pool where kombu builds one per call (``Channel._create_client``).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis
from kombu.utils.json import dumps

from orchestrator.runtime.capture import captured_publishes, capturing

__all__ = ["Channel", "Transport", "captured_publishes"]


class Channel(redis.Channel):  # type: ignore[misc]
    _pooled_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        """One client per connection pool, instead of kombu's new client for every call.

        Why: kombu builds a fresh redis-py client each time it borrows a connection (every publish, and twice per
        message in a worker: the QoS records it on delivery and forgets it on ack). A redis-py 8 client costs
        ~50 us to build (its table of ~170 response callbacks) and holds nothing but its pool, from which every
        command still borrows a connection. The asynchronous client (``BRPOP``, pub/sub) is kombu's, untouched.
        When kombu replaces the pool (after a fork or a lost connection), the next call builds a new client.
        """
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        client = self._pooled_client
        if client is None or client.connection_pool is not pool:
            client = self._pooled_client = super()._create_client()
        return client

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        commands = capturing()
        if commands is None:
            super()._put(queue, message, **kwargs)
            return
        priority = self._get_message_priority(message, reverse=False)
        commands.append(("LPUSH", self._q_for_pri(queue, priority), dumps(message)))
        if self._expires and queue in self._expires:  # as kombu does for a queue declared with x-expires
            commands.extend(("PEXPIRE", self._q_for_pri(queue, p), self._expires[queue]) for p in self.priority_steps)


class Transport(redis.Transport):  # type: ignore[misc]
    Channel = Channel
