"""``itom-orch bench frontdoor``: the HTTP front door under load, without and with many live SSE clients.

What it measures, on a private embedded Redis with one cmdb-agent worker and the API (``itom-orch api``) in a
process of its own: N workflow starts at concurrency C (accept latency p50/p99, workflows/s) while health is
probed every 100 ms (p99); the same again with S SSE clients attached (in a third process); the latency of one
page of ``GET /api/workflows`` once the store holds L runs; Redis and API memory before and after.

Targets (ARCHITECTURE 10): with S clients the start rate stays >= 80% of the rate without them, and health p99
stays under 250 ms. Figures are for one run on one machine; a shared machine spreads them (say so with them).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx2 as httpx

from orchestrator import keys
from orchestrator.bench.orchestrated import AGENT_ID, chain_definition
from orchestrator.errors import BrokerUnavailableError
from orchestrator.runtime.embedded import free_port, start_embedded
from orchestrator.runtime.procs import WorkerPool
from orchestrator.runtime.redis_client import get_redis
from orchestrator.state.runs import RunStore
from orchestrator.workflows.dag import plan

TOKEN = f"bench-{uuid4().hex}"  # a fresh token per bench run
HEALTH_PROBE_SECONDS = 0.1
RATE_RATIO_TARGET = 0.8
HEALTH_P99_TARGET_MS = 250.0


@dataclass(frozen=True)
class FrontdoorConfig:
    workflows: int = 1000
    concurrency: int = 50
    sse_clients: int = 200
    list_runs: int = 10_000
    list_samples: int = 20

    @classmethod
    def quick(cls) -> FrontdoorConfig:
        return cls(workflows=60, concurrency=10, sse_clients=20, list_runs=1000, list_samples=5)


def _ms(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) in milliseconds."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank] * 1000, 2)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (where each phase's CPU went)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


@contextmanager
def _api(url: str, data_dir: Path, streams: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "ORCH_REDIS__URL": url,
        "ORCH_DATA_DIR": str(data_dir),
        "ORCH_AUTH__TOKENS": json.dumps({TOKEN: {"principal": "bench", "role": "operator"}}),
        "ORCH_FRONTDOOR__MAX_STREAMS_PER_PRINCIPAL": str(streams + 10),
        "ORCH_LOG_LEVEL": "WARNING",
        "ORCH_BROKER_URL": "",
    }
    command = [sys.executable, "-c", "from orchestrator.cli.main import main; main()", "api", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise BrokerUnavailableError(f"the bench API exited at start (code {process.returncode})")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BrokerUnavailableError("the bench API did not answer within 60 s")
            time.sleep(0.1)  # polling the API's start, bounded by the deadline
        yield base, process
    finally:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        if process.poll() is None:
            process.kill()


@contextmanager
def _sse_clients(base: str, count: int) -> Iterator[dict[str, Any]]:
    command = [sys.executable, "-m", "orchestrator.bench.sse_clients", base, TOKEN, str(count)]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    outcome: dict[str, Any] = {}
    try:
        assert process.stdout is not None and process.stdin is not None
        first = process.stdout.readline().strip()
        if first != "ready":
            raise BrokerUnavailableError(f"the SSE clients did not connect: {first or process.stdout.read()}")
        outcome["pid"] = process.pid
        yield outcome
        outcome["cpu_seconds"] = round(_cpu_seconds(process.pid), 2)
        process.stdin.close()
        outcome.update(json.loads(process.stdout.readline() or "{}"))
    finally:
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        if process.poll() is None:
            process.kill()


async def _start_load(base: str, config: FrontdoorConfig) -> dict[str, Any]:
    """``workflows`` starts at ``concurrency`` while health is probed; latencies in seconds."""
    body = {"definition": chain_definition(1).model_dump(mode="json")}
    limits = httpx.Limits(max_connections=config.concurrency + 10, max_keepalive_connections=config.concurrency + 10)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as client,
        httpx.AsyncClient(base_url=base, timeout=120) as prober,
    ):
        accept: list[float] = []
        health: list[float] = []
        failures = 0
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                await prober.get("/api/health")
                health.append(time.perf_counter() - started)
                await asyncio.sleep(HEALTH_PROBE_SECONDS)

        async def worker(count: int) -> None:
            nonlocal failures
            for _ in range(count):
                started = time.perf_counter()
                response = await client.post("/api/workflows", json=body)
                accept.append(time.perf_counter() - started)
                failures += response.status_code != 202

        prober_task = asyncio.create_task(probe())
        share, extra = divmod(config.workflows, config.concurrency)
        began = time.perf_counter()
        await asyncio.gather(*(worker(share + (i < extra)) for i in range(config.concurrency)))
        elapsed = time.perf_counter() - began
        done.set()
        await prober_task
    return {
        "workflows": config.workflows,
        "concurrency": config.concurrency,
        "failed": failures,
        "seconds": round(elapsed, 3),
        "workflows_per_second": round(config.workflows / elapsed, 2),
        "accept_p50_ms": _ms(accept, 50),
        "accept_p99_ms": _ms(accept, 99),
        "health_p50_ms": _ms(health, 50),
        "health_p99_ms": _ms(health, 99),
        "health_probes": len(health),
    }


def _fill_runs(url: str, total: int) -> int:
    """Add one-step runs straight into the run store until it holds ``total`` (listing reads what is there)."""
    client = get_redis(url)
    store = RunStore(client)
    existing = int(client.zcard(keys.RUNS_INDEX))
    one = plan(chain_definition(1), {}, template_id=None)
    for _ in range(max(0, total - existing)):
        store.create(f"run-{uuid4().hex[:16]}", one, created_by="bench")
    return int(client.zcard(keys.RUNS_INDEX))


def _list_latency(base: str, samples: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timings: dict[str, list[float]] = {"page": [], "by_status": []}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for _ in range(samples):
            pages: tuple[tuple[str, dict[str, str | int]], ...] = (
                ("page", {"limit": 50}),
                ("by_status", {"limit": 50, "status": "pending"}),
            )
            for name, params in pages:
                started = time.perf_counter()
                response = client.get("/api/workflows", params=params)
                timings[name].append(time.perf_counter() - started)
                response.raise_for_status()
    return {f"{name}_p50_ms": _ms(v, 50) for name, v in timings.items()} | {
        f"{name}_p99_ms": _ms(v, 99) for name, v in timings.items()
    }


def measure_frontdoor(config: FrontdoorConfig, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="itom-orch-bench-frontdoor-"))
    handle = None
    pool: WorkerPool | None = None
    try:
        handle = start_embedded(data_dir)
        redis = get_redis(handle.url)
        redis.config_set("save", "")
        pool = WorkerPool(handle.url)
        env = {"ORCH_BROKER_URL": "", "ORCH_FAULT_INJECTION": "false", "ORCH_DATA_DIR": str(data_dir)}
        pool.start([AGENT_ID], concurrency=1, extra_env=env)
        pool.wait_ready(timeout=90)
        with _api(handle.url, data_dir, config.sse_clients) as (base, api):
            before = {"redis_mb": round(redis.info("memory")["used_memory"] / 2**20, 1), "api_rss_mb": _rss_mb(api.pid)}
            progress(f"{config.workflows} starts at concurrency {config.concurrency}, no SSE clients...")
            cpu = _cpu_seconds(api.pid)
            without = asyncio.run(_start_load(base, config))
            without["api_cpu_seconds"] = round(_cpu_seconds(api.pid) - cpu, 2)
            progress(f"the same with {config.sse_clients} SSE clients attached...")
            with _sse_clients(base, config.sse_clients) as sse:
                cpu = _cpu_seconds(api.pid)
                with_sse = asyncio.run(_start_load(base, config))
                with_sse["api_cpu_seconds"] = round(_cpu_seconds(api.pid) - cpu, 2)
                with_sse["api_rss_mb_with_clients"] = _rss_mb(api.pid)
            with_sse["sse"] = sse
            progress(f"filling the store to {config.list_runs} runs, then timing one page of the listing...")
            runs = _fill_runs(handle.url, config.list_runs)
            listing = {"runs": runs, **_list_latency(base, config.list_samples)}
            after = {"redis_mb": round(redis.info("memory")["used_memory"] / 2**20, 1), "api_rss_mb": _rss_mb(api.pid)}
        ratio = with_sse["workflows_per_second"] / without["workflows_per_second"]
        return {
            "config": config.__dict__,
            "without_sse": without,
            "with_sse": with_sse,
            "list": listing,
            "memory": {"before": before, "after": after},
            "targets": {
                "rate_ratio": round(ratio, 3),
                "rate_ratio_met": ratio >= RATE_RATIO_TARGET,
                "health_p99_ms_with_sse": with_sse["health_p99_ms"],
                "health_p99_met": with_sse["health_p99_ms"] < HEALTH_P99_TARGET_MS,
            },
            "machine": {"cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        }
    finally:
        if pool is not None:
            pool.stop()
        if handle is not None:
            handle.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
