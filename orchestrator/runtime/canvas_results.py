"""Drop Celery's own result writes where nothing reads them.

Run state already records every step's outcome, so Celery's result write is a second write per step. Only
chord headers need it: on the Redis backend the last header task to finish reports to the chord's counter
through its result. Every other step signature gets ``ignore_result`` (the worker then skips the write).
Pure: works on Celery's dict form of a canvas.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

CHAIN, GROUP, CHORD = "celery.chain", "celery.group", "celery.chord"


def drop_unused_results(canvas: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``canvas`` whose step signatures skip the result write unless a chord waits on them."""
    return drop_unused_results_json(json.dumps(canvas))  # plain dicts all the way down (Signatures nest)


def drop_unused_results_json(canvas: str) -> dict[str, Any]:
    """``drop_unused_results`` on a canvas given as JSON text (parsed here, so nothing needs copying)."""
    result: dict[str, Any] = json.loads(canvas)
    _mark(result, needed=False)
    return result


def _mark(node: dict[str, Any], *, needed: bool) -> None:
    task = node.get("task")
    kwargs = node.get("kwargs") or {}
    if task == CHAIN:
        tasks = kwargs.get("tasks") or []
        for index, member in enumerate(tasks):
            _mark(member, needed=needed and index == len(tasks) - 1)  # a chain's result is its last task's
    elif task == GROUP:
        for member in kwargs.get("tasks") or []:
            _mark(member, needed=needed)
    elif task == CHORD:
        for member in _header_members(kwargs.get("header")):
            _mark(member, needed=True)
        body = kwargs.get("body")
        if isinstance(body, dict):
            _mark(body, needed=needed)
    elif not needed:
        node.setdefault("options", {})["ignore_result"] = True


def _header_members(header: Any) -> list[dict[str, Any]]:
    """A chord header is a list of signatures, a group, or one signature."""
    if isinstance(header, list):
        return header
    if isinstance(header, dict) and header.get("task") == GROUP:
        return list(header.get("kwargs", {}).get("tasks") or [])
    return [header] if isinstance(header, dict) else []


def map_priorities(canvas: dict[str, Any], convert: Callable[[int], int]) -> dict[str, Any]:
    """Rewrite every signature's ``priority`` option in place (e.g. flipped for an AMQP broker); returns it."""
    options = canvas.get("options")
    if isinstance(options, dict) and options.get("priority") is not None:
        options["priority"] = convert(int(options["priority"]))
    kwargs = canvas.get("kwargs") or {}
    children: list[Any] = list(kwargs.get("tasks") or [])
    children += _header_members(kwargs.get("header")) if canvas.get("task") == CHORD else []
    if isinstance(kwargs.get("body"), dict):
        children.append(kwargs["body"])
    for child in children:
        if isinstance(child, dict):
            map_priorities(child, convert)
    return canvas
