"""Prometheus metrics for ``GET /metrics``: process counters and the outcome collector."""
