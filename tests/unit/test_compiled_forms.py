"""The compact forms compiling produces stay equal to the plain ones they replace.

The main canvas is written as JSON text (``canvas_json``) instead of dicts, multi-step trigger canvases are stored
as their specs (``spec_json``) and built when they fire, triggers are kept as columns (``TriggerTable``) instead of
a record each, and ``plan()`` hands its dependency positions to the compiler. Each must give exactly what the plain
form gave: the same JSON, the same stored trigger fields, the same canvases when triggers fire, the same positions;
and handed positions are used only for the very records they describe.
"""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any, cast

import pytest

from orchestrator import keys
from orchestrator.dispatch import outbox as outbox_module
from orchestrator.dispatch.dispatcher import lean
from orchestrator.dispatch.outbox import Outbox, prepare_canvas
from orchestrator.models import PlannedStep, PlannedSteps, Priority, WorkflowDefinition, WorkflowPlan
from orchestrator.state.runs import RunStore
from orchestrator.workflows import plan
from orchestrator.workflows.compiler import _dependency_positions, compile_plan, to_canvas_dict
from orchestrator.workflows.decompose import Dependencies
from orchestrator.workflows.spec import Step, spec_from_json, spec_json


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
    for k, spec in compiled.triggers.canvases.items():
        assert spec_from_json(spec_json(spec)) == spec  # what the run stores gives the spec back
        trigger_id = compiled.triggers.ids[k]
        assert compiled.trigger_canvas(trigger_id) == to_canvas_dict(spec, compiled.step_dict)


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
        expected[f"sig:{trigger_id}"] = "" if isinstance(trigger.spec, Step) else spec_json(trigger.spec)
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
        assert ready.triggers is compiled.triggers  # trigger canvases are built and prepared when they fire


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


def _outbox(fake_redis: Any, broker: str) -> Outbox:
    """The outbox of a store on ``fake_redis``, for an app whose broker is ``broker`` (only its URL is read)."""
    store = RunStore(fake_redis, ttl_seconds=600, result_max_bytes=200)
    return Outbox(store, cast(Any, SimpleNamespace(conf=SimpleNamespace(broker_url=broker))))


def _fired(fake_redis: Any, broker: str, seed: int) -> tuple[Any, dict[str, dict[str, Any]]]:
    """A random plan stored as a run with its triggers, and every trigger's canvas as the outbox builds it on firing."""
    planned = plan(random_definition(300, seed, skip_every=13))
    compiled = compile_plan(planned, f"run-{seed}")
    outbox = _outbox(fake_redis, broker)
    outbox.runs.create(f"run-{seed}", planned, created_by="t", triggers=compiled.triggers)
    return compiled, outbox._trigger_canvases(f"run-{seed}", list(compiled.triggers), 0)


@pytest.mark.parametrize("broker", ["redis://", "amqp://"])
def test_a_fired_trigger_applies_the_canvas_the_compiler_describes(fake_redis: Any, broker: str) -> None:
    compiled, fired = _fired(fake_redis, broker, 4)
    assert compiled.triggers.canvases, "random DAGs of this size have multi-step triggers"
    assert fired.keys() == set(compiled.triggers)
    for trigger_id, canvas in fired.items():
        assert canvas == prepare_canvas(compiled.trigger_canvas(trigger_id), broker)


def test_a_trigger_canvas_an_earlier_version_stored_whole_is_applied_as_stored(fake_redis: Any) -> None:
    compiled, _ = _fired(fake_redis, "redis://", 5)
    k = next(iter(compiled.triggers.canvases))
    trigger_id = compiled.triggers.ids[k]
    whole = prepare_canvas(compiled.trigger_canvas(trigger_id), "redis://")
    fake_redis.hset(keys.run_triggers_key("run-5"), f"sig:{trigger_id}", json.dumps(whole))
    assert _outbox(fake_redis, "redis://")._trigger_canvases("run-5", [trigger_id], 0) == {trigger_id: whole}


def test_a_broker_error_mid_drain_keeps_the_unapplied_entries_for_the_next_drain(
    fake_redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drain's promise: an entry leaves the outbox only after the broker took it. This is also what keeps a trigger
    an earlier worker cannot apply (it fails at ``enqueue``) waiting for a current one during an upgrade."""
    compiled, fired = _fired(fake_redis, "redis://", 4)
    fake_redis.hset(keys.run_key("run-4"), "status", "running")  # as the start leaves it
    triggers = sorted(compiled.triggers)[:3]
    entries = [f"fire:0:{t}" for t in triggers]
    fake_redis.hset(keys.run_outbox_key("run-4"), mapping=dict.fromkeys(entries, "1"))
    taken: list[dict[str, Any]] = []
    down = True

    def broker(app: Any, canvas: dict[str, Any]) -> None:
        if down and taken:
            raise ConnectionError("broker down")
        taken.append(canvas)

    monkeypatch.setattr(outbox_module, "enqueue", broker)
    with pytest.raises(ConnectionError):
        _outbox(fake_redis, "redis://").drain("run-4")
    assert sorted(fake_redis.hkeys(keys.run_outbox_key("run-4"))) == entries[1:]
    down = False
    assert _outbox(fake_redis, "redis://").drain("run-4") == entries[1:]
    assert not fake_redis.exists(keys.run_outbox_key("run-4"))
    assert taken == [fired[t] for t in triggers]


def test_a_stored_spec_that_is_not_one_is_refused() -> None:
    for text in ('{"group": ["a"]}', '{"chain": "ab"}', '{"chord": ["a", "b"]}', "7", '{"task": 1, "x": 2, "y": 3}'):
        with pytest.raises(ValueError, match="not a stored canvas spec"):
            spec_from_json(text)
