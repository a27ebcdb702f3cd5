"""Prometheus metrics (served at ``GET /metrics``, bearer-protected like every route).

Why a registry of our own: the metric objects live once per process (module level) and ``/metrics`` shows
exactly them plus the process collectors, never metrics some other library put on the global registry.
This process's front-door counters and histograms (HTTP requests, MCP tool calls) are updated as requests
happen. Everything about runs, steps, denials, dead letters, repairs and queues is shared state, read from
Redis and the broker when ``/metrics`` is scraped (the gauges here and ``outcome_collector``), so every API
process reports the same truth, whichever process made it happen.
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

from orchestrator.metrics.collector import OutcomeCollector

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
    gauges = service.gauges()
    ACTIVE_RUNS.set(gauges["active_runs"])
    AGENTS_ONLINE.set(gauges["agents_online"])
    DEAD_LETTERS.set(gauges["dead_letters"])


def render(service: Orchestrator) -> bytes:
    """The Prometheus text exposition of every metric: gauges refreshed first, then the shared outcomes."""
    refresh_gauges(service)
    outcomes = OutcomeCollector(service.outcome_counts, service.queue_depths)
    return generate_latest(REGISTRY) + generate_latest(outcomes)
