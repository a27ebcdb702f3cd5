"""Worker side of agent messaging: deliver to the agent's inbox, dead-letter what expired on the way."""

from __future__ import annotations

import json
from typing import Any

from celery import shared_task
from celery.signals import task_revoked

from orchestrator import keys
from orchestrator.errors import MessageDeliveryError
from orchestrator.models.common import iso_now
from orchestrator.models.events import Event
from orchestrator.state import deadletters, outcome_metrics
from orchestrator.state import events as ev
from workers.runtime import runtime

INBOX_MAX = 10_000


@shared_task(name=keys.TASK_DELIVER_MESSAGE, acks_late=True)
def deliver_message(message: dict[str, Any]) -> dict[str, Any]:
    rt = runtime()
    recipient = message.get("recipient_id")
    if recipient is None or recipient != rt.agent_id:
        rt.audit.append(
            "permission_denied",
            rt.actor,
            str(recipient),
            {"reason": "message for another agent", "message_id": message.get("message_id")},
            result="failure",
        )
        return {"status": "refused"}
    delivered = {**message, "delivered_at": iso_now()}
    pipe = rt.redis.pipeline(transaction=False)
    pipe.xadd(keys.inbox_key(recipient), {"m": json.dumps(delivered, default=str)}, maxlen=INBOX_MAX, approximate=True)
    rt.events.publish_to(
        pipe,
        Event(
            event_type="message.delivered",
            correlation_id=message.get("message_id"),
            source=rt.actor,
            payload={"recipient": recipient, "message_type": message.get("message_type")},
        ),
    )
    pipe.execute()
    return {"status": "delivered"}


@task_revoked.connect
def _dead_letter_expired(sender: Any = None, request: Any = None, expired: bool = False, **_: Any) -> None:
    """An expired message is never delivered; keep it as a dead letter and say so on the event bus."""
    if not expired or getattr(sender, "name", None) != keys.TASK_DELIVER_MESSAGE:
        return
    rt = runtime()
    message = (getattr(request, "kwargs", None) or {}).get("message", {})
    pipe = rt.redis.pipeline(transaction=False)
    deadletters.add_to(
        pipe,
        run_id=None,
        step_id=None,
        agent_id=str(message.get("recipient_id")),
        action="message.deliver",
        params=message,
        reason="expired",
        error=MessageDeliveryError("Message expired before delivery").to_dict(),
        max_len=rt.settings.retention.dlq_max,
    )
    outcome_metrics.count_to(pipe, outcome_metrics.DEAD_LETTERS, "expired")
    rt.events.publish_to(
        pipe,
        Event(
            event_type=ev.MESSAGE_EXPIRED,
            correlation_id=message.get("message_id"),
            source=rt.actor,
            payload={"recipient": message.get("recipient_id")},
        ),
    )
    pipe.execute()
