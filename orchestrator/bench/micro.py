"""Micro figures of the pure layers and of one audit append: compile, policy decision, audit.

Why these: they are the per-request costs every start pays before anything is enqueued (plan + compile,
the policy gate) and the synchronous audit write of dispatch and workers. Each is a median of rounds.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass

from orchestrator.models.workflow import WorkflowDefinition, WorkflowStep
from orchestrator.runtime.redis_client import RedisClient
from orchestrator.state.audit import measure_append
from orchestrator.workflows.compiler import compile_plan
from orchestrator.workflows.dag import plan
from policies import decide

# (role, action, domain, access): allowed and denied cases, so neither fast path alone is measured.
DECISION_CASES = (
    ("cmdb-agent", "cmdb.ping", "cmdb", "read"),
    ("cmdb-agent", "cmdb.update", "cmdb", "write"),
    ("discovery-agent", "discovery.scan", "discovery", "execute"),
    ("itom-auditor", "csa.run_remediation", "csa", "execute"),
    ("itom-auditor", "cmdb.update", "cmdb", "write"),
)
DECISION_ROUNDS = 5


@dataclass(frozen=True)
class CompileFigure:
    steps: int
    plan_ms: tuple[float, ...]
    compile_ms: tuple[float, ...]
    triggers: int

    @property
    def total_ms(self) -> tuple[float, ...]:
        return tuple(p + c for p, c in zip(self.plan_ms, self.compile_ms, strict=True))


def random_dag(steps: int, seed: int) -> WorkflowDefinition:
    """A random DAG of ``cmdb.ping`` steps (0-4 dependencies each on earlier steps), listed shuffled."""
    rng = random.Random(seed)
    spec = []
    for i in range(steps):
        deps = rng.sample(range(i), min(i, rng.choice([0, 1, 2, 2, 3, 4])))
        spec.append(WorkflowStep(step_id=f"s{i}", action="cmdb.ping", depends_on=[f"s{d}" for d in deps]))
    rng.shuffle(spec)
    return WorkflowDefinition(name=f"bench random dag {steps}", steps=spec)


def measure_compile(steps: int, rounds: int) -> CompileFigure:
    """Validate + plan, then compile, a fresh random DAG per round (building the definition is not timed).

    Compile builds everything a start enqueues or stores: the main canvas in Celery's dict form and the triggers
    (one-step triggers are built when they fire, on the worker). The garbage collector runs as it would."""
    plan_ms: list[float] = []
    compile_ms: list[float] = []
    triggers = 0
    for round_no in range(rounds):
        definition = random_dag(steps, seed=7 + round_no)
        started = time.perf_counter()
        planned = plan(definition, {})
        planned_at = time.perf_counter()
        compiled = compile_plan(planned, f"bench-compile-{round_no}")
        done = time.perf_counter()
        plan_ms.append((planned_at - started) * 1000)
        compile_ms.append((done - planned_at) * 1000)
        triggers = len(compiled.triggers)
        del planned, compiled  # freed here, not inside the next round's timing
    return CompileFigure(steps, tuple(plan_ms), tuple(compile_ms), triggers)


def measure_decision(calls: int) -> tuple[float, ...]:
    """Microseconds per ``policies.decide`` call on the default table, per round."""
    cases = DECISION_CASES * max(1, calls // len(DECISION_CASES))
    for case in DECISION_CASES:
        decide(*case)
    rounds: list[float] = []
    for _ in range(DECISION_ROUNDS):
        started = time.perf_counter()
        for role, action, domain, access in cases:
            decide(role, action, domain, access)
        rounds.append((time.perf_counter() - started) * 1e6 / len(cases))
    return tuple(rounds)


def measure_audit(client: RedisClient, appends: int, rounds: int = 3) -> tuple[float, ...]:
    """Milliseconds per hash-chained audit append on the bench Redis (``audit.measure_append``), per round."""
    return tuple(measure_append(client, appends) * 1000 for _ in range(rounds))


def median(values: tuple[float, ...]) -> float:
    return float(statistics.median(values))
