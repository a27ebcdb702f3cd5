"""itom-orchestrator: a Celery-based distributed orchestrator for IT-operations agents."""

__version__ = "0.1.0"
