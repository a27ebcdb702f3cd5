"""The compact forms compiling produces stay equal to the plain ones they replace.

The main and multi-step trigger canvases are written as JSON text (``canvas_json``) instead of dicts, triggers are
kept as columns (``TriggerTable``) instead of a record each, and ``plan()`` hands its dependency positions to the
compiler. Each must give exactly what the plain form gave: the same JSON, the same stored trigger fields, the same
positions; and handed positions are used only for the very records they describe.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from orchestrator.dispatch.dispatcher import lean
from orchestrator.dispatch.outbox import prepare_canvas
from orchestrator.models import PlannedStep, PlannedSteps, Priority, WorkflowDefinition, WorkflowPlan
from orchestrator.state.runs import RunStore
from orchestrator.workflows import plan
from orchestrator.workflows.compiler import _dependency_positions, compile_plan, to_canvas_dict
from orchestrator.workflows.decompose import Dependencies


def random_definition(size: int, seed: int, *, shuffled: bool = True, skip_every: int = 0) -> WorkflowDefinition:
    rng = random.Random(seed)
    steps: list[dict[str, Any]] = []
    for i in range(size):
        deps = rng.sample(range(i), min(i, rng.choice([0, 1, 2, 2, 3, 4])))
        step: dict[str, Any] = {"step_id": f"s{i}", "action": "cmdb.ping", "depends_on": [f"s{d}" for d in deps]}
        if skip_every and i % skip_every == 0:
            step["on_failure"] = "skip"
        if i % 7 == 0:
            step["timeout_seconds"] = 12.5
        steps.append(step)
    if shuffled:
        rng.shuffle(steps)
    return WorkflowDefinition.model_validate({"name": "forms", "steps": steps})


@pytest.mark.parametrize("run_id", ["run-1", 'odd "run" \\ \u00e9t\u00e9'])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_canvas_text_is_json_dumps_of_the_dict_form(seed: int, run_id: str) -> None:
    compiled = compile_plan(plan(random_definition(400, seed, skip_every=9 if seed == 3 else 0)), run_id, seed)
    assert compiled.spec is not None and compiled.main_json == json.dumps(
        to_canvas_dict(compiled.spec, compiled.step_dict)
    )
    assert compiled.triggers.canvases, "random DAGs of this size have multi-step triggers"
    for spec, text in compiled.triggers.canvases.values():
        assert text == json.dumps(to_canvas_dict(spec, compiled.step_dict))


def test_step_text_writes_numbers_as_json_does() -> None:
    base = plan(random_definition(3, 0, shuffled=False)).steps[0]
    for timeout in (30, 30.0, 1e-7, 86400.5):  # an int from a hand-built record, and floats repr writes oddly
        step = base._replace(timeout_seconds=timeout)
        hand = WorkflowPlan(template_id=None, name="n", priority=Priority.HIGH, steps=[step])
        compiled = compile_plan(hand, "r", 1)
        assert compiled.main_json == json.dumps(compiled.step_dict(step.step_id))


def test_stored_trigger_fields_are_those_of_the_trigger_records() -> None:
    compiled = lean(compile_plan(plan(random_definition(300, 5, skip_every=11)), "run-t"), "redis://")
    captured: dict[str, Any] = {}

    class Pipe:
        def delete(self, key: str) -> None:
            captured.clear()

        def hset(self, key: str, mapping: dict[str, Any]) -> None:
            captured.update(mapping)

    RunStore._write_triggers(Pipe(), "k", compiled.triggers, 7)
    expected: dict[str, Any] = {"prio": 7}  # what the store wrote from one record per trigger
    for trigger_id, trigger in compiled.triggers.items():
        expected[f"wait:{trigger_id}"] = len(trigger.waits_for)
        expected[f"sig:{trigger_id}"] = "" if trigger.canvas is None else json.dumps(trigger.canvas)
    index: dict[str, list[str]] = {}
    for trigger_id, trigger in compiled.triggers.items():
        for step_id in trigger.waits_for:
            index.setdefault(step_id, []).append(trigger_id)
    expected.update({f"idx:{step_id}": ",".join(ids) for step_id, ids in index.items()})
    assert captured == expected


def test_lean_prepares_what_it_did_from_dicts() -> None:
    compiled = compile_plan(plan(random_definition(300, 6)), "run-l")
    for broker in ("redis://", "amqp://"):
        ready = lean(compiled, broker)
        assert ready.canvas == prepare_canvas(compiled.main_dict or {}, broker)
        for k, (_, text) in compiled.triggers.canvases.items():
            prepared = ready.triggers.canvases[k][1]
            assert prepared == json.dumps(prepare_canvas(json.loads(text), broker))


def test_handed_positions_equal_looked_up_ones_and_serve_only_their_records() -> None:
    planned = plan(random_definition(500, 8))
    steps = planned.steps
    assert isinstance(steps, PlannedSteps)
    handed = steps.positions()
    assert handed is not None
    looked_up = _dependency_positions(list(steps), [s.step_id for s in steps])
    assert Dependencies(*handed) == looked_up
    steps[3] = PlannedStep.model_validate(steps[3])  # an equal record, but not the one the positions describe
    assert steps.positions() is None
    assert compile_plan(planned, "r").main_json == compile_plan(plan(random_definition(500, 8)), "r").main_json


def test_a_step_listing_a_dependency_twice_is_planned_and_compiled_once() -> None:
    definition = WorkflowDefinition.model_validate(
        {
            "name": "twice",
            "steps": [
                {"step_id": "c", "action": "cmdb.ping", "depends_on": ["b", "a", "b"]},
                {"step_id": "a", "action": "cmdb.ping"},
                {"step_id": "b", "action": "cmdb.ping", "depends_on": ["a", "a"]},
            ],
        }
    )
    planned = plan(definition)
    assert [s.depends_on for s in planned.steps] == [(), ("a",), ("b", "a")]
    handed = planned.steps.positions() if isinstance(planned.steps, PlannedSteps) else None
    assert handed == ([0, 1, 0], [0, 0, 1, 3])
    assert compile_plan(planned, "r").spec is not None
