"""The reconciler: every few seconds, compare run state with reality and repair what a crash left behind.

Why: an accepted run must finish or fail visibly whatever crashes. Workers and front doors write state and
outbox entries atomically, but a process can die between any two steps of a plan; this loop finds every such
case from *state* (never from events) and repairs it, auditing each repair as actor ``reconciler``:

- a worker instance that stopped beating: each step it held is put back on its queue (its exact message,
  restored from the broker), or, if that message is gone, its run is re-dispatched;
- a step past its hard deadline (its worker froze, or is blocked outside Python): failed with ORCH_7002 and
  its failure policy applied;
- a retry whose message never came back (its holder died during the countdown): restored or re-dispatched;
- outbox entries nobody confirmed (a crash between a state change and the broker): applied;
- a run that made no progress for ``stall_seconds`` with nothing queued or running for it (a lost chord
  body, a lost message): re-dispatched as a new generation, at most ``max_repairs`` times, then failed with
  ORCH_3007 saying why.

One process acts at a time (``leader.LeaderLock``); ``itom-orch up`` and ``api`` run the loop in a thread,
``itom-orch reconcile`` runs it alone.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from celery import Celery
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator import keys
from orchestrator.dispatch.dispatcher import Dispatcher
from orchestrator.errors import RunStalledError, TaskTimeoutError, WorkflowNotFoundError
from orchestrator.models.common import FailurePolicy, RunStatus, StepStatus, iso_now
from orchestrator.models.events import Event
from orchestrator.models.run import ErrorInfo, RunView
from orchestrator.models.workflow import PlannedStep
from orchestrator.runtime.broker import BrokerProbe
from orchestrator.runtime.redis_client import RedisClient
from orchestrator.settings import ReliabilitySettings
from orchestrator.state import events as ev
from orchestrator.state import outcome_metrics
from orchestrator.state import step_records as records
from orchestrator.state.audit import AuditLog, audit_body
from orchestrator.state.events import EventBus, encode
from orchestrator.state.runs import Lease, RunStore

log = logging.getLogger(__name__)

ACTOR = "reconciler"
BATCH = 200
ANCHOR_EVERY_SECONDS = 60.0


class Reconciler:
    def __init__(
        self,
        *,
        redis: RedisClient,
        runs: RunStore,
        dispatcher: Dispatcher,
        audit: AuditLog,
        events: EventBus,
        app: Celery,
        reliability: ReliabilitySettings,
        anchor: Callable[[], object] | None = None,
    ) -> None:
        self.redis = redis
        self.anchor = anchor
        self._anchored = 0.0
        self.runs = runs
        self.dispatcher = dispatcher
        self.audit = audit
        self.events = events
        self.probe = BrokerProbe(app)
        self.reliability = reliability

    # -- one pass ---------------------------------------------------------------------------------------
    def tick(self) -> dict[str, int]:
        """One reconciling pass; returns how many repairs of each kind it made."""
        now = time.time()
        counts: Counter[str] = Counter()
        actions: list[tuple[str, Callable[[float], int]]] = [
            ("lost_workers", self.lost_workers),
            ("deadlines", self.deadlines),
            ("retries", self.overdue_retries),
            ("outbox", self.outbox),
            ("repairs", self.repairs),
            ("stalled", self.stalled),
        ]
        for name, action in actions:
            try:
                counts[name] += action(now)
            except Exception:  # one failing kind of repair must not stop the others
                log.exception("reconciler: %s failed", name)
        done = {name: n for name, n in counts.items() if n}
        if done:
            pipe = self.redis.pipeline(transaction=False)
            for name, n in done.items():
                outcome_metrics.count_to(pipe, outcome_metrics.RECONCILER, name, by=n)
            pipe.execute()
        return done

    # -- workers that stopped beating ------------------------------------------------------------------
    def lost_workers(self, now: float) -> int:
        repaired = 0
        for instance in self.redis.zrangebyscore(keys.WORKERS, "-inf", now - self.reliability.lease_ttl_seconds):
            leases = sorted(self.redis.smembers(keys.worker_leases_key(instance)))
            recovered = [member for member in leases if self._recover_lease(instance, member)]
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(keys.worker_leases_key(instance))
            pipe.zrem(keys.WORKERS, instance)
            pipe.delete(keys.worker_key(instance))
            pipe.execute()
            if leases:
                details = {"instance": instance, "leases": len(leases), "recovered": recovered}
                self.audit.append("worker_lost", ACTOR, instance, details)
                self.events.emit(ev.WORKER_LOST, details, source=ACTOR)
            repaired += len(recovered)
        return repaired

    def _recover_lease(self, instance: str, member: str) -> bool:
        run_id, step_id, generation = keys.parse_lease_member(member)
        status, owner, current = self.redis.hmget(
            keys.run_key(run_id), [f"st:{step_id}", f"ow:{step_id}", "generation"]
        )
        if current is None or int(current) != generation or status != StepStatus.RUNNING.value:
            return False
        if not owner or Lease.parse(owner).instance != instance:
            return False
        tag = Lease.parse(owner).delivery_tag
        if not tag:
            located = self.probe.locate(keys.step_task_id(run_id, step_id, generation))
            tag = located.tag if located is not None else ""
        restored = self.probe.restore(tag)
        how = "message restored to its queue" if restored else "message lost"
        event = _event(ev.STEP_REDELIVERED, run_id, {"step_id": step_id, "from": instance, "how": how})
        verdict, _ = self.runs.release_step(run_id, step_id, expected_owner=owner, event=event)
        if verdict != "ok":
            return False
        if not restored and self.probe.redis_transport:
            self.mark_repair(run_id)
        self.audit.append(
            "step_redelivered",
            ACTOR,
            f"{run_id}/{step_id}",
            {"instance": instance, "how": how, "generation": generation},
        )
        return True

    # -- steps past their hard deadline ----------------------------------------------------------------
    def deadlines(self, now: float) -> int:
        due = self.redis.zrangebyscore(keys.LEASES, "-inf", now - self.reliability.deadline_grace_seconds, 0, BATCH)
        failed = 0
        for member in due:
            run_id, step_id, generation = keys.parse_lease_member(member)
            fields = self.redis.hmget(
                keys.run_key(run_id), [f"st:{step_id}", f"ow:{step_id}", "generation", f"p:{step_id}", f"at:{step_id}"]
            )
            status, owner, current, spec_raw, attempts = fields
            if current is None or int(current) != generation or status != "running" or not spec_raw:
                self.redis.zrem(keys.LEASES, member)
                continue
            spec = PlannedStep.model_validate_json(spec_raw)
            self.dispatcher.signal_step(Lease.parse(owner) if owner else None, "SIGKILL")
            self._time_out(run_id, spec, generation, owner or "", int(attempts or 1))
            self.redis.zrem(keys.LEASES, member)
            failed += 1
        return failed

    def _time_out(self, run_id: str, spec: PlannedStep, generation: int, owner: str, attempt: int) -> None:
        error = TaskTimeoutError(
            f"Step '{spec.step_id}' ran past its hard deadline ({spec.timeout_seconds:g}s plus grace) and its worker "
            "never reported; the reconciler failed it",
            {"step_id": spec.step_id, "by": ACTOR},
        )
        info = ErrorInfo(**error.to_dict())
        lease = Lease.parse(owner) if owner else Lease(ACTOR, 0)
        common: dict[str, Any] = {"generation": generation, "lease": lease, "actor": ACTOR, "started": None}
        retry = spec.on_failure == FailurePolicy.RETRY and spec.idempotent and attempt <= spec.max_retries
        if retry:
            recs = records.retrying(ACTOR, run_id, spec, attempt, 0.0, error)
            self.runs.finish_step(
                run_id, spec.step_id, StepStatus.RETRYING, effect="retry", error=info, records=recs, **common
            )
            self.mark_repair(run_id)
        else:
            skip = spec.on_failure == FailurePolicy.SKIP
            run_error = None if skip else records.run_error_for(spec, error)
            recs = records.failed(ACTOR, run_id, spec, attempt, error, run_error=run_error, dead_letter_reason=None)
            finish = self.runs.finish_step(
                run_id,
                spec.step_id,
                StepStatus.FAILED,
                effect="done" if skip else "stop",
                error=info,
                run_error=run_error,
                records=recs,
                **common,
            )
            if finish.fired:  # a skip-policy step's dependents start from triggers (nothing follows it in Celery)
                self.dispatcher.drain(run_id)
        self.audit.append(
            "step_timed_out", ACTOR, f"{run_id}/{spec.step_id}", {"generation": generation, "owner": owner}
        )

    # -- retries whose message never came back ---------------------------------------------------------
    def overdue_retries(self, now: float) -> int:
        grace = self.reliability.deadline_grace_seconds
        repaired = 0
        for member in self.redis.zrangebyscore(keys.RETRIES, "-inf", now - grace, 0, BATCH):
            run_id, step_id, generation = keys.parse_lease_member(member)
            status, current, agent = self._step_fields(run_id, step_id)
            if current != generation or status != StepStatus.RETRYING.value:
                self.redis.zrem(keys.RETRIES, member)
                continue
            located = self.probe.locate(keys.step_task_id(run_id, step_id, generation))
            if located is not None and located.age_seconds > grace and self.probe.restore(located.tag):
                self.audit.append("step_redelivered", ACTOR, f"{run_id}/{step_id}", {"how": "overdue retry restored"})
                repaired += 1
            elif located is None and not self.probe.queue_depth(keys.agent_queue(agent)):
                self.mark_repair(run_id)
                self.redis.zrem(keys.RETRIES, member)
                repaired += 1
                continue
            self.redis.zadd(keys.RETRIES, {member: now})  # look again after another grace period
        return repaired

    def _step_fields(self, run_id: str, step_id: str) -> tuple[str | None, int | None, str]:
        status, current, spec_raw = self.redis.hmget(
            keys.run_key(run_id), [f"st:{step_id}", "generation", f"p:{step_id}"]
        )
        agent = json.loads(spec_raw)["agent_id"] if spec_raw else ""
        return status, int(current) if current is not None else None, agent

    # -- unconfirmed outbox entries --------------------------------------------------------------------
    def outbox(self, now: float) -> int:
        applied = 0
        self.dispatcher.outbox.pending.flush()  # what this process published is not unconfirmed work
        for run_id in self.runs.outbox_due(now - self.reliability.outbox_grace_seconds, BATCH):
            try:
                done = self.dispatcher.outbox.drain(run_id)
            except Exception:
                log.warning("reconciler: outbox of %s not drained (broker unavailable?)", run_id, exc_info=True)
                continue
            if done:
                self.audit.append("outbox_drained", ACTOR, run_id, {"entries": done})
                applied += len(done)
        return applied

    # -- re-dispatch of runs whose messages were lost --------------------------------------------------
    def mark_repair(self, run_id: str) -> None:
        self.redis.zadd(keys.REPAIRS, {run_id: time.time()}, nx=True)

    def repairs(self, now: float) -> int:
        repaired = 0
        for run_id in self.redis.zrange(keys.REPAIRS, 0, BATCH - 1):
            try:
                view = self.runs.get(run_id)
            except WorkflowNotFoundError:
                self.redis.zrem(keys.REPAIRS, run_id)
                continue
            if view.status != RunStatus.RUNNING:
                self.redis.zrem(keys.REPAIRS, run_id)
                continue
            if view.repairs >= self.reliability.max_repairs:
                self.fail(view, f"its work was lost and re-dispatched {view.repairs} times without finishing")
                self.redis.zrem(keys.REPAIRS, run_id)
                continue
            verdict, _detail = self.dispatcher.repair(run_id, actor=ACTOR, reason="its messages were lost")
            if verdict == "busy":
                continue  # a step of the old generation still runs on a live worker; try again next pass
            self.redis.zrem(keys.REPAIRS, run_id)
            repaired += verdict == "ok"
        return repaired

    # -- runs that stopped making progress -------------------------------------------------------------
    def stalled(self, now: float) -> int:
        acted = 0
        for run_id in self.redis.zrangebyscore(
            keys.RUNS_TOUCHED, "-inf", now - self.reliability.stall_seconds, 0, BATCH
        ):
            try:
                view = self.runs.get(run_id)
            except WorkflowNotFoundError:
                self.redis.zrem(keys.RUNS_TOUCHED, run_id)
                continue
            if view.status != RunStatus.RUNNING:
                self.redis.zrem(keys.RUNS_TOUCHED, run_id)
                continue
            verdict = self._diagnose(view)
            self.redis.zadd(keys.RUNS_TOUCHED, {run_id: now}, xx=True)
            if verdict.startswith("fail:"):
                self.fail(view, verdict[5:])
            elif verdict == "repair":
                self.mark_repair(run_id)
            acted += verdict != "waiting"
        return acted

    def _diagnose(self, view: RunView) -> str:
        """``waiting`` (something is running, retrying or queued), ``restored``, ``drained``, ``repair`` or
        ``fail:<why>``."""
        if any(s.status in (StepStatus.RUNNING, StepStatus.RETRYING) for s in view.steps):
            return "waiting"
        if self.runs.outbox(view.run_id):
            self.dispatcher.drain(view.run_id)
            return "drained"
        done = {s.step_id for s in view.steps if s.status.is_done}
        pending = [s for s in view.steps if s.status == StepStatus.PENDING]
        ready = [s for s in pending if set(s.depends_on) <= done]
        if not ready:
            blocked = ", ".join(s.step_id for s in pending) or "none"
            return f"fail:no step can run any more (pending: {blocked}; none is ready and none is running)"
        for step in ready:
            located = self.probe.locate(keys.step_task_id(view.run_id, step.step_id, view.generation))
            if located is not None:
                restored = self.probe.restore(located.tag)
                self.audit.append(
                    "step_redelivered", ACTOR, f"{view.run_id}/{step.step_id}", {"how": "stalled message restored"}
                )
                return "restored" if restored else "waiting"
            if self.probe.queue_depth(keys.agent_queue(step.agent_id)):
                return "waiting"
        return "repair"

    def fail(self, view: RunView, why: str) -> None:
        """End a run that can no longer progress, with its closing audit entry and event."""
        error = RunStalledError(f"Run '{view.run_id}' cannot progress: {why}", {"run_id": view.run_id})
        info = ErrorInfo(**error.to_dict())
        closing = {"status": "failed", **records.SUMMARY_TOKENS, "failed_step": None, "error": info.model_dump()}
        ended = self.runs.fail_run(
            view.run_id,
            info,
            audit_template=audit_body("workflow_failed", ACTOR, view.run_id, closing, result="failure"),
            event_template=records.event(ACTOR, ev.WORKFLOW_FAILED, view.run_id, closing),
        )
        if ended:
            log.warning("reconciler failed run %s: %s", view.run_id, why)

    # -- the loop --------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, holder: str = "") -> None:
        """Reconcile every ``reconcile_interval_seconds`` while this process holds the leader lock."""
        from orchestrator.runtime.leader import LeaderLock

        interval = self.reliability.reconcile_interval_seconds
        lock = LeaderLock(self.redis, keys.RECONCILER_LEADER, ttl_seconds=max(3 * interval, 5.0), holder=holder or None)
        try:
            while not stop.is_set():
                try:
                    if lock.acquire():
                        counts = self.tick()
                        self._keep_anchor()
                        beat = {"leader": lock.token, "at": iso_now(), "ts": time.time(), "repairs": counts}
                        self.redis.set(keys.RECONCILER_BEAT, json.dumps(beat), ex=max(3, int(3 * interval)))
                        if counts:
                            log.info("reconciler repaired %s", counts)
                except (RedisConnectionError, RedisTimeoutError) as exc:  # Redis away: one line a pass, try again
                    log.warning("reconciler pass skipped: Redis did not answer (%s: %s)", type(exc).__name__, exc)
                except Exception:
                    log.warning("reconciler pass failed", exc_info=True)
                stop.wait(interval)
        finally:
            try:
                lock.release()
            except Exception:
                log.debug("reconciler lock not released", exc_info=True)

    def _keep_anchor(self) -> None:
        """Every ``ANCHOR_EVERY_SECONDS``, record the audit head outside Redis (see ``audit_anchor``)."""
        if self.anchor is None or time.monotonic() - self._anchored < ANCHOR_EVERY_SECONDS:
            return
        self._anchored = time.monotonic()
        try:
            self.anchor()
        except Exception:  # a read-only data dir must not stop the repairs
            log.warning("reconciler: audit anchor not written", exc_info=True)

    def start(self, holder: str = "") -> tuple[threading.Thread, threading.Event]:
        """Run the loop in a daemon thread; set the returned event to stop it."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop, holder), name="itom-reconciler", daemon=True)
        thread.start()
        return thread, stop


def _event(event_type: str, run_id: str, payload: dict[str, Any]) -> str:
    return encode(Event(event_type=event_type, correlation_id=run_id, payload=payload, source=ACTOR))
