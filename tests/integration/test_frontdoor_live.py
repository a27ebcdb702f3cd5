"""The front door under load, served by uvicorn on a real Redis: streams survive idle time, replay a finished
run, and neither 100 streams nor 200 pending waits keep health from answering; listings read one page.

The bounds here are functional (health within 2 s), not benchmarks: ``itom-orch bench frontdoor`` measures.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from orchestrator.http import create_app
from orchestrator.models.workflow import WorkflowDefinition
from orchestrator.service import Orchestrator
from orchestrator.settings import AuthSettings, Settings, TokenGrant
from orchestrator.state import run_listing
from orchestrator.workflows.dag import plan as plan_workflow
from tests.integration.conftest import DB_FRONTDOOR, _redis_or_skip, db_url
from tests.integration.helpers import definition, step, uid, wait_until
from tests.integration.live_api import serve

pytestmark = pytest.mark.integration

TOKEN = "frontdoor-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
HEALTH_BOUND_SECONDS = 2.0
GRANTS = {TOKEN: TokenGrant(principal="load", role="operator")}


def frontdoor_service(url: str, **frontdoor: Any) -> Orchestrator:
    settings = Settings(redis={"url": url}, auth=AuthSettings(tokens=GRANTS))
    for name, value in frontdoor.items():
        setattr(settings.frontdoor, name, value)
    return Orchestrator(settings)


@pytest.fixture
def frontdoor_url(redis_base: str) -> str:
    """A database no worker consumes: runs started here stay queued (nothing of other tests is touched)."""
    url = db_url(redis_base, DB_FRONTDOOR)
    _redis_or_skip(url)
    return url


@pytest.fixture
def served(frontdoor_url: str, request: pytest.FixtureRequest) -> Iterator[tuple[str, Orchestrator]]:
    service = frontdoor_service(frontdoor_url, **getattr(request, "param", {}))
    with serve(create_app(service)) as base:
        yield base, service


@pytest.mark.parametrize("served", [{"stream_block_ms": 100}], indirect=True)
def test_an_idle_stream_outlives_the_read_timeout_and_delivers_the_next_event(
    served: tuple[str, Orchestrator],
) -> None:
    base, service = served
    service.settings.redis.socket_timeout = 0.3  # the reader's read timeout is block + this: 0.4 s
    with (
        httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client,
        client.stream("GET", "/api/events", params={"types": "frontdoor.idle"}) as response,
    ):
        assert response.status_code == 200
        reads = wait_until(lambda: service.hub.reads >= 1 and service.hub.reads, what="the reader's first read")
        # Ten or more empty blocks of 0.1 s: idle for over twice the 0.4 s read timeout.
        wait_until(lambda: service.hub.reads >= reads + 10, timeout=30, what="ten idle reads")
        sent = service.events.emit("frontdoor.idle", {"after": "idle"}, run_id=uid("idle"))
        data = next(line for line in response.iter_lines() if line.startswith("data:"))
    assert json.loads(data.removeprefix("data:"))["event_id"] == sent.event_id


def test_a_finished_run_replays_to_a_client_that_connects_afterwards(orch: Orchestrator) -> None:
    service = Orchestrator(orch.settings.model_copy(update={"auth": AuthSettings(tokens=GRANTS)}))
    defn = definition(step("a"), step("b", deps=["a"]), name="replay")
    with serve(create_app(service)) as base, httpx.Client(base_url=base, headers=HEADERS, timeout=60) as client:
        started = client.post("/api/workflows", json={"definition": defn})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert service.wait_for_run(run_id, timeout=60).status.value == "completed"
        seen: list[str] = []
        with client.stream("GET", "/api/events", params={"run_id": run_id}) as response:
            for line in response.iter_lines():
                if line.startswith("event:"):
                    seen.append(line.removeprefix("event:").strip())
                    if seen[-1] == "workflow.completed":
                        break
    assert seen[0] == "workflow.started"
    assert seen.count("workflow.step.completed") == 2
    stored = [e.event_type for e in service.event_history(run_id=run_id, limit=1000)]
    assert seen == stored


@pytest.mark.parametrize("served", [{"max_streams_per_principal": 200}], indirect=True)
def test_health_answers_with_100_streams_open_while_200_workflows_start(served: tuple[str, Orchestrator]) -> None:
    base, service = served
    tag = uid("load")
    defn = definition(step("only"), name=tag)

    async def scenario() -> tuple[list[int], list[float], list[int]]:
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
        async with httpx.AsyncClient(base_url=base, headers=HEADERS, limits=limits, timeout=60) as client:
            received = [0] * 100

            async def listen(index: int) -> None:
                async with client.stream("GET", "/api/events", params={"types": "workflow.started"}) as response:
                    assert response.status_code == 200
                    async for line in response.aiter_lines():
                        if line.startswith("data:") and tag in line:
                            received[index] += 1
                            if received[index] == 200:
                                return

            listeners = [asyncio.create_task(listen(i)) for i in range(100)]
            deadline = time.monotonic() + 30
            while service.hub.subscribers < 100:
                assert time.monotonic() < deadline, "100 streams did not open"
                await asyncio.sleep(0.02)  # polling the hub's subscriber count, bounded by the deadline
            health: list[float] = []
            done = asyncio.Event()

            async def poll_health() -> None:
                while not done.is_set():
                    started = time.monotonic()
                    answer = await client.get("/api/health")
                    assert answer.status_code == 200, answer.text
                    health.append(time.monotonic() - started)
                    await asyncio.sleep(0.05)  # one probe every 50 ms while the load runs

            poller = asyncio.create_task(poll_health())
            gate = asyncio.Semaphore(50)

            async def start() -> int:
                async with gate:
                    return (await client.post("/api/workflows", json={"definition": defn})).status_code

            statuses = await asyncio.gather(*(start() for _ in range(200)))
            await asyncio.wait_for(asyncio.gather(*listeners), 60)
            done.set()
            await poller
            return statuses, health, received

    statuses, health, received = asyncio.run(scenario())
    assert statuses == [202] * 200
    assert received == [200] * 100  # every stream saw every start
    assert health and max(health) < HEALTH_BOUND_SECONDS, max(health)


def test_200_pending_waits_leave_health_answering_and_end_at_once_on_shutdown(
    served: tuple[str, Orchestrator],
) -> None:
    base, service = served

    async def scenario() -> tuple[float, float, list[Any], float]:
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
        async with httpx.AsyncClient(base_url=base, headers=HEADERS, limits=limits, timeout=60) as client:
            body = {"action": "cmdb.ping", "wait": True, "timeout_seconds": 50}
            waits = [asyncio.create_task(client.post("/api/tasks", json=body)) for _ in range(200)]
            deadline = time.monotonic() + 60
            while service.hub.subscribers < 200:
                assert time.monotonic() < deadline, f"only {service.hub.subscribers} waits pending"
                await asyncio.sleep(0.05)  # polling the hub's subscriber count, bounded by the deadline
            started = time.monotonic()
            assert (await client.get("/api/health")).status_code == 200
            health = time.monotonic() - started
            started = time.monotonic()
            assert (await client.get("/api/templates")).status_code == 200
            templates = time.monotonic() - started
            started = time.monotonic()
            service.shutdown()
            answers = await asyncio.gather(*waits)
            return health, templates, answers, time.monotonic() - started

    health, templates, answers, ended = asyncio.run(scenario())
    assert health < HEALTH_BOUND_SECONDS and templates < HEALTH_BOUND_SECONDS, (health, templates)
    assert {(a.status_code, a.json()["error_code"]) for a in answers} == {(503, "ORCH_8007")}
    assert ended < 5.0, ended


class CountingRedis:
    """A client that counts the run hashes read (HGETALL, alone or in pipelines)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hashes_read = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def hgetall(self, key: str) -> Any:
        self.hashes_read += 1
        return self.inner.hgetall(key)

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        counter, pipe = self, self.inner.pipeline(*args, **kwargs)

        class Pipe:
            def __getattr__(self, name: str) -> Any:
                return getattr(pipe, name)

            def hgetall(self, key: str) -> Any:
                counter.hashes_read += 1
                return pipe.hgetall(key)

        return Pipe()


def test_a_page_of_runs_at_10000_runs_reads_one_page_of_hashes(frontdoor_url: str) -> None:
    service = frontdoor_service(frontdoor_url)
    template = uid("bulk")
    plan = plan_workflow(
        WorkflowDefinition.model_validate(definition(step("only"), name=template)), {}, template_id=template
    )
    ids = [uid("run") for _ in range(10_000)]
    for run_id in ids:
        service.runs.create(run_id, plan, created_by="bench")
    service.runs.cancel(ids[42], actor="op", audit_template="", event_template="")
    counting = CountingRedis(service.redis)
    page, total = run_listing.list_runs(counting, template_id=template, limit=50)
    assert total == 10_000
    assert [v.run_id for v in page] == ids[::-1][:50]
    assert counting.hashes_read == 50
    counting.hashes_read = 0
    cancelled, total = run_listing.list_runs(counting, template_id=template, status="cancelled", limit=50)
    assert ([v.run_id for v in cancelled], total, counting.hashes_read) == ([ids[42]], 1, 1)
    counting.hashes_read = 0
    pending, total = run_listing.list_runs(counting, template_id=template, status="pending", offset=100, limit=20)
    assert (total, len(pending), counting.hashes_read) == (9_999, 20, 20)
