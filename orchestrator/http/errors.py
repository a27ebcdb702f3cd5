"""Error translation for HTTP: one body shape for every failure, so clients parse errors one way.

Body: ``{error_code, error_message, timestamp}``. ``detail`` repeats the error where existing
clients read it (the same object for ORCH errors, the field list for validation errors), so existing clients such as
itom-chat-ui that read ``detail.error_code`` keep working. Bad input never becomes a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.errors import AuthenticationError, OrchestratorError
from orchestrator.models.common import iso_now

VALIDATION_CODE = "ORCH_8003"
_HTTP_CODES = {401: "ORCH_8001", 404: "ORCH_8004", 413: "ORCH_8002"}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error_code": code, "error_message": message, "timestamp": iso_now()}
    body["detail"] = dict(body)
    body.update(extra)
    return body


def error_response(error: OrchestratorError, *, status: int | None = None) -> JSONResponse:
    """The response for an ORCH error (``status`` overrides the error's own, e.g. chat/clarify's 502)."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, AuthenticationError) else None
    return JSONResponse(error_body(error.code, error.message), status_code=status or error.http_status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """422 listing each bad field and why, in the common body shape."""
    fields = [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid request"
    body = error_body(VALIDATION_CODE, f"Invalid request: {summary}", errors=fields)
    body["detail"] = fields
    return JSONResponse(body, status_code=422)


async def _on_orchestrator_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OrchestratorError)
    return error_response(exc)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc)


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown route 404, wrong method 405) in the common shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OrchestratorError, _on_orchestrator_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
