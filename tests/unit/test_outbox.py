"""The files transport's outbox (SPEC §6), without a broker: what an agency fetching the files relies on.

Files are named by the day the adapter writes them (in the transport's timezone), appended to,
readable by the agency's account, and marked complete with a ``.done`` manifest once their day
has passed; each case's events stay in order across files, and a re-delivered batch adds nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from workorders import cancelled, issued, updated

import consumers.files as files
from consumers.csvformat import WORK_ORDER_COLUMNS, render_csv, work_order_row
from consumers.files import DONE_SUFFIX, Inbox, Outbox, complete_rows, outbox_name, read_outbox_rows
from schemas import get_codec

HEADER = ",".join(WORK_ORDER_COLUMNS)


class Clock:
    """The adapter's wall clock, moved by the test."""

    def __init__(self, at: str) -> None:
        self.at = dt.datetime.fromisoformat(at)

    def __call__(self) -> dt.datetime:
        return self.at

    def set(self, at: str) -> None:
        self.at = dt.datetime.fromisoformat(at)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """A umask that would make new files private: the outbox must not depend on the process's."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def test_a_file_is_named_by_the_day_the_adapter_writes_it_not_by_the_events_time(tmp_path: Path) -> None:
    # The case: a cancellation caused by a dispute stamped in February, processed in November.
    clock = Clock("2026-11-30T10:00:00+00:00")
    outbox = Outbox(tmp_path, now=clock)
    late = cancelled("L1:1", occurred_at="2026-02-08T03:00:00.000Z")
    assert outbox.append([issued("L1:1"), late]) == 2
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["work-orders-2026-11-30.csv"]
    assert [r["type"] for r in rows(tmp_path / "work-orders-2026-11-30.csv")] == [
        "WorkOrderIssued", "WorkOrderCancelled",
    ]


def test_the_day_is_the_transports_timezone(tmp_path: Path) -> None:
    clock = Clock("2026-03-01T23:30:00+00:00")  # already 2 March in Shanghai
    Outbox(tmp_path / "utc", now=clock).append([issued("L1:1")])
    Outbox(tmp_path / "sh", timezone="Asia/Shanghai", now=clock).append([issued("L1:1")])
    assert [p.name for p in (tmp_path / "utc").glob("*.csv")] == [outbox_name(dt.date(2026, 3, 1))]
    assert [p.name for p in (tmp_path / "sh").glob("*.csv")] == [outbox_name(dt.date(2026, 3, 2))]


def test_a_cases_events_stay_in_order_across_days_and_a_past_day_is_marked_complete(tmp_path: Path) -> None:
    clock = Clock("2026-03-02T08:00:00+00:00")
    outbox = Outbox(tmp_path, now=clock)
    order = [issued("L1:1", occurred_at="2026-03-02T01:00:00Z"), updated("L1:1", occurred_at="2026-03-02T02:00:00Z")]
    outbox.append(order)
    day1 = tmp_path / "work-orders-2026-03-02.csv"
    assert not day1.with_name(day1.name + DONE_SUFFIX).exists()  # the day is not over

    clock.set("2026-03-03T00:00:05+00:00")
    outbox.roll()  # the adapter does this every few seconds, work orders or not
    marker = json.loads(day1.with_name(day1.name + DONE_SUFFIX).read_text())
    data = day1.read_bytes()
    assert marker == {"file": day1.name, "date": "2026-03-02", "timezone": "UTC", "rows": 2,
                      "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    day2 = tmp_path / "work-orders-2026-03-03.csv"
    assert day2.read_bytes() == (HEADER + "\r\n").encode()  # opened at the start of the day

    # A cancellation caused by something stamped on the 1st, processed on the 3rd: today's file.
    outbox.append([cancelled("L1:1", occurred_at="2026-03-01T09:00:00Z")])
    assert day1.read_bytes() == data  # complete files never change
    together = rows(day1) + rows(day2)
    assert [r["type"] for r in together] == ["WorkOrderIssued", "WorkOrderUpdated", "WorkOrderCancelled"]


def test_files_and_markers_are_readable_by_the_agency_whatever_the_umask(
    tmp_path: Path, strict_umask: None
) -> None:
    clock = Clock("2026-03-02T08:00:00+00:00")
    outbox = Outbox(tmp_path / "out", now=clock)
    outbox.append([issued("L1:1")])
    clock.set("2026-03-03T08:00:00+00:00")
    outbox.roll()
    for name in ("work-orders-2026-03-02.csv", "work-orders-2026-03-02.csv.done", "work-orders-2026-03-03.csv"):
        assert mode(tmp_path / "out" / name) == 0o644, name
    assert mode(tmp_path / "out") == 0o755  # the adapter created it: listable by whoever may read

    private = Outbox(tmp_path / "grp", file_mode=0o640, now=clock)
    private.append([issued("L1:1")])
    assert mode(tmp_path / "grp" / "work-orders-2026-03-03.csv") == 0o640
    assert mode(tmp_path / "grp") == 0o750


def test_rejected_rows_in_the_inbox_are_readable_by_the_agency(tmp_path: Path, strict_umask: None) -> None:
    inbox = Inbox(tmp_path, get_codec().catalog, "AG2", file_mode=0o640)
    (tmp_path / "r.csv").write_text("type,case_id,work_order_id,details\r\nDisputeRaised,L1,WO-1,x\r\n")
    inbox.process(tmp_path / "r.csv", lambda batch: None)
    assert mode(tmp_path / "rejected" / "r.csv") == 0o640
    assert mode(tmp_path / "rejected") == 0o750


def test_a_redelivered_batch_adds_nothing_even_after_a_restart_and_across_midnight(tmp_path: Path) -> None:
    clock = Clock("2026-03-02T23:59:58+00:00")
    batch = [issued("L1:1"), updated("L1:1")]
    assert Outbox(tmp_path, now=clock).append(batch) == 2
    clock.set("2026-03-03T00:00:03+00:00")
    restarted = Outbox(tmp_path, now=clock)  # a crash before the commit: the same batch again
    later = cancelled("L1:1")
    assert restarted.append([*batch, later]) == 1
    assert [r["event_id"] for r in rows(tmp_path / "work-orders-2026-03-03.csv")] == [later["event_id"]]
    assert restarted.append([later]) == 0


def test_replicas_sharing_the_outbox_see_each_others_rows(tmp_path: Path) -> None:
    clock = Clock("2026-03-02T08:00:00+00:00")
    one, two = Outbox(tmp_path, now=clock), Outbox(tmp_path, now=clock)
    first = issued("L1:1")
    one.append([first])
    assert two.append([first, updated("L1:1")]) == 1  # a rebalance moved the partition to `two`
    assert one.append([cancelled("L2:1")]) == 1
    assert len(rows(tmp_path / "work-orders-2026-03-02.csv")) == 3


def test_an_append_reads_only_what_others_wrote_since_not_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock("2026-03-02T08:00:00+00:00")
    outbox = Outbox(tmp_path, now=clock)
    outbox.append([issued(f"L{i}:1") for i in range(200)])
    reads: list[int] = []
    real = files.read_outbox_rows

    def spy(path: Path, offset: int = 0) -> tuple[list[dict[str, str]], int]:
        found, end = real(path, offset)
        reads.append(end - offset)
        return found, end

    monkeypatch.setattr(files, "read_outbox_rows", spy)
    size = (tmp_path / "work-orders-2026-03-02.csv").stat().st_size
    for i in range(20):
        outbox.append([updated(f"L{i}:1")])
    assert reads == []  # its own appends: nothing to read back
    Outbox(tmp_path, now=clock).append([cancelled("L0:1")])  # another replica
    outbox.append([cancelled("L1:1")])
    grown = (tmp_path / "work-orders-2026-03-02.csv").stat().st_size
    assert reads[-1] < (grown - size) / 10  # one row, not the file


def test_a_torn_last_row_is_never_read_and_is_cut_before_the_next_append(tmp_path: Path) -> None:
    clock = Clock("2026-03-02T08:00:00+00:00")
    Outbox(tmp_path, now=clock).append([issued("L1:1")])
    path = tmp_path / "work-orders-2026-03-02.csv"
    whole = path.read_bytes()
    torn = render_csv(WORK_ORDER_COLUMNS, [work_order_row(issued("L2:1"))], header=False).encode()[:50]
    path.write_bytes(whole + torn)  # a writer killed mid-batch
    found, end = read_outbox_rows(path)
    assert (len(found), end) == (1, len(whole))
    assert Outbox(tmp_path, now=clock).append([issued("L3:1")]) == 1
    assert [r["case_id"] for r in rows(path)] == ["L1:1", "L3:1"]


@pytest.mark.parametrize("cut", range(1, 40))
def test_complete_rows_stops_before_any_cut_through_a_quoted_or_multibyte_cell(cut: int) -> None:
    event = issued("L1:1")
    event["debtor"]["name"] = '王 "小明",\r\n二'  # quotes, a comma and a line break inside one cell
    data = render_csv(WORK_ORDER_COLUMNS, [work_order_row(event)]).encode()
    header_len = len(HEADER) + 2
    assert complete_rows(data, header=True).rows[0]["debtor_name"] == event["debtor"]["name"]
    body = data[header_len:]
    found = complete_rows(body[: len(body) - cut], header=False)
    assert (found.length, found.rows) == (0, [])


def test_a_clock_that_steps_back_never_writes_into_a_completed_day(tmp_path: Path) -> None:
    clock = Clock("2026-03-03T00:00:10+00:00")
    Outbox(tmp_path, now=clock).append([issued("L1:1")])
    (tmp_path / "work-orders-2026-03-02.csv.done").write_text("{}")  # another replica closed the 2nd
    clock.set("2026-03-02T23:59:59+00:00")  # this replica's clock is behind
    Outbox(tmp_path, now=clock).append([updated("L1:1")])
    assert not (tmp_path / "work-orders-2026-03-02.csv").exists()
    assert len(rows(tmp_path / "work-orders-2026-03-03.csv")) == 2


def agencies_doc_fetch_example() -> Any:
    """The fetch loop docs/agencies.md gives agencies, as code."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "agencies.md").read_text(encoding="utf-8")
    (source,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "def new_days" in b]
    namespace: dict[str, Any] = {}
    exec(compile(source, "docs/agencies.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["new_days"]


def test_the_fetch_loop_of_the_agencies_doc_gets_every_event_once_in_order(tmp_path: Path) -> None:
    clock = Clock("2026-03-02T10:00:00+00:00")
    outbox = Outbox(tmp_path, now=clock)
    sent = []
    for day in range(2, 6):
        clock.set(f"2026-03-{day:02d}T10:00:00+00:00")
        batch = [issued(f"L{day}:1"), updated(f"L{day - 1}:1")]
        outbox.append(batch)
        sent += [e["event_id"] for e in batch]
    new_days = agencies_doc_fetch_example()
    processed: set[str] = set()
    fetched = []
    for fetch_at in ("2026-03-05T23:59:00+00:00", "2026-03-06T00:01:00+00:00"):  # the last day, then after it
        clock.set(fetch_at)
        outbox.roll()
        for name, found in new_days(tmp_path, processed):
            fetched += [r["event_id"] for r in found]
            processed.add(name)
        assert len(processed) == (3 if fetch_at.startswith("2026-03-05") else 4)
    assert fetched == sent

    (tmp_path / "work-orders-2026-03-07.csv.done").write_text((tmp_path / "work-orders-2026-03-05.csv.done").read_text()
                                                             .replace("03-05", "03-07"))
    (tmp_path / "work-orders-2026-03-07.csv").write_bytes((tmp_path / "work-orders-2026-03-05.csv").read_bytes()[:-9])
    with pytest.raises(RuntimeError, match="incomplete copy"):
        list(new_days(tmp_path, processed))
