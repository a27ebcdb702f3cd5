"""Exact series-parallel decomposition of a DAG into one canvas plus gated triggers.

The promise: every step starts as soon as ITS OWN dependencies are done, never later. Celery canvases can
only express series-parallel (SP) order, so the DAG is split into a main canvas (started with the run) and
*triggers*: canvases that the runtime applies once every step they wait for is done.

Strategy (on a vertex set X whose outside dependencies are all done when X starts; positions are the
plan's topological order, edges are de-duplicated):

1. One step: ``Step``.
2. X falls apart into weakly connected components (union-find): ``Group`` of each component.
3. Connected: find ALL series cuts at once. Splitting a topological order of X after position i (prefix
   P, rest Q) is a valid cut -- every step of Q depends on every step of P -- iff every sink of P has a
   direct edge to every source of Q (a path from a P-sink to a Q-source cannot pass through anything
   else). Counting, per position, P-sinks ``A``, Q-sources ``B`` and edges between them ``C`` with
   difference arrays gives every cut in O(|X| + edges): cut iff ``C == A * B``. (Every source must precede
   a cut and every sink follow it, so when the last source comes after the first sink -- typical of
   random graphs -- two short scans settle it; otherwise only positions before the first sink are
   counted.) Two or more factors: ``Chain`` of each factor (a disconnected factor becomes a group; chain +
   group fold into chords).
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
each other step a trigger on its own dependencies) -- still exact. Work is counted as the size of what a
pass is linear in (steps and edges of its set), even where a pass stops early or skips a search, so the
budget means the same whatever the passes' constant factors.

Steps that *end their canvas* (``ends``: steps under the ``skip`` failure policy) are never followed by anything
in a canvas. Their task raises when the step fails (so Celery and Flower say FAILURE), and Celery stops a chain
and errors a chord when a task raises, while under ``skip`` their dependents must still run. So such a step is
compiled as an open piece: whatever depends on it is detached into a trigger, which the finish script releases
when the step is done, failed or not. Exactness is unchanged (a trigger waits for exactly its first steps'
dependencies); only the edges out of those steps go through the runtime instead of Celery's own links.

Every vertex set handled here lists its steps in plan order (the top set is the plan; components,
factors and regions keep that order), so a step's in-set dependencies come before it and its first
in-set dependent is the first one found in its (ascending) ``succs`` list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from orchestrator.workflows.spec import CanvasSpec, Step, parallel, sequence, sources

MAX_DEPTH = 40  # nesting levels of one canvas (Celery messages and JSON stay shallow)
WORK_PER_ELEMENT = 40  # work budget per step and edge before the linear "flat" fallback
WORK_SLACK = 1000
_step = tuple.__new__  # ``Step(name)`` without the named tuple's keyword-handling constructor (10,000 a plan)


@dataclass(frozen=True, slots=True)
class Piece:
    """A compiled vertex set: its canvas (None if all of it was detached) and whether it is closed.

    Closed: the canvas ends exactly when all of the set's steps have ended, and never stops early (it holds
    no step that ends its canvas), so something may be chained after it.
    """

    spec: CanvasSpec | None
    closed: bool


@dataclass
class Decomposition:
    """The main canvas and the triggers ``(waits_for, canvas)`` with step positions as ints."""

    main: CanvasSpec | None
    triggers: list[tuple[tuple[int, ...], CanvasSpec]] = field(default_factory=list)


def decompose(names: Sequence[str], deps: Sequence[Sequence[int]], ends: Sequence[bool] | None = None) -> Decomposition:
    """Decompose the DAG given in topological order (``deps[i]`` all < i, no duplicates); ``ends[i]``: nothing
    may follow step ``i`` in a canvas (its dependents start from triggers)."""
    return _Decomposer(names, deps, ends).run()


class _Decomposer:
    """One decomposition run; marks and scratch arrays are reused across recursive calls."""

    def __init__(self, names: Sequence[str], deps: Sequence[Sequence[int]], ends: Sequence[bool] | None = None) -> None:
        n = len(names)
        self.names = names
        self.deps = deps
        self.ends = ends if ends is not None else [False] * n
        self.succs: list[list[int]] = [[] for _ in range(n)]  # each ascending: built in plan order
        for v, ds in enumerate(deps):
            for d in ds:
                self.succs[d].append(v)
        edges = sum(map(len, deps))
        self.mark = [0] * n
        self.pos = [0] * n
        self.origin = [0] * n
        self.label = 0
        self.work = 0
        self.budget = WORK_PER_ELEMENT * (n + edges) + WORK_SLACK
        self.pending: list[tuple[tuple[int, ...], list[int], bool]] = []  # waits, members, headed
        self.index: dict[str, int] | None = None  # step name -> position, built when first needed (rarely)
        self.result = Decomposition(main=None)

    def run(self) -> Decomposition:
        n = len(self.names)
        if n:
            self.result.main = self.piece(list(range(n)), 0).spec
        names, pending, triggers = self.names, self.pending, self.result.triggers
        while pending:
            waits, members, headed = pending.pop()
            if len(members) == 1:  # most regions of a random DAG: no recursion needed
                triggers.append((waits, _step(Step, (names[members[0]],))))
                continue
            spec = self.piece(members, 0, headed=headed).spec
            assert spec is not None, "a trigger canvas always holds its own first steps"
            triggers.append((waits, spec))
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
        ends = self.ends
        if size == 1:
            return Piece(_step(Step, (self.names[xs[0]],)), not ends[xs[0]])
        if size == 2:
            first, second = xs
            pair = [_step(Step, (self.names[v],)) for v in xs]
            if first not in self.deps[second]:
                return Piece(parallel(pair), not (ends[first] or ends[second]))
            if ends[first]:  # the second step waits for the first through a trigger
                self.add_trigger(tuple(self.deps[second]), pair[1])
                return Piece(pair[0], False)
            return Piece(sequence(pair), not ends[second])
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
        self.work += sum(map(len, map(deps.__getitem__, xs)))
        for v in xs:
            first, joins = -1, False
            for d in deps[v]:
                if mark[d] == label:
                    if first < 0:
                        first = origin[d]
                    elif origin[d] != first:
                        joins = True
                        break
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
        closed = True
        for v in xs:
            if any(self.mark[d] == label for d in self.deps[v]):
                self.add_trigger(tuple(self.deps[v]), Step(self.names[v]))
                closed = False
            else:
                first.append(Step(self.names[v]))
                closed = closed and not self.ends[v]
        return Piece(parallel(first), closed)

    # -- graph helpers -------------------------------------------------------------------------------
    def tag(self, xs: list[int]) -> int:
        self.label += 1
        label, mark = self.label, self.mark
        for v in xs:
            mark[v] = label
        self.work += len(xs)
        return label

    def components(self, xs: list[int]) -> list[list[int]]:
        """Weakly connected components of the set, each in topological order, ordered by first step.

        Union-find over each step's dependencies (every edge seen once, from its later end; a root is
        always the first step of its component). That is a third of the cost of a search that walks every
        edge from both ends.
        """
        label = self.tag(xs)
        mark, deps, parent = self.mark, self.deps, self.origin
        self.work += sum(map(len, map(deps.__getitem__, xs))) + sum(map(len, map(self.succs.__getitem__, xs)))
        count = 0
        for v in xs:
            root = -1
            for d in deps[v]:
                if mark[d] == label:
                    r = parent[d]
                    while parent[r] != r:
                        parent[r] = r = parent[parent[r]]  # path halving
                    if root < 0:
                        root = r
                    elif r != root:
                        if r < root:
                            r, root = root, r
                        parent[r] = root
                        count -= 1
            if root < 0:
                root = v
                count += 1
            parent[v] = root
        if count == 1:
            return [xs]
        parts: dict[int, list[int]] = {}
        for v in xs:
            r = parent[v]
            while parent[r] != r:
                parent[r] = r = parent[parent[r]]
            part = parts.get(r)
            if part is None:
                parts[r] = [v]
            else:
                part.append(v)
        return list(parts.values())

    def series_factors(self, xs: list[int]) -> list[list[int]]:
        """Split a connected set at every series cut (see the module docstring).

        Every source must precede a cut and every sink follow it, so cuts can only sit between the last
        source and the first sink. Random graphs put a source after the first sink (no cut, found by two
        short scans); otherwise the counts are only needed up to the first sink, and only steps whose
        in-set dependencies all come before it can be sources after a cut there.
        """
        label = self.tag(xs)
        mark, pos = self.mark, self.pos
        for i, v in enumerate(xs):
            pos[v] = i
        first_sink, min_succ = self.first_sink(xs, label)
        found = self.last_dependencies(xs, label, first_sink)
        if found is None:
            return [xs]
        last_dep, last_source = found
        deps = self.deps
        self.work += sum(map(len, map(deps.__getitem__, xs))) + sum(map(len, map(self.succs.__getitem__, xs)))
        # Per position i, with P = xs[: i + 1]: A = sinks of P, B = sources of the rest, C = edges between them.
        sinks = [0] * (first_sink + 1)
        starts = [0] * (first_sink + 1)
        edges = [0] * (first_sink + 1)
        for i in range(first_sink):
            sinks[i] += 1
            sinks[min(min_succ[i], first_sink)] -= 1
        for i in range(1, len(xs)):
            last = last_dep[i]
            if last < 0 or last >= first_sink:
                continue  # a source of X only counts before the last source, a late one only after the first sink
            starts[last] += 1
            starts[min(i, first_sink)] -= 1
            for d in deps[xs[i]]:
                if mark[d] == label:
                    after = min_succ[pos[d]]
                    if last < after:
                        edges[last] += 1
                        edges[min(after, first_sink)] -= 1
        factors: list[list[int]] = []
        begin = a = b = c = 0
        for i in range(first_sink):
            a, b, c = a + sinks[i], b + starts[i], c + edges[i]
            if i >= last_source and c == a * b:
                factors.append(xs[begin : i + 1])
                begin = i + 1
        factors.append(xs[begin:])
        return factors

    def first_sink(self, xs: list[int], label: int) -> tuple[int, list[int]]:
        """Position of the first step of ``xs`` with no dependent inside ``xs``, and for each step before it
        the position of its first dependent inside ``xs`` (``succs`` lists ascend, so the first found)."""
        mark, pos, succs = self.mark, self.pos, self.succs
        min_succ: list[int] = []
        for v in xs:
            for s in succs[v]:
                if mark[s] == label:
                    min_succ.append(pos[s])
                    break
            else:
                break
        self.work += len(min_succ) + 1
        return len(min_succ), min_succ  # the loop always breaks: xs[-1] has no dependent inside xs

    def last_dependencies(self, xs: list[int], label: int, first_sink: int) -> tuple[list[int], int] | None:
        """Per position, the last position of a dependency inside ``xs`` (-1 for a source), and the position of
        the last source; None as soon as a source turns up at or after ``first_sink`` (no cut then)."""
        mark, pos, deps = self.mark, self.pos, self.deps
        size = len(xs)
        last_dep = [-1] * size
        last_source = -1
        for i in range(size - 1, -1, -1):
            last = -1
            for d in deps[xs[i]]:
                if mark[d] == label and pos[d] > last:
                    last = pos[d]
            if last < 0 and last_source < 0:
                last_source = i
                self.work += size - i
                if i >= first_sink:
                    return None
            last_dep[i] = last
        return last_dep, last_source

    def union_deps(self, firsts: Iterable[int]) -> tuple[int, ...]:
        return tuple(sorted({d for v in firsts for d in self.deps[v]}))

    def waits_of(self, spec: CanvasSpec) -> tuple[int, ...]:
        """What a detached canvas waits for: the dependencies of its first steps."""
        if self.index is None:
            self.index = {name: i for i, name in enumerate(self.names)}
        index = self.index
        return self.union_deps(index[s] for s in sources(spec))

    def add_trigger(self, waits: tuple[int, ...], spec: CanvasSpec) -> None:
        self.result.triggers.append((tuple(sorted(set(waits))), spec))
