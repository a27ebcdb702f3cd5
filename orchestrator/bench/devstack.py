"""Dev-stack figures: how fast the CLI answers and how fast and heavy `itom-orch up` is, on this machine.

Why a bench: these are figures of the product as a newcomer meets it (real subprocesses, a private embedded
Redis, nothing mocked), measured a few times, never asserted by timed tests. Memory is reported two ways: the
sum of PSS (each shared page divided among the processes that share it: what the machine really spends) and
the sum of RSS (shared pages counted once per process, as `ps` adds them up).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import AgentUnavailableError
from orchestrator.runtime.embedded import free_port, start_embedded

CLI = [sys.executable, "-c", "from orchestrator.cli.main import main; main()"]


@dataclass(frozen=True)
class DevStackFigure:
    help_seconds: tuple[float, ...]
    status_seconds: tuple[float, ...]
    up_ready_seconds: float
    up_pss_mb: float
    up_rss_mb: float
    up_processes: int
    bytecode: dict[str, bool]

    def as_dict(self) -> dict[str, object]:
        return {
            "help_seconds": {"runs": list(self.help_seconds), "median": round(statistics.median(self.help_seconds), 3)},
            "status_seconds": {
                "runs": list(self.status_seconds),
                "median": round(statistics.median(self.status_seconds), 3),
            },
            "up_ready_seconds": round(self.up_ready_seconds, 2),
            "up_memory_mb": {"pss": round(self.up_pss_mb, 1), "rss": round(self.up_rss_mb, 1)},
            "up_processes": self.up_processes,
            "bytecode": self.bytecode,
            "targets": {"help_s": 0.6, "status_s": 1.0, "up_ready_s": 15, "up_memory_mb": 700},
        }


def measure_devstack(repeat: int = 5) -> DevStackFigure:
    data_dir = Path(tempfile.mkdtemp(prefix="itom-orch-devstack-"))
    handle = start_embedded(data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update({"ORCH_DATA_DIR": str(data_dir), "ORCH_REDIS__URL": handle.url, "COLUMNS": "120"})
    try:
        help_runs = tuple(_timed([*CLI, "--help"], env) for _ in range(repeat))
        status_runs = tuple(_timed([*CLI, "status"], env) for _ in range(repeat))
        ready, pss, rss, count = _up(env, data_dir)
        return DevStackFigure(help_runs, status_runs, ready, pss, rss, count, bytecode_state(env))
    finally:
        handle.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def bytecode_state(env: dict[str, str], probe: str = "redis") -> dict[str, bool]:
    """Whether a CLI start reads bytecode or compiles source: most of a cold start is compiling, so say which.

    ``dependencies_precompiled``: the installed dependencies (seen through ``probe``) carry their .pyc, as
    ``make install`` (``uv sync --compile-bytecode``) leaves them. ``writes_bytecode``: Python may cache what it
    compiles (PYTHONDONTWRITEBYTECODE unset). Where neither holds, every start compiles redis-py, Celery and pydantic
    from source again: ~0.9 s of a 1.5 s `itom-orch status` on the 2-core machine.
    """
    spec = importlib.util.find_spec(probe)
    origin = spec.origin if spec is not None else None
    precompiled = origin is not None and Path(importlib.util.cache_from_source(origin)).exists()
    return {"dependencies_precompiled": precompiled, "writes_bytecode": not env.get("PYTHONDONTWRITEBYTECODE")}


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=True, timeout=60)
    return time.perf_counter() - started


def _up(env: dict[str, str], data_dir: Path) -> tuple[float, float, float, int]:
    """Start `itom-orch up`, time it to "workers ready", add up its processes' memory, stop it with Ctrl-C."""
    log = data_dir / "up.log"
    port = str(free_port())
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([*CLI, "up", "--port", port], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while b"workers ready" not in log.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AgentUnavailableError(f"`itom-orch up` did not get ready: {log.read_text()[-800:]}")
                time.sleep(0.05)  # polling a starting process's output; bounded by the deadline
            ready = time.perf_counter() - started
            while not _answers(f"http://127.0.0.1:{port}/api/health"):  # the API too, before reading memory
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AgentUnavailableError(f"`itom-orch up` never served its API: {log.read_text()[-800:]}")
                time.sleep(0.05)  # polling the starting API; bounded by the deadline
            pids = [proc.pid, *_descendants(proc.pid)]
            pss = sum(_smaps(pid, "Pss") for pid in pids) / 1024
            rss = sum(_smaps(pid, "Rss") for pid in pids) / 1024
            return ready, pss, rss, len(pids)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - a loopback URL we built
            return True
    except urllib.error.HTTPError:
        return True  # it answered (503 while degraded is an answer)
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                child = int(entry.name)
                children.append(child)
                children.extend(_descendants(child))
    return children


def _smaps(pid: int, field: str) -> int:
    """A field of ``/proc/<pid>/smaps_rollup`` in kB (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0
