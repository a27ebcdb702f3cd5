"""Free-text routing: the verified examples, the precedence, and the refinements (README: Compatibility)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.catalog import AGENTS, DOMAINS
from orchestrator.chat.routing import (
    AGENT_ALIASES,
    DEFAULT_RULES,
    build_clarification,
    match_option,
    resolve_clarification,
    route,
    rule,
    sort_rules,
)
from orchestrator.errors import (
    AgentUnavailableError,
    AmbiguousRouteError,
    InputInvalidError,
    NoRouteFoundError,
    OrchestratorError,
)
from orchestrator.models.chat import ChatRequest, Clarification, RouteRequest, RoutingDecision

CMDB_AUDIT_Q = (
    "Are you looking for CMDB data quality details (duplicates, stale CIs, health metrics), "
    "or a governance compliance audit report?"
)
GENERIC_Q = "I can help with several ITOM domains. Which area are you asking about?"
GENERIC_LABELS = ["CMDB / Configuration Items", "Discovery", "Assets", "Service Requests", "Audit / Compliance"]


def decision(request: RouteRequest, **kwargs: Any) -> RoutingDecision:
    result = route(request, **kwargs)
    assert isinstance(result, RoutingDecision), result
    return result


def clarification(request: RouteRequest) -> Clarification:
    result = route(request)
    assert isinstance(result, Clarification), result
    return result


# ---- verified examples -------------------------------------------------------------------------------------

AMBIGUOUS = [
    ("audit the servers", {"audit", "cmdb"}, CMDB_AUDIT_Q),
    (
        "discovery scan of servers",
        {"discovery", "cmdb"},
        "Would you like to query CMDB records, or check discovery scan status?",
    ),
    (
        "asset inventory of servers",
        {"asset", "cmdb"},
        "Are you asking about CMDB configuration items, or hardware/software assets?",
    ),
    ("scan my network for policy drift", {"discovery", "audit"}, GENERIC_Q),
]


@pytest.mark.parametrize(("text", "domains", "question"), AMBIGUOUS)
def test_ambiguous_messages_ask_the_compatible_question(text: str, domains: set[str], question: str) -> None:
    asked = clarification(RouteRequest(text=text))
    assert set(asked.domains) == domains
    assert asked.question == question
    for option in asked.options:
        assert AGENTS[option.agent_id].domain == option.domain
    assert domains <= {o.domain for o in asked.options}


def test_generic_question_offers_five_options() -> None:
    asked = clarification(RouteRequest(text="scan my network for policy drift"))
    assert asked.labels == GENERIC_LABELS


def test_generic_question_adds_documentation_only_when_it_is_tied() -> None:
    asked = build_clarification(["discovery", "documentation"])
    assert asked.labels == [*GENERIC_LABELS, "Documentation / Runbooks"]
    assert asked.options[-1].agent_id == "itom-documentator"


ROUTED = [
    ("show me server requests", "csa-agent", "csa-domain"),  # csa (9) beats cmdb (10): no clarification
    ("check compliance of web01", "cmdb-agent", "cmdb-ci-compliance"),  # 5 beats audit's "compliance" (10)
    ("how many linux servers in production", "cmdb-agent", "cmdb-domain"),
    ("list everything", "cmdb-agent", "cmdb-search-fallback"),
    ("Which CIs are missing an owner?", "cmdb-agent", "cmdb-domain"),
    ("show the IRE rules for linux", "cmdb-agent", "cmdb-domain"),
    ("run a discovery on 10.0.0.0/24", "discovery-agent", "discovery-domain"),
    ("show the license inventory", "asset-agent", "asset-domain"),
    ("write a runbook for web01", "itom-documentator", "documentation-domain"),
    ("we need the documentation", "itom-documentator", "documentation-domain"),
    ("detect drift", "itom-auditor", "audit-domain"),
]


@pytest.mark.parametrize(("text", "agent_id", "rule_id"), ROUTED)
def test_clear_messages_route_by_rule(text: str, agent_id: str, rule_id: str) -> None:
    got = decision(RouteRequest(text=text))
    assert (got.agent_id, got.method, got.rule_id) == (agent_id, "rule", rule_id)
    assert got.agent_name == AGENTS[agent_id].name
    assert got.domain == AGENTS[agent_id].domain


def test_license_compliance_is_an_asset_audit_tie_in_chat() -> None:
    assert set(clarification(RouteRequest(text="license compliance for office")).domains) == {"asset", "audit"}
    got = decision(RouteRequest(text="license compliance for office", check_ambiguity=False))
    assert got.agent_id == "asset-agent"  # asset-domain is listed before audit-domain


# ---- substring defects, fixed ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["a new laptop is required", "the fire alarm", "please acquire a desk", "Cisco"])
def test_keywords_match_whole_words_only(text: str) -> None:
    with pytest.raises(NoRouteFoundError) as caught:
        route(RouteRequest(text=text))
    assert caught.value.code == "ORCH_2001"


def test_required_laptop_follows_the_session_not_cmdb() -> None:
    got = decision(RouteRequest(text="a new laptop is required", last_agent_id="csa-agent"))
    assert (got.agent_id, got.method) == ("csa-agent", "session")


@pytest.mark.parametrize("text", ["CI\tdetails", "ci", "CIs without owner", "ci-history web01"])
def test_ci_keyword_does_not_depend_on_spacing(text: str) -> None:
    assert decision(RouteRequest(text=text)).agent_id == "cmdb-agent"


def test_multi_word_keywords_tolerate_any_whitespace() -> None:
    got = decision(RouteRequest(text="open the  knowledge\nbase"))
    assert got.agent_id == "itom-documentator"


# ---- precedence ------------------------------------------------------------------------------------------------


def test_explicit_target_wins_and_skips_ambiguity() -> None:
    got = decision(RouteRequest(text="audit the servers", target_agent="discovery-agent", last_agent_id="csa-agent"))
    assert (got.agent_id, got.method, got.rule_id) == ("discovery-agent", "explicit", None)


@pytest.mark.parametrize(("short", "agent_id"), sorted(AGENT_ALIASES.items()))
def test_chat_ui_short_ids_are_accepted_as_targets(short: str, agent_id: str) -> None:
    assert decision(RouteRequest(text="hi", target_agent=short)).agent_id == agent_id
    assert decision(RouteRequest(text="hi", target_agent=short.upper())).agent_id == agent_id


@pytest.mark.parametrize("target", ["auto", "", "  "])
def test_auto_or_blank_target_means_route_for_me(target: str) -> None:
    assert decision(RouteRequest(text="show me server requests", target_agent=target)).method == "rule"


@pytest.mark.parametrize("target", ["orchestrator", "task-manager-agent", "nobody"])
def test_unknown_explicit_target_names_the_valid_agents(target: str) -> None:
    with pytest.raises(NoRouteFoundError) as caught:
        route(RouteRequest(text="audit the servers", target_agent=target))
    assert caught.value.code == "ORCH_2001"
    assert all(agent_id in caught.value.message for agent_id in AGENTS)
    assert target in caught.value.message


def test_rules_beat_domain_capability_and_session() -> None:
    request = RouteRequest(text="detect drift", required_capability="cmdb.query", last_agent_id="csa-agent")
    assert decision(request).agent_id == "itom-auditor"


def test_domain_routing_when_no_rule_matches() -> None:
    got = decision(RouteRequest(text="hello", domain="asset"), rules=())
    assert (got.agent_id, got.method) == ("asset-agent", "domain")


@pytest.mark.parametrize(
    ("capability", "agent_id"),
    [
        ("cmdb.query", "cmdb-agent"),
        ("run_discovery_scan", "discovery-agent"),
        ("audit_read", "itom-auditor"),
        ("service_catalog_write", "csa-agent"),
    ],
)
def test_capability_routing(capability: str, agent_id: str) -> None:
    got = decision(RouteRequest(text="hello", required_capability=capability, last_agent_id="asset-agent"))
    assert (got.agent_id, got.method) == (agent_id, "capability")


def test_unknown_capability_falls_through_to_session() -> None:
    got = decision(RouteRequest(text="hello", required_capability="teleport", last_agent_id="asset"))
    assert (got.agent_id, got.method) == ("asset-agent", "session")


def test_session_with_unknown_last_agent_is_no_route() -> None:
    with pytest.raises(NoRouteFoundError, match="No route found"):
        route(RouteRequest(text="and the next one?", last_agent_id="gone-agent"))


def test_equal_priority_rules_keep_list_order_without_ambiguity_check() -> None:
    got = decision(RouteRequest(text="audit the servers", check_ambiguity=False))
    assert (got.agent_id, got.rule_id) == ("cmdb-agent", "cmdb-domain")
    custom = sort_rules([rule("b", 3, "asset", "thing"), rule("a", 3, "audit", "thing"), rule("z", 1, "csa", "x")])
    assert [r.rule_id for r in custom] == ["z", "b", "a"]
    assert decision(RouteRequest(text="thing", check_ambiguity=False), rules=custom).rule_id == "b"


def test_rule_with_target_agent_routes_there() -> None:
    rules = (rule("vip", 1, "cmdb", "vip", target_agent="itom-auditor"),)
    got = decision(RouteRequest(text="VIP stuff"), rules=rules)
    assert (got.agent_id, got.rule_id) == ("itom-auditor", "vip")


# ---- domain hints ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "domain", "agent_id"),
    [
        ("Show me servers", "asset", "asset-agent"),
        ("audit the servers", "audit", "itom-auditor"),
        ("audit the servers", "CMDB", "cmdb-agent"),
        ("scan my network for policy drift", "discovery", "discovery-agent"),
    ],
)
def test_domain_hint_suppresses_ambiguity_and_wins_the_tie(text: str, domain: str, agent_id: str) -> None:
    got = decision(RouteRequest(text=text, domain=domain))
    assert (got.agent_id, got.method) == (agent_id, "rule")


def test_stronger_keyword_still_beats_a_domain_hint() -> None:
    assert decision(RouteRequest(text="create a request for a laptop", domain="asset")).agent_id == "csa-agent"


def test_invalid_domain_hint_lists_the_valid_ones() -> None:
    with pytest.raises(InputInvalidError) as caught:
        route(RouteRequest(text="hi", domain="weather"))
    assert caught.value.http_status == 400
    assert all(domain in caught.value.message for domain in DOMAINS)


# ---- availability ---------------------------------------------------------------------------------------------


def test_unavailable_explicit_target_is_orch_2002() -> None:
    with pytest.raises(AgentUnavailableError) as caught:
        route(RouteRequest(text="x", target_agent="csa"), unavailable={"csa-agent"})
    assert caught.value.code == "ORCH_2002"


def test_rules_skip_unavailable_agents() -> None:
    got = decision(RouteRequest(text="audit the servers"), unavailable={"cmdb-agent"})
    assert got.agent_id == "itom-auditor"


def test_custom_agent_mapping_is_used() -> None:
    agents = {"cmdb-agent": AGENTS["cmdb-agent"]}
    assert decision(RouteRequest(text="audit the servers"), agents=agents).agent_id == "cmdb-agent"
    with pytest.raises(NoRouteFoundError):
        route(RouteRequest(text="x", target_agent="csa"), agents=agents)


# ---- clarification answers settle the route --------------------------------------------------------------------

ALL_CLARIFICATIONS = [
    build_clarification(pair)
    for pair in (
        ["cmdb", "csa"],
        ["cmdb", "asset"],
        ["cmdb", "discovery"],
        ["cmdb", "audit"],
        ["csa", "audit"],
        ["csa", "documentation"],
        ["audit", "documentation"],
        ["discovery", "audit"],
    )
]


@pytest.mark.parametrize("asked", ALL_CLARIFICATIONS, ids=lambda c: "+".join(c.domains))
def test_every_option_settles_the_route(asked: Clarification) -> None:
    assert len(asked.options) >= 2
    for number, option in enumerate(asked.options, start=1):
        for answer in (option.label, f"  {option.label.upper()} ", option.domain, option.agent_id, str(number)):
            got = resolve_clarification(asked, answer)
            assert (got.agent_id, got.method) == (option.agent_id, "explicit")
            assert option.label in got.reason


def test_answer_by_chat_ui_short_id() -> None:
    asked = clarification(RouteRequest(text="audit the servers"))
    assert resolve_clarification(asked, "auditor").agent_id == "itom-auditor"


def test_free_text_answer_naming_one_offered_domain() -> None:
    asked = clarification(RouteRequest(text="audit the servers"))
    assert resolve_clarification(asked, "the compliance one please").agent_id == "itom-auditor"


@pytest.mark.parametrize("answer", ["", "   ", "bananas", "7", "create a request"])
def test_answer_that_picks_no_option_is_orch_2005(answer: str) -> None:
    asked = clarification(RouteRequest(text="audit the servers"))
    assert match_option(asked.options, answer) is None
    with pytest.raises(AmbiguousRouteError) as caught:
        resolve_clarification(asked, answer)
    assert caught.value.code == "ORCH_2005"
    assert all(label in caught.value.message for label in asked.labels)


def test_answer_for_an_agent_that_went_away() -> None:
    asked = clarification(RouteRequest(text="audit the servers"))
    with pytest.raises(NoRouteFoundError):
        resolve_clarification(asked, "auditor", agents={"cmdb-agent": AGENTS["cmdb-agent"]})
    with pytest.raises(AgentUnavailableError):
        resolve_clarification(asked, "auditor", unavailable={"itom-auditor"})


# ---- request constructors ---------------------------------------------------------------------------------------


def test_route_request_for_chat_carries_session_and_hints() -> None:
    chat = ChatRequest(message=" audit the servers ", domain="audit", context={"last_agent_id": "csa", "x": 1})
    request = RouteRequest.for_chat(chat)
    assert (request.text, request.domain, request.last_agent_id, request.check_ambiguity) == (
        "audit the servers",
        "audit",
        "csa",
        True,
    )


def test_route_request_for_task_never_asks() -> None:
    request = RouteRequest.for_task("audit the servers", "nightly", domain=None)
    assert request.check_ambiguity is False
    assert decision(request).agent_id == "cmdb-agent"


# ---- properties and speed ------------------------------------------------------------------------------------------

_names = st.sampled_from([*AGENTS, *AGENT_ALIASES, "auto", "nobody", ""])
_words = st.sampled_from(["audit", "server", "scan", "request", "runbook", "asset", "ire", "required", "CI", "the"])


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(st.text(max_size=200), st.lists(_words, max_size=8).map(" ".join)),
    domain=st.one_of(st.none(), st.sampled_from([*DOMAINS, "Asset", ""]), st.text(max_size=10)),
    target=st.one_of(st.none(), _names, st.text(max_size=10)),
    capability=st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["cmdb.query", "audit_read"])),
    last=st.one_of(st.none(), _names),
    check=st.booleans(),
)
def test_route_only_raises_orchestrator_errors(
    text: str, domain: str | None, target: str | None, capability: str | None, last: str | None, check: bool
) -> None:
    request = RouteRequest(
        text=text,
        domain=domain,
        target_agent=target,
        required_capability=capability,
        last_agent_id=last,
        check_ambiguity=check,
    )
    try:
        result = route(request)
    except OrchestratorError:
        return
    if isinstance(result, Clarification):
        assert check and len(set(result.domains)) >= 2
        assert len({o.domain for o in result.options}) == len(result.options) >= 2
    else:
        assert result.agent_id in AGENTS


@settings(max_examples=200, deadline=None)
@given(answer=st.one_of(st.text(max_size=40), st.sampled_from(["1", "²", "٣", "0", "99", "Discovery", "docs"])))
def test_any_answer_settles_or_is_orch_2005(answer: str) -> None:
    asked = build_clarification(["discovery", "audit"])
    try:
        got = resolve_clarification(asked, answer)
    except AmbiguousRouteError:
        return
    assert got.agent_id in {o.agent_id for o in asked.options}


def test_unsorted_rules_still_use_the_best_priority() -> None:
    rules = [rule("late", 50, "cmdb", "thing"), rule("early", 1, "asset", "thing")]
    assert decision(RouteRequest(text="thing"), rules=rules).rule_id == "early"


def test_routing_is_fast() -> None:
    requests = [RouteRequest(text=t) for t, *_ in AMBIGUOUS + ROUTED]
    started = time.perf_counter()
    for _ in range(100):
        for request in requests:
            route(request)
    per_call = (time.perf_counter() - started) / (100 * len(requests))
    assert per_call < 0.001, f"{per_call * 1e6:.0f} us per route"


def test_default_rules_are_sorted_and_precompiled() -> None:
    assert [r.priority for r in DEFAULT_RULES] == sorted(r.priority for r in DEFAULT_RULES)
    assert all(r.pattern.search("") is None for r in DEFAULT_RULES)
