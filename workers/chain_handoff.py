"""The next link of a step's chain, pushed by the finish script that records the step completed.

Why: after a step, Celery's tracer publishes the rest of its chain itself, one more Redis round trip per chained
step after the finish script. When the broker is the Redis that holds run state, the worker builds that very
publish here (the tracer's ``signature(chain[-1]).apply_async((retval,), chain=chain[:-1], parent_id, root_id,
priority)``), captures kombu's final commands (``runtime.transport``) and hands them to the finish script,
which pushes them in the same atomic step that records the completion: one round trip less, and no window in
which the step is recorded but its successor not yet enqueued. The tracer is then told there is no chain left.

Only the happy path of a plain step followed by a plain step or a chord is handed off (a chord of plain steps is
built directly, ``runtime.step_push.chord_pushes``; any other chord's header messages and the chord size Celery's
backend writes are captured, ``runtime.celery_app.CapturingRedisBackend``): a
failure, a retry, a skip, a cancel, a link (callbacks, which Celery sends before the chain), a group next, or
another broker keep Celery's own behaviour. A completion the script does not record (a repeat after a lost reply,
a duplicate, a run no longer running, an older generation) pushes nothing: the delivery that recorded it pushed
the link, and a run that stopped or moved on has no use for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from celery import current_app, signature

from orchestrator import keys
from orchestrator.runtime.capture import Command, captured_publishes
from orchestrator.runtime.step_push import chord_pushes, step_push
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NextLink:
    """The next chain link, captured: the broker commands that publish it, and the result Celery returned for
    it (which joins the step's children only if the link is used: ``adopt``)."""

    commands: list[Command]
    result: Any

    def adopt(self, request: Any) -> None:
        """The finish script pushed the link: the step's children name it, as after Celery's own publish, and
        the tracer is told there is no chain left."""
        request.children.append(self.result)
        request.chain = None


# What a completed step returns to Celery (and passes to its next chain link, which is immutable and ignores it).
# A plain string: Celery's tracer reprs every return value with its pure-Python ``saferepr`` (for the log line and
# the task-succeeded event), which took 15 us per step for a two-key dict against 2.5 us for a short string; the
# step's id is in the task's own kwargs and the outcome in run state.
COMPLETED_RETVAL = "completed"


def capture_next_link(rt: WorkerRuntime, request: Any, retval: Any) -> NextLink | None:
    """The next chain link as the tracer would publish it after ``retval``; ``None`` when Celery must publish
    it itself (nothing follows, something other than a plain step follows, another broker).

    Pure computation, so the worker builds it while Redis runs the step's begin script (``workers.tasks``);
    nothing is sent, and an unused link leaves no trace. A used one is ``adopt``-ed once the finish script ran."""
    chain = getattr(request, "chain", None)
    if not chain or getattr(request, "callbacks", None) or getattr(request, "is_eager", False):
        return None
    following = chain[-1]
    if not isinstance(following, dict) or not _plain_step_or_chord(following):
        return None
    app = current_app._get_current_object()
    if not _shares_state_redis(rt):
        return None
    inherit = app.conf.task_inherit_parent_priority
    priority = (request.delivery_info or {}).get("priority") if inherit else None
    root_id = request.root_id or request.id
    try:
        push = step_push(app, following, chain=chain[:-1], parent_id=request.id, root_id=root_id, priority=priority)
        if push is not None:  # the message Celery's path would build, built directly (``runtime.step_push``)
            result = app.AsyncResult(following["options"]["task_id"])
            result.ignored = following["options"].get("ignore_result")
            return NextLink([push], result)
        sent = {"chain": chain[:-1], "parent_id": request.id, "root_id": root_id, "priority": priority}
        pushes = chord_pushes(app, following, sent_with={**sent, "add_to_parent": False})
        if pushes is not None:  # a chord of steps, built alike; Celery's apply returns its body's result
            return NextLink(pushes, app.AsyncResult(following["kwargs"]["body"]["options"]["task_id"]))
        with captured_publishes() as commands:
            result = signature(following, app=app).apply_async(
                (retval,),
                chain=chain[:-1],
                parent_id=request.id,
                root_id=root_id,
                priority=priority,
                add_to_parent=False,
            )
    except Exception:
        log.warning("next chain link not captured; Celery publishes it", exc_info=True)
        return None
    return NextLink(commands, result) if commands else None


def _plain_step_or_chord(signature_dict: dict[str, Any]) -> bool:
    """A step, or a chord (its header's messages and its size, which Celery's backend writes, are captured)."""
    kind = signature_dict.get("subtask_type")
    if kind == "chord":
        return signature_dict.get("task") == "celery.chord"
    return signature_dict.get("task") == keys.TASK_RUN_STEP and not kind


def _shares_state_redis(rt: WorkerRuntime) -> bool:
    """Whether the broker is the state Redis (the runtime's outbox works it out once per app)."""
    return bool(rt.outbox.shares_state_redis)
