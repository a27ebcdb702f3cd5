"""Shared test fixtures: settings isolated from the developer's environment."""

from __future__ import annotations

import os

import pytest

from orchestrator.settings import reset_settings


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test starts from default settings with its own data dir (no .env, no developer ORCH_*)."""
    for name in list(os.environ):
        if name.startswith("ORCH_") and name != "ORCH_TEST_REDIS_URL":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORCH_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    reset_settings()
    yield
    reset_settings()
