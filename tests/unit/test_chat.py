"""The chat contracts (models), choosing an action for a routed message, rendering results, and the Redis-backed
clarification tokens (on fakeredis)."""

from __future__ import annotations

import re
import threading
from typing import Any

import fakeredis
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from orchestrator import keys
from orchestrator.catalog import ACTIONS, AGENTS, validate_params
from orchestrator.chat.clarify import ClarificationStore
from orchestrator.chat.routing import resolve_clarification, route
from orchestrator.chat.turn import (
    MAX_TABLE_ROWS,
    choose_action,
    expand_slash_command,
    identifier,
    markdown_table,
    render_result,
    suggest_actions,
)
from orchestrator.errors import (
    AgentNotFoundError,
    StateCorruptedError,
    StateReadError,
    StateWriteError,
    TaskInvalidError,
)
from orchestrator.models.chat import (
    ChatRequest,
    ChatResponse,
    ChatResponseBody,
    Clarification,
    ClarificationResponse,
    ClarifyRequest,
    RouteRequest,
    RoutingSummary,
)

# ---- contracts -------------------------------------------------------------------------------------------------


def test_chat_request_strips_the_message() -> None:
    request = ChatRequest(message="  audit the servers \n")
    assert request.message == "audit the servers"
    assert (request.context, request.target_agent, request.domain, request.session_id) == ({}, None, None, None)


@pytest.mark.parametrize("payload", [{}, {"message": ""}, {"message": "  \t\n"}, {"message": "x" * 10_001}])
def test_chat_request_rejects_missing_blank_or_huge_messages(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ChatRequest.model_validate(payload)


def test_chat_request_accepts_10000_chars_after_stripping() -> None:
    assert len(ChatRequest(message=" " + "x" * 10_000 + " ").message) == 10_000


def test_chat_response_has_the_fields_the_strict_client_checks() -> None:
    body = ChatResponseBody(
        task_id="chat-0123456789ab", result={"agent_response": "hi"}, routing=RoutingSummary(method="rule", reason="r")
    )
    response = ChatResponse(
        agent_id="cmdb-agent",
        agent_name="CMDB Agent",
        domain="cmdb",
        response=body,
        routing_method="rule",
        session_id="s1",
    )
    data = response.model_dump()
    assert {
        "message_id",
        "status",
        "agent_id",
        "agent_name",
        "domain",
        "response",
        "routing_method",
        "timestamp",
    } <= set(data)
    assert re.fullmatch(r"chat-[0-9a-f]{12}", data["message_id"])
    assert data["status"] == "success"
    assert data["response"] == {
        "task_id": "chat-0123456789ab",
        "result": {"agent_response": "hi"},
        "routing": {"method": "rule", "reason": "r"},
    }
    assert (data["session_id"], data["run_id"]) == ("s1", None)


def test_chat_response_rejects_a_malformed_message_id_or_method() -> None:
    body = ChatResponseBody(task_id="t", routing=RoutingSummary(method="rule", reason="r"))
    with pytest.raises(ValidationError):
        ChatResponse(
            message_id="msg-1", agent_id="a", agent_name="A", domain="cmdb", response=body, routing_method="rule"
        )
    with pytest.raises(ValidationError):
        RoutingSummary(method="guess", reason="r")  # type: ignore[arg-type]


def test_clarification_response_contract() -> None:
    response = ClarificationResponse(question="Which?", options=["A", "B"], pending_message_token="a" * 32)
    data = response.model_dump()
    assert data["response_type"] == "clarification"
    assert data["options"] == ["A", "B"]
    assert data["suggested_actions"] is None
    with pytest.raises(ValidationError):
        ClarificationResponse(question="Which?", options=[], pending_message_token="not-a-token")


def test_clarify_request_keeps_blank_answers_for_the_service_to_reject_with_400() -> None:
    request = ClarifyRequest(pending_message_token="whatever", clarification_answer="   ")
    assert request.clarification_answer == ""


# ---- choose_action ---------------------------------------------------------------------------------------------

CHOICES = [
    ("cmdb-agent", "what is the impact of web01?", "cmdb.map_relationships", {"ci_id": "web01"}),
    ("cmdb-agent", "/ci-impact web01.example.com", "cmdb.map_relationships", {"ci_id": "web01.example.com"}),
    (
        "cmdb-agent",
        "dependencies of 0123456789abcdef0123456789ABCDEF depth 2",
        "cmdb.dependency_tree",
        {"ci_id": "0123456789abcdef0123456789abcdef", "depth": 2},
    ),
    (
        "cmdb-agent",
        "how many linux servers in production?",
        "cmdb.count",
        {"ci_class": "linux_server", "environment": "Production"},
    ),
    (
        "cmdb-agent",
        "details of db-prod-01 please",
        "cmdb.query",
        {"name": "db-prod-01", "ci_class": None, "environment": None},
    ),
    ("cmdb-agent", "find duplicates", "cmdb.duplicates", {"match_field": "name"}),
    ("cmdb-agent", "duplicate serial numbers", "cmdb.duplicates", {"match_field": "serial_number"}),
    ("cmdb-agent", "stale databases older than 6 months", "cmdb.stale", {"ci_class": "database", "days": 180}),
    ("cmdb-agent", "end of life servers", "cmdb.stale", {"ci_class": "server", "days": 365}),
    ("cmdb-agent", "cmdb health of servers", "cmdb.health_audit", {"ci_class": "server", "stale_days": 90}),
    ("cmdb-agent", "history of web-prod-01", "cmdb.history", {"ci_id": "web-prod-01"}),
    ("cmdb-agent", "IRE rules for cmdb_ci_linux_server", "cmdb.ire_rules", {"ci_class": "cmdb_ci_linux_server"}),
    ("cmdb-agent", "impact", "cmdb.health_audit", {}),  # no CI named: no relationship walk
    ("cmdb-agent", "hello", "cmdb.health_audit", {}),
    (
        "discovery-agent",
        "scan 10.1.0.0/24 incremental",
        "discovery.scan",
        {"ip_range": "10.1.0.0/24", "scan_type": "incremental"},
    ),
    ("discovery-agent", "run a discovery", "discovery.scan", {"ip_range": "10.0.0.0/16"}),
    ("discovery-agent", "discovery status", "discovery.status", {}),
    ("discovery-agent", "list active schedules", "discovery.schedule", {"active_only": True}),
    ("discovery-agent", "hello", "discovery.status", {}),
    ("asset-agent", "license compliance for Microsoft Office", "asset.license_check", {"software": "Microsoft Office"}),
    ("asset-agent", "assets expiring in 3 months", "asset.lifecycle", {"horizon_days": 90}),
    ("asset-agent", "list laptops assigned to jdoe", "asset.query", {"asset_type": "hardware", "assigned_to": "jdoe"}),
    ("asset-agent", "software assets", "asset.query", {"asset_type": "software"}),
    (
        "csa-agent",
        "create a request for a new laptop",
        "csa.create_request",
        {"description": "create a request for a new laptop"},
    ),
    ("csa-agent", "status of req0010023", "csa.request_status", {"request_id": "REQ0010023"}),
    ("csa-agent", "open a remediation request, high risk", "csa.run_remediation", {"risk_level": "high"}),
    ("csa-agent", "show me the hardware catalog", "csa.list_catalog", {"category": "hardware"}),
    ("itom-auditor", "scan my network for policy drift", "audit.drift", {}),
    ("itom-auditor", "which policy rules apply", "audit.policy", {}),
    ("itom-auditor", "audit the discovery results", "audit.compliance", {"scope": "discovery"}),
    ("itom-auditor", "audit report", "audit.report", {}),
    ("itom-documentator", "write a runbook for web01", "documentation.runbook", {"ci_id": "web01"}),
    ("itom-documentator", "architecture diagram of app-7", "documentation.diagram", {"ci_id": "app-7"}),
    ("itom-documentator", "generate a health report", "documentation.generate", {"report_type": "health"}),
    ("itom-documentator", "docs please", "documentation.generate", {"report_type": "summary"}),
]


@pytest.mark.parametrize(("agent_id", "message", "action", "expected"), CHOICES)
def test_choose_action_keyword_cascade(agent_id: str, message: str, action: str, expected: dict[str, Any]) -> None:
    chosen, params = choose_action(agent_id, message, {})
    assert chosen == action
    assert ACTIONS[chosen].agent_id == agent_id
    assert {k: params[k] for k in expected} == expected
    assert validate_params(ACTIONS[chosen].params, params, where="test") == params


@settings(max_examples=150, deadline=None)
@given(agent_id=st.sampled_from(sorted(AGENTS)), message=st.text(max_size=300))
def test_choose_action_always_yields_a_valid_action_of_that_agent(agent_id: str, message: str) -> None:
    action, params = choose_action(agent_id, message)
    assert ACTIONS[action].agent_id == agent_id
    assert validate_params(ACTIONS[action].params, params, where="test") == params


@pytest.mark.parametrize("hint", ["csa.create_request", "create_service_request"])
def test_tool_hint_names_a_catalog_action_or_its_mcp_tool(hint: str) -> None:
    context = {"tool_hint": hint, "tool_args": {"description": "A laptop", "catalog_item": "laptop"}}
    assert choose_action("csa-agent", "whatever", context) == (
        "csa.create_request",
        {"description": "A laptop", "catalog_item": "laptop"},
    )


def test_tool_args_in_legacy_names_are_honoured() -> None:
    context = {
        "tool_hint": "find_stale_configuration_items",
        "tool_args": {"ci_type": "linux_server", "days": 60, "limit": 10},
    }
    action, params = choose_action("cmdb-agent", "stale servers", context)
    assert action == "cmdb.stale"
    wanted = {"ci_class": "linux_server", "days": 60, "limit": 10}
    assert {k: params[k] for k in wanted} == wanted
    action, params = choose_action(
        "cmdb-agent", "impact", {"tool_hint": "analyze_configuration_item_impact", "tool_args": {"ci_sys_id": "web-01"}}
    )
    assert (action, params["ci_id"]) == ("cmdb.map_relationships", "web-01")
    action, params = choose_action("cmdb-agent", "search", {"tool_args": {"query": "nameLIKEdb-prod", "ci_type": "db"}})
    assert (action, params["name"], params["ci_class"]) == ("cmdb.query", "db-prod", "db")


def test_unknown_tool_args_are_refused_or_passed_to_a_bridged_tool() -> None:
    context = {"tool_hint": "find_duplicate_configuration_items", "tool_args": {"match_on": "serial"}}
    with pytest.raises(TaskInvalidError) as caught:
        choose_action("cmdb-agent", "duplicates", context)
    assert caught.value.code == "ORCH_7003"
    assert "'match_on'" in caught.value.message and "ci_type" in caught.value.message
    action, params = choose_action("cmdb-agent", "duplicates", context, bridged=True)
    assert (action, params["tool_args"]) == ("cmdb.duplicates", {"match_on": "serial"})


def test_tool_hint_legacy_name_and_message_fill_gaps() -> None:
    action, params = choose_action(
        "cmdb-agent", "impact of web01", {"tool_hint": "map_relationships", "tool_args": {"depth": "5"}}
    )
    assert (action, params) == ("cmdb.map_relationships", {"ci_id": "web01", "depth": 5})


@pytest.mark.parametrize("hint", ["query_cmdb", "discovery.scan", 42, None])
def test_tool_hint_not_for_this_agent_falls_back_to_the_cascade(hint: Any) -> None:
    assert choose_action("cmdb-agent", "how many servers", {"tool_hint": hint})[0] == "cmdb.count"


def test_tool_args_that_do_not_validate_are_orch_7003() -> None:
    with pytest.raises(TaskInvalidError, match="depth") as caught:
        choose_action(
            "cmdb-agent", "impact of web01", {"tool_hint": "cmdb.map_relationships", "tool_args": {"depth": "deep"}}
        )
    assert caught.value.code == "ORCH_7003"
    with pytest.raises(TaskInvalidError, match="ci_id"):
        choose_action("cmdb-agent", "no ci here", {"tool_hint": "cmdb.map_relationships"})


def test_choose_action_for_an_unknown_agent() -> None:
    with pytest.raises(AgentNotFoundError):
        choose_action("task-manager-agent", "hi")


@pytest.mark.parametrize(
    ("message", "expanded"),
    [
        ("/ci-impact web01", "impact of web01"),
        ("/cmdb-stale", "stale"),
        ("  plain text ", "plain text"),
        ("/etc/hosts is broken", "/etc/hosts is broken"),
    ],
)
def test_slash_commands(message: str, expanded: str) -> None:
    assert expand_slash_command(message) == expanded


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("impact of the server web-01 on payroll", "web-01"),
        ("runbook for 'db 7'", "db 7"),
        ("impact of the servers", None),
        ("nothing here", None),
        ("history of a b c d e f", "b c d e"),
        ("Analyze the impact analysis of changes to CI: web-prod-01", "web-prod-01"),
        ("Show the relationships for configuration item: db-prod-03.", "db-prod-03"),
    ],
)
def test_identifier(text: str, found: str | None) -> None:
    assert identifier(text) == found


# ---- rendering -------------------------------------------------------------------------------------------------


def test_render_lists_of_dicts_as_tables_capped_at_15_rows() -> None:
    rows = [{"name": f"srv{i}", "ip": f"10.0.0.{i}", "note": "a|b", "tags": ["x"]} for i in range(20)]
    markdown, _ = render_result("cmdb.query", {"count": 20, "items": rows, "filters": {"ci_class": "server"}})
    assert markdown.startswith("### Search configuration items")
    assert "- **Count:** 20" in markdown
    assert "| Name | Ip | Note |" in markdown
    table_rows = [ln for ln in markdown.splitlines() if ln.startswith("| srv")]
    assert len(table_rows) == MAX_TABLE_ROWS
    assert "a\\|b" in table_rows[0]
    assert "_Showing 15 of 20 rows._" in markdown
    assert "Ci class: server" in markdown


def test_render_is_generic_for_any_json_dict() -> None:
    result = {
        "summary": "All good.",
        "ok": True,
        "ratio": 0.25,
        "none": None,
        "empty": [],
        "names": ["a", "b"],
        "by_class": {"server": {"count": 3}, "database": {"count": 1}},
        "deep": {"a": {"b": [1, 2]}, "c": 1},
    }
    markdown, pills = render_result("made.up", result)
    assert markdown.startswith("### made.up\n\nAll good.")
    for fragment in (
        "- **Ok:** yes",
        "- **Ratio:** 0.25",
        "- **Empty:** none",
        "- **Names:** a, b",
        "| Name | Count |",
        "| server | 3 |",
    ):
        assert fragment in markdown
    assert "None" not in markdown
    assert pills == []


def test_render_empty_result() -> None:
    assert "_No data returned._" in render_result("cmdb.ping", {})[0]


def test_agent_provided_text_and_pills_are_kept() -> None:
    given_pills = [{"label": "L", "message": "m"}, {"bad": 1}] + [{"label": f"{i}", "message": "x"} for i in range(5)]
    markdown, pills = render_result("cmdb.query", {"agent_response": "**hi**", "suggested_actions": given_pills})
    assert markdown == "**hi**"
    assert pills[0] == {"label": "L", "message": "m"}
    assert len(pills) == 3


def test_markdown_table_without_scalar_columns() -> None:
    assert "| Nested |" in markdown_table([{"nested": {"a": 1}}])


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_suggestions_are_at_most_three_and_lead_elsewhere(action: str) -> None:
    result = {"ci_id": "web01", "items": [{"name": "web01"}], "request_id": "REQ0001"}
    pills = suggest_actions(action, result)
    assert len(pills) <= 3
    for pill in pills:
        assert set(pill) == {"label", "message", "agent_target"}
        decided = route(RouteRequest(text=pill["message"], target_agent=pill["agent_target"]))
        assert not isinstance(decided, Clarification)
        next_action, _ = choose_action(decided.agent_id, pill["message"])
        assert next_action != action


def test_cmdb_results_suggest_the_impact_of_the_first_ci() -> None:
    pills = suggest_actions("cmdb.query", {"items": [{"name": "web01"}]})
    assert pills[0] == {"label": "Impact of web01", "message": "impact of web01", "agent_target": "cmdb-agent"}
    walked = suggest_actions("cmdb.map_relationships", {"ci_id": "web01", "impacted": [{"name": "db01"}]})
    assert walked[0]["message"] == "impact of db01"


def test_new_requests_suggest_checking_their_status() -> None:
    pills = suggest_actions("csa.create_request", {"request_id": "REQ0042"})
    assert pills[0] == {"label": "Status of REQ0042", "message": "status of REQ0042", "agent_target": "csa-agent"}


# ---- clarification tokens ---------------------------------------------------------------------------------------


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def asked() -> Clarification:
    result = route(RouteRequest(text="audit the servers"))
    assert isinstance(result, Clarification)
    return result


def test_put_stores_an_expiring_token(client: fakeredis.FakeRedis, asked: Clarification) -> None:
    store = ClarificationStore(client, ttl_seconds=600)
    token = store.put("audit the servers", "s1", asked, context={"last_agent_id": "csa-agent"})
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert 0 < client.ttl(keys.clarification_key(token)) <= 600
    pending = store.peek(token)
    assert pending is not None
    assert (pending.token, pending.message, pending.session_id) == (token, "audit the servers", "s1")
    assert pending.context == {"last_agent_id": "csa-agent"}
    assert pending.clarification == asked


def test_take_consumes_the_token_once(client: fakeredis.FakeRedis, asked: Clarification) -> None:
    store = ClarificationStore(client)
    token = store.put("audit the servers", None, asked)
    assert store.peek(token) is not None
    assert store.peek(token) is not None  # peeking leaves it in place
    taken = store.take(token)
    assert taken is not None
    assert taken.clarification.options == asked.options
    assert store.take(token) is None
    assert store.peek(token) is None
    assert client.exists(keys.clarification_key(token)) == 0


def test_concurrent_takes_hand_the_token_to_exactly_one(client: fakeredis.FakeRedis, asked: Clarification) -> None:
    store = ClarificationStore(client)
    token = store.put("audit the servers", None, asked)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(store.take(token))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sum(result is not None for result in got) == 1
    assert len(got) == 8


@pytest.mark.parametrize("token", ["", "nope", "A" * 32, "0" * 31, "0" * 33, "../" + "0" * 29])
def test_malformed_or_unknown_tokens_are_none(client: fakeredis.FakeRedis, token: str) -> None:
    store = ClarificationStore(client)
    assert store.take(token) is None
    assert store.peek(token) is None
    assert store.take("0" * 32) is None


@pytest.mark.parametrize("ttl", [1, 900, 86_400])
def test_every_token_gets_the_configured_ttl(client: fakeredis.FakeRedis, asked: Clarification, ttl: int) -> None:
    token = ClarificationStore(client, ttl_seconds=ttl).put("audit the servers", None, asked)
    assert ttl - 1 <= client.ttl(keys.clarification_key(token)) <= ttl


def test_corrupt_entry_is_reported(client: fakeredis.FakeRedis) -> None:
    token = "f" * 32
    client.set(keys.clarification_key(token), "{not json")
    with pytest.raises(StateCorruptedError) as caught:
        ClarificationStore(client).take(token)
    assert caught.value.code == "ORCH_5003"


class _DownRedis:
    def __getattr__(self, name: str) -> Any:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise redis.ConnectionError("connection refused")

        return fail


def test_redis_failures_become_state_errors(asked: Clarification) -> None:
    store = ClarificationStore(_DownRedis())
    with pytest.raises(StateWriteError):
        store.put("m", None, asked)
    with pytest.raises(StateReadError):
        store.take("0" * 32)
    with pytest.raises(StateReadError):
        store.peek("0" * 32)


def test_ttl_must_be_positive(client: fakeredis.FakeRedis) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        ClarificationStore(client, ttl_seconds=0)


# ---- the whole chat flow, pure parts end to end -------------------------------------------------------------------


@pytest.mark.parametrize("pick", [0, 1])
def test_ambiguous_message_is_settled_by_its_answer(client: fakeredis.FakeRedis, pick: int) -> None:
    request = ChatRequest(message="audit the servers", session_id="s1")
    asked = route(RouteRequest.for_chat(request))
    assert isinstance(asked, Clarification)
    store = ClarificationStore(client)
    token = store.put(request.message, request.session_id, asked, context=request.context)
    response = ClarificationResponse(
        question=asked.question, options=asked.labels, pending_message_token=token, session_id=request.session_id
    )

    answer = ClarifyRequest(
        pending_message_token=response.pending_message_token, clarification_answer=response.options[pick]
    )
    pending = store.take(answer.pending_message_token)
    assert pending is not None
    settled = resolve_clarification(pending.clarification, answer.clarification_answer)
    assert settled.agent_id == asked.options[pick].agent_id
    action, _params = choose_action(settled.agent_id, pending.message, pending.context)
    assert ACTIONS[action].agent_id == settled.agent_id
    markdown, pills = render_result(action, {"items": [{"name": "web01", "status": "ok"}]})
    assert markdown.startswith("### ")
    assert len(pills) <= 3
