"""The chat turn: route free text, ask when it is ambiguous, run one action as a one-step run, render it.

Why a run per chat turn: the chat path gets the same policy gate, run state, events and audit trail as
workflows, and an operator can find any chat answer in the run list (and in the work log).

Routing reads the registry file (registered agents; ``maintenance`` ones are skipped) and the routing rules
file. A message addressed to ``orchestrator`` (the chat UI's ``/status`` and ``/agents``) is answered by the
orchestrator itself with its health and agent summary. Each reply says which tool answered (``tool_used``:
the sibling MCP tool for a bridged agent, else the catalog action) and where from (``source``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.catalog import ACTIONS, AGENTS, tool_for
from orchestrator.chat.clarify import ClarificationStore
from orchestrator.chat.routing import resolve_clarification, route
from orchestrator.chat.status import ORCHESTRATOR_TARGETS, orchestrator_reply
from orchestrator.chat.turn import choose_action, render_result
from orchestrator.errors import (
    AmbiguousRouteError,
    ClarificationAnswerEmptyError,
    ClarificationStillAmbiguousError,
    ClarificationTokenNotFoundError,
    OrchestratorError,
    TaskExecutionError,
    TaskTimeoutError,
    WorkflowTimeoutError,
    error_class_for,
)
from orchestrator.models.chat import (
    ChatRequest,
    ChatResponse,
    ChatResponseBody,
    ClarificationResponse,
    ClarifyRequest,
    RouteRequest,
    RoutingDecision,
    RoutingSummary,
    new_chat_message_id,
)
from orchestrator.models.common import RunStatus
from orchestrator.models.events import Event
from orchestrator.runtime.redis_client import execute_pipeline
from orchestrator.security.principals import Principal, require
from orchestrator.state import events as ev
from orchestrator.state.worklog import log_exchange

if TYPE_CHECKING:
    from orchestrator.chat.rules_file import RoutingRulesFile
    from orchestrator.models.run import RunView
    from orchestrator.runtime.redis_client import RedisClient
    from orchestrator.settings import Settings
    from orchestrator.state.agents import AgentDirectory
    from orchestrator.state.audit import AuditLog
    from orchestrator.state.events import EventBus

CHAT_TIMEOUT_SECONDS = 30.0


class StartAndWait(Protocol):
    """Run one action as a one-step run through the service's gate and wait for it to end.

    ``on_started`` gets the run id as soon as the run exists (the work log names it even when the wait fails);
    a run that does not end within ``timeout`` raises ORCH_3004 (``WorkflowTimeoutError``).
    """

    def __call__(
        self,
        principal: Principal,
        *,
        action: str,
        parameters: dict[str, Any],
        agent_id: str,
        timeout: float,
        on_started: Callable[[str], None],
    ) -> RunView: ...


@dataclass(frozen=True)
class ChatDesk:
    """Chat and routing: the stores it reads and writes, and the one way it starts work (``start_and_wait``).

    Why not the whole service: the desk needs to start a run and wait for it, nothing else of the service, and
    taking only that keeps the dependency one way (the service builds the desk, the desk never sees the service).
    """

    redis: RedisClient
    settings: Settings
    agents: AgentDirectory
    routing_rules: RoutingRulesFile
    audit: AuditLog
    events: EventBus
    start_and_wait: StartAndWait
    health: Callable[[], dict[str, Any]]
    store: ClarificationStore = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "store", ClarificationStore(self.redis))

    def _routing(self) -> dict[str, Any]:
        """What routing reads now: registered agents, the rules file, and the agents in maintenance."""
        return {"rules": self.routing_rules.rules(), "unavailable": self.agents.unavailable()}

    def chat(self, principal: Principal, request: ChatRequest) -> ChatResponse | ClarificationResponse:
        if (request.target_agent or "").strip().casefold() in ORCHESTRATOR_TARGETS:
            require(principal, "read")  # a look at the orchestrator's own status runs nothing
            return self._orchestrator_answer(principal, request)
        require(principal, "start")
        decision = route(RouteRequest.for_chat(request), self.agents.routable(), **self._routing())
        if not isinstance(decision, RoutingDecision):
            token = self.store.put(request.message, request.session_id, decision, context=request.context)
            return ClarificationResponse(
                question=decision.question,
                options=decision.labels,
                pending_message_token=token,
                session_id=request.session_id,
            )
        return self._answer(principal, decision, request.message, request.context, request.session_id)

    def clarify(self, principal: Principal, request: ClarifyRequest) -> ChatResponse | ClarificationResponse:
        require(principal, "start")
        if not request.clarification_answer:
            raise ClarificationAnswerEmptyError("clarification_answer is empty: send one of the offered options")
        pending = self.store.take(request.pending_message_token)
        if pending is None:
            raise ClarificationTokenNotFoundError(
                "Unknown, expired or already used pending_message_token; send the message to /api/chat again"
            )
        try:
            decision = resolve_clarification(
                pending.clarification, request.clarification_answer, self.agents.routable(), **self._routing()
            )
        except AmbiguousRouteError as exc:
            raise ClarificationStillAmbiguousError(exc.message, exc.details) from exc
        return self._answer(
            principal, decision, pending.message, pending.context, request.session_id or pending.session_id
        )

    def route_only(
        self,
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
        """The ``route_task`` tool: decide the agent, record the decision, execute nothing."""
        request = RouteRequest.for_task(
            title,
            description,
            domain=domain,
            target_agent=target_agent,
            required_capability=(parameters or {}).get("required_capability"),
        )
        decision = route(request, self.agents.routable(), **self._routing())
        assert isinstance(decision, RoutingDecision)  # for_task never asks for clarification
        self._record_route(task_id, decision, "orchestrator")
        return {
            "task_id": task_id,
            "status": "routed",
            "routing_decision": {**decision.model_dump(), "agent_name": AGENTS[decision.agent_id].name},
            "task": {
                "task_id": task_id,
                "title": title,
                "description": description,
                "domain": domain,
                "target_agent": target_agent,
                "priority": priority,
                "parameters": parameters or {},
                "timeout_seconds": timeout_seconds,
            },
            "timestamp": decision.timestamp,
        }

    # -- internals ------------------------------------------------------------------------------------
    def _record_route(self, task_id: str, decision: RoutingDecision, actor: str) -> None:
        record = {"task_id": task_id, **decision.model_dump()}
        pipe = self.redis.pipeline(transaction=False)
        self.audit.append_to(
            pipe,
            "task_routed",
            actor,
            task_id,
            {"agent_id": decision.agent_id, "method": decision.method, "reason": decision.reason},
        )
        self.events.publish_to(pipe, Event(event_type=ev.TASK_ROUTED, correlation_id=task_id, payload=record))
        execute_pipeline(self.redis, pipe)

    def _answer(
        self,
        principal: Principal,
        decision: RoutingDecision,
        message: str,
        context: dict[str, Any],
        session_id: str | None,
    ) -> ChatResponse:
        message_id = new_chat_message_id()
        self._record_route(message_id, decision, principal.actor)
        exchange: dict[str, Any] = {
            "message_id": message_id,
            "message": message,
            "agent_id": decision.agent_id,
            "actor": principal.actor,
            "session_id": session_id,
        }
        try:
            response = self._run(principal, decision, message, context, session_id, message_id, exchange)
        except OrchestratorError as exc:
            log_exchange(self.redis, {**exchange, "status": "failed", "error_code": exc.code})
            raise
        log_exchange(self.redis, {**exchange, "status": "completed"})
        return response

    def _run(
        self,
        principal: Principal,
        decision: RoutingDecision,
        message: str,
        context: dict[str, Any],
        session_id: str | None,
        message_id: str,
        exchange: dict[str, Any],
    ) -> ChatResponse:
        bridged = bool(self.settings.agent(decision.agent_id).mcp_url)
        action, params = choose_action(decision.agent_id, message, context, bridged=bridged)
        exchange["action"] = action

        def started(run_id: str) -> None:
            exchange["run_id"] = run_id

        try:
            view = self.start_and_wait(
                principal,
                action=action,
                parameters=params,
                agent_id=decision.agent_id,
                timeout=CHAT_TIMEOUT_SECONDS,
                on_started=started,
            )
        except WorkflowTimeoutError as exc:
            raise TaskTimeoutError(
                f"Timed out after {CHAT_TIMEOUT_SECONDS:g}s", {"run_id": exchange.get("run_id")}
            ) from exc
        step = view.steps[0]
        if view.status != RunStatus.COMPLETED or step.error is not None:
            error = step.error or view.error
            if error is None:
                raise TaskExecutionError(f"Run {view.run_id} ended {view.status.value}", {"run_id": view.run_id})
            cls = error_class_for(error.code)
            raise (cls if cls is not OrchestratorError else TaskExecutionError)(
                error.message, {"run_id": view.run_id, **error.details}
            )
        result = step.result if isinstance(step.result, dict) else {"value": step.result}
        markdown, pills = render_result(action, result)
        tool = (tool_for(ACTIONS[action], params) if bridged else None) or action
        reply = {
            "agent_response": markdown,
            "suggested_actions": pills,
            "action": action,
            "tool_used": tool,
            "source": f"{'mcp' if bridged else 'builtin'}:{decision.agent_id}",
            "data": result,
        }
        return ChatResponse(
            message_id=message_id,
            agent_id=decision.agent_id,
            agent_name=decision.agent_name,
            domain=decision.domain,
            routing_method=decision.method,
            session_id=session_id,
            run_id=view.run_id,
            response=ChatResponseBody(
                task_id=message_id,
                result=reply,
                routing=RoutingSummary(method=decision.method, reason=decision.reason),
            ),
        )

    def _orchestrator_answer(self, principal: Principal, request: ChatRequest) -> ChatResponse:
        """The chat UI's ``/status`` and ``/agents``: the orchestrator's own health and agent summary."""
        message_id = new_chat_message_id()
        reason = "Addressed to the orchestrator itself: answered with its health and agent summary."
        decision = RoutingDecision(
            agent_id="orchestrator",
            agent_name="ITOM Orchestrator",
            domain="orchestration",
            method="explicit",
            reason=reason,
        )
        self._record_route(message_id, decision, principal.actor)
        result = orchestrator_reply(self.health(), self.agents.list(), request.message)
        log_exchange(
            self.redis,
            {
                "message_id": message_id,
                "message": request.message,
                "agent_id": "orchestrator",
                "actor": principal.actor,
                "session_id": request.session_id,
                "action": result["tool_used"],
                "status": "completed",
            },
        )
        return ChatResponse(
            message_id=message_id,
            agent_id=decision.agent_id,
            agent_name=decision.agent_name,
            domain=decision.domain,
            routing_method="explicit",
            session_id=request.session_id,
            response=ChatResponseBody(
                task_id=message_id, result=result, routing=RoutingSummary(method="explicit", reason=reason)
            ),
        )
