"""Built-in handlers: every action gives a real, checkable answer computed from the bundled sample instance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.catalog import ACTIONS, validate_params
from orchestrator.errors import TaskInvalidError
from orchestrator.settings import reset_settings
from workers.actions import execute_action, reset_instance
from workers.context import ActionContext
from workers.handlers import HANDLERS
from workers.sample import SampleInstance

# parameters each action needs to run at all (everything else takes its catalog default)
REQUIRED: dict[str, dict[str, Any]] = {
    "cmdb.map_relationships": {"ci_id": "web-prod-01"},
    "cmdb.dependency_tree": {"ci_id": "web-prod-01"},
    "cmdb.history": {"ci_id": "web-prod-01"},
    "cmdb.update": {"ci_id": "web-prod-02", "fields": {"owner": "Zoe Adams"}},
    "cmdb.create": {"ci_class": "linux_server", "name": "web-prod-77"},
    "cmdb.delete": {"ci_id": "batch-prod-01"},
    "cmdb.bulk_operations": {"ci_ids": ["web-prod-04", "db-prod-01"], "fields": {"location": "DC3 Paris"}},
    "csa.create_request": {"description": "A new virtual server for the search team"},
    "csa.request_status": {"request_id": "RITM0009001"},
    "documentation.runbook": {"ci_id": "db-prod-01"},
    "documentation.knowledge_base": {"title": "Rotating TLS certificates", "body": "Renew 30 days ahead."},
    "documentation.diagram": {"ci_id": "app-payments-api"},
}


class Runner:
    """Calls handlers the way the step task does: catalog-bound params, a stable key, earlier results."""

    def __init__(self, instance: SampleInstance) -> None:
        self.instance = instance
        self.results: dict[str, Any] = {}

    def __call__(self, action: str, step: str | None = None, keep: bool = True, **params: Any) -> dict[str, Any]:
        step = step or action.replace(".", "-")
        spec = ACTIONS[action]
        earlier = dict(self.results)
        ctx = ActionContext(
            run_id="run-1",
            step_id=step,
            agent_id=spec.agent_id,
            action=action,
            params=validate_params(spec.params, params, where=action),
            idempotency_key=f"run-1:{step}",
            timeout_seconds=30,
            earlier_results=lambda: earlier,
        )
        result = HANDLERS[action](ctx, self.instance)
        result.setdefault("action", action)
        if keep:
            self.results[step] = result
        return result


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[SampleInstance]:
    inst = SampleInstance(tmp_path / "instance.sqlite")
    yield inst
    inst.close()


@pytest.fixture
def run(instance: SampleInstance) -> Runner:
    return Runner(instance)


def defects(instance: SampleInstance) -> dict[str, Any]:
    found: dict[str, Any] = instance.meta["deliberate_defects"]
    return found


def names(rows: list[dict[str, Any]]) -> set[str]:
    return {r["name"] for r in rows}


def test_every_catalog_action_has_a_handler() -> None:
    assert set(HANDLERS) == set(ACTIONS)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_handler_returns_a_compact_json_answer(action: str, run: Runner) -> None:
    result = run(action, **REQUIRED.get(action, {}))
    encoded = json.dumps(result)
    assert len(encoded) < 48_000
    assert result["action"] == action
    assert len(result) > 1 or result == {"pong": True, "action": "cmdb.ping"}


# -- cmdb-agent ----------------------------------------------------------------------------------------------------
def test_server_is_a_class_covering_linux_and_windows_servers(run: Runner) -> None:
    counted = run("cmdb.count", ci_class="servers")
    assert counted["filters"]["ci_class"] == "cmdb_ci_server"
    assert set(counted["by_class"]) == {"cmdb_ci_linux_server", "cmdb_ci_win_server"}
    assert counted["count"] == sum(counted["by_class"].values()) == run("cmdb.query", ci_class="Server")["total"]


def test_stale_and_duplicate_cis_are_the_planted_ones(run: Runner) -> None:
    found = defects(run.instance)
    stale = run("cmdb.stale", days=90, limit=100)
    assert set(found["stale"]) <= names(stale["stale_cis"]) and stale["days_threshold"] == 90
    by_name = run("cmdb.duplicates")
    assert {g["value"] for g in by_name["duplicate_groups"]} == set(found["duplicate_names"])
    by_serial = run("cmdb.duplicates", match_field="serial_number")
    assert by_serial["total_groups"] == len(found["duplicate_serials"])


def test_history_shows_the_writes_made_here(run: Runner) -> None:
    run("cmdb.update", ci_id="web-prod-02", fields={"owner": "Zoe Adams"})
    history = run("cmdb.history", ci_id="web-prod-02")["history"]
    assert history[0] == {
        "timestamp": history[0]["timestamp"],
        "action": "updated",
        "field": "owner",
        "new_value": "Zoe Adams",
        "source": "orchestrator",
    }
    assert history[-1]["action"] == "created"


def test_dependency_tree_goes_both_ways_and_reconcile_finds_the_drift(run: Runner) -> None:
    tree = run("cmdb.dependency_tree", ci_id="web-prod-01", depth=1)
    assert tree["root"]["name"] == "web-prod-01" and tree["depends_on"] and tree["used_by"]
    assert all(n["depth"] == 1 and "::" in n["relationship_type"] for n in tree["depends_on"] + tree["used_by"])
    drift = run("cmdb.reconcile")
    assert drift["dry_run"] is True
    assert set(defects(run.instance)["drifted"]) <= {d["name"] for d in drift["field_drift"]["items"]}


def test_catalog_reads_types_rules_and_dashboard(run: Runner) -> None:
    assert run("cmdb.ire_rules")["applies_to"] == ["cmdb_ci_linux_server", "cmdb_ci_win_server"]
    assert run("cmdb.ire_rules", ci_class="application")["identification_rules"][0]["attributes"] == ["name"]
    assert run("cmdb.ci_types")["ci_types"]["cmdb_ci_database"]["count"] > 0
    kinds = {r["type"] for r in run("cmdb.relationship_types")["relationship_types"]}
    assert "Runs on::Runs" in kinds
    dashboard = run("cmdb.dashboard")
    assert dashboard["total_cis"] == sum(dashboard["by_class"].values())
    trend = run("cmdb.health_trend", days=60)
    assert len(trend["snapshots"]) == 7 and trend["snapshots"][-1]["health_score"] == dashboard["health_score"]


def test_ping_touches_nothing(tmp_path: Path) -> None:
    inst = SampleInstance(tmp_path / "never" / "db.sqlite")
    assert Runner(inst)("cmdb.ping") == {"pong": True, "action": "cmdb.ping"}
    assert not (tmp_path / "never").exists()


def test_query_filters_by_class_environment_and_name(run: Runner) -> None:
    result = run("cmdb.query", ci_class="linux_server", environment="prod", name="web-prod-0*", limit=5)
    assert result["filters"] == {"ci_class": "cmdb_ci_linux_server", "name": "web-prod-0*", "environment": "Production"}
    assert result["returned"] == 5 and result["total"] >= 9
    assert all(
        i["name"].startswith("web-prod-0") and i["sys_class_name"] == "cmdb_ci_linux_server" for i in result["items"]
    )
    assert run("cmdb.query", name="svc-pay")["items"][0]["name"] == "svc-payments"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"environment": "Moon"}, "Unknown environment"),
        ({"ci_class": "toaster"}, "Unknown CI class"),
        ({"limit": 0}, "between 1 and 100"),
    ],
)
def test_query_rejects_bad_filters(run: Runner, params: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskInvalidError, match=message):
        run("cmdb.query", **params)


def test_health_audit_finds_the_deliberate_defects(run: Runner) -> None:
    result = run("cmdb.health_audit")
    wanted = defects(run.instance)
    duplicate_values = {g["value"] for g in result["duplicates"]["items"]}
    assert set(wanted["duplicate_names"]) <= duplicate_values
    grouped = {c["name"] for g in result["duplicates"]["items"] for c in g["cis"]}
    assert {copy for _, copy in wanted["duplicate_serials"]} <= grouped
    assert result["duplicates"]["groups"] == 6
    assert set(wanted["stale"]) <= names(result["stale"]["items"])
    missing = {(i["name"], field) for i in result["incomplete"]["items"] for field in i["missing"]}
    assert {tuple(pair) for pair in wanted["incomplete"]} <= missing
    assert 0 < result["health_score"] < 100
    assert run("cmdb.health_audit", stale_days=30, keep=False)["stale"]["total"] > result["stale"]["total"]


def test_impact_analysis_of_a_server_reaches_its_business_service(run: Runner) -> None:
    result = run("cmdb.map_relationships", ci_id="web-prod-01")
    assert result["impacted_services"] == ["svc-payments"]
    service = next(i for i in result["impacted_cis"] if i["name"] == "svc-payments")
    assert service["path"] == ["web-prod-01", "app-payments-web", "svc-payments"]
    assert service["via"] == ["Runs on::Runs", "Depends on::Used by"]
    assert {d["sys_class_name"] for d in result["dependencies"]} >= {"cmdb_ci_storage", "cmdb_ci_netgear"}
    by_sys_id = run("cmdb.map_relationships", ci_id=result["ci"]["sys_id"], depth=1, keep=False)
    assert names(by_sys_id["impacted_cis"]) == {"app-payments-web"}


def test_impact_of_a_shared_api_spreads_to_dependent_services(run: Runner) -> None:
    result = run("cmdb.map_relationships", ci_id="app-payments-api", depth=2)
    assert set(result["impacted_services"]) == {"svc-payments", "svc-checkout", "svc-billing"}


def test_impact_analysis_of_an_unknown_ci_names_it(run: Runner) -> None:
    with pytest.raises(TaskInvalidError, match="'ghost-42' not found") as caught:
        run("cmdb.map_relationships", ci_id="ghost-42")
    assert caught.value.code == "ORCH_7003" and not caught.value.retryable


def test_update_is_visible_and_exactly_once(run: Runner) -> None:
    first = run("cmdb.update", step="fix", ci_id="web-prod-02", fields={"owner": "Zoe Adams", "environment": "test"})
    assert first["previous"]["environment"] == "Production" and first["duplicate_suppressed"] is False
    again = run("cmdb.update", step="fix", ci_id="web-prod-02", fields={"owner": "Someone Else"})
    assert again["duplicate_suppressed"] is True and again["updated_fields"]["owner"] == "Zoe Adams"
    row = run("cmdb.query", name="web-prod-02", keep=False)["items"][0]
    assert (row["owner"], row["environment"]) == ("Zoe Adams", "Test")
    with pytest.raises(TaskInvalidError, match="cannot be set"):
        run("cmdb.update", step="bad", ci_id="web-prod-02", fields={"sys_id": "x"})


def test_create_and_retire_a_ci(run: Runner) -> None:
    created = run("cmdb.create", ci_class="database", name="db-prod-77", fields={"engine": "PostgreSQL 16"})
    assert run("cmdb.query", name="db-prod-77", keep=False)["items"][0]["sys_id"] == created["sys_id"]
    with pytest.raises(TaskInvalidError, match="already exists"):
        run("cmdb.create", step="again", ci_class="database", name="db-prod-77")
    retired = run("cmdb.delete", step="retire", ci_id="db-prod-77")
    assert retired["install_status"] == "Retired"
    assert run("cmdb.query", name="db-prod-77", keep=False)["total"] == 0
    assert run("cmdb.delete", step="retire", ci_id="db-prod-77")["duplicate_suppressed"] is True  # redelivery
    with pytest.raises(TaskInvalidError, match="already retired"):
        run("cmdb.delete", step="retire-again", ci_id="db-prod-77")


def test_bulk_operations_update_all_or_name_the_unknown(run: Runner) -> None:
    result = run("cmdb.bulk_operations", ci_ids=["web-prod-04", "db-prod-01"], fields={"location": "DC3 Paris"})
    assert result["updated_count"] == 2 and result["changes_applied"] == 2
    assert run.instance.find_ci("db-prod-01")["location"] == "DC3 Paris"
    with pytest.raises(TaskInvalidError, match="nope-1"):
        run("cmdb.bulk_operations", step="bad", ci_ids=["web-prod-04", "nope-1"], fields={"location": "x"})


# -- discovery-agent -----------------------------------------------------------------------------------------------
def test_scan_finds_unmanaged_devices_and_drift(run: Runner) -> None:
    result = run("discovery.scan", ip_range="10.10.0.0/16")
    unmatched = {d["ip_address"] for d in result["unmatched"]["items"]}
    assert unmatched == {ip for ip in defects(run.instance)["unmatched_devices"] if ip.startswith("10.10.")}
    drifted = {d["name"] for d in result["drift"]["items"]}
    prod_drifted = {n for n in defects(run.instance)["drifted"] if "-prod-" in n}
    assert prod_drifted <= drifted
    assert result["schedules"] == ["DC1 Production servers"] and result["matched"] > 80
    assert result["number"].startswith("DSC") and result["duplicate_suppressed"] is False
    assert run("discovery.scan", ip_range="10.10.0.0/16", keep=False)["scan_id"] == result["scan_id"]
    assert run("discovery.status", keep=False)["scans"][0]["scan_id"] == result["scan_id"]
    with pytest.raises(TaskInvalidError, match="CIDR"):
        run("discovery.scan", step="bad", ip_range="ten.ten")


def test_reconcile_registers_devices_and_fixes_drift(run: Runner) -> None:
    before = len(run.instance.cis())
    result = run("discovery.reconcile")
    assert result["created"]["total"] == len(defects(run.instance)["unmatched_devices"])
    assert result["updated"]["total"] >= len(defects(run.instance)["drifted"])
    assert len(run.instance.cis()) == before + result["created"]["total"]
    rescan = run("discovery.scan", step="rescan", ip_range="10.0.0.0/8")
    assert rescan["unmatched"]["total"] == 0 and rescan["drift"]["total"] == 0


def test_status_and_schedules(run: Runner) -> None:
    schedules = run("discovery.schedule", active_only=True)
    assert schedules["total"] == 5 and all(s["active"] for s in schedules["schedules"])
    status = run("discovery.status", schedule_id="DC2 Staging")
    assert status["total"] == 3 and {s["schedule"] for s in status["scans"]} == {"DC2 Staging"}
    with pytest.raises(TaskInvalidError, match="Known schedules"):
        run("discovery.status", step="bad", schedule_id="Mars")
    with pytest.raises(TaskInvalidError, match="no device data"):
        run("discovery.reconcile", step="old", scan_id=status["scans"][-1]["number"])


# -- asset-agent ---------------------------------------------------------------------------------------------------
def test_asset_query_by_type_status_and_person(run: Runner) -> None:
    in_stock = run("asset.query", asset_type="hardware", status="in stock")
    assert in_stock["total"] >= 4 and all(i["install_status"] == "In stock" for i in in_stock["items"])
    laptops = run("asset.query", assigned_to="alice", keep=False)
    assert laptops["total"] >= 1 and all("Alice" in i["assigned_to"] for i in laptops["items"])
    software = run("asset.query", asset_type="software", limit=3, keep=False)
    assert software["total"] > 300 and len(software["items"]) == 3
    with pytest.raises(TaskInvalidError, match="Unknown asset status"):
        run("asset.query", step="bad", status="lost")


def test_lifecycle_lists_assets_past_and_near_end_of_life(run: Runner) -> None:
    result = run("asset.lifecycle", horizon_days=180)
    assert result["past_eol"]["total"] > 0 and result["eol_within_horizon"]["total"] > 0
    assert all(a["days_to_eol"] < 0 for a in result["past_eol"]["items"])
    assert all(0 <= a["days_to_eol"] <= 180 for a in result["eol_within_horizon"]["items"])
    wider = run("asset.lifecycle", horizon_days=720, keep=False)
    assert wider["eol_within_horizon"]["total"] > result["eol_within_horizon"]["total"]


def test_asset_reconcile_links_assets_once(run: Runner) -> None:
    result = run("asset.reconcile")
    wanted = defects(run.instance)
    assert {a["asset_tag"] for a in result["linked"]["items"]} == set(wanted["unlinked_assets"])
    assert {a["asset_tag"] for a in result["retired_ci_assets"]["items"]} == set(wanted["assets_of_retired_cis"])
    assert set(wanted["serial_mismatch_assets"]) <= {a["asset_tag"] for a in result["serial_mismatch"]["items"]}
    second = run("asset.reconcile", step="second")
    assert second["linked"]["total"] == 0 and second["retired_ci_assets"]["total"] == 0


def test_licence_check_finds_the_over_deployed_products(run: Runner) -> None:
    result = run("asset.license_check")
    assert sorted(result["over_deployed"]) == sorted(defects(run.instance)["over_deployed"])
    oracle = run("asset.license_check", software="oracle database", keep=False)["products"]
    assert len(oracle) == 1 and oracle[0]["installed"] - oracle[0]["entitled"] == 4
    assert oracle[0]["status"] == "over-deployed" and oracle[0]["true_up_cost"] > 0
    with pytest.raises(TaskInvalidError, match="Known products"):
        run("asset.license_check", step="bad", software="Lotus Notes")


# -- csa-agent -----------------------------------------------------------------------------------------------------
def test_catalog_lists_and_filters(run: Runner) -> None:
    everything = run("csa.list_catalog")
    assert everything["total"] == 12 and "Remediation" in everything["categories"]
    assert {i["category"] for i in run("csa.list_catalog", category="remediation", keep=False)["items"]} == {
        "Remediation"
    }
    with pytest.raises(TaskInvalidError, match="Unknown catalog category"):
        run("csa.list_catalog", step="bad", category="Snacks")


def test_incident_response_plans_and_files_one_ticket_from_earlier_results(run: Runner) -> None:
    impact = run("cmdb.map_relationships", step="assess-impact", ci_id="db-prod-03")
    plan = run("csa.plan_fulfillment", step="route-to-agent")
    assert plan["source_steps"] == ["assess-impact"]
    assert plan["assignment_group"]["name"] == "Database Administration"
    assert plan["catalog_item"]["category"] == "Remediation"
    assert plan["risk_level"] in ("medium", "high")
    assert set(plan["impacted_services"]) == set(impact["impacted_services"])
    assert {c["name"] for c in plan["affected_cis"]} == {"db-prod-03"} | names(impact["impacted_cis"])
    ticket = run("csa.run_remediation", step="create-ticket", risk_level="low")
    assert ticket["number"].startswith("CHG") and ticket["risk_level"] == plan["risk_level"]
    assert set(ticket["affected_cis"]) == {c["sys_id"] for c in plan["affected_cis"]}
    assert "db-prod-03" in ticket["short_description"]
    assert run("csa.run_remediation", step="create-ticket", keep=False)["duplicate_suppressed"] is True
    assert run.instance.count_tickets() == 1 and run.instance.count_tickets("run-1:create-ticket") == 1


def test_plan_without_findings_goes_to_the_service_desk(run: Runner) -> None:
    plan = run("csa.plan_fulfillment")
    assert (plan["catalog_item"]["name"], plan["assignment_group"]["name"], plan["risk_level"]) == (
        "General IT request",
        "Service Desk",
        "low",
    )


def test_plan_after_a_health_audit_asks_for_data_correction(run: Runner) -> None:
    run("cmdb.health_audit")
    assert run("csa.plan_fulfillment")["catalog_item"]["name"] == "CMDB data correction"


def test_service_requests_and_their_status(run: Runner) -> None:
    request = run(
        "csa.create_request", description="Database access for analytics", catalog_item="Database access request"
    )
    assert request["number"] == "RITM0010001" and request["assignment_group"] == "Database Administration"
    status = run("csa.request_status", request_id=request["number"])
    assert (status["state"], status["approval"]) == ("Open", "requested")
    assert run("csa.request_status", request_id="RITM0009002", keep=False)["number"] == "RITM0009002"
    with pytest.raises(TaskInvalidError, match="RITM0010001"):
        run("csa.request_status", step="missing", request_id="RITM9999999")
    with pytest.raises(TaskInvalidError, match="Catalog item"):
        run("csa.create_request", step="bad", description="x", catalog_item="Pony")


# -- itom-auditor --------------------------------------------------------------------------------------------------
def test_compliance_by_scope(run: Runner) -> None:
    cmdb = run("audit.compliance", scope="cmdb")
    assert cmdb["categories"] == ["cmdb"] and 0 < cmdb["score"] < 100
    failed = {r["rule_id"] for r in cmdb["rules"] if not r["passed"]}
    assert {"CMDB-001", "CMDB-004", "CMDB-006"} <= failed
    assert cmdb["by_severity"]["high"] > 0 and cmdb["findings"]["items"][0]["severity"] == "high"
    full = run("audit.compliance", step="full", scope="full")
    assert {r["category"] for r in full["rules"]} == {"cmdb", "discovery", "asset"}
    with pytest.raises(ValueError, match="'scope' must be one of"):
        run("audit.compliance", step="bad", scope="galaxy")


def test_compliance_after_a_scan_judges_that_scan(run: Runner) -> None:
    scan = run("discovery.scan", step="run-scan", ip_range="10.20.0.0/16")
    audit = run("audit.compliance", step="audit-results")
    assert audit["scan"] == scan["number"] and "discovery" in audit["categories"]
    unmanaged = [f for f in audit["findings"]["items"] if f["rule_id"] == "DISC-002"]
    assert {f["target"] for f in unmanaged} == {d["ip_address"] for d in scan["unmatched"]["items"]}


def test_drift_report_policy(run: Runner) -> None:
    drift = run("audit.drift")
    assert set(defects(run.instance)["drifted"]) <= {d["name"] for d in drift["drift"]["items"]}
    assert drift["by_field"]["os"] >= 12
    report = run("audit.report")
    assert set(report["by_category"]) == {"cmdb", "discovery", "asset"} and report["findings_total"] > 0
    policy = run("audit.policy", category="asset")
    assert {r["rule_id"] for r in policy["rules"]} == {"ASSET-001", "ASSET-002", "ASSET-003", "ASSET-004"}
    licence_rule = next(r for r in policy["rules"] if r["rule_id"] == "ASSET-001")
    assert licence_rule["failed"] == 3 and "Tableau Desktop" in licence_rule["examples"]
    with pytest.raises(TaskInvalidError, match="Unknown policy category"):
        run("audit.policy", step="bad", category="vibes")


# -- itom-documentator ---------------------------------------------------------------------------------------------
def test_generate_renders_earlier_steps_and_stores_once(run: Runner) -> None:
    health = run("cmdb.health_audit", step="scan-cis")
    status = run("discovery.status", step="verify-discovery")
    doc = run("documentation.generate", step="generate-report", report_type="health")
    text = doc["markdown"]
    assert doc["title"] == "CMDB Health Report" and text.startswith("# CMDB Health Report")
    assert "## Step scan-cis (cmdb.health_audit)" in text and "## Step verify-discovery" in text
    assert f"- **health_score**: {health['health_score']:g}" in text
    assert f"| {health['stale']['items'][0]['name']} |" in text  # a table row of the stale CIs
    assert f"**scans** ({status['total']})" in text
    assert doc["source_steps"] == ["scan-cis", "verify-discovery"] and doc["sections"] == 2
    again = run("documentation.generate", step="generate-report", keep=False)
    assert again["duplicate_suppressed"] is True and again["document_id"] == doc["document_id"]
    assert sum(1 for d in run.instance.documents() if d.get("document_id") == doc["document_id"]) == 1


def test_generate_without_earlier_steps_gives_an_overview(run: Runner) -> None:
    doc = run("documentation.generate", title="Weekly")
    assert doc["markdown"].startswith("# Weekly") and "total_cis" in doc["markdown"]


def test_runbook_knowledge_article_and_diagram(run: Runner) -> None:
    runbook = run("documentation.runbook", ci_id="web-prod-01")
    assert runbook["title"] == "Runbook: web-prod-01" and "svc-payments" in runbook["markdown"]
    assert "## Procedure" in runbook["markdown"] and runbook["number"].startswith("DOC")
    article = run("documentation.knowledge_base", title="Patch night", body="Second Tuesday.")
    assert article["number"].startswith("KB") and "Second Tuesday." in article["markdown"]
    diagram = run("documentation.diagram", ci_id="app-payments-api")
    mermaid = diagram["mermaid"]
    assert mermaid.startswith("graph TD") and "svc-payments" in mermaid and "|Runs on|" in mermaid
    assert diagram["edges"] >= diagram["nodes"] - 1


# -- execute_action ------------------------------------------------------------------------------------------------
@pytest.fixture
def builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ORCH_DATA_DIR", str(tmp_path))
    for agent in ("CMDB_AGENT", "CSA_AGENT"):
        monkeypatch.delenv(f"ORCH_AGENTS__{agent}__MCP_URL", raising=False)
    reset_settings()
    reset_instance()
    yield
    reset_instance()
    reset_settings()


def ctx(action: str, agent: str, **params: Any) -> ActionContext:
    return ActionContext(
        run_id="r", step_id="s", agent_id=agent, action=action, params=params, idempotency_key="r:s", timeout_seconds=30
    )


def test_execute_action_runs_the_builtin_and_binds_defaults(builtin: None, tmp_path: Path) -> None:
    result = execute_action(ctx("query_cis", "cmdb-agent", environment="Staging"))  # a legacy name
    assert result["action"] == "cmdb.query" and result["returned"] == min(50, result["total"])
    ticket = execute_action(ctx("csa.create_request", "csa-agent", description="laptop"))
    assert ticket["number"] == "RITM0010001" and (tmp_path / "sample-instance.sqlite").exists()


@pytest.mark.parametrize(
    ("action", "agent", "params", "message"),
    [
        ("cmdb.teleport", "cmdb-agent", {}, "Unknown action"),
        ("cmdb.query", "csa-agent", {}, "belongs to agent 'cmdb-agent'"),
        ("cmdb.query", "cmdb-agent", {"limit": "lots"}, "'limit' must be integer"),
        ("cmdb.query", "cmdb-agent", {"colour": "blue"}, "unknown parameter"),
        ("cmdb.map_relationships", "cmdb-agent", {}, "missing required parameter 'ci_id'"),
    ],
)
def test_execute_action_rejects_bad_requests(
    builtin: None, action: str, agent: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(TaskInvalidError, match=message):
        execute_action(ctx(action, agent, **params))
