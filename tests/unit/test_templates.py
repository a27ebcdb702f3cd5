"""Templates as data: the four built-ins, typed parameters, placeholders, and the user directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from orchestrator.errors import WorkflowDefinitionInvalidError, WorkflowNotFoundError
from orchestrator.state.templates import TemplateRegistry
from orchestrator.workflows import plan
from orchestrator.workflows.placeholders import find_placeholders, substitute

BUILTINS = {
    "asset-lifecycle": (
        "asset",
        ["scan-assets", "check-compliance", "generate-docs"],
        ["asset.query", "asset.license_check", "documentation.generate"],
    ),
    "cmdb-health-check": (
        "cmdb",
        ["scan-cis", "verify-discovery", "generate-report"],
        ["cmdb.health_audit", "discovery.status", "documentation.generate"],
    ),
    "discovery-audit": (
        "discovery",
        ["run-scan", "audit-results", "generate-report"],
        ["discovery.scan", "audit.compliance", "documentation.generate"],
    ),
    "incident-response": (
        "csa",
        ["assess-impact", "route-to-agent", "create-ticket"],
        ["cmdb.map_relationships", "csa.plan_fulfillment", "csa.run_remediation"],
    ),
}


@pytest.fixture
def registry(tmp_path: Path) -> TemplateRegistry:
    return TemplateRegistry(tmp_path / "user-templates")


def planned(registry: TemplateRegistry, template_id: str, **params: Any) -> dict[str, dict[str, Any]]:
    result = plan(registry.get(template_id), params)
    return {s.step_id: s.parameters for s in result.steps}


# -- the built-ins ----------------------------------------------------------------------------------------
def test_the_four_builtins_load_as_linear_three_step_chains(registry: TemplateRegistry) -> None:
    templates = registry.list()
    assert [t.template_id for t in templates] == sorted(BUILTINS)
    for template in templates:
        domain, step_ids, actions = BUILTINS[template.template_id]
        assert template.domain == domain and template.source == "builtin" and len(template.tags) == 3
        assert [s.step_id for s in template.steps] == step_ids
        assert [s.action for s in template.steps] == actions
        assert [s.depends_on for s in template.steps] == [[], [step_ids[0]], [step_ids[1]]]


def test_list_filters_by_domain(registry: TemplateRegistry) -> None:
    assert [t.template_id for t in registry.list("csa")] == ["incident-response"]
    assert registry.list("nope") == []


def test_unknown_template_lists_the_known_ids(registry: TemplateRegistry) -> None:
    with pytest.raises(WorkflowNotFoundError) as caught:
        registry.get("no-such-template")
    assert caught.value.code == "ORCH_3001"
    assert all(template_id in caught.value.message for template_id in BUILTINS)


def test_without_a_user_dir_only_the_builtins_load() -> None:
    registry = TemplateRegistry()
    assert registry.user_dir is None
    assert sorted(t.template_id for t in registry.list()) == sorted(BUILTINS)
    assert registry.broken() == []


def test_the_service_reads_user_templates_from_its_data_dir(tmp_path: Path) -> None:
    from orchestrator.service import Orchestrator
    from orchestrator.settings import Settings

    service = Orchestrator(Settings(data_dir=tmp_path), redis=fakeredis.FakeRedis(decode_responses=True))
    assert service.templates.user_dir == tmp_path / "templates"


# -- parameters -------------------------------------------------------------------------------------------
def test_parameters_fill_the_steps_that_name_them(registry: TemplateRegistry) -> None:
    steps = planned(registry, "incident-response", ci_id="web-01", risk_level="high")
    assert steps["assess-impact"] == {"ci_id": "web-01", "depth": 3}
    assert steps["create-ticket"] == {
        "summary": "Incident remediation",
        "risk_level": "high",
        "remediation_type": "missing_data",
        "remediation_mode": "manual",
    }
    assert steps["route-to-agent"] == {"request": None}


def test_typed_values_replace_exact_placeholders(registry: TemplateRegistry) -> None:
    steps = planned(registry, "cmdb-health-check", stale_days="30")
    assert steps["scan-cis"] == {"ci_class": None, "stale_days": 30}
    assert steps["generate-report"]["report_type"] == "health"


def test_missing_optional_parameter_drops_the_key_so_the_action_default_applies(registry: TemplateRegistry) -> None:
    assert planned(registry, "asset-lifecycle")["scan-assets"]["asset_type"] is None
    assert planned(registry, "asset-lifecycle", asset_type="software")["scan-assets"]["asset_type"] == "software"


def test_placeholders_inside_text_are_interpolated(registry: TemplateRegistry) -> None:
    steps = planned(registry, "discovery-audit", ip_range="192.168.0.0/24")
    assert steps["run-scan"]["ip_range"] == "192.168.0.0/24"
    assert steps["generate-report"]["title"] == "Discovery audit of 192.168.0.0/24"
    assert steps["audit-results"] == {"scope": "discovery"}


@pytest.mark.parametrize(
    ("template_id", "params", "fragment"),
    [
        ("incident-response", {}, "missing required parameter 'ci_id'"),
        ("incident-response", {"ci_id": "c", "risk_level": "extreme"}, "'risk_level' must be one of"),
        ("cmdb-health-check", {"stale_days": "soon"}, "'stale_days' must be integer"),
        ("cmdb-health-check", {"stale_days": 3, "colour": "red"}, "unknown parameter(s) ['colour']"),
        ("asset-lifecycle", {"asset_type": "furniture"}, "'asset_type' must be one of"),
    ],
)
def test_bad_parameters_are_orch_3006_naming_the_parameter(
    registry: TemplateRegistry, template_id: str, params: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(WorkflowDefinitionInvalidError) as caught:
        plan(registry.get(template_id), params)
    assert caught.value.code == "ORCH_3006"
    assert fragment in caught.value.message


def test_substitute_handles_nesting_and_absent_values() -> None:
    bound = {"n": 3, "flag": True, "none": None, "name": "db"}
    given = {"a": "{{n}}", "b": "{{ none }}", "c": ["{{name}}", "x-{{n}}-{{flag}}-{{none}}"], "d": {"e": "{{flag}}"}}
    assert substitute(given, bound) == {"a": 3, "c": ["db", "x-3-true-"], "d": {"e": True}}
    assert sorted(set(find_placeholders(given))) == ["flag", "n", "name", "none"]
    assert substitute({"plain": "no braces", "num": 1}, {}) == {"plain": "no braces", "num": 1}


# -- the user directory -----------------------------------------------------------------------------------
def user_template(template_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template_id": template_id,
        "name": f"User {template_id}",
        "domain": "cmdb",
        "parameters": [{"name": "who", "type": "string", "default": "ops"}],
        "steps": [{"step_id": "only", "action": "cmdb.query", "parameters": {"name": "{{who}}"}}],
    }
    body.update(overrides)
    return body


def test_user_templates_load_from_json_and_yaml_and_override_builtins(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "override.json").write_text(json.dumps(user_template("cmdb-health-check")))
    (folder / "extra.yaml").write_text(
        "name: Extra\ndomain: audit\nsteps:\n  - step_id: drift\n    action: audit.drift\n"
    )
    (folder / "notes.txt").write_text("ignored")
    registry = TemplateRegistry(folder)
    assert registry.get("cmdb-health-check").name == "User cmdb-health-check"
    assert registry.get("cmdb-health-check").source.startswith("user:")
    assert registry.get("extra").steps[0].action == "audit.drift"  # id defaults to the file name
    assert len(registry.list()) == 5 and registry.broken() == []


@pytest.mark.parametrize(
    ("filename", "content", "claimed", "fragment"),
    [
        ("broken.json", "{not json", "broken", "not valid JSON"),
        ("broken.yaml", "steps: [unclosed", "broken", "not valid YAML"),
        ("listy.json", "[1, 2]", "listy", "must be a mapping"),
        ("schema.json", json.dumps(user_template("mine", steps=[])), "mine", "steps"),
        ("holes.json", json.dumps(user_template("holes", parameters=[])), "holes", "undeclared parameter"),
        (
            "loop.json",
            json.dumps(
                user_template(
                    "loop",
                    steps=[
                        {"step_id": "a", "action": "cmdb.ping", "depends_on": ["b"]},
                        {"step_id": "b", "action": "cmdb.ping", "depends_on": ["a"]},
                    ],
                )
            ),
            "loop",
            "cycle",
        ),
    ],
)
def test_a_broken_user_file_is_reported_by_name_and_breaks_nothing_else(
    tmp_path: Path, filename: str, content: str, claimed: str, fragment: str
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / filename).write_text(content)
    (folder / "good.json").write_text(json.dumps(user_template("good")))
    registry = TemplateRegistry(folder)
    assert [t.template_id for t in registry.list()] == sorted([*BUILTINS, "good"])
    with pytest.raises(WorkflowDefinitionInvalidError) as caught:
        registry.get(claimed)
    assert caught.value.code == "ORCH_3006"
    assert filename in caught.value.message and fragment in caught.value.message
    assert claimed in {entry["template_id"] for entry in registry.broken()}


def test_a_broken_override_hides_the_builtin_instead_of_silently_using_it(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "incident-response.json").write_text("{oops")
    registry = TemplateRegistry(folder)
    with pytest.raises(WorkflowDefinitionInvalidError, match=r"incident-response\.json"):
        registry.get("incident-response")
    assert "incident-response" not in [t.template_id for t in registry.list()]
    (folder / "incident-response.json").write_text(json.dumps(user_template("incident-response")))
    registry.reload()
    assert registry.get("incident-response").name == "User incident-response"


# -- live reload and broken files -------------------------------------------------------------------------
def test_a_running_registry_sees_user_files_added_changed_and_removed(tmp_path: Path) -> None:
    folder = tmp_path / "live"
    registry = TemplateRegistry(folder)
    assert "extra" not in [t.template_id for t in registry.list()]
    folder.mkdir()
    (folder / "extra.json").write_text(json.dumps(user_template("extra")))
    assert registry.get("extra").name == "User extra"
    (folder / "extra.json").write_text(json.dumps(user_template("extra", name="Renamed and longer")))
    assert registry.get("extra").name == "Renamed and longer"
    (folder / "extra.json").unlink()
    with pytest.raises(WorkflowNotFoundError):
        registry.get("extra")


def test_broken_files_are_listed_with_file_line_and_error(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "bad.yaml").write_text("name: Bad\nsteps:\n  - step_id: a\n    action: [unclosed\n")
    (folder / "bad-json.json").write_text('{\n  "name": "x",\n}\n')
    (folder / "holes.json").write_text(json.dumps(user_template("holes", parameters=[])))
    broken = {b["file"]: b for b in TemplateRegistry(folder).broken()}
    assert set(broken) == {"bad.yaml", "bad-json.json", "holes.json"}
    yaml_error = broken["bad.yaml"]
    assert yaml_error["line"] == 5 and yaml_error["error_code"] == "ORCH_3006"
    assert (
        "bad.yaml" in yaml_error["error"]
        and "line 5" in yaml_error["error"]
        and "opened at line 4" in yaml_error["error"]
    )
    assert broken["bad-json.json"]["line"] == 3 and "line 3, column 1" in broken["bad-json.json"]["error"]
    assert broken["holes.json"]["line"] is None and "undeclared parameter" in broken["holes.json"]["error"]


def test_the_cli_draws_parallel_steps_side_by_side() -> None:
    from orchestrator.cli.render import stages
    from orchestrator.models.workflow import WorkflowStep

    def s(step_id: str, *deps: str) -> WorkflowStep:
        return WorkflowStep(step_id=step_id, action="cmdb.ping", depends_on=list(deps))

    assert stages([s("a"), s("b", "a"), s("c", "b")]) == "a -> b -> c"
    assert stages([s("a"), s("b", "a"), s("c", "a"), s("d", "b", "c")]) == "a -> [b | c] -> d"
    assert stages([s("x"), s("y"), s("z", "x", "y"), s("w", "x")]) == "[x | y] -> [z | w]"


def test_the_readme_template_example_plans() -> None:
    """README's template with every field is a real template: it loads and plans."""
    from pathlib import Path

    import yaml

    from orchestrator.models import WorkflowDefinition
    from orchestrator.workflows import plan

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("stale-server-review.yaml`):\n\n```yaml\n", 1)[1].split("```", 1)[0]
    definition = WorkflowDefinition.model_validate(yaml.safe_load(block))
    planned = plan(definition, {"days": 30})
    assert [s.step_id for s in planned.steps] == ["find-stale", "check-discovery", "report"]
    assert planned.parameters == {"ci_class": "server", "days": 30}
