"""Pending clarifications: a chat message parked in Redis until the user answers which domain they meant.

Why Redis with a TTL: a pending token must survive a restart, be seen by every API process and expire on its
own. A token is one key (``keys.clarification_key``) that expires on its own, and
``take`` is a single GETDEL, so two concurrent answers cannot both consume the same token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from uuid import uuid4

import redis
from pydantic import ValidationError

from orchestrator import keys
from orchestrator.errors import StateCorruptedError, StateReadError, StateWriteError
from orchestrator.models.chat import Clarification, PendingClarification

# redis-py 8 types replies as unions of bytes/str/awaitables; this store always uses decode_responses=True.
SyncRedis = Any

DEFAULT_TTL_SECONDS = 900
_TOKEN = re.compile(r"[0-9a-f]{32}")


def is_token(value: str) -> bool:
    """Tokens are 32 lowercase hex chars; anything else is never looked up."""
    return _TOKEN.fullmatch(value) is not None


class ClarificationStore:
    """Put, peek at and take (atomically, once) pending clarifications."""

    def __init__(self, redis_client: SyncRedis, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self._redis = redis_client
        self.ttl_seconds = ttl_seconds

    def put(
        self,
        message: str,
        session_id: str | None,
        clarification: Clarification,
        *,
        context: Mapping[str, Any] | None = None,
    ) -> str:
        """Park ``message`` and return its token; the key expires after ``ttl_seconds``."""
        token = uuid4().hex
        pending = PendingClarification(
            token=token,
            message=message,
            session_id=session_id,
            context=dict(context or {}),
            clarification=clarification,
        )
        try:
            self._redis.set(keys.clarification_key(token), pending.model_dump_json(), ex=self.ttl_seconds)
        except redis.RedisError as exc:
            raise StateWriteError(f"Could not store the pending clarification: {exc}; check Redis") from exc
        return token

    def peek(self, token: str) -> PendingClarification | None:
        """The pending clarification, left in place; None when unknown, expired or already taken."""
        if not is_token(token):
            return None
        try:
            raw = self._redis.get(keys.clarification_key(token))
        except redis.RedisError as exc:
            raise StateReadError(f"Could not read the pending clarification: {exc}; check Redis") from exc
        return _parse(token, raw)

    def take(self, token: str) -> PendingClarification | None:
        """The pending clarification, removed in the same step (GETDEL): a token answers at most once."""
        if not is_token(token):
            return None
        try:
            raw = self._redis.getdel(keys.clarification_key(token))
        except redis.RedisError as exc:
            raise StateReadError(f"Could not take the pending clarification: {exc}; check Redis") from exc
        return _parse(token, raw)


def _parse(token: str, raw: str | bytes | None) -> PendingClarification | None:
    if raw is None:
        return None
    try:
        return PendingClarification.model_validate_json(raw)
    except ValidationError as exc:
        raise StateCorruptedError(
            f"Pending clarification {token} is unreadable; ask the user to send the message again",
            {"token": token},
        ) from exc
