"""The Orchestrator facade: the one service both front doors (HTTP, MCP) and the CLI call.

It coordinates the pure layers (routing, policies, planning, compiling) and the Redis-backed stores, and
owns no transport detail: front doors parse input, call one method, render the result.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import __version__, bounds, keys
from orchestrator.catalog import get_action, get_agent, validate_params
from orchestrator.errors import (
    IdempotencyKeyReusedError,
    InputInvalidError,
    RedisUnavailableError,
    ShuttingDownError,
    TaskInvalidError,
    WorkflowDefinitionInvalidError,
    WorkflowTimeoutError,
)
from orchestrator.models.chat import ChatRequest, ChatResponse, ClarificationResponse, ClarifyRequest
from orchestrator.models.common import Priority, as_utc, iso_now
from orchestrator.models.events import AuditEntry, Event
from orchestrator.models.run import RunView
from orchestrator.models.workflow import Template, WorkflowDefinition, WorkflowStep
from orchestrator.runtime import redis_client
from orchestrator.runtime.redis_client import RedisClient, get_redis
from orchestrator.security.principals import Principal, require
from orchestrator.settings import AGENT_IDS, Settings
from orchestrator.state import agent_views, audit_anchor
from orchestrator.state import events as ev
from orchestrator.state.audit import AuditLog
from orchestrator.state.deadletters import DeadLetters
from orchestrator.state.event_hub import EventHub
from orchestrator.state.events import EventBus
from orchestrator.state.runs import RunStore
from orchestrator.state.templates import TemplateRegistry
from orchestrator.state.worklog import build_worklog
from orchestrator.workflows.dag import plan as plan_workflow

if TYPE_CHECKING:
    from celery import Celery

    from orchestrator.chat.desk import ChatDesk
    from orchestrator.chat.rules_file import RoutingRulesFile
    from orchestrator.dispatch.dispatcher import Dispatcher
    from orchestrator.dispatch.messaging import Messenger
    from orchestrator.dispatch.reconciler import Reconciler
    from orchestrator.models.schedule import ScheduleSpec, ScheduleView
    from orchestrator.schedules.manager import Scheduling
    from orchestrator.security.policy import PolicyGate
    from orchestrator.state.agents import AgentDirectory

_STARTED = time.time()


RUN_CLOSING_EVENTS = frozenset({ev.WORKFLOW_COMPLETED, ev.WORKFLOW_FAILED, ev.WORKFLOW_CANCELLED})
CLOSING_GRACE_SECONDS = 1.0


DEFAULT_WAIT_SECONDS = 300.0
WAIT_GRACE_SECONDS = 10.0


def wait_budget(step_timeout_seconds: float | None) -> float:
    """How long a front door waits for a one-step run: its step limit plus queueing grace, else 300 s."""
    if step_timeout_seconds:
        return step_timeout_seconds + WAIT_GRACE_SECONDS
    return DEFAULT_WAIT_SECONDS


def _settled(view: RunView) -> bool:
    """Terminal long enough that its closing event, if any, has been published."""
    if view.finished_at is None:
        return True
    finished = datetime.fromisoformat(view.finished_at).timestamp()
    return time.time() - finished > CLOSING_GRACE_SECONDS


def _priority(value: str | Priority) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        raise InputInvalidError(
            f"Invalid priority '{value}'. Use one of: {', '.join(p.value for p in Priority)}", {"priority": value}
        ) from None


def _window(since: datetime | None, until: datetime | None) -> None:
    """ORCH_8003 for a time window that ends before it starts: it would match nothing, and read as "none there"."""
    if since is None or until is None:
        return
    if as_utc(since) > as_utc(until):
        raise InputInvalidError(
            f"'since' ({since.isoformat()}) is after 'until' ({until.isoformat()}); swap them",
            {"since": since.isoformat(), "until": until.isoformat()},
        )


def start_fingerprint(
    template_id: str | None, definition: WorkflowDefinition | None, parameters: dict[str, Any], priority: Priority
) -> str:
    """What a start asked for, hashed: a repeat of an idempotency key must ask for the same thing.

    A definition counts by its validated form (a dict and the model it validates to are one request); a template
    by its id, so a retry still finds its run after the template's file was edited."""
    request = {
        "template_id": template_id,
        "definition": None if definition is None else definition.model_dump(mode="json"),
        "parameters": parameters,
        "priority": priority.value,
    }
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Orchestrator:
    """Build once per process; every method is safe to call from any thread."""

    def __init__(self, settings: Settings, *, redis: RedisClient | None = None, app: Celery | None = None) -> None:
        self.settings = settings
        redis_client.configure(
            socket_timeout=settings.redis.socket_timeout,
            connect_timeout=settings.redis.connect_timeout,
            retries=settings.redis.retries,
        )
        self.redis = redis if redis is not None else get_redis(settings.redis_url)
        self.probe = redis if redis is not None else redis_client.probe_client(settings.redis_url)
        self._app = app
        retention = settings.retention
        self.runs = RunStore(
            self.redis,
            ttl_seconds=retention.run_ttl_seconds,
            result_max_bytes=retention.result_max_bytes,
            events_max=retention.events_max,
            audit_max=retention.audit_max,
            dlq_max=retention.dlq_max,
        )
        self.events = EventBus(self.redis, max_len=retention.events_max, url=settings.redis_url)
        self.audit = AuditLog(self.redis, max_entries=retention.audit_max)
        self.templates = TemplateRegistry(settings.user_templates_dir)
        self.deadletters = DeadLetters(self.redis)
        self.closing = threading.Event()  # set on shutdown: waits end at once
        bounds.set_echo_chars(settings.frontdoor.error_echo_chars)

    # -- parts built on first use: a client command that only reads runs never imports Celery or the chat desk --
    @cached_property
    def app(self) -> Celery:
        from orchestrator.runtime.celery_app import create_celery

        return self._app or create_celery(self.settings, client=True)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        from orchestrator.dispatch.dispatcher import Dispatcher

        return Dispatcher(self.app, self.runs, self.events, self.audit, self.gate, self.settings.reliability)

    @cached_property
    def reconciler(self) -> Reconciler:
        from orchestrator.dispatch.reconciler import Reconciler

        return Reconciler(
            redis=self.redis,
            runs=self.runs,
            dispatcher=self.dispatcher,
            audit=self.audit,
            events=self.events,
            app=self.app,
            reliability=self.settings.reliability,
            anchor=lambda: audit_anchor.save_now(self.audit, self.settings.redis_url, self.anchor_path),
        )

    @cached_property
    def agents(self) -> AgentDirectory:
        from orchestrator.state.agents import AgentDirectory

        return AgentDirectory(self.redis, self.app, self.settings)

    @cached_property
    def routing_rules(self) -> RoutingRulesFile:
        from orchestrator.chat.rules_file import RoutingRulesFile

        return RoutingRulesFile(self.settings.data_dir)

    @cached_property
    def messenger(self) -> Messenger:
        from orchestrator.dispatch.messaging import Messenger

        return Messenger(self.redis, self.app, self.events, self.audit)

    @cached_property
    def chatdesk(self) -> ChatDesk:
        from orchestrator.chat.desk import ChatDesk

        return ChatDesk(
            redis=self.redis,
            settings=self.settings,
            agents=self.agents,
            routing_rules=self.routing_rules,
            audit=self.audit,
            events=self.events,
            start_and_wait=self._start_and_wait,
            health=self.health,
        )

    @cached_property
    def gate(self) -> PolicyGate:
        """The role policy table, loaded on first use: a client command that starts nothing (``status``, ``runs``)
        never pays for loading it; servers load it at start (``warm``), so a bad policy file still fails at once."""
        from orchestrator.security.policy import PolicyGate, load_table

        return PolicyGate(load_table(self.settings))

    def warm(self) -> Orchestrator:
        """Build every lazy part now: a server does it once at start, before its threads could race to."""
        for part in ("gate", "app", "dispatcher", "reconciler", "agents", "routing_rules", "messenger", "chatdesk"):
            getattr(self, part)
        return self

    # -- the reconciler, for the commands that run it ---------------------------------------------------------
    def start_reconciler(self, holder: str) -> tuple[threading.Thread, threading.Event]:
        """Reconcile in a background thread while this process holds the leader lock; set the event to stop."""
        return self.reconciler.start(holder=holder)

    def run_reconciler(self, stop: threading.Event, holder: str) -> None:
        """Reconcile in this thread until ``stop`` is set (``itom-orch reconcile``)."""
        self.reconciler.run(stop, holder=holder)

    def reconcile_once(self) -> dict[str, int]:
        """One pass; what it repaired, by kind."""
        return self.reconciler.tick()

    # -- front-door plumbing: the process's event hub, waits, shutdown ----------------------------------------
    @cached_property
    def hub(self) -> EventHub:
        """The process's one event reader for live streams and waits (started on first use, in the loop)."""
        door = self.settings.frontdoor
        return EventHub(
            self.settings.redis_url,
            block_ms=door.stream_block_ms,
            queue_events=door.stream_queue_events,
            max_streams_per_principal=door.max_streams_per_principal,
            socket_timeout=self.settings.redis.socket_timeout,
            batch_ms=door.stream_batch_ms,
        )

    def shutdown(self) -> None:
        """End every wait and live stream now (the process is stopping); safe from a signal handler."""
        self.closing.set()
        if "hub" in self.__dict__:
            self.hub.close()

    def wait_seconds(self, requested: float | None, *, default: float | None = None) -> float:
        """How long a front door may wait: ``requested`` (or ``default``), ORCH_8003 above the cap."""
        cap = self.settings.frontdoor.wait_max_seconds
        seconds = requested if requested is not None else (default if default is not None else cap)
        if requested is not None and requested > cap:
            raise InputInvalidError(
                f"timeout_seconds is {requested:g}; a wait lasts at most {cap:g} s (ORCH_FRONTDOOR__WAIT_MAX_SECONDS)."
                " Start without waiting and follow the run with GET /api/workflows/{run_id} or its events",
                {"timeout_seconds": requested, "max_seconds": cap},
            )
        return min(seconds, cap)

    async def wait_for_run_async(
        self,
        run_id: str,
        *,
        timeout: float,
        on_event: Callable[[Event], Awaitable[None]] | None = None,
        on_start: Callable[[RunView], Awaitable[None]] | None = None,
    ) -> RunView:
        """``wait_for_run`` for the event loop: no thread held, deadline kept whatever the bus carries."""
        from orchestrator.state.run_waits import wait_for_run

        if self.closing.is_set():
            raise ShuttingDownError("The server is shutting down; retry on another instance", {"run_id": run_id})
        return await wait_for_run(
            self.hub,
            run_id,
            timeout=min(timeout, self.settings.frontdoor.wait_max_seconds),
            on_event=on_event,
            on_start=on_start,
        )

    def identifier(self, value: str | None, what: str) -> None:
        """ORCH_8003 for an id that is too long or not valid Unicode (before it is stored, looked up or echoed)."""
        bounds.identifier(value, what, max_chars=self.settings.frontdoor.max_identifier_chars)

    # -- system ---------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The compatible health fields (README: Compatibility), with real values.

        ``unhealthy``: Redis does not answer. ``degraded``: an agent has no live worker (or its worker is being
        restarted), or no reconciler has made a pass recently, so accepted work may wait for nobody.
        """
        base = {"version": __version__, "uptime_seconds": round(time.time() - _STARTED, 3), "timestamp": iso_now()}
        try:
            self.probe.ping()  # short timeouts, no retries: a dead Redis is reported in about half a second
            statuses = self.agents.statuses()
            reconciler = self.redis.get(keys.RECONCILER_BEAT)
            active = self.runs.active_count()
        except Exception as exc:
            reason = f"Redis unavailable: {type(exc).__name__}"
            return {
                **base,
                "status": "unhealthy",
                "reason": reason,
                "error_code": RedisUnavailableError.code,
                "error_message": f"{reason}; check ORCH_REDIS__URL ({redis_client.masked(self.settings.redis_url)})",
            }
        missing = sorted(agent for agent, status in statuses.items() if status != "online")
        problems = [f"agents not online: {', '.join(missing)}"] if missing else []
        if reconciler is None:
            problems.append("no reconciler pass recently (start `itom-orch api`, `up` or `reconcile`)")
        return {
            **base,
            "status": "degraded" if problems else "healthy",
            "problems": problems,
            "connected_agents": sum(1 for s in statuses.values() if s == "online"),
            "total_registered_agents": len(statuses),
            "agents": statuses,
            "active_workflows": active,
            "reconciler": json.loads(reconciler) if reconciler else None,
        }

    # -- templates ------------------------------------------------------------------------------------
    def list_templates(self, domain: str | None = None) -> list[Template]:
        return self.templates.list(domain)

    def get_template(self, template_id: str) -> Template:
        self.identifier(template_id, "template_id")
        return self.templates.get(template_id)

    # -- workflows ------------------------------------------------------------------------------------
    def start_workflow(
        self,
        principal: Principal,
        *,
        template_id: str | None = None,
        definition: WorkflowDefinition | dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        priority: str | Priority = Priority.MEDIUM,
        idempotency_key: str | None = None,
        source: str = "api",
    ) -> RunView:
        """Plan, authorize, record and enqueue; returns once the run is durably recorded."""
        require(principal, "start")
        self.identifier(template_id, "template_id")
        self.identifier(idempotency_key, "idempotency_key")
        self._bounded(parameters, "workflow parameters")
        if (template_id is None) == (definition is None):
            raise InputInvalidError("Give exactly one of template_id or definition")
        given = self._validated(definition)
        level = _priority(priority)
        fingerprint = ""
        if idempotency_key is not None:
            fingerprint = start_fingerprint(template_id, given, parameters or {}, level)
            existing = self.runs.run_for_start_key(principal.actor, idempotency_key)
            if existing is not None:
                return self._repeated(idempotency_key, fingerprint, *existing)
        if given is None:
            assert template_id is not None  # exactly one of the two was given
            given = self.templates.get(template_id)
        plan = plan_workflow(given, parameters or {}, template_id=template_id, priority=level)
        for step in plan.steps:
            self._bounded(step.parameters, f"parameters of step '{step.step_id}'")
        if idempotency_key is None:
            return self.dispatcher.start(plan, actor=principal.actor, source=source)
        from orchestrator.dispatch.dispatcher import new_run_id

        run_id = new_run_id()
        if not self.runs.claim_start_key(principal.actor, idempotency_key, run_id, fingerprint):
            raise InputInvalidError(f"Idempotency key '{idempotency_key}' is being used by a concurrent request; retry")
        try:
            return self.dispatcher.start(plan, actor=principal.actor, run_id=run_id, source=source)
        except BaseException:
            if not self.runs.exists(run_id):  # refused before it was recorded: a retry may use the key again
                self.runs.release_start_key(principal.actor, idempotency_key, run_id, fingerprint)
            raise

    def _validated(self, definition: WorkflowDefinition | dict[str, Any] | None) -> WorkflowDefinition | None:
        """An inline definition as its model (ORCH_3006 saying what is wrong), checked for size first."""
        if definition is None or isinstance(definition, WorkflowDefinition):
            return definition
        self._bounded(definition, "the workflow definition")
        try:
            return WorkflowDefinition.model_validate(definition)
        except ValueError as exc:
            raise WorkflowDefinitionInvalidError(f"Invalid workflow definition: {exc}") from exc

    @staticmethod
    def _repeated(key: str, fingerprint: str, run: RunView, recorded: str) -> RunView:
        """The run a repeated start gets back: the first one's, if it asked for the same thing."""
        if recorded and recorded != fingerprint:
            raise IdempotencyKeyReusedError(
                f"Idempotency key '{key}' was already used for a different request, which started run "
                f"{run.run_id}; use a new key for a new request, or repeat the first request exactly to get its run",
                {"idempotency_key": key, "run_id": run.run_id},
            )
        return run

    def _bounded(self, value: Any, what: str) -> None:
        limits = self.settings.reliability
        bounds.check(value or {}, what=what, max_depth=limits.max_param_depth, max_bytes=limits.max_param_bytes)

    def execute_task(
        self,
        principal: Principal,
        *,
        action: str,
        parameters: dict[str, Any] | None = None,
        agent_id: str | None = None,
        priority: str | Priority = Priority.MEDIUM,
        timeout_seconds: float | None = None,
        idempotency_key: str | None = None,
        source: str = "api",
    ) -> RunView:
        """One action on one agent, as a one-step run (same gate, same state, same events)."""
        self.identifier(action, "action")
        self.identifier(agent_id, "agent_id")
        spec = get_action(action)
        self._bounded(parameters, f"parameters of action '{spec.name}'")
        if agent_id is not None:
            get_agent(agent_id)
        try:
            validate_params(spec.params, parameters or {}, where=f"action '{spec.name}'")
        except ValueError as exc:
            raise TaskInvalidError(str(exc), {"action": spec.name}) from exc
        step = WorkflowStep(
            step_id="task",
            name=spec.description,
            action=spec.name,
            agent=agent_id,
            parameters=parameters or {},
            timeout_seconds=timeout_seconds,
        )
        definition = WorkflowDefinition(name=f"task {spec.name}", steps=[step])
        return self.start_workflow(
            principal, definition=definition, priority=priority, idempotency_key=idempotency_key, source=source
        )

    def get_run(self, run_id: str) -> RunView:
        self.identifier(run_id, "run_id")
        return self.runs.get(run_id)

    def list_runs(
        self,
        *,
        status: str | None = None,
        template_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[RunView], int]:
        """Newest first, optionally only those created in ``[since, until]``; one page from the run indexes."""
        _window(since, until)
        return self.runs.list(
            status=status, template_id=template_id, since=since, until=until, offset=offset, limit=limit
        )

    def cancel_run(self, principal: Principal, run_id: str) -> RunView:
        """Cancel; steps that were running say how they stopped (``stopped``: interrupted or terminated)."""
        require(principal, "cancel")
        self.identifier(run_id, "run_id")
        return self.dispatcher.cancel(run_id, actor=principal.actor).view

    def resume_run(self, principal: Principal, run_id: str) -> RunView:
        require(principal, "resume")
        self.identifier(run_id, "run_id")
        return self.dispatcher.resume(run_id, actor=principal.actor)

    def _start_and_wait(
        self,
        principal: Principal,
        *,
        action: str,
        parameters: dict[str, Any],
        agent_id: str,
        timeout: float,
        on_started: Callable[[str], None],
    ) -> RunView:
        """The chat desk's one way to start work: a one-step run through the gate, waited for."""
        started = self.execute_task(
            principal, action=action, parameters=parameters, agent_id=agent_id, timeout_seconds=timeout, source="chat"
        )
        on_started(started.run_id)
        return self.wait_for_run(started.run_id, timeout=timeout + 5)

    def wait_for_run(
        self, run_id: str, *, timeout: float = 60.0, on_event: Callable[[Event], None] | None = None
    ) -> RunView:
        """Block until the run is terminal and its closing event is out; ORCH_3004 on the deadline.

        Workers flip the status first and publish the closing event (with its audit entry) a moment later, so
        a caller that reads events or the audit trail right after this returns finds them. A run whose closing
        event never shows (a worker died in between) is returned once it has been terminal for a grace period.
        """
        deadline = time.monotonic() + min(timeout, self.settings.frontdoor.wait_max_seconds)
        view = self.runs.get(run_id)
        if view.status.is_terminal and _settled(view):
            return view
        checked = time.monotonic()
        for event in self.events.listen(run_id=run_id, timeout=0.1):
            if self.closing.is_set():
                raise ShuttingDownError(
                    f"The server is shutting down; run '{run_id}' keeps running", {"run_id": run_id}
                )
            if event is not None:
                if on_event is not None:
                    on_event(event)
                if event.event_type in RUN_CLOSING_EVENTS:
                    return self.runs.get(run_id)
            now = time.monotonic()
            if now - checked >= 0.1:  # re-read at most ten times a second, however busy the bus is
                checked = now
                view = self.runs.get(run_id)
                if view.status.is_terminal and _settled(view):
                    return view
            if now > deadline:
                raise WorkflowTimeoutError(
                    f"Run '{run_id}' still {view.status.value} after {timeout:g}s (it keeps running)",
                    {"run_id": run_id, "status": view.status.value},
                )
        return view  # pragma: no cover - listen() never ends

    # -- events ---------------------------------------------------------------------------------------
    def event_history(
        self, *, run_id: str | None = None, types: list[str] | None = None, after: str | None = None, limit: int = 100
    ) -> list[Event]:
        self.identifier(run_id, "run_id")
        after = bounds.stream_id(after, "after")
        return self.events.history(run_id=run_id, types=types, after=after, limit=min(limit, 1000))

    # -- audit ----------------------------------------------------------------------------------------
    def audit_query(
        self,
        principal: Principal,
        *,
        event_type: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        require(principal, "audit.read")
        _window(since, until)
        return self.audit.query(
            event_type=event_type, actor=actor, target=target, since=since, until=until, limit=min(limit, 10_000)
        )

    def audit_export(
        self, principal: Principal, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[str]:
        require(principal, "audit.export")
        _window(since, until)
        return self.audit.export(since=since, until=until)

    def audit_verify(self, principal: Principal, anchor: audit_anchor.Anchor | None = None) -> dict[str, Any]:
        """Check the hash chain, and the anchor (given, or the one the reconciler keeps under ORCH_DATA_DIR)."""
        require(principal, "audit.verify")
        report = self.audit.verify().model_dump()
        source = "given"
        if anchor is None:
            anchor = audit_anchor.load(self.anchor_path)
            source = "kept by the reconciler"
        if anchor is None:
            return report
        if anchor.redis != audit_anchor.redis_label(self.settings.redis_url):
            report["anchor"] = {"checked": False, "reason": f"the anchor belongs to {anchor.redis}"}
            return report
        problem = audit_anchor.check(self.audit, anchor)
        report["anchor"] = {"checked": True, "source": source, "stream_id": anchor.stream_id, "at": anchor.at}
        if problem is not None:
            report.update(ok=False, reason=problem)
        return report

    def audit_anchor(self, principal: Principal) -> audit_anchor.Anchor | None:
        """The audit log's current head, to keep outside Redis (``audit --anchor FILE``)."""
        require(principal, "audit.verify")
        return audit_anchor.take(self.audit, self.settings.redis_url)

    @property
    def anchor_path(self) -> Path:
        return audit_anchor.default_path(self.settings.data_dir, self.settings.redis_url)

    # -- dead letters ---------------------------------------------------------------------------------
    def dlq_list(self, principal: Principal, *, limit: int = 50, reason: str | None = None) -> list[dict[str, Any]]:
        require(principal, "dlq.read")
        return self.deadletters.list(limit=limit, reason=reason)

    def dlq_show(self, principal: Principal, dlq_id: str) -> dict[str, Any]:
        require(principal, "dlq.read")
        bounds.stream_id(dlq_id, "dlq_id")
        return self.deadletters.show(dlq_id)

    def dlq_redrive(self, principal: Principal, dlq_id: str) -> dict[str, Any]:
        """Re-drive a dead letter: resume its run (re-running the failed step), or start it again as a task."""
        require(principal, "dlq.redrive")
        bounds.stream_id(dlq_id, "dlq_id")
        entry = self.deadletters.show(dlq_id)
        run_id = entry.get("run_id")
        view: RunView
        if run_id and self.runs.exists(run_id) and self.runs.get(run_id).status.value in ("failed", "cancelled"):
            view = self.dispatcher.resume(run_id, actor=principal.actor)
        else:
            view = self.execute_task(
                principal,
                action=entry["action"],
                parameters=entry.get("params") or {},
                agent_id=entry.get("agent_id"),
                source="redrive",
            )
        outcome = {"run_id": view.run_id, "status": view.status.value}
        self.deadletters.mark_redriven(dlq_id, principal.actor, outcome)
        self.audit.append("dlq_redriven", principal.actor, dlq_id, outcome)
        return {"dlq_id": dlq_id, **outcome}

    # -- chat and routing -----------------------------------------------------------------------------
    def chat(self, principal: Principal, request: ChatRequest) -> ChatResponse | ClarificationResponse:
        for value, what in ((request.target_agent, "target_agent"), (request.domain, "domain")):
            self.identifier(value, what)
        self.identifier(request.session_id, "session_id")
        self._bounded(request.context, "chat context")
        return self.chatdesk.chat(principal, request)

    def clarify(self, principal: Principal, request: ClarifyRequest) -> ChatResponse | ClarificationResponse:
        self.identifier(request.pending_message_token, "pending_message_token")
        self.identifier(request.session_id, "session_id")
        return self.chatdesk.clarify(principal, request)

    def route_task(
        self,
        principal: Principal,
        *,
        task_id: str,
        title: str,
        description: str = "",
        domain: str | None = None,
        target_agent: str | None = None,
        priority: str = "medium",
        parameters: dict[str, Any] | None = None,
        timeout_seconds: float = 300,
    ) -> dict[str, Any]:
        """Route only (the ``route_task`` tool): nothing is executed."""
        require(principal, "read")
        _priority(priority)
        return self.chatdesk.route_only(
            task_id=task_id,
            title=title,
            description=description,
            domain=domain,
            target_agent=target_agent,
            priority=priority,
            parameters=parameters,
            timeout_seconds=timeout_seconds,
        )

    def execution_history(self, *, task_id: str | None = None, limit: int = 50) -> dict[str, Any]:
        """Executions (one record per attempt outcome) read from the audit log, newest first."""
        records: list[dict[str, Any]] = []
        for entry in self.audit.query(limit=max(limit * 5, 500)):
            if entry.event_type not in ("task_executed", "task_failed"):
                continue
            target = entry.target or ""
            if task_id and not target.startswith(task_id):
                continue
            records.append(
                {
                    "task_id": target,
                    "agent_id": entry.actor.removeprefix("worker:"),
                    "action": entry.details.get("action"),
                    "attempt": entry.details.get("attempt"),
                    "status": "completed" if entry.event_type == "task_executed" else "failed",
                    "completed_at": entry.timestamp,
                    "error_message": (entry.details.get("error") or {}).get("message"),
                }
            )
            if len(records) >= limit:
                break
        total = len(records)
        completed = sum(1 for r in records if r["status"] == "completed")
        distribution: dict[str, int] = {}
        for r in records:
            distribution[r["status"]] = distribution.get(r["status"], 0) + 1
        return {
            "records": records,
            "record_count": total,
            "stats": {
                "total_executions": total,
                "success_rate": round(100.0 * completed / total, 2) if total else 0.0,
                "status_distribution": distribution,
            },
            "active_tasks": self.runs.active_count(),
            "filters": {"task_id": task_id, "limit": limit},
            "timestamp": iso_now(),
        }

    # -- agent messaging ------------------------------------------------------------------------------
    def send_message(
        self,
        principal: Principal,
        *,
        sender: str,
        recipient: str,
        message_type: str,
        payload: dict[str, Any],
        priority: str = "normal",
        expires_in_seconds: float | None = None,
    ) -> dict[str, Any]:
        require(principal, "message.send")
        for value, what in ((sender, "sender"), (recipient, "recipient"), (message_type, "message_type")):
            self.identifier(value, what)
        self._bounded(payload, "message payload")
        return self.messenger.send(
            actor=principal.actor,
            sender=sender,
            recipient=recipient,
            message_type=message_type,
            payload=payload,
            priority=priority,
            expires_in_seconds=expires_in_seconds,
        )

    def inbox(self, principal: Principal, agent_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        require(principal, "read")
        return self.messenger.inbox(agent_id, limit=limit)

    # -- registry and work log (itom-chat-ui) ---------------------------------------------------------
    def set_agent_status(
        self, principal: Principal, agent_id: str, status: str, *, reason: str | None = None
    ) -> dict[str, Any]:
        """Persist an agent's administrative status; ``maintenance`` takes it out of chat routing."""
        require(principal, "agent.status")
        entry = self.agents.registry.set_status(agent_id, status, reason)
        details = {"agent_id": agent_id, "status": entry.status, "reason": reason}
        self.audit.append("agent_status_changed", principal.actor, agent_id, details)
        self.events.publish(Event(event_type=ev.AGENT_STATUS_CHANGED, correlation_id=agent_id, payload=details))
        return self.agents.record(agent_id, self.agents.heartbeats().get(agent_id))

    def worklog(self, principal: Principal, *, limit: int = 50) -> dict[str, Any]:
        """Recent runs, tasks and chat exchanges as work items ``{items, status}`` (the chat UI's shape)."""
        require(principal, "read")
        return build_worklog(self.redis, self.runs, limit)

    # -- agents (read) --------------------------------------------------------------------------------
    def agent_registry(
        self, *, domain: str | None = None, status: str | None = None, capability: str | None = None
    ) -> dict[str, Any]:
        """Registered agents with one filter (capability > domain > status) and the count of all registered."""
        return agent_views.agent_registry(self.agents, domain=domain, status=status, capability=capability)

    def agent_details(self, agent_id: str) -> dict[str, Any]:
        return agent_views.agent_details(self.agents, agent_id)

    def check_all_agents(self, *, force_check: bool = False) -> dict[str, Any]:
        return agent_views.check_all_agents(self.agents, force_check=force_check)

    def agents_summary(self, *, force: bool = False) -> dict[str, Any]:
        """Every agent's status and the status counts (``force`` also pings the workers over Celery)."""
        return self.agents.summary(force=force)

    def agent_health(self, agent_id: str, *, force: bool = False) -> dict[str, Any]:
        return self.agents.health_view(agent_id, force=force)

    def list_agents(self) -> list[dict[str, Any]]:
        return self.agents.list()

    def agent_statuses(self) -> dict[str, str]:
        return self.agents.statuses()

    # -- metrics (read) -------------------------------------------------------------------------------
    def gauges(self) -> dict[str, int]:
        """Shared state the ``/metrics`` gauges report: active runs, agents online, dead letters."""
        return {
            "active_runs": self.runs.active_count(),
            "agents_online": self.agents.connected_count(),
            "dead_letters": self.deadletters.count(),
        }

    def outcome_counts(self) -> dict[str, str]:
        """The outcome counters every process writes where state changes (one hash: field -> count)."""
        counts: dict[str, str] = self.redis.hgetall(keys.METRICS)
        return counts

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each agent queue, all priorities (raises when the broker is unreachable)."""
        from orchestrator.runtime.broker import BrokerProbe

        return BrokerProbe(self.app).queue_depths([keys.agent_queue(agent) for agent in AGENT_IDS])

    # -- operators' additions (issue 14): schedules, run listing by time, a run's audit tail, broken templates --
    @cached_property
    def scheduling(self) -> Scheduling:
        """Schedules (celery-redbeat entries in Redis), built on first use."""
        from orchestrator.schedules.manager import Scheduling

        return Scheduling(
            app=self.app,
            redis=self.redis,
            settings=self.settings,
            audit=self.audit,
            events=self.events,
            templates=self.templates,
            gate=self.gate,
            start_workflow=self.start_workflow,
        )

    def add_schedule(self, principal: Principal, spec: ScheduleSpec | dict[str, Any]) -> ScheduleView:
        """Validate (cron, template, parameters, policy) and store a schedule; its first run is the next match.

        Its parameters are bounded as a start's are, now: a value every start would refuse must not be stored."""
        parameters = spec.parameters if not isinstance(spec, dict) else spec.get("parameters")
        self._bounded(parameters, "schedule parameters")
        return self.scheduling.add(principal, spec)

    def list_schedules(self, principal: Principal) -> list[ScheduleView]:
        """Every schedule, each with ``state``/``problem`` saying whether it can still start."""
        return self.scheduling.list(principal)

    def get_schedule(self, principal: Principal, schedule_id: str) -> ScheduleView:
        return self.scheduling.get(principal, schedule_id)

    def remove_schedule(self, principal: Principal, schedule_id: str) -> dict[str, Any]:
        return self.scheduling.remove(principal, schedule_id)

    def fire_schedule(self, schedule_id: str) -> RunView | None:
        """Start a due schedule's run as the principal ``scheduler`` (the beat calls this)."""
        return self.scheduling.fire(schedule_id)

    def run_audit(self, principal: Principal, run_id: str, *, limit: int = 50) -> list[AuditEntry]:
        """The audit entries of one run and its steps (targets ``<run>`` and ``<run>/<step>``), newest first."""
        require(principal, "audit.read")
        since = datetime.fromisoformat(self.runs.get(run_id).created_at) if self.runs.exists(run_id) else None
        return self.audit.query_run(run_id, since=since, limit=min(limit, 1000))

    def broken_templates(self) -> list[dict[str, Any]]:
        """User template files that do not load, each with its file and error (a YAML error names its line)."""
        return self.templates.broken()
