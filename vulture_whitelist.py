"""Names a framework uses that ``vulture`` cannot see used (read by ``vulture`` only, never imported).

Each line names one thing and who uses it. Dead code does not belong here: delete it instead.
"""

# ruff: noqa: B018, F821
# mypy: ignore-errors
from orchestrator.http import schemas
from orchestrator.metrics.collector import OutcomeCollector
from orchestrator.models import chat, common, run, schedule
from orchestrator.runtime import celery_app, logging_config
from orchestrator.settings import Settings
from orchestrator.state.registry import RegistryEntry
from workers import bridge, consumer

# Pydantic models: fields are part of the JSON a front door returns (and of the chat UI's contract).
chat.SuggestedAction.agent_target
chat.ChatResponseBody.routing
chat.ClarificationResponse.response_type
chat.ClarificationResponse.suggested_actions
chat.RoutingDecision.candidates_evaluated
run.StepState.after_cancel
schedule.ScheduleView.last_fired_at
common.Priority.CRITICAL  # enum members are chosen by value ("critical") from requests
RegistryEntry.status_changed_at  # written to and read back from the registry file
schemas.ErrorDetail.error_code  # OpenAPI response models: they document bodies the error handlers write
schemas.ErrorDetail.error_message
schemas.HealthUnavailable.error_code
schemas.HealthUnavailable.error_message
schemas.HealthUnavailable.uptime_seconds

# Settings read by a model validator through LEGACY_URL_FIELDS (getattr by name).
Settings.cmdb_agent_url
Settings.csa_agent_url
Settings.discovery_agent_url
Settings.asset_agent_url
Settings.auditor_agent_url
Settings.documentator_agent_url

# Celery, kombu, httpx, logging and prometheus_client call these by name or load them by dotted path.
celery_app.ClientRedisBackend  # result_backend = "orchestrator.runtime.celery_app:ClientRedisBackend+redis://..."
celery_app.ClientRedisBackend.on_task_call
celery_app.ClientRedisBackend.remove_pending_result
celery_app.ClientRedisBackend.add_pending_result  # Celery's group apply calls these
celery_app.ClientRedisBackend.add_pending_results
_.start_drainer  # a parameter of Celery's add_pending_result, kept in the override's signature
consumer.GuardedConsumer  # worker_consumer = "workers.consumer:GuardedConsumer"
bridge._BearerAuth.auth_flow  # httpx.Auth
logging_config.JsonFormatter.format  # logging.Formatter
OutcomeCollector.describe  # prometheus_client Collector
_.worker_consumer  # Celery app.conf
_.einfo  # Celery's Task.on_failure signature
_.redbeat_redis_url  # celery-redbeat settings on app.conf
_.redbeat_key_prefix
_.redbeat_redis_options
_.redbeat_lock_timeout
_.beat_max_interval
_.redbeat_redis
_.result_backend
_.broker_connection_timeout
_.task_publish_retry
_.lock_key
_.should_exit  # uvicorn.Server
_._buffer_cutoff  # redis-py's Connection reads it when packing a pipeline (redis_client.OneWriteConnection)
_.ignore_result  # Celery's backend reads it from the task request (workers.chord_handoff.handed_off)
_.on_call_tool  # FastMCP calls a middleware's hook by name (orchestrator.mcp.errors.ArgumentErrors)

# Tests: models mirroring itom-chat-ui's own types, fake tool signatures, switches on fixture servers.
_.opened_at
_.due_date
_.BUSY
_.remediation_type
_.remediation_mode
_.issue_summary
_.proposed_action
_.estimated_impact
_.forget_every_session
