"""Fault injection for tests and operator drills: make a step fail, hang, crash or pause after its effect.

Off unless ``ORCH_FAULT_INJECTION=true`` on the worker. A plan lives at ``orch:fault:<step_id>`` as JSON:
``{"fail_times": n, "retryable": bool, "sleep": s, "sleep_after": s, "hold": s, "deaf": bool,
"exit_times": n, "crash_after_record": bool}``: the first ``n`` attempts raise; every attempt sleeps ``sleep``
seconds before the action (to trip timeouts) and ``sleep_after`` seconds after its effect (a window to kill the
worker between the effect and its record); ``hold`` keeps the step busy until ``orch:fault:<step_id>:release``
exists (or ``hold`` seconds pass), so a test controls exactly when an agent becomes free; ``deaf`` blocks the
soft-time-limit and interrupt signal while holding or sleeping (a step stuck outside Python); ``exit_times``
kills the executing process on its first ``n`` deliveries (a message that crashes its worker);
``crash_after_record`` kills it right after its outcome is recorded, before anything that follows.
The executing pid is written to ``orch:fault:<step_id>:pid`` so a test can kill exactly that process.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from orchestrator import keys
from orchestrator.errors import RetryableTaskError, TaskExecutionError
from workers.context import ActionContext


def wrap(redis: Any, ctx: ActionContext, action: Callable[[ActionContext], Any]) -> Any:
    raw = redis.get(keys.fault_key(ctx.step_id))
    if not raw:
        return action(ctx)
    plan = json.loads(raw)
    redis.set(keys.fault_mark_key(ctx.step_id, "pid"), os.getpid(), ex=600)
    if redis.incr(keys.fault_mark_key(ctx.step_id, "deliveries")) <= int(plan.get("exit_times", 0)):
        os._exit(70)  # the process dies mid-step, as an out-of-memory kill would
    if plan.get("deaf"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    if ctx.attempt <= int(plan.get("fail_times", 0)):
        message = f"injected failure on attempt {ctx.attempt}"
        raise RetryableTaskError(message) if plan.get("retryable", True) else TaskExecutionError(message)
    if plan.get("hold"):
        deadline = time.monotonic() + float(plan["hold"])
        while not redis.exists(keys.fault_mark_key(ctx.step_id, "release")) and time.monotonic() < deadline:
            time.sleep(0.02)  # a deliberately stuck step, released by the test
    if plan.get("sleep"):
        time.sleep(float(plan["sleep"]))  # simulates slow work inside the step
    if plan.get("deaf"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    result = action(ctx)
    if plan.get("sleep_after"):
        redis.set(keys.fault_mark_key(ctx.step_id, "after"), "1", ex=600)
        time.sleep(float(plan["sleep_after"]))  # the window between the effect and its record
    return result


def crash_after_record(redis: Any, step_id: str) -> None:
    """Die right after a step's outcome was recorded (the window before released joins are enqueued)."""
    raw = redis.get(keys.fault_key(step_id))
    if (
        raw
        and json.loads(raw).get("crash_after_record")
        and redis.set(keys.fault_mark_key(step_id, "crashed"), "1", nx=True)
    ):
        os._exit(71)
