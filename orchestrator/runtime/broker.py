"""What the reconciler can ask the broker: where a step's message is, how deep a queue is, and "put it back".

Why: on the Redis transport a message delivered to a worker sits in the ``unacked`` hash until it is acked,
and is restored only after ``visibility_timeout`` (hours, to stay above the longest step). When the worker
that holds it is gone, the reconciler restores exactly that message at once (kombu's own ``restore_by_tag``,
so priorities and the message's canvas continuation are kept). RabbitMQ redelivers by itself when the
consumer's connection drops, so there the probe only reports queue depth.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from celery import Celery

from orchestrator.runtime.celery_app import PRIORITY_STEPS, is_amqp

log = logging.getLogger(__name__)

UNACKED, UNACKED_INDEX = "unacked", "unacked_index"


@dataclass(frozen=True)
class Located:
    """A message held by some worker (delivered, not acked): its delivery tag and how long ago it was delivered."""

    tag: str
    age_seconds: float


class BrokerProbe:
    """Questions about messages, answered for the Redis transport (and queue depth for AMQP)."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.url = str(app.conf.broker_url or "")
        self.redis_transport = self.url.startswith(("redis://", "rediss://", "unix://"))

    def _client(self) -> Any:
        from orchestrator.runtime.redis_client import get_redis

        return get_redis(self.url)

    def restore(self, delivery_tag: str) -> bool:
        """Put a delivered-but-unacked message back on its queue now; False if it is not held any more."""
        if not self.redis_transport or not delivery_tag:
            return False
        if not self._client().hexists(UNACKED, delivery_tag):
            return False
        with self.app.connection_for_write() as connection:
            connection.default_channel.qos.restore_by_tag(delivery_tag)
        return True

    def locate(self, task_id: str) -> Located | None:
        """The held (unacked) message of ``task_id``, if any (a scan of in-flight messages only)."""
        if not self.redis_transport:
            return None
        client = self._client()
        for tag, raw in client.hscan_iter(UNACKED, count=500):
            with contextlib.suppress(ValueError, TypeError, KeyError, IndexError):
                payload = json.loads(raw)[0]
                if payload["headers"].get("id") == task_id:
                    delivered = client.zscore(UNACKED_INDEX, tag)
                    age = time.time() - float(delivered) if delivered is not None else 0.0
                    return Located(str(tag), age)
        return None

    def queue_depths(self, queues: list[str]) -> dict[str, int]:
        """Messages waiting in each queue (all priority levels), in one round trip on the Redis transport; queues
        the broker cannot answer for are left out."""
        if not self.redis_transport:
            found = {queue: self.queue_depth(queue) for queue in queues}
            return {queue: depth for queue, depth in found.items() if depth is not None}
        names = [queue if step == 0 else f"{queue}:{step}" for queue in queues for step in PRIORITY_STEPS]
        pipe = self._client().pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        lengths = pipe.execute()
        per = len(PRIORITY_STEPS)
        return {queue: int(sum(lengths[i * per : (i + 1) * per])) for i, queue in enumerate(queues)}

    def queue_depth(self, queue: str) -> int | None:
        """Messages waiting in ``queue`` (all priority levels); None when the broker cannot say."""
        if self.redis_transport:
            pipe = self._client().pipeline(transaction=False)
            pipe.llen(queue)
            for step in PRIORITY_STEPS[1:]:
                pipe.llen(f"{queue}:{step}")
            return int(sum(pipe.execute()))
        if is_amqp(self.url):
            try:
                with self.app.connection_for_read() as connection:
                    declared = connection.default_channel.queue_declare(queue=queue, passive=True)
                    return int(declared.message_count)
            except Exception:
                log.debug("queue depth of %s unknown", queue, exc_info=True)
        return None
