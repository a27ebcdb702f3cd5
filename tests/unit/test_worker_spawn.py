"""How ``WorkerPool`` starts a worker: no Python runs in the starting process around the fork (where a Ctrl-C was
lost), and the worker itself arranges to stop when the process that started it dies."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from orchestrator.runtime.procs import PARENT_PID_ENV, _Worker

_AFTER_FORK_IN_PARENT: list[int] = []
os.register_at_fork(after_in_parent=lambda: _AFTER_FORK_IN_PARENT.append(os.getpid()))


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_spawning_a_worker_runs_no_python_at_fork_in_the_starting_process() -> None:
    """Python's at-fork hooks ran in the parent for a ``preexec_fn``; a SIGINT handled inside one is "Exception
    ignored" and lost, so a Ctrl-C at that moment let the demo run to its end. Without one, none run."""
    worker = _Worker("cmdb-agent", [sys.executable, "-c", "pass"], {}, quiet=True)
    before = len(_AFTER_FORK_IN_PARENT)
    worker.spawn()
    assert worker.process is not None
    assert worker.process.wait(timeout=30) == 0
    assert len(_AFTER_FORK_IN_PARENT) == before, "a hook ran in this process around the worker's fork"


def test_a_spawned_worker_is_told_which_process_started_it(capfd: pytest.CaptureFixture[str]) -> None:
    worker = _Worker(
        "cmdb-agent", [sys.executable, "-c", f"import os; print(os.environ['{PARENT_PID_ENV}'])"], {}, quiet=False
    )
    worker.spawn()
    assert worker.process is not None
    assert worker.process.wait(timeout=30) == 0
    assert capfd.readouterr().out.split() == [str(os.getpid())]


def test_a_worker_whose_starter_is_gone_does_not_start() -> None:
    result = _python(
        "import os\n"
        "from orchestrator.runtime.procs import die_with_parent\n"
        "die_with_parent(os.getppid() + 1)  # not this process' parent: the starter died before the worker asked\n"
        "print('started')\n"
    )
    assert result.returncode == 1
    assert "started" not in result.stdout
    assert f"({os.getpid() + 1}) is gone" in result.stderr


def test_a_worker_with_its_starter_alive_starts_and_forgets_the_starters_pid() -> None:
    result = _python(
        "import os\n"
        "from orchestrator.runtime.procs import PARENT_PID_ENV, die_with_parent\n"
        "die_with_parent(os.getppid())\n"
        "print('started', PARENT_PID_ENV in os.environ)\n",
        {PARENT_PID_ENV: str(os.getpid())},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["started", "False"]  # a process the worker starts is not told it
