"""``itom-orch demo`` end to end as a user runs it: with the local Redis, and with an embedded one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.runtime.embedded import redis_server_binary
from tests.integration.conftest import DB_DEMO, _redis_or_skip, db_url

pytestmark = pytest.mark.integration

_MAIN = "from orchestrator.cli.main import main; main()"
DEMO = [sys.executable, "-c", _MAIN, "demo"]
# The demo as a terminal starts it, whatever started this suite: a shell starts a background job with SIGINT
# ignored, a child inherits that, and Python then leaves Ctrl-C ignored (the demo would run to its end).
DEMO_AT_A_TERMINAL = [
    sys.executable,
    "-c",
    f"import signal; signal.signal(signal.SIGINT, signal.default_int_handler); {_MAIN}",
    "demo",
]


def _demo_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without its ``ORCH_*`` settings, the demo's data under ``data_dir``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update({"ORCH_DATA_DIR": str(data_dir), **extra})
    return env


def _run_demo(env_extra: dict[str, str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = _demo_env(data_dir, COLUMNS="160", **env_extra)
    return subprocess.run(DEMO, env=env, capture_output=True, text=True, timeout=240, check=False)


def test_demo_completes_on_a_configured_redis(tmp_path: Path, redis_base: str) -> None:
    url = db_url(redis_base, DB_DEMO)
    _redis_or_skip(url).flushdb()  # a database of the suite's own server
    result = _run_demo({"ORCH_REDIS__URL": url}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(configured)" in result.stdout
    for step in ("assess-impact", "route-to-agent", "create-ticket"):
        assert step in result.stdout
    assert "demo completed" in result.stdout
    assert "workflow_completed" in result.stdout  # the run's audit trail is printed


def test_demo_completes_on_an_embedded_redis_and_stops_it(tmp_path: Path) -> None:
    if redis_server_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no embedded redis-server is available")
        pytest.skip("no redis-server binary for an embedded Redis")
    result = _run_demo({"ORCH_REDIS__EMBEDDED": "true"}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(embedded)" in result.stdout and "demo completed" in result.stdout
    url = (tmp_path / "redis.url").read_text().strip()
    port = url.rsplit(":", 1)[1].split("/")[0]
    leftovers = subprocess.run(["pgrep", "-f", f"redis-server.*{port}"], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == "", "the embedded redis-server must be stopped when the demo exits"


def _workers_on(data_dir: Path) -> list[int]:
    """Celery worker processes started with this ``ORCH_DATA_DIR`` (so other tests' workers never count)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"workers.app" in cmdline and f"ORCH_DATA_DIR={data_dir}".encode() in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


def _signal_state(pid: int) -> dict[str, str]:
    """The signal masks of ``pid`` and of each of its threads (what a lost Ctrl-C needs explained)."""
    found: dict[str, str] = {}
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        try:
            lines = (task / "status").read_text().splitlines()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
        found[task.name] = " ".join(
            f"{k}={fields.get(k, '?').strip()}" for k in ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
        )
    return found


def test_ctrl_c_leaves_no_process_behind(tmp_path: Path, redis_base: str) -> None:
    import signal

    from tests.integration.helpers import wait_until

    url = db_url(redis_base, DB_DEMO)
    _redis_or_skip(url).flushdb()  # a database of the suite's own server
    env = _demo_env(tmp_path, ORCH_REDIS__URL=url)
    output = tmp_path / "demo.out"  # what the demo printed, shown if it did not stop on Ctrl-C
    with output.open("wb") as sink:
        demo = subprocess.Popen(DEMO_AT_A_TERMINAL, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: len(_workers_on(tmp_path)) >= 6, timeout=60, what="the demo's workers")
        signalled = time.monotonic()
        demo.send_signal(signal.SIGINT)
        signals = _signal_state(demo.pid)
        code = demo.wait(timeout=60)
        took = time.monotonic() - signalled
        assert code != 0, (
            f"exit {code} {took:.1f}s after Ctrl-C; its signal state then: {signals}; the demo printed:\n"
            f"{output.read_text()[:1500]}\n...\n{output.read_text()[-1500:]}"
        )
    finally:
        if demo.poll() is None:
            demo.kill()
    wait_until(lambda: not _workers_on(tmp_path), timeout=20, what="every worker to exit")


def test_a_killed_demo_leaves_no_worker_behind(tmp_path: Path, redis_base: str) -> None:
    """SIGKILL runs no clean-up in the demo: each worker stops itself when the process that started it dies."""
    import signal

    from tests.integration.helpers import wait_until

    url = db_url(redis_base, DB_DEMO)
    _redis_or_skip(url).flushdb()  # a database of the suite's own server
    env = _demo_env(tmp_path, ORCH_REDIS__URL=url)
    demo = subprocess.Popen(DEMO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(_workers_on(tmp_path)) >= 6, timeout=60, what="the demo's workers")
    finally:
        demo.send_signal(signal.SIGKILL)
        demo.wait(timeout=30)
    wait_until(lambda: not _workers_on(tmp_path), timeout=60, what="every worker to stop after the demo was killed")
