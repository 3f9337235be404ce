"""The files transport's CSV shapes and the outbox/inbox filing, without a broker."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path

import pytest
from workorders import cancelled, issued, updated

from consumers.csvformat import (
    RESULT_COLUMNS,
    WORK_ORDER_COLUMNS,
    WORK_ORDER_TYPES,
    derived_event_id,
    parse_result_file,
    schema_columns,
    unflatten,
    work_order_row,
)
from consumers.files import Inbox
from consumers.results import Result
from schemas import SchemaViolationError, from_json, get_codec

CATALOG = get_codec().catalog
MTIME = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_work_order_columns_cover_every_field_of_every_work_order_type() -> None:
    derived: list[str] = []
    for name in WORK_ORDER_TYPES:
        derived += [c for c in schema_columns(CATALOG, name) if c not in derived]
    assert set(WORK_ORDER_COLUMNS) == set(derived)


def test_result_columns_cover_every_field_of_every_result_type() -> None:
    from arrears.topics import RESULT_TYPES

    assert {c for n in RESULT_TYPES for c in schema_columns(CATALOG, n)} == set(RESULT_COLUMNS)


def test_a_work_order_flattens_to_prefixed_columns_and_reads_back_identically() -> None:
    wo = issued(
        "L7:2",
        emergency_contacts=[{"name": "李四", "phone": "+86139", "relation": "brother"}],
        emergency_contacts_allowed=True,
    )
    row = work_order_row(wo)
    assert row["debtor_national_id_masked"] == "**************1234"
    assert row["contact_policy_quiet_hours_start"] == "22:00"
    assert row["contact_policy_max_attempts_per_week"] == ""  # null
    assert row["contact_policy_emergency_contacts_allowed"] == "true"
    assert row["emergency_contacts"] == '[{"name":"李四","phone":"+86139","relation":"brother"}]'
    assert from_json(CATALOG, unflatten(CATALOG, "WorkOrderIssued", row)) == from_json(CATALOG, wo)


@pytest.mark.parametrize("event", [updated(), cancelled()])
def test_updates_and_cancellations_leave_the_columns_they_lack_empty(event: dict[str, object]) -> None:
    row = work_order_row(event)
    assert "debtor_name" not in row or row["debtor_name"] == ""
    assert from_json(CATALOG, unflatten(CATALOG, str(event["type"]), row)) == from_json(CATALOG, event)


# The outbox (naming, appending, completion markers, modes) is tested in test_outbox.py.


# --------------------------------------------------------------------------- inbox rows
GOOD = (
    "type,event_id,occurred_at,agency_id,case_id,work_order_id,attempted_at,channel,party,outcome,"
    "promised_amount,promised_date,details,reason\r\n"
    "ContactAttempted,,,AG2,L1:1,WO-1,2026-03-02T02:15:00Z,CALL,DEBTOR,NO_ANSWER,,,,\r\n"
    "PromiseToPay,e-2,2026-03-02T02:20:00Z,,L1:1,WO-1,,,,,50000,2026-03-09,,\r\n"
)


def _parse(text: str, agency: str = "AG2") -> tuple[list[str], list]:  # type: ignore[type-arg]
    return parse_result_file(CATALOG, text.encode("utf-8"), agency_id=agency, default_occurred_at=MTIME)


def test_good_result_rows_get_defaults_for_agency_event_id_and_occurred_at() -> None:
    _, rows = _parse(GOOD)
    assert [r.reason for r in rows] == [None, None]
    contact, promise = rows
    assert contact.name == "ContactAttempted"
    assert contact.value["event_id"] == derived_event_id("AG2", GOOD.encode(), 1)
    assert contact.value["occurred_at"] == contact.value["attempted_at"]
    assert promise.value["agency_id"] == "AG2"
    assert promise.value["promised_date"] == dt.date(2026, 3, 9)


def test_derived_event_ids_are_stable_for_a_file_and_differ_between_files() -> None:
    assert derived_event_id("AG2", b"a", 1) == derived_event_id("AG2", b"a", 1)
    assert derived_event_id("AG2", b"a", 1) != derived_event_id("AG2", b"a", 2)
    assert derived_event_id("AG2", b"a", 1) != derived_event_id("AG2", b"b", 1)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            "ContactAttempted,,,AG2,L1:1,WO-1,2026-03-02T02:15:00Z,CALL,DEBTOR,SHOUTED,,,,",
            "outcome: 'SHOUTED'",
        ),
        (
            "ContactAttempted,,,AG9,L1:1,WO-1,2026-03-02T02:15:00Z,CALL,DEBTOR,NO_ANSWER,,,,",
            "agency_id: 'AG9'",
        ),
        ("ContactAttempted,,,,L1,WO-1,2026-03-02T02:15:00Z,CALL,DEBTOR,NO_ANSWER,,,,", "case_id:"),
        ("PromiseToPay,,,,L1:1,WO-1,,,,,12.50,2026-03-09,,", "promised_amount: expected an integer"),
        ("PromiseToPay,,,,L1:1,WO-1,,,,,1250,,,", "promised_date: missing"),
        ("PromiseToPay,,,,L1:1,WO-1,,,,,1250,2026-03-09,why,", "details: not a field of PromiseToPay"),
        ("RepaymentReceived,,,,L1:1,WO-1,,,,,,,,", "type: 'RepaymentReceived' is not a result type"),
        ("DisputeRaised,,,,L1:1,WO-1,,,,,,,wrong amount", "row: 13 cells, the header has 14"),
        ("CaseReturned,,yesterday,,L1:1,WO-1,,,,,,,,skip", "occurred_at: expected an ISO-8601 instant"),
    ],
)
def test_a_bad_result_row_is_rejected_with_a_reason_naming_the_column(row: str, reason: str) -> None:
    _, rows = _parse(GOOD.splitlines()[0] + "\r\n" + row + "\r\n")
    assert rows[0].value is None
    assert rows[0].reason is not None and reason in rows[0].reason


def test_a_repeated_event_id_in_one_file_is_rejected_as_a_duplicate() -> None:
    dup = GOOD + "PromiseToPay,e-2,2026-03-02T02:20:00Z,,L1:1,WO-1,,,,,50000,2026-03-09,,\r\n"
    _, rows = _parse(dup)
    assert rows[2].reason == "event_id: duplicate of row 2"


def test_a_header_with_a_byte_order_mark_and_only_the_needed_columns_is_accepted() -> None:
    text = "\ufefftype,case_id,work_order_id,details\r\nDisputeRaised,L1:1,WO-1,not my loan\r\n"
    _, rows = _parse(text)
    assert rows[0].reason is None and rows[0].value["details"] == "not my loan"


# --------------------------------------------------------------------------- inbox filing
class RecordingPublisher:
    """Stands in for the results sink: records every batch, or fails like a broker outage."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[Result]] = []
        self.fail = fail

    def __call__(self, batch: Sequence[Result]) -> None:
        if self.fail:
            from arrears.errors import PublishError

            raise PublishError("broker down")
        self.batches.append(list(batch))


def test_inbox_publishes_good_rows_then_files_the_original_and_the_rejected_rows(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path, CATALOG, "AG2")
    bad = "ContactAttempted,,,AG2,L1:1,WO-1,2026-03-02T02:15:00Z,FAX,DEBTOR,NO_ANSWER,,,,\r\n"
    (tmp_path / "day1.csv").write_bytes((GOOD + bad).encode())
    publish = RecordingPublisher()
    (path,) = inbox.pending()
    outcome = inbox.process(path, publish)
    assert (outcome.accepted, outcome.rejected) == (2, 1)
    assert [n for n, _ in publish.batches[0]] == ["ContactAttempted", "PromiseToPay"]
    assert (tmp_path / "processed" / "day1.csv").read_bytes() == (GOOD + bad).encode()
    (rejected,) = _rows((tmp_path / "rejected" / "day1.csv").read_text(encoding="utf-8"))
    assert (rejected["row"], rejected["channel"]) == ("3", "FAX")
    assert rejected["rejection_reason"].startswith("channel:")
    assert inbox.pending() == []


def test_inbox_leaves_the_file_in_place_when_publishing_fails(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path, CATALOG, "AG2")
    (tmp_path / "day1.csv").write_bytes(GOOD.encode())
    from arrears.errors import PublishError

    with pytest.raises(PublishError):
        inbox.process(tmp_path / "day1.csv", RecordingPublisher(fail=True))
    assert [p.name for p in inbox.pending()] == ["day1.csv"]
    retry = RecordingPublisher()
    inbox.process(tmp_path / "day1.csv", retry)
    first_ids = [v["event_id"] for _, v in retry.batches[0]]
    assert first_ids[0] == derived_event_id("AG2", GOOD.encode(), 1)  # the same ids as the failed try


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xff\xfetype\r\n", "file: not UTF-8"),
        (b"", "header: the file has no header row"),
        (b"case_id,details\r\nL1:1,x\r\n", "header: no 'type' column"),
        (b"type,notes\r\nDisputeRaised,x\r\n", "header: unknown column 'notes'"),
        (b"type,details,details\r\n", "header: column 'details' appears twice"),
    ],
)
def test_an_unusable_file_is_rejected_whole_with_a_reason_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    inbox = Inbox(tmp_path, CATALOG, "AG2")
    (tmp_path / "x.csv").write_bytes(content)
    publish = RecordingPublisher()
    outcome = inbox.process(tmp_path / "x.csv", publish)
    assert outcome.file_error is not None and outcome.file_error.startswith(reason)
    assert publish.batches == []
    assert (tmp_path / "rejected" / "x.csv").read_bytes() == content
    assert (tmp_path / "rejected" / "x.csv.reason.txt").read_text().startswith(reason)


def test_a_reused_file_name_does_not_overwrite_an_earlier_processed_file(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path, CATALOG, "AG2")
    for _ in range(2):
        (tmp_path / "results.csv").write_bytes(GOOD.encode())
        inbox.process(tmp_path / "results.csv", RecordingPublisher())
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == ["results.1.csv", "results.csv"]


def test_dot_files_and_other_extensions_in_the_inbox_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / ".upload.csv").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "ready.csv").write_text(GOOD)
    assert [p.name for p in Inbox(tmp_path, CATALOG, "AG2").pending()] == ["ready.csv"]


def test_unflatten_refuses_a_non_boolean_policy_flag() -> None:
    row = work_order_row(issued())
    row["contact_policy_emergency_contacts_allowed"] = "yes"
    with pytest.raises(SchemaViolationError, match="contact_policy_emergency_contacts_allowed"):
        unflatten(CATALOG, "WorkOrderIssued", row)
