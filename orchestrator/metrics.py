"""Prometheus metrics for the front doors (served at ``GET /metrics``, bearer-protected like every route).

Why a registry of our own: the metric objects live once per process (module level) and ``/metrics`` shows
exactly them plus the process collectors, never metrics some other library put on the global registry.
Counters and histograms are updated as requests and tool calls happen; the gauges (active runs, online
agents, dead letters) are read from Redis when ``/metrics`` is scraped, so every API process reports the
same shared truth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

if TYPE_CHECKING:
    from orchestrator.service import Orchestrator

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

HTTP_REQUESTS = Counter(
    "orch_http_requests",
    "HTTP requests served, by method, route template and status code",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "orch_http_request_duration_seconds",
    "Time to the end of the HTTP response, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
RUNS_STARTED = Counter(
    "orch_runs_started",
    "Runs started through a front door, by front door (http|mcp) and kind (workflow|task)",
    ["source", "kind"],
    registry=REGISTRY,
)
MCP_TOOL_CALLS = Counter(
    "orch_mcp_tool_calls",
    "MCP tool calls, by tool and outcome (ok|error)",
    ["tool", "outcome"],
    registry=REGISTRY,
)
ACTIVE_RUNS = Gauge("orch_active_runs", "Runs pending or running (read from Redis at scrape time)", registry=REGISTRY)
AGENTS_ONLINE = Gauge("orch_agents_online", "Agents with a fresh worker heartbeat", registry=REGISTRY)
DEAD_LETTERS = Gauge("orch_dead_letters", "Entries in the dead-letter queue", registry=REGISTRY)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def refresh_gauges(service: Orchestrator) -> None:
    """Read the shared state the gauges report (one small Redis round trip each)."""
    ACTIVE_RUNS.set(service.runs.active_count())
    AGENTS_ONLINE.set(service.agents.connected_count())
    DEAD_LETTERS.set(service.deadletters.count())


def render(service: Orchestrator) -> bytes:
    """The Prometheus text exposition of every metric, gauges refreshed first."""
    refresh_gauges(service)
    return generate_latest(REGISTRY)
