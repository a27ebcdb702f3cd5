"""Errors that sibling agents report inside a normal reply, and whether they are worth a retry.

Why: the sibling MCP servers catch their own failures and return them as data. The discovery agent answers
``{"success": false, "message": ..., "error": "RATE_LIMIT_ERROR"}``, the asset agent ``{"error": ...,
"error_code": "SN_QUERY_ERROR"}``, the auditor ``{"status": "error", "message": ...}`` or an audit whose
checks ended in ``error`` (``status: completed_with_errors``). Read as results, all of these would record a
failed call as a completed step. ``reported_error`` finds them so the bridge can fail the step with the
server's own message, as retryable when the server says the failure is passing (rate limits, timeouts,
connection trouble on its side).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TRANSIENT_CODES = frozenset(
    {
        "RATE_LIMIT_ERROR",
        "SN_RATE_LIMIT",
        "CONNECTION_ERROR",
        "SN_CONNECTION_ERROR",
        "TIMEOUT",
        "TIMEOUT_ERROR",
        "SERVICE_UNAVAILABLE",
    }
)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_TEXT = re.compile(
    r"rate.?limit|too many requests|timed? ?out|temporar|unavailable|connection (?:refused|reset|error|aborted)"
    r"|could not connect|try again",
    re.IGNORECASE,
)
_ERROR_COUNT = re.compile(r"\b(\d+) errors?\b", re.IGNORECASE)
_MAX_MESSAGE = 500


@dataclass(frozen=True)
class ReportedError:
    """A failure a tool reported as data: its message, the server's error code if any, and whether to retry."""

    message: str
    code: str | None
    transient: bool


def _text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("message") or value.get("error") or value
    return str(value).strip()[:_MAX_MESSAGE]


def _transient(code: str | None, status: Any, message: str) -> bool:
    return (
        (code or "").upper() in _TRANSIENT_CODES
        or (isinstance(status, int) and status in _TRANSIENT_STATUS)
        or bool(_TRANSIENT_TEXT.search(message))
    )


def _audit_errors(content: dict[str, Any]) -> str | None:
    """The failed checks of an audit report that counts errors, or None when it counts none."""
    checks: list[Any] = content["checks"] if isinstance(content.get("checks"), list) else []
    failed = [c for c in checks if isinstance(c, dict) and c.get("status") == "error"]
    if failed:
        names = "; ".join(f"{c.get('name')}: {_text(c.get('description') or c.get('details'))}" for c in failed[:3])
        return f"{len(failed)} of {len(checks)} audit checks ended in error ({names})"
    summaries = [content.get("summary"), (content.get("executive_summary") or {}).get("summary")]
    for summary in summaries:
        found = _ERROR_COUNT.search(summary) if isinstance(summary, str) else None
        if found and int(found.group(1)) > 0:
            return f"the audit reports errors: {summary}"
    if content.get("status") == "completed_with_errors":
        return f"the audit completed with errors: {content.get('summary') or 'no details given'}"
    return None


def reported_error(content: Any) -> ReportedError | None:
    """The failure ``content`` (a tool's structured reply) reports, or None for a real result."""
    if not isinstance(content, dict):
        return None
    code = content.get("error_code") if isinstance(content.get("error_code"), str) else None
    status = content.get("status_code")
    if content.get("success") is False:
        error = content.get("error")
        code = code or (error if isinstance(error, str) and error.isupper() else None)
        message = _text(content.get("message") or error or "the tool reported failure")
        return ReportedError(message, code, _transient(code, status, message))
    error = content.get("error")
    if error and content.get("success") is not True:
        message = _text(error)
        return ReportedError(message, code, _transient(code, status, message))
    if content.get("status") in ("error", "unhealthy", "failed"):
        message = _text(content.get("message") or content.get("details") or f"status {content.get('status')}")
        return ReportedError(message, code, _transient(code, status, message))
    audit = _audit_errors(content)
    if audit is not None:
        return ReportedError(audit, code, _transient(code, status, audit))
    return None
