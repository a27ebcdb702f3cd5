"""Settings from the environment (prefix ``ORCH_``, nested with ``__``), read once per process.

Why pydantic-settings: one typed place for every knob, validated at start-up so a bad value fails loudly
with the variable's name instead of deep inside a worker.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)

AGENT_IDS: tuple[str, ...] = (
    "cmdb-agent",
    "discovery-agent",
    "asset-agent",
    "csa-agent",
    "itom-auditor",
    "itom-documentator",
)


LEGACY_URL_FIELDS: dict[str, str] = {
    "cmdb_agent_url": "cmdb-agent",
    "csa_agent_url": "csa-agent",
    "discovery_agent_url": "discovery-agent",
    "asset_agent_url": "asset-agent",
    "auditor_agent_url": "itom-auditor",
    "documentator_agent_url": "itom-documentator",
}


class RedisSettings(BaseModel):
    """Where Redis lives. ``url`` unset means: local 6379 if it answers, else an embedded server."""

    url: str | None = None
    embedded: bool = Field(default=False, description="Always start a private embedded Redis (ignore localhost)")
    socket_timeout: float = Field(default=5.0, gt=0, le=300, description="Read timeout of non-blocking commands")
    connect_timeout: float = Field(default=2.0, gt=0, le=60)
    retries: int = Field(default=5, ge=0, le=50, description="Retries with backoff after a connection error")


class AgentSettings(BaseModel):
    """Per-agent knobs: an MCP server to bridge to instead of the built-in handlers."""

    mcp_url: str | None = None
    mcp_token: str | None = None


class TokenGrant(BaseModel):
    """Who a bearer token stands for."""

    principal: str
    role: Literal["admin", "operator", "viewer"]


class AnonymousSettings(BaseModel):
    """Serve callers that send no token (itom-chat-ui sends none) as one principal, on a few routes only.

    Off by default: anyone who can reach the port gets this principal's role on the chat, clarify,
    agent-status, worklog and health routes. Its actions are audited as ``anonymous:<principal>``.
    """

    enabled: bool = False
    principal: str = Field(default="chat-ui", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    role: Literal["operator", "viewer"] = "operator"


class AuthSettings(BaseModel):
    """Bearer tokens: ``ORCH_AUTH__TOKENS='{"tok": {"principal": "ann", "role": "operator"}}'``."""

    tokens: dict[str, TokenGrant] = Field(default_factory=dict)
    anonymous: AnonymousSettings = Field(default_factory=AnonymousSettings)

    @field_validator("tokens", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value


class RetentionSettings(BaseModel):
    """How long state lives: bounded memory is a promise, not an accident."""

    run_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    result_max_bytes: int = Field(default=64 * 1024, ge=256)
    events_max: int = Field(default=100_000, ge=100)
    audit_max: int = Field(default=1_000_000, ge=1000)
    dlq_max: int = Field(default=10_000, ge=10)
    celery_result_ttl_seconds: int = Field(
        default=26 * 3600,
        ge=1,
        description="Celery's result and chord-counter expiry: above the longest step, or a chord's body is lost",
    )


class ReliabilitySettings(BaseModel):
    """Leases, the reconciler and bounds: how fast a crash is repaired and what the front door accepts.

    A worker instance beats every ``heartbeat_interval_seconds``; it is gone when it missed ``lease_ttl_seconds``
    of beats, and its leases are then repaired by the reconciler, which runs every ``reconcile_interval_seconds``.
    """

    lease_ttl_seconds: float = Field(default=10.0, ge=1, le=3600)
    heartbeat_interval_seconds: float = Field(default=2.0, gt=0, le=600)
    reconcile_interval_seconds: float = Field(default=2.0, gt=0, le=600)
    outbox_grace_seconds: float = Field(default=5.0, ge=0, le=3600, description="Before the reconciler drains")
    stall_seconds: float = Field(default=30.0, ge=1, le=86400, description="No progress for this long: look")
    deadline_grace_seconds: float = Field(default=10.0, ge=0, le=3600, description="Past a step's hard limit")
    max_deliveries: int = Field(default=3, ge=1, le=100, description="Deliveries of a step that never finish")
    max_repairs: int = Field(default=3, ge=1, le=100, description="Re-dispatches of one run before it fails")
    record_retry_seconds: float = Field(default=120.0, ge=0, le=3600, description="Retrying a lost Redis")
    cancel_grace_seconds: float = Field(default=3.0, ge=0, le=600, description="Before a step is terminated")
    resume_wait_seconds: float = Field(default=10.0, ge=0, le=600, description="For old steps to stop")
    max_param_depth: int = Field(default=32, ge=2, le=200)
    max_param_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)


class FlowerSettings(BaseModel):
    """Flower always runs behind basic auth."""

    port: int = 5555
    basic_auth: str | None = None


class UiSettings(BaseModel):
    """The workflow view at ``/ui``: how long a browser session lasts, and whether its cookie needs HTTPS."""

    session_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 24 * 3600)
    secure_cookie: bool | None = Field(default=None, description="Unset: Secure when the request came over HTTPS")


class ScheduleSettings(BaseModel):
    """The beat that starts scheduled runs (``itom-orch beat``, or the thread ``up`` runs)."""

    max_interval_seconds: float = Field(default=5.0, gt=0, le=300, description="Longest sleep between beat ticks")


class FrontDoorSettings(BaseModel):
    """Limits that keep the front door answering under load (``ORCH_FRONTDOOR__*``); see README "Front door".

    Why settings and not constants: a deployment with many dashboards needs more streams per principal, a test
    needs a short block to prove an idle stream survives, and a slow network needs a longer keep-alive.
    """

    max_identifier_chars: int = Field(default=256, ge=16, le=4096, description="Ids, names and path values")
    max_streams_per_principal: int = Field(default=64, ge=1, le=100_000, description="Concurrent SSE streams")
    stream_queue_events: int = Field(default=1000, ge=10, le=1_000_000, description="Per-client buffer")
    stream_ping_seconds: float = Field(default=15.0, gt=0, le=300, description="Keep-alive comment interval")
    stream_block_ms: int = Field(default=5000, ge=10, le=60_000, description="XREAD BLOCK of the event reader")
    stream_batch_ms: int = Field(
        default=100, ge=0, le=1000, description="After a burst, gather events this long before fanning out again"
    )
    replay_max_events: int = Field(default=10_000, ge=1, le=1_000_000, description="Catch-up on connect")
    wait_max_seconds: float = Field(default=300.0, gt=0, le=86_400, description="Longest wait=true / wait_for_run")
    max_blocking_waits: int = Field(default=64, ge=1, le=10_000, description="Chat requests waiting at once")
    error_echo_chars: int = Field(default=200, ge=16, le=10_000, description="Input echoed in error messages")


class Settings(BaseSettings):
    """Every ORCH_* variable. See README 'Configuration'."""

    model_config = SettingsConfigDict(
        env_prefix="ORCH_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        case_sensitive=False,
    )

    data_dir: Path = Path(".itom-orchestrator")
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:3000"]
    )
    max_request_bytes: int = 1_048_576
    redis: RedisSettings = Field(default_factory=RedisSettings)
    broker_url: str | None = None
    auth: AuthSettings = Field(default_factory=AuthSettings)
    agents: dict[str, AgentSettings] = Field(default_factory=dict)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    reliability: ReliabilitySettings = Field(default_factory=ReliabilitySettings)
    flower: FlowerSettings = Field(default_factory=FlowerSettings)
    policy_file: Path | None = None
    worker_agent: str | None = None
    worker_role: str | None = None
    worker_parent_pid: int | None = Field(
        default=None, description="Set by the process that starts a worker (WorkerPool): the worker stops when it dies"
    )
    fault_injection: bool = Field(default=False, description="Honour orch:fault:<step_id> keys (tests, drills)")
    retry_backoff_base_seconds: float = Field(default=1.0, ge=0.0, le=600)
    retry_backoff_max_seconds: float = Field(default=60.0, ge=0.0, le=3600)
    templates_dir: Path | None = None
    ui: UiSettings = Field(default_factory=UiSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    frontdoor: FrontDoorSettings = Field(default_factory=FrontDoorSettings)
    # The legacy per-agent URL variables (still exported by itom-chat-ui's start script): aliases of
    # ORCH_AGENTS__<AGENT>__MCP_URL, which wins when both are set.
    cmdb_agent_url: str | None = None
    csa_agent_url: str | None = None
    discovery_agent_url: str | None = None
    asset_agent_url: str | None = None
    auditor_agent_url: str | None = None
    documentator_agent_url: str | None = None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
        return value

    @field_validator("agents", mode="before")
    @classmethod
    def _normalise_agent_keys(cls, value: Any) -> Any:
        """Env keys arrive lower-case with underscores (``CMDB_AGENT``); agent ids use hyphens."""
        if isinstance(value, dict):
            return {str(k).lower().replace("_", "-"): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _legacy_agent_urls(self) -> Settings:
        """Honour ``ORCH_CMDB_AGENT_URL`` and its siblings as aliases, saying which form is preferred."""
        for field_name, agent_id in LEGACY_URL_FIELDS.items():
            url = getattr(self, field_name)
            if not url:
                continue
            nested = f"ORCH_AGENTS__{agent_id.upper().replace('-', '_')}__MCP_URL"
            current = self.agents.get(agent_id, AgentSettings())
            if current.mcp_url:
                log.warning("ORCH_%s is ignored: %s is set and wins", field_name.upper(), nested)
                continue
            self.agents[agent_id] = current.model_copy(update={"mcp_url": url})
            log.warning("ORCH_%s bridges %s; %s is the preferred form", field_name.upper(), agent_id, nested)
        return self

    def agent(self, agent_id: str) -> AgentSettings:
        """Settings for one agent (defaults when none are configured)."""
        return self.agents.get(agent_id) or AgentSettings()

    @property
    def user_templates_dir(self) -> Path:
        return self.templates_dir or (self.data_dir / "templates")

    @property
    def redis_url(self) -> str:
        """The resolved Redis URL; the CLI fills ``redis.url`` before anything connects."""
        return self.redis.url or "redis://127.0.0.1:6379/0"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: read the environment once)."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI after it resolves Redis)."""
    get_settings.cache_clear()
