"""Celery result writes are kept only where a chord reads them."""

from __future__ import annotations

from typing import Any

from celery import chain, chord, group, signature

from orchestrator.runtime.canvas_results import drop_unused_results, map_priorities


def sig(name: str) -> Any:
    return signature("orch.run_step", kwargs={"step_id": name}, immutable=True)


def ignored(canvas: dict[str, Any]) -> dict[str, bool]:
    found: dict[str, bool] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if node.get("task") == "orch.run_step":
                found[node["kwargs"]["step_id"]] = bool(node.get("options", {}).get("ignore_result"))
            for value in node.values():
                walk(value)

    walk(canvas)
    return found


def test_chain_steps_skip_results_and_chord_headers_keep_them() -> None:
    canvas = dict(chain(sig("z"), chord([sig("x"), chain(sig("y1"), sig("y2"))], sig("j"))))
    marked = drop_unused_results(canvas)
    assert ignored(marked) == {"z": True, "x": False, "y1": True, "y2": False, "j": True}
    assert ignored(canvas) == {k: False for k in ("z", "x", "y1", "y2", "j")}  # the input is not changed


def test_a_chord_inside_a_header_keeps_its_body_result() -> None:
    inner = chord([sig("a"), sig("b")], sig("c"))
    canvas = dict(chord(group(inner, sig("d")), sig("e")))
    assert ignored(drop_unused_results(canvas)) == {"a": False, "b": False, "c": False, "d": False, "e": True}


def test_priorities_are_mapped_through_the_whole_canvas() -> None:
    canvas = drop_unused_results(dict(chain(sig("z").set(priority=0), chord([sig("x").set(priority=0)], sig("j")))))
    mapped = map_priorities(canvas, lambda p: 9 - p)
    found: list[int] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if node.get("task") == "orch.run_step":
                found.append(node.get("options", {}).get("priority", -1))
            for value in node.values():
                walk(value)

    walk(mapped)
    assert sorted(found) == [-1, 9, 9]  # j had no priority; z and x are flipped for AMQP
