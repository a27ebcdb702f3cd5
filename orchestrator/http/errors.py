"""Error translation for HTTP: one body shape for every failure, so clients parse errors one way.

Body: ``{error_code, error_message, timestamp}``, where ``error_code`` is always an ORCH code; a 422 adds
``errors`` (each bad field and why). The chat UI's routes (``/api/chat``...) also carry ``detail``, the same
object, because itom-chat-ui reads ``detail.error_code`` there (README: Compatibility), and for
clarification errors ``legacy_code`` (the ``CLARIFICATION_*`` string). Nothing else repeats itself.

Nothing becomes a plain-text 500: Redis and broker failures are 503 with their ORCH code, and anything
unforeseen is ORCH_8010 in the same shape (the traceback goes to the log). Messages are clipped and lone
surrogates escaped, so an error can always be rendered whatever the input was.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import RedisError, ResponseError
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.bounds import clip
from orchestrator.errors import (
    AuthenticationError,
    BrokerUnavailableError,
    InputInvalidError,
    InternalError,
    MethodNotAllowedError,
    NotFoundError,
    OrchestratorError,
    PayloadTooLargeError,
    RedisUnavailableError,
    RoleViolationError,
    TooManyStreamsError,
)
from orchestrator.models.common import iso_now

log = logging.getLogger(__name__)
VALIDATION_CODE = InputInvalidError.code
MESSAGE_CHARS = 2000
CHAT_PREFIX = "/api/chat"
_HTTP_ERRORS: dict[int, type[OrchestratorError]] = {
    400: InputInvalidError,
    401: AuthenticationError,
    403: RoleViolationError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    413: PayloadTooLargeError,
    429: TooManyStreamsError,
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error_code": code, "error_message": clip(message, MESSAGE_CHARS), "timestamp": iso_now()}
    body.update(extra)
    return body


def _for_chat(request: Request | None, body: dict[str, Any], error: OrchestratorError | None) -> dict[str, Any]:
    if request is None or not request.url.path.startswith(CHAT_PREFIX):
        return body
    body["detail"] = {k: body[k] for k in ("error_code", "error_message", "timestamp")}
    legacy = getattr(error, "legacy_code", None)
    if legacy:
        body["legacy_code"] = legacy
    return body


def error_response(
    error: OrchestratorError, *, status: int | None = None, request: Request | None = None
) -> JSONResponse:
    """The response for an ORCH error (``status`` overrides the error's own, e.g. chat/clarify's 502)."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, AuthenticationError) else None
    body = _for_chat(request, error_body(error.code, error.message), error)
    return JSONResponse(body, status_code=status or error.http_status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [clip(str(p), 100) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def _entry(error: dict[str, Any]) -> dict[str, str]:
    """One bad field and why. A body that is not JSON at all is named as such, with the parser's reason and the
    character where it gave up (FastAPI reports it as field ``0`` and "JSON decode error", which says neither); a
    body that is JSON but not an object says what it is instead."""
    kind = clip(str(error.get("type", "")), 100)
    loc = error.get("loc", ())
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error") or "it does not parse"
        where = f" at character {loc[-1]}" if len(loc) == 2 and isinstance(loc[-1], int) else ""
        message = f"the request body is not valid JSON: {clip(str(reason), 200)}{where}; send one JSON object"
        return {"field": "body", "message": message, "type": kind}
    if kind == "model_attributes_type" and tuple(loc) == ("body",):  # pydantic: "... or object to extract fields from"
        given = _JSON_KINDS.get(type(error.get("input")), "something else")
        return {
            "field": "body",
            "message": f"the request body must be one JSON object ({{...}}), not {given}",
            "type": kind,
        }
    return {"field": _field(loc), "message": clip(str(error.get("msg", "")), 500), "type": kind}


_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false"}


def validation_response(exc: RequestValidationError, request: Request | None = None) -> JSONResponse:
    """422 listing each bad field and why, in the common body shape."""
    fields = [_entry(e) for e in exc.errors()[:50]]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid request"
    body = _for_chat(request, error_body(VALIDATION_CODE, f"Invalid request: {summary}", errors=fields), None)
    return JSONResponse(body, status_code=422)


async def _on_orchestrator_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OrchestratorError)
    return error_response(exc, request=request)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc, request)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown route 404, wrong method 405, a body the JSON parser gave up on) in the common
    shape, with an ORCH code."""
    assert isinstance(exc, StarletteHTTPException)
    cls = _HTTP_ERRORS.get(exc.status_code, InternalError if exc.status_code >= 500 else InputInvalidError)
    detail = str(exc.detail)
    if isinstance(exc.__cause__, RecursionError):  # FastAPI says only "There was an error parsing the body"
        detail = (
            "the request body is nested too deeply to parse; parameters and payloads may nest a few dozen levels "
            "(ORCH_RELIABILITY__MAX_PARAM_DEPTH, 32 by default): flatten it"
        )
    body = _for_chat(request, error_body(cls.code, detail), None)
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


UNAVAILABLE_REPLIES = ("OOM", "LOADING", "READONLY", "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN")


async def _on_redis_error(request: Request, exc: Exception) -> JSONResponse:
    """503 ORCH_8009 when Redis is down or cannot serve now; any other reply error is a bug (ORCH_8010)."""
    if isinstance(exc, ResponseError) and not str(exc).startswith(UNAVAILABLE_REPLIES):
        return await _on_unexpected(request, exc)
    log.warning("Redis failed during %s %s: %s", request.method, request.url.path, type(exc).__name__)
    error = RedisUnavailableError(f"Redis did not answer ({type(exc).__name__}); nothing was changed, retry later")
    return error_response(error, request=request)


async def _on_broker_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("the broker failed during %s %s: %s", request.method, request.url.path, exc)
    error = BrokerUnavailableError(f"The message broker did not answer ({type(exc).__name__}); retry later")
    return error_response(error, request=request)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    error = InternalError(f"Unexpected error ({type(exc).__name__}); the server log has the details")
    return error_response(error, request=request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OrchestratorError, _on_orchestrator_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RedisError, _on_redis_error)
    app.add_exception_handler(BrokerOperationalError, _on_broker_error)
    app.add_exception_handler(UnicodeError, _on_unexpected_input)
    app.add_exception_handler(Exception, _on_unexpected)


async def _on_unexpected_input(request: Request, exc: Exception) -> JSONResponse:
    """Text that cannot be encoded (a lone surrogate) that slipped past the edge checks: the caller's input."""
    error = InputInvalidError("The request contains text that is not valid Unicode (e.g. a lone surrogate)")
    return error_response(error, request=request)
