"""The canvas compiler: shapes, signature options, triggers, and exact parallelism on random DAGs.

The simulator below executes a compiled plan the way Celery and the runtime do: a chain runs its items in
turn, a group starts its items together, a chord starts its body when its whole header is done, and a
trigger's canvas starts when every step it waits for is done. The property tests then check that every
step runs exactly once and starts EXACTLY when its own last dependency finishes.
"""

from __future__ import annotations

import gc
import json
import random
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
from celery import chord, group, signature
from celery.canvas import Signature, _chain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import keys
from orchestrator.errors import WorkflowDefinitionInvalidError
from orchestrator.models import PlannedStep, Priority, WorkflowDefinition, WorkflowPlan
from orchestrator.workflows import decompose as decompose_module
from orchestrator.workflows import plan, subplan
from orchestrator.workflows.compiler import CompiledPlan, compile_plan
from orchestrator.workflows.spec import CanvasSpec, Chain, Chord, Group, Step, render, sequence, step_ids

Edges = list[tuple[str, str]]


def arrows(text: str) -> Edges:
    """``"a>b b>c"`` -> ``[("a", "b"), ("b", "c")]``: each pair says the left step runs before the right."""
    return [(left, right) for left, right in (pair.split(">") for pair in text.split())]


def make_plan(
    names: list[str], edges: Edges, priority: Priority = Priority.MEDIUM, skip: frozenset[str] = frozenset()
) -> WorkflowPlan:
    deps: dict[str, list[str]] = {n: [] for n in names}
    for before, after in edges:
        deps[after].append(before)
    steps = [
        {"step_id": n, "action": "cmdb.ping", "depends_on": deps[n], "on_failure": "skip" if n in skip else "stop"}
        for n in names
    ]
    return plan(WorkflowDefinition.model_validate({"name": "t", "steps": steps}), {}, priority=priority)


def compiled_for(names: list[str], edges: Edges, skip: frozenset[str] = frozenset()) -> CompiledPlan:
    return compile_plan(make_plan(names, edges, skip=skip), "run-1")


# -- the simulator ----------------------------------------------------------------------------------------
class Simulation:
    """Start and finish time of every step of a compiled plan, given each step's duration.

    Steps in ``failing`` fail in Celery's eyes: like Celery, the simulation stops a chain after them and never
    runs the body of a chord whose header holds one; the runtime still counts them done for triggers.
    """

    def __init__(
        self, compiled: CompiledPlan, durations: dict[str, float], failing: frozenset[str] = frozenset()
    ) -> None:
        self.durations = durations
        self.failing = failing
        self.start: dict[str, float] = {}
        self.finish: dict[str, float] = {}
        self.runs: dict[str, int] = {}
        if compiled.spec is not None:
            self.run(compiled.spec, 0.0)
        pending = dict(compiled.triggers)
        progress = True
        while pending and progress:
            progress = False
            for trigger_id, trigger in list(pending.items()):
                if all(w in self.finish for w in trigger.waits_for):
                    assert trigger.spec is not None
                    self.run(trigger.spec, max(self.finish[w] for w in trigger.waits_for))
                    del pending[trigger_id]
                    progress = True
        self.never_fired = set(pending)

    def run(self, spec: CanvasSpec, at: float) -> float | None:
        """When the canvas ends, or None when it stopped at a failed task (nothing after it runs)."""
        if isinstance(spec, Step):
            self.runs[spec.step_id] = self.runs.get(spec.step_id, 0) + 1
            self.start[spec.step_id] = at
            self.finish[spec.step_id] = at + self.durations[spec.step_id]
            return None if spec.step_id in self.failing else self.finish[spec.step_id]
        if isinstance(spec, Group):
            ends = [self.run(item, at) for item in spec.items]
            return None if None in ends else max(e for e in ends if e is not None)
        if isinstance(spec, Chord):
            header = self.run(spec.header, at)
            return None if header is None else self.run(spec.body, header)
        ended: float | None = at
        for item in spec.items:
            if ended is None:
                return None
            ended = self.run(item, ended)
        return ended


def assert_exact(
    names: list[str], edges: Edges, durations: dict[str, float], skip: frozenset[str] = frozenset()
) -> CompiledPlan:
    """Every step runs once, exactly when its dependencies are done, whether its skip-policy steps all succeed or
    all fail."""
    compiled = compiled_for(names, edges, skip)
    for failing in {frozenset(), skip}:
        _assert_on_time(compiled, names, edges, durations, failing)
    return compiled


def _assert_on_time(
    compiled: CompiledPlan, names: list[str], edges: Edges, durations: dict[str, float], failing: frozenset[str]
) -> None:
    sim = Simulation(compiled, durations, failing)
    deps: dict[str, list[str]] = {n: [] for n in names}
    for before, after in edges:
        deps[after].append(before)
    assert not sim.never_fired
    assert sim.runs == dict.fromkeys(names, 1), "every step runs exactly once"
    for name in names:
        ready = max((sim.finish[d] for d in deps[name]), default=0.0)
        assert sim.start[name] == ready, f"{name} starts at {sim.start[name]}, its dependencies are done at {ready}"


# -- shapes -----------------------------------------------------------------------------------------------
def test_linear_plan_is_one_chain() -> None:
    compiled = compiled_for(["a", "b", "c"], [("a", "b"), ("b", "c")])
    assert compiled.spec == Chain((Step("a"), Step("b"), Step("c")))
    assert compiled.canvas["subtask_type"] == "chain"
    assert [t["kwargs"]["step_id"] for t in compiled.canvas.tasks] == ["a", "b", "c"]
    assert compiled.triggers == {} and compiled.trigger_index == {}


def test_fan_out_and_join_is_a_chain_ending_in_a_chord() -> None:
    compiled = compiled_for(["z", "x", "y", "j"], arrows("z>x z>y x>j y>j"))
    assert compiled.spec == Chain((Step("z"), Chord(Group((Step("x"), Step("y"))), Step("j"))))
    canvas = compiled.canvas
    assert canvas["subtask_type"] == "chain" and canvas.tasks[1]["subtask_type"] == "chord"
    assert [t["kwargs"]["step_id"] for t in canvas.tasks[1].tasks] == ["x", "y"]
    assert canvas.tasks[1].body["kwargs"]["step_id"] == "j"
    assert render(compiled.spec) == "(z -> ([x | y] => j))"


def test_a_one_step_plan_is_a_plain_signature() -> None:
    compiled = compiled_for(["only"], [])
    assert compiled.spec == Step("only")
    assert type(compiled.canvas) is Signature and compiled.canvas.task == keys.TASK_RUN_STEP


def test_a_single_branch_is_a_plain_signature_not_a_one_step_group() -> None:
    compiled = compiled_for(["a", "b", "c", "d"], arrows("a>b b>c a>d c>d"))
    assert compiled.spec == Chain((Step("a"), Step("b"), Step("c"), Step("d")))


def test_independent_roots_form_a_group() -> None:
    compiled = compiled_for(["a", "b", "c"], [("a", "c")])
    assert compiled.spec == Group((Chain((Step("a"), Step("c"))), Step("b")))
    assert compiled.canvas["subtask_type"] == "group"


def test_layers_of_groups_nest_chords_like_celery_does() -> None:
    names = ["a", "b", "c", "d", "e"]
    edges = arrows("a>c a>d b>c b>d c>e d>e")
    compiled = assert_exact(names, edges, dict.fromkeys(names, 1.0))
    assert compiled.spec == Chord(Group((Step("a"), Step("b"))), Chord(Group((Step("c"), Step("d"))), Step("e")))


def walk(sig: Any) -> Iterator[dict[str, Any]]:
    """Every step signature inside a canvas (Signature objects or their dict form)."""
    kind = sig["subtask_type"]
    if kind is None:
        yield sig
    elif kind == "chord":
        for item in sig["kwargs"]["header"]:
            yield from walk(item)
        yield from walk(sig["kwargs"]["body"])
    else:
        for item in sig["kwargs"]["tasks"]:
            yield from walk(item)


def test_every_step_signature_carries_queue_name_limits_priority_and_is_immutable() -> None:
    names = ["z", "x", "y", "j", "n1", "n2", "n3"]
    edges = arrows("z>x z>y x>j y>j z>n1 n1>n2 x>n2 x>n3")
    steps = make_plan(names, edges, priority=Priority.HIGH)
    compiled = compile_plan(steps, "run-9", generation=2)
    canvases = [compiled.canvas, *(compiled.trigger_canvas(t) for t in compiled.triggers)]
    seen = [leaf for canvas in canvases for leaf in walk(canvas)]
    assert sorted(leaf["kwargs"]["step_id"] for leaf in seen) == sorted(names)
    for leaf in seen:
        step_id = leaf["kwargs"]["step_id"]
        assert leaf["task"] == keys.TASK_RUN_STEP and leaf["immutable"] is True
        assert leaf["kwargs"] == {"run_id": "run-9", "step_id": step_id, "generation": 2}
        assert leaf["options"] == {
            "kwargsrepr": f"{{'action': 'cmdb.ping', 'run_id': 'run-9', 'step_id': '{step_id}', 'generation': 2}}",
            "queue": keys.agent_queue("cmdb-agent"),
            "task_id": keys.step_task_id("run-9", step_id, 2),
            "priority": Priority.HIGH.broker_priority,
            "soft_time_limit": 30.0,
            "time_limit": 35.0,
        }


def test_step_timeouts_and_agents_reach_the_signature() -> None:
    steps = [
        {"step_id": "scan", "action": "discovery.scan", "timeout_seconds": 12},
        {"step_id": "doc", "action": "documentation.generate", "depends_on": ["scan"]},
    ]
    compiled = compile_plan(plan(WorkflowDefinition.model_validate({"name": "t", "steps": steps})), "r")
    scan, doc = compiled.canvas.tasks
    assert (scan.options["queue"], scan.options["soft_time_limit"], scan.options["time_limit"]) == (
        "agent.discovery-agent",
        12,
        17,
    )
    assert doc.options["queue"] == "agent.itom-documentator"


def test_the_dict_lowering_is_what_celery_itself_builds() -> None:
    compiled = compiled_for(["a", "b", "c", "d", "e", "f"], arrows("a>b a>c b>d c>d d>e d>f"))
    assert render(compiled.spec) == "(a -> ([b | c] => d) -> [e | f])"
    sig = {leaf["kwargs"]["step_id"]: signature(leaf) for leaf in walk(compiled.canvas)}
    by_celery = _chain([sig["a"], chord(group([sig["b"], sig["c"]]), sig["d"]), group([sig["e"], sig["f"]])])
    assert json.loads(json.dumps(by_celery)) == json.loads(json.dumps(compiled.canvas))


def test_flower_sees_ids_and_the_action_never_parameters() -> None:
    params = {"ci_class": "cmdb_ci_server", "name": "web-01", "fields": {"password": "s3cret"}}
    steps = [{"step_id": "open", "action": "cmdb.create", "parameters": params}]
    definition = WorkflowDefinition.model_validate({"name": "t", "steps": steps})
    compiled = compile_plan(plan(definition, {}), "run-7", generation=1)
    shown = compiled.canvas.options["kwargsrepr"]
    assert shown == "{'action': 'cmdb.create', 'run_id': 'run-7', 'step_id': 'open', 'generation': 1}"
    assert "s3cret" not in json.dumps(compiled.canvas)


# -- the skip policy: a failing step must not stop its dependents --------------------------------------------
def test_a_skip_step_ends_its_canvas_and_its_dependents_start_from_a_trigger() -> None:
    compiled = assert_exact(["a", "b", "c"], arrows("a>b b>c"), dict.fromkeys("abc", 1.0), frozenset("a"))
    assert compiled.spec == Step("a")
    assert list(compiled.triggers) == ["b"]
    assert compiled.triggers["b"].waits_for == ("a",) and compiled.triggers["b"].spec == Chain((Step("b"), Step("c")))
    assert compiled.trigger_index == {"a": ("b",)}


def test_a_skip_step_in_a_fan_out_never_sits_in_a_chord_header() -> None:
    names, edges = ["z", "x", "y", "j"], arrows("z>x z>y x>j y>j")
    compiled = assert_exact(names, edges, dict.fromkeys(names, 1.0), frozenset("x"))
    assert compiled.spec == Chain((Step("z"), Group((Step("x"), Step("y")))))
    assert compiled.triggers["j"].waits_for == ("x", "y")


def test_a_skip_step_that_nothing_depends_on_changes_nothing() -> None:
    names, edges = ["z", "x", "y", "j"], arrows("z>x z>y x>j y>j")
    assert compiled_for(names, edges, frozenset("j")).spec == compiled_for(names, edges).spec


# -- triggers ---------------------------------------------------------------------------------------------
def test_the_n_dag_uses_a_trigger_and_d_does_not_wait_for_a() -> None:
    names, edges = ["a", "b", "c", "d"], arrows("a>c b>c b>d")
    compiled = assert_exact(names, edges, {"a": 10.0, "b": 1.0, "c": 1.0, "d": 1.0})
    assert compiled.spec == Group((Step("a"), Chain((Step("b"), Step("d")))))
    assert list(compiled.triggers) == ["c"]
    trigger = compiled.triggers["c"]
    assert trigger.waits_for == ("a", "b") and trigger.spec == Step("c")
    assert compiled.trigger_index == {"a": ("c",), "b": ("c",)}
    sim = Simulation(compiled, {"a": 10.0, "b": 1.0, "c": 1.0, "d": 1.0})
    assert sim.start["d"] == 1.0 < sim.finish["a"]


def test_trigger_canvases_survive_json_and_become_signatures_again() -> None:
    names = ["x", "a", "b", "c", "d", "e", "f", "t"]
    edges = arrows("x>a x>b a>c b>c b>d c>e c>f e>t f>t d>t")
    compiled = assert_exact(names, edges, dict.fromkeys(names, 1.0))
    assert compiled.triggers
    for trigger in compiled.triggers.values():
        canvas = compiled.trigger_canvas(trigger.trigger_id)
        assert (compiled.triggers.canvas_spec(trigger.trigger_id) is None) == isinstance(trigger.spec, Step)
        again = signature(json.loads(json.dumps(canvas)))
        assert isinstance(again, Signature) and callable(again.apply_async)
        assert json.loads(json.dumps(again)) == canvas
        assert sorted(leaf["kwargs"]["step_id"] for leaf in walk(again)) == sorted(step_ids(trigger.spec))


def test_resume_compiles_only_what_is_left() -> None:
    full = make_plan(["a", "b", "c", "d"], arrows("a>c b>c b>d"))
    compiled = compile_plan(subplan(full, {"a", "b"}), "run-1", generation=1)
    assert compiled.spec == Group((Step("c"), Step("d"))) and compiled.triggers == {}
    assert {leaf["options"]["task_id"] for leaf in walk(compiled.canvas)} == {"run-1.1.c", "run-1.1.d"}
    empty = compile_plan(subplan(full, {"a", "b", "c", "d"}), "run-1", generation=2)
    assert empty.canvas is None and empty.spec is None and empty.triggers == {}


def test_a_plan_out_of_topological_order_is_refused() -> None:
    good = make_plan(["a", "b"], [("a", "b")])
    backwards = WorkflowPlan(template_id=None, name="t", steps=list(reversed(good.steps)))
    with pytest.raises(WorkflowDefinitionInvalidError, match="not an earlier step"):
        compile_plan(backwards, "r")


def test_spec_helpers_fold_like_celery() -> None:
    g1, g2 = Group((Step("a"), Step("b"))), Group((Step("c"), Step("d")))
    assert sequence([g1, g2]) == Chord(g1, g2)
    assert sequence([Chord(g1, g2), Step("e")]) == Chord(g1, Chord(g2, Step("e")))
    assert sequence([Step("s"), g1, Step("t"), Step("u")]) == Chain((Step("s"), Chord(g1, Step("t")), Step("u")))


# -- properties over random DAGs --------------------------------------------------------------------------
@st.composite
def random_dags(draw: st.DrawFn, max_size: int = 14) -> tuple[list[str], Edges, dict[str, float]]:
    size = draw(st.integers(min_value=1, max_value=max_size))
    names = [f"s{i}" for i in range(size)]
    edges: Edges = []
    for i in range(1, size):
        for j in draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=3)):
            edges.append((names[j], names[i]))
    durations = {n: float(draw(st.integers(min_value=0, max_value=6))) for n in names}
    order = draw(st.permutations(names))
    rank = {n: i for i, n in enumerate(order)}
    return sorted(names, key=rank.__getitem__), edges, durations


@settings(max_examples=400, deadline=None)
@given(random_dags())
def test_random_dags_run_every_step_once_and_exactly_on_time(dag: tuple[list[str], Edges, dict[str, float]]) -> None:
    names, edges, durations = dag
    assert_exact(names, edges, durations)


@settings(max_examples=300, deadline=None)
@given(random_dags(), st.data())
def test_skip_steps_that_fail_never_delay_or_drop_a_dependent(
    dag: tuple[list[str], Edges, dict[str, float]], data: st.DataObject
) -> None:
    names, edges, durations = dag
    skip = frozenset(data.draw(st.sets(st.sampled_from(names)), label="skip"))
    assert_exact(names, edges, durations, skip)


@pytest.mark.parametrize(("max_depth", "work", "slack"), [(3, 40, 1000), (40, 0, 0), (2, 0, 0)])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dag=random_dags(max_size=20))
def test_depth_cap_and_work_budget_fallbacks_stay_exact(
    monkeypatch: pytest.MonkeyPatch,
    max_depth: int,
    work: int,
    slack: int,
    dag: tuple[list[str], Edges, dict[str, float]],
) -> None:
    monkeypatch.setattr(decompose_module, "MAX_DEPTH", max_depth)
    monkeypatch.setattr(decompose_module, "WORK_PER_ELEMENT", work)
    monkeypatch.setattr(decompose_module, "WORK_SLACK", slack)
    names, edges, durations = dag
    assert_exact(names, edges, durations)
    assert_exact(names, edges, durations, frozenset(names[::3]))


@st.composite
def series_parallel_dags(draw: st.DrawFn) -> tuple[list[str], Edges, dict[str, float]]:
    """A random series-parallel expression, as a DAG, plus some redundant (transitive) edges."""
    counter = iter(range(1000))
    edges: Edges = []

    def build(budget: int) -> tuple[list[str], list[str], list[str]]:  # (all, sources, sinks)
        if budget <= 1 or draw(st.integers(min_value=0, max_value=3)) == 0:
            name = f"v{next(counter)}"
            return [name], [name], [name]
        parts = [build(budget // 2) for _ in range(draw(st.integers(min_value=2, max_value=3)))]
        if draw(st.booleans()):  # parallel
            return (
                [n for p in parts for n in p[0]],
                [n for p in parts for n in p[1]],
                [n for p in parts for n in p[2]],
            )
        for left, right in pairwise(parts):
            edges.extend((a, b) for a in left[2] for b in right[1])
        return [n for p in parts for n in p[0]], parts[0][1], parts[-1][2]

    names = build(draw(st.integers(min_value=1, max_value=24)))[0]
    reach = _reachability(names, edges)
    extra = [(a, b) for a in names for b in sorted(reach[a]) if (a, b) not in set(edges)]
    if extra:
        edges.extend(draw(st.lists(st.sampled_from(extra), max_size=4, unique=True)))
    durations = {n: float(draw(st.integers(min_value=0, max_value=5))) for n in names}
    return names, edges, durations


def _reachability(names: list[str], edges: Edges) -> dict[str, set[str]]:
    succs: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        succs[a].append(b)
    reach: dict[str, set[str]] = {}
    for name in reversed(names):  # names are built in a topological order
        reach[name] = set(succs[name]).union(*(reach[s] for s in succs[name]))
    return reach


@settings(max_examples=300, deadline=None)
@given(series_parallel_dags())
def test_series_parallel_dags_compile_to_a_pure_canvas(dag: tuple[list[str], Edges, dict[str, float]]) -> None:
    names, edges, durations = dag
    compiled = assert_exact(names, edges, durations)
    assert compiled.triggers == {}, render(compiled.spec) if compiled.spec else "no canvas"


def test_deep_nesting_is_cut_into_triggers_and_stays_exact() -> None:
    names, edges = ["r0"], []
    for i in range(1, 120):  # a caterpillar: every spine step forks a leaf, so groups nest 120 deep
        names += [f"r{i}", f"leaf{i}"]
        edges += [(f"r{i - 1}", f"r{i}"), (f"r{i - 1}", f"leaf{i}")]
    compiled = assert_exact(names, edges, {n: float(len(n) % 3) for n in names})
    assert compiled.triggers
    assert json.dumps(compiled.canvas) and all(json.dumps(compiled.trigger_canvas(t)) for t in compiled.triggers)


def test_ten_thousand_step_random_dag_plans_and_compiles(capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(7)
    steps = []
    for i in range(10_000):
        deps = rng.sample(range(i), min(i, rng.choice([0, 1, 2, 2, 3, 4])))
        steps.append({"step_id": f"s{i}", "action": "cmdb.ping", "depends_on": [f"s{d}" for d in deps]})
    rng.shuffle(steps)
    definition = WorkflowDefinition.model_validate({"name": "big", "steps": steps})
    started = time.perf_counter()
    planned = plan(definition, {})
    planned_at = time.perf_counter()
    compiled = compile_plan(planned, "big-run")
    done = time.perf_counter()
    placed = len(list(step_ids(compiled.spec))) if compiled.spec else 0
    placed += sum(len(list(step_ids(t.spec))) for t in compiled.triggers.values() if t.spec)
    assert placed == 10_000
    with capsys.disabled():
        print(
            f"\n10,000-step random DAG: plan {1000 * (planned_at - started):.1f} ms, "
            f"compile {1000 * (done - planned_at):.1f} ms, {len(compiled.triggers)} triggers"
        )


def test_hand_built_plans_compile_too() -> None:
    def planned(step_id: str, *deps: str) -> PlannedStep:
        return PlannedStep.model_validate(
            dict(
                step_id=step_id,
                name=step_id,
                action="cmdb.ping",
                agent_id="cmdb-agent",
                domain="cmdb",
                target_domain="cmdb",
                access="read",
                idempotent=True,
                parameters={},
                depends_on=list(deps),
                on_failure="stop",
                max_retries=0,
                timeout_seconds=1.5,
            )
        )

    hand = WorkflowPlan(template_id=None, name="h", steps=[planned("a"), planned("b", "a", "a")])
    compiled = compile_plan(hand, "r")
    assert compiled.spec == Chain((Step("a"), Step("b")))
    assert compiled.canvas.tasks[1].options["time_limit"] == 6.5


def test_a_hand_built_plan_with_an_unknown_dependency_is_refused() -> None:
    good = make_plan(["a", "b"], [("a", "b")])
    ghost = good.steps[1]._replace(depends_on=("a", "ghost"))
    with pytest.raises(WorkflowDefinitionInvalidError, match="'ghost', which is not an earlier step"):
        compile_plan(good.model_copy(update={"steps": [good.steps[0], ghost]}), "r")


# -- the graph passes against brute force -----------------------------------------------------------------
@st.composite
def position_dags(draw: st.DrawFn) -> list[list[int]]:
    """Dependencies by position (each on earlier positions, no repeats), sometimes as one long chain of cuts."""
    size = draw(st.integers(min_value=1, max_value=16))
    deps: list[list[int]] = [[]]
    for i in range(1, size):
        chosen = draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=3))
        deps.append(sorted(chosen | ({i - 1} if draw(st.booleans()) else set())))
    return deps


def _brute_force_components(deps: list[list[int]]) -> list[list[int]]:
    neighbours: dict[int, set[int]] = {v: set(ds) for v, ds in enumerate(deps)}
    for v, ds in enumerate(deps):
        for d in ds:
            neighbours[d].add(v)
    seen: set[int] = set()
    parts = []
    for v in range(len(deps)):
        if v not in seen:
            stack, part = [v], {v}
            while stack:
                for w in neighbours[stack.pop()] - part:
                    part.add(w)
                    stack.append(w)
            seen |= part
            parts.append(sorted(part))
    return parts


def _brute_force_factors(deps: list[list[int]]) -> list[list[int]]:
    """Cut after i iff every later step is reachable from every step up to i."""
    ancestors: list[set[int]] = []
    for ds in deps:
        ancestors.append(set(ds).union(*(ancestors[d] for d in ds)))
    size = len(deps)
    factors: list[list[int]] = [[]]
    for i in range(size):
        factors[-1].append(i)
        if i < size - 1 and all(set(range(i + 1)) <= ancestors[q] for q in range(i + 1, size)):
            factors.append([])
    return factors


@settings(max_examples=400, deadline=None)
@given(position_dags())
def test_components_and_series_cuts_match_brute_force(deps: list[list[int]]) -> None:
    names = [f"s{i}" for i in range(len(deps))]
    everything = list(range(len(deps)))
    components = decompose_module._Decomposer(names, deps).components(everything)
    assert components == _brute_force_components(deps)
    if len(components) == 1:
        factors = decompose_module._Decomposer(names, deps).series_factors(everything)
        assert factors == _brute_force_factors(deps)


# -- workflows/ leaves the process alone ---------------------------------------------------------------------
def test_planning_and_compiling_leave_the_garbage_collector_as_they_found_it() -> None:
    """No process-wide switches from request threads: the collector stays on and nothing is frozen."""
    counts = []
    gc.callbacks.append(lambda phase, info: counts.append(info["generation"]) if phase == "stop" else None)
    try:
        planned = make_plan([f"s{i}" for i in range(3000)], [(f"s{i}", f"s{i + 1}") for i in range(2999)])
        compile_plan(planned, "run-gc")
    finally:
        gc.callbacks.pop()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert counts, "the collector ran while thousands of steps were planned and compiled"
