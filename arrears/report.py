"""The run report: one self-contained HTML file with inline SVG charts, computed from the topics.

``collect`` folds the output topics into :class:`~arrears.figures.Figures`; ``render_html`` turns
figures and the run's parameters into the page (pure: no I/O, charts drawn by matplotlib into
strings); ``write_report`` does both and writes the file. ``arrears report --out FILE`` and
``arrears demo`` call ``write_report``. The report shows no personal data: ids and figures only.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .figures import STILL_OPEN, AgencyKpis, BucketSeries, Figures, RollMatrix
from .settings import Settings

log = logging.getLogger(__name__)

#: one colour per bucket, from calm to alarming
BUCKET_COLOURS = {
    "M0": "#9ecae1", "M1": "#fdd49e", "M2": "#fdbb84", "M3": "#fc8d59", "M4": "#ef6548",
    "M5": "#d7301f", "M6": "#b30000", "M7+": "#7f0000",
}
AGENCY_COLOURS = ("#3b6ea5", "#e08a2e", "#4f9a5d", "#8f5aa8", "#c0504d", "#6b6b6b")


def report_topics(settings: Settings) -> list[str]:
    t = settings.topics
    return [t.cases, t.case_state, t.compliance, t.agency_results, t.recoveries, t.business_date]


def collect(settings: Settings, timeout: float = 120.0) -> Figures:
    """Read the output topics from the beginning to their end and fold them.

    Agency results the processor dead-lettered (e.g. a contact on a case the agency no longer
    held: ``NOT_ASSIGNED``) are left out: they changed no case, so they count in no KPI.
    """
    from .tail import read_records

    results = settings.topics.agency_results
    rejected = rejected_results(settings, timeout)
    figures = Figures(settings.config.bucket_scheme().names)
    for topic, name, value in read_records(settings, report_topics(settings), timeout):
        if topic == results and value.get("event_id") in rejected:
            continue
        figures.add(name, value)
    return figures


def rejected_results(settings: Settings, timeout: float = 120.0) -> set[str]:
    """Event ids of the agency results in the results topic's dead-letter topic."""
    from .errors import ArrearsError
    from .tail import read_records

    try:
        dead = read_records(settings, [settings.topics.dlq(settings.topics.agency_results)], timeout)
        return {str(value["event_id"]) for _topic, _name, value in dead if "event_id" in value}
    except ArrearsError as exc:  # no dead-letter topic in this deployment: nothing was rejected
        log.info("no rejected results read: %s", exc)
        return set()


def write_report(settings: Settings, out: Path, parameters: Mapping[str, str] | None = None,
                 figures: Figures | None = None) -> Path:
    """Collect (unless given) and write the report to *out*; returns its path."""
    figures = figures or collect(settings)
    agencies = [a.id for a in settings.config.agencies]
    params = {**deployment_parameters(settings), **(parameters or {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(figures, params, agencies), encoding="utf-8")
    log.info("report written to %s (%d cases)", out, len(figures.cases))
    return out


def deployment_parameters(settings: Settings) -> dict[str, str]:
    config = settings.config
    return {
        "topic prefix": settings.arrears_topic_prefix or "(none)",
        "partitions": str(settings.arrears_partitions),
        "grace days": str(config.grace_days),
        "internal buckets": ", ".join(config.internal_buckets) or "(none)",
        "agencies": "; ".join(
            f"{a.id}: {', '.join(a.buckets)} (weight {a.weight}, capacity {a.capacity}, {a.transport.type})"
            for a in config.agencies
        ) or "(none)",
        "contact policy": config.policy.profile,
        "settlements": _settlement_terms(config.settlements.max_discount, config.settlements.approval_above),
        "commission": "; ".join(f"{a.id}: " + ", ".join(f"{b} {r:.0%}" for b, r in a.commission.items())
                                for a in config.agencies if a.commission) or "(none)",
    }


def _settlement_terms(max_discount: Mapping[str, float], approval_above: float | None) -> str:
    if not max_discount:
        return "(none)"
    limits = ", ".join(f"{bucket} ≤ {share:.0%}" for bucket, share in max_discount.items())
    return limits + (f"; a person approves above {approval_above:.0%}" if approval_above is not None else "")


# --------------------------------------------------------------------------- formatting
def money(minor: int, currency: str = "CNY") -> str:
    """Minor units as a readable amount: 123456 CNY -> ¥1,234.56 (integers only, no float rounding)."""
    sign = "-" if minor < 0 else ""
    major, cents = divmod(abs(int(minor)), 100)
    symbol = {"CNY": "¥", "USD": "$", "EUR": "€"}.get(currency, f"{currency} ")
    return f"{sign}{symbol}{major:,}.{cents:02d}"


def percent(share: float | None) -> str:
    """A share as a percentage; "—" for a rate with nothing to divide by (e.g. no promise judged yet)."""
    return "—" if share is None else f"{share * 100:.1f}%"


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="{"num" if i >= numeric_from else ""}">{_esc(c)}</td>' for i, c in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --------------------------------------------------------------------------- charts
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to strings only
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.fonttype": "none",  # text stays text: smaller files, selectable labels
        "svg.hashsalt": "arrears",  # stable ids, so the same figures give the same file
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })
    return plt


def _svg(fig: Any) -> str:
    plt = _pyplot()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the SVG sits inside HTML


def _empty(message: str) -> str:
    return f'<p class="empty">{_esc(message)}</p>'


def chart_bucket_series(series: BucketSeries, currency: str) -> str:
    if not series.dates:
        return _empty("No business dates yet.")
    if not series.buckets:  # business dates but no case yet: nothing to stack
        return _empty("No cases yet.")
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.6), sharex=True)
    colours = [BUCKET_COLOURS.get(b, "#999999") for b in series.buckets]
    top.stackplot(series.dates, [series.cases[b] for b in series.buckets], labels=series.buckets,
                  colors=colours, linewidth=0)
    top.set_ylabel("open cases")
    top.legend(loc="upper left", ncols=len(series.buckets), frameon=False, fontsize=8)
    amounts = [[a / 100 / 1000 for a in series.amounts[b]] for b in series.buckets]  # display only
    bottom.stackplot(series.dates, amounts, colors=colours, linewidth=0)
    bottom.set_ylabel(f"overdue amount (thousand {currency})")
    fig.autofmt_xdate()
    return _svg(fig)


def chart_roll_matrix(matrix: RollMatrix) -> str:
    if not matrix.rows:
        return _empty("No cases yet.")
    plt = _pyplot()
    rates = [[matrix.rate(r, c) for c in matrix.columns] for r in matrix.rows]
    fig, ax = plt.subplots(figsize=(1.0 + 0.85 * len(matrix.columns), 0.9 + 0.5 * len(matrix.rows)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(matrix.columns)), [c.replace("_", " ").lower() if c not in matrix.rows else c
                                               for c in matrix.columns], rotation=30, ha="right")
    ax.set_yticks(range(len(matrix.rows)), matrix.rows)
    ax.set_xlabel("left the bucket for")
    ax.set_ylabel("entered bucket")
    for i, row in enumerate(rates):
        for j, rate in enumerate(row):
            n = matrix.counts.get(matrix.rows[i], {}).get(matrix.columns[j], 0)
            if n:
                ax.text(j, i, f"{rate:.0%}\n({n})", ha="center", va="center", fontsize=7,
                        color="white" if rate > 0.55 else "black")
    ax.spines[:].set_visible(False)
    return _svg(fig)


def chart_agency_kpis(kpis: Sequence[AgencyKpis]) -> str:
    if not kpis:
        return _empty("No agencies.")
    plt = _pyplot()
    measures = (("contact rate", "contact_rate"), ("right-party contact rate", "right_party_contact_rate"),
                ("promise rate", "promise_rate"), ("promise kept", "promise_kept_rate"), ("cure rate", "cure_rate"))
    fig, ax = plt.subplots(figsize=(9, 3.2))
    width = 0.8 / len(kpis)
    for i, k in enumerate(kpis):
        xs = [m + (i - (len(kpis) - 1) / 2) * width for m in range(len(measures))]
        ax.bar(xs, [(getattr(k, attr) or 0.0) * 100 for _, attr in measures], width, label=k.agency_id,
               color=AGENCY_COLOURS[i % len(AGENCY_COLOURS)])
    ax.set_xticks(range(len(measures)), [label for label, _ in measures])
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(frameon=False, ncols=len(kpis))
    return _svg(fig)


def chart_violations(by_rule_agency: Mapping[str, Mapping[str, int]], agencies: Sequence[str]) -> str:
    if not by_rule_agency:
        return _empty("No compliance violations.")
    plt = _pyplot()
    rules = sorted(by_rule_agency, key=lambda r: sum(by_rule_agency[r].values()))
    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.42 * len(rules)))
    left = [0] * len(rules)
    for i, agency in enumerate(agencies):
        values = [by_rule_agency[r].get(agency, 0) for r in rules]
        if not any(values):
            continue
        ax.barh(rules, values, left=left, label=agency, color=AGENCY_COLOURS[i % len(AGENCY_COLOURS)])
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("violations")
    ax.legend(frameon=False, loc="lower right")
    return _svg(fig)


def chart_outcomes(outcomes: Mapping[str, int]) -> str:
    if not outcomes:
        return _empty("No cases yet.")
    plt = _pyplot()
    colours = {"CURED": "#4f9a5d", "PAID_OFF": "#7fb77e", "WRITTEN_OFF": "#b30000", STILL_OPEN: "#e08a2e"}
    labels = list(outcomes)
    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.42 * len(labels)))
    ax.barh([label.replace("_", " ").lower() for label in labels], list(outcomes.values()),
            color=[colours.get(label, "#6b6b6b") for label in labels])
    for i, n in enumerate(outcomes.values()):
        ax.text(n, i, f" {n}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("cases")
    return _svg(fig)


# --------------------------------------------------------------------------- §10
def treatments_html(figures: Figures, kpis: Sequence[AgencyKpis], currency: str) -> str:
    """Recoveries and commission per agency, settlements and pauses (SPEC §10)."""
    s = figures.settlement_summary()
    recovery_rows = [
        (k.agency_id, money(k.recoveries_attributed, currency), money(k.commission, currency),
         percent(k.commission / k.recoveries_attributed) if k.recoveries_attributed else "—")
        for k in kpis
    ]
    tiles = [
        ("settlements proposed", f"{s.proposed:,}"),
        ("approved", f"{s.approved:,}"),
        ("waited for a person", f"{s.pending:,}"),
        ("rejected", f"{s.rejected:,}"),
        ("fulfilled", f"{s.fulfilled:,}"),
        ("broken", f"{s.broken:,}"),
        ("average discount approved", percent(s.average_discount)),
        ("paid off by settlement", money(s.fulfilled_amount, currency)),
        ("loans paused", f"{len(figures.paused_loans):,}"),
        ("paused now", f"{figures.paused_now():,}"),
    ]
    tiles_html = "".join(f"<div class='tile'><b>{_esc(v)}</b><span>{_esc(k)}</span></div>" for k, v in tiles)
    return "\n".join([
        "<h2>Recoveries and commission</h2>",
        _table(["agency", "recovered (attributed)", "commission", "effective rate"], recovery_rows)
        if recovery_rows else _empty("No agencies."),
        "<p class='note'>From collections.recoveries: every repayment valued on a day an agency held the case, "
        "net of reversals, and the commission at the agency's rate for the case's bucket at assignment (the "
        "query API's KPIs recoveries_attributed and commission, and the agencies' monthly statements, add up "
        "the same records).</p>",
        "<h2>Settlements and pauses</h2>",
        f"<div class='tiles'>{tiles_html}</div>",
        "<p class='note'>Settlements: discounted payoffs proposed by the agencies, decided by the configured "
        "limits (and by a person above the approval threshold), fulfilled by repayments valued up to their "
        "pay-by date (the case closes paid off) or broken the day after it. Loans paused: delinquency paused "
        "for a hardship at some point of the run (paused days do not count towards DPD).</p>",
    ])


# --------------------------------------------------------------------------- page
CSS = """
body { font-family: -apple-system, "Segoe UI", "Noto Sans", "Helvetica Neue", Arial, sans-serif;
       margin: 2rem auto; max-width: 1040px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2.2rem;
       border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
.sub { color: #666; margin-top: 0; }
.tiles { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1.2rem 0; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: .6rem .9rem; min-width: 9rem; }
.tile b { display: block; font-size: 1.3rem; } .tile span { color: #666; font-size: .8rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0; }
th, td { border-bottom: 1px solid #eee; padding: .3rem .6rem; text-align: left; }
th { background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
svg { max-width: 100%; height: auto; } .empty { color: #888; font-style: italic; }
.note { color: #666; font-size: .8rem; }
"""


def render_html(figures: Figures, parameters: Mapping[str, str], agencies: Sequence[str] = (),
                generated_at: dt.datetime | None = None) -> str:
    """The whole report page (pure: figures and parameters in, HTML out)."""
    summary = figures.summary()
    currency = summary["currency"]
    kpis = figures.agency_kpis(agencies)
    agency_ids = [k.agency_id for k in kpis] or list(agencies)
    series = figures.bucket_series()
    matrix = figures.roll_matrix()
    outcomes = figures.outcomes()
    dates = sorted(figures.dates)
    span = f"{dates[0]} to {dates[-1]} ({len(dates)} business dates)" if dates else "no business dates yet"
    tiles = [
        ("cases opened", f"{summary['cases_opened']:,}"),
        ("open now", f"{summary['open_cases']:,}"),
        ("overdue now", money(summary["overdue_amount"], currency)),
        ("cured", f"{outcomes.get('CURED', 0):,}"),
        ("written off", f"{outcomes.get('WRITTEN_OFF', 0):,}"),
        ("promises kept / broken", f"{summary['promises_kept']:,} / {summary['promises_broken']:,}"),
        ("violations", f"{summary['violations']:,}"),
    ]
    tiles_html = "".join(f"<div class='tile'><b>{_esc(v)}</b><span>{_esc(k)}</span></div>" for k, v in tiles)
    open_rows = [(r.bucket, f"{r.open_cases:,}", money(r.overdue_amount, currency)) for r in figures.open_by_bucket()]
    roll_rows = [
        (r, f"{matrix.entered(r):,}",
         *(f"{matrix.rate(r, c):.0%}" if matrix.counts[r].get(c) else "" for c in matrix.columns))
        for r in matrix.rows
    ]
    kpi_rows = [
        (k.agency_id, f"{k.cases_assigned:,} ({k.debtors_assigned:,})", f"{k.cases_held:,} ({k.debtors_held:,})",
         f"{k.contacts:,}", percent(k.contact_rate),
         percent(k.right_party_contact_rate), percent(k.promise_rate),
         f"{percent(k.promise_kept_rate)} ({k.promises_kept}/{k.promises_kept + k.promises_broken})",
         money(k.amount_recovered, currency), percent(k.cure_rate), f"{k.holds}", f"{k.returns}",
         f"{k.violations_per_100_contacts:.2f}")
        for k in kpis
    ]
    treatments = treatments_html(figures, kpis, currency)
    by_rule_agency = figures.violations_by_rule_and_agency()
    violation_rows = [
        (rule, *(f"{by_rule_agency[rule].get(a, 0):,}" for a in agency_ids), f"{sum(by_rule_agency[rule].values()):,}")
        for rule in figures.violations_by_rule()
    ]
    outcome_total = sum(outcomes.values())
    outcome_rows = [(k.replace("_", " ").lower(), f"{n:,}", percent(n / outcome_total if outcome_total else 0))
                    for k, n in outcomes.items()]
    generated = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Arrears run report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Arrears run report</h1>",
        f"<p class='sub'>Business dates {_esc(span)}. Generated {_esc(generated)} from the topics "
        "collections.cases, collections.case-state, collections.compliance, collections.recoveries and "
        "agency.results.</p>",
        f"<div class='tiles'>{tiles_html}</div>",
        "<h2>Delinquency by bucket over business dates</h2>",
        chart_bucket_series(series, currency),
        _table(["bucket", "open cases now", "overdue amount now"], open_rows) if open_rows else "",
        "<h2>Roll rates</h2>",
        "<p class='note'>Of the cases that entered each bucket (row), the share that left it for a later "
        "or earlier bucket, closed (cured, paid off, written off), or are still in it.</p>",
        chart_roll_matrix(matrix),
        _table(["bucket", "entered", *[c.replace("_", " ").lower() if c not in matrix.rows else c
                                        for c in matrix.columns]], roll_rows) if roll_rows else "",
        "<h2>Agencies side by side</h2>",
        chart_agency_kpis(kpis),
        _table(["agency", "assigned (debtors)", "holding now (debtors)", "contacts", "contact rate",
                "right-party contact", "promise rate", "promises kept", "recovered", "cure rate", "holds", "returns",
                "violations / 100 contacts"], kpi_rows) if kpi_rows else "",
        "<p class='note'>As the query API defines them, over the contact attempts the agency reported. "
        "Assigned and holding now count cases, and in brackets the distinct debtors (customers) they "
        "belong to: a debtor's cases all go to one agency. "
        "Contact rate: attempts that reached someone. Right-party contact rate: attempts that reached the "
        "debtor. Promise rate: promises per right-party contact. Promises kept: kept / judged (kept + "
        "broken). Recovered: the drop in overdue amount while the agency held the case (the API counts "
        "repayments instead, which may exceed what was overdue). Cure rate: cases cured while the agency "
        "held them / cases assigned. Holds: disputes, complaints and cease-contact requests.</p>",
        treatments,
        "<h2>Compliance violations by rule and agency</h2>",
        chart_violations(by_rule_agency, agency_ids),
        _table(["rule", *agency_ids, "total"], violation_rows) if violation_rows else "",
        "<h2>Case outcomes</h2>",
        chart_outcomes(outcomes),
        _table(["outcome", "cases", "share"], outcome_rows) if outcome_rows else "",
        "<h2>Run parameters</h2>",
        _table(["parameter", "value"], list(parameters.items()), numeric_from=99),
        "</body></html>",
    ]
    return "\n".join(parts)
