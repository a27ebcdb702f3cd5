"""The outcome metrics as Prometheus families, read from Redis and the broker when ``/metrics`` is scraped.

Why a collector and not counters in this process: the counts are made by whichever process changed the state
(see ``outcome_metrics``); every API process reads the same hash through the service, so every scrape shows the
whole system. One scrape is one ``HGETALL`` on the state store and one pipeline of ``LLEN`` on the broker.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.state import outcome_metrics as om

log = logging.getLogger(__name__)

# family -> (metric name, help, label names)
COUNTERS: dict[str, tuple[str, str, list[str]]] = {
    om.RUNS_STARTED: (
        "orch_runs_started",
        "Runs started, by template ('inline' without one) and source",
        ["template", "source"],
    ),
    om.RUNS_FINISHED: (
        "orch_runs_finished",
        "Runs that ended, by template, source and status (completed, failed, cancelled)",
        ["template", "source", "status"],
    ),
    om.RUNS_RESUMED: (
        "orch_runs_resumed",
        "Failed or cancelled runs resumed, by template and source",
        ["template", "source"],
    ),
    om.STEP_ATTEMPTS: (
        "orch_step_attempts",
        "Recorded ends of step executions by agent, action, outcome (completed, failed, retried, cancelled, denied)",
        ["agent", "action", "outcome"],
    ),
    om.POLICY_DENIALS: (
        "orch_policy_denials",
        "Steps refused by a role policy, where it was checked (dispatch, worker) and by action",
        ["where", "action"],
    ),
    om.DEAD_LETTERS: ("orch_dead_letters_added", "Dead letters written, by reason", ["reason"]),
    om.RECONCILER: ("orch_reconciler_repairs", "Repairs the reconciler made, by kind", ["kind"]),
}


class OutcomeCollector(Collector):
    """Reads the outcome counters and the agent queues' depth at scrape time."""

    def __init__(self, read_counts: Callable[[], dict[str, str]], queue_depths: Callable[[], dict[str, int]]) -> None:
        self.read_counts = read_counts  # the outcome hash (field -> count), read through the service
        self.queue_depths = queue_depths

    def describe(self) -> list[Metric]:
        return []  # registering must not read Redis

    def collect(self) -> Iterator[Metric]:
        raw = self.read_counts()
        counts: dict[str, list[tuple[list[str], float]]] = defaultdict(list)
        for name, text in raw.items():
            family, *labels = name.split(om.SEP)
            counts[family].append((labels, float(text)))
        for family, (metric, doc, label_names) in COUNTERS.items():
            counter = CounterMetricFamily(metric, doc, labels=label_names)
            for labels, value in sorted(counts.get(family, [])):
                if len(labels) == len(label_names):
                    counter.add_metric(labels, value)
            yield counter
        yield _retries(counts.get(om.STEP_ATTEMPTS, []))
        yield _durations(counts.get(om.STEP_SECONDS, []), counts.get(om.STEP_SECONDS_SUM, []))
        depth = GaugeMetricFamily(
            "orch_queue_depth", "Messages waiting in each agent queue (all priorities)", labels=["queue"]
        )
        try:
            depths = self.queue_depths()
        except Exception:  # the broker is away: the counters still export, the queues show no sample
            log.warning("queue depth unavailable (broker unreachable)", exc_info=True)
            depths = {}
        for queue, waiting in depths.items():
            depth.add_metric([queue], waiting)
        yield depth


def _retries(attempts: list[tuple[list[str], float]]) -> Metric:
    retries = CounterMetricFamily(
        "orch_step_retries", "Step executions that failed and were retried", labels=["agent", "action"]
    )
    for labels, value in sorted(attempts):
        if len(labels) == 3 and labels[2] == "retried":
            retries.add_metric(labels[:2], value)
    return retries


def _durations(buckets: list[tuple[list[str], float]], sums: list[tuple[list[str], float]]) -> Metric:
    """Per (agent, action): cumulative buckets from the per-bucket counts, and the sum."""
    histogram = HistogramMetricFamily(
        "orch_step_duration_seconds", "How long step executions ran, by agent and action", labels=["agent", "action"]
    )
    per: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * (len(om.STEP_SECONDS_BUCKETS) + 1))
    for labels, value in buckets:
        if len(labels) == 3 and labels[2].isdigit() and int(labels[2]) <= len(om.STEP_SECONDS_BUCKETS):
            per[(labels[0], labels[1])][int(labels[2])] += value
    total = {(labels[0], labels[1]): value for labels, value in sums if len(labels) == 2}
    bounds = [*(repr(b) for b in om.STEP_SECONDS_BUCKETS), "+Inf"]
    for (agent, action), counts in sorted(per.items()):
        running, cumulative = 0.0, []
        for bound, n in zip(bounds, counts, strict=True):
            running += n
            cumulative.append((bound, running))
        histogram.add_metric([agent, action], cumulative, sum_value=total.get((agent, action), 0.0))
    return histogram
