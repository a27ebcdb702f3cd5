"""The hand-written happy-path records must be exactly the texts the generic encoders give.

Why it matters: an event is read back by pydantic and SSE clients, an audit body is hashed as it stands (so it
must be canonical JSON for ``audit_verify``), and the finish script reads ``duration_ms`` from the head of the
stored outcome.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.models.run import ErrorInfo
from orchestrator.models.workflow import PlannedStep
from orchestrator.state import events as ev
from orchestrator.state import step_records as records
from orchestrator.state.audit import canonical_json
from orchestrator.state.runs import cap_result, outcome_json

SPEC = PlannedStep.model_validate(
    {
        "step_id": "s-1.a",
        "name": "ping",
        "action": "cmdb.ping",
        "agent_id": "cmdb-agent",
        "domain": "cmdb",
        "target_domain": "cmdb",
        "access": "read",
        "idempotent": True,
        "parameters": {},
        "depends_on": [],
        "on_failure": "stop",
        "max_retries": 2,
        "timeout_seconds": 30.0,
    }
)


def compact(text: str) -> str:
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("actor", ["worker:cmdb-agent", 'worker:"odd"\\agent-é'])
def test_completed_records_are_the_generic_texts(actor: str) -> None:
    made = records.completed(actor, "run-9", SPEC, 3, 12.5)
    event = json.loads(made.event)
    assert made.event == compact(made.event)
    expected = ev.new_event_json(
        ev.STEP_COMPLETED,
        "run-9",
        {"step_id": "s-1.a", "agent_id": "cmdb-agent", "action": "cmdb.ping", "attempt": 3, "duration_ms": 12.5},
        actor,
    )
    assert {k: v for k, v in event.items() if k not in ("event_id", "timestamp")} == {
        k: v for k, v in json.loads(expected).items() if k not in ("event_id", "timestamp")
    }
    assert list(event) == list(json.loads(expected))
    body = json.loads(made.audit)
    assert made.audit == canonical_json(body)
    assert body["details"] == {"action": "cmdb.ping", "attempt": 3}
    assert (body["actor"], body["event_type"], body["target"], body["result"]) == (
        actor,
        "task_executed",
        "run-9/s-1.a",
        "success",
    )
    assert len(body["entry_id"]) == 32 and body["timestamp"] == event["timestamp"]


def test_started_event_keeps_the_attempt_token_and_a_missing_agent() -> None:
    text = records.started("worker:unassigned", "run-9", "s1", None)
    assert text == compact(text)
    event = ev.decode(text.replace('"@@attempt@@"', "2"))
    assert (event.event_type, event.correlation_id, event.payload) == (
        ev.STEP_STARTED,
        "run-9",
        {"step_id": "s1", "agent_id": None, "attempt": 2},
    )


def generic_outcome(result: Any, error: ErrorInfo | None = None, extra: dict[str, Any] | None = None) -> str:
    outcome = {
        "finished_at": "2026-01-01T00:00:00+00:00",
        "duration_ms": 1.5,
        "result": cap_result(result, 100) if result is not None else None,
        "error": error.model_dump() if error else None,
        "queue": "agent.q",
        **(extra or {}),
    }
    return json.dumps(outcome, default=str)


@pytest.mark.parametrize("result", [None, {"ok": True, "items": [1, 2]}, "x" * 150, {"when": object}])
def test_outcome_encodes_the_result_once_with_the_same_meaning(result: Any) -> None:
    text = outcome_json("2026-01-01T00:00:00+00:00", 1.5, result, 100, None, "agent.q", None)
    assert json.loads(text) == json.loads(generic_outcome(result))
    assert text.startswith('{"finished_at": "2026-01-01T00:00:00+00:00", "duration_ms": 1.5, ')


def test_outcome_with_an_error_or_extras_takes_the_generic_path() -> None:
    error = ErrorInfo(code="ORCH_7001", message="boom", details={})
    text = outcome_json("2026-01-01T00:00:00+00:00", 1.5, None, 100, error, "agent.q", {"stopped": "x"})
    assert text == generic_outcome(None, error, {"stopped": "x"})
