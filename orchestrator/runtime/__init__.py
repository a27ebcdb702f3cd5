"""Processes and infrastructure: Redis connections, the Celery app, the broker, supervised processes."""
