"""Schemathesis over the whole OpenAPI document, in process on fakeredis: zero server errors, zero violations.

``positive_data_acceptance`` is left out: several rules cannot be said in a schema (a cron expression, a known
template or domain, a live clarification token), and refusing such input with a 400 and an ORCH code is the
intended answer. Every other check runs: no server errors, every status, header and body as documented.

Why in process: the ASGI app is called directly (no port, no real Redis), so the fuzzer runs in CI in well under a
minute. Examples are bounded per operation; waits are capped at a fraction of a second so ``wait=true`` and chat
(nobody consumes the in-memory broker) answer their 504 quickly instead of waiting the production 300 s.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from orchestrator.http import create_app
from tests.unit.test_http_fixtures import ADMIN, build_service

EXAMPLES_PER_OPERATION = 20
# Gateway answers that are part of a contract: the chat routes (the chat UI's original contract: 502 for routing
# and execution errors, 504 for a timeout) and a wait that ran out (504). Nothing else may answer 5xx.
DOCUMENTED_5XX = {"/api/chat": {502, 504}, "/api/chat/clarify": {502}, "/api/tasks": {504}}
# A live SSE stream never ends by itself; its contract is tested in test_http_events and test_frontdoor_live.
NOT_FUZZED = r"^/api/events$"


def test_the_api_honours_its_schema() -> None:
    """Every operation: bounded generated requests (valid and invalid), each checked by every schemathesis check."""
    service = build_service()
    service.settings.frontdoor.wait_max_seconds = 0.3
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app(service))
    fuzzed: list[str] = []
    failures: list[str] = []
    for result in schema.exclude(path_regex=NOT_FUZZED).get_all_operations():
        operation = result.ok()
        fuzzed.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            excluded = [checks.positive_data_acceptance]
            if case.path in DOCUMENTED_5XX:
                excluded.append(checks.not_a_server_error)
            response = case.call_and_validate(headers=ADMIN, excluded_checks=excluded)
            if response.status_code >= 500:  # only the documented gateway answers, each with its ORCH code
                assert response.status_code in DOCUMENTED_5XX[case.path], response.text
                assert response.json()["error_code"].startswith("ORCH_"), response.text

        try:
            check()
        except BaseException as exc:
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert len(fuzzed) > 30, fuzzed
    assert not failures, "\n\n".join(failures)
