"""``itom-orch bench frontdoor --quick`` end to end: every figure reported as a positive number.

As with the main bench, figures are never asserted against their targets here (a loaded CI machine is not a
benchmark rig); the test checks that the bench runs through the real CLI and reports what it promises.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.integration.test_bench_quick import _need_redis_server, _positive

pytestmark = pytest.mark.integration


def test_quick_frontdoor_bench_reports_every_figure(tmp_path: Path) -> None:
    _need_redis_server()
    from orchestrator.cli.main import app

    out = tmp_path / "frontdoor.json"
    result = CliRunner().invoke(app, ["bench", "frontdoor", "--quick", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())["frontdoor"]
    for phase in ("without_sse", "with_sse"):
        figures = data[phase]
        assert figures["failed"] == 0, figures
        for name in ("workflows_per_second", "accept_p50_ms", "accept_p99_ms", "health_p99_ms"):
            assert _positive(figures[name]), (phase, name, figures)
    assert data["with_sse"]["sse"]["streams"] == data["config"]["sse_clients"]
    assert data["with_sse"]["sse"]["events"] > 0
    assert data["list"]["runs"] >= data["config"]["list_runs"]
    assert _positive(data["list"]["page_p99_ms"])
    for moment in ("before", "after"):
        assert _positive(data["memory"][moment]["redis_mb"]) and _positive(data["memory"][moment]["api_rss_mb"])
    assert set(data["targets"]) == {"rate_ratio", "rate_ratio_met", "health_p99_ms_with_sse", "health_p99_met"}
    assert "start rate with clients / without" in result.output
