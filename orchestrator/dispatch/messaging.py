"""Agent messaging: a message to another agent's queue, with a priority and an optional expiry.

Why Celery for it: the recipient's worker already consumes its queue with priorities; an expired message is
discarded by the worker on receipt (Celery ``expires``) and dead-lettered, never delivered. Delivered messages
land in the agent's inbox stream. Within one priority the Redis lists keep FIFO order.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

from celery import Celery

from orchestrator import keys
from orchestrator.catalog import get_agent
from orchestrator.dispatch.enqueue import enqueue
from orchestrator.errors import MessageInvalidError
from orchestrator.models.common import iso_now
from orchestrator.models.events import Event
from orchestrator.runtime.celery_app import broker_priority
from orchestrator.runtime.redis_client import RedisClient, execute_pipeline
from orchestrator.state import events as ev
from orchestrator.state.audit import AuditLog
from orchestrator.state.events import EventBus

MESSAGE_PRIORITIES: dict[str, int] = {"critical": 0, "high": 3, "normal": 5, "low": 8}
INBOX_MAX = 10_000
MAX_PAYLOAD_BYTES = 64 * 1024


class Messenger:
    def __init__(self, client: RedisClient, app: Celery, events: EventBus, audit: AuditLog) -> None:
        self.redis = client
        self.app = app
        self.events = events
        self.audit = audit

    def send(
        self,
        *,
        actor: str,
        sender: str,
        recipient: str,
        message_type: str,
        payload: dict[str, Any],
        priority: str = "normal",
        expires_in_seconds: float | None = None,
    ) -> dict[str, Any]:
        get_agent(recipient)
        if priority not in MESSAGE_PRIORITIES:
            raise MessageInvalidError(f"Invalid priority '{priority}'. Use one of: {', '.join(MESSAGE_PRIORITIES)}")
        if expires_in_seconds is not None and expires_in_seconds <= 0:
            raise MessageInvalidError("expires_in_seconds must be positive")
        if not message_type.strip():
            raise MessageInvalidError("message_type must not be empty")
        if len(json.dumps(payload, default=str)) > MAX_PAYLOAD_BYTES:
            raise MessageInvalidError(f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
        message = {
            "message_id": uuid4().hex,
            "sender_id": sender,
            "recipient_id": recipient,
            "message_type": message_type,
            "payload": payload,
            "priority": priority,
            "created_at": iso_now(),
            "expires_in_seconds": expires_in_seconds,
        }
        delivery = self.app.signature(
            keys.TASK_DELIVER_MESSAGE,
            kwargs={"message": message},
            queue=keys.agent_queue(recipient),
            priority=broker_priority(MESSAGE_PRIORITIES[priority], str(self.app.conf.broker_url or "")),
            expires=expires_in_seconds,
            task_id=f"msg-{message['message_id']}",
        )
        enqueue(self.app, delivery)
        pipe = self.redis.pipeline(transaction=False)
        self.audit.append_to(
            pipe,
            "message_sent",
            actor,
            recipient,
            {"message_id": message["message_id"], "sender": sender, "type": message_type, "priority": priority},
        )
        self.events.publish_to(
            pipe,
            Event(
                event_type=ev.MESSAGE_SENT,
                correlation_id=message["message_id"],
                payload={k: v for k, v in message.items() if k != "payload"},
            ),
        )
        execute_pipeline(self.redis, pipe)
        return {
            "message_id": message["message_id"],
            "status": "queued",
            "recipient": recipient,
            "priority": priority,
            "expires_in_seconds": expires_in_seconds,
        }

    def inbox(self, agent_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        get_agent(agent_id)
        entries = self.redis.xrevrange(keys.inbox_key(agent_id), count=limit)
        return [{"stream_id": sid, **json.loads(fields["m"])} for sid, fields in entries]
