"""The bench report: one JSON document (every repetition, medians, ratios, targets, machine) and its table.

Why targets live here and are only *reported*: a figure that misses its target is a finding to act on, not
a failed command; the JSON says met / not met for each, and the table shows the same rows.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import celery
import kombu
import redis

from orchestrator import __version__
from orchestrator.bench.eventbus import EVENT_BATCH, EventBusFigure
from orchestrator.bench.micro import DECISION_CASES
from orchestrator.bench.stats import paired_ratios, spread
from orchestrator.runtime.redis_client import RedisClient

if TYPE_CHECKING:
    from orchestrator.bench.dagrate import DagRateFigure
    from orchestrator.bench.results import BenchResults, ShapeResult
    from orchestrator.bench.shapes import Timing

SCHEMA_VERSION = 1
SHAPE_RATIO_MAX = 1.15
COMPILE_MS_MAX = 100.0
DECISION_US_MAX = 5.0
AUDIT_APPEND_MS_MAX = 0.5
EVENTS_PER_S_MIN = 20_000.0
MEMORY_NOT_INCLUDED = (
    "Celery's own result key per step (expires after retention.celery_result_ttl_seconds) and the event and "
    "audit streams (capped by retention.events_max and retention.audit_max entries, not per run)"
)

TARGETS = {
    "shape_ratio_max": SHAPE_RATIO_MAX,
    "compile_ms_max": COMPILE_MS_MAX,
    "decision_us_max": DECISION_US_MAX,
    "audit_append_ms_max": AUDIT_APPEND_MS_MAX,
    "events_per_s_min": EVENTS_PER_S_MIN,
    "memory": "bounded: every finished run's keys carry a TTL and no run stays counted as active",
}


def load_average() -> list[float] | None:
    """1/5/15-minute load averages (None where the OS has none): a busy machine explains noisy figures."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info(client: RedisClient, load_at_start: list[float] | None) -> dict[str, Any]:
    server = client.info("server")
    return {
        "load_average_start": load_at_start,
        "load_average_end": load_average(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "redis_version": server.get("redis_version"),
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "redis_py": redis.__version__,
    }


def _shape_json(result: ShapeResult) -> dict[str, Any]:
    shape = result.shape
    bare = spread([shape.figure(t) for t in result.bare])
    orch = spread([shape.figure(t) for t in result.orchestrated])
    ratios = paired_ratios(bare.values, orch.values, throughput=shape.throughput)
    ratio = ratios.median

    def variant(values: Any, timings: list[Timing]) -> dict[str, Any]:
        return {
            **values.as_json(),
            "seconds": [round(t.seconds, 4) for t in timings],
            "submit_seconds": [round(t.submit_seconds, 4) for t in timings],
            "cpu_per_step": cpu_json(timings),
        }

    return {
        "label": shape.label,
        "size": shape.size,
        "unit": shape.unit,
        "better": "higher" if shape.throughput else "lower",
        "bare": variant(bare, result.bare),
        "orchestrated": variant(orch, result.orchestrated),
        "ratio": round(ratio, 3),
        "ratio_spread": ratios.as_json(digits=3),
        "ratio_definition": ("bare/orchestrated rate" if shape.throughput else "orchestrated/bare time")
        + ", median of the paired per-repetition ratios",
        "target": f"ratio <= {SHAPE_RATIO_MAX}",
        "met": ratio <= SHAPE_RATIO_MAX,
    }


def cpu_json(timings: list[Timing]) -> dict[str, Any]:
    """Median CPU milliseconds per step of each party over the repetitions (None where not measured)."""

    def median_of(name: str) -> float | None:
        values = [getattr(t.cpu, name) for t in timings if t.cpu is not None]
        present = [v for v in values if v is not None]
        return round(spread(present).median, 4) if present else None

    return {"unit": "ms CPU per step", **{party: median_of(f"{party}_ms") for party in ("client", "worker", "redis")}}


def dag_rate_json(figure: DagRateFigure) -> dict[str, Any]:
    from orchestrator.bench.dagrate import DAG_RATE_RATIO_MAX

    random_rates = figure.rates(figure.random)
    layered_rates = figure.rates(figure.layered)
    ratios = paired_ratios(layered_rates, random_rates, throughput=True)
    return {
        "steps": figure.steps,
        "unit": "steps/s",
        "random": {**spread(random_rates).as_json(), "cpu_per_step": cpu_json(list(figure.random))},
        "series_parallel": {**spread(layered_rates).as_json(), "cpu_per_step": cpu_json(list(figure.layered))},
        "ratio": round(ratios.median, 3),
        "ratio_spread": ratios.as_json(digits=3),
        "ratio_definition": "series-parallel rate / random-DAG rate, median of the paired per-repetition ratios",
        "target": f"ratio <= {DAG_RATE_RATIO_MAX}",
        "met": ratios.median <= DAG_RATE_RATIO_MAX,
    }


def _micro_json(results: BenchResults) -> dict[str, Any]:
    micro = results.micro
    if micro is None:
        return {}
    compiled = micro.compile
    total = spread(compiled.total_ms)
    decision = spread(micro.decision_us)
    audit = spread(micro.audit_ms)
    events = micro.events
    memory = micro.memory
    return {
        "compile": {
            "steps": compiled.steps,
            "unit": "ms",
            "plan_ms": spread(compiled.plan_ms).as_json(),
            "compile_ms": spread(compiled.compile_ms).as_json(),
            "total_ms": total.as_json(),
            "median_ms": round(total.median, 3),
            "triggers": compiled.triggers,
            "target": f"< {COMPILE_MS_MAX:g} ms",
            "met": total.median < COMPILE_MS_MAX,
        },
        "policy_decision": {
            "calls_per_round": results.config.decision_calls,
            "cases": [list(case) for case in DECISION_CASES],
            "unit": "us",
            "rounds_us": decision.as_json(digits=5),
            "median_us": round(decision.median, 5),
            "target": f"< {DECISION_US_MAX:g} us",
            "met": decision.median < DECISION_US_MAX,
        },
        "audit_append": {
            "appends_per_round": results.config.audit_appends,
            "unit": "ms",
            "rounds_ms": audit.as_json(digits=5),
            "median_ms": round(audit.median, 5),
            "target": f"< {AUDIT_APPEND_MS_MAX:g} ms",
            "met": audit.median < AUDIT_APPEND_MS_MAX,
        },
        "event_bus_single": _event_figure(micro.events_single, batch=1),
        "event_bus": {
            "batch": EVENT_BATCH,
            "events": events.events,
            "published_per_s": round(events.published_per_s, 1),
            "delivered_per_s": round(events.delivered_per_s, 1),
            "publish_seconds": round(events.publish_seconds, 4),
            "deliver_seconds": round(events.deliver_seconds, 4),
            "consumer": "EventBus.stream() (the SSE code path)",
            "target": f">= {EVENTS_PER_S_MIN:,.0f}/s (both)",
            "met": min(events.published_per_s, events.delivered_per_s) >= EVENTS_PER_S_MIN,
        },
        "memory": {
            "runs": memory.runs,
            "bytes_per_active_run": round(memory.bytes_per_active_run, 1),
            "bytes_per_finished_run": round(memory.bytes_per_finished_run, 1),
            "run_keys_with_ttl": memory.run_keys_with_ttl,
            "run_keys_without_ttl": memory.run_keys_without_ttl,
            "max_ttl_seconds": memory.max_ttl_seconds,
            "active_set_left": memory.active_set_left,
            "index_entries_added": memory.index_entries_added,
            "not_included": MEMORY_NOT_INCLUDED,
            "bounded": memory.bounded,
            "target": "bounded",
            "met": memory.bounded,
        },
    }


def _event_figure(figure: EventBusFigure, *, batch: int) -> dict[str, Any]:
    return {
        "batch": batch,
        "events": figure.events,
        "published_per_s": round(figure.published_per_s, 1),
        "delivered_per_s": round(figure.delivered_per_s, 1),
        "note": "one publish call per event: bound by one Redis round trip per call",
    }


def build_report(results: BenchResults) -> dict[str, Any]:
    shapes = {r.shape.key: _shape_json(r) for r in results.shapes}
    micro = _micro_json(results)
    dag_rate = dag_rate_json(results.dag_rates) if results.dag_rates is not None else None
    verdicts = [s["met"] for s in shapes.values()] + [m["met"] for m in micro.values() if "met" in m]
    if dag_rate is not None:
        verdicts.append(dag_rate["met"])
    return {
        "schema": SCHEMA_VERSION,
        "tool": "itom-orch bench",
        "version": __version__,
        "timestamp": results.started_at,
        "duration_seconds": round(results.duration_seconds, 2),
        "mode": results.config.mode,
        "config": results.config.as_json(),
        "machine": results.machine,
        "targets": TARGETS,
        "shapes": shapes,
        "micro": micro,
        "dag_rate": dag_rate,
        "redis_commands_per_step": {name: count.as_json() for name, count in results.commands.items()},
        "summary": {"met": sum(verdicts), "total": len(verdicts), "all_met": all(verdicts)},
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
