"""Process-wide logging: plain text by default, one JSON object per line for log collectors."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

# Fields that the service's own log calls pass in ``extra``, copied to the top of a JSON line.
CONTEXT_FIELDS = ("job_id", "workflow_id", "tool", "attempt", "error_code", "slot")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """Format a record as JSON with its time, level, logger, message and job context.

    Inside activities and workflows the Temporal SDK's loggers attach their context as
    ``temporal_activity`` or ``temporal_workflow``. The workflow id and attempt are taken from
    there when the call itself did not pass them.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        temporal = getattr(record, "temporal_activity", None) or getattr(
            record, "temporal_workflow", None
        )
        if isinstance(temporal, dict):
            line.setdefault("workflow_id", temporal.get("workflow_id"))
            if "attempt" in temporal:
                line.setdefault("attempt", temporal["attempt"])
            if "activity_type" in temporal:
                line.setdefault("activity", temporal["activity_type"])
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Send this process's logs to standard error as text or, for ``json``, as JSON lines.

    In JSON mode uvicorn's loggers also go through the root handler, so that every line of
    the API process is JSON, and the Temporal SDK's loggers stop repeating their context in
    the message.
    """
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        # The SDK loggers append their context to the message; in JSON it is in fields already.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            uvicorn_logger = logging.getLogger(name)
            uvicorn_logger.handlers.clear()
            uvicorn_logger.propagate = True
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
