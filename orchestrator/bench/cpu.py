"""CPU seconds spent by the bench client, the worker (main process and pool) and Redis while a variant runs.

Why: on a 2-core machine the client, the worker and Redis share the same cores, so a ratio alone does not say
where orchestration costs; CPU per step per process does. The client is this process (``time.process_time``,
every thread), the worker is its process tree read from ``/proc/<pid>/schedstat`` (nanoseconds on a CPU, so a
50-step chain is not rounded to clock ticks; the pool processes live as long as the bench), Redis is its own
``INFO cpu`` (main and background threads). Where ``/proc`` is missing (not Linux) the worker figure is None.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.runtime.redis_client import RedisClient

_PROC = Path("/proc")
_T = TypeVar("_T")


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds at one moment (worker None where it cannot be read)."""

    client: float
    worker: float | None
    redis: float


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds spent between two samples, per step of the work done in between."""

    client_ms: float
    worker_ms: float | None
    redis_ms: float

    def as_json(self) -> dict[str, float | None]:
        return {
            "client_ms": round(self.client_ms, 4),
            "worker_ms": None if self.worker_ms is None else round(self.worker_ms, 4),
            "redis_ms": round(self.redis_ms, 4),
        }


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: the fields after it follow the last ')'.
    return text[text.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _on_cpu_seconds(pid: int) -> float | None:
    """Every thread of ``pid`` (``/proc/<pid>/schedstat`` alone is its main thread)."""
    try:
        threads = list((_PROC / str(pid) / "task").iterdir())
        return sum(int((thread / "schedstat").read_text().split()[0]) for thread in threads) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def process_tree_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid`` (every thread) and of its live descendants."""
    own = _on_cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(process_tree_seconds(child) or 0.0 for child in _children(pid))


def redis_seconds(client: RedisClient) -> float:
    info: dict[str, Any] = client.info("cpu")
    return float(info.get("used_cpu_user", 0.0)) + float(info.get("used_cpu_sys", 0.0))


class CpuMeter:
    """Samples the three parties; ``measure`` runs one variant between two samples."""

    def __init__(self, client: RedisClient, worker_pid: Callable[[], int | None]) -> None:
        self.client = client
        self.worker_pid = worker_pid

    def sample(self) -> CpuSample:
        pid = self.worker_pid()
        worker = process_tree_seconds(pid) if pid is not None and _PROC.is_dir() else None
        return CpuSample(time.process_time(), worker, redis_seconds(self.client))

    def measure(self, run: Callable[[], _T], steps: int) -> tuple[_T, CpuUse]:
        before = self.sample()
        value = run()
        after = self.sample()
        per = 1000.0 / max(1, steps)
        worker = None
        if after.worker is not None and before.worker is not None:
            worker = (after.worker - before.worker) * per
        return value, CpuUse((after.client - before.client) * per, worker, (after.redis - before.redis) * per)
