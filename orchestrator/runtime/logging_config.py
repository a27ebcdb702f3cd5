"""Structured JSON logs, one object per line, with secrets redacted.

Why: operators ship logs to a search engine; JSON keeps fields queryable, and redaction (keys named like
password, token, secret, credential, auth, api_key, at any depth) keeps credentials out of them. The run id
travels in a context variable so every line a step logs carries it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

SECRET_KEYS = frozenset(
    {
        "password",
        "api_key",
        "secret",
        "token",
        "credential",
        "auth",
        "authorization",
        "mcp_token",
        "basic_auth",
        "tokens",
    }
)
REDACTED = "***"

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
agent_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("agent_name", default=None)

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(value: Any) -> Any:
    """Replace the values of secret-looking keys, recursively through dicts and lists."""
    if isinstance(value, dict):
        return {k: (REDACTED if str(k).lower() in SECRET_KEYS else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "module": record.module,
            "function": record.funcName,
            "message": record.getMessage(),
        }
        if (cid := correlation_id.get()) is not None:
            data["correlation_id"] = cid
        if (agent := agent_name.get()) is not None:
            data["agent_name"] = agent
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        if extras:
            data["data"] = redact(extras)
        if record.exc_info and record.exc_info[0] is not None:
            data["exception"] = {
                "type": record.exc_info[0].__name__,
                "message": str(record.exc_info[1]),
                "traceback": self.formatException(record.exc_info),
            }
        elif record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str)


def configure_logging(level: str = "INFO", *, stream: Any = None) -> None:
    """Route the root logger through the JSON formatter (idempotent); quiet noisy libraries."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("asyncio", "httpx", "httpcore", "httpx2", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
