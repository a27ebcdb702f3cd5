"""Schedules on a real beat and real workers, on the suite's own Redis: the beat process (``itom-orch beat``)
and the beat thread ``itom-orch up`` runs (``schedules.embedded``), each test once with each.

A due schedule starts its run through the service as ``scheduler`` (audited under that actor) and the run
completes on the workers; a schedule whose template file disappeared is reported (list state, audit entry,
``schedule.failed`` event) instead of failing silently. Schedules are made due by moving their last run back
two days with celery-redbeat's own API, so no test waits for a wall-clock minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redbeat.schedulers import RedBeatSchedulerEntry

from orchestrator.models.common import RunStatus, utcnow
from orchestrator.schedules.beat import embedded_beat
from orchestrator.schedules.manager import SCHEDULE_FAILED
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from tests.integration.helpers import OPERATOR, uid, wait_until

pytestmark = pytest.mark.integration


Alive = Callable[[], bool]


@pytest.fixture(params=["process", "embedded"])
def beat(request: pytest.FixtureRequest, settings: Settings, worker_pool: Any) -> Iterator[Alive]:
    """A beat on the test Redis with a one-second tick, stopped (lock released) after; yields "is it alive"."""
    if request.param == "embedded":
        schedules = settings.schedules.model_copy(update={"max_interval_seconds": 1})
        thread = embedded_beat(settings.model_copy(update={"schedules": schedules}))
        thread.start()
        try:
            yield lambda: thread.alive and thread.restarts == 0
        finally:
            thread.stop()
        assert not thread.alive
        return
    yield from _beat_process(settings)


def _beat_process(settings: Settings) -> Iterator[Alive]:
    """``itom-orch beat`` as a process (SIGTERM at the end)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(
        {
            "ORCH_REDIS__URL": settings.redis_url,
            "ORCH_DATA_DIR": str(settings.data_dir),
            "ORCH_SCHEDULES__MAX_INTERVAL_SECONDS": "1",
        }
    )
    quiet = os.environ.get("ORCH_TEST_WORKER_LOGS") != "1"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli.main import main; main()", "beat", "-l", "warning"],
        env=env,
        stdout=subprocess.DEVNULL if quiet else None,
        stderr=subprocess.DEVNULL if quiet else None,
    )
    try:
        yield lambda: proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def make_due(orch: Orchestrator, schedule_id: str) -> None:
    entry = RedBeatSchedulerEntry.from_key(orch.scheduling.store.key(schedule_id), app=orch.app)
    entry.reschedule(last_run_at=utcnow() - timedelta(days=2))  # before the last cron match: overdue


def test_a_due_schedule_starts_its_run_as_scheduler_and_it_completes(orch: Orchestrator, beat: Alive) -> None:
    schedule_id = uid("nightly")
    added = orch.add_schedule(
        OPERATOR,
        {
            "schedule_id": schedule_id,
            "template_id": "cmdb-health-check",
            "cron": "0 3 * * *",
            "parameters": {"stale_days": 30},
        },
    )
    assert added.state == "ok" and added.runs_started == 0
    try:
        make_due(orch, schedule_id)
        view = wait_until(
            lambda: orch.get_schedule(OPERATOR, schedule_id).last_run_id and orch.get_schedule(OPERATOR, schedule_id),
            timeout=60,
            what="the beat to fire the schedule",
        )
        assert beat()
        run = orch.wait_for_run(view.last_run_id, timeout=60)
        assert run.status == RunStatus.COMPLETED, run.error
        assert run.created_by == "scheduler" and run.template_id == "cmdb-health-check"
        assert run.parameters == {"stale_days": 30, "ci_class": None}
        started = orch.audit_query(OPERATOR, event_type="workflow_started", target=run.run_id)
        assert [e.actor for e in started] == ["scheduler"]
        fired = orch.audit_query(OPERATOR, event_type="schedule_fired", target=schedule_id)
        assert fired[0].actor == "scheduler" and fired[0].details["run_id"] == run.run_id
        after = orch.get_schedule(OPERATOR, schedule_id)
        assert after.runs_started == 1 and after.state == "ok"
        assert after.next_run_at is not None and after.next_run_at.endswith("+00:00")
    finally:
        orch.remove_schedule(OPERATOR, schedule_id)


def test_a_schedule_whose_template_vanished_reports_it_instead_of_failing_silently(
    orch: Orchestrator, settings: Settings, beat: Alive
) -> None:
    template_id = uid("tmp-tpl")
    folder = settings.user_templates_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(folder) / f"{template_id}.json"
    path.write_text(
        json.dumps(
            {"template_id": template_id, "name": "short-lived", "steps": [{"step_id": "p", "action": "cmdb.ping"}]}
        )
    )
    schedule_id = uid("doomed")
    try:
        orch.add_schedule(OPERATOR, {"schedule_id": schedule_id, "template_id": template_id, "cron": "*/5 * * * *"})
        path.unlink()
        listed = {v.schedule_id: v for v in orch.list_schedules(OPERATOR)}[schedule_id]
        assert listed.state == "invalid" and listed.problem is not None
        assert listed.problem.code == "ORCH_3001" and template_id in listed.problem.message
        after = orch.events.last_id()
        make_due(orch, schedule_id)
        failed = wait_until(
            lambda: orch.audit_query(OPERATOR, event_type="schedule_failed", target=schedule_id),
            timeout=60,
            what="the beat to report the failed start",
        )
        assert failed[0].actor == "scheduler" and failed[0].result == "failure"
        assert failed[0].details["error"]["code"] == "ORCH_3001"
        events = orch.event_history(types=[SCHEDULE_FAILED], after=after)
        assert [e.payload["schedule_id"] for e in events] == [schedule_id]
        view = orch.get_schedule(OPERATOR, schedule_id)
        assert view.failures == 1 and view.last_run_id is None
    finally:
        path.unlink(missing_ok=True)
        orch.remove_schedule(OPERATOR, schedule_id)
