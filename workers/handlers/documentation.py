"""itom-documentator built-ins: reports from earlier steps, runbooks, knowledge articles, Mermaid diagrams."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from workers.context import ActionContext
from workers.handlers import markdown as md
from workers.handlers.common import (
    CI_CLASSES,
    Handler,
    earlier,
    exactly_once,
    required_text,
    resolve_ci,
    text_param,
)
from workers.handlers.graph import CIGraph
from workers.sample import SampleInstance
from workers.sample.store import record_id_for

REPORT_TITLES: dict[str, str] = {
    "summary": "Operations Summary",
    "health": "CMDB Health Report",
    "audit": "Discovery Audit Report",
    "lifecycle": "Asset Lifecycle Report",
}
_PROCEDURES: dict[str, list[str]] = {
    "server": [
        "Check reachability (ping, SSH/RDP) and the monitoring dashboard.",
        "Check CPU, memory and disk; free space or resize if a threshold is breached.",
        "Drain the node from its load balancer pool before any restart.",
        "Restart the failed service; reboot only if the service does not recover.",
        "Return the node to the pool and watch error rates for 15 minutes.",
    ],
    "cmdb_ci_database": [
        "Check the listener and replication lag.",
        "Check tablespace / disk usage and locks.",
        "Fail over to the standby if the primary does not recover within 10 minutes.",
    ],
    "cmdb_ci_netgear": [
        "Check interface errors and CPU on the device.",
        "Verify the redundant peer carries traffic.",
        "Roll back the last configuration change if the fault followed it.",
    ],
    "cmdb_ci_storage": [
        "Check array health and controller status.",
        "Check capacity and latency per volume.",
        "Open a vendor case for hardware faults.",
    ],
    "other": [
        "Check the component's health endpoint and recent deployments.",
        "Roll back the last release if the fault followed it.",
        "Engage the owning support group.",
    ],
}


def _overview(instance: SampleInstance) -> dict[str, Any]:
    cis = instance.cis()
    return {
        "summary": f"No earlier steps in this run; overview of the instance's {len(cis)} live CIs.",
        "total_cis": len(cis),
        "by_class": dict(Counter(c["sys_class_name"] for c in cis).most_common()),
        "by_environment": dict(Counter(c["environment"] for c in cis).most_common()),
    }


@exactly_once
def generate(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    report_type = text_param(ctx, "report_type") or "summary"
    title = text_param(ctx, "title") or REPORT_TITLES.get(report_type, "Operations Report")
    results = earlier(ctx)
    sections = [
        (f"Step {step}" + (f" ({r['action']})" if isinstance(r.get("action"), str) else ""), r)
        for step, r in results.items()
    ] or [("Instance overview", _overview(instance))]
    subtitle = f"Report type {report_type} · run {ctx.run_id} · generated {instance.now():%Y-%m-%d %H:%M} UTC"
    text = md.document(title, subtitle, sections)
    return instance.create_document(
        ctx.idempotency_key,
        prefix="DOC",
        title=title,
        markdown=text,
        doc_type="report",
        report_type=report_type,
        document_id=record_id_for("document", ctx.idempotency_key),
        source_steps=list(results),
        sections=len(sections),
        run_id=ctx.run_id,
    )


def _procedure_key(ci_class: str) -> str:
    return "server" if ci_class.endswith("_server") else ci_class if ci_class in _PROCEDURES else "other"


@exactly_once
def runbook(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci = resolve_ci(instance, ctx.params.get("ci_id"))
    graph = CIGraph(instance.cis(include_retired=True), instance.relationships())
    impacted = graph.walk(ci["sys_id"], "up", 3)
    depends = graph.walk(ci["sys_id"], "down", 2)
    group = next((g for g in instance.table("sys_user_group") if g["name"] == ci.get("support_group")), None)
    fields = (
        "sys_class_name",
        "environment",
        "owner",
        "support_group",
        "ip_address",
        "os",
        "serial_number",
        "operational_status",
    )
    lines = [
        f"# Runbook: {ci['name']}",
        "",
        f"_{CI_CLASSES.get(ci['sys_class_name'], 'CI')} · {ci['sys_id']}_",
        "",
        "## Overview",
        "",
        "| Field | Value |",
        "|---|---|",
    ]
    lines += [f"| {f} | {md.cell(ci.get(f))} |" for f in fields]
    services = sorted(
        graph.name(r.sys_id) for r in impacted if graph.cis[r.sys_id]["sys_class_name"] == "cmdb_ci_service"
    )
    lines += [
        "",
        "## Impact",
        "",
        f"A failure affects {len(impacted)} CI(s); business services: {', '.join(services) or 'none'}.",
        "",
        "## Dependencies",
        "",
    ]
    lines += [f"- {graph.name(r.sys_id)} ({r.relations[-1]}, {r.distance} hop(s))" for r in depends[:25]] or ["- none"]
    lines += ["", "## Procedure", ""]
    lines += [f"{n}. {step}" for n, step in enumerate(_PROCEDURES[_procedure_key(ci["sys_class_name"])], 1)]
    lines += [
        "",
        "## Escalation",
        "",
        f"- Support group: {ci.get('support_group') or 'unassigned'}"
        + (f" (manager {group['manager']}, {group['email']})" if group else ""),
        f"- Owner: {ci.get('owner') or 'unknown - fix in the CMDB'}",
        "",
    ]
    return instance.create_document(
        ctx.idempotency_key,
        prefix="DOC",
        title=f"Runbook: {ci['name']}",
        markdown="\n".join(lines),
        doc_type="runbook",
        document_id=record_id_for("document", ctx.idempotency_key),
        ci={"sys_id": ci["sys_id"], "name": ci["name"], "sys_class_name": ci["sys_class_name"]},
        impacted_services=services,
        run_id=ctx.run_id,
    )


@exactly_once
def knowledge_base(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    title = required_text(ctx, "title")
    body = required_text(ctx, "body")
    return instance.create_document(
        ctx.idempotency_key,
        prefix="KB",
        title=title,
        markdown=f"# {title}\n\n{body}\n",
        doc_type="knowledge",
        document_id=record_id_for("document", ctx.idempotency_key),
        run_id=ctx.run_id,
    )


def _node_id(index: int) -> str:
    return f"n{index}"


def _label(ci: dict[str, Any]) -> str:
    name = re.sub(r'["<>]', "", str(ci.get("name")))
    return f'"{name}<br/>{CI_CLASSES.get(str(ci.get("sys_class_name")), "CI")}"'


def diagram(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci = resolve_ci(instance, ctx.params.get("ci_id"))
    graph = CIGraph(instance.cis(include_retired=True), instance.relationships())
    reached = [r.sys_id for r in graph.walk(ci["sys_id"], "up", 3)] + [
        r.sys_id for r in graph.walk(ci["sys_id"], "down", 2)
    ]
    nodes = [ci["sys_id"], *dict.fromkeys(reached)][:60]
    ids = {sys_id: _node_id(n) for n, sys_id in enumerate(nodes)}
    lines = ["graph TD"] + [f"    {ids[s]}[{_label(graph.cis[s])}]" for s in nodes]
    edges = graph.edges_within(set(nodes))
    lines += [f"    {ids[parent]} -->|{kind.split('::')[0]}| {ids[child]}" for parent, child, kind in edges]
    lines.append(f"    style {ids[ci['sys_id']]} stroke-width:3px")
    return {
        "ci": {"sys_id": ci["sys_id"], "name": ci["name"], "sys_class_name": ci["sys_class_name"]},
        "nodes": len(nodes),
        "edges": len(edges),
        "truncated": len(reached) + 1 > len(nodes),
        "mermaid": "\n".join(lines),
    }


HANDLERS: dict[str, Handler] = {
    "documentation.generate": generate,
    "documentation.runbook": runbook,
    "documentation.knowledge_base": knowledge_base,
    "documentation.diagram": diagram,
}
