"""The CI relationship graph: who depends on a CI (impact) and what a CI depends on.

Every relationship type in the data reads "parent <verb> child" with the parent depending on the child
("app Runs on server", "server Depends on database", "server Connected by switch"). So the CIs impacted
when X fails are found walking *up* (child to parents), and X's own dependencies walking *down*.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class Reach:
    """A CI reached from the start: its distance and the shortest path (sys_ids, start first)."""

    sys_id: str
    distance: int
    path: tuple[str, ...]
    relations: tuple[str, ...]


class CIGraph:
    """Adjacency both ways over the relationships whose two ends are known CIs."""

    def __init__(self, cis: list[dict[str, Any]], relationships: list[dict[str, Any]]) -> None:
        self.cis = {ci["sys_id"]: ci for ci in cis}
        self.parents: dict[str, list[tuple[str, str]]] = {}
        self.children: dict[str, list[tuple[str, str]]] = {}
        for rel in relationships:
            parent, child = rel["parent"], rel["child"]
            if parent in self.cis and child in self.cis:
                self.parents.setdefault(child, []).append((parent, rel["type"]))
                self.children.setdefault(parent, []).append((child, rel["type"]))

    def walk(self, start: str, direction: Direction, depth: int) -> list[Reach]:
        """Breadth-first up to ``depth`` hops; each CI once, by its shortest path."""
        edges = self.parents if direction == "up" else self.children
        seen = {start}
        queue: deque[Reach] = deque([Reach(start, 0, (start,), ())])
        reached: list[Reach] = []
        while queue:
            node = queue.popleft()
            if node.distance >= depth:
                continue
            for neighbour, kind in sorted(edges.get(node.sys_id, []), key=lambda e: self.name(e[0])):
                if neighbour in seen:
                    continue
                seen.add(neighbour)
                step = Reach(neighbour, node.distance + 1, (*node.path, neighbour), (*node.relations, kind))
                reached.append(step)
                queue.append(step)
        return reached

    def name(self, sys_id: str) -> str:
        return str(self.cis.get(sys_id, {}).get("name", sys_id))

    def edges_within(self, nodes: set[str]) -> list[tuple[str, str, str]]:
        """``(parent, child, type)`` for every relationship between two of ``nodes``."""
        return sorted(
            (parent, child, kind) for parent in nodes for child, kind in self.children.get(parent, []) if child in nodes
        )
