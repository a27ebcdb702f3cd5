"""A JSON configuration file under ``ORCH_DATA_DIR``, re-read when it changes, with a default shipped in the package.

Why: the registry and the routing rules are files an operator edits, and a running
API must pick up an edit without a restart. Each read checks the file's modification time and size (at
most once per ``interval``); a changed file is parsed and validated again. A file that no longer
validates is not applied: the last good version stays in force and the error is logged and kept in
``last_error``. At start-up there is no last good version, so a bad file fails loudly instead.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

from orchestrator.errors import OrchestratorError

T = TypeVar("T")
log = logging.getLogger(__name__)


def packaged_default(name: str) -> Any:
    """A default configuration file shipped in ``orchestrator/config``, parsed."""
    return json.loads(resources.files("orchestrator").joinpath("config", name).read_text(encoding="utf-8"))


def write_json_atomically(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class WatchedJsonFile(Generic[T]):
    """``get()`` the parsed value of ``path`` (or of the packaged default while ``path`` does not exist)."""

    def __init__(
        self,
        path: Path,
        default_name: str,
        parse: Callable[[Any, str], T],
        *,
        load_error: Callable[[str], OrchestratorError],
        interval: float = 1.0,
    ) -> None:
        self.path = path
        self.default_name = default_name
        self.parse = parse
        self.load_error = load_error
        self.interval = interval
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._value: T | None = None

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def read_raw(self) -> Any:
        """The document as it is on disk (or the packaged default), not validated."""
        if not self.path.exists():
            return packaged_default(self.default_name)
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise self.load_error(f"{self.path} cannot be read as JSON: {exc}; fix the file or remove it") from exc

    def get(self) -> T:
        with self._lock:
            now = time.monotonic()
            if self._value is not None and now - self._checked < self.interval:
                return self._value
            self._checked = now
            stamp = self._current_stamp()
            if self._value is not None and stamp == self._stamp:
                return self._value
            source = str(self.path) if stamp is not None else f"the packaged default {self.default_name}"
            try:
                value = self.parse(self.read_raw(), source)
            except OrchestratorError as exc:
                if self._value is None:
                    raise
                self.last_error = exc.message
                self._stamp = stamp  # do not re-parse the same bad file on every call
                log.error("%s is invalid and was not applied (the previous version stays): %s", self.path, exc.message)
                return self._value
            self._value, self._stamp, self.last_error = value, stamp, None
            return value

    def invalidate(self) -> None:
        """Re-read on the next ``get()`` (after this process wrote the file itself)."""
        with self._lock:
            self._checked = 0.0
            self._stamp = None
