"""The one place work goes onto the broker: a canvas, a signature, or their JSON form, bound to an app.

Why one function: a run's canvas (through the outbox, from dispatch, the workers and the reconciler) and an agent
message both reach the broker here, so there is one place to look for what is enqueued and how.
"""

from __future__ import annotations

import json
from typing import Any

from celery import Celery


def bind(app: Celery, canvas: Any) -> Any:
    """Rebuild a canvas (or its JSON dict form) bound to ``app`` all the way down its nested signatures."""
    plain = canvas if type(canvas) is dict else json.loads(json.dumps(canvas))
    return app.signature(plain)


def enqueue(app: Celery, canvas: Any) -> Any:
    """Put ``canvas`` on ``app``'s broker (its options say the queue, priority, expiry and task id)."""
    return bind(app, canvas).apply_async()
