"""Workflows: templates (data), planning (validated DAG) and compiling (plan -> Celery canvas + triggers)."""

from orchestrator.workflows.compiler import CompiledPlan, Trigger, compile_plan, to_canvas_dict, to_signature
from orchestrator.workflows.dag import bind_parameters, plan, subplan, validate_definition
from orchestrator.workflows.spec import CanvasSpec, Chain, Chord, Group, Step, render
from orchestrator.workflows.templates import TemplateRegistry

__all__ = [
    "CanvasSpec",
    "Chain",
    "Chord",
    "CompiledPlan",
    "Group",
    "Step",
    "TemplateRegistry",
    "Trigger",
    "bind_parameters",
    "compile_plan",
    "plan",
    "render",
    "subplan",
    "to_canvas_dict",
    "to_signature",
    "validate_definition",
]
