"""Workflow templates as data: the built-in JSON files plus a user directory of JSON/YAML files.

Why data, not code: operators add or adjust workflows without a release, and the same validation applies to
every template, built in or not. Built-ins load through ``importlib.resources`` so they work from a wheel.
A user file with a built-in's id overrides it. A broken user file never breaks the others: it is
remembered with its file name (and, for a JSON or YAML syntax error, its line) and reported (ORCH_3006) when
its template is asked for, and by ``broken()`` for listings.

A running API sees user files added, changed or removed without a restart: every read compares the user
directory's listing (names, sizes, modification times) with the one last loaded and reloads when it differs.
One ``scandir`` per read is cheap next to planning a workflow.
"""

from __future__ import annotations

import builtins
import json
import os
import threading
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.errors import OrchestratorError, WorkflowDefinitionInvalidError, WorkflowNotFoundError
from orchestrator.models import Template
from orchestrator.workflows.dag import validate_definition

BUILTIN_PACKAGE = "orchestrator.workflows"
BUILTIN_FOLDER = "templates"
USER_SUFFIXES = (".json", ".yaml", ".yml")


Fingerprint = tuple[tuple[str, int, int], ...]


class TemplateRegistry:
    """Templates by id, loaded lazily and again whenever the user directory changed; ``reload()`` forces it."""

    def __init__(self, user_dir: Path | None = None, *, include_builtin: bool = True) -> None:
        self._user_dir = user_dir
        self._include_builtin = include_builtin
        self._templates: dict[str, Template] | None = None
        self._broken: dict[str, WorkflowDefinitionInvalidError] = {}
        self._fingerprint: Fingerprint | None = None
        self._lock = threading.Lock()

    @property
    def user_dir(self) -> Path | None:
        """Where user templates live (``ORCH_DATA_DIR/templates`` in the service); ``None``: built-ins only."""
        return self._user_dir

    def reload(self) -> None:
        fingerprint = _fingerprint(self.user_dir)
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
        self._templates, self._broken, self._fingerprint = templates, broken, fingerprint

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

    def broken(self) -> builtins.list[dict[str, Any]]:
        """Broken user files, by template id: ``{template_id, file, line, error_code, error}`` (line may be None)."""
        self._loaded()
        return [
            {
                "template_id": template_id,
                "file": error.details.get("file"),
                "line": error.details.get("line"),
                "error_code": error.code,
                "error": error.message,
            }
            for template_id, error in sorted(self._broken.items())
        ]

    def _loaded(self) -> dict[str, Template]:
        with self._lock:
            if self._templates is None or self._fingerprint != _fingerprint(self.user_dir):
                self.reload()
            assert self._templates is not None
            return self._templates


def _fingerprint(folder: Path | None) -> Fingerprint:
    """What a change to the user directory changes: each template file's name, size and mtime (ns)."""
    if folder is None:
        return ()
    try:
        with os.scandir(folder) as entries:
            found = []
            for entry in entries:
                if entry.is_file() and entry.name.lower().endswith(USER_SUFFIXES):
                    stat = entry.stat()
                    found.append((entry.name, stat.st_size, stat.st_mtime_ns))
    except OSError:  # missing or unreadable directory: no user templates
        return ()
    return tuple(sorted(found))


def _builtin_files() -> Iterable[Traversable]:
    folder = resources.files(BUILTIN_PACKAGE).joinpath(BUILTIN_FOLDER)
    return sorted((e for e in folder.iterdir() if e.name.endswith(".json")), key=lambda e: e.name)


def _user_files(folder: Path | None) -> builtins.list[Path]:
    if folder is None or not folder.is_dir():
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
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise _broken_file(filename, f"not valid JSON at {where}: {exc.msg}", exc.lineno) from None
    except yaml.YAMLError as exc:
        raise _yaml_error(filename, exc) from None
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


def _yaml_error(filename: str, exc: yaml.YAMLError) -> WorkflowDefinitionInvalidError:
    """Name the line (1-based) where the YAML parser gave up, and what it expected there."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return _broken_file(filename, f"not valid YAML: {exc}")
    line = int(mark.line) + 1
    problem = str(getattr(exc, "problem", None) or exc)
    context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and opened is not None and opened is not mark:
        problem = f"{problem} ({context} opened at line {int(opened.line) + 1})"
    return _broken_file(filename, f"not valid YAML at line {line}, column {int(mark.column) + 1}: {problem}", line)


def _broken_file(filename: str, reason: str, line: int | None = None) -> WorkflowDefinitionInvalidError:
    details: dict[str, Any] = {"file": filename, "reason": reason}
    if line is not None:
        details["line"] = line
    return WorkflowDefinitionInvalidError(f"template file '{filename}' is invalid: {reason}", details)
