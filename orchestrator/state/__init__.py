"""Redis-backed state: runs, steps, outbox, events, audit, dead letters, agents and the work log."""
