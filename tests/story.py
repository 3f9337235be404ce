"""A collections story for the edge tests: loans, ticks, agency results and the awkward records.

Thirty-two loans over eight weeks of business dates, with one agency working the cases that
reach M2; two of them belong to one debtor and live in different partitions (so do the debtor's
budget and the placement of its cases). Between the ticks, agency results and repayments
interleave the way they do in production: contacts reported late (after the next tick, or
after the repayment that cured the case), a dispute and its release, promises kept and broken,
calls over the daily limit (over two loans too), calls in quiet hours, third parties called
with and without the debtor being unreachable. And the records an operator meets at the
edges: repayments in committed and aborted transactions, a repayment that breaks the contract
and its corrected form under the same event id, a result timed in 2099, a tick whose barrier
names an offset past the end, a stale tick.

:func:`story` gives the records in publish order; :func:`expected` computes, with the pure
rules alone (no Kafka), what a worker must emit for them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from arrears.config import parse_config
from arrears.domain import events as ev
from arrears.domain.pipeline import Pipeline
from arrears.topics import INPUT_ROUTES
from schemas import default_catalog, from_json, to_json
from streams.records import to_domain, to_record, to_tick
from streams.store import partition_of

CONFIG: dict[str, Any] = {
    "internal_buckets": ["M1"],
    "agencies": [{"id": "AG1", "buckets": ["M2", "M3", "M4"], "capacity": 1000, "weight": 1,
                  "assignment_days": 60,
                  "transport": {"type": "webhook", "url": "https://ag1.example/arrears", "secret_env": "AG1_SECRET"}}],
}
LOANS = [f"S-{i:02d}" for i in range(30)]
DUO, DUO_LOANS = "SC-DUO", ("S-30", "S-31")  # one debtor, two loans: partitions 2 and 5 of 6, budget in 1
FIRST_DAY = dt.date(2026, 1, 9)
LAST_DAY = dt.date(2026, 3, 5)
DUE = [dt.date(2026, 1, 10), dt.date(2026, 2, 9), dt.date(2026, 3, 11)]
_NS = uuid.UUID("0a5e1c55-5f6b-4c0e-9b8a-7a3d2f7e6c11")


def eid(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "|".join(map(str, parts))))


def day_start(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def local(day: dt.date, hour: int, minute: int = 0) -> int:
    """Epoch ms of a Shanghai wall-clock time (UTC+8)."""
    return day_start(day) + (hour - 8) * 3_600_000 + minute * 60_000


@dataclass
class Record:
    """One record to publish, in JSON form, with how to publish it."""

    body: dict[str, Any]
    via: str = "plain"  # plain | tx (committed transaction) | tx-abort | bad-barrier
    applies: bool = True  # False: the processor must not apply it (aborted, FUTURE_TIME, bad barrier)
    notes: list[str] = field(default_factory=list)

    @property
    def type(self) -> str:
        return str(self.body["type"])


def _tick(day: dt.date) -> dict[str, Any]:
    return {"type": "BusinessDateChanged", "event_id": eid("tick", day), "occurred_at": day_start(day),
            "calendar": "CN", "business_date": day.isoformat()}


def _repay(loan: str, n: str, amount: int, value_date: dt.date, at: int, currency: str = "CNY",
           event_id: str | None = None) -> dict[str, Any]:
    return {"type": "RepaymentReceived", "event_id": event_id or eid("pay", loan, n), "occurred_at": at,
            "loan_id": loan, "payment_id": f"P-{loan}-{n}", "amount": amount, "currency": currency,
            "value_date": value_date.isoformat(), "channel": "BANK_TRANSFER", "reference": None}


def _result(kind: str, loan: str, n: str, at: int, wo: int = 1, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": eid(kind, loan, n), "occurred_at": at, "agency_id": "AG1",
            "case_id": f"{loan}:1", "work_order_id": f"WO-{loan}:1-{wo}", **fields}


def _call(loan: str, n: str, attempted: int, *, reported: int | None = None, outcome: str = "RIGHT_PARTY_CONTACT",
          party: str = "DEBTOR", wo: int = 1, channel: str = "CALL") -> dict[str, Any]:
    return _result("ContactAttempted", loan, n, reported or attempted, wo, attempted_at=attempted, channel=channel,
                   party=party, outcome=outcome)


def story() -> list[Record]:
    """Every record, in publish order."""
    by_day: dict[dt.date, list[Record]] = {}  # published after that day's tick, before the next one

    def on(day: dt.date, *records: Record) -> None:
        by_day.setdefault(day, []).extend(records)

    opening: list[Record] = []
    for i, loan in enumerate((*LOANS, *DUO_LOANS)):
        customer = DUO if loan in DUO_LOANS else f"SC-{i:02d}"
        opening.append(Record({"type": "LoanOpened", "event_id": eid("open", loan), "occurred_at": day_start(
            dt.date(2026, 1, 1)), "loan_id": loan, "customer_id": customer, "product_code": "CASH",
            "currency": "CNY", "principal": 300_000, "opened_on": "2026-01-01",
            "customer": {"name": f"客户{i}", "phone": f"1380000{i:04d}", "national_id": f"11010119900101{i:04d}",
                         "province": "浙江省", "city": "杭州市", "timezone": "Asia/Shanghai",
                         "emergency_contacts": []}}))
        for n, due in enumerate(DUE, 1):
            opening.append(Record({"type": "InstallmentScheduled", "event_id": eid("inst", loan, n),
                                   "occurred_at": day_start(dt.date(2026, 1, 1)), "loan_id": loan,
                                   "installment_no": n, "due_date": due.isoformat(), "principal_due": 95_000,
                                   "interest_due": 5_000, "fee_due": 0, "currency": "CNY"}))
        kind = i % 5
        if loan in DUO_LOANS:
            continue  # stops paying: see _one_debtor_two_loans
        if kind == 0:  # pays every instalment on its due date; February's through a transactional producer
            for n, due in enumerate(DUE[:2], 1):
                on(due - dt.timedelta(days=1), Record(_repay(loan, str(n), 100_000, due, local(due, 9)),
                                                      via="tx" if n == 2 else "plain"))
        elif kind == 1:  # late in M1, cured on 20 January, then on time
            cure_day = dt.date(2026, 1, 20)
            if i == 1:  # first published in the wrong currency (dead-lettered), then corrected under the same id
                bad = _repay(loan, "1", 100_000, cure_day, local(cure_day, 10), currency="USD")
                on(cure_day, Record(bad, applies=False, notes=["CONTRACT_VIOLATION"]))
            on(cure_day, Record(_repay(loan, "1", 100_000, cure_day, local(cure_day, 10))))
            on(DUE[1] - dt.timedelta(days=1), Record(_repay(loan, "2", 100_000, DUE[1], local(DUE[1], 9))))
        else:
            _worked_case(loan, i, on)
    _one_debtor_two_loans(on)
    records = list(opening)
    day = FIRST_DAY
    while day <= LAST_DAY:
        if day == dt.date(2026, 2, 20):  # first a tick whose barrier points past the end: dead-lettered
            records.append(Record(_tick(day) | {"event_id": eid("bad-tick", day)}, via="bad-barrier",
                                  applies=False, notes=["INVALID_BARRIER"]))
        records.append(Record(_tick(day)))
        if day == dt.date(2026, 2, 25):  # a stale tick: ignored and counted
            records.append(Record(_tick(dt.date(2026, 2, 24)) | {"event_id": eid("stale", day)}, applies=False))
        records.extend(by_day.get(day, []))
        day += dt.timedelta(days=1)
    return records


def _worked_case(loan: str, i: int, on: Any) -> None:
    """A loan that stops paying: its case opens on 11 January (M1, in-house) and reaches M2 on
    10 February, when AG1 gets work order ``WO-<loan>:1-1``."""
    d10, d11, d12, d13, d14 = (dt.date(2026, 2, d) for d in (10, 11, 12, 13, 14))
    kind = i % 5
    if kind == 2:
        # Calls and a promise on the 11th; the promise is paid on the 14th (value date) and kept at the 16th.
        on(d11, Record(_call(loan, "a", local(d11, 10))), Record(_call(loan, "b", local(d11, 11))),
           Record(_result("PromiseToPay", loan, "p", local(d11, 11, 5), promised_amount=100_000,
                          promised_date="2026-02-15")))
        # A call at 09:30 on the 14th is reported after the 11:00 repayment (it was made while AG1 held
        # the case); one at 15:00, after the repayment moved the case out of AG1's buckets, is not authorized.
        on(d14, Record(_repay(loan, "1", 100_000, d14, local(d14, 11))),
           Record(_call(loan, "c", local(d14, 9, 30), reported=local(d14, 12))),
           Record(_call(loan, "d", local(d14, 15))))
        if i == 2:
            on(d12, Record(_call(loan, "future", local(dt.date(2099, 1, 1), 10)), applies=False,
                           notes=["FUTURE_TIME"]))
    elif kind == 3:
        # Four connected calls on the 12th; the 10:00 one is reported only after the 13th's tick,
        # which makes the 13:00 call the fourth of the day. A call at 23:00 breaks the quiet hours.
        on(d12, *(Record(_call(loan, f"x{h}", local(d12, h))) for h in (11, 12, 13)),
           Record(_call(loan, "night", local(d12, 23), outcome="NO_ANSWER")),
           Record(_result("PromiseToPay", loan, "p", local(d12, 14), promised_amount=50_000,
                          promised_date="2026-02-14")))
        on(d13, Record(_call(loan, "x10", local(d12, 10), reported=local(d13, 9))))
        if i == 3:  # a third party, after the debtor went unanswered three times in a row: allowed
            on(d13, *(Record(_call(loan, f"m{h}", local(d13, h), outcome="NO_ANSWER")) for h in (10, 11, 12)),
               Record(_call(loan, "tp", local(d13, 14), party="THIRD_PARTY", outcome="RIGHT_PARTY_CONTACT")))
        else:  # a third party right after the debtor answered: a violation
            on(d13, Record(_call(loan, "tp", local(d13, 14), party="THIRD_PARTY", outcome="RIGHT_PARTY_CONTACT")))
    elif kind == 4:
        # A dispute at 14:00 on the 11th is reported after a 16:00 call: the call is judged again.
        on(d11, Record(_call(loan, "pre", local(d11, 10))), Record(_call(loan, "late", local(d11, 16))),
           Record(_result("DisputeRaised", loan, "dispute", local(d11, 14), details="not my loan")))
        on(d12, Record(_call(loan, "held", local(d12, 10))))
        on(d13, Record({"type": "ReleaseCase", "event_id": eid("release", loan), "occurred_at": local(d13, 9),
                        "case_id": f"{loan}:1", "loan_id": loan, "requested_by": "ops", "reason": "resolved"}))
        on(d14, Record(_call(loan, "after", local(d14, 10), wo=2)))
        if i == 4:  # an aborted transaction: this repayment never happened
            on(d10, Record(_repay(loan, "ghost", 300_000, d10, local(d10, 12)), via="tx-abort", applies=False))


def _one_debtor_two_loans(on: Any) -> None:
    """The debtor SC-DUO's loans S-30 and S-31 both reach M2 on 10 February and go to AG1 together.
    Their calls count in one budget: on the 11th the 13:00 call about S-31 is reported a day late,
    which makes the 14:00 call about S-30 the fourth connected call of the day. On the 13th the
    debtor is unreachable three times over both loans, so a third party may be called about S-31;
    on the 14th the debtor answers about S-31, so a third party called about S-30 is a violation."""
    a, b = DUO_LOANS
    d11, d12, d13, d14 = (dt.date(2026, 2, d) for d in (11, 12, 13, 14))
    on(d11, Record(_call(a, "d10", local(d11, 10))), Record(_call(b, "d11", local(d11, 11))),
       Record(_call(a, "d14", local(d11, 14))))
    on(d12, Record(_call(b, "d13", local(d11, 13), reported=local(d12, 9))))
    on(d13, Record(_call(a, "u10", local(d13, 10), outcome="NO_ANSWER")),
       Record(_call(b, "u11", local(d13, 11), outcome="NO_ANSWER")),
       Record(_call(a, "u12", local(d13, 12), outcome="WRONG_PARTY")),
       Record(_call(b, "tp", local(d13, 14), party="THIRD_PARTY")))
    on(d14, Record(_call(b, "r9", local(d14, 9))), Record(_call(a, "tp", local(d14, 10), party="THIRD_PARTY")))


def duo_held_back(records: list[Record]) -> list[Record]:
    """*records* as the debtor SC-DUO's budget sees them when the worker of S-30's partition is
    down on 13 February: S-30's two unanswered calls reach the budget after S-31's third-party
    call. The CBA rule waits for the next tick, so the verdict is the same as in publish order
    (tests/unit/test_debtor.py)."""
    a, b = DUO_LOANS
    ids = (eid("ContactAttempted", a, "u10"), eid("ContactAttempted", a, "u12"))
    third_party = eid("ContactAttempted", b, "tp")
    held = [r for r in records if r.body["event_id"] in ids]
    rest = [r for r in records if r.body["event_id"] not in ids]
    at = next(i for i, r in enumerate(rest) if r.body["event_id"] == third_party) + 1
    return rest[:at] + held + rest[at:]


def applied(records: list[Record], *, aborted_visible: bool = False) -> Iterator[Record]:
    """The records a worker applies; *aborted_visible*: the broker shows aborted transactions to
    read_committed consumers (the embedded Tansu 0.6 does; Apache Kafka does not)."""
    return (r for r in records if r.applies or (aborted_visible and r.via == "tx-abort"))


@dataclass
class Expected:
    cases: dict[str, dict[str, Any]]  # event_id -> JSON form of each collections.cases record
    compliance: dict[str, dict[str, Any]]  # event_id -> JSON form of each violation
    case_states: dict[str, dict[str, Any]]  # case_id -> the last CaseState
    work_orders: dict[str, dict[str, Any]]  # event_id -> JSON form (debtor block included)
    dead_letters: dict[str, dict[str, int]] = field(default_factory=dict)  # source topic base -> reason -> count
    recoveries: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> collections.recoveries record


def expected(records: list[Record], partitions: int, *, aborted_visible: bool = False) -> Expected:
    """What the rules say a deployment with *partitions* partitions emits for *records* (in publish order)."""
    catalog = default_catalog()
    rules = parse_config(CONFIG).rules(partitions)
    pipeline = Pipeline(rules, partitions, lambda key: partition_of(key.encode(), partitions))
    out = Expected({}, {}, {}, {})

    def dead_letter(record_name: str, reason: str) -> None:
        base = "calendar.business-date" if record_name == "BusinessDateChanged" else INPUT_ROUTES[record_name]
        counts = out.dead_letters.setdefault(base, {})
        counts[reason] = counts.get(reason, 0) + 1

    for record in records:
        for note in record.notes:
            if note in ("CONTRACT_VIOLATION", "FUTURE_TIME", "INVALID_BARRIER"):
                dead_letter(record.type, note)
    for record in applied(records, aborted_visible=aborted_visible):
        name, value = from_json(catalog, record.body)
        if name == "BusinessDateChanged":
            outputs = pipeline.tick(to_tick(value))
        else:
            event = to_domain(name, value)
            loan = getattr(event, "loan_id", None) or event.case_id.rsplit(":", 1)[0]  # type: ignore[union-attr]
            outputs = pipeline.apply(loan, event)
        for output in outputs:
            if isinstance(output, ev.Rejected):
                dead_letter(output.event.record, output.reason)
                continue
            record_name, body = to_record(output)
            as_json = to_json(catalog, record_name, body)
            if record_name == "CaseState":
                out.case_states[as_json["case_id"]] = as_json
            elif record_name == "ComplianceViolation":
                out.compliance[as_json["event_id"]] = as_json
            elif record_name.startswith("WorkOrder"):
                out.work_orders[as_json["event_id"]] = as_json
            elif record_name.startswith("Recovery"):  # SPEC §10: on collections.recoveries
                out.recoveries[as_json["event_id"]] = as_json
            else:
                out.cases[as_json["event_id"]] = as_json
    return out
