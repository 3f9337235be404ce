"""Logging setup: one JSON object per line (or plain text), never personal data.

The JSON lines come from python-json-logger, configured here to keep the fields operators
rely on: ``ts`` (ISO-8601 UTC, milliseconds), ``level``, ``component``, ``logger``, ``msg``,
``exc`` when there is an exception, and every ``extra`` field a call passes (ids and Kafka
coordinates: topic/partition/offset, reason, agency_id, business_date). Values JSON cannot hold
are written as their ``str()``. structlog was not adopted: every module logs through the
standard ``logging`` API with ``extra=``, which this keeps as it is.

Names, phones and national ids are never passed to a logger anywhere in the code base (the
demo's end-to-end test greps every line of every process's log for them).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

#: standard LogRecord attributes → the names the log lines use
_RENAMED = {"levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc"}


def _json_value(value: object) -> str:
    """What goes in a line for a value JSON cannot hold (the timestamp included)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return str(value)


def json_formatter(component: str) -> logging.Formatter:
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields=_RENAMED,
        static_fields={"component": component},
        timestamp="ts",
        json_default=_json_value,
        json_ensure_ascii=False,
    )


def setup_logging(component: str, fmt: str = "json", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(json_formatter(component))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {component} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # librdkafka and aiokafka chatter at INFO is noise for operators.
    for noisy in ("rdkafka", "aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
