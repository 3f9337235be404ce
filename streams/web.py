"""The query API on every worker (SPEC §7); any worker answers for any key by routing to its owner.

Access (:mod:`streams.access`): with tokens configured every endpoint but ``/health`` and
``/metrics`` needs a bearer token with the ``read`` scope; personal data (the customer's name,
phone, national id and emergency contacts) is masked unless the token also has ``pii``, and
every answer that shows it unmasked is first recorded on ``collections.audit``
(:mod:`streams.audit`). A request forwarded to the worker owning a key carries the caller's
``Authorization`` header, so the owner checks the same token and writes the audit record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faust.exceptions import SameNode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from arrears.domain.cases import Case
from arrears.domain.ledger import allocate
from arrears.domain.loan import LoanState
from arrears.privacy import mask_person, mask_record
from arrears.topics import loan_id_of_case
from schemas import to_json

from . import lag, metrics
from .access import AUTHORIZATION, READ, Principal, Refusal, TokenBook
from .audit import AuditError, AuditLog

if TYPE_CHECKING:
    from .app import Worker

log = logging.getLogger(__name__)
View = Callable[..., Awaitable[Any]]


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def case_json(worker: Worker, state: LoanState, case: Case) -> dict[str, Any]:
    """The case's CaseState in JSON form, exactly as ``collections.case-state`` last carried it (SPEC §1, §7).

    The case keeps the event id and time of its last snapshot; a case stored by an older
    version that did not keep them shows them as null.
    """
    assert state.account is not None
    snapshot = case.snapshot(case.state_event_id or "", case.state_at or 0, state.loan_id,
                             state.account.customer_id, state.account.currency)
    body = to_json(worker.processor.codec.catalog, "CaseState", _plain(snapshot))
    if case.state_event_id is None:
        body["event_id"] = body["occurred_at"] = None
    return body


def _plain(snapshot: Any) -> dict[str, Any]:
    from .records import to_record

    return to_record(snapshot)[1]


def treatments_json(state: LoanState, case: Case) -> dict[str, Any]:
    """A case's pause and settlement (SPEC §10), for ``GET /cases/{case_id}/treatments``, the ops page and
    ``arrears settlement``: what CaseState does not carry (no personal data)."""
    settlement = case.settlement
    return {
        "case_id": case.case_id,
        "loan_id": state.loan_id,
        "paused_until": _iso(case.paused_until),
        "pauses": [
            {"pause_id": p.pause_id, "from_date": p.from_date.isoformat(), "until_date": _iso(p.until_date),
             "resumed_on": _iso(p.resumed_on), "last_day": p.last_day.isoformat(), "reason": p.reason,
             "requested_by": p.requested_by}
            for p in state.pauses
        ],
        "settlement": None if settlement is None else {
            "settlement_id": settlement.settlement_id, "status": settlement.status,
            "agency_id": settlement.agency_id, "work_order_id": settlement.work_order_id,
            "amount": settlement.amount, "pay_by": settlement.pay_by.isoformat(), "discount": settlement.discount,
            "proposed_on": settlement.proposed_on.isoformat(), "approved_on": _iso(settlement.approved_on),
            "approved_by": settlement.approved_by, "paid_amount": settlement.paid_amount,
        },
        "settled_by": state.settled_by,
        "currency": state.account.currency if state.account else None,
    }


def customer_json(state: LoanState, unmasked: bool) -> dict[str, Any] | None:
    """The loan's customer block (LoanOpened's ``customer``), masked unless *unmasked*."""
    if state.account is None:
        return None
    c = state.account.customer
    person = {
        "name": c.name, "phone": c.phone, "national_id": c.national_id, "province": c.province, "city": c.city,
        "timezone": c.timezone,
        "emergency_contacts": [{"name": e.name, "phone": e.phone, "relation": e.relation}
                               for e in c.emergency_contacts],
    }
    return person if unmasked else mask_person(person)


def loan_json(worker: Worker, state: LoanState, *, unmasked: bool = False) -> dict[str, Any]:
    """The loan's ledger and cases; its customer's personal data masked unless *unmasked*."""
    processor = worker.processor
    work = processor.works.get(_partition(worker, state.loan_id))
    date = work.book.business_date if work else None
    fig = state.figures(date, processor.rules.buckets)
    allocations, credit = allocate(state.installments, sum(r.amount for r in state.repayments if not r.reversed))
    cases = [
        case_json(worker, state, h) if isinstance(h, Case) else
        {"case_id": h.case_id, "status": "CLOSED", "opened_on": h.opened_on.isoformat(),
         "closed_on": h.closed_on.isoformat(), "close_reason": h.close_reason}
        for h in state.history
    ]
    if state.case is not None:
        cases.append(case_json(worker, state, state.case))
    account = state.account
    return {
        "loan_id": state.loan_id,
        "known": account is not None,
        "customer_id": account.customer_id if account else None,
        "customer": customer_json(state, unmasked),
        "product_code": account.product_code if account else None,
        "currency": account.currency if account else None,
        "principal": account.principal if account else None,
        "opened_on": _iso(account.opened_on) if account else None,
        "closed_reason": state.closed_reason,
        "business_date": _iso(date),
        "overdue_amount": fig.overdue_amount,
        "dpd": fig.dpd,
        "bucket": fig.bucket,
        "oldest_due_date": _iso(fig.oldest_due_date),
        "outstanding_amount": fig.outstanding_amount,
        "credit": credit,
        "installments": [
            {
                "installment_no": a.installment.number,
                "due_date": a.installment.due_date.isoformat(),
                "principal_due": a.installment.principal_due,
                "interest_due": a.installment.interest_due,
                "fee_due": a.installment.fee_due,
                "fee_paid": a.fee_paid,
                "interest_paid": a.interest_paid,
                "principal_paid": a.principal_paid,
                "outstanding": a.outstanding,
                "overdue": date is not None and a.installment.due_date < date and a.outstanding > 0,
            }
            for a in allocations
        ],
        "repayments": [
            {"payment_id": r.payment_id, "amount": r.amount, "value_date": r.value_date.isoformat(),
             "channel": r.channel, "reversed": r.reversed}
            for r in state.repayments
        ],
        "pending_reversals": list(state.pending_reversals),
        "events_waiting_for_loan": len(state.waiting),
        "cases": cases,
    }


def _partition(worker: Worker, loan_id: str) -> int:
    from .store import partition_of

    return partition_of(loan_id.encode(), worker.settings.arrears_partitions)


def _load(worker: Worker, table: Any, loan_id: str) -> LoanState | None:
    return worker.processor.loan_state(loan_id)


def journal_of(worker: Worker, state: LoanState) -> list[dict[str, Any]]:
    """The loan's journal entries (``{"case_ids": [...], "record": {...}}``), oldest first."""
    work = worker.processor.works.get(_partition(worker, state.loan_id))
    return [json.loads(raw) for raw in (work.store.read_journal(state) if work else [])]


def timeline(entries: list[dict[str, Any]], case_id: str) -> list[dict[str, Any]]:
    """Every record that touched the case, in order, with personal data masked.

    Work orders are journaled masked (SPEC §7); masking again here also covers journals written
    before that, so no stored personal data ever leaves through the timeline. CaseState
    snapshots are left out: the case's state is ``GET /cases/{case_id}``.
    """
    return [mask_record(e["record"]) for e in entries
            if case_id in e.get("case_ids", ()) and e.get("record", {}).get("type") != "CaseState"]


@dataclass(frozen=True)
class ViewKit:
    """What :func:`register_views` built that other views of the worker use too (streams/workbench_api.py)."""

    tokens: TokenBook
    audit: AuditLog
    guarded: Callable[..., View]  # guarded(view, scope=READ): answer only tokens with the scope
    gather: Callable[..., Awaitable[Any]]  # gather(web, request, local): every worker's local view


def register_views(worker: Worker, table: Any) -> ViewKit:
    app = worker.app
    tokens = TokenBook.from_settings(worker.settings)  # a missing token variable stops the worker here
    audit = AuditLog(worker.settings, worker.processor.codec)  # connects on the first pii answer
    if not tokens.enabled:
        log.warning("no api.tokens configured: the query API and the ops page listen on 127.0.0.1 only, answer "
                    "without a token and mask personal data; workers on other hosts cannot forward to this one")

    def guarded(view: View, scope: str = READ) -> View:
        """Answer only callers whose token has *scope* (``read`` unless named); pass the view who asks."""

        @functools.wraps(view)
        async def check(web: Any, request: Any, **params: Any) -> Any:
            who = tokens.authorize(request.headers.get(AUTHORIZATION), scope)
            if isinstance(who, Refusal):
                headers = {"WWW-Authenticate": 'Bearer realm="arrears"'} if who.status == 401 else None
                return web.json({"error": who.reason}, status=who.status, headers=headers)
            return await view(web, request, who, **params)

        return check

    async def audited(web: Any, request: Any, who: Principal, state: LoanState, body: dict[str, Any],
                      case_id: str | None = None) -> Any:
        """Answer *body*, which shows *state*'s customer unmasked, once the access is on record."""
        assert state.account is not None
        try:
            await audit.record(who.name, f"{request.method} {request.path}", state.account.customer_id,
                               loan_id=state.loan_id, case_id=case_id)
        except AuditError as exc:
            log.error("personal data withheld from token %s: cannot record the access (%s)", who.name, exc)
            return web.json({"error": "audit: the access to personal data cannot be recorded now; retry later"},
                            status=503)
        return web.json(body)

    async def routed(web: Any, request: Any, loan_id: str) -> Any:
        """The owner's answer, or None when this worker owns the loan's partition."""
        try:
            return await app.router.route_req(table.name, loan_id.encode(), web, request)
        except SameNode:
            return None

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        processor = worker.processor
        body = {
            "status": "ready" if worker.ready else ("rebalancing" if worker.status != "starting" else "starting"),
            "partitions": sorted(processor.works),
            "business_dates": {str(p): _iso(w.book.business_date) for p, w in sorted(processor.works.items())},
            "held_messages": sum(w.sequencer.held_count() for w in processor.works.values()),
        }
        return web.json(body, status=200 if worker.ready else 503)

    async def case_route(web: Any, request: Any, case_id: str) -> tuple[str, Any]:
        """(loan id, the answer when the case id is bad or another worker owns the loan, else None)."""
        try:
            loan_id = loan_id_of_case(case_id)
        except ValueError as exc:
            return "", web.json({"error": str(exc)}, status=400)
        return loan_id, await routed(web, request, loan_id)

    @app.page("/cases/{case_id}")
    @guarded
    async def get_case(web: Any, request: Any, who: Principal, case_id: str) -> Any:
        loan_id, answer = await case_route(web, request, case_id)
        if answer is not None:
            return answer
        state = _load(worker, table, loan_id)
        found = state.find_case(case_id) if state is not None else None
        if state is not None and isinstance(found, Case):
            return web.json(case_json(worker, state, found))
        for old in state.history if state else ():
            if old.case_id == case_id:
                # An earlier case of the loan, closed and superseded: a summary (its final CaseState
                # is the last record for it on collections.case-state).
                return web.json({"case_id": case_id, "loan_id": loan_id, "status": "CLOSED",
                                 "opened_on": old.opened_on.isoformat(), "closed_on": old.closed_on.isoformat(),
                                 "close_reason": old.close_reason})
        return web.json({"error": f"no case {case_id}"}, status=404)

    @app.page("/cases/{case_id}/treatments")
    @guarded
    async def case_treatments(web: Any, request: Any, who: Principal, case_id: str) -> Any:
        """SPEC §10: the case's pause and settlement (CaseState itself stays exactly the record)."""
        loan_id, answer = await case_route(web, request, case_id)
        if answer is not None:
            return answer
        state = _load(worker, table, loan_id)
        found = state.find_case(case_id) if state is not None else None
        if state is None or not isinstance(found, Case):
            return web.json({"error": f"no case {case_id}"}, status=404)
        return web.json(treatments_json(state, found))

    @app.page("/loans/{loan_id}")
    @guarded
    async def get_loan(web: Any, request: Any, who: Principal, loan_id: str) -> Any:
        answer = await routed(web, request, loan_id)
        if answer is not None:
            return answer
        state = _load(worker, table, loan_id)
        if state is None:
            return web.json({"error": f"no loan {loan_id}"}, status=404)
        body = loan_json(worker, state, unmasked=who.sees_pii)
        if who.sees_pii and state.account is not None:
            return await audited(web, request, who, state, body)
        return web.json(body)

    @app.page("/cases/{case_id}/timeline")
    @guarded
    async def case_timeline(web: Any, request: Any, who: Principal, case_id: str) -> Any:
        loan_id, answer = await case_route(web, request, case_id)
        if answer is not None:
            return answer
        state = _load(worker, table, loan_id)
        known = state is not None and (
            (state.case is not None and state.case.case_id == case_id)
            or any(h.case_id == case_id for h in state.history)
        )
        if state is None or not known:
            return web.json({"error": f"no case {case_id}"}, status=404)
        if not worker.settings.arrears_journal:
            # Off means off: entries kept before it was turned off are not shown as if current.
            return web.json({"case_id": case_id, "events": [], "journal": "off (ARREARS_JOURNAL=false)"})
        return web.json({"case_id": case_id, "events": timeline(journal_of(worker, state), case_id)})

    async def gather(web: Any, request: Any, local: dict[str, Any]) -> list[dict[str, Any]] | Any:
        """Every worker's local view (this one's included): the answer to a question about all keys."""
        if request.query.get("local"):
            return web.json(local)
        me = str(app.conf.canonical_url).rstrip("/")
        others = [str(url).rstrip("/") for url in app.router.tables_metadata() if str(url).rstrip("/") != me]
        credentials = request.headers.get(AUTHORIZATION)
        query = {k: v for k, v in request.query.items() if k != "local"}
        answers = await asyncio.gather(*(_fetch_local(app, url, request.path, credentials, query) for url in others),
                                       return_exceptions=True)
        views = [local] + [a for a in answers if not isinstance(a, BaseException)]
        for view in views[1:]:
            view.setdefault("_worker", "remote")
        local["_unreachable"] = sum(isinstance(a, BaseException) for a in answers)
        return views

    @app.page("/agencies")
    @guarded
    async def agencies(web: Any, request: Any, who: Principal) -> Any:
        """The configured agencies, and who asks (the ops page's first question: it checks the token)."""
        return web.json({"agencies": [a.id for a in worker.settings.config.agencies],
                         "token": who.name if tokens.enabled else None, "scopes": sorted(who.scopes)})

    @app.page("/agencies/{agency_id}/cases")
    @guarded
    async def agency_cases(web: Any, request: Any, who: Principal, agency_id: str) -> Any:
        local = {"cases": [
            {"case_id": v.case_id, "loan_id": loan_id, "status": v.status, "bucket": v.bucket, "dpd": v.dpd,
             "overdue_amount": v.overdue_amount, "currency": v.currency}
            for work in worker.processor.works.values()
            for loan_id, v in work.book.portfolio.open_cases.items()
            if v.agency_id == agency_id
        ]}
        views = await gather(web, request, local)
        if not isinstance(views, list):
            return views
        if agency_id not in {a.id for a in worker.settings.config.agencies}:
            return web.json({"error": f"no agency {agency_id} in the config"}, status=404)
        cases = sorted((c for v in views for c in v["cases"]), key=lambda c: c["case_id"])
        return web.json({"agency_id": agency_id, "cases": cases, "unreachable_workers": local["_unreachable"]})

    @app.page("/agencies/{agency_id}/kpis")
    @guarded
    async def agency_kpis(web: Any, request: Any, who: Principal, agency_id: str) -> Any:
        counts: Counter[str] = Counter()
        debtors: set[str] = set()  # a debtor's loans may sit on several workers: counted once
        for work in worker.processor.works.values():
            counts.update(work.book.portfolio.tallies.get(agency_id, {}))
            counts["cases_held"] += work.book.portfolio.load.get(agency_id, 0)
            debtors.update(c.customer_id for c in work.book.portfolio.open_cases.values() if c.agency_id == agency_id)
        views = await gather(web, request, {"counts": dict(counts), "debtors": sorted(debtors)})
        if not isinstance(views, list):
            return views
        if agency_id not in {a.id for a in worker.settings.config.agencies}:
            return web.json({"error": f"no agency {agency_id} in the config"}, status=404)
        total: Counter[str] = Counter()
        held: set[str] = set()
        for view in views:
            total.update(view["counts"])
            held.update(view["debtors"])
        return web.json({"agency_id": agency_id, **kpis(total), "debtors_held": len(held),
                         "unreachable_workers": views[0]["_unreachable"]})

    @app.page("/portfolio")
    @guarded
    async def portfolio(web: Any, request: Any, who: Principal) -> Any:
        views = await gather(web, request, _local_portfolio(worker))
        if not isinstance(views, list):
            return views
        return web.json(merge_portfolios(views, worker.processor.rules.buckets.names))

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        _refresh_gauges(worker)
        lag.refresh(worker.processor)
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    return ViewKit(tokens, audit, guarded, gather)


async def _fetch_local(app: Any, base: str, path: str, credentials: str | None,
                       query: dict[str, str] | None = None) -> dict[str, Any]:
    url = f"{base.rstrip('/')}{path}"
    headers = {AUTHORIZATION: credentials} if credentials else {}  # the caller's token, passed on
    async with app.http_client.get(url, headers=headers, params={**(query or {}), "local": "1"}) as response:
        response.raise_for_status()
        result: dict[str, Any] = await response.json()
        return result


def _ratio(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def _share(numerator: int, denominator: int) -> float | None:
    """A rate that means nothing without a denominator: None (JSON null) rather than 0."""
    return round(numerator / denominator, 4) if denominator else None


def kpis(c: Counter[str]) -> dict[str, Any]:
    """An agency's KPIs from its summed tallies (definitions in the README)."""
    return {
        "cases_held": c["cases_held"],
        "assignments": c["assignments"],
        "contact_attempts": c["attempts"],
        "contact_rate": _ratio(c["contacts"], c["attempts"]),
        "right_party_contact_rate": _ratio(c["right_party_contacts"], c["attempts"]),
        "promises": c["promises"],
        "promise_rate": _ratio(c["promises"], c["right_party_contacts"]),
        "promises_kept": c["promises_kept"],
        "promises_broken": c["promises_broken"],
        # null until a promise was judged: 0.0 would read as "every promise broken"
        "promise_kept_rate": _share(c["promises_kept"], c["promises_kept"] + c["promises_broken"]),
        "amount_recovered": c["recovered"],
        # SPEC §10: repayments attributed to the agency (collections.recoveries), net of reversals
        "recoveries_attributed": c["attributed"],
        "commission": c["commission"],
        "violations": c["violations"],
        "violations_per_100_contacts": round(100 * c["violations"] / c["attempts"], 2) if c["attempts"] else 0.0,
    }


def _local_portfolio(worker: Worker) -> dict[str, Any]:
    buckets: dict[str, dict[str, Any]] = {}
    assigned: Counter[str] = Counter()
    unassigned = held = 0
    entered: Counter[str] = Counter()
    moves: Counter[str] = Counter()
    dates = []
    for work in worker.processor.works.values():
        p = work.book.portfolio
        for view in p.open_cases.values():
            entry = buckets.setdefault(f"{view.bucket}|{view.currency}", {"open_cases": 0, "overdue_amount": 0})
            entry["open_cases"] += 1
            entry["overdue_amount"] += view.overdue_amount
            if view.hold_reason is not None:
                held += 1
            elif view.agency_id is None:
                unassigned += 1
        assigned.update({k: v for k, v in p.load.items() if v})
        entered.update(p.entered)
        moves.update({f"{a}|{b}": n for (a, b), n in p.moves.items() if n})
        if work.book.business_date is not None:
            dates.append(work.book.business_date.isoformat())
    return {"buckets": buckets, "assigned": dict(assigned), "unassigned": unassigned, "held": held,
            "entered": dict(entered), "moves": dict(moves), "business_dates": dates}


def merge_portfolios(views: list[dict[str, Any]], bucket_order: tuple[str, ...]) -> dict[str, Any]:
    """One portfolio from every worker's share: open cases by bucket, assignments, roll rates."""
    buckets: dict[str, dict[str, int]] = {}
    assigned: Counter[str] = Counter()
    entered: Counter[str] = Counter()
    moves: Counter[str] = Counter()
    unassigned = held = 0
    dates: list[str] = []
    for view in views:
        for key, entry in view["buckets"].items():
            total = buckets.setdefault(key, {"open_cases": 0, "overdue_amount": 0})
            total["open_cases"] += entry["open_cases"]
            total["overdue_amount"] += entry["overdue_amount"]
        assigned.update(view["assigned"])
        entered.update(view["entered"])
        moves.update(view["moves"])
        unassigned += view["unassigned"]
        held += view["held"]
        dates.extend(view["business_dates"])
    order = {b: i for i, b in enumerate(bucket_order)}
    rows = sorted(
        ({"bucket": key.split("|")[0], "currency": key.split("|")[1], **v} for key, v in buckets.items()),
        key=lambda r: (order.get(r["bucket"], 99), r["currency"]),
    )
    rolls = sorted(
        ({"from": k.split("|")[0], "to": k.split("|")[1], "count": n, "rate": _ratio(n, entered[k.split("|")[0]])}
         for k, n in moves.items()),
        key=lambda r: (order.get(r["from"], 99), order.get(r["to"], 99), r["to"]),
    )
    return {
        "business_date": min(dates) if dates else None,
        "open_cases": sum(r["open_cases"] for r in rows),
        "buckets": rows,
        "roll_rates": rolls,
        "entered": dict(entered),
        "assigned": dict(assigned),
        "unassigned": unassigned,
        "held": held,
        "unreachable_workers": views[0].get("_unreachable", 0),
    }


def _refresh_gauges(worker: Worker) -> None:
    counts: Counter[str] = Counter()
    amounts: defaultdict[tuple[str, str], int] = defaultdict(int)
    for work in worker.processor.works.values():
        for view in work.book.portfolio.open_cases.values():
            counts[view.bucket] += 1
            amounts[(view.bucket, view.currency)] += view.overdue_amount
    metrics.OPEN_CASES.clear()
    metrics.OPEN_AMOUNT.clear()
    for bucket, n in counts.items():
        metrics.OPEN_CASES.labels(bucket).set(n)
    for (bucket, currency), amount in amounts.items():
        metrics.OPEN_AMOUNT.labels(bucket, currency).set(amount)
    metrics.HELD_MESSAGES.set(sum(w.sequencer.held_count() for w in worker.processor.works.values()))
