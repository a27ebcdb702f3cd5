"""docker-compose.yml is validated, not run (no Docker engine in CI): its shape keeps the deployment promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestrator.settings import AGENT_IDS

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_one_worker_per_agent_each_with_its_own_role() -> None:
    services = compose()["services"]
    workers = {name: svc for name, svc in services.items() if name.startswith("worker-")}
    agents = set()
    for svc in workers.values():
        command = svc["command"]
        agent = command[command.index("--agent") + 1]
        assert svc["environment"]["ORCH_WORKER_ROLE"] == agent == svc["environment"]["ORCH_WORKER_AGENT"]
        agents.add(agent)
    assert agents == set(AGENT_IDS)


def test_redis_has_a_healthcheck_and_everything_waits_for_it() -> None:
    services = compose()["services"]
    assert services["redis"]["healthcheck"]["test"]
    for name, svc in services.items():
        if name != "redis":
            assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
            assert svc["environment"]["ORCH_REDIS__URL"].startswith("redis://redis:6379")


def test_flower_and_api_never_run_open_and_no_secret_is_committed() -> None:
    services = compose()["services"]
    assert services["flower"]["environment"]["ORCH_FLOWER__BASIC_AUTH"].startswith("${ORCH_FLOWER__BASIC_AUTH:?")
    assert services["api"]["environment"]["ORCH_AUTH__TOKENS"].startswith("${ORCH_AUTH__TOKENS:?")
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    assert "/api/health" in str(services["api"]["healthcheck"]["test"])


def test_each_secret_goes_only_to_the_service_that_needs_it() -> None:
    services = compose()["services"]
    holders = {
        secret: sorted(name for name, svc in services.items() if secret in (svc.get("environment") or {}))
        for secret in ("ORCH_AUTH__TOKENS", "ORCH_FLOWER__BASIC_AUTH")
    }
    assert holders == {"ORCH_AUTH__TOKENS": ["api"], "ORCH_FLOWER__BASIC_AUTH": ["flower"]}


def test_redis_keeps_an_append_only_file_on_its_volume() -> None:
    redis = compose()["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "redis-data" in compose()["volumes"]


def test_a_beat_starts_the_scheduled_runs() -> None:
    beat = compose()["services"]["beat"]
    assert beat["command"] == ["itom-orch", "beat"]
    assert "ORCH_AUTH__TOKENS" not in beat["environment"]  # the beat starts runs through the service, no token
    assert beat.get("deploy", {}).get("replicas", 1) == 1
