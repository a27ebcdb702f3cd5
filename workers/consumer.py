"""A Celery consumer that survives any message: undecodable or malformed ones are refused, never fatal.

Why: Celery's consumer turns some malformed envelopes (e.g. a JSON body of the wrong shape) into an
"Unrecoverable error" that stops the worker, and the message is restored at shutdown, so the worker dies on
every delivery, forever. Here every message the consumer cannot hand to a task is dead-lettered (with a
bounded excerpt), audited and announced, then rejected without requeue; the worker goes on. Connection errors
are not the message's fault and still propagate (the consumer reconnects as usual).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery.worker import state as worker_state
from celery.worker.consumer import Consumer
from vine import promise

from orchestrator import keys
from orchestrator.models.common import iso_now
from orchestrator.models.events import Event
from orchestrator.runtime.redis_client import execute_pipeline
from orchestrator.state import events as ev
from orchestrator.state import outcome_metrics

log = logging.getLogger(__name__)

EXCERPT_CHARS = 2000


def _excerpt(message: Any) -> dict[str, Any]:
    body = getattr(message, "body", b"")
    text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body)
    headers = getattr(message, "headers", None)
    return {
        "body": text[:EXCERPT_CHARS],
        "body_bytes": len(body) if isinstance(body, bytes | bytearray | str) else None,
        "headers": str(headers)[:EXCERPT_CHARS],
        "content_type": getattr(message, "content_type", None),
    }


def record_refusal(message: Any, reason: str) -> None:
    """Dead-letter, audit and announce a message the worker refused; never raises (the worker must go on)."""
    try:
        from workers.runtime import runtime

        rt = runtime()
        delivery = getattr(message, "delivery_info", None) or {}
        letter = {
            "run_id": None,
            "step_id": None,
            "agent_id": rt.agent_id,
            "action": "message.undeliverable",
            "reason": "malformed",
            "params": _excerpt(message),
            "error": {"code": "ORCH_4002", "message": f"Message refused by the worker: {reason}"[:EXCERPT_CHARS]},
            "at": iso_now(),
            "redriven": False,
        }
        pipe = rt.redis.pipeline(transaction=False)
        pipe.xadd(keys.DLQ_STREAM, {"d": json.dumps(letter)}, maxlen=rt.settings.retention.dlq_max, approximate=True)
        outcome_metrics.count_to(pipe, outcome_metrics.DEAD_LETTERS, "malformed")
        details = {"reason": reason[:EXCERPT_CHARS], "where": "consumer", "queue": delivery.get("routing_key")}
        rt.audit.append_to(pipe, "message_refused", rt.actor, rt.agent_id, details, result="failure")
        rt.events.publish_to(pipe, Event(event_type=ev.STEP_REFUSED, source=rt.actor, payload=details))
        execute_pipeline(rt.redis, pipe)
    except Exception:
        log.exception("could not record a refused message")


class GuardedConsumer(Consumer):  # type: ignore[misc]
    def create_task_handler(self, promise: Any = promise) -> Any:
        handle = super().create_task_handler(promise)
        fatal = tuple(self.connection_errors) + tuple(self.channel_errors)

        def on_task_received(message: Any) -> Any:
            try:
                return handle(message)
            except fatal:
                raise
            except Exception as exc:
                log.error("refused a malformed message: %s: %s", type(exc).__name__, exc)
                try:
                    self._undo_handoff(message)
                except Exception:  # Celery's internals moved: the refusal must still happen, the worker go on
                    log.exception("could not give back the pool slot of a refused message")
                record_refusal(message, f"{type(exc).__name__}: {exc}")
                message.reject_log_error(log, self.connection_errors)
                return None

        return on_task_received

    def _undo_handoff(self, message: Any) -> None:
        """Give back what a hand-off to the pool held when it failed part-way, so the worker keeps its concurrency.

        Why: Celery takes one of the pool's slots (its semaphore) and records the job before it pickles the task for
        a pool process. A message too deep to pickle failed there, and the slot was never given back: each such
        message cost the worker one process for good, until it ran nothing. Here the job record (never written to
        a process) is dropped with its time-limit timers, its slot released and the request forgotten."""
        task_id = (getattr(message, "headers", None) or {}).get("id")
        pool = getattr(self.pool, "_pool", None)
        jobs = getattr(pool, "_cache", None)
        if not task_id or jobs is None:
            return
        stranded = [
            job
            for job in list(jobs.values())
            if getattr(job, "correlation_id", None) == task_id and not job._accepted and job._write_to is None
        ]
        worker = self.controller
        for job in stranded:
            cancel_timers = getattr(pool, "on_timeout_cancel", None)
            if cancel_timers is not None:
                cancel_timers(job)
            job.discard()
            if getattr(worker, "semaphore", None) is not None and worker.process_task == worker._process_task_sem:
                worker._quick_release()  # the slot ``_process_task_sem`` took for this job
        request = worker_state.requests.get(task_id)
        if request is not None:
            worker_state.task_ready(request)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        record_refusal(message, f"undecodable: {type(exc).__name__}: {exc}")
        super().on_decode_error(message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        record_refusal(message, "not a task message (no task name)")
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        record_refusal(message, f"unknown task {getattr(message, 'headers', {}).get('task')!r}")
        super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        record_refusal(message, f"invalid task message: {exc}")
        super().on_invalid_task(body, message, exc)
