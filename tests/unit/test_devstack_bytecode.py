"""The dev-stack bench says whether a CLI start reads bytecode or compiles source, the larger part of a cold start."""

from __future__ import annotations

import py_compile
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.bench.devstack import bytecode_state


@pytest.fixture
def probe_package(tmp_path: Path) -> Iterator[Path]:
    package = tmp_path / "devstack_probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield package
    finally:
        sys.path.remove(str(tmp_path))


def test_a_package_without_bytecode_is_reported_as_compiled_at_every_start(probe_package: Path) -> None:
    assert bytecode_state({}, probe=probe_package.name)["dependencies_precompiled"] is False


def test_a_package_compiled_at_install_is_reported_as_precompiled(probe_package: Path) -> None:
    py_compile.compile(str(probe_package / "__init__.py"), doraise=True)
    assert bytecode_state({}, probe=probe_package.name)["dependencies_precompiled"] is True


def test_bytecode_state_reports_whether_python_may_cache_what_it_compiles() -> None:
    assert bytecode_state({"PYTHONDONTWRITEBYTECODE": "1"})["writes_bytecode"] is False
    assert bytecode_state({})["writes_bytecode"] is True


def test_an_absent_package_is_not_precompiled() -> None:
    assert bytecode_state({}, probe="no_such_package_for_the_devstack_probe")["dependencies_precompiled"] is False
