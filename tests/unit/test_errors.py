"""The error tree: stable codes, HTTP statuses, retryability, and rebuildable from args (Celery does that)."""

from __future__ import annotations

import pickle

import pytest

from orchestrator import errors
from orchestrator.errors import OrchestratorError, error_class_for, from_dict

ALL = [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, OrchestratorError)]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_error_rebuilds_from_its_args_and_pickles(cls: type[OrchestratorError]) -> None:
    original = cls("something went wrong", {"run_id": "r1"})
    rebuilt = cls(*original.args)
    assert (rebuilt.code, rebuilt.message, rebuilt.details) == (original.code, original.message, original.details)
    unpickled = pickle.loads(pickle.dumps(original))
    assert str(unpickled) == f"[{cls.code}] something went wrong"
    again = from_dict(original.to_dict())
    assert type(again) is cls and again.retryable is cls.retryable  # run state and events keep the class


def test_every_class_owns_its_code() -> None:
    """A shared code would rebuild as the first class that has it (a retryable error would lose ``retryable``)."""
    codes = [cls.code for cls in ALL]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)


def test_codes_follow_the_compatible_table() -> None:
    expected = {
        "ORCH_1001": 404,
        "ORCH_2001": 502,
        "ORCH_3002": 409,
        "ORCH_3003": 502,
        "ORCH_3006": 422,
        "ORCH_6001": 403,
        "ORCH_7002": 504,
        "ORCH_7004": 502,
    }
    for code, status in expected.items():
        assert error_class_for(code).http_status == status
    assert error_class_for("ORCH_7001").retryable is False
    assert errors.RetryableTaskError("x").retryable is True
    assert all(c.code.startswith("ORCH_") for c in ALL)
