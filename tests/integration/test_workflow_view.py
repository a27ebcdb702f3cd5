"""The workflow view in a real browser: Debian's headless Chromium driven by Playwright (never a downloaded
browser), against the real API (uvicorn) and real agent workers on the suite's own Redis.

An operator signs in with a token, opens a run whose steps are held by fault injection, watches them turn
completed live (the page is never reloaded), cancels the run with the page's button, and the screenshot that
README shows is taken on the way. A viewer sees the same run without the operator's buttons.
Skips without /usr/bin/chromium on a laptop; fails under CI=true (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from orchestrator.asgi import create_app
from orchestrator.models.common import RunStatus
from orchestrator.service import Orchestrator
from orchestrator.settings import AuthSettings, Settings, TokenGrant
from tests.integration.helpers import definition, inject, release, step, uid
from tests.integration.live_api import serve
from tests.servers import need

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPERATOR_TOKEN = "ui-operator-token"
VIEWER_TOKEN = "ui-viewer-token"
TIMEOUT_MS = 30_000
# Set to a directory (e.g. docs) to keep the screenshot there as well: UI_SCREENSHOT_DIR=docs uv run pytest ...
SCREENSHOT_DIR = Path(os.environ["UI_SCREENSHOT_DIR"]).resolve() if os.environ.get("UI_SCREENSHOT_DIR") else None


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    """A fresh headless Chromium (Debian's; Playwright never downloads one here) with a context of its own.

    Playwright's async API, run by ``asyncio.run`` inside the test: no greenlet switching in the pytest process.
    """
    need(Path(CHROMIUM).exists(), f"no {CHROMIUM} (Debian's chromium package; .ci/run installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = await launched.new_context(viewport={"width": 1720, "height": 720})
            yield context
        finally:
            await launched.close()


async def poll(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    """Await ``check`` until it is true, failing after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)  # polling the page, bounded by the deadline


@pytest.fixture
def base_url(orch: Orchestrator, settings: Settings) -> Iterator[str]:
    grants = {
        OPERATOR_TOKEN: TokenGrant(principal="olive", role="operator"),
        VIEWER_TOKEN: TokenGrant(principal="victor", role="viewer"),
    }
    service = Orchestrator(settings.model_copy(update={"auth": AuthSettings(tokens=grants)}))
    with serve(create_app(service)) as url:
        yield url


def start_held_diamond(base_url: str, rclient: Any) -> tuple[str, dict[str, str]]:
    """A run a -> (b || c) -> d -> e where a and d wait until the test releases them."""
    ids = {name: uid(name) for name in ("scan", "map", "check", "hold", "report")}
    inject(rclient, ids["scan"], hold=120)
    inject(rclient, ids["hold"], hold=120)
    body = definition(
        step(ids["scan"], "cmdb.ping"),
        step(ids["map"], "cmdb.ping", [ids["scan"]]),
        step(ids["check"], "discovery.status", [ids["scan"]]),
        step(ids["hold"], "cmdb.ping", [ids["map"], ids["check"]]),
        step(ids["report"], "documentation.generate", [ids["hold"]], parameters={"title": "UI check"}),
        name="workflow view check",
    )
    response = httpx.post(
        f"{base_url}/api/workflows",
        json={"definition": body},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"]), ids


async def sign_in(page: Any, base_url: str, token: str) -> None:
    await page.goto(f"{base_url}/ui")
    await page.fill("#token", token)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#who:not([hidden])", timeout=TIMEOUT_MS)


def node(step_id: str, status: str) -> str:
    return f'#dag g.node[data-step-id="{step_id}"][data-status="{status}"]'


def test_an_operator_watches_a_run_live_and_cancels_it(
    base_url: str, orch: Orchestrator, rclient: Any, tmp_path: Path
) -> None:
    run_id, ids = start_held_diamond(base_url, rclient)
    try:
        errors = asyncio.run(watch_and_cancel(base_url, run_id, ids, rclient, tmp_path / "workflow-view.png"))
    finally:
        release(rclient, ids["hold"])
        release(rclient, ids["scan"])
    assert errors == []
    view = orch.get_run(run_id)
    assert view.status == RunStatus.CANCELLED
    assert view.steps[-1].status.value in {"pending", "cancelled"}  # the step after the cancel never ran


async def watch_and_cancel(base_url: str, run_id: str, ids: dict[str, str], rclient: Any, shot: Path) -> list[str]:
    errors: list[str] = []
    async with browser() as context:
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await sign_in(page, base_url, OPERATOR_TOKEN)
        assert "olive (operator)" in await page.inner_text("#who-name")
        await page.click(f'#runs-table a[href="#/runs/{run_id}"]')
        await page.wait_for_selector(node(ids["scan"], "running"), timeout=TIMEOUT_MS)
        await page.wait_for_selector("#live.on", timeout=TIMEOUT_MS)
        assert await page.get_attribute(node(ids["map"], "pending"), "data-status") == "pending"

        release(rclient, ids["scan"])  # from here on the page must follow the run by itself (no reload)
        for name in ("scan", "map", "check"):
            await page.wait_for_selector(node(ids[name], "completed"), timeout=TIMEOUT_MS)
        await page.wait_for_selector(node(ids["hold"], "running"), timeout=TIMEOUT_MS)
        assert "completed" in await page.inner_text(f'#steps-table tr[data-step-id="{ids["map"]}"]')
        await poll(lambda: _contains(page, "#audit-table", "task_executed"), "the audit tail")
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if SCREENSHOT_DIR:
            shutil.copy(shot, SCREENSHOT_DIR / "workflow-view.png")

        await page.click("#cancel-run")
        await page.wait_for_selector('#run-status[data-status="cancelled"]', timeout=TIMEOUT_MS)
        await page.wait_for_selector("#resume-run:not([hidden])", timeout=TIMEOUT_MS)
        await poll(lambda: _contains(page, "#audit-table", "workflow_cancelled"), "the cancel in the audit tail")
    return errors


async def _contains(page: Any, selector: str, text: str) -> bool:
    return text in await page.inner_text(selector)


def test_a_viewer_sees_the_run_but_no_operator_buttons(base_url: str, orch: Orchestrator, rclient: Any) -> None:
    run_id, ids = start_held_diamond(base_url, rclient)
    try:
        asyncio.run(look_as_viewer(base_url, run_id, ids))
    finally:
        release(rclient, ids["scan"])
        release(rclient, ids["hold"])
    assert orch.wait_for_run(run_id, timeout=60).status == RunStatus.COMPLETED


async def look_as_viewer(base_url: str, run_id: str, ids: dict[str, str]) -> None:
    async with browser() as context:
        page = await context.new_page()
        await sign_in(page, base_url, VIEWER_TOKEN)
        await page.goto(f"{base_url}/ui#/runs/{run_id}")
        await page.wait_for_selector(node(ids["scan"], "running"), timeout=TIMEOUT_MS)
        assert await page.is_hidden("#cancel-run")
        assert await page.is_hidden("#resume-run")
        await page.click('#tabs a[data-tab="dlq"]')
        await page.wait_for_selector("#dlq-note:has-text('operators')", timeout=TIMEOUT_MS)
