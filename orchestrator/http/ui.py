"""The workflow view at ``/ui``: static HTML, JS and CSS shipped in the package, over the same API.

Why no front-end build: the page is small (a run list, an SVG DAG, tables) and plain modules run in every
current browser; shipping the files as they are keeps the wheel the whole deployment (no CDN, no node).
The page signs in once with a bearer token (``POST /api/session``) and then uses the API with its cookie.
A strict Content-Security-Policy allows only this origin's own scripts, styles and connections.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

UI_PATH = "/ui"
ASSETS_PATH = f"{UI_PATH}/assets"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


def static_dir() -> Path:
    return Path(str(resources.files("orchestrator.http").joinpath("static")))


@router.get(UI_PATH)
def workflow_view() -> HTMLResponse:
    """The single page; everything it shows comes from the API (the page itself holds no data)."""
    html = (static_dir() / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get(f"{UI_PATH}/")
def workflow_view_slash() -> RedirectResponse:
    return RedirectResponse(UI_PATH)


def install_ui(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS_PATH, StaticFiles(directory=static_dir()), name="ui-assets")
