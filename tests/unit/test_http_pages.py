"""Pages that must work without internet: the workflow view at /ui and Swagger UI at /api/docs reference only
this server's own assets, and those assets are served (from the package, not a CDN)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from orchestrator.asgi import create_app
from orchestrator.service import Orchestrator
from tests.unit.test_http_fixtures import service  # noqa: F401

ASSET_REF = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


@pytest.fixture
def client(service: Orchestrator) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(service)) as test_client:
        yield test_client


def references(html: str) -> list[str]:
    return [ref for ref in ASSET_REF.findall(html) if not ref.startswith("#")]


def test_the_docs_page_loads_swagger_ui_from_this_server_only(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    refs = references(page.text)
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in refs)
    assert any(ref.endswith("swagger-ui.css") for ref in refs)
    for ref in refs:
        assert ref.startswith("/api/docs/assets/"), f"docs page references {ref}"
        asset = client.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 1000, ref
    assert "cdn" not in page.text.lower()
    assert "/api/openapi.json" in page.text
    assert client.get("/api/docs/oauth2-redirect").status_code == 200


def test_the_bundled_swagger_ui_renders_openapi_3_1(client: TestClient) -> None:
    assert client.get("/api/openapi.json").json()["openapi"].startswith("3.1")
    bundle = client.get("/api/docs/assets/swagger-ui-bundle.js").text
    assert "isOAS31" in bundle  # Swagger UI 5; 4.x shows FastAPI's 3.1 documents as unsupported


def test_the_workflow_view_is_one_page_with_local_assets_and_a_strict_csp(client: TestClient) -> None:
    page = client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    refs = references(page.text)
    assert sorted(refs) == ["/ui/assets/app.css", "/ui/assets/app.js"]
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline: the CSP would block it
    for ref, kind in (
        ("/ui/assets/app.js", "javascript"),
        ("/ui/assets/dag.js", "javascript"),
        ("/ui/assets/app.css", "css"),
    ):
        asset = client.get(ref)
        assert asset.status_code == 200 and kind in asset.headers["content-type"], ref
    assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui"


def test_the_page_script_uses_only_same_origin_api_paths_and_no_html_injection(client: TestClient) -> None:
    script = client.get("/ui/assets/app.js").text + client.get("/ui/assets/dag.js").text
    assert "innerHTML" not in script and "eval(" not in script
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", script)
    assert "X-CSRF-Token" in script
