"""``itom-orch bench``: orchestrated workflows vs bare Celery on a private Redis, in one run.

Why a thin command: the bench itself lives in ``orchestrator.bench`` (usable from tests and scripts); this
module only parses options, shows progress, prints the table and writes the JSON. Targets are reported,
so the exit code says whether the bench ran, not whether every target was met.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import console, err_console, fail
from orchestrator.errors import OrchestratorError

app = typer.Typer()

DEFAULT_JSON = Path("bench-results.json")


@app.command()
def bench(
    what: Annotated[
        str | None,
        typer.Argument(help="'frontdoor': the HTTP front door without and with many SSE clients (see README)"),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes, one repetition (well under a minute)")] = False,
    json_path: Annotated[
        Path, typer.Option("--json", help="Where to write every raw figure as JSON", dir_okay=False)
    ] = DEFAULT_JSON,
    repeat: Annotated[
        int | None, typer.Option("--repeat", min=1, help="Repetitions per shape (default 5, or 1 with --quick)")
    ] = None,
    recovery: Annotated[
        bool,
        typer.Option("--recovery", help="Only the recovery drill: whole-worker SIGKILL mid-step to run completed"),
    ] = False,
    devstack: Annotated[
        bool, typer.Option("--devstack", help="Only the dev-stack figures: CLI start-up, `up` ready time and memory")
    ] = False,
    shape: Annotated[
        list[str] | None,
        typer.Option(
            "--shape",
            help="Only this figure (repeatable): chain, fan_in, diamonds, singles or dag; "
            "the micro figures and the MONITOR count are left out",
        ),
    ] = None,
) -> None:
    """Measure orchestration overhead against bare Celery (same Redis, worker and queue), plus micro figures."""
    if what == "frontdoor":
        _frontdoor(quick, json_path)
        return
    if what is not None:
        err_console.print(f"[red]ORCH_8003[/] unknown bench '{what}'; the one named bench is 'frontdoor'")
        raise typer.Exit(2)
    if recovery:
        _recovery(repeat or 3, json_path)
        return
    if devstack:
        _devstack(repeat or 5, json_path)
        return
    from orchestrator.bench import BenchConfig, run_bench
    from orchestrator.bench.report import write_report
    from orchestrator.bench.table import render_costs, render_table

    try:
        config = (BenchConfig.quick(repeat) if quick else BenchConfig.full(repeat)).with_only(shape)
        report = run_bench(config, progress=lambda line: console.print(f"[dim]{line}[/]"))
    except OrchestratorError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err_console.print("[yellow]bench interrupted; its Redis and worker were stopped[/]")
        raise typer.Exit(130) from None
    write_report(report, json_path)
    console.print(render_table(report))
    console.print(render_costs(report))
    summary = report["summary"]
    console.print(f"{summary['met']} of {summary['total']} targets met; raw figures in [bold]{json_path}[/]")
    machine = report["machine"]
    console.print(
        f"[dim]{machine['cpu_count']} CPUs, Redis {machine['redis_version']}, load average "
        f"{machine['load_average_start']} at start, {machine['load_average_end']} at end "
        "(a busy machine spreads the figures; compare ratios, not absolute numbers)[/]"
    )


def _recovery(repeat: int, json_path: Path) -> None:
    import json

    from orchestrator.bench.recovery import measure_recovery

    try:
        figure = measure_recovery(repeat, progress=lambda line: console.print(f"[dim]{line}[/]"))
    except OrchestratorError as exc:
        fail(exc)
        return
    data = figure.as_dict()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"recovery": data}, indent=2))
    verdict = "[green]met[/]" if data["met"] else "[red]missed[/]"
    console.print(
        f"recovery after a whole-worker SIGKILL: median {data['median']}s (min {data['min']}, max {data['max']}) "
        f"over {repeat}; target <= 30 s {verdict}; raw figures in [bold]{json_path}[/]"
    )


def _devstack(repeat: int, json_path: Path) -> None:
    import json

    from orchestrator.bench.devstack import measure_devstack

    try:
        data = measure_devstack(repeat).as_dict()
    except OrchestratorError as exc:
        fail(exc)
        return
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"devstack": data}, indent=2))
    memory = data["up_memory_mb"]
    console.print(
        f"itom-orch --help: {data['help_seconds']['median']} s (target < 0.6); status: "  # type: ignore[index]
        f"{data['status_seconds']['median']} s (< 1); up ready: {data['up_ready_seconds']} s (< 15); "  # type: ignore[index]
        f"up memory: {memory['pss']} MB PSS, {memory['rss']} MB RSS over {data['up_processes']} processes "  # type: ignore[index]
        f"(< 700); raw figures in [bold]{json_path}[/]"
    )
    bytecode = data["bytecode"]
    if not bytecode["dependencies_precompiled"] and not bytecode["writes_bytecode"]:  # type: ignore[index]
        console.print(
            "[yellow]PYTHONDONTWRITEBYTECODE is set and the dependencies have no bytecode: every start compiles them "
            "again; `make install` compiles them once[/]"
        )


def _frontdoor(quick: bool, json_path: Path) -> None:
    import json

    from orchestrator.bench.frontdoor import FrontdoorConfig, measure_frontdoor

    config = FrontdoorConfig.quick() if quick else FrontdoorConfig()
    try:
        data = measure_frontdoor(config, progress=lambda line: console.print(f"[dim]{line}[/]"))
    except OrchestratorError as exc:
        fail(exc)
        return
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"frontdoor": data}, indent=2))
    without, with_sse, listing, memory, targets = (
        data["without_sse"],
        data["with_sse"],
        data["list"],
        data["memory"],
        data["targets"],
    )
    for label, figures in (("no SSE clients", without), (f"{config.sse_clients} SSE clients", with_sse)):
        console.print(
            f"{label}: {figures['workflows_per_second']} workflows/s, accept p50 {figures['accept_p50_ms']} ms "
            f"p99 {figures['accept_p99_ms']} ms, health p99 {figures['health_p99_ms']} ms "
            f"({figures['failed']} failed)"
        )
    console.print(
        f"list at {listing['runs']} runs: one page p50 {listing['page_p50_ms']} ms, p99 {listing['page_p99_ms']} ms; "
        f"by status p50 {listing['by_status_p50_ms']} ms"
    )
    console.print(
        f"memory: Redis {memory['before']['redis_mb']} -> {memory['after']['redis_mb']} MB, API RSS "
        f"{memory['before']['api_rss_mb']} -> {memory['after']['api_rss_mb']} MB"
    )
    rate = "[green]met[/]" if targets["rate_ratio_met"] else "[red]missed[/]"
    health = "[green]met[/]" if targets["health_p99_met"] else "[red]missed[/]"
    console.print(
        f"start rate with clients / without: {targets['rate_ratio']} (>= 0.8 {rate}); health p99 with clients "
        f"{targets['health_p99_ms_with_sse']} ms (< 250 {health}); raw figures in [bold]{json_path}[/]"
    )
