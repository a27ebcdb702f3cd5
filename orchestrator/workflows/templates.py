"""Workflow templates as data: the built-in JSON files plus a user directory of JSON/YAML files.

Why data, not code: operators add or adjust workflows without a release, and the same validation applies to
every template, built in or not. Built-ins load through ``importlib.resources`` so they work from a wheel.
A user file with a built-in's id overrides it. A broken user file never breaks the others: it is
remembered with its file name and reported (ORCH_3006) when its template is asked for.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.errors import OrchestratorError, WorkflowDefinitionInvalidError, WorkflowNotFoundError
from orchestrator.models import Template
from orchestrator.settings import get_settings
from orchestrator.workflows.dag import validate_definition

BUILTIN_PACKAGE = "orchestrator.workflows"
BUILTIN_FOLDER = "templates"
USER_SUFFIXES = (".json", ".yaml", ".yml")


class TemplateRegistry:
    """Templates by id, loaded lazily; ``reload()`` re-reads the files."""

    def __init__(self, user_dir: Path | None = None, *, include_builtin: bool = True) -> None:
        self._user_dir = user_dir
        self._include_builtin = include_builtin
        self._templates: dict[str, Template] | None = None
        self._broken: dict[str, WorkflowDefinitionInvalidError] = {}

    @property
    def user_dir(self) -> Path:
        return self._user_dir if self._user_dir is not None else get_settings().user_templates_dir

    def reload(self) -> None:
        templates: dict[str, Template] = {}
        broken: dict[str, WorkflowDefinitionInvalidError] = {}
        if self._include_builtin:
            for entry in _builtin_files():
                template = _load(entry.name, entry.read_text(encoding="utf-8"), source="builtin")
                templates[template.template_id] = template
        for path in _user_files(self.user_dir):
            try:
                template = _load(path.name, path.read_text(encoding="utf-8"), source=f"user:{path}")
            except (OSError, WorkflowDefinitionInvalidError) as exc:
                error = exc if isinstance(exc, WorkflowDefinitionInvalidError) else _broken_file(path.name, str(exc))
                broken[_claimed_id(path)] = error
                continue
            templates[template.template_id] = template
            broken.pop(template.template_id, None)
        for template_id in broken:
            templates.pop(template_id, None)
        self._templates, self._broken = templates, broken

    def list(self, domain: str | None = None) -> builtins.list[Template]:
        """Valid templates sorted by id, optionally only those of one domain."""
        found = self._loaded().values()
        return sorted((t for t in found if domain is None or t.domain == domain), key=lambda t: t.template_id)

    def get(self, template_id: str) -> Template:
        template = self._loaded().get(template_id)
        if template is not None:
            return template
        if template_id in self._broken:
            raise self._broken[template_id]
        raise WorkflowNotFoundError(
            f"Template '{template_id}' not found. Known templates: {', '.join(sorted(self._loaded())) or 'none'}",
            {"template_id": template_id},
        )

    def problems(self) -> dict[str, str]:
        """Broken user files by template id (what ``get`` would raise), for status pages and the CLI."""
        self._loaded()
        return {template_id: error.message for template_id, error in sorted(self._broken.items())}

    def _loaded(self) -> dict[str, Template]:
        if self._templates is None:
            self.reload()
        assert self._templates is not None
        return self._templates


def _builtin_files() -> Iterable[Traversable]:
    folder = resources.files(BUILTIN_PACKAGE).joinpath(BUILTIN_FOLDER)
    return sorted((e for e in folder.iterdir() if e.name.endswith(".json")), key=lambda e: e.name)


def _user_files(folder: Path) -> builtins.list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in USER_SUFFIXES)


def _claimed_id(path: Path) -> str:
    """The id a broken file was meant to define: its ``template_id`` if readable, else the file's stem."""
    try:
        data = _parse(path.name, path.read_text(encoding="utf-8"))
    except (OSError, WorkflowDefinitionInvalidError):
        return path.stem
    claimed = data.get("template_id")
    return claimed if isinstance(claimed, str) and claimed else path.stem


def _parse(filename: str, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if filename.endswith((".yaml", ".yml")) else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "YAML" if filename.endswith((".yaml", ".yml")) else "JSON"
        raise _broken_file(filename, f"not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise _broken_file(filename, "the top level must be a mapping of template fields")
    return data


def _load(filename: str, text: str, *, source: str) -> Template:
    data = _parse(filename, text)
    data.setdefault("template_id", Path(filename).stem)
    data["source"] = source
    try:
        template = Template.model_validate(data)
    except ValidationError as exc:
        raise _broken_file(filename, _describe(exc)) from None
    try:
        validate_definition(template)
    except OrchestratorError as exc:
        raise _broken_file(filename, exc.message) from None
    return template


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "template"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _broken_file(filename: str, reason: str) -> WorkflowDefinitionInvalidError:
    return WorkflowDefinitionInvalidError(
        f"template file '{filename}' is invalid: {reason}", {"file": filename, "reason": reason}
    )
