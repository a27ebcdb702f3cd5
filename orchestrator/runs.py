"""Run state in Redis: the status machine, per-step status/attempts/timings/results, bounded retention.

Why Lua for the moves: many workers finish steps of the same run at once; a script reads and writes in one
atomic round trip, so "the last step completes the run" and "a join fires once" hold without locks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator import keys, run_scripts
from orchestrator.errors import InvalidStateTransitionError, WorkflowNotFoundError
from orchestrator.models.common import Priority, RunStatus, StepStatus, iso_now
from orchestrator.models.run import ErrorInfo, RunView, StepState
from orchestrator.models.workflow import PlannedStep, WorkflowPlan
from orchestrator.redis_client import RedisClient, execute_pipeline, script_sha

# Which statuses a run may move to from which (completed/failed via steps are handled by FINISH_STEP).
LEGAL_FROM: dict[RunStatus, tuple[RunStatus, ...]] = {
    RunStatus.RUNNING: (RunStatus.PENDING, RunStatus.FAILED, RunStatus.CANCELLED),
    RunStatus.CANCELLED: (RunStatus.PENDING, RunStatus.RUNNING),
    RunStatus.FAILED: (RunStatus.PENDING, RunStatus.RUNNING),
    RunStatus.COMPLETED: (RunStatus.RUNNING,),
}


@dataclass(frozen=True)
class BeginResult:
    """What the worker learned when it tried to start a step."""

    verdict: str  # run | cancelled | done | missing | <run status when not running>
    spec: PlannedStep | None
    attempt: int = 0


@dataclass(frozen=True)
class FinishResult:
    duplicate: bool
    run_ended: RunStatus | None
    fired: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, list[str]] = field(default_factory=dict)  # step lists when the run ended


def cap_result(result: Any, max_bytes: int) -> Any:
    """Keep stored results bounded: oversize results become a truncated preview."""
    text = json.dumps(result, default=str, separators=(",", ":"))
    if len(text) <= max_bytes:
        return result
    return {"truncated": True, "size_bytes": len(text), "preview": text[: max_bytes // 2]}


class RunStore:
    """Reads and moves run state; the only module that knows the run hash layout."""

    def __init__(
        self,
        client: RedisClient,
        *,
        ttl_seconds: int = 7 * 24 * 3600,
        result_max_bytes: int = 65536,
        events_max: int = 100_000,
    ) -> None:
        self.redis = client
        self.events_max = events_max
        self.ttl = ttl_seconds
        self.result_max_bytes = result_max_bytes
        self._begin = client.register_script(run_scripts.BEGIN_STEP)
        self._transition = client.register_script(run_scripts.TRANSITION)

    # -- creation -------------------------------------------------------------------------------------
    def create(
        self,
        run_id: str,
        plan: WorkflowPlan,
        *,
        created_by: str,
        triggers: dict[str, Any] | None = None,
        trigger_index: dict[str, tuple[str, ...]] | None = None,
        start: bool = False,
        also: Callable[[Any], None] | None = None,
    ) -> RunView:
        """Record a pending run durably (before anything is enqueued), in one transaction; returns it as written.

        ``start`` also moves it pending -> running through the status machine; ``also`` adds the caller's writes
        (audit entries, the started event) to the same round trip.
        """
        now = iso_now()
        meta = {
            "run_id": run_id,
            "template_id": plan.template_id,
            "name": plan.name,
            "priority": plan.priority.value,
            "parameters": plan.parameters,
            "created_by": created_by,
            "created_at": now,
            "order": [s.step_id for s in plan.steps],
        }
        mapping: dict[str, Any] = {
            "status": RunStatus.PENDING.value,
            "meta": json.dumps(meta),
            "total": len(plan.steps),
            "done": 0,
            "generation": 0,
        }
        for step in plan.steps:
            mapping[f"p:{step.step_id}"] = step.model_dump_json()
            mapping[f"st:{step.step_id}"] = StepStatus.PENDING.value
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.run_key(run_id), mapping=mapping)
        self._write_triggers(pipe, run_id, triggers or {}, trigger_index or {})
        created = _epoch()
        pipe.zadd(keys.RUNS_INDEX, {run_id: created})
        pipe.zremrangebyscore(keys.RUNS_INDEX, "-inf", created - self.ttl - 86400)  # index stays bounded too
        pipe.sadd(keys.ACTIVE_RUNS, run_id)
        if start:
            legal = [s.value for s in LEGAL_FROM[RunStatus.RUNNING]]
            pipe.evalsha(TRANSITION_SHA, 1, keys.run_key(run_id), RunStatus.RUNNING.value, now, "", *legal)
        if also is not None:
            also(pipe)
        execute_pipeline(self.redis, pipe)
        status = RunStatus.RUNNING if start else RunStatus.PENDING
        return RunView(
            run_id=run_id,
            template_id=plan.template_id,
            name=plan.name,
            status=status,
            priority=plan.priority,
            steps=[
                StepState(step_id=s.step_id, agent_id=s.agent_id, action=s.action, depends_on=s.depends_on)
                for s in plan.steps
            ],
            steps_completed=[],
            steps_remaining=[s.step_id for s in plan.steps],
            parameters=plan.parameters,
            created_by=created_by,
            created_at=now,
            started_at=now if start else None,
        )

    def _write_triggers(
        self, pipe: Any, run_id: str, triggers: dict[str, Any], trigger_index: dict[str, tuple[str, ...]]
    ) -> None:
        key = keys.run_triggers_key(run_id)
        pipe.delete(key)
        if not triggers:
            return
        mapping: dict[str, Any] = {}
        for trigger_id, trig in triggers.items():
            mapping[f"wait:{trigger_id}"] = len(trig.waits_for)
            mapping[f"sig:{trigger_id}"] = json.dumps(trig.canvas)
        for step_id, trigger_ids in trigger_index.items():
            mapping[f"idx:{step_id}"] = ",".join(trigger_ids)
        pipe.hset(key, mapping=mapping)

    def prepare_resume(
        self, run_id: str, generation: int, triggers: dict[str, Any], trigger_index: dict[str, tuple[str, ...]]
    ) -> list[str]:
        """Reset every step that did not complete to pending, recount, install the new triggers."""
        view = self.get(run_id)
        redo = [s.step_id for s in view.steps if s.status != StepStatus.COMPLETED]
        pipe = self.redis.pipeline(transaction=True)
        key = keys.run_key(run_id)
        for step_id in redo:
            pipe.hset(key, f"st:{step_id}", StepStatus.PENDING.value)
            pipe.hdel(key, f"r:{step_id}")
        pipe.hset(key, mapping={"done": len(view.steps) - len(redo), "generation": generation})
        pipe.delete(keys.run_cancel_key(run_id))
        pipe.persist(key)
        self._write_triggers(pipe, run_id, triggers, trigger_index)
        pipe.sadd(keys.ACTIVE_RUNS, run_id)
        pipe.execute()
        return redo

    # -- status machine -------------------------------------------------------------------------------
    def transition(self, run_id: str, to: RunStatus, error: ErrorInfo | None = None) -> RunStatus:
        """Move the run to ``to`` or raise ORCH_3002 naming the current status. Returns the previous status."""
        allowed = [s.value for s in LEGAL_FROM[to]]
        err = error.model_dump_json() if error else ""
        verdict, previous = self._transition(keys=[keys.run_key(run_id)], args=[to.value, iso_now(), err, *allowed])
        if verdict == "missing":
            raise WorkflowNotFoundError(f"Run '{run_id}' not found (unknown id or expired)", {"run_id": run_id})
        if verdict == "illegal":
            raise InvalidStateTransitionError(
                f"Run '{run_id}' is {previous}; it cannot become {to.value}",
                {"run_id": run_id, "status": previous, "requested": to.value},
            )
        if to.is_terminal:
            self._expire(run_id)
        return RunStatus(previous)

    def _expire(self, run_id: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.expire(keys.run_key(run_id), self.ttl)
        pipe.expire(keys.run_triggers_key(run_id), self.ttl)
        pipe.expire(keys.run_cancel_key(run_id), self.ttl)
        pipe.srem(keys.ACTIVE_RUNS, run_id)
        pipe.execute()

    def set_cancel_flag(self, run_id: str) -> None:
        self.redis.set(keys.run_cancel_key(run_id), "1", ex=self.ttl)

    def mark_steps(self, run_id: str, step_ids: list[str], status: StepStatus) -> None:
        if step_ids:
            self.redis.hset(keys.run_key(run_id), mapping={f"st:{s}": status.value for s in step_ids})

    # -- worker side ----------------------------------------------------------------------------------
    def begin_step(self, run_id: str, step_id: str, started_event: str = "") -> BeginResult:
        """Start a step if its run is running; emits ``started_event`` (pre-encoded) in the same round trip."""
        reply = self._begin(
            keys=[keys.run_key(run_id), keys.run_cancel_key(run_id), keys.EVENTS_STREAM],
            args=[step_id, iso_now(), started_event, self.events_max, keys.EVENTS_CHANNEL],
        )
        verdict = reply[0]
        spec = PlannedStep.model_validate_json(reply[1]) if len(reply) > 1 and reply[1] else None
        attempt = int(reply[2]) if len(reply) > 2 else 0
        return BeginResult(verdict, spec, attempt)

    def finish_step(
        self,
        run_id: str,
        step_id: str,
        status: StepStatus,
        *,
        effect: str,
        started: float | None,
        result: Any = None,
        error: ErrorInfo | None = None,
        run_error: ErrorInfo | None = None,
        event: str = "",
        also: Callable[[Any], None] | None = None,
        queue: str | None = None,
    ) -> FinishResult:
        """Record a step's outcome; ``effect`` says what it means for the run (done / stop / none).

        ``event`` (pre-encoded) is emitted by the script unless the step was already finished; ``also`` queues
        more writes (e.g. the audit entry) on the same pipeline, so the whole finish is one round trip.
        """
        now = iso_now()
        outcome = {
            "finished_at": now,
            "duration_ms": None if started is None else round((_epoch() - started) * 1000, 3),
            "result": cap_result(result, self.result_max_bytes) if result is not None else None,
            "error": error.model_dump() if error else None,
            "queue": queue,
        }
        finish_keys = [keys.run_key(run_id), keys.run_triggers_key(run_id), keys.ACTIVE_RUNS, keys.EVENTS_STREAM]
        finish_args = [
            step_id,
            status.value,
            json.dumps(outcome, default=str),
            effect,
            now,
            run_error.model_dump_json() if run_error else "",
            self.ttl,
            run_id,
            event,
            self.events_max,
            keys.EVENTS_CHANNEL,
        ]
        pipe = self.redis.pipeline(transaction=False)
        pipe.evalsha(FINISH_SHA, len(finish_keys), *finish_keys, *finish_args)
        if also is not None:
            also(pipe)
        reply = execute_pipeline(self.redis, pipe)[0]
        if reply[0] == "dup":
            return FinishResult(True, None)
        ended = RunStatus(reply[1]) if reply[1] else None
        summary = json.loads(reply[2]) if reply[2] else {}
        return FinishResult(False, ended, [json.loads(sig) for sig in reply[3:]], summary)

    def set_step_status(self, run_id: str, step_id: str, status: StepStatus, error: ErrorInfo | None = None) -> None:
        mapping = {f"st:{step_id}": status.value}
        if error is not None:
            mapping[f"r:{step_id}"] = json.dumps(
                {"finished_at": None, "duration_ms": None, "result": None, "error": error.model_dump()}
            )
        self.redis.hset(keys.run_key(run_id), mapping=mapping)

    # -- reading --------------------------------------------------------------------------------------
    def exists(self, run_id: str) -> bool:
        return bool(self.redis.exists(keys.run_key(run_id)))

    def raw(self, run_id: str) -> dict[str, str]:
        data: dict[str, str] = self.redis.hgetall(keys.run_key(run_id))
        if not data:
            raise WorkflowNotFoundError(f"Run '{run_id}' not found (unknown id or expired)", {"run_id": run_id})
        return data

    def get(self, run_id: str) -> RunView:
        return view_from_hash(self.raw(run_id))

    def plan(self, run_id: str) -> WorkflowPlan:
        data = self.raw(run_id)
        meta = json.loads(data["meta"])
        steps = [PlannedStep.model_validate_json(data[f"p:{sid}"]) for sid in meta["order"]]
        return WorkflowPlan(
            template_id=meta["template_id"],
            name=meta["name"],
            parameters=meta["parameters"],
            priority=Priority(meta["priority"]),
            steps=steps,
        )

    def results(self, run_id: str) -> dict[str, Any]:
        """``{step_id: result}`` of completed steps (for handlers that build on earlier steps)."""
        data = self.raw(run_id)
        out: dict[str, Any] = {}
        for name, value in data.items():
            if name.startswith("st:") and value == StepStatus.COMPLETED.value:
                outcome = data.get(f"r:{name[3:]}")
                if outcome:
                    out[name[3:]] = json.loads(outcome).get("result")
        return out

    def list(
        self, *, status: str | None = None, template_id: str | None = None, offset: int = 0, limit: int = 50
    ) -> tuple[list[RunView], int]:
        """Newest first; prunes index entries whose runs expired."""
        ids = self.redis.zrevrange(keys.RUNS_INDEX, 0, -1)
        views: list[RunView] = []
        stale: list[str] = []
        matched = 0
        pipe = self.redis.pipeline(transaction=False)
        for run_id in ids:
            pipe.hgetall(keys.run_key(run_id))
        for run_id, data in zip(ids, pipe.execute(), strict=True):
            if not data:
                stale.append(run_id)
                continue
            if status and data.get("status") != status:
                continue
            view = view_from_hash(data)
            if template_id and view.template_id != template_id:
                continue
            if offset <= matched < offset + limit:
                views.append(view)
            matched += 1
        if stale:
            self.redis.zrem(keys.RUNS_INDEX, *stale)
        return views, matched

    def active_count(self) -> int:
        return int(self.redis.scard(keys.ACTIVE_RUNS))


def view_from_hash(data: dict[str, str]) -> RunView:
    """Assemble the public run shape from the hash fields."""
    meta = json.loads(data["meta"])
    steps: list[StepState] = []
    for step_id in meta["order"]:
        spec = json.loads(data[f"p:{step_id}"])
        outcome = json.loads(data[f"r:{step_id}"]) if f"r:{step_id}" in data else {}
        error = outcome.get("error")
        steps.append(
            StepState(
                step_id=step_id,
                agent_id=spec["agent_id"],
                action=spec["action"],
                status=StepStatus(data.get(f"st:{step_id}", "pending")),
                attempts=int(data.get(f"at:{step_id}", 0)),
                started_at=data.get(f"t0:{step_id}"),
                finished_at=outcome.get("finished_at"),
                duration_ms=outcome.get("duration_ms"),
                result=outcome.get("result"),
                error=ErrorInfo(**error) if error else None,
                queue=outcome.get("queue"),
                depends_on=spec["depends_on"],
            )
        )
    error_raw = data.get("error")
    return RunView(
        run_id=meta["run_id"],
        template_id=meta["template_id"],
        name=meta["name"],
        status=RunStatus(data["status"]),
        priority=Priority(meta["priority"]),
        steps=steps,
        steps_completed=[s.step_id for s in steps if s.status == StepStatus.COMPLETED],
        steps_remaining=[s.step_id for s in steps if not s.status.is_done],
        error=ErrorInfo.model_validate_json(error_raw) if error_raw else None,
        parameters=meta["parameters"],
        created_by=meta["created_by"],
        created_at=meta["created_at"],
        started_at=data.get("started_at"),
        finished_at=data.get("finished_at"),
        generation=int(data.get("generation", 0)),
    )


FINISH_SHA = script_sha(run_scripts.FINISH_STEP)
TRANSITION_SHA = script_sha(run_scripts.TRANSITION)


def _epoch() -> float:
    import time

    return time.time()
