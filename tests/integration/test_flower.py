"""Flower runs only behind basic auth: 401 without credentials, 200 with them."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orchestrator.embedded import free_port
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.integration


def _status(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def test_flower_requires_basic_auth(redis_url: str, worker_pool: object, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(
        {"ORCH_REDIS__URL": redis_url, "ORCH_FLOWER__BASIC_AUTH": "ops:s3cret-pass", "ORCH_DATA_DIR": str(tmp_path)}
    )
    flower = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", "flower", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _status(f"{base}/api/workers") == 401, timeout=60, interval=0.2, what="flower up")
        assert _status(f"{base}/api/workers", "ops:wrong") == 401
        assert _status(f"{base}/api/workers", "ops:s3cret-pass") == 200
    finally:
        flower.terminate()
        flower.wait(timeout=20)
