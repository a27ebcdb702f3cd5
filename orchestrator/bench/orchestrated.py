"""Orchestrated twins of the bench shapes: workflow definitions of ``cmdb.ping`` steps for the service.

Why definitions (not canvases): the orchestrated variant must take the product's full path, from
``Orchestrator.start_workflow`` (plan, policy check, run state, audit, events, compile, enqueue) to the
worker (policy re-check, run state, events, audit). The definitions are built once, outside the timings:
they are the caller's input.
"""

from __future__ import annotations

from orchestrator.models.workflow import WorkflowDefinition, WorkflowStep

ACTION = "cmdb.ping"
AGENT_ID = "cmdb-agent"


def _step(step_id: str, *depends_on: str) -> WorkflowStep:
    return WorkflowStep(step_id=step_id, action=ACTION, depends_on=list(depends_on))


def chain_definition(steps: int) -> WorkflowDefinition:
    chained = [_step("s0")] + [_step(f"s{i}", f"s{i - 1}") for i in range(1, steps)]
    return WorkflowDefinition(name=f"bench chain {steps}", steps=chained)


def fan_in_definition(width: int) -> WorkflowDefinition:
    """``width`` root-less parallel steps and one join step that depends on all of them."""
    parallel = [_step(f"p{i}") for i in range(width)]
    join = _step("join", *[s.step_id for s in parallel])
    return WorkflowDefinition(name=f"bench fan-in {width}", steps=[*parallel, join])


def diamond_definition() -> WorkflowDefinition:
    steps = [_step("z"), _step("x", "z"), _step("y", "z"), _step("j", "x", "y")]
    return WorkflowDefinition(name="bench diamond", steps=steps)


def layered_definition(steps: int, width: int = 10) -> WorkflowDefinition:
    """A series-parallel DAG of ``steps`` steps: layers of ``width``, each step waiting for the whole layer
    before it (a chain of fan-out/fan-in layers, which compiles to chords with no trigger)."""
    layers: list[WorkflowStep] = []
    previous: list[str] = []
    for layer in range(max(1, steps // width)):
        current = [f"l{layer}_{k}" for k in range(width)]
        layers.extend(_step(step_id, *previous) for step_id in current)
        previous = current
    return WorkflowDefinition(name=f"bench layered {steps}", steps=layers)
