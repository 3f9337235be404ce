"""The ops page's workbench endpoints: work queues, chart history, search, the debtor view, actions.

Read endpoints (``read`` scope) ask every worker for its share and add the shares up, as
``/portfolio`` does: ``GET /workbench/queues?days=N``, ``GET /workbench/history``,
``GET /search?q=...&by=id|phone|name`` and ``GET /customers/{customer_id}``. A search by phone
or name needs ``pii`` and, like every answer that shows personal data unmasked, is recorded on
``collections.audit`` first (one PiiAccessed per customer found, by the worker that found it).

Actions need the ``act`` scope and publish a command that names the token as who asked:
``POST /cases/{case_id}/release`` with ``{"reason": "..."}`` publishes ReleaseCase exactly as
``arrears release`` does (:func:`streams.cli.release_case`); ``POST
/cases/{case_id}/settlement/approve`` and ``.../reject`` publish ApproveSettlement or
RejectSettlement as ``arrears settlement`` does (:func:`streams.treatment_cli.decide_settlement`),
``decided_by`` the token's name (an agency's own token cannot decide its proposal: 403).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from faust.web import View

from arrears.domain.cases import Case
from arrears.domain.loan import LoanState
from arrears.errors import ArrearsError
from arrears.topics import loan_id_of_case

from .access import ACT, AUTHORIZATION, Principal
from .audit import AuditError
from .state_codec import decode_header, decode_state
from .store import partition_of
from .web import ViewKit, customer_json, journal_of, kpis, loan_json
from .workbench import (
    OPEN_ITEMS,
    QUEUES,
    add_snapshot,
    budget_contacts,
    journaled_contacts,
    merge_contacts,
    name_key,
    phone_key,
)

if TYPE_CHECKING:
    from .app import Worker

log = logging.getLogger(__name__)
SEARCH_KINDS = ("id", "phone", "name")
INDEX_CHUNK = 500  # stored loans read between two yields to the event loop while the index is built
MAX_REASON = 500


def register_workbench_views(worker: Worker, kit: ViewKit) -> None:
    app = worker.app
    processor = worker.processor
    workbench = processor.workbench
    settings = worker.settings
    index_lock = asyncio.Lock()

    def owned(loan_id: str) -> bool:
        return partition_of(loan_id.encode(), settings.arrears_partitions) in processor.works

    async def indexed() -> None:
        """Make the customer index cover every partition this worker holds (built once per partition)."""
        async with index_lock:
            for partition in sorted(processor.works):
                work = processor.works.get(partition)
                if work is None:
                    continue
                if workbench.needs_index(partition):
                    await _build_index(partition, work)
                if partition in processor.works:
                    workbench.resolve(partition, work.store.get)
                else:
                    workbench.drop(partition)  # given up meanwhile

    async def _build_index(partition: int, work: Any) -> None:
        batch: list[LoanState] = []
        for n, (_loan_id, raw) in enumerate(work.store.scan(), 1):
            if decode_header(raw)[1]:  # only loans with cases or agency tallies are decoded
                batch.append(decode_state(raw))
            if n % INDEX_CHUNK == 0:
                workbench.index_states(partition, batch, done=False)
                batch = []
                await asyncio.sleep(0)  # the processor goes on meanwhile
        workbench.index_states(partition, batch)

    async def audit_customers(web: Any, request: Any, who: Principal, customers: dict[str, list[str]],
                              endpoint: str) -> Any:
        """Record one PiiAccessed per customer shown; the refusal to answer when that fails, else None."""
        try:
            for customer_id, loans in sorted(customers.items()):
                await kit.audit.record(who.name, endpoint, customer_id, loan_id=loans[0] if len(loans) == 1 else None)
        except AuditError as exc:
            log.error("personal data withheld from token %s: cannot record the access (%s)", who.name, exc)
            return web.json({"error": "audit: the access to personal data cannot be recorded now; retry later"},
                            status=503)
        return None

    # ------------------------------------------------------------------ queues and charts
    @app.page("/workbench/queues")
    @kit.guarded
    async def queues(web: Any, request: Any, who: Principal) -> Any:
        days = _int_param(request, "days", 1, 1, 90)
        if isinstance(days, str):
            return web.json({"error": days}, status=400)
        local = workbench.local_queues({p: w.book for p, w in processor.works.items()}, days)
        views = await kit.gather(web, request, local)
        if not isinstance(views, list):
            return views
        body = merge_queues(views)
        body["days"] = days
        body["can_act"] = ACT in who.scopes
        return web.json(body)

    @app.page("/workbench/history")
    @kit.guarded
    async def history(web: Any, request: Any, who: Principal) -> Any:
        views = await kit.gather(web, request, workbench.local_history())
        if not isinstance(views, list):
            return views
        return web.json(merge_history(views, settings.arrears_partitions, processor.rules.buckets.names))

    # ------------------------------------------------------------------ search and the debtor view
    def loan_summary(state: LoanState) -> dict[str, Any]:
        body = loan_json(worker, state)
        for bulky in ("customer", "installments", "repayments", "pending_reversals", "events_waiting_for_loan"):
            body.pop(bulky, None)
        return body

    @app.page("/search")
    @kit.guarded
    async def search(web: Any, request: Any, who: Principal) -> Any:
        query = request.query.get("q", "").strip()
        by = request.query.get("by", "id")
        if not query:
            return web.json({"error": "q: say what to look for (a case, loan or customer id; a phone; a name)"},
                            status=400)
        if by not in SEARCH_KINDS:
            return web.json({"error": f"by: one of {', '.join(SEARCH_KINDS)}, not {by!r}"}, status=400)
        if by != "id" and not who.sees_pii:
            return web.json({"error": f"forbidden: searching by {by} needs a token with the 'pii' scope "
                                      f"(token {who.name!r} does not have it)"}, status=403)
        await indexed()
        matches: list[dict[str, Any]] = []
        if by == "id":
            matches = _by_id(query)
        else:
            key = phone_key(query) if by == "phone" else name_key(query)
            if key in ("phone:", "name:"):
                return web.json({"error": f"q: no {by} in {query!r}" if by == "name" else "q: a phone needs digits"},
                                status=400)
            customers: dict[str, list[str]] = {}
            for loan_id in workbench.loans_of_person(key):
                state = processor.loan_state(loan_id) if owned(loan_id) else None
                if state is not None and state.account is not None:
                    customers.setdefault(state.account.customer_id, []).append(loan_id)
            refused = await audit_customers(web, request, who, customers, f"GET /search?by={by}")
            if refused is not None:
                return refused
            matches = [{"kind": "customer", "customer_id": c, "loan_ids": loans} for c, loans in customers.items()]
        views = await kit.gather(web, request, {"matches": matches})
        if not isinstance(views, list):
            return views
        return web.json({"q": query if by == "id" else None, "by": by, "matches": _merge_matches(views),
                         "unreachable_workers": views[0]["_unreachable"]})

    def _by_id(query: str) -> list[dict[str, Any]]:
        matches: list[dict[str, Any]] = []
        try:
            case_loan: str | None = loan_id_of_case(query)
        except ValueError:
            case_loan = None
        if case_loan is not None and owned(case_loan):
            state = processor.loan_state(case_loan)
            case = state.find_case(query) if state is not None else None
            if state is not None and state.account is not None and case is not None:
                status = case.status if isinstance(case, Case) else "CLOSED"
                matches.append({"kind": "case", "case_id": query, "loan_id": case_loan,
                                "customer_id": state.account.customer_id, "status": status})
        if owned(query):
            state = processor.loan_state(query)
            if state is not None and state.account is not None:
                matches.append({"kind": "loan", "loan_id": query, "customer_id": state.account.customer_id})
        loans = workbench.loans_of_customer(query)
        if loans:
            matches.append({"kind": "customer", "customer_id": query, "loan_ids": loans})
        return matches

    @app.page("/customers/{customer_id}")
    @kit.guarded
    async def customer(web: Any, request: Any, who: Principal, customer_id: str) -> Any:
        await indexed()
        states = [s for s in (processor.loan_state(loan) for loan in workbench.loans_of_customer(customer_id)
                              if owned(loan)) if s is not None and s.account is not None]
        debtor_work = processor.works.get(partition_of(customer_id.encode(), settings.arrears_partitions))
        local: dict[str, Any] = {
            "loans": [loan_summary(s) for s in states],
            "customer": customer_json(states[0], who.sees_pii) if states else None,
            "contacts": [c for s in states for c in journaled_contacts(journal_of(worker, s))],
            # the debtor stage's partition of this customer: the attempts its budget counts now
            "budget": budget_contacts(debtor_work.debtors.contacts(customer_id),
                                      debtor_work.debtors.awaiting(customer_id)) if debtor_work else [],
        }
        if who.sees_pii and states:
            refused = await audit_customers(web, request, who, {customer_id: [s.loan_id for s in states]},
                                            f"GET /customers/{customer_id}")
            if refused is not None:
                return refused
        views = await kit.gather(web, request, local)
        if not isinstance(views, list):
            return views
        loans = sorted((loan for v in views for loan in v["loans"]), key=lambda loan: loan["loan_id"])
        if not loans:
            return web.json({"error": f"no cases of customer {customer_id}"}, status=404)
        person = next((v["customer"] for v in views if v.get("customer")), None)
        cases = [c for loan in loans for c in loan["cases"]]
        open_cases = [c for c in cases if c.get("status") != "CLOSED"]
        contacts = merge_contacts((c for v in views for c in v["contacts"]), (c for v in views for c in v["budget"]))
        return web.json({"customer_id": customer_id, "customer": person, "loans": loans,
                         "open_cases": len(open_cases), "cases": len(cases),
                         "agencies": sorted({c["agency_id"] for c in open_cases if c.get("agency_id")}),
                         "contacts": contacts, "unreachable_workers": views[0]["_unreachable"]})

    # ------------------------------------------------------------------ actions
    async def release(web: Any, request: Any, who: Principal, case_id: str) -> Any:
        from .cli import CommandRefused, release_case

        try:
            body = await request.json()
        except ValueError:
            body = None
        reason = body.get("reason") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason.strip():
            return web.json({"error": 'reason: send {"reason": "why the hold is lifted"} (it is kept in the '
                                      "audit trail)"}, status=400)
        if len(reason) > MAX_REASON:
            return web.json({"error": f"reason: at most {MAX_REASON} characters"}, status=400)
        token = request.headers.get(AUTHORIZATION, "").strip().partition(" ")[2].strip() or None
        own_url = str(app.conf.canonical_url).rstrip("/")
        loop = asyncio.get_running_loop()
        try:
            case, command = await loop.run_in_executor(
                None, release_case, settings, own_url, case_id, reason.strip(), who.name, token)
        except CommandRefused as exc:
            return web.json({"error": str(exc)}, status=exc.status)
        except ArrearsError as exc:
            log.error("release of %s by %s not published: %s", case_id, who.name, exc)
            return web.json({"error": f"not published: {exc}"}, status=503)
        log.info("ReleaseCase published for %s by token %s", case_id, who.name,
                 extra={"case_id": case_id, "event_id": command["event_id"]})
        return web.json({"published": "ReleaseCase", "case_id": case_id, "event_id": command["event_id"],
                         "requested_by": who.name, "hold_reason": case.get("hold_reason")}, status=202)

    app.page("/cases/{case_id}/release")(type("release_case", (View,), {"post": kit.guarded(release, ACT)}))

    def settlement_decision(decision: str) -> Any:
        async def decide(web: Any, request: Any, who: Principal, case_id: str) -> Any:
            from .cli import CommandRefused
            from .treatment_cli import decide_settlement

            token = request.headers.get(AUTHORIZATION, "").strip().partition(" ")[2].strip() or None
            own_url = str(app.conf.canonical_url).rstrip("/")
            loop = asyncio.get_running_loop()
            try:
                settlement, command = await loop.run_in_executor(
                    None, decide_settlement, settings, own_url, case_id, decision, who.name, token)
            except CommandRefused as exc:
                return web.json({"error": str(exc)}, status=exc.status)
            except ArrearsError as exc:
                log.error("settlement %s of %s by %s not published: %s", decision, case_id, who.name, exc)
                return web.json({"error": f"not published: {exc}"}, status=503)
            name = "ApproveSettlement" if decision == "approve" else "RejectSettlement"
            log.info("%s published for %s by token %s", name, case_id, who.name,
                     extra={"case_id": case_id, "event_id": command["event_id"]})
            return web.json({"published": name, "case_id": case_id, "settlement_id": settlement["settlement_id"],
                             "event_id": command["event_id"], "decided_by": who.name}, status=202)

        return decide

    for decision in ("approve", "reject"):
        view = type(f"settlement_{decision}", (View,), {"post": kit.guarded(settlement_decision(decision), ACT)})
        app.page(f"/cases/{{case_id}}/settlement/{decision}")(view)


def _int_param(request: Any, name: str, default: int, low: int, high: int) -> int | str:
    """An integer query parameter within [low, high], or the reason it is not one."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return f"{name}: a whole number from {low} to {high}, not {raw!r}"
    if not low <= value <= high:
        return f"{name}: a whole number from {low} to {high}, not {value}"
    return value


def _merge_matches(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every worker's matches; a customer found on several workers once, with all its loans."""
    merged: list[dict[str, Any]] = []
    customers: dict[str, dict[str, Any]] = {}
    for view in views:
        for match in view.get("matches", ()):
            if match["kind"] != "customer":
                merged.append(match)
                continue
            found = customers.get(match["customer_id"])
            if found is None:
                customers[match["customer_id"]] = found = {**match, "loan_ids": []}
                merged.append(found)
            found["loan_ids"] = sorted({*found["loan_ids"], *match["loan_ids"]})
    order = {"case": 0, "loan": 1, "customer": 2}
    return sorted(merged, key=lambda m: (order[m["kind"]], m.get("case_id") or m.get("loan_id") or m["customer_id"]))


# --------------------------------------------------------------------------- every worker's, merged
def merge_queues(views: list[dict[str, Any]], limit: int = 200) -> dict[str, Any]:
    """The queues of every worker in one answer: each queue's count and its first *limit* rows."""
    def take(name: str, key: Callable[[dict[str, Any]], Any], reverse: bool = False) -> dict[str, Any]:
        rows = sorted((r for v in views for r in v.get(name, ())), key=key, reverse=reverse)
        return {"count": len(rows), "items": rows[:limit]}

    queues: dict[str, Any] = {
        "broken_promises": take("broken_promises", lambda r: (r["business_date"], r["case_id"]), reverse=True),
        "violations": take("violations", lambda r: (r["occurred_at"], r["case_id"]), reverse=True),
        "unassigned": take("unassigned", lambda r: (-r["ticks_waiting"], r["case_id"])),
        "held": take("held", lambda r: (r["since"] or "", r["case_id"])),
    }
    by_rule: dict[str, Counter[str]] = {}
    for view in views:
        for v in view.get("violations", ()):
            by_rule.setdefault(v["rule"], Counter())[v["agency_id"]] += 1
    queues["violations"]["by_rule_and_agency"] = {rule: dict(c) for rule, c in sorted(by_rule.items())}
    for name in OPEN_ITEMS:
        rows = sorted((r for v in views for r in v.get("open_items", {}).get(name, ())),
                      key=lambda r: (r.get("since") or "", r.get("case_id") or ""))
        queues[name] = {"count": len(rows), "items": rows[:limit]}
    dates = [d for v in views for d in v.get("business_dates", {}).values() if d]
    return {
        "business_date": min(dates) if dates else None,
        "queues": queues,
        "registry": [{"name": q.name, "title": q.title, "available": q.available, "actions": list(q.actions),
                      "note": q.note} for q in QUEUES.values()],
        "unreachable_workers": views[0].get("_unreachable", 0) if views else 0,
    }


def merge_history(views: list[dict[str, Any]], partitions: int, bucket_order: tuple[str, ...]) -> dict[str, Any]:
    """The charts' series: dates every partition reported, open cases/amounts by bucket, agency KPIs."""
    days: dict[str, dict[str, Any]] = {}
    for view in views:
        for date, day in view.get("days", {}).items():
            add_snapshot(days.setdefault(date, {"partitions": 0, "buckets": {}, "agencies": {}}), day,
                          day["partitions"])
    complete = sorted(d for d, day in days.items() if day["partitions"] >= partitions)
    order = {b: i for i, b in enumerate(bucket_order)}
    keys = {k for d in complete for k in days[d]["buckets"]}
    buckets = sorted({k.split("|")[0] for k in keys}, key=lambda b: (order.get(b, 99), b))
    currencies = sorted({k.split("|")[1] for k in keys})
    currency = currencies[0] if len(currencies) == 1 else None

    def series(index: int, bucket: str) -> list[int]:
        return [sum(v[index] for k, v in days[d]["buckets"].items() if k.split("|")[0] == bucket) for d in complete]

    agency_ids = sorted({a for d in complete for a in days[d]["agencies"]})
    agencies: dict[str, dict[str, list[Any]]] = {}
    for agency_id in agency_ids:
        rows = []
        for d in complete:
            tallies = Counter(days[d]["agencies"].get(agency_id, {}))
            tallies["cases_held"] = tallies.pop("holding", 0)
            rows.append(kpis(tallies))
        agencies[agency_id] = {name: [r[name] for r in rows] for name in
                               ("cases_held", "contact_rate", "promise_kept_rate", "violations_per_100_contacts",
                                "amount_recovered")}
    return {
        "dates": complete,
        "buckets": buckets,
        "cases": {b: series(0, b) for b in buckets},
        "amounts": {b: series(1, b) for b in buckets} if currency is not None else {},
        "currency": currency,
        "agencies": agencies,
        "incomplete_dates": len(days) - len(complete),
        "unreachable_workers": views[0].get("_unreachable", 0) if views else 0,
    }
