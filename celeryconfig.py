"""Celery's lower-case settings for ``celery -A ... --config celeryconfig`` users: read from ORCH_* settings."""

from orchestrator.runtime.celery_app import celery_config
from orchestrator.settings import get_settings

globals().update(celery_config(get_settings()))
