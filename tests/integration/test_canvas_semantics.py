"""Celery really runs the compiled canvases the way the unit simulator assumes.

A private Celery app on the suite's own Redis with an in-process worker (threads, concurrency 4) registers a
stand-in ``orch.run_step`` that records when each step ran and implements the runtime's trigger counter in a
few lines: after a step, decrement every trigger waiting for it and apply the trigger's canvas at zero. A step
marked failing then raises, as the real task does for a failed step (Celery: FAILURE, which stops a chain and
errors a chord), so skip-policy steps that fail are checked not to stop their dependents.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker

from orchestrator import keys
from orchestrator.models import WorkflowDefinition
from orchestrator.settings import AGENT_IDS
from orchestrator.workflows import CompiledPlan, compile_plan, plan, render
from orchestrator.workflows.spec import step_ids
from tests.integration.conftest import DB_CANVAS, _redis_or_skip, db_url

pytestmark = pytest.mark.integration

QUEUES = [keys.agent_queue(agent) for agent in AGENT_IDS]
ACTIONS = ["cmdb.ping", "discovery.status", "asset.lifecycle", "csa.list_catalog", "audit.drift", "audit.report"]
Edges = list[tuple[str, str]]


def arrows(text: str) -> Edges:
    """``"a>b b>c"`` -> ``[("a", "b"), ("b", "c")]``: each pair says the left step runs before the right."""
    return [(left, right) for left, right in (pair.split(">") for pair in text.split())]


def _state_key(run_id: str) -> str:
    return f"canvas-test:{run_id}"


@pytest.fixture(scope="module")
def canvas_url(redis_base: str) -> str:
    return db_url(redis_base, DB_CANVAS)


@pytest.fixture(scope="module")
def store(canvas_url: str) -> redis.Redis:
    return _redis_or_skip(canvas_url)


@pytest.fixture(scope="module")
def app(store: redis.Redis, canvas_url: str) -> Iterator[Celery]:
    celery_app = Celery("canvas-semantics", broker=canvas_url, backend=canvas_url, set_as_current=False)
    celery_app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue="nobody-consumes-this",  # proves every signature names its own queue
        task_create_missing_queues=True,
        worker_prefetch_multiplier=1,
        result_expires=600,
        broker_connection_retry_on_startup=True,
    )

    @celery_app.task(name=keys.TASK_RUN_STEP, shared=False)  # a stand-in on this app only, not on later apps
    def run_step(run_id: str, step_id: str, generation: int = 0) -> str:
        state = _state_key(run_id)
        started = time.time()
        time.sleep(float(store.hget(f"{state}:durations", step_id) or 0))  # the step's "work"
        store.rpush(f"{state}:log", json.dumps([step_id, started, time.time()]))
        for trigger_id in filter(None, (store.hget(state, f"idx:{step_id}") or "").split(",")):
            if store.hincrby(state, f"wait:{trigger_id}", -1) == 0:
                celery_app.signature(json.loads(store.hget(state, f"sig:{trigger_id}") or "{}")).apply_async()
        if store.sismember(f"{state}:failing", step_id):
            raise RuntimeError(f"{step_id} failed")  # recorded above; Celery now says FAILURE
        return step_id

    with start_worker(celery_app, concurrency=4, pool="threads", perform_ping_check=False, queues=QUEUES):
        yield celery_app


@dataclass
class Launched:
    compiled: CompiledPlan
    state: str
    names: list[str]
    edges: Edges


def launch(
    app: Celery,
    store: redis.Redis,
    names: list[str],
    edges: Edges,
    durations: dict[str, float],
    failing: frozenset[str] = frozenset(),
) -> Launched:
    """Compile, install the triggers the way the runtime does, and apply the main canvas. Steps in ``failing``
    are under the skip policy and fail."""
    deps: dict[str, list[str]] = {n: [] for n in names}
    for before, after in edges:
        deps[after].append(before)
    steps = [
        {
            "step_id": n,
            "action": ACTIONS[i % len(ACTIONS)],
            "depends_on": deps[n],
            "on_failure": "skip" if n in failing else "stop",
        }
        for i, n in enumerate(names)
    ]
    run_id = uuid.uuid4().hex[:12]
    compiled = compile_plan(plan(WorkflowDefinition.model_validate({"name": "t", "steps": steps})), run_id)
    state = _state_key(run_id)
    store.hset(f"{state}:durations", mapping={n: str(durations.get(n, 0.02)) for n in names})
    if failing:
        store.sadd(f"{state}:failing", *failing)
    mapping: dict[str, str | int] = {}
    for trigger_id, trigger in compiled.triggers.items():
        mapping[f"wait:{trigger_id}"] = len(trigger.waits_for)
        mapping[f"sig:{trigger_id}"] = json.dumps(compiled.trigger_canvas(trigger_id))
    for step_id, trigger_ids in compiled.trigger_index.items():
        mapping[f"idx:{step_id}"] = ",".join(trigger_ids)
    if mapping:
        store.hset(state, mapping=mapping)
    assert compiled.canvas is not None
    app.signature(json.loads(json.dumps(compiled.canvas))).apply_async()  # bound to our app all the way down
    return Launched(compiled, state, names, edges)


def collect(store: redis.Redis, run: Launched, deadline: float) -> dict[str, tuple[float, float]]:
    """Poll (with a deadline) until every step ran; check each ran once and after its dependencies."""
    log = f"{run.state}:log"
    while store.llen(log) < len(run.names):
        spec = render(run.compiled.spec) if run.compiled.spec else "-"
        assert time.monotonic() < deadline, f"only {store.lrange(log, 0, -1)} ran of {spec}"
        time.sleep(0.02)  # polling the record, not waiting for work to happen
    records = [json.loads(r) for r in store.lrange(log, 0, -1)]
    assert sorted(r[0] for r in records) == sorted(run.names), "every step ran exactly once"
    times = {step_id: (start, end) for step_id, start, end in records}
    for before, after in run.edges:
        assert times[after][0] >= times[before][1], f"{after} started before its dependency {before} ended"
    return times


def run_dag(
    app: Celery, store: redis.Redis, names: list[str], edges: Edges, durations: dict[str, float]
) -> tuple[CompiledPlan, dict[str, tuple[float, float]]]:
    run = launch(app, store, names, edges, durations)
    return run.compiled, collect(store, run, time.monotonic() + 15)


def overlap(times: dict[str, tuple[float, float]], a: str, b: str) -> bool:
    return times[a][0] < times[b][1] and times[b][0] < times[a][1]


def test_diamond_runs_its_branches_together(app: Celery, store: redis.Redis) -> None:
    compiled, times = run_dag(app, store, ["z", "x", "y", "j"], arrows("z>x z>y x>j y>j"), {"x": 0.4, "y": 0.4})
    assert render(compiled.spec) == "(z -> ([x | y] => j))"
    assert overlap(times, "x", "y")


def test_fan_out_of_twenty_with_join(app: Celery, store: redis.Redis) -> None:
    leaves = [f"leaf{i}" for i in range(20)]
    names = ["root", *leaves, "join"]
    edges = [("root", leaf) for leaf in leaves] + [(leaf, "join") for leaf in leaves]
    _, times = run_dag(app, store, names, edges, {})
    assert times["join"][0] >= max(times[leaf][1] for leaf in leaves)


def test_nested_chords_in_chains_and_headers(app: Celery, store: redis.Redis) -> None:
    # (a -> ([b | (c -> ([d | e] => f))] => g) -> [h | i]) -- a chord inside a chord's header, a group body at
    # the end, and a chain that ends in a group inside a second header.
    names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "k", "m", "n", "p"]
    edges = arrows("a>b a>c c>d c>e d>f e>f b>g f>g g>h g>i h>k i>k k>m m>n m>p k>p")
    compiled, times = run_dag(app, store, names, edges, {"d": 0.2, "e": 0.2})
    assert compiled.triggers == {}
    assert "=>" in render(compiled.spec)
    assert overlap(times, "d", "e")


def test_layers_of_groups_and_chains_ending_in_groups_inside_headers(app: Celery, store: redis.Redis) -> None:
    names = ["a", "b", "c", "d", "x", "y", "z", "v", "u"]
    edges = arrows("a>c a>d b>c b>d c>x d>x c>v d>v x>y x>z y>u z>u v>u")
    compiled, times = run_dag(app, store, names, edges, {"v": 0.3, "y": 0.2, "z": 0.2})
    assert render(compiled.spec) == "([a | b] => ([c | d] => ([(x -> [y | z]) | v] => u)))"
    assert overlap(times, "y", "v") and overlap(times, "y", "z")


def test_chord_with_a_group_body_inside_another_chords_header(app: Celery, store: redis.Redis) -> None:
    names = ["a", "b", "c", "d", "e", "f"]
    edges = arrows("a>c a>d b>c b>d c>f d>f e>f")
    compiled, times = run_dag(app, store, names, edges, {"c": 0.3, "d": 0.3, "e": 0.1})
    assert render(compiled.spec) == "([([a | b] => [c | d]) | e] => f)"
    assert overlap(times, "c", "d")


def test_n_dag_trigger_lets_d_run_without_waiting_for_a(app: Celery, store: redis.Redis) -> None:
    compiled, times = run_dag(
        app, store, ["a", "b", "c", "d"], arrows("a>c b>c b>d"), {"a": 1.5, "b": 0.05, "c": 0.05, "d": 0.05}
    )
    assert list(compiled.triggers) == ["c"]
    assert times["d"][1] < times["a"][1], "d finished while a was still running"
    assert times["c"][0] >= times["a"][1]


def test_a_trigger_can_hold_a_whole_canvas(app: Celery, store: redis.Redis) -> None:
    names = ["x", "a", "b", "c", "d", "e", "f", "t"]
    edges = arrows("x>a x>b a>c b>c b>d c>e c>f e>t f>t d>t")
    compiled, times = run_dag(app, store, names, edges, {"a": 0.5, "e": 0.2, "f": 0.2})
    assert any(len(list(step_ids(t.spec))) > 1 for t in compiled.triggers.values() if t.spec)
    assert times["d"][1] < times["a"][1] and overlap(times, "e", "f")


def random_series_parallel(rng: random.Random, budget: int, edges: Edges, names: list[str]) -> tuple[list[str], ...]:
    """A random series-parallel expression as (steps, sources, sinks); edges and names are filled in."""
    if budget <= 1 or rng.random() < 0.25:
        name = f"v{len(names)}"
        names.append(name)
        return [name], [name], [name]
    parts = [random_series_parallel(rng, budget // 2, edges, names) for _ in range(rng.choice([2, 2, 3]))]
    if rng.random() < 0.5:
        return tuple([n for p in parts for n in p[i]] for i in range(3))
    for left, right in pairwise(parts):
        edges.extend((a, b) for a in left[2] for b in right[1])
    return [n for p in parts for n in p[0]], parts[0][1], parts[-1][2]


def test_random_dags_run_in_celery_as_compiled(app: Celery, store: redis.Redis) -> None:
    """Twelve random DAGs at once (half series-parallel, half with triggers), on one worker."""
    rng = random.Random(20261125)
    runs: list[Launched] = []
    for _ in range(6):
        edges: Edges = []
        names: list[str] = []
        random_series_parallel(rng, rng.randint(6, 16), edges, names)
        runs.append(launch(app, store, names, edges, {n: rng.choice([0.0, 0.01, 0.03]) for n in names}))
    for _ in range(6):
        names = [f"s{i}" for i in range(rng.randint(5, 12))]
        edges = [(names[j], names[i]) for i in range(1, len(names)) for j in rng.sample(range(i), min(i, 2))]
        runs.append(launch(app, store, names, edges, {n: rng.choice([0.0, 0.01, 0.03]) for n in names}))
    assert all(not r.compiled.triggers for r in runs[:6]) and any(r.compiled.triggers for r in runs[6:])
    deadline = time.monotonic() + 15
    for run in runs:
        collect(store, run, deadline)


def test_skip_steps_that_fail_in_celery_never_stop_their_dependents(app: Celery, store: redis.Redis) -> None:
    """Failing skip-policy steps at the head of chains, in would-be chord headers and in random DAGs."""
    runs = [
        launch(app, store, ["a", "b", "c"], arrows("a>b b>c"), {}, frozenset("a")),
        launch(app, store, ["z", "x", "y", "j"], arrows("z>x z>y x>j y>j"), {"x": 0.1}, frozenset("xz")),
    ]
    rng = random.Random(14)
    for _ in range(6):
        edges: Edges = []
        names: list[str] = []
        random_series_parallel(rng, rng.randint(6, 14), edges, names)
        failing = frozenset(rng.sample(names, max(1, len(names) // 3)))
        runs.append(launch(app, store, names, edges, {n: rng.choice([0.0, 0.01]) for n in names}, failing))
    deadline = time.monotonic() + 15
    for run in runs:
        collect(store, run, deadline)
