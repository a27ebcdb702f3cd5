"""One bench run, start to finish: environment, warm-up, shapes (bare then orchestrated, repeated), micro
figures, the command profile, and the report.

Why this order: the timed shapes run first on a quiet Redis; the micro figures that fill Redis (events,
memory) and the MONITOR profile (which slows Redis) come after every timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import redis

from orchestrator.bench import orchestrated as orch_defs
from orchestrator.bench.config import BenchConfig
from orchestrator.bench.cpu import CpuMeter
from orchestrator.bench.dagrate import measure_dag_rates
from orchestrator.bench.eventbus import EVENT_BATCH, measure_event_bus
from orchestrator.bench.harness import BenchEnv, bench_environment, release_result_subscriptions
from orchestrator.bench.memory import measure_memory
from orchestrator.bench.micro import measure_audit, measure_compile, measure_decision
from orchestrator.bench.monitor import CommandCount, count_commands
from orchestrator.bench.report import build_report, load_average, machine_info
from orchestrator.bench.results import BenchResults, MicroResults, ShapeResult
from orchestrator.bench.shapes import Shape, ShapeRunner, Timing
from orchestrator.models.common import iso_now

Progress = Callable[[str], None]


def run_bench(config: BenchConfig, progress: Progress = lambda _: None) -> dict[str, Any]:
    """Run the whole bench and return the report (see ``report.build_report`` for its layout)."""
    started_at, started, load_at_start = iso_now(), time.perf_counter(), load_average()
    progress("starting a private Redis and one cmdb-agent worker (concurrency 2)")
    with bench_environment(config) as env:
        runner = ShapeRunner(env.orch, config, env.principal)
        meter = CpuMeter(env.client, env.worker_pid)
        _warm_up(env, runner)
        shapes = [
            _measure_shape(env, shape, meter, progress) for shape in runner.shapes() if config.measures(shape.key)
        ]
        dag_rates = None
        if config.dag_steps and config.measures("dag"):
            progress(f"gated joins: random {config.dag_steps:,}-step DAG vs series-parallel, x{config.dag_repeat}")
            dag_rates = measure_dag_rates(
                runner, config.dag_steps, config.dag_repeat, progress, lambda run, n: _timed(env, meter, run, n)
            )
        micro, commands = None, {}
        if config.complete:  # --shape: only the named figures
            micro = _measure_micro(env, progress)
            progress(f"counting Redis commands per step on a {config.monitor_chain_steps}-step chain (MONITOR)")
            commands = _count_commands(env)
        machine = machine_info(env.client, load_at_start)
    results = BenchResults(
        config, started_at, time.perf_counter() - started, machine, shapes, micro, commands, dag_rates
    )
    return build_report(results)


def _warm_up(env: BenchEnv, runner: ShapeRunner) -> None:
    """Untimed: both worker processes import, connect and load scripts; the client opens its connections."""
    runner.bare_batch(lambda: [runner.bare.chain(3), runner.bare.fan_in(4)], "warm-up tasks")
    runner.orchestrated_batch(orch_defs.fan_in_definition(4), 2)
    runner.orchestrated_batch(orch_defs.chain_definition(3), 1)
    release_result_subscriptions(env.app)


def _timed(env: BenchEnv, meter: CpuMeter, run: Callable[[], Timing], steps: int) -> Timing:
    """One repetition with the CPU it cost each party per step; result subscriptions released after it."""
    timing, cpu = meter.measure(run, steps)
    release_result_subscriptions(env.app)
    return replace(timing, cpu=cpu)


def _measure_shape(env: BenchEnv, shape: Shape, meter: CpuMeter, progress: Progress) -> ShapeResult:
    result = ShapeResult(shape)
    for rep in range(env.config.repeat):
        result.bare.append(_timed(env, meter, shape.run_bare, shape.steps))
        result.orchestrated.append(_timed(env, meter, shape.run_orchestrated, shape.steps))
        bare, orch = shape.figure(result.bare[-1]), shape.figure(result.orchestrated[-1])
        progress(
            f"{shape.label} {rep + 1}/{env.config.repeat}: bare {bare:,.2f} {shape.unit}, "
            f"orchestrated {orch:,.2f} {shape.unit}"
        )
    return result


def _measure_micro(env: BenchEnv, progress: Progress) -> MicroResults:
    c = env.config
    progress(f"micro: plan + compile a random {c.compile_steps:,}-step DAG x{c.compile_repeat}")
    compiled = measure_compile(c.compile_steps, c.compile_repeat)
    progress(f"micro: {c.decision_calls:,} policy decisions, {c.audit_appends:,} audit appends")
    decision = measure_decision(c.decision_calls)
    audit = measure_audit(env.client, c.audit_appends)
    progress(f"micro: event bus, {c.events:,} events with a live stream consumer (one per call, then batched)")
    events_single = measure_event_bus(env.orch.events, c.events)
    events = measure_event_bus(env.orch.events, c.events, batch=EVENT_BATCH)
    progress(f"micro: memory of {c.memory_runs:,} runs")
    memory = measure_memory(env.client, env.orch.runs, c.memory_runs)
    return MicroResults(compiled, decision, audit, events, events_single, memory)


def _count_commands(env: BenchEnv) -> dict[str, CommandCount]:
    steps = env.config.monitor_chain_steps
    # One connection for every poll (pipelines included), so its commands can be told apart and left out.
    pool = redis.BlockingConnectionPool.from_url(env.redis_url, decode_responses=True, max_connections=1)
    poller = redis.Redis(connection_pool=pool)
    try:
        address = str(poller.client_info()["addr"])
        runner = ShapeRunner(env.orch, env.config, env.principal, poller=poller)
        definition = orch_defs.chain_definition(steps)
        bare = count_commands(
            env.client,
            steps,
            lambda: runner.bare_batch(lambda: [runner.bare.chain(steps)], "chain tasks"),
            exclude_addr=address,
        )
        release_result_subscriptions(env.app)
        orchestrated = count_commands(
            env.client, steps, lambda: runner.orchestrated_batch(definition, 1), exclude_addr=address
        )
        release_result_subscriptions(env.app)
    finally:
        poller.close()
        pool.disconnect()
    return {"bare": bare, "orchestrated": orchestrated}
