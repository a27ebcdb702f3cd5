"""Workflow definition + parameters -> validated ``WorkflowPlan`` (a DAG in topological order).

Why everything is checked here, up front: the seed accepted cycles longer than one step and then stalled
silently, and merged parameters blindly into every step. A plan that leaves this module is safe to compile
and enqueue: parameters are typed and declared, every placeholder is bound, step ids are unique, every
dependency exists, there is no cycle of any length, and every step names a known action and agent with
parameters the action declares. Every failure is ``WorkflowDefinitionInvalidError`` (ORCH_3006) with a
message naming the step or parameter to fix.

Speed matters (10,000 steps plan in tens of milliseconds): indices instead of id lookups, Kahn's algorithm
with a heap (stable: definition order among ready steps) skipped when the definition is already in
order, cached action defaults, no quadratic work.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from functools import cache
from itertools import pairwise
from typing import Any

from orchestrator import catalog
from orchestrator.errors import InputInvalidError, TaskInvalidError, WorkflowDefinitionInvalidError
from orchestrator.models import PlannedStep, Priority, WorkflowDefinition, WorkflowPlan, WorkflowStep
from orchestrator.workflows.perf import gc_paused
from orchestrator.workflows.placeholders import find_placeholders, has_placeholders, substitute

_Invalid = WorkflowDefinitionInvalidError


def plan(
    definition: WorkflowDefinition,
    parameters: dict[str, Any] | None = None,
    *,
    template_id: str | None = None,
    priority: Priority | str = Priority.MEDIUM,
) -> WorkflowPlan:
    """Validate ``definition`` with ``parameters`` and resolve every step against the catalog."""
    if priority not in Priority.__members__.values():
        raise InputInvalidError(
            f"priority must be one of {[p.value for p in Priority]}, got {priority!r}", {"priority": str(priority)}
        )
    bound = bind_parameters(definition, parameters or {})
    with gc_paused():
        order = _validated_order(definition)
        steps = definition.steps
        planned = [_resolve(steps[i], bound) for i in order]
    return WorkflowPlan(
        template_id=template_id if template_id is not None else getattr(definition, "template_id", None),
        name=definition.name,
        parameters=bound,
        priority=Priority(priority),
        steps=planned,
    )


def bind_parameters(definition: WorkflowDefinition, given: dict[str, Any]) -> dict[str, Any]:
    """Typed values for the definition's declared parameters (defaults filled); ORCH_3006 names the culprit."""
    where = f"workflow '{definition.name}'"
    try:
        return catalog.validate_params(definition.parameters, given, where=where)
    except ValueError as exc:
        raise _Invalid(_located(where, exc), {"workflow": definition.name}) from None


def validate_definition(definition: WorkflowDefinition) -> None:
    """Everything that can be checked without parameter values: placeholders, ids, dependencies, cycles,
    actions and agents (templates are checked this way when they load)."""
    _validated_order(definition)
    for step in definition.steps:
        _target(step)


def _validated_order(definition: WorkflowDefinition) -> list[int]:
    declared = {p.name for p in definition.parameters}
    for step in definition.steps:
        if not step.parameters:
            continue
        unknown = sorted(set(find_placeholders(step.parameters)) - declared)
        if unknown:
            raise _Invalid(
                f"step '{step.step_id}' uses undeclared parameter(s) {unknown}; declare them in the workflow's "
                f"'parameters' (declared: {sorted(declared) or 'none'})",
                {"step_id": step.step_id, "parameters": unknown},
            )
    return _topological_order(definition.steps)


def subplan(full: WorkflowPlan, done: set[str]) -> WorkflowPlan:
    """The plan that is left once ``done`` steps have completed (resume): their edges are dropped."""
    steps = [
        step.model_copy(update={"depends_on": [d for d in step.depends_on if d not in done]})
        for step in full.steps
        if step.step_id not in done
    ]
    return full.model_copy(update={"steps": steps})


def _topological_order(steps: Sequence[WorkflowStep]) -> list[int]:
    """Indices of ``steps`` in a stable topological order; ORCH_3006 on any structural error."""
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.step_id in index:
            raise _Invalid(
                f"duplicate step id '{step.step_id}' (steps {index[step.step_id] + 1} and {i + 1}); "
                "give every step a unique step_id",
                {"step_id": step.step_id},
            )
        index[step.step_id] = i
    dependents: list[list[int]] = [[] for _ in steps]
    waiting = [0] * len(steps)
    in_order = True
    for i, step in enumerate(steps):
        for dep in dict.fromkeys(step.depends_on):
            j = index.get(dep)
            if j is None:
                raise _Invalid(
                    f"step '{step.step_id}' depends on unknown step '{dep}'; known steps: {sorted(index)}",
                    {"step_id": step.step_id, "depends_on": dep},
                )
            if j == i:
                raise _Invalid(
                    f"step '{step.step_id}' depends on itself; remove it from its own depends_on",
                    {"step_id": step.step_id},
                )
            dependents[j].append(i)
            waiting[i] += 1
            in_order = in_order and j < i
    if in_order:  # every dependency is an earlier step: definition order is already topological
        return list(range(len(steps)))
    ready = [i for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in dependents[i]:
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(ready, k)
    if len(order) != len(steps):
        cycle = _find_cycle(steps, index, {i for i, count in enumerate(waiting) if count > 0})
        described = ", ".join(f"'{a}' waits for '{b}'" for a, b in pairwise(cycle))
        raise _Invalid(
            f"dependency cycle between steps {cycle[:-1]}: {described}; break the cycle",
            {"cycle": cycle[:-1]},
        )
    return order


def _find_cycle(steps: Sequence[WorkflowStep], index: dict[str, int], stuck: set[int]) -> list[str]:
    """Walk dependencies inside the stuck set (each stuck step has a stuck dependency) until one repeats."""
    seen: dict[int, int] = {}
    path: list[int] = []
    current = min(stuck)
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        current = next(index[d] for d in steps[current].depends_on if index[d] in stuck)
    loop = [*path[seen[current] :], current]
    return [steps[i].step_id for i in loop]


@cache
def _defaults(action: str) -> dict[str, Any] | None:
    """An action's parameters when a step gives none (None if one is required); cached: plans are large."""
    spec = catalog.get_action(action)
    try:
        return catalog.validate_params(spec.params, {}, where=action)
    except ValueError:
        return None


def _target(step: WorkflowStep) -> tuple[catalog.ActionSpec, str]:
    """The step's action and the agent that runs it."""
    try:
        spec = catalog.get_action(step.action)
    except TaskInvalidError as exc:
        raise _Invalid(f"step '{step.step_id}': {exc.message}", {"step_id": step.step_id}) from None
    agent_id = step.agent or spec.agent_id
    if agent_id not in catalog.AGENTS:
        raise _Invalid(
            f"step '{step.step_id}': unknown agent '{agent_id}'; use one of {sorted(catalog.AGENTS)} or omit "
            f"'agent' to use the action's agent ({spec.agent_id})",
            {"step_id": step.step_id, "agent": agent_id},
        )
    return spec, agent_id


def _resolve(step: WorkflowStep, bound: dict[str, Any]) -> PlannedStep:
    """Agent, access, limits and checked parameters for one step."""
    spec, agent_id = _target(step)
    params = _step_parameters(step, spec, bound)
    domain = spec.name.partition(".")[0]
    return PlannedStep(
        step_id=step.step_id,
        name=step.name or step.step_id,
        action=spec.name,
        agent_id=agent_id,
        domain=domain,
        target_domain=step.target_domain or domain,
        access=spec.access,
        idempotent=spec.idempotent,
        parameters=params,
        depends_on=list(dict.fromkeys(step.depends_on)) if len(step.depends_on) > 1 else step.depends_on,
        on_failure=step.on_failure,
        max_retries=step.max_retries if "max_retries" in step.model_fields_set else spec.max_retries,
        timeout_seconds=step.timeout_seconds or spec.timeout_seconds,
    )


def _step_parameters(step: WorkflowStep, spec: catalog.ActionSpec, bound: dict[str, Any]) -> dict[str, Any]:
    """The step's parameters with placeholders bound, checked against what the action declares."""
    raw = step.parameters
    if not raw:
        defaults = _defaults(spec.name)
        if defaults is not None:
            return dict(defaults)
    elif has_placeholders(raw):
        raw = substitute(raw, bound)
    where = f"step '{step.step_id}' ({spec.name})"
    try:
        return catalog.validate_params(spec.params, raw, where=where, allow_extra=False)
    except ValueError as exc:
        raise _Invalid(_located(where, exc), {"step_id": step.step_id, "action": spec.name}) from None


def _located(where: str, exc: ValueError) -> str:
    """The catalog's message, prefixed with where it happened when it does not say so already."""
    message = str(exc)
    return message if message.startswith(where) else f"{where}: {message}"
