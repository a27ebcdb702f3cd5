"""Plan -> Celery canvas with no lost parallelism: one main canvas plus gated triggers.

Why: a step must start as soon as its own dependencies are done. ``decompose`` (see its docstring for the
strategy) turns series-parallel structure into chains, groups and chords, and splits what canvases cannot
express into *triggers*: canvases the runtime applies when every step in ``waits_for`` is done. The
runtime keeps one counter per trigger (``keys.run_triggers_key``): after each step is done it decrements
every trigger the step releases (``TriggerTable.index``) and applies the trigger's canvas at zero.

Every step is one immutable signature of task ``keys.TASK_RUN_STEP`` on its agent's queue, with a
deterministic task id (cancel revokes without a lookup), the run's broker priority, soft/hard time
limits from the step's timeout, and a ``kwargsrepr`` naming run, step and action for Celery's events (what
Flower shows). A step under the ``skip`` policy ends its canvas: its dependents start from triggers, so its
task may fail in Celery's eyes without stopping them (see ``decompose``). Canvases are lowered to Celery's
own dict form, written as JSON text (``canvas_json``, character for character ``json.dumps`` of
``to_canvas_dict``): that is what the outbox and the trigger hash store, and ``celery.signature`` of its parsed
form yields the same chain/group/chord objects Celery's constructors would.

Speed, with the garbage collector running as usual (a random 10,000-step DAG in tens of milliseconds): what
compiling leaves alive is what brings the collector's full collections round, so it keeps to few objects. A
random DAG becomes ~6,700 triggers, ~5,700 of one step; a trigger's canvas is built by the runtime from its spec
and its steps' planned specs when it fires (``step_signature_dict`` is the one builder), so compiling writes
signatures only for the main canvas, as strings (no dict per signature), and keeps the triggers as columns
(``TriggerTable``: no record per trigger). Dependency positions come from ``plan()`` when it sorted the steps
(``PlannedSteps.positions``), else from C-level ``map``s over all steps; both are one flat list
(``decompose.Dependencies``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate, chain, repeat
from json.encoder import encode_basestring_ascii as _quote
from math import isfinite
from operator import add, attrgetter, lt, mul
from typing import Any

from celery import signature
from celery.canvas import Signature

from orchestrator import keys
from orchestrator.errors import WorkflowDefinitionInvalidError
from orchestrator.models import PlannedStep, PlannedSteps, WorkflowPlan
from orchestrator.models.common import FailurePolicy
from orchestrator.workflows.decompose import Dependencies, decompose
from orchestrator.workflows.spec import CanvasSpec, Chain, Chord, Group, Step, first_step
from orchestrator.workflows.triggers import Trigger, TriggerTable

HARD_LIMIT_GRACE_SECONDS = 5
_STEP_ID, _ON_FAILURE, _DEPENDS_ON = attrgetter("step_id"), attrgetter("on_failure"), attrgetter("depends_on")

__all__ = [
    "CompiledPlan",
    "Trigger",
    "TriggerTable",
    "canvas_json",
    "compile_plan",
    "first_step",
    "step_signature_dict",
    "to_canvas_dict",
]


@dataclass(frozen=True, slots=True)
class CompiledPlan:
    """What dispatch needs: the canvas to apply now (``main_json``), and the triggers the runtime fires later.

    The main canvas is kept as JSON text of Celery's dict form: what dispatch stores in the outbox and hands
    the broker, and every reader parses its own copy anyway (Celery rebuilds canvases in place), so compiling
    leaves no dict per signature behind. ``main_dict`` and ``canvas`` parse it on each call (a fresh copy:
    Celery rebuilds canvases in place).
    """

    main_json: str | None
    triggers: TriggerTable
    spec: CanvasSpec | None
    step_dict: Callable[[str], dict[str, Any]] = field(default=lambda step_id: {}, compare=False, repr=False)

    @property
    def main_dict(self) -> dict[str, Any] | None:
        """The canvas to apply now in Celery's dict form (a fresh copy each call: Celery rebuilds in place)."""
        if self.main_json is None:
            return None
        parsed: dict[str, Any] = json.loads(self.main_json)
        return parsed

    @property
    def canvas(self) -> Signature | None:
        """The canvas to apply now as Celery's signature objects (a fresh tree each call)."""
        main = self.main_dict
        return None if main is None else signature(main)

    @property
    def trigger_index(self) -> dict[str, tuple[str, ...]]:
        """For each step some trigger waits for, those triggers (the runtime reads ``triggers.index()``)."""
        return {step_id: tuple(trigger_ids) for step_id, trigger_ids in self.triggers.index()}

    def trigger_canvas(self, trigger_id: str) -> dict[str, Any]:
        """The canvas a trigger applies, in Celery's dict form (built now, as the runtime builds it when the
        trigger fires)."""
        spec = self.triggers.canvas_spec(trigger_id)
        return self.step_dict(trigger_id) if spec is None else to_canvas_dict(spec, self.step_dict)


def compile_plan(plan: WorkflowPlan, run_id: str, generation: int = 0) -> CompiledPlan:
    """Compile a validated plan (steps in topological order) for run ``run_id``."""
    steps = plan.steps
    names = list(map(_STEP_ID, steps))
    handed = steps.positions() if isinstance(steps, PlannedSteps) else None  # what plan() worked out already
    deps = Dependencies(*handed) if handed is not None else _dependency_positions(steps, names)
    ends = None  # steps whose task raises on failure (see ``decompose``); usually there are none
    if FailurePolicy.SKIP in map(_ON_FAILURE, steps):
        ends = [step.on_failure is FailurePolicy.SKIP for step in steps]
    decomposition = decompose(names, deps, ends)
    by_id = dict(zip(names, steps, strict=True))
    priority = plan.priority.broker_priority

    def step_dict(step_id: str) -> dict[str, Any]:
        return step_signature_dict(by_id[step_id], run_id, generation, priority)

    main = decomposition.main
    return CompiledPlan(
        main_json=None if main is None else canvas_json(main, _SignatureText(by_id, run_id, generation, priority).text),
        triggers=TriggerTable(
            names, decomposition.ids, decomposition.starts, decomposition.waits, decomposition.canvases
        ),
        spec=main,
        step_dict=step_dict,
    )


def _dependency_positions(steps: list[PlannedStep], names: list[str]) -> Dependencies:
    """Each step's distinct dependencies as plan positions; they must all be earlier steps (a topological
    order). Plans from ``plan()`` always pass: C-level ``map``s over all steps at once and two checks; anything
    else is walked step by step to name the culprit or drop repeats."""
    size = len(names)
    index = dict(zip(names, range(size), strict=True))
    lists = list(map(_DEPENDS_ON, steps))
    counts = list(map(len, lists))
    try:
        flat = list(map(index.__getitem__, chain.from_iterable(lists)))
    except KeyError:  # an unknown dependency
        return _checked_positions(steps, index)
    owners = list(chain.from_iterable(map(repeat, range(size), counts)))
    earlier = all(map(lt, flat, owners))
    if earlier and len(set(map(add, map(mul, owners, repeat(size)), flat))) == len(flat):  # and none repeated
        return Dependencies(flat, list(accumulate(counts, initial=0)))
    return _checked_positions(steps, index)


def _checked_positions(steps: list[PlannedStep], index: dict[str, int]) -> Dependencies:
    """The slow path of ``_dependency_positions``: repeats dropped, the first bad dependency named."""
    found: list[list[int]] = []
    for i, step in enumerate(steps):
        positions = [index.get(dep, i) for dep in dict.fromkeys(step.depends_on)]
        if positions and max(positions) >= i:
            dep = next(d for d in step.depends_on if index.get(d, i) >= i)
            raise WorkflowDefinitionInvalidError(
                f"plan step '{step.step_id}' depends on '{dep}', which is not an earlier step of the plan; "
                "build plans with workflows.plan() (or subplan() for a resume)",
                {"step_id": step.step_id, "depends_on": dep},
            )
        found.append(positions)
    return Dependencies.of(found)


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


# -- the main canvas as JSON text -------------------------------------------------------------------------
# ``canvas_json(spec, text)`` is ``json.dumps(to_canvas_dict(spec, step_dict))``, character for character (a unit
# test holds them together), written straight from strings: no dict, list or signature per step is left for the
# garbage collector to track, and the text is what the outbox stores anyway.


def canvas_json(spec: CanvasSpec, text: Callable[[str], str]) -> str:
    """Celery's dict form of a spec as JSON text; ``text(step_id)`` gives one step's signature as JSON."""
    if isinstance(spec, Step):
        return text(spec.step_id)
    if isinstance(spec, Group):
        return _container_json("celery.group", "group", '{"tasks": ' + _list_json(spec.items, text) + "}")
    if isinstance(spec, Chord):
        header = _list_json(spec.header.items, text)
        body = canvas_json(spec.body, text)
        kwargs = '{"kwargs": {}, "header": ' + header + ', "body": ' + body + "}"
        return _container_json("celery.chord", "chord", kwargs)
    assert isinstance(spec, Chain)
    return _container_json("celery.chain", "chain", '{"tasks": ' + _list_json(spec.items, text) + "}")


def _list_json(items: tuple[CanvasSpec, ...], text: Callable[[str], str]) -> str:
    return "[" + ", ".join([canvas_json(item, text) for item in items]) + "]"


def _container_json(task: str, kind: str, kwargs: str) -> str:
    return (
        f'{{"task": "{task}", "args": [], "kwargs": {kwargs}, "options": {{}}, "subtask_type": "{kind}", '
        '"immutable": false}'
    )


def _number(value: float) -> str:
    """A number as ``json.dumps`` writes it."""
    return repr(value) if type(value) in (float, int) and isfinite(value) else json.dumps(value)


class _SignatureText:
    """Step id -> its signature as JSON text, exactly ``json.dumps(step_signature_dict(...))``.

    Only the step id is encoded per step: JSON escapes character by character, so the encoding of a string is
    the encoding of its pieces, and what several steps share (run id, generation, priority, action, agent,
    timeout) is encoded once per run or once per value."""

    def __init__(self, by_id: dict[str, PlannedStep], run_id: str, generation: int, priority: int) -> None:
        self.by_id = by_id
        self.run_id = run_id
        run = _quote(run_id)
        self.head = f'{{"task": {_quote(keys.TASK_RUN_STEP)}, "args": [], "kwargs": {{"run_id": {run}, "step_id": "'
        self.generation = f'", "generation": {generation}}}, "options": {{"kwargsrepr": "'
        self.shown_tail = _quote(f"', 'generation': {generation}}}")[1:]  # closes the kwargsrepr string
        self.task_id = _quote(keys.step_task_id(run_id, "", generation))[:-1]  # the task id up to the step id
        self.priority = f'", "priority": {_number(priority)}, "soft_time_limit": '
        self.shown: dict[str, str] = {}  # action -> the kwargsrepr up to the step id (encoded)
        self.queues: dict[str, str] = {}  # agent -> ``, "queue": ..., "task_id": `` up to the step id
        self.limits: dict[float, str] = {}  # timeout -> the rest of the signature

    def text(self, step_id: str) -> str:
        step = self.by_id[step_id]
        sid = _quote(step_id)[1:-1]
        shown = self.shown.get(step.action)
        if shown is None:
            shown = self.shown[step.action] = _quote(
                f"{{'action': '{step.action}', 'run_id': '{self.run_id}', 'step_id': '"
            )[1:-1]
        queue = self.queues.get(step.agent_id)
        if queue is None:
            queue = self.queues[step.agent_id] = f', "queue": {_quote(keys.agent_queue(step.agent_id))}, "task_id": '
        timeout = step.timeout_seconds
        limits = self.limits.get(timeout)
        if limits is None or type(timeout) is not float:  # only floats are kept: 30 and 30.0 are one key
            limits = (
                f'{self.priority}{_number(timeout)}, "time_limit": {_number(timeout + HARD_LIMIT_GRACE_SECONDS)}}}, '
                '"subtask_type": null, "immutable": true}'
            )
            if type(timeout) is float:
                self.limits[timeout] = limits
        return f"{self.head}{sid}{self.generation}{shown}{sid}{self.shown_tail}{queue}{self.task_id}{sid}{limits}"
