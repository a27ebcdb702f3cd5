"""The workflow view's session: a token exchanged for an HttpOnly, SameSite cookie that authenticates the API
routes the page calls; cookie-authenticated state changes need the session's CSRF token; bearer auth unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator import keys
from orchestrator.asgi import create_app
from orchestrator.http.sessions import COOKIE_NAME, _digest
from orchestrator.service import Orchestrator
from tests.unit.test_http_fixtures import (  # noqa: F401
    OPERATOR,
    OPERATOR_TOKEN,
    VIEWER_TOKEN,
    service,
)

INCIDENT = {"template_id": "incident-response", "parameters": {"ci_id": "web-01"}}


@pytest.fixture
def client(service: Orchestrator) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(service)) as test_client:
        yield test_client


def sign_in(client: TestClient, token: str) -> dict[str, Any]:
    response = client.post("/api/session", json={"token": token})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def a_run(client: TestClient) -> str:
    response = client.post("/api/workflows", headers=OPERATOR, json=INCIDENT)
    assert response.status_code == 202
    return str(response.json()["run_id"])


def test_sign_in_sets_an_httponly_samesite_cookie_and_returns_the_csrf_token(client: TestClient) -> None:
    response = client.post("/api/session", json={"token": OPERATOR_TOKEN})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http here; https requests get Secure (next test)
    body = response.json()
    assert body["principal"] == "otto" and body["role"] == "operator" and len(body["csrf_token"]) >= 32
    assert OPERATOR_TOKEN not in cookie and OPERATOR_TOKEN not in response.text
    again = client.get("/api/session")
    assert again.status_code == 200 and again.json()["csrf_token"] == body["csrf_token"]


def test_over_https_the_cookie_is_secure(service: Orchestrator) -> None:  # noqa: F811
    with TestClient(create_app(service), base_url="https://testserver") as secure:
        response = secure.post("/api/session", json={"token": VIEWER_TOKEN})
        assert "secure" in response.headers["set-cookie"].lower()


def test_a_wrong_token_gets_no_session(client: TestClient) -> None:
    response = client.post("/api/session", json={"token": "guess"})
    assert response.status_code == 401 and response.json()["error_code"] == "ORCH_8001"
    assert "set-cookie" not in response.headers
    assert client.get("/api/session").status_code == 401


def test_the_session_is_stored_hashed_with_a_ttl(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    sign_in(client, VIEWER_TOKEN)
    session_id = client.cookies[COOKIE_NAME]
    key = keys.ui_session_key(_digest(session_id))
    assert 0 < service.redis.ttl(key) <= service.settings.ui.session_ttl_seconds
    stored = service.redis.get(key)
    assert session_id not in stored and VIEWER_TOKEN not in stored


def test_the_cookie_authenticates_the_routes_the_page_reads(client: TestClient) -> None:
    run_id = a_run(client)
    sign_in(client, VIEWER_TOKEN)
    for path in ("/api/workflows", f"/api/workflows/{run_id}", "/api/templates", f"/api/audit?run_id={run_id}"):
        assert client.get(path).status_code == 200, path
    assert client.get("/metrics").status_code == 200


def test_a_cookie_state_change_needs_the_csrf_header(client: TestClient) -> None:
    run_id = a_run(client)
    session = sign_in(client, OPERATOR_TOKEN)
    missing = client.post(f"/api/workflows/{run_id}/cancel")
    assert missing.status_code == 401 and "X-CSRF-Token" in missing.json()["error_message"]
    wrong = client.post(f"/api/workflows/{run_id}/cancel", headers={"X-CSRF-Token": "not-it"})
    assert wrong.status_code == 401
    assert client.get(f"/api/workflows/{run_id}").json()["status"] == "running"
    done = client.post(f"/api/workflows/{run_id}/cancel", headers={"X-CSRF-Token": session["csrf_token"]})
    assert done.status_code == 200 and done.json()["status"] == "cancelled"


def test_a_viewer_session_may_read_but_not_cancel(client: TestClient) -> None:
    run_id = a_run(client)
    session = sign_in(client, VIEWER_TOKEN)
    denied = client.post(f"/api/workflows/{run_id}/cancel", headers={"X-CSRF-Token": session["csrf_token"]})
    assert denied.status_code == 403 and denied.json()["error_code"] == "ORCH_6001"


def test_bearer_auth_is_unchanged_and_wins_over_a_cookie(client: TestClient) -> None:
    run_id = a_run(client)
    sign_in(client, VIEWER_TOKEN)
    # a bearer request needs no CSRF header, and the viewer's cookie does not downgrade it
    assert client.post(f"/api/workflows/{run_id}/cancel", headers=OPERATOR).status_code == 200
    # a bad Authorization header is refused even with a valid cookie beside it
    for header in ({"Authorization": "Bearer nope"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        response = client.get("/api/workflows", headers=header)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_sign_out_ends_the_session_for_good(client: TestClient) -> None:
    session = sign_in(client, OPERATOR_TOKEN)
    old_cookie = client.cookies[COOKIE_NAME]
    assert client.delete("/api/session").status_code == 401  # sign-out is a state change: CSRF header needed
    ended = client.delete("/api/session", headers={"X-CSRF-Token": session["csrf_token"]})
    assert ended.status_code == 200 and f"{COOKIE_NAME}=" in ended.headers["set-cookie"]
    client.cookies.set(COOKIE_NAME, old_cookie)
    assert client.get("/api/workflows").status_code == 401


def test_a_session_dies_with_its_token(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    sign_in(client, OPERATOR_TOKEN)
    assert client.get("/api/workflows").status_code == 200
    del service.settings.auth.tokens[OPERATOR_TOKEN]
    response = client.get("/api/workflows")
    assert response.status_code == 401 and "no longer configured" in response.json()["error_message"]


def test_a_forged_cookie_is_refused(client: TestClient) -> None:
    client.cookies.set(COOKIE_NAME, "forged-session-id")
    response = client.get("/api/workflows")
    assert response.status_code == 401 and response.json()["error_code"] == "ORCH_8001"


def test_a_cross_site_form_cannot_sign_anyone_in(client: TestClient) -> None:
    """Only a JSON body signs in: the bodies another site's form can send without a CORS preflight are refused."""
    plain = client.post("/api/session", content=b'{"token": "tok-operator"}', headers={"Content-Type": "text/plain"})
    form = client.post("/api/session", data={"token": OPERATOR_TOKEN})
    for response in (plain, form):
        assert response.status_code == 422 and "set-cookie" not in response.headers
