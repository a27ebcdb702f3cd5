"""Start idempotency keys: one run per caller and key, and a start that was refused gives its key back.

On fakeredis through the service, as the front doors call it; the run store keeps the keys.
"""

from __future__ import annotations

import pytest

from orchestrator import keys
from orchestrator.errors import RoleViolationError
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator
from tests.unit.test_http_fixtures import service  # noqa: F401 - the fixture

OTTO = Principal("otto", "operator")
ANNA = Principal("anna", "operator")

# itom-auditor's role may not run a CMDB write: the dispatch gate refuses the plan before anything is recorded.
DENIED = {
    "name": "denied",
    "steps": [
        {"step_id": "w", "action": "cmdb.update", "agent": "itom-auditor", "parameters": {"ci_id": "x", "fields": {}}}
    ],
}
ALLOWED = {"name": "allowed", "steps": [{"step_id": "p", "action": "cmdb.ping"}]}


def test_a_denied_start_releases_its_key_so_a_retry_is_judged_again(service: Orchestrator) -> None:  # noqa: F811
    for _ in range(2):  # the second try is refused by the policy again, not as a key "in use" (ORCH_8003)
        with pytest.raises(RoleViolationError):
            service.start_workflow(OTTO, definition=DENIED, idempotency_key="ticket-7")
    assert service.redis.get(keys.start_idempotency_key(OTTO.actor, "ticket-7")) is None
    started = service.start_workflow(OTTO, definition=ALLOWED, idempotency_key="ticket-7")
    again = service.start_workflow(OTTO, definition=ALLOWED, idempotency_key="ticket-7")
    assert again.run_id == started.run_id
    assert service.redis.get(keys.start_idempotency_key(OTTO.actor, "ticket-7")) == started.run_id


def test_keys_are_scoped_per_principal(service: Orchestrator) -> None:  # noqa: F811
    ottos = service.start_workflow(OTTO, definition=ALLOWED, idempotency_key="nightly")
    annas = service.start_workflow(ANNA, definition=ALLOWED, idempotency_key="nightly")
    assert annas.run_id != ottos.run_id
    assert service.start_workflow(ANNA, definition=ALLOWED, idempotency_key="nightly").run_id == annas.run_id


def test_a_key_another_start_holds_is_not_released_by_a_failing_one(service: Orchestrator) -> None:  # noqa: F811
    held = keys.start_idempotency_key(OTTO.actor, "busy")
    service.redis.set(held, "run-of-another-request")
    service.runs.release_start_key(OTTO.actor, "busy", "my-run")
    assert service.redis.get(held) == "run-of-another-request"
