"""The terminal view of a bench report: one rich table built from the same JSON document that is written.

Why from the JSON: what the operator reads and what the file holds can never disagree.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from orchestrator.bench.report import SHAPE_RATIO_MAX


def _met(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"


def _ratio(figure: dict[str, Any]) -> str:
    """The median paired ratio and the range of the per-repetition ratios."""
    spread = figure.get("ratio_spread") or {}
    if spread and spread["min"] != spread["max"]:
        return f"{figure['ratio']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f})"
    return f"{figure['ratio']:.2f}x"


def render_table(report: dict[str, Any]) -> Table:
    """Shape, bare median, orchestrated median, ratio, target, met? (micro figures fill the orchestrated column)."""
    only = report["config"].get("only") or []
    scope = f", only {', '.join(only)}" if only else ""
    table = Table(title=f"itom-orch bench ({report['mode']}, {report['config']['repeat']} repetition(s){scope})")
    for column in ("figure", "bare (median)", "orchestrated (median)", "ratio (min-max)", "target", "met?"):
        table.add_column(column, justify="left" if column in ("figure", "target") else "right")
    for shape in report["shapes"].values():
        table.add_row(
            f"{shape['label']} ({shape['unit']})",
            _num(shape["bare"]["median"]),
            _num(shape["orchestrated"]["median"]),
            _ratio(shape),
            f"<= {SHAPE_RATIO_MAX}x",
            _met(shape["met"]),
        )
    dag = report.get("dag_rate")
    if dag:
        table.add_row(
            f"{dag['steps']:,}-step DAG: series-parallel vs random (steps/s)",
            _num(dag["series_parallel"]["median"]),
            _num(dag["random"]["median"]),
            _ratio(dag),
            dag["target"].replace("ratio ", ""),
            _met(dag["met"]),
        )
    micro = report["micro"]
    if not micro:  # only some shapes were measured (--shape)
        return table
    memory = micro["memory"]
    rows = [
        (f"plan+compile {micro['compile']['steps']:,}-step DAG (ms)", micro["compile"]["median_ms"], "compile"),
        ("policy decision (us)", micro["policy_decision"]["median_us"], "policy_decision"),
        ("audit append (ms)", micro["audit_append"]["median_ms"], "audit_append"),
        ("events published, batched (/s)", micro["event_bus"]["published_per_s"], "event_bus"),
        ("events delivered via stream() (/s)", micro["event_bus"]["delivered_per_s"], "event_bus"),
        (f"bytes/finished run ({memory['runs']:,} runs)", memory["bytes_per_finished_run"], "memory"),
    ]
    for label, value, key in rows:
        table.add_row(label, "-", _num(value), "", micro[key]["target"], _met(micro[key]["met"]))
    single = micro["event_bus_single"]
    table.add_row("events, one publish per call (/s)", "-", _num(single["published_per_s"]), "", "(info)", "")
    return table


def render_costs(report: dict[str, Any]) -> Table:
    """CPU milliseconds per step of client, worker and Redis for each shape and variant, and the Redis commands
    and round trips per step of a small chain (MONITOR)."""
    table = Table(title="cost per step (medians; CPU in ms)")
    for column in ("shape", "variant", "client CPU", "worker CPU", "Redis CPU"):
        table.add_column(column, justify="left" if column in ("shape", "variant") else "right")

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for shape in report["shapes"].values():
        for variant in ("bare", "orchestrated"):
            cpu = shape[variant].get("cpu_per_step") or {}
            table.add_row(
                shape["label"], variant, cell(cpu.get("client")), cell(cpu.get("worker")), cell(cpu.get("redis"))
            )
    commands = report.get("redis_commands_per_step") or {}
    for variant, count in commands.items():
        table.add_row(
            "Redis per step (MONITOR)",
            variant,
            f"{count['client_commands_per_step']:g} cmds",
            f"{count['lua_commands_per_step']:g} in Lua",
            f"{count.get('round_trips_per_step', 0):g} round trips",
        )
    return table
