"""Role policies: the compatible role table's checked examples, access levels, the loader and the principals table."""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import policies
from orchestrator.catalog import ACTIONS
from orchestrator.models.common import Access, PrincipalRole
from policies import (
    DEFAULT_POLICIES,
    DEFAULT_TABLE,
    DOMAINS,
    PRINCIPAL_OPERATIONS,
    Decision,
    PolicyConfigError,
    PolicyTable,
    RolePolicy,
    decide,
    load_policy_file,
    operations_for,
    principal_may,
    save_policy_file,
)


def _policy(role_id: str = "custom", **fields: object) -> RolePolicy:
    base: dict[str, object] = {"role_id": role_id, "name": role_id.title(), "permissions": ["read", "write"]}
    base.update(fields)
    return RolePolicy.model_validate(base)


CMDB_WILDCARD = PolicyTable([_policy("cmdb-admin", allowed_domains=["cmdb"], allowed_actions=["cmdb.*"])])
NO_DOMAINS = PolicyTable([_policy("roamer", allowed_actions=["cmdb.query", "asset.query"], permissions=["read"])])


@pytest.mark.parametrize(
    ("role", "action", "domain", "access", "table", "allowed"),
    [
        # seed-behaviour 1.11 "Checked examples": allowed
        ("itom-auditor", "audit.report", "asset", "read", None, True),
        ("itom-documentator", "documentation.generate", "cmdb", "write", None, True),
        ("cmdb-agent", "cmdb.query", None, "read", None, True),
        ("cmdb-admin", "cmdb.delete", "cmdb", "write", CMDB_WILDCARD, True),
        # ... denied
        ("itom-auditor", "cmdb.update", "cmdb", "write", None, False),
        ("cmdb-agent", "cmdb.query", "discovery", "read", None, False),
        ("discovery-agent", "discovery.scan", "asset", "execute", None, False),
        # ... an empty domain list is not domain-restricted
        ("roamer", "cmdb.query", "discovery", "read", NO_DOMAINS, True),
        # the orchestrator's '*' short-circuits domain and action checks
        ("orchestrator", "anything.at_all", "nowhere", "execute", None, True),
        ("nobody", "cmdb.query", "cmdb", "read", None, False),
        # new in this project
        ("cmdb-agent", "cmdb.ping", "cmdb", "read", None, True),
        ("csa-agent", "csa.run_remediation", "csa", "write", None, True),
        ("csa-agent", "csa.list_catalog", None, "read", None, True),
    ],
)
def test_checked_examples(
    role: str, action: str, domain: str | None, access: str, table: PolicyTable | None, allowed: bool
) -> None:
    decision = decide(role, action, domain, access, table)
    assert decision.allowed is allowed, decision.reason
    assert (decision.role, decision.action) == (role, action)


def test_default_table_has_the_seven_roles() -> None:
    assert set(DEFAULT_TABLE.role_ids) == {
        "orchestrator",
        "cmdb-agent",
        "discovery-agent",
        "asset-agent",
        "csa-agent",
        "itom-auditor",
        "itom-documentator",
    }
    assert len(DEFAULT_POLICIES) == len(DEFAULT_TABLE.role_ids)  # no role defined twice
    assert {spec.domain for spec in ACTIONS.values()} <= set(DOMAINS)  # every action's domain can be allowed


def test_every_catalog_action_is_allowed_for_its_own_agent() -> None:
    denied = {
        name: d.reason
        for name, spec in ACTIONS.items()
        if not (d := decide(spec.agent_id, name, spec.domain, spec.access)).allowed
    }
    assert denied == {}


def test_csa_agent_has_read_write_only() -> None:
    csa = DEFAULT_TABLE.get("csa-agent")
    assert csa is not None
    assert set(csa.allowed_actions) == {
        "csa.list_catalog",
        "csa.plan_fulfillment",
        "csa.run_remediation",
        "csa.create_request",
        "csa.request_status",
    }
    denied = decide("csa-agent", "csa.run_remediation", "csa", "execute")
    assert not denied.allowed
    assert "'execute'" in denied.reason
    assert not decide("csa-agent", "cmdb.query", "cmdb", "read").allowed


def test_read_only_role_cannot_write_even_when_the_action_is_listed() -> None:
    table = PolicyTable(
        [_policy("cmdb-reader", allowed_domains=["cmdb"], allowed_actions=["cmdb.update"], permissions=["read"])]
    )
    decision = decide("cmdb-reader", "cmdb.update", "cmdb", "write", table)
    assert not decision.allowed
    assert decision.reason == "role 'cmdb-reader' lacks 'write' permission needed by 'cmdb.update' (has: read)"
    assert decide("cmdb-reader", "cmdb.update", "cmdb", "read", table).allowed


def test_auditor_is_denied_write_and_admin_implies_every_access() -> None:
    assert not decide("itom-auditor", "audit.report", None, "write").allowed
    admin_only = PolicyTable([_policy("root", allowed_actions=["*"], permissions=["admin"])])
    assert all(
        decide("root", "cmdb.delete", "cmdb", level, admin_only).allowed for level in ("read", "write", "execute")
    )
    read_star = PolicyTable([_policy("peek", allowed_actions=["*"], permissions=["read"])])
    assert decide("peek", "cmdb.delete", "cmdb", "read", read_star).allowed
    assert not decide("peek", "cmdb.delete", "cmdb", "write", read_star).allowed


@pytest.mark.parametrize(
    ("action", "allowed"),
    [("cmdb.delete", True), ("cmdb.ci.retire", True), ("cmdb", False), ("cmdbx.query", False), ("asset.query", False)],
)
def test_wildcard_prefix_matches_dotted_prefixes_only(action: str, allowed: bool) -> None:
    assert decide("cmdb-admin", action, None, "write", CMDB_WILDCARD).allowed is allowed


def test_nested_prefix_pattern() -> None:
    table = PolicyTable([_policy("ci", allowed_actions=["cmdb.ci.*"])])
    assert decide("ci", "cmdb.ci.update", None, "write", table).allowed
    assert not decide("ci", "cmdb.update", None, "write", table).allowed


@pytest.mark.parametrize(
    ("args", "expected_reason"),
    [
        (("ghost", "cmdb.query", None, "read"), "role 'ghost' has no policy (known roles: orchestrator, cmdb-agent"),
        (
            ("cmdb-agent", "cmdb.query", "asset", "read"),
            "role 'cmdb-agent' may not work in domain 'asset' (allowed: cmdb)",
        ),
        (("cmdb-agent", "asset.query", "cmdb", "read"), "role 'cmdb-agent' is not allowed action 'asset.query'"),
        (("cmdb-agent", "cmdb.query", "cmdb", "sudo"), "unknown access level 'sudo' for 'cmdb.query'"),
        (("cmdb-agent", "cmdb.query", "cmdb", "read"), "role 'cmdb-agent' may read 'cmdb.query'"),
        (("orchestrator", "cmdb.query", None, "read"), "role 'orchestrator' may read every action ('*')"),
    ],
)
def test_reasons_name_what_failed(args: tuple[str, str, str | None, str], expected_reason: str) -> None:
    assert decide(*args).reason.startswith(expected_reason)


def test_enum_members_count_as_their_values() -> None:
    decision = decide("itom-auditor", "audit.report", "cmdb", Access.WRITE)
    assert "'write'" in decision.reason
    assert "Access" not in decision.reason
    assert decide(PrincipalRole.ADMIN, "cmdb.query", None, Access.READ).reason.startswith("role 'admin' has no policy")


def test_an_empty_table_denies_everything() -> None:
    assert not decide("orchestrator", "cmdb.query", None, "read", PolicyTable([])).allowed


def test_empty_domain_string_counts_as_no_domain() -> None:
    assert decide("cmdb-agent", "cmdb.query", "", "read").allowed


@given(
    role=st.text(),
    action=st.text(),
    domain=st.one_of(st.none(), st.text()),
    access=st.one_of(st.sampled_from(["read", "write", "execute", "admin"]), st.text()),
)
def test_decide_never_raises(role: str, action: str, domain: str | None, access: str) -> None:
    decision = decide(role, action, domain, access)
    assert isinstance(decision, Decision)
    assert decision.reason
    if role not in DEFAULT_TABLE:
        assert not decision.allowed


@given(st.one_of(st.none(), st.integers(), st.lists(st.text()), st.binary()))
def test_decide_never_raises_on_wrong_types(junk: object) -> None:
    decision = decide(junk, junk, junk, junk)  # type: ignore[arg-type]
    assert decision.allowed is False


def test_decision_speed() -> None:
    """Prints the figure the design promises (< 5 us); no wall-clock assert (machines vary)."""
    cases = [
        ("cmdb-agent", "cmdb.query", "cmdb", "read"),
        ("itom-auditor", "cmdb.update", "cmdb", "write"),
        ("orchestrator", "csa.run_remediation", None, "write"),
        ("csa-agent", "csa.create_request", "csa", "write"),
    ]
    rounds = 50_000
    uncached = DEFAULT_TABLE._judge  # the compiled path without the memo
    figures = {}
    for label, judge in (("memoised", DEFAULT_TABLE.decide), ("compiled", uncached)):
        started = time.perf_counter()
        for index in range(rounds):
            judge(*cases[index & 3])
        figures[label] = (time.perf_counter() - started) / rounds * 1e6
    print(f"policy decision: {figures['memoised']:.2f} us memoised, {figures['compiled']:.2f} us compiled")
    assert all(figure > 0 for figure in figures.values())


# --- loader -------------------------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_load_json_overrides_defaults_by_role_id(tmp_path: Path) -> None:
    tightened = {
        "role_id": "cmdb-agent",
        "name": "CMDB",
        "allowed_domains": ["cmdb"],
        "allowed_actions": ["cmdb.query"],
        "permissions": ["read"],
    }
    added = {"role_id": "task-manager", "name": "Task manager", "allowed_actions": ["csa.*"], "permissions": ["read"]}
    table = load_policy_file(_write(tmp_path, "roles.json", {"policies": [tightened, added]}))
    assert len(table) == 8
    assert not decide("cmdb-agent", "cmdb.update", "cmdb", "write", table).allowed
    assert decide("task-manager", "csa.request_status", "csa", "read", table).allowed
    assert decide("asset-agent", "asset.query", "asset", "read", table).allowed  # untouched default kept


def test_load_yaml_bare_list_and_replace_defaults(tmp_path: Path) -> None:
    listed = tmp_path / "roles.yaml"
    listed.write_text("- role_id: viewer\n  name: Viewer\n  allowed_actions: ['cmdb.query']\n  permissions: [read]\n")
    assert decide("viewer", "cmdb.query", None, "read", load_policy_file(listed)).allowed
    replacing = tmp_path / "only.yml"
    replacing.write_text(
        "replace_defaults: true\n"
        "policies:\n- {role_id: solo, name: Solo, allowed_domains: [cmdb], permissions: [read]}\n"
    )
    table = load_policy_file(replacing)
    assert table.role_ids == ("solo",)
    assert not decide("orchestrator", "cmdb.query", None, "read", table).allowed


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    for name in ("out.json", "out.yaml"):
        save_policy_file(DEFAULT_POLICIES, tmp_path / name)
        table = load_policy_file(tmp_path / name, base=PolicyTable([]))
        assert table.policies == DEFAULT_POLICIES


_GOOD = {"role_id": "ok", "name": "Ok", "allowed_actions": ["cmdb.query"], "permissions": ["read"]}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [_GOOD, {**_GOOD, "name": "Again"}],
            "entry 1 (role_id 'ok'): role_id: duplicate role_id, first defined at entry 0",
        ),
        ([_GOOD, {**_GOOD, "role_id": "mute", "permissions": []}], "entry 1 (role_id 'mute'): permissions: must list"),
        (
            [{**_GOOD, "allowed_actions": []}],
            "entry 0 (role_id 'ok'): allowed_domains / allowed_actions: a policy must list at least one",
        ),
        ([{**_GOOD, "allowed_actions": ["cmdb query"]}], "entry 0 (role_id 'ok'): allowed_actions: malformed action"),
        ([{**_GOOD, "allowed_actions": ["cmdb.*.x"]}], "malformed action pattern 'cmdb.*.x'"),
        ([{**_GOOD, "allowed_actions": ["query"]}], "malformed action pattern 'query'"),
        ([{**_GOOD, "allowed_actions": ["CMDB.Query"]}], "malformed action pattern 'CMDB.Query'"),
        ([{**_GOOD, "permissions": ["sudo"]}], "entry 0 (role_id 'ok'): permissions.0: Input should be"),
        ([{**_GOOD, "role_id": "  "}], "entry 0 (role_id '  '): role_id: must not be blank"),
        ([{key: v for key, v in _GOOD.items() if key != "role_id"}], "entry 0 (no role_id): role_id: Field required"),
        ([{**_GOOD, "allowed_action": ["x.y"]}], "allowed_action: Extra inputs are not permitted"),
        (["cmdb-agent"], "entry 0 (no role_id): expected a mapping of policy fields, got str"),
    ],
)
def test_loader_errors_name_the_entry_and_field(tmp_path: Path, entries: list[object], message: str) -> None:
    path = _write(tmp_path, "bad.json", {"policies": entries})
    with pytest.raises(PolicyConfigError) as caught:
        load_policy_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected {'policies': [...]} or a list of policies, got empty"),
        ("roles: []", "unknown top-level keys ['roles']"),
        ("replace_defaults: true", "missing 'policies'"),
        ("policies: {a: 1}", "'policies' must be a list, got dict"),
        ("policies: [\n  - {", "cannot be read as YAML"),
        ("replace_defaults: maybe\npolicies: []", "'replace_defaults' must be true or false"),
    ],
)
def test_loader_rejects_bad_documents(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text(text)
    with pytest.raises(PolicyConfigError, match=r"roles\.yaml") as caught:
        load_policy_file(path)
    assert message in str(caught.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(PolicyConfigError, match=re.escape(f"policy file not found: {missing}")):
        load_policy_file(missing)


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "roles.json"
    path.write_text("{nope")
    with pytest.raises(PolicyConfigError, match=r"roles\.json: cannot be read as JSON"):
        load_policy_file(path)


def test_table_rejects_duplicate_roles() -> None:
    with pytest.raises(PolicyConfigError, match="duplicate role_id 'x'"):
        PolicyTable([_policy("x", allowed_actions=["a.b"]), _policy("x", allowed_actions=["a.c"])])


# --- principals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        ("viewer", {"read", "audit.read"}),
        (
            "operator",
            {"read", "audit.read", "start", "cancel", "resume", "message.send", "dlq.read", "dlq.redrive"}
            | {"schedule.manage", "agent.status"},
        ),
        ("admin", set(PRINCIPAL_OPERATIONS)),
        ("root", set()),
        ("", set()),
    ],
)
def test_principals_table(role: str, granted: set[str]) -> None:
    assert {op for op in PRINCIPAL_OPERATIONS if principal_may(role, op)} == granted
    assert operations_for(role) == granted
    assert not principal_may(role, "format.disk")


def test_principal_operations_are_the_documented_eleven() -> None:
    documented = {
        "read",
        "start",
        "cancel",
        "resume",
        "audit.read",
        "audit.export",
        "audit.verify",
        "dlq.read",
        "dlq.redrive",
        "message.send",
        "schedule.manage",
        "agent.status",
    }
    assert documented == PRINCIPAL_OPERATIONS


# --- purity -------------------------------------------------------------------------------------------------


def test_policies_package_imports_nothing_of_the_project() -> None:
    offenders = []
    for source in Path(policies.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            offenders += [f"{source.name}: {n}" for n in names if n.split(".")[0] in {"orchestrator", "workers"}]
    assert offenders == []
