"""The chat routing rules file (``ORCH_DATA_DIR/routing-rules.json``), validated and re-read when it changes.

Why: the file *is* the rules. The packaged default holds ``routing.DEFAULT_RULES``, and an operator's copy
under the data directory replaces them without a restart. Files in the 1.1.0 format load as well:
``routing_rules`` entries are read (``id``, ``priority``, ``domain``, ``keywords``, ``target_agent``,
``enabled``) and its other sections (``domains``, ``capability_mappings``, ...) are ignored.

A rule that cannot work is refused with ORCH_2003 naming it (unknown domain or agent, no keywords, a
priority that is not an integer, a duplicate id); a file that is not a rules file at all is ORCH_2004.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.catalog import AGENTS, DOMAINS
from orchestrator.chat.routing import RoutingRule, sort_rules
from orchestrator.errors import RoutingRuleInvalidError, RoutingRulesLoadError
from orchestrator.state.watched import WatchedJsonFile

FILE_NAME = "routing-rules.json"


def _rule(raw: Any, index: int, source: str) -> RoutingRule | None:
    """One rule, or None when disabled; ORCH_2003 names the rule and what is wrong with it."""
    rule_id = raw.get("id") if isinstance(raw, dict) else None
    where = f"{source}: routing_rules[{index}]" + (f" ('{rule_id}')" if isinstance(rule_id, str) else "")

    def bad(problem: str) -> RoutingRuleInvalidError:
        return RoutingRuleInvalidError(f"{where}: {problem}", {"index": index, "rule_id": rule_id})

    if not isinstance(raw, dict):
        raise bad("must be an object")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise bad("needs a non-empty string 'id'")
    if raw.get("enabled", True) is False:
        return None
    priority = raw.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise bad(f"'priority' must be an integer, got {priority!r}")
    domain = raw.get("domain")
    if domain not in DOMAINS:
        raise bad(f"'domain' must be one of {', '.join(DOMAINS)}, got {domain!r}")
    keywords = raw.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
        raise bad("'keywords' must be a list of non-empty strings")
    if not keywords:
        raise bad("has no keywords, so it could only match on a domain hint; add keywords or disable it")
    target = raw.get("target_agent")
    if target is not None and target not in AGENTS:
        raise bad(f"'target_agent' {target!r} is not an agent; use one of: {', '.join(AGENTS)}")
    return RoutingRule(rule_id.strip(), priority, domain, tuple(k.strip() for k in keywords), target)


def parse_rules(data: Any, source: str) -> tuple[RoutingRule, ...]:
    """The enabled rules of a rules document, sorted by priority (stable)."""
    if not isinstance(data, dict) or not isinstance(data.get("routing_rules"), list):
        raise RoutingRulesLoadError(f"{source}: expected an object with a 'routing_rules' list", {"source": source})
    rules: list[RoutingRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["routing_rules"]):
        rule = _rule(raw, index, source)
        rule_id = str(raw.get("id")) if isinstance(raw, dict) else ""
        if rule_id in seen:
            raise RoutingRuleInvalidError(
                f"{source}: routing_rules[{index}] ('{rule_id}') repeats an id used earlier; ids must be unique",
                {"index": index, "rule_id": rule_id},
            )
        seen.add(rule_id)
        if rule is not None:
            rules.append(rule)
    if not rules:
        raise RoutingRulesLoadError(f"{source}: every rule is disabled; enable at least one", {"source": source})
    return sort_rules(rules)


class RoutingRulesFile:
    """The rules in force: the data directory's file when there is one, else the packaged default."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.file = WatchedJsonFile(self.path, FILE_NAME, parse_rules, load_error=RoutingRulesLoadError)

    def rules(self) -> tuple[RoutingRule, ...]:
        return self.file.get()
