"""An agency's monthly commission statement (SPEC §10), from ``collections.recoveries``.

``build_statement`` folds the recovery records into one agency's month: one line per attributed
repayment or reversal whose ``business_date`` (a repayment's value date; a reversal's business
date) falls in the month, in a fixed order, with totals by bucket and overall. It depends on
the records alone (never on a clock, nor on the order partitions were read in, and a record
delivered twice counts once), so the same topic always gives the same statement. ``render_csv``
and ``render_html`` write it; ``collect`` reads the topic.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .report import money

RECORDS = ("RecoveryAttributed", "RecoveryReversed")
CSV_COLUMNS = ("business_date", "kind", "case_id", "loan_id", "work_order_id", "payment_id", "bucket", "rate",
               "amount", "commission", "currency", "event_id")


@dataclass(frozen=True)
class Line:
    """One attributed repayment (kind ``recovery``) or reversal (kind ``reversal``, negative amounts)."""

    business_date: dt.date
    kind: str
    case_id: str
    loan_id: str
    work_order_id: str
    payment_id: str
    bucket: str
    rate: float
    amount: int
    commission: int
    currency: str
    event_id: str


@dataclass(frozen=True)
class Subtotal:
    currency: str
    bucket: str
    rate: float
    repayments: int
    reversals: int
    amount: int
    commission: int


@dataclass(frozen=True)
class Statement:
    agency_id: str
    month: str  # YYYY-MM
    lines: tuple[Line, ...]

    @property
    def first_day(self) -> dt.date:
        return dt.date.fromisoformat(f"{self.month}-01")

    @property
    def last_day(self) -> dt.date:
        first = self.first_day
        following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return following - dt.timedelta(days=1)

    def subtotals(self) -> list[Subtotal]:
        """By currency, bucket and rate, in bucket order of appearance (a rate change is its own row)."""
        keys: dict[tuple[str, str, float], list[int]] = {}
        for line in self.lines:
            totals = keys.setdefault((line.currency, line.bucket, line.rate), [0, 0, 0, 0])
            totals[0 if line.kind == "recovery" else 1] += 1
            totals[2] += line.amount
            totals[3] += line.commission
        return [Subtotal(c, b, r, *t) for (c, b, r), t in sorted(keys.items(), key=lambda kv: _bucket_key(kv[0]))]

    def totals(self) -> dict[str, tuple[int, int]]:
        """{currency: (net amount recovered, net commission)}."""
        out: dict[str, list[int]] = {}
        for line in self.lines:
            total = out.setdefault(line.currency, [0, 0])
            total[0] += line.amount
            total[1] += line.commission
        return {c: (a, m) for c, (a, m) in sorted(out.items())}


def _bucket_key(key: tuple[str, str, float]) -> tuple[str, int, str, float]:
    currency, bucket, rate = key
    digits = "".join(ch for ch in bucket if ch.isdigit())
    return currency, int(digits) if digits else 99, bucket, rate


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def check_month(text: str) -> str:
    """``YYYY-MM`` or ValueError."""
    try:
        dt.date.fromisoformat(f"{text}-01")
    except ValueError:
        raise ValueError(f"expected a month YYYY-MM, got {text!r}") from None
    if len(text) != 7:
        raise ValueError(f"expected a month YYYY-MM, got {text!r}")
    return text


def build_statement(records: Iterable[tuple[str, Mapping[str, Any]]], agency_id: str, month: str) -> Statement:
    """The agency's statement for *month* from (record name, value) pairs of ``collections.recoveries``."""
    check_month(month)
    seen: set[str] = set()
    lines: list[Line] = []
    for name, value in records:
        if name not in RECORDS or value.get("agency_id") != agency_id:
            continue
        event_id = str(value["event_id"])
        if event_id in seen:
            continue  # delivered twice: the same record
        seen.add(event_id)
        day = _date(value["business_date"])
        if day.isoformat()[:7] != month:
            continue
        lines.append(Line(
            business_date=day, kind="recovery" if name == "RecoveryAttributed" else "reversal",
            case_id=str(value["case_id"]), loan_id=str(value["loan_id"]), work_order_id=str(value["work_order_id"]),
            payment_id=str(value["payment_id"]), bucket=str(value["bucket"]), rate=float(value["rate"]),
            amount=int(value["amount"]), commission=int(value["commission"]),
            currency=str(value.get("currency") or ""), event_id=event_id,
        ))
    lines.sort(key=lambda line: (line.business_date, line.case_id, line.payment_id, line.kind, line.event_id))
    return Statement(agency_id, month, tuple(lines))


def collect(settings: Any, agency_id: str, month: str, timeout: float = 120.0) -> Statement:
    """Read ``collections.recoveries`` to its end now and build the statement."""
    from .tail import read_records

    records = ((name, value) for _topic, name, value in read_records(settings, [settings.topics.recoveries], timeout))
    return build_statement(records, agency_id, month)


def _rate(rate: float) -> str:
    return f"{rate:g}"


def _percent(rate: float) -> str:
    """A rate for people: 0.15 -> 15%, 0.125 -> 12.5%."""
    return f"{rate * 100:.4g}%"


# --------------------------------------------------------------------------- CSV
def render_csv(statement: Statement) -> str:
    """One row per line (money in minor units, as on the topic), then one TOTAL row per currency."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in statement.lines:
        writer.writerow([line.business_date.isoformat(), line.kind, line.case_id, line.loan_id, line.work_order_id,
                         line.payment_id, line.bucket, _rate(line.rate), line.amount, line.commission, line.currency,
                         line.event_id])
    for currency, (amount, commission) in statement.totals().items():
        writer.writerow(["TOTAL", f"{statement.agency_id} {statement.month}", "", "", "", "", "", "", amount,
                         commission, currency, ""])
    return out.getvalue()


# --------------------------------------------------------------------------- HTML
CSS = """
body { font-family: -apple-system, "Segoe UI", "Noto Sans", "Helvetica Neue", Arial, sans-serif; color: #222;
       margin: 2rem auto; max-width: 980px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.1rem; margin-top: 2rem;
     border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
.sub { color: #555; margin-top: 0; }
.tiles { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1.2rem 0; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: .6rem .9rem; min-width: 10rem; }
.tile b { display: block; font-size: 1.3rem; } .tile span { color: #666; font-size: .8rem; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; margin: .6rem 0; }
th, td { border-bottom: 1px solid #eee; padding: .3rem .5rem; text-align: left; }
th { background: #f6f6f6; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.reversal td { color: #a33; } tfoot td { font-weight: 600; border-top: 2px solid #ccc; }
.note { color: #666; font-size: .8rem; }
@media print { body { margin: 0; max-width: none; } .tile { break-inside: avoid; } }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _row(cells: Iterable[tuple[Any, bool]], cls: str = "") -> str:
    tds = "".join(f'<td class="num">{_e(c)}</td>' if num else f"<td>{_e(c)}</td>" for c, num in cells)
    return f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>"


def render_html(statement: Statement, lender: str = "") -> str:
    """A self-contained page an agency manager can read, print and file."""
    period = f"{statement.first_day.isoformat()} to {statement.last_day.isoformat()}"
    recoveries = [line for line in statement.lines if line.kind == "recovery"]
    reversals = [line for line in statement.lines if line.kind == "reversal"]
    totals = statement.totals()
    tiles = [("repayments attributed", f"{len(recoveries):,}"), ("reversals", f"{len(reversals):,}")]
    for currency, (amount, commission) in totals.items():
        tiles += [(f"net recovered ({currency})", money(amount, currency)),
                  (f"commission due ({currency})", money(commission, currency))]
    tiles_html = "".join(f"<div class='tile'><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in tiles)
    sub_rows = "".join(_row([(s.bucket, False), (_percent(s.rate), True), (s.repayments, True), (s.reversals, True),
                             (money(s.amount, s.currency), True), (money(s.commission, s.currency), True)])
                       for s in statement.subtotals())
    detail_rows = "".join(_row([
        (line.business_date.isoformat(), False), ("reversal" if line.kind == "reversal" else "repayment", False),
        (line.case_id, False), (line.payment_id, False), (line.bucket, False), (_percent(line.rate), True),
        (money(line.amount, line.currency), True), (money(line.commission, line.currency), True),
    ], "reversal" if line.kind == "reversal" else "") for line in statement.lines)
    foot = "".join(_row([("Total", False), (currency, False), ("", False), ("", False), ("", False), ("", False),
                         (money(amount, currency), True), (money(commission, currency), True)])
                   for currency, (amount, commission) in totals.items())
    empty = "<p class='note'>No repayment was attributed to this agency in this month.</p>" if not statement.lines \
        else ""
    num = ' class="num"'
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Commission statement {_e(statement.agency_id)} {_e(statement.month)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Commission statement: {_e(statement.agency_id)}, {_e(statement.month)}</h1>",
        f"<p class='sub'>{_e(lender + ' · ' if lender else '')}Repayments valued from {_e(period)} on cases the "
        "agency held, and reversals of attributed repayments applied in that period.</p>",
        f"<div class='tiles'>{tiles_html}</div>",
        "<h2>By bucket</h2>",
        f"<table><thead><tr><th>bucket at assignment</th><th{num}>rate</th><th{num}>repayments</th>"
        f"<th{num}>reversals</th><th{num}>net recovered</th><th{num}>commission</th></tr></thead>"
        f"<tbody>{sub_rows}</tbody></table>" if statement.lines else "",
        "<h2>Repayments and reversals</h2>",
        empty or (
            f"<table><thead><tr><th>date</th><th>kind</th><th>case</th><th>payment</th><th>bucket</th>"
            f"<th{num}>rate</th><th{num}>amount</th><th{num}>commission</th></tr></thead>"
            f"<tbody>{detail_rows}</tbody><tfoot>{foot}</tfoot></table>"),
        "<p class='note'>Commission = amount × the agency's rate for the case's bucket when it was assigned, "
        "in minor units, rounded half to even. A repayment counts on its value date; a reversal takes back the "
        "repayment's amount and commission on the business date it was applied. Source: the lender's "
        "collections.recoveries records; the same records always give the same statement.</p>",
        "</body></html>",
    ])
