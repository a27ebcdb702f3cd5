"""Plan -> Celery canvas with no lost parallelism: one main canvas plus gated triggers.

Why: a step must start as soon as its own dependencies are done. ``decompose`` (see its docstring for the
strategy) turns series-parallel structure into chains, groups and chords, and splits what canvases cannot
express into *triggers*: canvases the runtime applies when every step in ``waits_for`` is done. The
runtime keeps one counter per trigger (``keys.run_triggers_key``): after each step is done it decrements
every trigger in ``trigger_index[step_id]`` and applies ``signature(trigger.canvas)`` at zero.

Every step is one immutable signature of task ``keys.TASK_RUN_STEP`` on its agent's queue, with a
deterministic task id (cancel revokes without a lookup), the run's broker priority, soft/hard time
limits from the step's timeout, and a ``kwargsrepr`` naming run, step and action for Celery's events (what
Flower shows). A step under the ``skip`` policy ends its canvas: its dependents start from triggers, so its
task may fail in Celery's eyes without stopping them (see ``decompose``). Canvases are lowered to Celery's
own dict form first (cheap, JSON-able: that is what a trigger stores) and the main canvas is rebuilt from it
with ``celery.signature``, which yields the same chain/group/chord objects Celery's constructors would.

Speed: a random 10,000-step DAG becomes ~10,000 one-step triggers. Their canvases are not built here: a
one-step trigger's canvas is its step's signature, which the runtime builds from the step's planned spec
when the trigger fires (``Trigger.canvas`` is None; ``step_signature_dict`` is the one builder). So compiling
builds signatures only for the main canvas and multi-step triggers, a run stores one short field per such
trigger instead of a whole signature, and a start does not prepare (copy, re-prioritise) thousands of
canvases most of which fire much later. Dependencies become positions with one C-level ``map`` per step.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from celery import signature
from celery.canvas import Signature

from orchestrator import keys
from orchestrator.errors import WorkflowDefinitionInvalidError
from orchestrator.models import PlannedStep, WorkflowPlan
from orchestrator.models.common import FailurePolicy
from orchestrator.workflows.decompose import decompose
from orchestrator.workflows.spec import CanvasSpec, Chain, Chord, Group, Step

HARD_LIMIT_GRACE_SECONDS = 5
_record = tuple.__new__  # a named tuple from its fields in order, without the keyword-handling constructor


class Trigger(NamedTuple):
    """A canvas applied once every step in ``waits_for`` is done.

    ``canvas`` is None for a one-step trigger (its canvas is the signature of its own step, ``trigger_id``,
    built when it fires); multi-step triggers carry their canvas in Celery's dict form. A named tuple: a
    random 10,000-step DAG has thousands, and a tuple of strings, tuples and None stops being tracked by the
    garbage collector at its first pass.
    """

    trigger_id: str
    waits_for: tuple[str, ...]
    canvas: dict[str, Any] | None
    spec: CanvasSpec | None = None


@dataclass(frozen=True, slots=True)
class CompiledPlan:
    """What dispatch needs: the canvas to apply now (``main_canvas``), and the triggers the runtime fires later.

    The main canvas is kept as its spec and lowered on request: dispatch wants Celery's dict form (to store in
    the outbox and send), never the signature objects, so building those for every start was wasted work.
    """

    main_dict: dict[str, Any] | None
    triggers: dict[str, Trigger]
    trigger_index: dict[str, tuple[str, ...]]
    spec: CanvasSpec | None
    step_dict: Callable[[str], dict[str, Any]] = field(default=lambda step_id: {}, compare=False, repr=False)

    def main_canvas(self) -> dict[str, Any] | None:
        """The canvas to apply now in Celery's dict form (a fresh copy each call: Celery rebuilds in place)."""
        return None if self.main_dict is None else json.loads(json.dumps(self.main_dict))

    @property
    def canvas(self) -> Signature | None:
        """The canvas to apply now as Celery's signature objects (a fresh tree each call)."""
        main = self.main_canvas()
        return None if main is None else signature(main)

    def trigger_canvas(self, trigger_id: str) -> dict[str, Any]:
        """The canvas a trigger applies, in Celery's dict form (built now for a one-step trigger)."""
        canvas = self.triggers[trigger_id].canvas
        return canvas if canvas is not None else self.step_dict(trigger_id)


def compile_plan(plan: WorkflowPlan, run_id: str, generation: int = 0) -> CompiledPlan:
    """Compile a validated plan (steps in topological order) for run ``run_id``."""
    return _compile(plan, run_id, generation)


def _compile(plan: WorkflowPlan, run_id: str, generation: int) -> CompiledPlan:
    steps = plan.steps
    names = [step.step_id for step in steps]
    ends = [step.on_failure is FailurePolicy.SKIP for step in steps]  # their task raises on failure
    decomposition = decompose(names, _dependency_positions(steps, names), ends if any(ends) else None)
    step_dict = _step_signatures(steps, names, run_id, generation, plan.priority.broker_priority)
    triggers, trigger_index = _triggers(decomposition.triggers, names, step_dict)
    main = decomposition.main
    return CompiledPlan(
        main_dict=None if main is None else to_canvas_dict(main, step_dict),
        triggers=triggers,
        trigger_index=trigger_index,
        spec=main,
        step_dict=step_dict,
    )


def _triggers(
    found: list[tuple[tuple[int, ...], CanvasSpec]], names: list[str], step_dict: Callable[[str], dict[str, Any]]
) -> tuple[dict[str, Trigger], dict[str, tuple[str, ...]]]:
    """Triggers by id, and for each step the triggers that wait for it.

    On random DAGs nearly every step is a one-step trigger, so that case skips the generic tree walks and
    builds no canvas (see ``Trigger``); records are built straight from their fields (no per-call keyword
    handling), and waiters are grouped by step position (int keys) before they are named.
    """
    name_of = names.__getitem__
    triggers: dict[str, Trigger] = {}
    waiting_on: defaultdict[int, list[str]] = defaultdict(list)
    for waits, spec in found:
        if isinstance(spec, Step):
            trigger_id: str = spec[0]
            canvas = None
        else:
            trigger_id = first_step(spec)
            canvas = to_canvas_dict(spec, step_dict)
        triggers[trigger_id] = _record(Trigger, (trigger_id, tuple(map(name_of, waits)), canvas, spec))
        for position in waits:
            waiting_on[position].append(trigger_id)
    return triggers, {name_of(position): tuple(ids) for position, ids in waiting_on.items()}


def _step_signatures(
    steps: list[PlannedStep], names: list[str], run_id: str, generation: int, priority: int
) -> Callable[[str], dict[str, Any]]:
    """Step id -> a new dict of its signature, built when asked (each call gives a fresh dict: Celery rebuilds
    groups in place, so no two canvases may share one)."""
    by_id = dict(zip(names, steps, strict=True))

    def step_dict(step_id: str) -> dict[str, Any]:
        return step_signature_dict(by_id[step_id], run_id, generation, priority)

    return step_dict


def first_step(spec: CanvasSpec) -> str:
    """The first step in reading order (a source of the canvas): names a trigger."""
    while not isinstance(spec, Step):
        spec = spec.header if isinstance(spec, Chord) else spec.items[0]
    return spec.step_id


def _dependency_positions(steps: list[PlannedStep], names: list[str]) -> list[tuple[int, ...]]:
    """Each step's distinct dependencies as plan positions; they must all be earlier steps (a topological
    order). Plans from ``plan()`` always pass: one C-level ``map`` per step and two cheap checks; anything
    else is walked step by step to name the culprit or drop repeats."""
    index = {name: i for i, name in enumerate(names)}
    position = index.__getitem__
    try:  # tuples: the garbage collector stops tracking them at its first pass
        found = [tuple(map(position, step.depends_on)) for step in steps]
    except KeyError:  # an unknown dependency
        return _checked_positions(steps, index)
    return found if _earlier_and_distinct(found) else _checked_positions(steps, index)


def _earlier_and_distinct(found: list[tuple[int, ...]]) -> bool:
    """Every step's dependencies are earlier steps, none repeated (one pass: this runs on every compile)."""
    return all(not ds or (max(ds) < i and (len(ds) < 2 or len(set(ds)) == len(ds))) for i, ds in enumerate(found))


def _checked_positions(steps: list[PlannedStep], index: dict[str, int]) -> list[tuple[int, ...]]:
    """The slow path of ``_dependency_positions``: repeats dropped, the first bad dependency named."""
    found: list[tuple[int, ...]] = []
    for i, step in enumerate(steps):
        positions = [index.get(dep, i) for dep in dict.fromkeys(step.depends_on)]
        if positions and max(positions) >= i:
            dep = next(d for d in step.depends_on if index.get(d, i) >= i)
            raise WorkflowDefinitionInvalidError(
                f"plan step '{step.step_id}' depends on '{dep}', which is not an earlier step of the plan; "
                "build plans with workflows.plan() (or subplan() for a resume)",
                {"step_id": step.step_id, "depends_on": dep},
            )
        found.append(tuple(positions))
    return found


def step_signature_dict(step: PlannedStep, run_id: str, generation: int, priority: int) -> dict[str, Any]:
    """Celery's dict form of one step's signature (what ``dict(signature(...))`` would give)."""
    timeout = step.timeout_seconds
    return {
        "task": keys.TASK_RUN_STEP,
        "args": [],
        "kwargs": {"run_id": run_id, "step_id": step.step_id, "generation": generation},
        "options": {
            # What Celery's events (so Flower) show as its kwargs: the action first (the task id already names run
            # and step), then the ids; never parameters (they may hold secrets; they travel in run state, not in
            # the message). Inlined: this runs once per step.
            "kwargsrepr": f"{{'action': '{step.action}', 'run_id': '{run_id}', 'step_id': '{step.step_id}', "
            f"'generation': {generation}}}",
            "queue": keys.agent_queue(step.agent_id),
            "task_id": keys.step_task_id(run_id, step.step_id, generation),
            "priority": priority,
            "soft_time_limit": timeout,
            "time_limit": timeout + HARD_LIMIT_GRACE_SECONDS,
        },
        "subtask_type": None,
        "immutable": True,
    }


def to_canvas_dict(spec: CanvasSpec, step_dict: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Lower a spec to Celery's dict form; ``celery.signature(result)`` gives the applicable canvas.

    Note that ``celery.signature`` rebuilds groups in place: hand it a copy if you keep the dict.
    """
    if isinstance(spec, Step):
        return step_dict(spec.step_id)
    if isinstance(spec, Group):
        return _container("celery.group", "group", {"tasks": [to_canvas_dict(i, step_dict) for i in spec.items]})
    if isinstance(spec, Chord):
        header = [to_canvas_dict(i, step_dict) for i in spec.header.items]
        body = to_canvas_dict(spec.body, step_dict)
        return _container("celery.chord", "chord", {"kwargs": {}, "header": header, "body": body})
    assert isinstance(spec, Chain)
    return _container("celery.chain", "chain", {"tasks": [to_canvas_dict(i, step_dict) for i in spec.items]})


def _container(task: str, kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"task": task, "args": [], "kwargs": kwargs, "options": {}, "subtask_type": kind, "immutable": False}
