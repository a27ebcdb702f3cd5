"""Workflow templates (data shipped in the package plus the user directory)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from orchestrator.http.deps import AUTHENTICATED, ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.models.workflow import Template

router = APIRouter(prefix=f"{API_PREFIX}/templates", tags=["templates"], dependencies=AUTHENTICATED)


@router.get("", summary="Workflow templates, optionally for one domain, and the user files that do not load")
def list_templates(
    service: ServiceDep, domain: Annotated[str | None, Query(description="Only templates of this domain")] = None
) -> dict[str, Any]:
    """``broken`` lists user template files that fail to load: ``{template_id, file, line, error_code, error}``.
    User files are re-read when ``ORCH_DATA_DIR/templates`` changes; no restart needed."""
    templates = service.list_templates(domain)
    return {
        "templates": [t.model_dump(mode="json") for t in templates],
        "count": len(templates),
        "broken": service.broken_templates(),
    }


@router.get("/{template_id}", summary="One template: parameters and step graph")
def get_template(service: ServiceDep, template_id: str) -> Template:
    return service.get_template(template_id)
