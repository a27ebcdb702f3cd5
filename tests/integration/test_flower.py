"""Flower tells the truth, behind basic auth that never shows in ``ps``.

One Flower (``itom-orch flower``, a subprocess with its credentials in the environment) watches the suite's
real workers. Through Flower's own API: a failed step is FAILURE (under the stop policy, and under the skip
policy while its dependent still runs and succeeds), a retried step is RETRY while its retry waits, and every
step task shows its run, step and action, never its parameters.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import keys
from orchestrator.embedded import free_port
from orchestrator.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import AGENT_IDS, Settings
from tests.integration.helpers import OPERATOR, definition, inject, release, step, uid, wait_until

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

    def task(self, task_id: str) -> dict[str, Any]:
        status, body = self.get(f"/api/task/info/{task_id}")
        return body if status == 200 and isinstance(body, dict) else {}

    def task_in(self, task_id: str, state: str) -> dict[str, Any] | None:
        """The task as Flower lists it under ``state`` (``/api/tasks?state=...``), if it is there."""
        status, body = self.get(f"/api/tasks?state={state}&limit=1000")
        return body.get(task_id) if status == 200 and isinstance(body, dict) else None


@pytest.fixture(scope="module")
def flower(redis_url: str, worker_pool: WorkerPool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flower]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("flower")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "FLOWER_"))}
    env.update(
        {
            "ORCH_REDIS__URL": redis_url,
            "ORCH_FLOWER__BASIC_AUTH": AUTH,
            "ORCH_DATA_DIR": str(data_dir),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", "flower", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    running = Flower(f"http://127.0.0.1:{port}", process)
    try:
        wait_until(lambda: running.get("/api/workers", auth=None)[0] == 401, timeout=60, interval=0.2, what="flower")
        wait_until(lambda: len(_workers_heard(running)) == len(AGENT_IDS), timeout=60, interval=0.2, what="workers")
        _until_task_events_on(running, Orchestrator(Settings(redis={"url": redis_url}, data_dir=data_dir)))
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


def test_failed_steps_are_failure_in_flower_with_run_step_and_action_and_no_parameters(
    orch: Orchestrator, flower: Flower, rclient: Any
) -> None:
    skipped, then, write = uid("skipped"), uid("then"), uid("write")
    inject(rclient, skipped, fail_times=1, retryable=False)
    inject(rclient, write, fail_times=1, retryable=False)
    secret = {"ci_class": "server", "name": uid("ci"), "fields": {"password": SECRET}}
    run = orch.start_workflow(
        OPERATOR,
        definition=definition(
            step(skipped, on_failure="skip"),
            step(then, deps=[skipped]),
            step(write, "cmdb.create", deps=[then], parameters=secret),
        ),
    )
    view = orch.wait_for_run(run.run_id, timeout=60)
    assert view.status.value == "failed" and [s.status.value for s in view.steps] == ["failed", "completed", "failed"]
    ids = {sid: keys.step_task_id(run.run_id, sid, 0) for sid in (skipped, then, write)}

    failed = {
        sid: wait_until(lambda sid=sid: flower.task_in(ids[sid], "FAILURE"), what=f"{sid} FAILURE")
        for sid in (skipped, write)
    }
    succeeded = wait_until(lambda: flower.task_in(ids[then], "SUCCESS"), what="the skipped step's dependent SUCCESS")
    for sid, action in ((skipped, "cmdb.ping"), (write, "cmdb.create")):
        shown = failed[sid]
        assert shown["name"] == keys.TASK_RUN_STEP
        assert f"'run_id': '{run.run_id}'" in shown["kwargs"] and f"'step_id': '{sid}'" in shown["kwargs"]
        assert f"'action': '{action}'" in shown["kwargs"]
        assert "StepFailed" in shown["exception"] and "ORCH_7001" in shown["exception"]
    assert "'action': 'cmdb.ping'" in succeeded["kwargs"]
    everything = json.dumps([flower.task(task_id) for task_id in ids.values()])
    assert SECRET not in everything and "password" not in everything
    assert "injected failure" not in everything  # the error's free text stays in run state (it may quote parameters)


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
    wait_until(lambda: rclient.get(f"{keys.fault_key(first_hold)}:pid"), what="documentator busy")
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
