"""Flower tells the truth, behind basic auth that never shows in ``ps``.

One Flower (``itom-orch flower``, a subprocess with its credentials in the environment) watches the suite's
real workers. Through Flower's own API: a failed step is FAILURE (under the stop policy, and under the skip
policy while its dependent still runs and succeeds), a retried step is RETRY while its retry waits, and every
step task shows its run, step and action, never its parameters; its control buttons are off. In headless
Chromium, Flower's Failed filter lists the failed steps with run, step, action and error code
(``UI_SCREENSHOT_DIR=docs`` keeps the screenshot README shows).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import keys
from orchestrator.runtime.embedded import free_port
from orchestrator.runtime.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import AGENT_IDS, Settings
from tests.integration.helpers import OPERATOR, definition, inject, release, step, uid, wait_until
from tests.integration.test_workflow_view import CHROMIUM, CHROMIUM_ARGS, SCREENSHOT_DIR, TIMEOUT_MS
from tests.servers import need

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-pass"
AUTH = f"ops:{PASSWORD}"
SECRET = "hunter2-in-a-parameter"


@dataclass
class Flower:
    base: str
    process: subprocess.Popen[bytes]

    def get(self, path: str, auth: str | None = AUTH) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path)
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                body = response.read()
                return int(response.status), json.loads(body) if body.startswith((b"{", b"[")) else body
        except urllib.error.HTTPError as exc:
            return int(exc.code), None
        except OSError:
            return 0, None

    def post(self, path: str) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path, data=b"", method="POST")
        request.add_header("Authorization", "Basic " + base64.b64encode(AUTH.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()

    def task(self, task_id: str) -> dict[str, Any]:
        status, body = self.get(f"/api/task/info/{task_id}")
        return body if status == 200 and isinstance(body, dict) else {}

    def task_in(self, task_id: str, state: str) -> dict[str, Any] | None:
        """The task as Flower lists it under ``state`` (``/api/tasks?state=...``), if it is there."""
        status, body = self.get(f"/api/tasks?state={state}&limit=1000")
        return body.get(task_id) if status == 200 and isinstance(body, dict) else None


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flower")


@pytest.fixture(scope="module")
def service(redis_url: str, worker_pool: WorkerPool, data_dir: Path) -> Orchestrator:
    return Orchestrator(Settings(redis={"url": redis_url}, data_dir=data_dir))


@pytest.fixture(scope="module")
def flower(redis_url: str, service: Orchestrator, data_dir: Path) -> Iterator[Flower]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "FLOWER_"))}
    env.update(
        {
            "ORCH_REDIS__URL": redis_url,
            "ORCH_FLOWER__BASIC_AUTH": AUTH,
            "ORCH_DATA_DIR": str(data_dir),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli.main import main; main()", "flower", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    running = Flower(f"http://127.0.0.1:{port}", process)
    try:
        wait_until(lambda: running.get("/api/workers", auth=None)[0] == 401, timeout=60, interval=0.2, what="flower")
        wait_until(lambda: len(_workers_heard(running)) == len(AGENT_IDS), timeout=60, interval=0.2, what="workers")
        _until_task_events_on(running, service)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=20)


def _until_task_events_on(flower: Flower, service: Orchestrator) -> None:
    """Flower hears worker heartbeats at once but switches task events on by a broadcast of its own (repeated
    every few seconds): run a probe step every two seconds until Flower has seen one."""
    probes: list[str] = []
    started = 0.0

    def seen() -> bool:
        nonlocal started
        if time.monotonic() - started > 2:
            probes.append(keys.step_task_id(service.execute_task(OPERATOR, action="cmdb.ping").run_id, "task", 0))
            started = time.monotonic()
        return any(flower.task(probe) for probe in probes)

    wait_until(seen, timeout=60, interval=0.2, what="Flower seeing task events")


def _workers_heard(flower: Flower) -> set[str]:
    status, body = flower.get("/workers?json=1")
    names = [w.get("hostname", "") for w in body.get("data", [])] if status == 200 and isinstance(body, dict) else []
    return {name.split("@")[0] for name in names} & set(AGENT_IDS)


def test_flower_requires_basic_auth_that_never_shows_on_its_command_line(flower: Flower) -> None:
    assert flower.get("/api/workers", auth=None)[0] == 401
    assert flower.get("/api/workers", auth="ops:wrong")[0] == 401
    assert flower.get("/api/workers")[0] == 200
    cmdline = Path(f"/proc/{flower.process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "flower" in cmdline and PASSWORD not in cmdline and "basic" not in cmdline.lower()


def test_flowers_control_buttons_are_off_unless_asked_for(flower: Flower, failed_run: FailedRun) -> None:
    """Revoke, terminate, shutdown and apply bypass policy and audit: ``itom-orch flower`` runs read-only."""
    status, body = flower.post(f"/api/task/revoke/{failed_run.task_id(failed_run.write)}?terminate=true")
    assert status == 403 and "Read only" in body
    assert flower.post("/api/task/async-apply/orch.run_step")[0] == 403


@dataclass
class FailedRun:
    """A run whose skip-policy step fails (its dependent still runs and succeeds), then whose write fails."""

    run_id: str
    skipped: str
    then: str
    write: str

    def task_id(self, step_id: str) -> str:
        return keys.step_task_id(self.run_id, step_id, 0)


@pytest.fixture(scope="module")
def failed_run(service: Orchestrator, flower: Flower) -> FailedRun:
    skipped, then, write = uid("skipped"), uid("then"), uid("write")
    inject(service.redis, skipped, fail_times=1, retryable=False)
    inject(service.redis, write, fail_times=1, retryable=False)
    secret = {"ci_class": "server", "name": uid("ci"), "fields": {"password": SECRET}}
    run = service.start_workflow(
        OPERATOR,
        definition=definition(
            step(skipped, on_failure="skip"),
            step(then, deps=[skipped]),
            step(write, "cmdb.create", deps=[then], parameters=secret),
        ),
    )
    view = service.wait_for_run(run.run_id, timeout=60)
    assert view.status.value == "failed" and [s.status.value for s in view.steps] == ["failed", "completed", "failed"]
    return FailedRun(run.run_id, skipped, then, write)


def test_failed_steps_are_failure_in_flower_with_run_step_and_action_and_no_parameters(
    flower: Flower, failed_run: FailedRun
) -> None:
    run = failed_run
    for sid, action in ((run.skipped, "cmdb.ping"), (run.write, "cmdb.create")):
        shown = wait_until(lambda sid=sid: flower.task_in(run.task_id(sid), "FAILURE"), what=f"{sid} FAILURE")
        assert shown["name"] == keys.TASK_RUN_STEP
        assert f"'run_id': '{run.run_id}'" in shown["kwargs"] and f"'step_id': '{sid}'" in shown["kwargs"]
        assert f"'action': '{action}'" in shown["kwargs"]
        assert "StepFailed" in shown["exception"] and "ORCH_7001" in shown["exception"]
    succeeded = wait_until(lambda: flower.task_in(run.task_id(run.then), "SUCCESS"), what="the dependent SUCCESS")
    assert "'action': 'cmdb.ping'" in succeeded["kwargs"]
    everything = json.dumps([flower.task(run.task_id(sid)) for sid in (run.skipped, run.then, run.write)])
    assert SECRET not in everything and "password" not in everything
    assert "injected failure" not in everything  # the error's free text stays in run state (it may quote parameters)


def test_flowers_failed_filter_lists_the_failed_steps_in_a_browser(flower: Flower, failed_run: FailedRun) -> None:
    """What an operator sees: Flower's Tasks page, the Failed filter on (the screenshot README shows)."""
    need(Path(CHROMIUM).exists(), f"no {CHROMIUM} (Debian's chromium package; .ci/run installs it)")
    from playwright.async_api import async_playwright

    run = failed_run
    wait_until(lambda: flower.task_in(run.task_id(run.write), "FAILURE"), what="Flower saw the failure")

    async def failed_rows(shot: Path) -> list[str]:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                context = await browser.new_context(
                    viewport={"width": 1600, "height": 520}, http_credentials={"username": "ops", "password": PASSWORD}
                )
                page = await context.new_page()
                await page.goto(f"{flower.base}/tasks", timeout=TIMEOUT_MS)
                await page.click("button.task-state-filter[data-task-state=FAILURE]", timeout=TIMEOUT_MS)
                for sid in (run.skipped, run.write):
                    await page.wait_for_selector(f'#tasks-table tr[id="{run.task_id(sid)}"]', timeout=TIMEOUT_MS)
                rows: list[str] = await page.locator("#tasks-table tbody tr").all_inner_texts()
                await page.screenshot(path=str(shot), full_page=True)
                return rows
            finally:
                await browser.close()

    shot = Path(tempfile.mkdtemp()) / "flower-failed.png"
    rows = asyncio.run(failed_rows(shot))
    mine = [row for row in rows if run.run_id in row]
    assert len(mine) == 2 and all("FAILURE" in row for row in mine), rows
    assert any("'action': 'cmdb.create'" in row and "ORCH_7001" in row for row in mine), mine
    assert not any(f"'{run.then}'" in row for row in rows)
    if SCREENSHOT_DIR:
        shutil.copy(shot, SCREENSHOT_DIR / "flower-failed.png")


def test_a_retried_step_is_retry_while_its_retry_waits_then_succeeds(
    orch: Orchestrator, flower: Flower, rclient: Any
) -> None:
    """The documentator has one pool process: a held step keeps it busy, so the retry waits in its queue."""
    first_hold, retried, second_hold = uid("hold"), uid("retried"), uid("hold")
    diagram = {"ci_id": "web-prod-01"}
    inject(rclient, first_hold, hold=30)
    inject(rclient, second_hold, hold=30)
    inject(rclient, retried, fail_times=1, retryable=True)

    def start(step_id: str, **extra: Any) -> str:
        body = definition(step(step_id, "documentation.diagram", parameters=diagram, **extra))
        return orch.start_workflow(OPERATOR, definition=body).run_id

    blocker = start(first_hold)
    wait_until(lambda: rclient.get(keys.fault_mark_key(first_hold, "pid")), what="documentator busy")
    run_id = start(retried, on_failure="retry", max_retries=2)
    second = start(second_hold)  # queued behind the retried step: it takes the worker when the first attempt fails
    release(rclient, first_hold)
    task_id = keys.step_task_id(run_id, retried, 0)
    try:
        waiting = wait_until(lambda: flower.task_in(task_id, "RETRY"), timeout=30, what="RETRY in Flower")
        assert "'action': 'documentation.diagram'" in waiting["kwargs"]
        assert orch.get_run(run_id).steps[0].status.value == "retrying"
    finally:
        release(rclient, second_hold)
    assert orch.wait_for_run(run_id, timeout=30).status.value == "completed"
    done = wait_until(lambda: flower.task_in(task_id, "SUCCESS"), what="SUCCESS after the retry")
    assert done["retries"] == 1 and done["retried"]
    assert "'action': 'documentation.diagram'" in done["kwargs"]  # the retry's message kept its kwargsrepr
    for other in (blocker, second):
        assert orch.wait_for_run(other, timeout=30).status.value == "completed"
