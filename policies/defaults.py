"""The built-in role table: the six compatible roles, plus the CMDB reads the chat UI's commands need (``cmdb.ping``,
``cmdb.stale``, ``cmdb.history``, ...) and a csa-agent policy.

Why data in code: the defaults must exist with no file on disk (a worker on a bare machine still enforces
them); a policy file only overrides or adds roles (see ``policies.loader``).
"""

from __future__ import annotations

from policies.models import DOMAINS, RolePolicy
from policies.table import PolicyTable

DEFAULT_POLICIES: tuple[RolePolicy, ...] = (
    RolePolicy(
        role_id="orchestrator",
        name="Orchestrator",
        description="Coordinates every agent; may run any action in any domain.",
        allowed_domains=list(DOMAINS),
        allowed_actions=["*"],
        permissions=["read", "write", "execute", "admin"],
    ),
    RolePolicy(
        role_id="cmdb-agent",
        name="CMDB Agent",
        description="Reads and maintains configuration items and their relationships.",
        allowed_domains=["cmdb"],
        allowed_actions=[
            "cmdb.query",
            "cmdb.update",
            "cmdb.create",
            "cmdb.delete",
            "cmdb.health_audit",
            "cmdb.bulk_operations",
            "cmdb.map_relationships",
            "cmdb.ping",
            "cmdb.count",
            "cmdb.stale",
            "cmdb.duplicates",
            "cmdb.health_trend",
            "cmdb.dashboard",
            "cmdb.dependency_tree",
            "cmdb.history",
            "cmdb.reconcile",
            "cmdb.ire_rules",
            "cmdb.ci_types",
            "cmdb.relationship_types",
            "cmdb.activity",
            "cmdb.health_check",
        ],
        permissions=["read", "write", "execute"],
    ),
    RolePolicy(
        role_id="discovery-agent",
        name="Discovery Agent",
        description="Runs and reconciles network discovery.",
        allowed_domains=["discovery"],
        allowed_actions=["discovery.scan", "discovery.status", "discovery.reconcile", "discovery.schedule"],
        permissions=["read", "write", "execute"],
    ),
    RolePolicy(
        role_id="asset-agent",
        name="Asset Agent",
        description="Hardware and software assets, lifecycle and licences.",
        allowed_domains=["asset"],
        allowed_actions=["asset.query", "asset.lifecycle", "asset.reconcile", "asset.license_check"],
        permissions=["read", "write", "execute"],
    ),
    RolePolicy(
        role_id="csa-agent",
        name="CSA Agent",
        description="Service catalog, fulfilment planning, requests and remediation tickets.",
        allowed_domains=["csa"],
        allowed_actions=[
            "csa.list_catalog",
            "csa.plan_fulfillment",
            "csa.run_remediation",
            "csa.create_request",
            "csa.request_status",
        ],
        permissions=["read", "write"],
    ),
    RolePolicy(
        role_id="itom-auditor",
        name="ITOM Auditor",
        description="Compliance audits and drift detection across every domain; never writes.",
        allowed_domains=list(DOMAINS),
        allowed_actions=["audit.compliance", "audit.drift", "audit.report", "audit.policy"],
        permissions=["read", "execute"],
    ),
    RolePolicy(
        role_id="itom-documentator",
        name="ITOM Documentator",
        description="Generates documentation, runbooks, knowledge articles and diagrams for every domain.",
        allowed_domains=list(DOMAINS),
        allowed_actions=[
            "documentation.generate",
            "documentation.runbook",
            "documentation.knowledge_base",
            "documentation.diagram",
        ],
        permissions=["read", "write"],
    ),
)

DEFAULT_TABLE = PolicyTable(DEFAULT_POLICIES)
