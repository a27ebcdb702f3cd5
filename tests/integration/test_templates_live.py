"""All four shipped templates on real workers produce real, checkable results from the sample instance."""

from __future__ import annotations

import tempfile
from typing import Any

import pytest

from orchestrator.models.common import RunStatus
from orchestrator.models.run import RunView
from orchestrator.service import Orchestrator
from tests.integration.helpers import OPERATOR, step_of
from workers.sample.instance import SampleInstance

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def defects() -> dict[str, Any]:
    """The problems planted in the bundled data set (what the agents must find)."""
    return dict(SampleInstance(tempfile.mkdtemp() + "/meta.sqlite").meta["deliberate_defects"])


def run_template(orch: Orchestrator, template_id: str, **params: Any) -> RunView:
    view = orch.start_workflow(OPERATOR, template_id=template_id, parameters=params)
    done = orch.wait_for_run(view.run_id, timeout=60)
    assert done.status == RunStatus.COMPLETED, done.error
    return done


def test_cmdb_health_check_finds_the_planted_duplicates_and_reports_them(
    orch: Orchestrator, defects: dict[str, Any]
) -> None:
    view = run_template(orch, "cmdb-health-check")
    audit = step_of(view, "scan-cis").result
    assert 0 < audit["health_score"] < 100
    found = str(audit["duplicates"])
    assert all(name in found for name in defects["duplicate_names"])
    report = step_of(view, "generate-report").result
    assert report["report_type"] == "health" and str(audit["health_score"]) in report["markdown"]


def test_discovery_audit_scans_audits_the_scan_and_reports(orch: Orchestrator) -> None:
    view = run_template(orch, "discovery-audit", ip_range="10.0.0.0/8")
    scan = step_of(view, "run-scan").result
    audit = step_of(view, "audit-results").result
    assert scan["devices_found"] > 0 and audit["scan"] == scan["number"]
    assert audit["rules_failed"] >= 1
    report = step_of(view, "generate-report").result
    assert scan["number"] in report["markdown"]


def test_asset_lifecycle_finds_the_over_deployed_licences(orch: Orchestrator, defects: dict[str, Any]) -> None:
    view = run_template(orch, "asset-lifecycle")
    compliance = step_of(view, "check-compliance").result
    assert sorted(compliance["over_deployed"]) == sorted(defects["over_deployed"])
    assert compliance["over_deployed_count"] == len(defects["over_deployed"])
    report = step_of(view, "generate-docs").result
    assert all(product in report["markdown"] for product in defects["over_deployed"])


def test_incident_response_creates_one_ticket_for_the_impacted_cis(orch: Orchestrator) -> None:
    view = run_template(orch, "incident-response", ci_id="web-prod-01", summary="Payments slow")
    impact = step_of(view, "assess-impact").result
    ticket = step_of(view, "create-ticket").result
    assert any("svc-payments" in str(s) for s in impact["impacted_services"])
    assert ticket["number"].startswith("CHG") and ticket["duplicate_suppressed"] is False
