"""The client commands as a newcomer meets them: a real `itom-orch` process, real workers, nothing surprising.

Why subprocesses: the tracebacks a newcomer saw came at interpreter exit (``AsyncResult.__del__`` after
``sys.meta_path`` is gone) and from the top-level error path; only a real process shows them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.service import Orchestrator
from tests.integration.conftest import DB_NO_WORKERS, db_url

pytestmark = pytest.mark.integration

ITOM = str(Path(sys.executable).parent / "itom-orch")
NOISE = ("Traceback", "meta_path", "Exception ignored")
FAN_OUT = {
    "template_id": "newcomer-fan-out",
    "name": "Fan-out and join",
    "version": "1.0.0",
    "steps": [
        {"step_id": "first", "action": "cmdb.ping"},
        *({"step_id": f"branch-{n}", "action": "cmdb.ping", "depends_on": ["first"]} for n in range(3)),
        {"step_id": "join", "action": "cmdb.ping", "depends_on": [f"branch-{n}" for n in range(3)]},
    ],
}


def itom(args: list[str], *, redis_url: str, data_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update({"ORCH_REDIS__URL": redis_url, "ORCH_DATA_DIR": str(data_dir), "COLUMNS": "200"})
    return subprocess.run([ITOM, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def assert_quiet(result: subprocess.CompletedProcess[str]) -> None:
    for noise in NOISE:
        assert noise not in result.stdout + result.stderr, result.stdout + result.stderr


def test_a_fan_out_workflow_waits_and_exits_without_a_traceback(
    orch: Orchestrator, redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "newcomer-fan-out.json").write_text(json.dumps(FAN_OUT))
    result = itom(["run", "newcomer-fan-out", "--wait", "--timeout", "90"], redis_url=redis_url, data_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_quiet(result)
    assert "completed" in result.stdout
    assert "Redis: redis://" in result.stderr  # which Redis the command used, on stderr
    run_id = result.stdout.split("started ", 1)[1].split()[0]
    assert [s.status.value for s in orch.get_run(run_id).steps] == ["completed"] * 5


def test_a_run_for_an_agent_nobody_serves_warns_and_an_unreachable_redis_is_one_line(
    redis_base: str, tmp_path: Path
) -> None:
    nobody = db_url(redis_base, DB_NO_WORKERS)  # a database of the suite's own server where no worker beats
    started = itom(["run", "incident-response", "-p", "ci_id=12345"], redis_url=nobody, data_dir=tmp_path)
    assert started.returncode == 0, started.stdout + started.stderr
    assert_quiet(started)
    assert "no live worker serves cmdb-agent" in started.stderr
    assert "no live worker serves csa-agent" in started.stderr
    down = itom(["status"], redis_url="redis://127.0.0.1:1/0", data_dir=tmp_path, timeout=60)
    assert down.returncode != 0
    assert_quiet(down)
    lines = [line for line in (down.stdout + down.stderr).splitlines() if line.strip()]
    assert any("ORCH_" in line for line in lines), lines
    assert len(lines) <= 3, lines  # which Redis, and the one-line error


def test_an_empty_dead_letter_list_says_so_and_a_bad_id_is_one_line(redis_base: str, tmp_path: Path) -> None:
    nobody = db_url(redis_base, DB_NO_WORKERS)
    empty = itom(["dlq", "list"], redis_url=nobody, data_dir=tmp_path)
    assert empty.returncode == 0, empty.stdout + empty.stderr
    assert "no dead letters" in empty.stdout
    bad = itom(["dlq", "show", "not-an-id"], redis_url=nobody, data_dir=tmp_path)
    assert bad.returncode == 2
    assert_quiet(bad)
    assert "ORCH_8003" in bad.stdout + bad.stderr


def test_cancel_says_who_cancelled_and_resume_says_what_a_generation_is(redis_base: str, tmp_path: Path) -> None:
    nobody = db_url(redis_base, DB_NO_WORKERS)  # nobody serves the run: it stays pending until cancelled
    started = itom(["run", "incident-response", "-p", "ci_id=web-prod-01"], redis_url=nobody, data_dir=tmp_path)
    assert started.returncode == 0, started.stdout + started.stderr
    run_id = started.stdout.split("started ", 1)[1].split()[0]
    cancelled = itom(["cancel", run_id], redis_url=nobody, data_dir=tmp_path)
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    assert_quiet(cancelled)
    assert "cancelled by admin:" in cancelled.stdout  # the local operator is admin:<user>
    assert "ORCH_" not in cancelled.stdout  # a normal outcome is not an error code
    resumed = itom(["resume", run_id], redis_url=nobody, data_dir=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "as generation 1" in resumed.stdout
    assert "each resume starts a new generation" in resumed.stdout
    itom(["cancel", run_id], redis_url=nobody, data_dir=tmp_path)  # leave nothing queued for a later test
