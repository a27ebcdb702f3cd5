"""Workflows, pure: planning (validated DAG) and compiling (plan -> Celery canvas + triggers).

The compiler (``orchestrator.workflows.compiler``) is imported by name: it needs Celery, which a client that
only validates or plans should not pay for. The built-in templates are data files here;
``orchestrator.state.templates`` loads them and the user's.
"""

from orchestrator.workflows.dag import bind_parameters, plan, subplan, validate_definition
from orchestrator.workflows.spec import CanvasSpec, Chain, Chord, Group, Step, render

__all__ = [
    "CanvasSpec",
    "Chain",
    "Chord",
    "Group",
    "Step",
    "bind_parameters",
    "plan",
    "render",
    "subplan",
    "validate_definition",
]
