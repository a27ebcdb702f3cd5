"""Planning: structural validation (ids, dependencies, cycles), catalog resolution, order and resume."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import InputInvalidError, WorkflowDefinitionInvalidError
from orchestrator.models import (
    Access,
    FailurePolicy,
    PlannedStep,
    PlannedStepModel,
    Priority,
    TemplateParameter,
    WorkflowDefinition,
)
from orchestrator.workflows import plan, subplan, validate_definition


def step(step_id: str, *deps: str, action: str = "cmdb.ping", **fields: Any) -> dict[str, Any]:
    return {"step_id": step_id, "action": action, "depends_on": list(deps), **fields}


def definition(*steps: dict[str, Any], parameters: list[TemplateParameter] | None = None) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate({"name": "wf", "steps": list(steps), "parameters": parameters or []})


def invalid(defn: WorkflowDefinition, params: dict[str, Any] | None = None) -> WorkflowDefinitionInvalidError:
    with pytest.raises(WorkflowDefinitionInvalidError) as caught:
        plan(defn, params or {})
    assert caught.value.code == "ORCH_3006"
    return caught.value


# -- structure --------------------------------------------------------------------------------------------
def test_duplicate_step_ids_are_rejected() -> None:
    error = invalid(definition(step("a"), step("b", "a"), step("a")))
    assert "duplicate step id 'a'" in error.message


def test_unknown_dependency_is_rejected_naming_both_steps() -> None:
    error = invalid(definition(step("a"), step("b", "ghost")))
    assert "'b' depends on unknown step 'ghost'" in error.message


def test_self_dependency_is_rejected() -> None:
    error = invalid(definition(step("a"), step("b", "b")))
    assert "'b' depends on itself" in error.message


def test_two_step_cycle_names_both_steps() -> None:
    error = invalid(definition(step("root"), step("a", "root", "b"), step("b", "a")))
    assert error.details["cycle"] in (["a", "b"], ["b", "a"])
    assert "'a' waits for 'b'" in error.message and "'b' waits for 'a'" in error.message
    assert "root" not in error.message


def test_three_step_cycle_names_exactly_the_steps_on_it() -> None:
    error = invalid(definition(step("x"), step("a", "c"), step("b", "a"), step("c", "b"), step("tail", "x", "a")))
    assert sorted(error.details["cycle"]) == ["a", "b", "c"]
    for name in ("'a' waits for 'c'", "'c' waits for 'b'", "'b' waits for 'a'"):
        assert name in error.message
    assert "tail" not in error.message and "'x'" not in error.message


def test_structural_errors_come_before_parameter_binding_of_steps() -> None:
    # The cycle is reported even though a step also has a bad parameter: nothing is resolved first.
    error = invalid(definition(step("a", "b", parameters={"nope": 1}), step("b", "a")))
    assert "cycle" in error.message


def test_validate_definition_checks_structure_actions_and_placeholders_without_values() -> None:
    with pytest.raises(WorkflowDefinitionInvalidError, match="undeclared parameter"):
        validate_definition(definition(step("a", action="cmdb.query", parameters={"name": "{{who}}"})))
    with pytest.raises(WorkflowDefinitionInvalidError, match="unknown agent"):
        validate_definition(definition(step("a", agent="nobody-agent")))
    validate_definition(definition(step("a"), step("b", "a")))


# -- catalog resolution -----------------------------------------------------------------------------------
def test_unknown_action_names_the_step() -> None:
    error = invalid(definition(step("a"), step("b", "a", action="cmdb.teleport")))
    assert "step 'b'" in error.message and "cmdb.teleport" in error.message


def test_unknown_agent_names_the_step_and_the_agents() -> None:
    error = invalid(definition(step("a", agent="ghost-agent")))
    assert "step 'a'" in error.message and "ghost-agent" in error.message and "cmdb-agent" in error.message


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ({"fields": {"x": 1}}, "missing required parameter 'ci_id'"),
        ({"ci_id": "c1", "fields": "not-a-dict"}, "'fields' must be object"),
        ({"ci_id": "c1", "fields": {}, "colour": "red"}, "unknown parameter(s) ['colour']"),
    ],
)
def test_bad_step_parameters_name_step_and_parameter(parameters: dict[str, Any], fragment: str) -> None:
    error = invalid(definition(step("upd", action="cmdb.update", parameters=parameters)))
    assert "step 'upd' (cmdb.update)" in error.message
    assert fragment in error.message


def test_steps_resolve_agent_access_limits_and_defaults() -> None:
    result = plan(
        definition(
            step("scan", action="discovery.scan"),
            step("fix", "scan", action="cmdb.update", parameters={"ci_id": "c1", "fields": {"a": 1}}),
            step(
                "doc",
                "fix",
                action="documentation.generate",
                agent="cmdb-agent",
                timeout_seconds=7,
                max_retries=4,
                on_failure="skip",
                target_domain="cmdb",
            ),
        )
    )
    scan, fix, doc = (result.step(s) for s in ("scan", "fix", "doc"))
    assert (scan.agent_id, scan.access, scan.idempotent, scan.timeout_seconds) == (
        "discovery-agent",
        Access.EXECUTE,
        True,
        120,
    )
    assert scan.parameters == {"ip_range": "10.0.0.0/16", "scan_type": "full", "schedule_id": None}
    assert (fix.access, fix.idempotent, fix.max_retries, fix.depends_on) == (Access.WRITE, False, 0, ("scan",))
    assert (doc.agent_id, doc.timeout_seconds, doc.max_retries, doc.on_failure) == ("cmdb-agent", 7, 4, "skip")
    assert (doc.domain, doc.target_domain, doc.action) == ("documentation", "cmdb", "documentation.generate")
    assert scan.max_retries == 2 and scan.on_failure is FailurePolicy.STOP


def test_plan_carries_template_id_priority_and_bound_parameters() -> None:
    params = [TemplateParameter(name="limit", type="integer", default=5)]
    defn = definition(step("q", action="cmdb.query", parameters={"limit": "{{limit}}"}), parameters=params)
    result = plan(defn, {"limit": "9"}, template_id="t-1", priority="high")
    assert (result.template_id, result.priority, result.parameters) == ("t-1", Priority.HIGH, {"limit": 9})
    assert result.step("q").parameters["limit"] == 9


def test_an_unknown_priority_is_an_input_error() -> None:
    with pytest.raises(InputInvalidError, match="priority must be one of") as caught:
        plan(definition(step("a")), {}, priority="urgent")
    assert caught.value.code == "ORCH_8003"


def test_workflow_parameters_are_validated_by_name() -> None:
    params = [TemplateParameter(name="n", type="integer", required=True)]
    defn = definition(step("a"), parameters=params)
    assert "missing required parameter 'n'" in invalid(defn).message
    assert "'n' must be integer" in invalid(defn, {"n": "many"}).message
    assert "unknown parameter(s) ['m']" in invalid(defn, {"n": 1, "m": 2}).message


# -- order and resume -------------------------------------------------------------------------------------
def test_topological_order_keeps_definition_order_among_ready_steps() -> None:
    result = plan(definition(step("late", "b"), step("a"), step("b"), step("c", "a"), step("d")))
    assert [s.step_id for s in result.steps] == ["a", "b", "late", "c", "d"]


def test_duplicate_dependencies_collapse() -> None:
    result = plan(definition(step("a"), step("b", "a", "a")))
    assert result.step("b").depends_on == ("a",)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.randoms(use_true_random=False))
def test_random_dags_plan_in_a_valid_topological_order(size: int, rng: random.Random) -> None:
    steps = [step(f"s{i}", *(f"s{d}" for d in rng.sample(range(i), min(i, rng.randint(0, 3))))) for i in range(size)]
    rng.shuffle(steps)
    result = plan(definition(*steps))
    position = {s.step_id: i for i, s in enumerate(result.steps)}
    assert len(position) == size
    for planned in result.steps:
        assert all(position[d] < position[planned.step_id] for d in planned.depends_on)


def test_subplan_keeps_undone_steps_and_drops_edges_to_done_ones() -> None:
    full = plan(definition(step("a"), step("b", "a"), step("c", "a", "b"), step("d", "c")), priority="low")
    rest = subplan(full, {"a", "b"})
    assert [s.step_id for s in rest.steps] == ["c", "d"]
    assert rest.step("c").depends_on == () and rest.step("d").depends_on == ("c",)
    assert rest.priority is Priority.LOW and full.step("c").depends_on == ("a", "b")
    assert subplan(full, {"a", "b", "c", "d"}).steps == []


# -- planned steps are built without re-validation: they must equal validated ones -----------------------
def test_planned_steps_equal_fully_validated_ones() -> None:
    params = [TemplateParameter(name="limit", type="integer", default=5)]
    result = plan(
        definition(
            step("scan", action="discovery.scan"),
            step("q", "scan", "scan", action="cmdb.query", parameters={"limit": "{{limit}}", "name": "web"}),
            step("fix", "q", action="cmdb.update", parameters={"ci_id": "c1", "fields": {"a": [1]}}, max_retries=0),
            step("doc", "fix", action="documentation.generate", agent="cmdb-agent", timeout_seconds=7, name="Doc"),
            step("late", "doc", action="cmdb.update", parameters={"ci_id": "c2", "fields": {}}),
            parameters=params,
        ),
        {"limit": 9},
    )
    for planned in result.steps:
        validated = PlannedStepModel.model_validate(planned._asdict())
        assert planned == PlannedStep.from_model(validated) == PlannedStep.model_validate(planned)
        assert [type(v) for v in planned] == [type(v) for v in PlannedStep.from_model(validated)]
        assert type(planned.timeout_seconds) is float and type(planned.max_retries) is int
        assert planned.model_dump_json() == validated.model_dump_json()  # the stored form, byte for byte
        assert PlannedStep.model_validate_json(planned.model_dump_json()) == planned
    assert result == type(result).model_validate(result.model_dump())
    assert result.step("q").depends_on == ("scan",) and result.step("fix").max_retries == 0


def test_each_planned_step_owns_its_parameters_and_dependencies() -> None:
    same: dict[str, Any] = {"action": "cmdb.query", "parameters": {"limit": 3}}
    defn = definition(
        *(step(s, action="discovery.scan") for s in "abc"),
        *(step(s, "a", **same) for s in "xyz"),
    )
    result = plan(defn)
    for group in ("abc", "xyz"):
        owned = [result.step(s).parameters for s in group]
        assert owned[0] == owned[1] == owned[2]
        assert len({id(p) for p in owned}) == 3
    result.step("x").parameters["limit"] = 99
    assert result.step("y").parameters["limit"] == 3 and plan(defn).step("x").parameters["limit"] == 3
    assert result.step("y").depends_on is not defn.steps[4].depends_on


def test_equal_but_differently_typed_parameters_are_each_checked() -> None:
    # 1 == True and hash alike: a cache of checked parameters must not let the boolean through.
    error = invalid(
        definition(
            step("a", action="cmdb.query", parameters={"limit": 1}),
            step("b", "a", action="cmdb.query", parameters={"limit": True}),
        )
    )
    assert "step 'b' (cmdb.query)" in error.message and "'limit' must be integer" in error.message


def test_structural_errors_are_named_when_the_definition_is_out_of_order() -> None:
    # "late" comes first and waits for a later step, so these go through the full (sorting) pass.
    unknown = invalid(definition(step("late", "b"), step("a"), step("b", "a", "ghost")))
    assert "'b' depends on unknown step 'ghost'" in unknown.message
    itself = invalid(definition(step("late", "b"), step("a"), step("b", "a", "b")))
    assert "'b' depends on itself" in itself.message
    duplicate = invalid(definition(step("late", "b"), step("b"), step("late")))
    assert "duplicate step id 'late' (steps 1 and 3)" in duplicate.message


def test_repeated_dependencies_out_of_order_still_sort_and_collapse() -> None:
    result = plan(definition(step("c", "b", "b", "a"), step("a"), step("b", "a", "a")))
    assert [s.step_id for s in result.steps] == ["a", "b", "c"]
    assert result.step("c").depends_on == ("b", "a") and result.step("b").depends_on == ("a",)
