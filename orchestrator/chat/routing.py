"""Free-text chat routing: message text and hints -> ``RoutingDecision`` or ``Clarification``. Pure, no I/O.

Why pure: routing runs on every chat turn and in the ``route_task`` tool, and is tested as a table. The
precedence is the compatible one (explicit target > rules > domain > capability > session continuity > ORCH_2001),
with these refinements (README: Compatibility):

- keywords match whole words (precompiled, case-insensitive, with plain English inflections), so "ire" no
  longer matches "required" or "fire", and "ci" does not depend on a trailing space;
- a domain hint settles a tie in its own favour instead of asking (it still counts as a match for its
  domain's rules);
- clarification options name their domain and agent, so an answer settles the route
  (``resolve_clarification``) instead of re-routing the same ambiguous words.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.catalog import AGENTS, DOMAINS, LEGACY_ACTIONS
from orchestrator.errors import AgentUnavailableError, AmbiguousRouteError, InputInvalidError, NoRouteFoundError
from orchestrator.models.chat import Clarification, ClarificationOption, RouteRequest, RoutingDecision, RoutingMethod


class AgentInfo(Protocol):
    """What routing needs to know about an agent (``catalog.AgentSpec`` satisfies it)."""

    @property
    def agent_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def actions(self) -> Sequence[str]: ...


_SUFFIX = r"(?:s|es|ed|ing)?"


def compile_keywords(keywords: Sequence[str]) -> re.Pattern[str]:
    """One regex for a keyword list: whole words, any whitespace between words, an optional inflection."""
    alternatives = sorted({r"\s+".join(map(re.escape, k.split())) for k in keywords if k.strip()}, key=len)
    body = "|".join(reversed(alternatives)) or r"(?!x)x"
    return re.compile(rf"(?<!\w)(?:{body}){_SUFFIX}(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class RoutingRule:
    """Keywords (or the request's domain hint) that send a message to a domain, or to ``target_agent``."""

    rule_id: str
    priority: int
    domain: str
    keywords: tuple[str, ...]
    target_agent: str | None = None
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", compile_keywords(self.keywords))

    def find(self, text: str) -> str | None:
        """The first keyword found in ``text`` (as written there), or None."""
        found = self.pattern.search(text)
        return found.group(0) if found else None


def sort_rules(rules: Sequence[RoutingRule]) -> tuple[RoutingRule, ...]:
    """Ascending priority; stable, so list order breaks ties."""
    return tuple(sorted(rules, key=lambda rule: rule.priority))


def rule(rule_id: str, priority: int, domain: str, keywords: str, target_agent: str | None = None) -> RoutingRule:
    """A rule from a comma-separated keyword list (the form the tables below are written in)."""
    return RoutingRule(rule_id, priority, domain, tuple(k.strip() for k in keywords.split(",")), target_agent)


# The default rules (the compatible set), with whole-word matching and a few plural/spelling variants.
DEFAULT_RULES: tuple[RoutingRule, ...] = sort_rules(
    (
        rule("cmdb-ci-compliance", 5, "cmdb", "compliance check on, check compliance for, check compliance of"),
        rule(
            "cmdb-domain",
            10,
            "cmdb",
            "cmdb, configuration item, ci, relationship, server, database, application, infrastructure, duplicate, "
            "stale, health, dashboard, metrics, operational, impact, dependency, dependencies, ire, reconcile, "
            "remediate, history of, change history, get history, ci history, ci type, ci class, data quality, eol, "
            "end of life, lifecycle, criticality, production, missing serial, without serial, missing owner",
        ),
        rule("discovery-domain", 10, "discovery", "discovery, scan, scanning, scanned, discover, ip range"),
        rule(
            "asset-domain",
            10,
            "asset",
            "asset, asset inventory, asset management, hardware asset, hardware inventory, hardware list, "
            "software asset, software inventory, license inventory, license management, license compliance, "
            "licence inventory, licence management, licence compliance",
        ),
        rule(
            "csa-domain",
            9,
            "csa",
            "request, service catalog, catalog item, catalog request, create a request, create request, new request, "
            "submit a request, submit request, open a request, open request, raise a request, raise request, "
            "service request, catalog, remediation, workflow, fulfillment workflow, approval workflow, "
            "request approval, approval process, flowchart, flow chart, pipeline flow, request flow, "
            "workflow diagram, process diagram, show me how, how does the, explain the process",
        ),
        rule("audit-domain", 10, "audit", "audit, compliance, drift, policy, policies"),
        rule(
            "documentation-domain",
            10,
            "documentation",
            "document, documentation, docs, runbook, knowledge base, architecture diagram",
        ),
        rule(
            "cmdb-search-fallback",
            50,
            "cmdb",
            "search, find, look up, query, show me, list, count, how many, which ones, which of, filter, filter to, "
            "sort by, group by, only show, just show, now show, also show, missing, without, no owner, no serial, "
            "no os, production only, dev only, staging only, more details, tell me more, what about",
        ),
    )
)

# The per-pair questions the chat UI shows; each option maps straight to a domain.
_PAIR_TEMPLATES: dict[frozenset[str], tuple[str, tuple[tuple[str, str], ...]]] = {
    frozenset({"cmdb", "csa"}): (
        "Are you looking to query the CMDB, or create a service request?",
        (("Search/manage CMDB CIs", "cmdb"), ("Create a service request", "csa")),
    ),
    frozenset({"cmdb", "asset"}): (
        "Are you asking about CMDB configuration items, or hardware/software assets?",
        (("Configuration items (CMDB)", "cmdb"), ("Hardware/software assets", "asset")),
    ),
    frozenset({"cmdb", "discovery"}): (
        "Would you like to query CMDB records, or check discovery scan status?",
        (("Query CMDB records", "cmdb"), ("Check discovery status", "discovery")),
    ),
    frozenset({"cmdb", "audit"}): (
        "Are you looking for CMDB data quality details (duplicates, stale CIs, health metrics), "
        "or a governance compliance audit report?",
        (("CMDB health metrics / data quality (CMDB agent)", "cmdb"), ("Compliance audit report (Auditor)", "audit")),
    ),
    frozenset({"csa", "audit"}): (
        "Are you creating a service request, or running an audit/compliance check?",
        (("Create service request", "csa"), ("Run audit or compliance check", "audit")),
    ),
    frozenset({"csa", "documentation"}): (
        "Are you creating a service request, or looking for documentation/runbooks?",
        (("Create service request", "csa"), ("Find documentation or runbook", "documentation")),
    ),
    frozenset({"audit", "documentation"}): (
        "Are you running a compliance audit, or generating documentation?",
        (("Run compliance audit", "audit"), ("Generate documentation", "documentation")),
    ),
}
_GENERIC_QUESTION = "I can help with several ITOM domains. Which area are you asking about?"
_GENERIC_OPTIONS: tuple[tuple[str, str], ...] = (
    ("CMDB / Configuration Items", "cmdb"),
    ("Discovery", "discovery"),
    ("Assets", "asset"),
    ("Service Requests", "csa"),
    ("Audit / Compliance", "audit"),
    ("Documentation / Runbooks", "documentation"),
)
_GENERIC_SHOWN_ALWAYS = 5  # five domains always; "Documentation" only when it is one of the tied domains

# The chat UI's short ids and the domain names, accepted wherever an agent id is.
AGENT_ALIASES: dict[str, str] = {
    "cmdb": "cmdb-agent",
    "discovery": "discovery-agent",
    "asset": "asset-agent",
    "assets": "asset-agent",
    "csa": "csa-agent",
    "auditor": "itom-auditor",
    "audit": "itom-auditor",
    "documentator": "itom-documentator",
    "documentation": "itom-documentator",
    "docs": "itom-documentator",
}
_NO_TARGET = frozenset({"", "auto"})  # the chat UI's virtual "auto" agent means: route for me

# routing-rules.json capability names -> the domain whose agents have them.
CAPABILITY_DOMAINS: dict[str, str] = {
    "cmdb_read": "cmdb",
    "cmdb_write": "cmdb",
    "discovery_scan": "discovery",
    "asset_read": "asset",
    "asset_write": "asset",
    "service_catalog_read": "csa",
    "service_catalog_write": "csa",
    "audit_read": "audit",
    "documentation_read": "documentation",
}


def resolve_agent_id(name: str | None, agents: Mapping[str, AgentInfo]) -> str | None:
    """A registered agent id for an id, a chat UI short id or a domain name (any case); None if none."""
    key = (name or "").strip()
    if key in agents:
        return key
    key = key.casefold()
    if key in agents:
        return key
    alias = AGENT_ALIASES.get(key)
    if alias in agents:
        return alias
    by_domain = _agents_in_domain(key, agents, ())
    return by_domain[0] if by_domain else None


def _agents_in_domain(domain: str, agents: Mapping[str, AgentInfo], unavailable: Collection[str]) -> list[str]:
    return sorted(a for a, info in agents.items() if info.domain == domain and a not in unavailable)


def _decision(
    agents: Mapping[str, AgentInfo],
    agent_id: str,
    method: RoutingMethod,
    reason: str,
    *,
    candidates: int = 1,
    rule_id: str | None = None,
) -> RoutingDecision:
    info = agents[agent_id]
    return RoutingDecision(
        agent_id=agent_id,
        agent_name=info.name,
        domain=info.domain,
        method=method,
        reason=reason,
        candidates_evaluated=candidates,
        rule_id=rule_id,
    )


@dataclass(frozen=True)
class _Match:
    rule: RoutingRule
    agent_id: str
    why: str
    candidates: int


def _match_rules(
    text: str,
    hint: str | None,
    rules: Sequence[RoutingRule],
    agents: Mapping[str, AgentInfo],
    unavailable: Collection[str],
) -> list[_Match]:
    """Every rule that matches (by keyword or by the domain hint) and has an agent to send to, in rule order."""
    found: list[_Match] = []
    for each in rules:
        keyword = each.find(text)
        if keyword is None and each.domain != hint:
            continue
        why = f"keyword '{keyword}'" if keyword is not None else f"domain hint '{hint}'"
        if each.target_agent is not None:
            if each.target_agent in agents and each.target_agent not in unavailable:
                found.append(_Match(each, each.target_agent, why, 1))
            continue
        in_domain = _agents_in_domain(each.domain, agents, unavailable)
        if in_domain:
            found.append(_Match(each, in_domain[0], why, len(in_domain)))
    return found


def build_clarification(
    domains: Sequence[str], agents: Mapping[str, AgentInfo] | None = None, unavailable: Collection[str] = ()
) -> Clarification:
    """The compatible question for a tied pair of domains, or the generic one; options keep only routable domains."""
    agents = AGENTS if agents is None else agents
    template = _PAIR_TEMPLATES.get(frozenset(domains)) if len(domains) == 2 else None
    if template is not None:
        question, choices = template
    else:
        question = _GENERIC_QUESTION
        choices = tuple(c for i, c in enumerate(_GENERIC_OPTIONS) if i < _GENERIC_SHOWN_ALWAYS or c[1] in domains)
    options = []
    for label, domain in choices:
        in_domain = _agents_in_domain(domain, agents, unavailable)
        if in_domain:
            options.append(ClarificationOption(label=label, domain=domain, agent_id=in_domain[0]))
    return Clarification(question=question, options=options, domains=list(domains))


def _validated_hint(domain: str | None, agents: Mapping[str, AgentInfo]) -> str | None:
    hint = (domain or "").strip().casefold()
    if not hint:
        return None
    valid = sorted(set(DOMAINS) | {info.domain for info in agents.values()})
    if hint not in valid:
        raise InputInvalidError(f"Invalid domain '{domain}'. Valid domains: {', '.join(valid)}", {"domain": domain})
    return hint


def _has_capability(info: AgentInfo, capability: str) -> bool:
    action = LEGACY_ACTIONS.get(capability, capability)
    return action in info.actions or CAPABILITY_DOMAINS.get(capability) == info.domain


def _route_explicit(target: str, agents: Mapping[str, AgentInfo], unavailable: Collection[str]) -> RoutingDecision:
    agent_id = resolve_agent_id(target, agents)
    if agent_id is None:
        raise NoRouteFoundError(
            f"No route found: target agent '{target}' is not registered. Use one of: {', '.join(sorted(agents))} "
            f"(short ids accepted: {', '.join(sorted(k for k, v in AGENT_ALIASES.items() if v in agents))})",
            {"target_agent": target, "valid_agents": sorted(agents)},
        )
    if agent_id in unavailable:
        raise AgentUnavailableError(
            f"Agent '{agent_id}' is unavailable; retry later or pick another agent", {"agent_id": agent_id}
        )
    return _decision(agents, agent_id, "explicit", f"Explicitly targeted agent '{agent_id}'.")


def route(
    request: RouteRequest,
    agents: Mapping[str, AgentInfo] | None = None,
    *,
    rules: Sequence[RoutingRule] = DEFAULT_RULES,
    unavailable: Collection[str] = (),
) -> RoutingDecision | Clarification:
    """Pick the agent for a message, or ask which domain was meant (only when ``request.check_ambiguity``).

    ``rules`` are tried in ascending priority, list order within one priority; ``unavailable`` lists agent
    ids that must not receive work.
    Raises NoRouteFoundError (ORCH_2001), AgentUnavailableError (ORCH_2002) or InputInvalidError (bad domain).
    """
    agents = AGENTS if agents is None else agents
    target = (request.target_agent or "").strip()
    if target.casefold() not in _NO_TARGET:
        return _route_explicit(target, agents, unavailable)
    hint = _validated_hint(request.domain, agents)

    matches = _match_rules(request.text, hint, rules, agents, unavailable)
    if matches:
        best = min(m.rule.priority for m in matches)
        tied = [m for m in matches if m.rule.priority == best]
        domains = list(dict.fromkeys(m.rule.domain for m in tied))
        if len(domains) > 1 and request.check_ambiguity and hint is None:
            return build_clarification(domains, agents, unavailable)
        win = next((m for m in tied if m.rule.domain == hint), tied[0])
        reason = f"Routing rule '{win.rule.rule_id}' matched {win.why} -> agent '{win.agent_id}'."
        return _decision(agents, win.agent_id, "rule", reason, candidates=win.candidates, rule_id=win.rule.rule_id)

    if hint is not None and (in_domain := _agents_in_domain(hint, agents, unavailable)):
        reason = f"Domain routing: domain '{hint}' -> agent '{in_domain[0]}'."
        return _decision(agents, in_domain[0], "domain", reason, candidates=len(in_domain))

    capability = (request.required_capability or "").strip()
    if capability:
        able = sorted(a for a, info in agents.items() if a not in unavailable and _has_capability(info, capability))
        if able:
            reason = f"Capability routing: '{capability}' -> agent '{able[0]}'."
            return _decision(agents, able[0], "capability", reason, candidates=len(able))

    last = resolve_agent_id(request.last_agent_id, agents) if request.last_agent_id else None
    if last is not None and last not in unavailable:
        reason = f"Session continuity: re-routing to last agent '{last}' from session context."
        return _decision(agents, last, "session", reason)

    raise NoRouteFoundError(
        "No route found: the message names no target agent, domain or capability, and its keywords did not match "
        f"any routing rule. Name an agent (target_agent: {', '.join(sorted(agents))}) or a domain "
        f"(domain: {', '.join(sorted({i.domain for i in agents.values()}))}).",
        {"domain": hint, "required_capability": capability or None},
    )


def match_option(options: Sequence[ClarificationOption], answer: str) -> ClarificationOption | None:
    """The option an answer picks: its label, domain, agent id, a short agent id, or its 1-based number."""
    said = answer.strip().casefold()
    if not said:
        return None
    agent = AGENT_ALIASES.get(said, said)
    for option in options:
        if said in (option.label.casefold(), option.domain) or agent == option.agent_id:
            return option
    if re.fullmatch(r"[0-9]{1,3}", said) and 1 <= int(said) <= len(options):
        return options[int(said) - 1]
    return None


def resolve_clarification(
    clarification: Clarification,
    answer: str,
    agents: Mapping[str, AgentInfo] | None = None,
    *,
    rules: Sequence[RoutingRule] = DEFAULT_RULES,
    unavailable: Collection[str] = (),
) -> RoutingDecision:
    """Settle a clarification with the user's answer: an option, or free text naming one option's domain.

    Raises AmbiguousRouteError (ORCH_2005) when the answer picks none of the options.
    """
    agents = AGENTS if agents is None else agents
    option = match_option(clarification.options, answer)
    if option is None:
        offered = {o.domain: o for o in clarification.options}
        said = [m.rule.domain for m in _match_rules(answer, None, rules, agents, unavailable)]
        option = next((offered[d] for d in said if d in offered), None)
    if option is None:
        raise AmbiguousRouteError(
            f"The answer '{answer.strip()}' does not pick one of the options; answer with one of: "
            f"{', '.join(clarification.labels)}",
            {"options": clarification.labels},
        )
    if option.agent_id not in agents:
        raise NoRouteFoundError(
            f"No route found: agent '{option.agent_id}' is no longer registered; send the message again",
            {"agent_id": option.agent_id},
        )
    if option.agent_id in unavailable:
        raise AgentUnavailableError(
            f"Agent '{option.agent_id}' is unavailable; retry later", {"agent_id": option.agent_id}
        )
    reason = f"User clarified: chose '{option.label}' ({option.domain}) -> agent '{option.agent_id}'."
    return _decision(agents, option.agent_id, "explicit", reason)
