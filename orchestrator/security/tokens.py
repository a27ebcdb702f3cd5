"""First-run API token: a fresh ``itom-orch up`` with no ``ORCH_AUTH__TOKENS`` still runs with auth on.

Why a stored token: the HTTP and MCP front doors never run open. When no token is configured we generate one
admin token, keep it in ``ORCH_DATA_DIR/api-token`` (mode 0600, readable by the local user only), print it
once, and reuse it silently on later runs.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from orchestrator.settings import AuthSettings, Settings, TokenGrant

TOKEN_FILE_NAME = "api-token"  # noqa: S105 - a file name, not a secret
BOOTSTRAP_PRINCIPAL = "admin"


@dataclass(frozen=True)
class TokenBootstrap:
    """What happened: tokens were configured, or a stored token was reused, or a new one was created."""

    source: str  # configured | stored | created
    path: Path | None = None
    token: str | None = None  # only set when just created (to print it once)


def token_path(settings: Settings) -> Path:
    return settings.data_dir / TOKEN_FILE_NAME


def _read(path: Path) -> str:
    os.chmod(path, 0o600)  # tighten a copy made with a looser umask
    return path.read_text(encoding="utf-8").strip()


def _create(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def ensure_api_token(settings: Settings) -> tuple[Settings, TokenBootstrap]:
    """Settings with at least one token, and how it was obtained (configured tokens are left alone)."""
    if settings.auth.tokens:
        return settings, TokenBootstrap("configured")
    path = token_path(settings)
    if path.exists() and (stored := _read(path)):
        token, bootstrap = stored, TokenBootstrap("stored", path)
    else:
        path.unlink(missing_ok=True)  # an empty file is useless; replace it
        token = _create(path)
        bootstrap = TokenBootstrap("created", path, token)
    grant = TokenGrant(principal=BOOTSTRAP_PRINCIPAL, role="admin")
    return settings.model_copy(update={"auth": AuthSettings(tokens={token: grant})}), bootstrap
