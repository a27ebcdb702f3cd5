"""Run state in Redis: the status machine, per-step status/attempts/timings/results, leases, bounded retention.

Why Lua for the moves (``run_scripts``): many workers finish steps of the same run at once, and a crash may
come between any two writes; a script reads and writes in one atomic round trip, so "the last step completes
the run", "a join fires once" and "a state change and its audit entry, event and outbox entry commit
together" hold without locks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import Any

from orchestrator import keys
from orchestrator.errors import InvalidStateTransitionError, WorkflowNotFoundError
from orchestrator.models.common import Priority, RunStatus, StepStatus, iso_now
from orchestrator.models.run import ErrorInfo, RunView, StepState
from orchestrator.models.workflow import PlannedStep, WorkflowPlan
from orchestrator.runtime.capture import chord_size_commands
from orchestrator.runtime.deferred import DeferredScript
from orchestrator.runtime.redis_client import RedisClient, execute_transaction, queue_script, run_script
from orchestrator.state import outcome_metrics, run_listing, run_scripts
from orchestrator.state.run_views import read_meta, read_spec, view_from_hash
from orchestrator.workflows.spec import CanvasSpec, spec_from_plain
from orchestrator.workflows.triggers import TriggerTable

StoredCanvas = CanvasSpec | dict[str, Any] | None  # what a trigger's ``sig:`` field holds, parsed

# Which statuses a run may move to from which (completed/failed via steps are handled by FINISH_STEP).
LEGAL_FROM: dict[RunStatus, tuple[RunStatus, ...]] = {
    RunStatus.RUNNING: (RunStatus.PENDING, RunStatus.FAILED, RunStatus.CANCELLED),
    RunStatus.CANCELLED: (RunStatus.PENDING, RunStatus.RUNNING),
    RunStatus.FAILED: (RunStatus.PENDING, RunStatus.RUNNING),
    RunStatus.COMPLETED: (RunStatus.RUNNING,),
}


@dataclass(frozen=True)
class Lease:
    """Who runs a step: a worker instance, the pool process inside it, and the broker delivery it works on."""

    instance: str
    pid: int
    delivery_tag: str = ""

    @property
    def token(self) -> str:
        return f"{self.instance}/{self.pid}/{self.delivery_tag}"

    @classmethod
    def parse(cls, token: str) -> Lease:
        instance, _, rest = token.partition("/")
        pid, _, tag = rest.partition("/")
        return cls(instance, int(pid or 0), tag)


@dataclass(frozen=True)
class BeginResult:
    """What the worker learned when it tried to start a step.

    ``verdict``: ``run``; ``done`` / ``cancelled`` / ``stale`` / ``early`` / ``missing`` / a run status (do not
    run it); ``busy`` / ``mine`` (another live delivery holds the lease, ``detail`` names it); ``poison`` (the
    step was delivered more than the cap allows without ever finishing, ``detail`` says how often).
    """

    verdict: str
    spec: PlannedStep | None
    attempt: int = 0
    detail: str = ""
    outbox_pending: bool = False


@dataclass(frozen=True)
class FinishResult:
    duplicate: bool
    run_ended: RunStatus | None
    fired: list[str] = field(default_factory=list)  # trigger ids released (their outbox entries are written)
    summary: dict[str, list[str]] = field(default_factory=dict)  # step lists when the run ended
    verdict: str = "ok"
    joined: list[str] = field(default_factory=list)  # outbox entries of chord bodies this step's part completed


# What may ride on a finish script (see ``FINISH_STEP``): a chain's next messages, a chord's part, a chord's size.
FINISH_COMMANDS = ("LPUSH", "PEXPIRE", "JOIN", "CHORDSIZE")


def _finish_pair(command: tuple[Any, ...]) -> tuple[Any, ...]:
    """A command as the finish script takes it: (name, key, one argument)."""
    if command[0] == "CHORDSIZE":
        _, size_key, size, ttl = command
        return ("CHORDSIZE", size_key, f"{size}:{ttl}")
    return command


@dataclass(frozen=True)
class CancelResult:
    previous: RunStatus
    cancelled: list[str]
    running: list[str]


@dataclass(frozen=True)
class Records:
    """What must be written together with a step's outcome (pre-encoded; empty means nothing)."""

    event: str = ""
    audit: str = ""
    dead_letter: str = ""
    closing_audit: str = ""  # template for a run that fails with this outcome (summary tokens filled by Lua)
    closing_event: str = ""


def cap_result(result: Any, max_bytes: int) -> Any:
    """Keep stored results bounded: oversize results become a truncated preview."""
    text = json.dumps(result, default=str, separators=(",", ":"))
    if len(text) <= max_bytes:
        return result
    return {"truncated": True, "size_bytes": len(text), "preview": text[: max_bytes // 2]}


def outcome_json(
    finished_at: str,
    duration_ms: float | None,
    result: Any,
    max_bytes: int,
    error: ErrorInfo | None,
    queue: str | None,
    extra: dict[str, Any] | None,
) -> str:
    """A step's stored outcome (``r:<step>``), its result encoded once (``cap_result`` would encode it twice).

    The finish script reads ``duration_ms`` from the head of this text (``outcome_metrics``), so the first two
    fields keep ``json.dumps``' default separators."""
    if error is not None or extra:
        outcome = {
            "finished_at": finished_at,
            "duration_ms": duration_ms,
            "result": cap_result(result, max_bytes) if result is not None else None,
            "error": error.model_dump() if error else None,
            "queue": queue,
            **(extra or {}),
        }
        return json.dumps(outcome, default=str)
    text = "null" if result is None else json.dumps(result, default=str, separators=(",", ":"))
    if len(text) > max_bytes:
        text = json.dumps({"truncated": True, "size_bytes": len(text), "preview": text[: max_bytes // 2]})
    duration = "null" if duration_ms is None else repr(float(duration_ms))
    where = "null" if queue is None else encode_basestring_ascii(queue)
    return (
        f'{{"finished_at": {encode_basestring_ascii(finished_at)}, "duration_ms": {duration}, "result": {text}, '
        f'"error": null, "queue": {where}}}'
    )


# KEYS: the start key; ARGV: the run id it must still name
RELEASE_START_KEY = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RunStore:
    """Reads and moves run state; the only module that knows the run hash layout."""

    def __init__(
        self,
        client: RedisClient,
        *,
        ttl_seconds: int = 7 * 24 * 3600,
        result_max_bytes: int = 65536,
        events_max: int = 100_000,
        audit_max: int = 1_000_000,
        dlq_max: int = 10_000,
    ) -> None:
        self.redis = client
        self.events_max = events_max
        self.audit_max = audit_max
        self.dlq_max = dlq_max
        self.ttl = ttl_seconds
        self.result_max_bytes = result_max_bytes
        self._begin = client.register_script(run_scripts.BEGIN_STEP)
        self._finish = client.register_script(run_scripts.FINISH_STEP)
        self._cancel = client.register_script(run_scripts.CANCEL_RUN)
        self._release = client.register_script(run_scripts.RELEASE_STEP)
        self._redispatch = client.register_script(run_scripts.REDISPATCH)
        self._confirm = client.register_script(run_scripts.CONFIRM_OUTBOX)
        self._confirm_starts = client.register_script(run_scripts.CONFIRM_STARTS)
        self._fail_run = client.register_script(run_scripts.FAIL_RUN)
        self._transition = client.register_script(run_scripts.TRANSITION)
        self._prune_clock = run_listing.PruneClock()
        self._release_start_key = client.register_script(RELEASE_START_KEY)

    # -- creation -------------------------------------------------------------------------------------
    def create(
        self,
        run_id: str,
        plan: WorkflowPlan,
        *,
        created_by: str,
        triggers: TriggerTable | None = None,
        start: bool = False,
        canvas: dict[str, Any] | None = None,
        audit_bodies: list[str] | None = None,
        started_event: str = "",
        source: str = "api",
        created_at: str | None = None,
        confirm: list[tuple[str, str]] | None = None,
        publishes: list[tuple[Any, ...]] | None = None,
    ) -> RunView:
        """Record a run durably in one transaction (before anything is enqueued); returns it as written.

        ``start`` records it running; ``canvas`` (what must be enqueued) goes to the run's outbox in the same
        transaction, so a crash before the broker has it leaves an entry the reconciler applies. The audit
        entries and the started event are written once, by a script queued with EVAL (no NOSCRIPT inside MULTI).
        ``confirm``: ``(run id, entry)`` outbox entries of earlier starts whose canvases the broker took since the
        last write; they ride on this transaction instead of costing a round trip each (``outbox.PendingConfirms``).
        ``publishes``: the broker commands of the start (when the broker is this Redis), run last in this transaction,
        so the run is recorded and enqueued at once or not at all (``Outbox.capture_start``).
        """
        now = created_at or iso_now()
        epoch = time.time()
        meta = {
            "run_id": run_id,
            "template_id": plan.template_id,
            "name": plan.name,
            "priority": plan.priority.value,
            "parameters": plan.parameters,
            "created_by": created_by,
            "created_at": now,
            "source": source,
            "order": [s.step_id for s in plan.steps],
        }
        status = RunStatus.RUNNING if start else RunStatus.PENDING
        mapping: dict[str, Any] = {
            "status": status.value,
            "meta": json.dumps(meta),
            "total": len(plan.steps),
            "done": 0,
            "generation": 0,
            "touched": epoch,
            "ct": epoch,  # creation epoch: the score of the listing indexes the status scripts keep
            "tpl": plan.template_id or "",
        }
        if start:
            mapping["started_at"] = now
        for step in plan.steps:
            mapping[f"p:{step.step_id}"] = step.model_dump_json()
            mapping[f"st:{step.step_id}"] = StepStatus.PENDING.value
            if step.depends_on:
                mapping[f"dp:{step.step_id}"] = ",".join(step.depends_on)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.run_key(run_id), mapping=mapping)
        self._write_triggers(pipe, keys.run_triggers_key(run_id), triggers, plan.priority.broker_priority)
        run_listing.index_new(
            pipe,
            run_id,
            status.value,
            plan.template_id,
            epoch,
            cutoff=epoch - self.ttl - 86400,
            prune=self._prune_clock.due("", epoch),
            prune_template=bool(plan.template_id) and self._prune_clock.due(f"t:{plan.template_id}", epoch),
        )
        pipe.sadd(keys.ACTIVE_RUNS, run_id)
        if start:
            pipe.zadd(keys.RUNS_TOUCHED, {run_id: epoch})
        if canvas is not None:
            pipe.hset(keys.run_outbox_key(run_id), "start:0", json.dumps(canvas))
            pipe.zadd(keys.OUTBOX_INDEX, {run_id: epoch}, nx=True)
        if confirm:
            queue_script(pipe, run_scripts.CONFIRM_STARTS, *self._confirm_starts_args(confirm))
        if audit_bodies or started_event:
            queue_script(
                pipe,
                run_scripts.ANNOUNCE_RUN,
                [keys.run_key(run_id), keys.AUDIT_STREAM, keys.AUDIT_HEAD, keys.EVENTS_STREAM, keys.METRICS],
                [
                    self.audit_max,
                    self.events_max,
                    keys.EVENTS_CHANNEL,
                    started_event,
                    outcome_metrics.field(
                        outcome_metrics.RUNS_STARTED, *outcome_metrics.run_labels(plan.template_id, source)
                    ),
                    *(audit_bodies or []),
                ],
            )
        for command in publishes or ():
            for sent in chord_size_commands(command) if command[0] == "CHORDSIZE" else [command]:
                pipe.execute_command(*sent)
        execute_transaction(pipe)
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

    @staticmethod
    def _write_triggers(pipe: Any, key: str, triggers: TriggerTable | None, priority: int) -> None:
        """``wait:<t>`` counts down, ``idx:<step>`` lists the triggers a step releases, ``sig:<t>`` is the canvas
        spec (``spec_json``; empty for a one-step trigger): its steps' signatures are built when it fires, at
        priority ``prio``.
        Read straight from the table's columns: no record per trigger on the way."""
        pipe.delete(key)
        if not triggers:
            return
        mapping: dict[str, Any] = {"prio": priority}
        for trigger_id, waits, canvas in triggers.rows():
            mapping[f"wait:{trigger_id}"] = waits
            mapping[f"sig:{trigger_id}"] = canvas or ""
        for step_id, trigger_ids in triggers.index():
            mapping[f"idx:{step_id}"] = ",".join(trigger_ids)
        pipe.hset(key, mapping=mapping)

    def redispatch(
        self,
        run_id: str,
        *,
        mode: str,
        expected_generation: int,
        redo: list[str],
        canvas: dict[str, Any] | None,
        triggers: TriggerTable | None,
        audit_body: str,
        event: str,
        lease_ttl: float,
        priority: int = 0,
    ) -> tuple[str, str, str]:
        """Resume (``mode="resume"``) or repair (``"repair"``) as generation N+1, in one compare-and-set.

        Returns the script's verdict: ``("ok", new_generation, reset)``, ``("busy", step, owner)`` while a step of
        the old generation still runs on a live worker, ``("illegal", status, "")``, ``("moved", generation, "")``
        or ``("missing", "", "")``.
        """
        staged = keys.run_staged_triggers_key(run_id)
        pipe = self.redis.pipeline(transaction=False)
        self._write_triggers(pipe, staged, triggers, priority)
        pipe.expire(staged, 3600)
        pipe.execute()
        reply = self._redispatch(
            keys=[
                keys.run_key(run_id),
                keys.run_triggers_key(run_id),
                staged,
                keys.run_cancel_key(run_id),
                keys.ACTIVE_RUNS,
                keys.run_outbox_key(run_id),
                keys.OUTBOX_INDEX,
                keys.EVENTS_STREAM,
                keys.AUDIT_STREAM,
                keys.AUDIT_HEAD,
                keys.WORKERS,
                keys.LEASES,
                keys.RETRIES,
                keys.RUNS_TOUCHED,
                keys.METRICS,
            ],
            args=[
                mode,
                expected_generation,
                iso_now(),
                time.time(),
                lease_ttl,
                json.dumps(canvas) if canvas is not None else "",
                audit_body,
                event,
                self.events_max,
                keys.EVENTS_CHANNEL,
                self.audit_max,
                run_id,
                *redo,
            ],
        )
        if reply[0] != "ok":
            self.redis.delete(staged)
        return str(reply[0]), str(reply[1]), str(reply[2])

    # -- the outbox -----------------------------------------------------------------------------------
    def outbox(self, run_id: str) -> dict[str, str]:
        """Unconfirmed effects of this run: ``start:<gen>`` -> canvas JSON, ``fire:<gen>:<trigger>`` -> "1"."""
        entries: dict[str, str] = self.redis.hgetall(keys.run_outbox_key(run_id))
        return entries

    def trigger_canvases(self, run_id: str, trigger_ids: list[str]) -> dict[str, tuple[StoredCanvas, int]]:
        """What each trigger applies, in one round trip (see ``parse_trigger_canvases``), with the run's broker
        priority. Unknown triggers are left out."""
        if not trigger_ids:
            return {}
        triggers = keys.run_triggers_key(run_id)
        return self.parse_trigger_canvases(
            trigger_ids, self.redis.hmget(triggers, ["prio", *[f"sig:{t}" for t in trigger_ids]])
        )

    @staticmethod
    def parse_trigger_canvases(trigger_ids: list[str], raw: list[str | None]) -> dict[str, tuple[StoredCanvas, int]]:
        """``trigger_canvases`` from an HMGET of ``prio`` and each ``sig:<trigger>`` (read in a caller's pipeline).

        Per trigger: None for a one-step trigger (build its step's signature), the canvas spec of a multi-step one
        (build its steps' signatures), or a whole canvas in Celery's dict form, already prepared for the broker
        (what runs started by an earlier version stored)."""
        priority = int(raw[0] or 0)
        found: dict[str, tuple[StoredCanvas, int]] = {}
        for trigger_id, canvas in zip(trigger_ids, raw[1:], strict=True):
            if canvas is not None:
                found[trigger_id] = (_stored_canvas(canvas) if canvas else None, priority)
        return found

    def step_specs(self, run_id: str, step_ids: list[str]) -> dict[str, PlannedStep]:
        """The planned specs of some steps of a run (one round trip); unknown steps are left out."""
        if not step_ids:
            return {}
        return self.parse_step_specs(
            run_id, step_ids, self.redis.hmget(keys.run_key(run_id), [f"p:{s}" for s in step_ids])
        )

    @staticmethod
    def parse_step_specs(run_id: str, step_ids: list[str], raw: list[str | None]) -> dict[str, PlannedStep]:
        """``step_specs`` from an HMGET of each ``p:<step>`` (read in a caller's pipeline)."""
        return {sid: read_spec(spec, run_id, sid) for sid, spec in zip(step_ids, raw, strict=True) if spec}

    def confirm_outbox(self, run_id: str, entries: list[str]) -> int:
        """Remove entries that took effect; returns how many are left."""
        if not entries:
            return -1
        left = self._confirm(keys=[keys.run_outbox_key(run_id), keys.OUTBOX_INDEX], args=[run_id, *entries])
        return int(left)

    def confirm_starts(self, entries: list[tuple[str, str]]) -> None:
        """Remove ``(run id, entry)`` outbox entries of several runs that took effect (one round trip)."""
        if entries:
            self._confirm_starts(*self._confirm_starts_args(entries))

    @staticmethod
    def _confirm_starts_args(entries: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
        return (
            [keys.OUTBOX_INDEX, *[keys.run_outbox_key(run_id) for run_id, _ in entries]],
            [part for pair in entries for part in pair],
        )

    def outbox_due(self, older_than: float, limit: int = 100) -> list[str]:
        """Runs with outbox entries unconfirmed since before ``older_than`` (epoch)."""
        due: list[str] = self.redis.zrangebyscore(keys.OUTBOX_INDEX, "-inf", older_than, start=0, num=limit)
        return due

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
        elif to == RunStatus.RUNNING:
            self.redis.zadd(keys.RUNS_TOUCHED, {run_id: time.time()})
        return RunStatus(previous)

    def _expire(self, run_id: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.expire(keys.run_key(run_id), self.ttl)
        pipe.expire(keys.run_triggers_key(run_id), self.ttl)
        pipe.expire(keys.run_cancel_key(run_id), self.ttl)
        pipe.srem(keys.ACTIVE_RUNS, run_id)
        pipe.zrem(keys.RUNS_TOUCHED, run_id)
        pipe.execute()

    def cancel(self, run_id: str, *, actor: str, audit_template: str, event_template: str) -> CancelResult:
        """Cancel in one script: flag, status, waiting steps, audit entry and event; returns what was running."""
        verdict, previous, cancelled, running = self._cancel(
            keys=[
                keys.run_key(run_id),
                keys.run_cancel_key(run_id),
                keys.ACTIVE_RUNS,
                keys.EVENTS_STREAM,
                keys.AUDIT_STREAM,
                keys.AUDIT_HEAD,
                keys.RETRIES,
                keys.RUNS_TOUCHED,
                keys.run_triggers_key(run_id),
                keys.METRICS,
            ],
            args=[
                iso_now(),
                actor,
                audit_template,
                event_template,
                self.ttl,
                self.events_max,
                keys.EVENTS_CHANNEL,
                self.audit_max,
                run_id,
            ],
        )
        if verdict == "missing":
            raise WorkflowNotFoundError(f"Run '{run_id}' not found (unknown id or expired)", {"run_id": run_id})
        if verdict == "illegal":
            raise InvalidStateTransitionError(
                f"Run '{run_id}' is already {previous}; only pending or running runs can be cancelled",
                {"run_id": run_id, "status": previous},
            )
        return CancelResult(RunStatus(previous), json.loads(cancelled), json.loads(running))

    def fail_run(self, run_id: str, error: ErrorInfo, *, audit_template: str, event_template: str) -> bool:
        """Fail a running run with its closing records (summary tokens filled in); False if it was not running."""
        verdict = self._fail_run(
            keys=[
                keys.run_key(run_id),
                keys.ACTIVE_RUNS,
                keys.EVENTS_STREAM,
                keys.AUDIT_STREAM,
                keys.AUDIT_HEAD,
                keys.RUNS_TOUCHED,
                keys.run_triggers_key(run_id),
                keys.METRICS,
            ],
            args=[
                iso_now(),
                error.model_dump_json(),
                audit_template,
                event_template,
                self.ttl,
                self.events_max,
                keys.EVENTS_CHANNEL,
                self.audit_max,
                run_id,
            ],
        )[0]
        return str(verdict) == "ok"

    def release_step(
        self,
        run_id: str,
        step_id: str,
        *,
        expected_owner: str = "",
        status: StepStatus = StepStatus.RUNNING,
        outcome: dict[str, Any] | None = None,
        event: str = "",
    ) -> tuple[str, str]:
        """Drop a running step's lease (optionally only from ``expected_owner``), optionally ending it as
        ``status``. Returns ``("ok", old_owner)``, ``("moved", owner)`` or ``("skip", status)``."""
        verdict, detail = self._release(
            keys=[keys.run_key(run_id), keys.LEASES, keys.EVENTS_STREAM, keys.METRICS],
            args=[
                step_id,
                expected_owner,
                status.value,
                json.dumps(outcome, default=str) if outcome is not None else "",
                run_id,
                event,
                self.events_max,
                keys.EVENTS_CHANNEL,
            ],
        )
        return str(verdict), str(detail)

    # -- worker side ----------------------------------------------------------------------------------
    def begin_step(self, run_id: str, step_id: str, started_event: str = "", **options: Any) -> BeginResult:
        """Start a step if its run is running and nobody alive holds it; takes the lease, emits the event.

        ``options``: ``generation``, ``lease``, ``deadline``, ``lease_ttl``, ``max_deliveries``, ``takeover``
        (see ``_begin_call``)."""
        script_keys, args = self._begin_call(run_id, step_id, started_event, **options)
        return self._begun(self._begin(keys=script_keys, args=args), run_id, step_id)

    def send_begin_step(
        self, run_id: str, step_id: str, started_event: str = "", **options: Any
    ) -> Callable[[], BeginResult]:
        """``begin_step`` sent now; the returned function reads its verdict (once). The worker builds the
        step's next chain link in between, while Redis runs the script (``runtime.deferred``)."""
        script_keys, args = self._begin_call(run_id, step_id, started_event, **options)
        reply = DeferredScript(self.redis, self._begin, script_keys, args)
        return lambda: self._begun(reply.result(), run_id, step_id)

    def _begin_call(
        self,
        run_id: str,
        step_id: str,
        started_event: str,
        *,
        generation: int = 0,
        lease: Lease | None = None,
        deadline: float | None = None,
        lease_ttl: float = 10.0,
        max_deliveries: int = 3,
        takeover: str = "",
    ) -> tuple[list[str], list[Any]]:
        lease = lease or Lease("local", 0)
        now = time.time()
        script_keys = [
            keys.run_key(run_id),
            keys.run_cancel_key(run_id),
            keys.EVENTS_STREAM,
            keys.WORKERS,
            keys.worker_leases_key(lease.instance),
            keys.LEASES,
            keys.RETRIES,
            keys.run_outbox_key(run_id),
            keys.RUNS_TOUCHED,
        ]
        args = [
            step_id,
            iso_now(),
            started_event,
            self.events_max,
            keys.EVENTS_CHANNEL,
            generation,
            lease.token,
            now,
            lease_ttl,
            max_deliveries,
            lease.instance,
            deadline if deadline is not None else now + 24 * 3600,
            run_id,
            takeover,
        ]
        return script_keys, args

    @staticmethod
    def _begun(reply: Any, run_id: str, step_id: str) -> BeginResult:
        verdict = str(reply[0])
        spec = read_spec(reply[1], run_id, step_id) if reply[1] else None
        return BeginResult(verdict, spec, int(reply[2] or 0), str(reply[3]), reply[4] not in ("0", 0))

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
        records: Records | None = None,
        queue: str | None = None,
        generation: int = 0,
        lease: Lease | None = None,
        retry_at: float | None = None,
        actor: str = "worker",
        extra: dict[str, Any] | None = None,
        publishes: list[tuple[Any, ...]] | None = None,
    ) -> FinishResult:
        """Record a step's outcome and everything that follows from it in one script.

        ``effect``: ``done`` (counts toward completion, releases gated joins into the outbox), ``stop`` (fails
        the run), ``retry`` (a failed attempt that runs again at ``retry_at``), ``none`` (only records).
        ``records`` are written atomically with it; a run that completes gets its closing audit entry and event
        from the script itself, a run that fails gets them from ``records.closing_*``.
        ``publishes``: broker commands (``("LPUSH", key, payload)``, ``("PEXPIRE", key, ms)``) of the step's next
        chain link, run by the script only when it records this step completed in a running run of this
        generation; a repeat of the script (a retry after a lost reply) returns early and pushes nothing again.
        A ``("JOIN", size key, "<group>\\n<body json>")`` counts the step's part of a chord instead
        (``workers.chord_handoff``); the part that completes it writes ``join:<generation>:<group>`` into the
        outbox (in ``FinishResult.joined``).
        """
        records = records or Records(event=event)
        pushes = [_finish_pair(command) for command in publishes or () if command[0] in FINISH_COMMANDS]
        if len(pushes) != len(publishes or ()):
            raise ValueError(
                f"only {', '.join(FINISH_COMMANDS)} may ride on a finish: {[c[0] for c in publishes or ()]}"
            )
        lease = lease or Lease("local", 0)
        now_iso = iso_now()
        now = time.time()
        duration = None if started is None else round((now - started) * 1000, 3)
        outcome = outcome_json(now_iso, duration, result, self.result_max_bytes, error, queue, extra)
        reply = run_script(
            self.redis,
            self._finish,
            [
                keys.run_key(run_id),
                keys.run_triggers_key(run_id),
                keys.ACTIVE_RUNS,
                keys.EVENTS_STREAM,
                keys.worker_leases_key(lease.instance),
                keys.LEASES,
                keys.AUDIT_STREAM,
                keys.AUDIT_HEAD,
                keys.DLQ_STREAM,
                keys.run_outbox_key(run_id),
                keys.OUTBOX_INDEX,
                keys.RETRIES,
                keys.RUNS_TOUCHED,
                *[command[1] for command in pushes],
                keys.METRICS,
            ],
            [
                step_id,
                status.value,
                outcome,
                effect,
                now_iso,
                run_error.model_dump_json() if run_error else "",
                self.ttl,
                run_id,
                records.event,
                self.events_max,
                keys.EVENTS_CHANNEL,
                records.audit,
                records.dead_letter,
                records.closing_audit,
                records.closing_event,
                self.audit_max,
                self.dlq_max,
                now,
                generation,
                retry_at if retry_at is not None else now,
                actor,
                f"{run_id}:{generation}:{step_id}:{now}",
                *[part for command in pushes for part in (command[0], command[2])],
            ],
        )
        verdict = str(reply[0])
        if verdict != "ok":
            return FinishResult(True, None, verdict=verdict)
        ended = RunStatus(reply[1]) if reply[1] else None
        summary = json.loads(reply[2]) if reply[2] else {}
        released = [str(t) for t in reply[3:]]
        fired = [t for t in released if ":" not in t]  # step ids never hold ':'; outbox entry names do
        return FinishResult(False, ended, fired, summary, joined=[t for t in released if ":" in t])

    # -- start idempotency keys -----------------------------------------------------------------------
    def run_for_start_key(self, actor: str, key: str) -> tuple[RunView, str] | None:
        """The run this caller already started with this idempotency key, with the fingerprint of the request
        that started it ('' for a key an earlier version stored without one); None: none, or it expired."""
        value = self.redis.get(keys.start_idempotency_key(actor, key))
        if not value:
            return None
        run_id, _, fingerprint = value.partition("|")
        if not self.exists(run_id):
            return None
        return self.get(run_id), fingerprint

    def claim_start_key(self, actor: str, key: str, run_id: str, fingerprint: str) -> bool:
        """Bind the caller's key to the run about to start, and to the request's fingerprint, for as long as runs
        are kept; False when taken."""
        held = f"{run_id}|{fingerprint}"
        return bool(self.redis.set(keys.start_idempotency_key(actor, key), held, nx=True, ex=self.ttl))

    def release_start_key(self, actor: str, key: str, run_id: str, fingerprint: str) -> None:
        """Give the key back after a start that recorded no run (denied, invalid): a retry must not be refused.

        Only while it still names ``run_id``: a key another start holds now is not this start's to release."""
        self._release_start_key(keys=[keys.start_idempotency_key(actor, key)], args=[f"{run_id}|{fingerprint}"])

    # -- reading --------------------------------------------------------------------------------------
    def exists(self, run_id: str) -> bool:
        return bool(self.redis.exists(keys.run_key(run_id)))

    def raw(self, run_id: str) -> dict[str, str]:
        data: dict[str, str] = self.redis.hgetall(keys.run_key(run_id))
        if not data:
            raise WorkflowNotFoundError(f"Run '{run_id}' not found (unknown id or expired)", {"run_id": run_id})
        return data

    def get(self, run_id: str) -> RunView:
        return view_from_hash(self.raw(run_id), run_id)

    def plan(self, run_id: str) -> WorkflowPlan:
        data = self.raw(run_id)
        meta = read_meta(data, run_id)
        steps = [read_spec(data[f"p:{sid}"], run_id, sid) for sid in meta["order"]]
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
        self,
        *,
        status: str | None = None,
        template_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[RunView], int]:
        """Newest first, created in ``[since, until]`` (default: any time), one page read from the listing indexes."""
        return run_listing.list_runs(
            self.redis, status=status, template_id=template_id, since=since, until=until, offset=offset, limit=limit
        )

    def active_count(self) -> int:
        return int(self.redis.scard(keys.ACTIVE_RUNS))


def _stored_canvas(text: str) -> CanvasSpec | dict[str, Any]:
    """A stored multi-step trigger canvas: its spec, or a whole prepared canvas (``"task"``: an earlier version's)."""
    parsed = json.loads(text)
    if isinstance(parsed, dict) and "task" in parsed:
        return parsed
    return spec_from_plain(parsed)
