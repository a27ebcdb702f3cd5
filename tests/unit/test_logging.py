"""JSON logs with recursive secret redaction and the run id attached."""

from __future__ import annotations

import io
import json
import logging

from orchestrator.runtime.logging_config import configure_logging, correlation_id, redact


def test_redact_is_recursive_and_case_insensitive() -> None:
    data = {"Password": "p", "nested": {"api_key": "k", "ok": 1, "items": [{"token": "t", "name": "n"}]}}
    assert redact(data) == {
        "Password": "***",
        "nested": {"api_key": "***", "ok": 1, "items": [{"token": "***", "name": "n"}]},
    }


def test_log_lines_are_json_with_correlation_id_and_redacted_extras() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    token = correlation_id.set("run-123")
    try:
        logging.getLogger("orchestrator.test").info("step done", extra={"secret": "hunter2", "step_id": "a"})
    finally:
        correlation_id.reset(token)
        logging.getLogger().handlers.clear()
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert line["message"] == "step done" and line["level"] == "INFO"
    assert line["correlation_id"] == "run-123"
    assert line["data"] == {"secret": "***", "step_id": "a"}


def test_an_exception_keeps_its_traceback() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    try:
        try:
            {}["missing"]
        except KeyError:
            logging.getLogger("orchestrator.test").exception("lookup failed")
    finally:
        logging.getLogger().handlers.clear()
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert line["exception"]["type"] == "KeyError"
    trace = line["exception"]["traceback"]
    assert trace.startswith("Traceback (most recent call last)") and "test_an_exception_keeps_its_traceback" in trace
