"""What an action handler receives: its parameters, where it runs, and how to read earlier results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ActionContext:
    """One execution of one action on one agent.

    ``idempotency_key`` is stable across redeliveries and retries of the same step: write handlers pass it to
    the system they change so that a second delivery finds the first effect instead of repeating it.
    ``earlier_results`` returns ``{step_id: result}`` for every completed step of the run (lazy: one Redis
    read, only when a handler asks).
    """

    run_id: str
    step_id: str
    agent_id: str
    action: str
    params: dict[str, Any]
    idempotency_key: str
    timeout_seconds: float
    attempt: int = 1
    earlier_results: Callable[[], dict[str, Any]] = field(default=lambda: {})
