"""Schedules on fakeredis: cron and parameters validated when added, listing that reports what broke, firing
through the service as ``scheduler``, the beat's scheduler, and the HTTP and MCP front doors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from fastmcp import Client
from fastmcp.exceptions import ToolError
from redbeat.schedulers import RedBeatSchedulerEntry

from orchestrator.asgi import create_app
from orchestrator.errors import OrchestratorError
from orchestrator.mcp import create_mcp
from orchestrator.models.common import utcnow
from orchestrator.schedules import cron
from orchestrator.schedules.beat import OrchestratorScheduler
from orchestrator.schedules.manager import SCHEDULE_FAILED, SCHEDULE_FIRED
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator
from tests.unit.test_http_fixtures import OPERATOR, VIEWER, service  # noqa: F401

OPS = Principal("otto", "operator")
LOOKER = Principal("vera", "viewer")
NIGHTLY = {
    "schedule_id": "nightly",
    "template_id": "incident-response",
    "cron": "0 3 * * *",
    "parameters": {"ci_id": "web-01"},
}


def code_of(call: Any) -> str:
    with pytest.raises(OrchestratorError) as caught:
        call()
    return f"{caught.value.code} {caught.value.message}"


# -- cron ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "normalized"),
    [("0 3 * * *", "0 3 * * *"), ("  */15   * * *  mon-fri ", "*/15 * * * mon-fri"), ("@daily", "0 0 * * *")],
)
def test_cron_expressions_are_normalized(given: str, normalized: str) -> None:
    assert cron.normalize(given) == normalized


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("* * *", "3 field(s), not 5"),
        ("61 * * * *", "minute '61'"),
        ("0 24 * * *", "hour '24'"),
        ("0 0 * * 7", "day-of-week '7'"),
        ("0 0 * 13 *", "month-of-year '13'"),
        ("0 0 31 2 *", "never occurs"),
        ("@sometimes", "1 field(s)"),
        ("", "1 to 200 characters"),
    ],
)
def test_a_bad_cron_is_orch_8003_naming_the_field(given: str, fragment: str) -> None:
    message = code_of(lambda: cron.normalize(given))
    assert message.startswith("ORCH_8003") and fragment in message and "five fields" in message


def test_next_run_is_the_next_match_in_utc() -> None:
    after = cron.next_run("*/5 * * * *")
    assert after.minute % 5 == 0 and after.second == 0 and after.tzinfo is not None
    assert timedelta(0) <= after - utcnow() <= timedelta(minutes=5)


# -- adding ------------------------------------------------------------------------------------------------
def test_added_schedules_are_listed_with_their_next_run(service: Orchestrator) -> None:  # noqa: F811
    view = service.add_schedule(OPS, NIGHTLY)
    assert view.state == "ok" and view.created_by == "operator:otto" and view.runs_started == 0
    assert view.next_run_at is not None and view.next_run_at[11:19] == "03:00:00"
    assert [v.schedule_id for v in service.list_schedules(LOOKER)] == ["nightly"]
    audit = service.audit_query(OPS, event_type="schedule_added", target="nightly")
    assert audit[0].actor == "operator:otto" and audit[0].details["cron"] == "0 3 * * *"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"cron": "0 25 * * *"}, "ORCH_8003"),
        ({"template_id": "no-such-template"}, "ORCH_3001"),
        ({"parameters": {}}, "ORCH_3006"),
        ({"parameters": {"ci_id": "x", "colour": "red"}}, "ORCH_3006"),
        ({"schedule_id": "Bad Name"}, "ORCH_8003"),
        ({"priority": "urgent"}, "ORCH_8003"),
    ],
)
def test_a_schedule_that_could_not_start_is_refused_when_added(
    service: Orchestrator,  # noqa: F811
    change: dict[str, Any],
    expected: str,
) -> None:
    message = code_of(lambda: service.add_schedule(OPS, {**NIGHTLY, **change}))
    assert message.startswith(expected), message
    assert service.list_schedules(OPS) == []


@pytest.mark.parametrize(
    ("filters", "fragment"),
    [
        ({"stale": float("nan")}, "NaN or Infinity"),
        ({"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}, "nested"),
    ],
)
def test_schedule_parameters_every_start_would_refuse_are_refused_when_added(
    service: Orchestrator,  # noqa: F811
    filters: dict[str, Any],
    fragment: str,
) -> None:
    """A template may declare an object parameter: its value is bounded at the door, as a start's is."""
    folder: Path = service.settings.user_templates_dir
    folder.mkdir(parents=True, exist_ok=True)
    steps = [{"step_id": "p", "action": "cmdb.ping"}]
    template = {"name": "Filtered", "parameters": [{"name": "filters", "type": "object"}], "steps": steps}
    (folder / "filtered.json").write_text(json.dumps(template))
    spec = {"schedule_id": "filtered", "template_id": "filtered", "cron": "@hourly"}
    assert service.add_schedule(OPS, {**spec, "parameters": {"filters": {"stale": 30}}}).schedule_id == "filtered"
    service.remove_schedule(OPS, "filtered")
    message = code_of(lambda: service.add_schedule(OPS, {**spec, "parameters": {"filters": filters}}))
    assert message.startswith("ORCH_8003") and fragment in message, message
    assert service.list_schedules(OPS) == []


def test_duplicates_and_viewers_are_refused(service: Orchestrator) -> None:  # noqa: F811
    service.add_schedule(OPS, NIGHTLY)
    assert "already exists" in code_of(lambda: service.add_schedule(OPS, NIGHTLY))
    assert code_of(lambda: service.add_schedule(LOOKER, {**NIGHTLY, "schedule_id": "other"})).startswith("ORCH_6001")
    assert code_of(lambda: service.remove_schedule(LOOKER, "nightly")).startswith("ORCH_6001")


def test_remove_is_audited_and_a_missing_schedule_is_orch_8004(service: Orchestrator) -> None:  # noqa: F811
    service.add_schedule(OPS, NIGHTLY)
    assert service.remove_schedule(OPS, "nightly") == {"schedule_id": "nightly", "removed": True}
    assert service.list_schedules(OPS) == []
    assert service.audit_query(OPS, event_type="schedule_removed", target="nightly")
    assert code_of(lambda: service.remove_schedule(OPS, "nightly")).startswith("ORCH_8004")


# -- firing ------------------------------------------------------------------------------------------------
def test_firing_starts_the_run_as_scheduler_once_per_minute(service: Orchestrator) -> None:  # noqa: F811
    service.add_schedule(OPS, NIGHTLY)
    run = service.fire_schedule("nightly")
    assert run is not None and run.created_by == "scheduler" and run.template_id == "incident-response"
    assert run.parameters["ci_id"] == "web-01"
    again = service.fire_schedule("nightly")  # a second beat in the same minute: same run
    assert again is not None and again.run_id == run.run_id
    started = service.audit_query(OPS, event_type="workflow_started", target=run.run_id)
    assert [e.actor for e in started] == ["scheduler"]
    assert service.audit_query(OPS, event_type="schedule_fired", target="nightly")[0].actor == "scheduler"
    assert [e.payload["schedule_id"] for e in service.event_history(types=[SCHEDULE_FIRED])][:1] == ["nightly"]
    view = service.get_schedule(OPS, "nightly")
    assert view.last_run_id == run.run_id and view.runs_started >= 1 and view.state == "ok"


def test_a_schedule_whose_template_broke_is_invalid_in_listings_and_fails_loudly(
    service: Orchestrator,  # noqa: F811
) -> None:
    folder: Path = service.settings.user_templates_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mine.json"
    path.write_text(json.dumps({"name": "Mine", "steps": [{"step_id": "p", "action": "cmdb.ping"}]}))
    service.add_schedule(OPS, {"schedule_id": "mine-hourly", "template_id": "mine", "cron": "@hourly"})
    path.write_text("{broken")
    listed = service.list_schedules(OPS)[0]
    assert listed.state == "invalid" and listed.problem is not None
    assert listed.problem.code == "ORCH_3006" and "mine.json" in listed.problem.message
    assert service.fire_schedule("mine-hourly") is None
    failed = service.audit_query(OPS, event_type="schedule_failed", target="mine-hourly")
    assert failed[0].actor == "scheduler" and failed[0].result == "failure"
    assert service.event_history(types=[SCHEDULE_FAILED])[0].payload["error"]["code"] == "ORCH_3006"
    path.write_text(json.dumps({"name": "Mine", "steps": [{"step_id": "p", "action": "cmdb.ping"}]}))
    view = service.get_schedule(OPS, "mine-hourly")
    assert view.state == "failing" and view.failures == 1  # fixed template: still shows the last failure


def test_the_beat_scheduler_fires_a_due_entry_through_the_service_and_advances_it(
    service: Orchestrator,  # noqa: F811
) -> None:
    service.add_schedule(OPS, NIGHTLY)
    app = service.app
    app.orch_service = service
    scheduler = OrchestratorScheduler(app=app, lazy=True)
    scheduler.lock_key = None  # no beat_init here, so no lock to extend
    assert service.get_schedule(OPS, "nightly").last_run_id is None
    scheduler.tick()
    assert service.get_schedule(OPS, "nightly").last_run_id is None  # not due yet
    entry = RedBeatSchedulerEntry.from_key(service.scheduling.store.key("nightly"), app=app)
    entry.reschedule(last_run_at=utcnow() - timedelta(days=2))
    scheduler.tick()
    fired = service.get_schedule(OPS, "nightly")
    assert fired.last_run_id is not None and fired.runs_started == 1
    scheduler.tick()
    assert service.get_schedule(OPS, "nightly").runs_started == 1  # advanced: not due again


# -- front doors -------------------------------------------------------------------------------------------
@pytest.fixture
def client(service: Orchestrator) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(service)) as test_client:
        yield test_client


def test_http_add_list_get_remove(client: TestClient) -> None:
    created = client.post("/api/schedules", headers=OPERATOR, json=NIGHTLY)
    assert created.status_code == 201 and created.json()["schedule_id"] == "nightly"
    listed = client.get("/api/schedules", headers=VIEWER).json()
    assert listed["count"] == 1 and listed["schedules"][0]["state"] == "ok"
    assert client.get("/api/schedules/nightly", headers=VIEWER).json()["cron"] == "0 3 * * *"
    assert client.post("/api/schedules", headers=VIEWER, json={**NIGHTLY, "schedule_id": "x"}).status_code == 403
    bad = client.post("/api/schedules", headers=OPERATOR, json={**NIGHTLY, "schedule_id": "y", "cron": "* *"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "ORCH_8003"
    assert client.post("/api/schedules", headers=OPERATOR, json={**NIGHTLY, "extra": 1}).status_code == 422
    assert client.delete("/api/schedules/nightly", headers=OPERATOR).json()["removed"] is True
    assert client.get("/api/schedules/nightly", headers=VIEWER).status_code == 404


def test_mcp_add_list_remove(service: Orchestrator) -> None:  # noqa: F811
    async def body() -> None:
        async with Client(create_mcp(service, local_principal=OPS)) as client:
            added = await client.call_tool("add_schedule", {**NIGHTLY})
            assert added.data["schedule_id"] == "nightly" and added.data["state"] == "ok"
            listed = await client.call_tool("list_schedules", {})
            assert listed.data["count"] == 1
            with pytest.raises(ToolError, match=r"^\[ORCH_8003\] Invalid cron"):
                await client.call_tool("add_schedule", {**NIGHTLY, "schedule_id": "z", "cron": "nope"})
            removed = await client.call_tool("remove_schedule", {"schedule_id": "nightly"})
            assert removed.data["removed"] is True

    anyio.run(body)
