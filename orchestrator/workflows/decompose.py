"""Exact series-parallel decomposition of a DAG into one canvas plus gated triggers.

The promise: every step starts as soon as ITS OWN dependencies are done, never later. Celery canvases can
only express series-parallel (SP) order, so the DAG is split into a main canvas (started with the run) and
*triggers*: canvases that the runtime applies once every step they wait for is done.

Strategy (on a vertex set X whose outside dependencies are all done when X starts; positions are the
plan's topological order, edges are de-duplicated):

1. One step: ``Step``.
2. X falls apart into weakly connected components: ``Group`` of each component.
3. Connected: find ALL series cuts at once. Splitting a topological order of X after position i (prefix
   P, rest Q) is a valid cut -- every step of Q depends on every step of P -- iff every sink of P has a
   direct edge to every source of Q (a path from a P-sink to a Q-source cannot pass through anything
   else). Counting, per position, P-sinks ``A``, Q-sources ``B`` and edges between them ``C`` with
   difference arrays gives every cut in O(|X| + edges): cut iff ``C == A * B``. (Every source must precede
   a cut and every sink follow it, so when the last source comes after the first sink -- typical of
   random graphs -- the count is skipped.) Two or more factors: ``Chain`` of each factor (a disconnected
   factor becomes a group; chain + group fold into chords).
4. Connected with no cut: X is not SP (a connected SP set always has a series cut). Fall back to regions:
   walking X in order, a step joins the region of its in-X dependencies when they all share one region,
   otherwise it heads a new region. Regions of X's sources run in the main canvas (a group); each other
   region becomes a trigger that waits for its head's dependencies. Every region has a single source, so
   decomposing it again makes progress (and may find SP structure inside).

Where a piece is *open* (some of its steps live in triggers, so its canvas may end before they do),
nothing may be chained after it: the rest of that chain is detached into a trigger that waits for the
dependencies of the rest's first steps. This keeps exactness: all first steps of a piece start at the
same exact moment, which is the moment their dependencies are all done.

Exactness of each rule: a chained factor's first steps depend on every step before the cut, so "after
the previous factor" is "after my own dependencies"; a trigger waits for exactly its first steps'
dependencies. Every step lands in exactly one canvas.

Costs stay near linear: each level is linear in its set; nesting is capped at ``MAX_DEPTH`` (deeper
pieces are detached into their own trigger canvas, which keeps Celery messages shallow); when total work
passes a budget proportional to the graph, remaining sets are compiled "flat" (sources in the canvas,
each other step a trigger on its own dependencies) -- still exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from orchestrator.workflows.spec import CanvasSpec, Step, parallel, sequence, sources

MAX_DEPTH = 40  # nesting levels of one canvas (Celery messages and JSON stay shallow)
WORK_PER_ELEMENT = 40  # work budget per step and edge before the linear "flat" fallback
WORK_SLACK = 1000


@dataclass(frozen=True, slots=True)
class Piece:
    """A compiled vertex set: its canvas (None if all of it was detached) and whether it is closed."""

    spec: CanvasSpec | None
    closed: bool


@dataclass
class Decomposition:
    """The main canvas and the triggers ``(waits_for, canvas)`` with step positions as ints."""

    main: CanvasSpec | None
    triggers: list[tuple[tuple[int, ...], CanvasSpec]] = field(default_factory=list)


def decompose(names: Sequence[str], deps: Sequence[Sequence[int]]) -> Decomposition:
    """Decompose the DAG given in topological order (``deps[i]`` all < i, no duplicates)."""
    return _Decomposer(names, deps).run()


class _Decomposer:
    """One decomposition run; marks and scratch arrays are reused across recursive calls."""

    def __init__(self, names: Sequence[str], deps: Sequence[Sequence[int]]) -> None:
        n = len(names)
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}
        self.deps = deps
        self.succs: list[list[int]] = [[] for _ in range(n)]
        edges = 0
        for v, ds in enumerate(deps):
            edges += len(ds)
            for d in ds:
                self.succs[d].append(v)
        self.mark = [0] * n
        self.pos = [0] * n
        self.origin = [0] * n
        self.label = 0
        self.work = 0
        self.budget = WORK_PER_ELEMENT * (n + edges) + WORK_SLACK
        self.pending: list[tuple[tuple[int, ...], list[int], bool]] = []  # waits, members, headed
        self.result = Decomposition(main=None)

    def run(self) -> Decomposition:
        n = len(self.names)
        if n:
            self.result.main = self.piece(list(range(n)), 0).spec
        while self.pending:
            waits, members, headed = self.pending.pop()
            spec = self.piece(members, 0, headed=headed).spec
            assert spec is not None, "a trigger canvas always holds its own first steps"
            self.result.triggers.append((waits, spec))
        return self.result

    # -- the recursion -------------------------------------------------------------------------------
    def piece(
        self, xs: list[int], depth: int, *, headed: bool = False, connected: bool = False, uncut: bool = False
    ) -> Piece:
        """Compile the set ``xs``.

        Hints from the caller save passes: ``headed`` (``xs[0]`` is the only source, so a cut follows it),
        ``connected`` (one component), ``uncut`` (no series cut inside, if connected).
        """
        size = len(xs)
        if size == 1:
            return Piece(Step(self.names[xs[0]]), True)
        if size == 2:
            pair = [Step(self.names[v]) for v in xs]
            joined = xs[0] in self.deps[xs[1]]
            return Piece(sequence(pair) if joined else parallel(pair), True)
        if depth >= MAX_DEPTH:
            return self.detach(xs)
        if self.work > self.budget:
            return self.flat(xs)
        if headed:
            return self.chain_pieces([xs[:1], xs[1:]], depth, factors_uncut=False)
        if not connected:
            components = self.components(xs)
            if len(components) > 1:
                return self.parallel_pieces([self.piece(c, depth + 1, connected=True) for c in components])
        if not uncut:
            factors = self.series_factors(xs)
            if len(factors) > 1:
                return self.chain_pieces(factors, depth)
        return self.regions(xs, depth)

    def parallel_pieces(self, pieces: list[Piece]) -> Piece:
        specs = [p.spec for p in pieces if p.spec is not None]
        return Piece(parallel(specs) if specs else None, all(p.closed for p in pieces))

    def chain_pieces(self, factors: list[list[int]], depth: int, *, factors_uncut: bool = True) -> Piece:
        """Factors in order; after an open piece the rest of the chain becomes a trigger."""
        segments: list[list[Piece]] = [[]]
        groups_in_a_row = 0
        for factor in factors:
            piece = self.piece(factor, depth + 2 + groups_in_a_row, uncut=factors_uncut)
            groups_in_a_row = groups_in_a_row + 1 if len(factor) > 1 else 0
            segments[-1].append(piece)
            if not piece.closed:
                segments.append([])
        head = [p.spec for p in segments[0] if p.spec is not None]
        for segment in segments[1:]:
            specs = [p.spec for p in segment if p.spec is not None]
            if specs:
                self.add_trigger(self.waits_of(specs[0]), sequence(specs))
        return Piece(sequence(head) if head else None, len(segments) == 1)

    def regions(self, xs: list[int], depth: int) -> Piece:
        """Not series-parallel: regions of the sources run now, every other region is a trigger."""
        label = self.tag(xs)
        origin, mark, deps = self.origin, self.mark, self.deps
        members: dict[int, list[int]] = {}
        roots: list[int] = []
        heads: list[int] = []
        for v in xs:
            first, joins = -1, False
            for d in deps[v]:
                if mark[d] == label:
                    if first < 0:
                        first = origin[d]
                    elif origin[d] != first:
                        joins = True
                        break
            self.work += len(deps[v])
            if first < 0:
                roots.append(v)
                first = v
            elif joins:
                heads.append(v)
                first = v
            origin[v] = first
            region = members.get(first)
            if region is None:
                members[first] = [v]
            else:
                region.append(v)
        for head in heads:
            self.pending.append((tuple(sorted(deps[head])), members[head], True))
        main = self.parallel_pieces([self.piece(members[r], depth + 1, headed=True) for r in roots])
        return Piece(main.spec, main.closed and not heads)

    def detach(self, xs: list[int]) -> Piece:
        """Too deep: compile ``xs`` as its own trigger canvas (it starts when its sources' deps are done)."""
        label = self.tag(xs)
        waits = self.union_deps(v for v in xs if not any(self.mark[d] == label for d in self.deps[v]))
        if not waits:  # only roots could have no dependencies; they never sit this deep
            return self.piece(xs, 0)
        self.pending.append((waits, xs, False))
        return Piece(None, False)

    def flat(self, xs: list[int]) -> Piece:
        """Over budget: sources run in the canvas, every other step is its own trigger. Exact, linear."""
        label = self.tag(xs)
        first: list[CanvasSpec] = []
        for v in xs:
            if any(self.mark[d] == label for d in self.deps[v]):
                self.add_trigger(tuple(self.deps[v]), Step(self.names[v]))
            else:
                first.append(Step(self.names[v]))
        return Piece(parallel(first), len(first) == len(xs))

    # -- graph helpers -------------------------------------------------------------------------------
    def tag(self, xs: list[int]) -> int:
        self.label += 1
        label, mark = self.label, self.mark
        for v in xs:
            mark[v] = label
        self.work += len(xs)
        return label

    def components(self, xs: list[int]) -> list[list[int]]:
        """Weakly connected components of the set, each in topological order."""
        label = self.tag(xs)
        seen = self.tag([])  # a fresh label for "visited"
        mark, deps, succs, origin = self.mark, self.deps, self.succs, self.origin
        count = work = 0
        for v in xs:
            if mark[v] != label:
                continue
            mark[v] = seen
            origin[v] = count
            stack = [v]
            while stack:
                u = stack.pop()
                for w in deps[u]:
                    if mark[w] == label:
                        mark[w] = seen
                        origin[w] = count
                        stack.append(w)
                for w in succs[u]:
                    if mark[w] == label:
                        mark[w] = seen
                        origin[w] = count
                        stack.append(w)
                work += len(deps[u]) + len(succs[u])
            count += 1
        self.work += work
        if count == 1:
            return [xs]
        parts: list[list[int]] = [[] for _ in range(count)]
        for v in xs:
            parts[origin[v]].append(v)
        return parts

    def series_factors(self, xs: list[int]) -> list[list[int]]:
        """Split a connected set at every series cut (see the module docstring)."""
        label = self.tag(xs)
        mark, pos, deps, succs = self.mark, self.pos, self.deps, self.succs
        size = len(xs)
        if self.last_source(xs, label) >= self.first_sink(xs, label):
            return [xs]  # every source must precede a cut and every sink follow it: no room for one
        for i, v in enumerate(xs):
            pos[v] = i
        sinks = [0] * (size + 1)
        starts = [0] * (size + 1)
        edges = [0] * (size + 1)
        min_succ = [size] * size
        for i, v in enumerate(xs):
            for s in succs[v]:
                if mark[s] == label and pos[s] < min_succ[i]:
                    min_succ[i] = pos[s]
            sinks[i] += 1
            sinks[min_succ[i]] -= 1
        for i, v in enumerate(xs):
            inside = [pos[d] for d in deps[v] if mark[d] == label]
            self.work += len(deps[v]) + len(succs[v])
            last_dep = max(inside, default=0)
            starts[last_dep] += 1
            starts[i] -= 1
            for p in inside:
                if last_dep < min_succ[p]:
                    edges[last_dep] += 1
                    edges[min_succ[p]] -= 1
        factors: list[list[int]] = [[]]
        a = b = c = 0
        for i, v in enumerate(xs):
            factors[-1].append(v)
            a, b, c = a + sinks[i], b + starts[i], c + edges[i]
            if i < size - 1 and c == a * b:
                factors.append([])
        return factors

    def last_source(self, xs: list[int], label: int) -> int:
        """Position of the last step of ``xs`` with no dependency inside ``xs``."""
        mark, deps = self.mark, self.deps
        for i in range(len(xs) - 1, -1, -1):
            self.work += 1
            if not any(mark[d] == label for d in deps[xs[i]]):
                return i
        return 0

    def first_sink(self, xs: list[int], label: int) -> int:
        """Position of the first step of ``xs`` with no dependent inside ``xs``."""
        mark, succs = self.mark, self.succs
        for i, v in enumerate(xs):
            self.work += 1
            if not any(mark[s] == label for s in succs[v]):
                return i
        return len(xs) - 1

    def union_deps(self, firsts: Iterable[int]) -> tuple[int, ...]:
        return tuple(sorted({d for v in firsts for d in self.deps[v]}))

    def waits_of(self, spec: CanvasSpec) -> tuple[int, ...]:
        """What a detached canvas waits for: the dependencies of its first steps."""
        return self.union_deps(self.index[s] for s in sources(spec))

    def add_trigger(self, waits: tuple[int, ...], spec: CanvasSpec) -> None:
        self.result.triggers.append((tuple(sorted(set(waits))), spec))
