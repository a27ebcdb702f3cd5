"""Putting work on the broker: starts, agent messages and the reconciler's repairs."""
