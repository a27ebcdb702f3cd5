"""``itom-orch up`` as a user runs it: a real process on a private redis-server, its workers, its API and the beat
it runs as a thread of its own process, then Ctrl-C.

Why a real process: only a real ``up`` shows that the beat thread fires schedules beside uvicorn and the supervised
workers, that no separate beat process is started (the dev stack's memory budget), and that Ctrl-C stops it all
within seconds, says "stopped" and releases the beat's lock for the next beat.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from orchestrator.models.common import RunStatus
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from tests.integration.helpers import ADMIN, OPERATOR, logging_writes, uid, wait_until
from tests.integration.test_schedules_live import make_due
from tests.servers import free_port, private_redis

pytestmark = pytest.mark.integration

ITOM = str(Path(sys.executable).parent / "itom-orch")


def _descendants(pid: int) -> list[str]:
    """Command lines of every process below ``pid``."""
    found: list[str] = []
    for child in map(int, _children(pid)):
        cmdline = _cmdline(child)
        if cmdline:
            found.append(cmdline)
            found.extend(_descendants(child))
    return found


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_up_fires_a_schedule_from_its_beat_thread_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as server:
        settings = Settings(redis={"url": server.url()}, data_dir=tmp_path / "data")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
        env.update(
            {
                "ORCH_REDIS__URL": server.url(),
                "ORCH_DATA_DIR": str(settings.data_dir),
                "ORCH_SCHEDULES__MAX_INTERVAL_SECONDS": "1",
                "COLUMNS": "200",
            }
        )
        port = free_port()
        log = tmp_path / "up.log"
        with log.open("wb") as out:
            up = subprocess.Popen([ITOM, "up", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(
                lambda: _healthy(f"http://127.0.0.1:{port}/api/health") or up.poll() is not None,
                timeout=120,
                what="`up` to serve its API",
            )
            assert up.poll() is None, log.read_text()
            processes = _descendants(up.pid)
            assert not [p for p in processes if " beat" in p], processes  # the beat is a thread, not a process
            assert len(processes) == 12, processes  # six agents, a prefork main process and one child each

            orch = Orchestrator(settings)
            schedule_id = uid("up-nightly")
            orch.add_schedule(
                OPERATOR, {"schedule_id": schedule_id, "template_id": "cmdb-health-check", "cron": "0 3 * * *"}
            )
            make_due(orch, schedule_id)
            view = wait_until(
                lambda: (v := orch.get_schedule(OPERATOR, schedule_id)).last_run_id and v,
                timeout=60,
                what="up's beat to fire the schedule",
            )
            run = orch.wait_for_run(view.last_run_id, timeout=60)
            assert run.status == RunStatus.COMPLETED, run.error
            assert run.created_by == "scheduler"
        finally:
            up.send_signal(signal.SIGINT)
            stopping = time.monotonic()
            up.wait(timeout=60)
        output = log.read_text()
        assert up.returncode == 0, output
        assert time.monotonic() - stopping < 30, output
        assert output.rstrip().endswith("stopped"), output
        assert "Traceback" not in output, output
        client = redis.Redis.from_url(server.url())
        assert not client.exists("orch:schedule::lock")  # released: a next beat fires at once


def test_up_starts_its_embedded_redis_again_when_it_is_killed_and_keeps_its_runs(tmp_path: Path) -> None:
    """The out-of-memory killer picks the largest process: ``up`` restarts its Redis on the same URL, from its
    append-only file (a run finished before the kill is still there, the audit chain still verifies), the workers
    and the API reconnect, and a run started after it completes."""
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update({"ORCH_REDIS__EMBEDDED": "true", "ORCH_DATA_DIR": str(data_dir), "COLUMNS": "200"})
    port = free_port()
    health = f"http://127.0.0.1:{port}/api/health"
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen([ITOM, "up", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _healthy(health) or up.poll() is not None, timeout=120, what="`up` to serve its API")
        assert up.poll() is None, log.read_text()
        url = (data_dir / "redis.url").read_text().strip()
        client = redis.Redis.from_url(url, decode_responses=True)
        wait_until(lambda: logging_writes(client), what="the append-only file to be written")
        orch = Orchestrator(Settings(redis={"url": url}, data_dir=data_dir))
        before = orch.execute_task(OPERATOR, action="cmdb.ping")
        assert orch.wait_for_run(before.run_id, timeout=60).status == RunStatus.COMPLETED
        (server,) = [int(pid) for pid in _children(up.pid) if "redis-server" in _cmdline(int(pid))]
        os.kill(server, signal.SIGKILL)
        wait_until(lambda: not _healthy(health), timeout=10, what="health to notice the dead Redis")
        wait_until(lambda: _healthy(health), timeout=60, what="health to be 200 again")
        restarted = [int(pid) for pid in _children(up.pid) if "redis-server" in _cmdline(int(pid))]
        assert restarted and server not in restarted  # a new server, and the dead one reaped (no zombie)
        assert orch.get_run(before.run_id).status == RunStatus.COMPLETED  # written before the kill: kept
        assert orch.audit_verify(ADMIN)["ok"]
        run = orch.execute_task(OPERATOR, action="cmdb.ping")
        assert orch.wait_for_run(run.run_id, timeout=60).status == RunStatus.COMPLETED
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    output = log.read_text()
    assert up.returncode == 0, output
    assert "the embedded Redis answers again" in output, output
    assert output.rstrip().endswith("stopped"), output


def _children(pid: int) -> list[str]:
    """Children of every thread of ``pid`` (the watchdog thread starts the new server: it is that thread's child)."""
    found: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.extend((task / "children").read_text().split())
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return found


def _cmdline(pid: int) -> str:
    cmdline = Path(f"/proc/{pid}/cmdline")
    return cmdline.read_bytes().replace(b"\0", b" ").decode() if cmdline.exists() else ""
