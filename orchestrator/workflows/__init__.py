"""Workflows, pure: planning (validated DAG) and compiling (plan -> Celery canvas + triggers).

The built-in templates are data files here; ``orchestrator.state.templates`` loads them and the user's.
"""

from orchestrator.workflows.compiler import CompiledPlan, Trigger, compile_plan, to_canvas_dict
from orchestrator.workflows.dag import bind_parameters, plan, subplan, validate_definition
from orchestrator.workflows.spec import CanvasSpec, Chain, Chord, Group, Step, render

__all__ = [
    "CanvasSpec",
    "Chain",
    "Chord",
    "CompiledPlan",
    "Group",
    "Step",
    "Trigger",
    "bind_parameters",
    "compile_plan",
    "plan",
    "render",
    "subplan",
    "to_canvas_dict",
    "validate_definition",
]
