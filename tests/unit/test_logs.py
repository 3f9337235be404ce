"""Log lines: one JSON object per line with the documented fields (README: Operating Arrears)."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator

import pytest

from arrears.logs import setup_logging


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("worker", "json", "INFO")
    yield stream
    root.handlers[:], root.level = saved[0], saved[1]


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_has_the_documented_fields_and_the_extra_ids(captured: io.StringIO) -> None:
    logging.getLogger("streams.processor").info(
        "dead-lettered %s", "L-1", extra={"topic": "loan.accounts", "partition": 3, "offset": 42, "reason": "X"})
    [entry] = lines(captured)
    assert entry["level"] == "INFO"
    assert entry["component"] == "worker"
    assert entry["logger"] == "streams.processor"
    assert entry["msg"] == "dead-lettered L-1"
    assert (entry["topic"], entry["partition"], entry["offset"], entry["reason"]) == ("loan.accounts", 3, 42, "X")
    ts = dt.datetime.fromisoformat(str(entry["ts"]))
    assert ts.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - ts).total_seconds()) < 60
    assert len(str(entry["ts"]).split(".")[1].split("+")[0]) == 3, "milliseconds"
    assert set(entry) == {"ts", "level", "component", "logger", "msg", "topic", "partition", "offset", "reason"}


def test_an_exception_stays_on_its_one_line(captured: io.StringIO) -> None:
    try:
        raise ValueError("bad amount")
    except ValueError:
        logging.getLogger("x").exception("failed on %s", "E-1")
    assert len(captured.getvalue().splitlines()) == 1
    [entry] = lines(captured)
    assert entry["level"] == "ERROR"
    assert "ValueError: bad amount" in str(entry["exc"])


def test_values_json_cannot_hold_are_written_as_text_and_unicode_as_is(captured: io.StringIO) -> None:
    logging.getLogger("x").warning("分区 %d", 1, extra={"when": dt.date(2026, 3, 1), "ids": {"L-1"}})
    raw = captured.getvalue()
    assert "分区 1" in raw
    [entry] = lines(captured)
    assert entry["when"] == "2026-03-01"
    assert entry["ids"] == "{'L-1'}"


def test_below_the_level_nothing_is_written(captured: io.StringIO) -> None:
    logging.getLogger("x").debug("noise")
    logging.getLogger("aiokafka").info("chatter")
    assert captured.getvalue() == ""


def test_text_format_is_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("demo", "text", "INFO")
        logging.getLogger("producers.demo").info("started %d workers", 2)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    assert stream.getvalue().rstrip().endswith("INFO demo producers.demo: started 2 workers")
