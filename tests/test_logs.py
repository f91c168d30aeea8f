"""JSON log lines: message, level and the job context from the call or from Temporal."""

from __future__ import annotations

import json
import logging

from app.logs import JsonFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("app.test", logging.WARNING, __file__, 1, "Failed %s", ("x",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_line_has_message_and_level() -> None:
    line = json.loads(JsonFormatter().format(_record()))
    assert line["message"] == "Failed x"
    assert line["level"] == "WARNING"
    assert line["logger"] == "app.test"
    assert line["time"].endswith("+00:00")


def test_json_line_carries_job_context() -> None:
    record = _record(
        job_id="job_1",
        tool="mute-video",
        temporal_activity={"workflow_id": "job_1", "attempt": 2, "activity_type": "mute_video"},
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["job_id"] == "job_1"
    assert line["workflow_id"] == "job_1"
    assert line["tool"] == "mute-video"
    assert line["attempt"] == 2
    assert line["activity"] == "mute_video"


def test_json_line_keeps_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record()
        record.exc_info = __import__("sys").exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exception"]
