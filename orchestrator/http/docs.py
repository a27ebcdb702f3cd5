"""OpenAPI docs that work offline: Swagger UI served from the ``fastapi-offline`` package, not from a CDN.

Why a package: ``/api/docs`` is where operators look first, often on a network without internet; FastAPI's
default page loads Swagger UI from a CDN and stays blank there. ``fastapi-offline`` ships Swagger UI 5 (it
renders OpenAPI 3.1, which FastAPI emits) and is a plain data dependency: we only serve its files.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/api/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
OAUTH2_REDIRECT_PATH = f"{DOCS_PATH}/oauth2-redirect"


def swagger_assets_dir() -> Path:
    """The directory of Swagger UI's JS/CSS inside the installed ``fastapi_offline`` package."""
    return Path(str(resources.files("fastapi_offline").joinpath("static")))


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """``GET /api/docs`` (Swagger UI), its assets under ``/api/docs/assets``, and the OAuth2 redirect page."""
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_assets_dir()), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
