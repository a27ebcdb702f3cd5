"""The chat UI's contract (itom-chat-ui): ``POST /api/chat`` and ``POST /api/chat/clarify``, as it expects them.

Status codes: 200 with a ChatResponse or ClarificationResponse; 422 for a blank message; 400 for an invalid
domain or a bad clarification token/answer; 502 for routing and execution errors; 504 when the task timed out.
``/clarify`` answers 502 for every server-side failure (no 504), as the chat UI expects.

Both routes also serve the opt-in anonymous principal (itom-chat-ui sends no token), see ``deps``.
"""

from __future__ import annotations

from functools import partial

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orchestrator.errors import OrchestratorError
from orchestrator.http.deps import ChatPrincipalDep, ServiceDep
from orchestrator.http.errors import error_response
from orchestrator.http.routes import API_PREFIX
from orchestrator.models.chat import ChatRequest, ChatResponse, ClarificationResponse, ClarifyRequest

router = APIRouter(prefix=f"{API_PREFIX}/chat", tags=["chat"])
BAD_GATEWAY = 502


def wait_limiter(request: Request) -> anyio.CapacityLimiter:
    """Chat requests wait for their run in threads of their own (``ORCH_FRONTDOOR__MAX_BLOCKING_WAITS`` at
    once), never in the thread pool every other sync route shares: a burst of chats cannot freeze the API."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "wait_limiter", None)
    if limiter is None:
        service = request.app.state.service
        limiter = anyio.CapacityLimiter(service.settings.frontdoor.max_blocking_waits)
        request.app.state.wait_limiter = limiter
    return limiter


@router.post("", summary="Route a free-text message to an agent and run it (or ask which domain was meant)")
async def chat(
    body: ChatRequest, request: Request, service: ServiceDep, principal: ChatPrincipalDep
) -> ChatResponse | ClarificationResponse:
    return await anyio.to_thread.run_sync(partial(service.chat, principal, body), limiter=wait_limiter(request))


@router.post(
    "/clarify",
    summary="Answer a clarification question and run the parked message",
    response_model=ChatResponse | ClarificationResponse,
)
async def clarify(
    body: ClarifyRequest, request: Request, service: ServiceDep, principal: ChatPrincipalDep
) -> ChatResponse | ClarificationResponse | JSONResponse:
    try:
        return await anyio.to_thread.run_sync(partial(service.clarify, principal, body), limiter=wait_limiter(request))
    except OrchestratorError as exc:
        if exc.http_status >= 500:
            return error_response(exc, status=BAD_GATEWAY, request=request)
        raise
