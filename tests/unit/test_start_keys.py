"""Start idempotency keys: one run per caller and key and request, and a start that was refused gives its key back.

On fakeredis through the service, as the front doors call it; the run store keeps the keys.
"""

from __future__ import annotations

import pytest

from orchestrator import keys
from orchestrator.errors import IdempotencyKeyReusedError, RoleViolationError
from orchestrator.models.workflow import WorkflowDefinition
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
    assert service.redis.get(keys.start_idempotency_key(OTTO.actor, "ticket-7")).startswith(f"{started.run_id}|")


def test_keys_are_scoped_per_principal(service: Orchestrator) -> None:  # noqa: F811
    ottos = service.start_workflow(OTTO, definition=ALLOWED, idempotency_key="nightly")
    annas = service.start_workflow(ANNA, definition=ALLOWED, idempotency_key="nightly")
    assert annas.run_id != ottos.run_id
    assert service.start_workflow(ANNA, definition=ALLOWED, idempotency_key="nightly").run_id == annas.run_id


def test_a_key_another_start_holds_is_not_released_by_a_failing_one(service: Orchestrator) -> None:  # noqa: F811
    held = keys.start_idempotency_key(OTTO.actor, "busy")
    service.redis.set(held, "run-of-another-request")
    service.redis.set(held, "run-of-another-request|f1")
    service.runs.release_start_key(OTTO.actor, "busy", "my-run", "f1")
    assert service.redis.get(held) == "run-of-another-request|f1"
    service.runs.release_start_key(OTTO.actor, "busy", "run-of-another-request", "f1")
    assert service.redis.get(held) is None


def test_a_definition_counts_by_its_validated_form_so_a_dict_and_its_model_are_one_request(
    service: Orchestrator,  # noqa: F811
) -> None:
    started = service.start_workflow(OTTO, definition=ALLOWED, idempotency_key="same")
    model = WorkflowDefinition.model_validate(ALLOWED)
    assert service.start_workflow(OTTO, definition=model, idempotency_key="same").run_id == started.run_id
    changed = {**ALLOWED, "steps": [{"step_id": "p", "action": "cmdb.ping", "timeout_seconds": 5}]}
    with pytest.raises(IdempotencyKeyReusedError, match=started.run_id):
        service.start_workflow(OTTO, definition=changed, idempotency_key="same")


def test_a_key_stored_without_a_fingerprint_still_finds_its_run(service: Orchestrator) -> None:  # noqa: F811
    """Keys an earlier version wrote hold only the run id: a repeat then gets that run, as it did before."""
    started = service.start_workflow(OTTO, definition=ALLOWED)
    service.redis.set(keys.start_idempotency_key(OTTO.actor, "old"), started.run_id)
    assert service.start_workflow(OTTO, definition=DENIED, idempotency_key="old").run_id == started.run_id
