"""The files transport on the real broker: outbox CSVs out, inbox CSVs in, bad rows rejected."""

from __future__ import annotations

import csv
import datetime as dt
import io
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafkatools import read_topic
from workorders import cancelled, issued, publish_work_orders

from arrears.broker import free_port
from arrears.kafka import create_topics
from arrears.settings import Settings
from consumers.adapter import Adapter
from consumers.csvformat import WORK_ORDER_COLUMNS
from consumers.files import outbox_name, read_outbox_rows
from consumers.simagency import FileDropAgency
from consumers.simplan import SimProfile

pytestmark = pytest.mark.broker

RESULTS = (
    "type,event_id,occurred_at,agency_id,case_id,work_order_id,attempted_at,channel,party,outcome,"
    "promised_amount,promised_date,details,reason\r\n"
    "ContactAttempted,,,AG2,LN-1:1,WO-LN-1:1,2026-03-02T02:15:00Z,CALL,DEBTOR,RIGHT_PARTY_CONTACT,,,,\r\n"
    "ContactAttempted,,,AG2,LN-1:1,WO-LN-1:1,2026-03-02T02:16:00Z,CALL,DEBTOR,ANGRY,,,,\r\n"
    "PromiseToPay,ptp-7,2026-03-02T02:20:00Z,,LN-1:1,WO-LN-1:1,,,,,50000,2026-03-09,,\r\n"
    "PromiseToPay,,,,LN-2:1,WO-LN-2:1,,,,,500.00,2026-03-09,,\r\n"
    "DisputeRaised,,2026-03-02T03:00:00Z,AG1,LN-2:1,WO-LN-2:1,,,,,,,not my loan,\r\n"
    "CaseReturned,,2026-03-02T04:00:00Z,,LN-3:1,WO-LN-3:1,,,,,,,,UNREACHABLE\r\n"
)


def files_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    settings = make_settings(
        {
            "agencies": [
                {
                    "id": "AG2",
                    "buckets": ["M3"],
                    "capacity": 100,
                    "transport": {
                        "type": "files",
                        "outbox": str(tmp_path / "out"),
                        "inbox": str(tmp_path / "in"),
                        "poll_seconds": 0.2,
                    },
                }
            ]
        },
        arrears_partitions=3,
    )
    create_topics(settings, settings.topics.specs(3, ["AG2"]))
    return settings


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def outbox_rows(out: Path) -> list[dict[str, str]]:
    """Every row of the outbox, files in date order (what an agency reading them all gets)."""
    found: list[dict[str, str]] = []
    for path in sorted(out.glob("work-orders-*.csv")):
        found += read_outbox_rows(path)[0]
    return found


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_work_orders_land_once_each_in_order_in_the_file_of_the_day_they_are_written(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = files_settings(make_settings, tmp_path)
    # The events' own times are days apart and out of order: the file follows the adapter's day.
    first = [issued("LN-1:1", "AG2"), issued("LN-2:1", "AG2", occurred_at="2026-03-03T01:00:00Z")]
    later = cancelled("LN-1:1", occurred_at="2026-02-08T09:00:00Z")
    out = tmp_path / "out"
    days = {dt.datetime.now(dt.UTC).date()}
    with Adapter(settings, "AG2", port=free_port()) as adapter:
        adapter.wait_ready()
        publish_work_orders(settings, "AG2", first)
        wait_for(lambda: len(outbox_rows(out)) == 2)
        publish_work_orders(settings, "AG2", [later, first[0]])  # the first again: a re-delivery
        wait_for(lambda: len(outbox_rows(out)) >= 3)
        time.sleep(1)  # the re-delivered one would have arrived by now
    days.add(dt.datetime.now(dt.UTC).date())
    rows = outbox_rows(out)
    assert len(rows) == 3  # the re-delivered one is not written again
    # Each case's events in order; different cases (partitions) may interleave.
    assert [r["type"] for r in rows if r["case_id"] == "LN-1:1"] == ["WorkOrderIssued", "WorkOrderCancelled"]
    assert [r["type"] for r in rows if r["case_id"] == "LN-2:1"] == ["WorkOrderIssued"]
    assert (
        rows[0]["debtor_national_id_masked"] == "**************1234" and rows[0]["overdue_amount"] == "123400"
    )
    files = sorted(p.name for p in out.glob("work-orders-*.csv"))
    assert files and set(files) <= {outbox_name(day) for day in days}
    for name in files:
        assert (out / name).read_text(encoding="utf-8").splitlines()[0] == ",".join(WORK_ORDER_COLUMNS)
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644  # the agency's account can read it


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_a_result_file_with_bad_rows_publishes_the_good_rows_and_files_the_rest(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = files_settings(make_settings, tmp_path)
    inbox = tmp_path / "in"
    inbox.mkdir()
    with Adapter(settings, "AG2", port=free_port()):
        (inbox / ".day1.csv.part").write_bytes(RESULTS.encode())
        (inbox / ".day1.csv.part").rename(inbox / "day1.csv")  # as agencies are told to upload
        wait_for(lambda: (inbox / "processed" / "day1.csv").exists())
        records = read_topic(settings, settings.topics.agency_results, min_count=3, timeout=10)
    assert sorted((r.key, r.name) for r in records) == [
        (b"LN-1", "ContactAttempted"),
        (b"LN-1", "PromiseToPay"),
        (b"LN-3", "CaseReturned"),
    ]
    assert {r.data["agency_id"] for r in records} == {"AG2"}  # type: ignore[index]
    assert "ptp-7" in {r.data["event_id"] for r in records}  # type: ignore[index]
    rejected = list(
        csv.DictReader(io.StringIO((inbox / "rejected" / "day1.csv").read_text(encoding="utf-8")))
    )
    assert [(r["row"], r["rejection_reason"].split(":")[0]) for r in rejected] == [
        ("2", "outcome"),
        ("4", "promised_amount"),
        ("5", "agency_id"),
    ]
    assert rejected[0]["outcome"] == "ANGRY"
    assert list(inbox.glob("*.csv")) == []


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_settlement_proposals_come_through_the_inbox_with_their_amount_and_pay_by(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """SPEC §10: ``SettlementProposed`` rows use the ``amount`` and ``pay_by`` columns."""
    settings = files_settings(make_settings, tmp_path)
    inbox = tmp_path / "in"
    inbox.mkdir()
    rows = ("type,event_id,occurred_at,case_id,work_order_id,amount,pay_by\r\n"
            "SettlementProposed,stl-1,2026-03-05T10:30:00Z,LN-1:1,WO-LN-1:1,360000,2026-03-20\r\n"
            "SettlementProposed,stl-2,2026-03-05T10:31:00Z,LN-2:1,WO-LN-2:1,0,2026-03-20\r\n"
            "SettlementProposed,stl-3,2026-03-05T10:32:00Z,LN-3:1,WO-LN-3:1,3600.00,2026-03-20\r\n")
    with Adapter(settings, "AG2", port=free_port()):
        (inbox / "offers.csv").write_bytes(rows.encode())
        wait_for(lambda: (inbox / "processed" / "offers.csv").exists())
        (record,) = read_topic(settings, settings.topics.agency_results, min_count=1, timeout=10)
    assert (record.key, record.name) == (b"LN-1", "SettlementProposed")
    assert {k: record.data[k] for k in ("agency_id", "amount", "pay_by")} == {  # type: ignore[index]
        "agency_id": "AG2", "amount": 360_000, "pay_by": dt.date(2026, 3, 20)}
    rejected = list(csv.DictReader(io.StringIO((inbox / "rejected" / "offers.csv").read_text(encoding="utf-8"))))
    assert [(r["row"], r["rejection_reason"].split(":")[0]) for r in rejected] == [("2", "amount"), ("3", "amount")]


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_the_file_drop_agency_reads_the_outbox_and_answers_through_the_inbox(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = files_settings(make_settings, tmp_path)
    orders = [issued(f"FD-{i}:1", "AG2") for i in range(12)]
    agency = FileDropAgency(
        "AG2",
        tmp_path / "out",
        tmp_path / "in",
        seed="t",
        settings=settings,
        profile=SimProfile(violation_rate=0.3, self_cure_rate=0.3),
    )
    with Adapter(settings, "AG2", port=free_port()) as adapter:
        adapter.wait_ready()
        publish_work_orders(settings, "AG2", orders)
        wait_for(lambda: len(outbox_rows(tmp_path / "out")) == 12)
        report = agency.work_day(dt.date(2026, 3, 2))
        assert agency.rows_read == 12 and report.cases_worked == 12
        wait_for(lambda: not list((tmp_path / "in").glob("*.csv")))
        total = sum(report.results.values())
        records = read_topic(settings, settings.topics.agency_results, min_count=total, timeout=10)
        payments = read_topic(
            settings, settings.topics.loan_repayments, min_count=report.repayments, timeout=5
        )
    agency.close()
    assert total > 0 and len(records) == total
    assert not (tmp_path / "in" / "rejected").exists()
    assert len(payments) == report.repayments and {p.data["channel"] for p in payments} <= {"AGENCY"}  # type: ignore[index]
