"""CanvasSpec: the pure intermediate form between a plan and a Celery canvas.

Why an intermediate form: tests simulate it without Celery (every step's start time follows from the
tree), the CLI and docs print it, and the Celery lowering stays a small mechanical function.

Semantics (the same as Celery's): ``Step`` runs one step; ``Group`` starts its items together and ends
when all have ended; ``Chain`` runs its items one after the other; ``Chord(header, body)`` runs the body
when every task of the header has ended. ``sequence()`` folds a chain the way Celery's own
``prepare_steps`` does (a group followed by something becomes a chord whose body is that something), so
what we build is exactly what Celery executes, and nothing it re-shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple


class Step(NamedTuple):
    """One step. A named tuple (of one string): the cheapest record there is, one allocation (a compiled random
    10,000-step DAG holds ~4,300 of them, in its main and multi-step trigger canvases)."""

    step_id: str


@dataclass(frozen=True, slots=True)
class Group:
    items: tuple[CanvasSpec, ...]


@dataclass(frozen=True, slots=True)
class Chord:
    header: Group
    body: CanvasSpec


@dataclass(frozen=True, slots=True)
class Chain:
    items: tuple[CanvasSpec, ...]


CanvasSpec = Step | Group | Chord | Chain


def parallel(specs: Iterable[CanvasSpec]) -> CanvasSpec:
    """Items that start together: nested groups are flattened, a one-item group is the item itself."""
    items: list[CanvasSpec] = []
    for spec in specs:
        items.extend(spec.items if isinstance(spec, Group) else (spec,))
    if not items:
        raise ValueError("a group needs at least one item")
    return items[0] if len(items) == 1 else Group(tuple(items))


def sequence(specs: Iterable[CanvasSpec]) -> CanvasSpec:
    """Items that run one after another, in Celery's canonical shape (group + next item -> chord)."""
    raw: list[CanvasSpec] = []
    for spec in specs:
        _unfold(spec, raw)
    if not raw:
        raise ValueError("a chain needs at least one item")
    folded: list[CanvasSpec] = []  # built back to front
    for item in reversed(raw):
        if isinstance(item, Group) and folded:
            folded[-1] = Chord(item, folded[-1])
        else:
            folded.append(item)
    folded.reverse()
    return folded[0] if len(folded) == 1 else Chain(tuple(folded))


def _unfold(spec: CanvasSpec, out: list[CanvasSpec]) -> None:
    """Chains and chords as a flat list of steps and groups (a chord is its header followed by its body)."""
    if isinstance(spec, Chain):
        for item in spec.items:
            _unfold(item, out)
    elif isinstance(spec, Chord):
        out.append(spec.header)
        _unfold(spec.body, out)
    else:
        out.append(spec)


def first_step(spec: CanvasSpec) -> str:
    """The first step in reading order (a source of the canvas): names a trigger."""
    while not isinstance(spec, Step):
        spec = spec.header if isinstance(spec, Chord) else spec.items[0]
    return spec.step_id


def sources(spec: CanvasSpec) -> list[str]:
    """The steps that start when the canvas starts."""
    if isinstance(spec, Step):
        return [spec.step_id]
    if isinstance(spec, Group):
        return [s for item in spec.items for s in sources(item)]
    if isinstance(spec, Chord):
        return sources(spec.header)
    return sources(spec.items[0])


def step_ids(spec: CanvasSpec) -> Iterator[str]:
    """Every step in the canvas, each once, in reading order."""
    if isinstance(spec, Step):
        yield spec.step_id
    elif isinstance(spec, Chord):
        yield from step_ids(spec.header)
        yield from step_ids(spec.body)
    else:
        for item in spec.items:
            yield from step_ids(item)


def depth(spec: CanvasSpec) -> int:
    """Nesting depth (a single step is 0)."""
    if isinstance(spec, Step):
        return 0
    if isinstance(spec, Chord):
        return 1 + max(depth(spec.header), depth(spec.body))
    return 1 + max(depth(item) for item in spec.items)


def render(spec: CanvasSpec) -> str:
    """Compact text form: ``a -> [x | y] => j`` (``|`` parallel, ``->`` then, ``=>`` chord join)."""
    if isinstance(spec, Step):
        return spec.step_id
    if isinstance(spec, Group):
        return "[" + " | ".join(render(item) for item in spec.items) + "]"
    if isinstance(spec, Chord):
        return f"({render(spec.header)} => {render(spec.body)})"
    return "(" + " -> ".join(render(item) for item in spec.items) + ")"


# -- the stored form -------------------------------------------------------------------------------------
# What the run's trigger hash keeps for a multi-step trigger (``sig:<trigger>``): the shape and the step ids, no
# signatures. The runtime builds the Celery canvas from it and the steps' planned specs when the trigger fires, as
# it does for a one-step trigger, so a start neither encodes nor stores a signature for a step that may never run.
# A step is its id (a JSON string); a container is an object with one key naming its kind.


def spec_json(spec: CanvasSpec) -> str:
    """The spec as compact JSON: ``"a"``, ``{"group":[...]}``, ``{"chain":[...]}``, ``{"chord":[...],"body":...}``."""
    return json.dumps(_plain(spec), separators=(",", ":"))


def spec_from_json(text: str) -> CanvasSpec:
    """The spec ``spec_json`` wrote; ValueError when ``text`` is not one."""
    return spec_from_plain(json.loads(text))


def spec_from_plain(value: Any) -> CanvasSpec:
    """The spec of ``spec_json``'s parsed form; ValueError when ``value`` is not one."""
    if isinstance(value, str):
        return Step(value)
    if isinstance(value, dict) and len(value) <= 2:
        if isinstance(items := value.get("group"), list) and len(value) == 1 and len(items) > 1:
            return Group(tuple(map(spec_from_plain, items)))
        if isinstance(items := value.get("chain"), list) and len(value) == 1 and len(items) > 1:
            return Chain(tuple(map(spec_from_plain, items)))
        if isinstance(items := value.get("chord"), list) and "body" in value and len(items) > 1:
            return Chord(Group(tuple(map(spec_from_plain, items))), spec_from_plain(value["body"]))
    raise ValueError(f"not a stored canvas spec: {str(value)[:80]!r}")


def _plain(spec: CanvasSpec) -> Any:
    if isinstance(spec, Step):
        return spec.step_id
    if isinstance(spec, Group):
        return {"group": list(map(_plain, spec.items))}
    if isinstance(spec, Chord):
        return {"chord": list(map(_plain, spec.header.items)), "body": _plain(spec.body)}
    return {"chain": list(map(_plain, spec.items))}
