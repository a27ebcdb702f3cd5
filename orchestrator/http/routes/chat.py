"""The chat UI's contract (itom-chat-ui): ``POST /api/chat`` and ``POST /api/chat/clarify``, as it expects them.

Status codes: 200 with a ChatResponse or ClarificationResponse; 422 for a blank message; 400 for an invalid
domain or a bad clarification token/answer; 502 for routing and execution errors; 504 when the task timed out.
``/clarify`` answers 502 for every server-side failure (no 504), as the chat UI expects.

Both routes also serve the opt-in anonymous principal (itom-chat-ui sends no token), see ``deps``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from orchestrator.errors import OrchestratorError
from orchestrator.http.deps import ChatPrincipalDep, ServiceDep
from orchestrator.http.errors import error_response
from orchestrator.http.routes import API_PREFIX
from orchestrator.models.chat import ChatRequest, ChatResponse, ClarificationResponse, ClarifyRequest

router = APIRouter(prefix=f"{API_PREFIX}/chat", tags=["chat"])
BAD_GATEWAY = 502


@router.post("", summary="Route a free-text message to an agent and run it (or ask which domain was meant)")
def chat(body: ChatRequest, service: ServiceDep, principal: ChatPrincipalDep) -> ChatResponse | ClarificationResponse:
    return service.chat(principal, body)


@router.post(
    "/clarify",
    summary="Answer a clarification question and run the parked message",
    response_model=ChatResponse | ClarificationResponse,
)
def clarify(
    body: ClarifyRequest, service: ServiceDep, principal: ChatPrincipalDep
) -> ChatResponse | ClarificationResponse | JSONResponse:
    try:
        return service.clarify(principal, body)
    except OrchestratorError as exc:
        if exc.http_status >= 500:
            return error_response(exc, status=BAD_GATEWAY)
        raise
