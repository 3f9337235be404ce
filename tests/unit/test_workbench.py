"""The ops page's work queues and chart history, fed with what the rules emit (no Kafka)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from builders import installment, opened, repayment, tick
from test_agency_rules import HOUR, T0, contact, of, promise, result
from test_loan_rules import DictStore

from arrears.config import parse_config
from arrears.domain import events as ev
from arrears.domain.book import LoanBook
from arrears.domain.pipeline import Pipeline
from streams.workbench import WAIT_TICKS, Workbench, name_key, phone_key
from streams.workbench_api import merge_history, merge_queues

CONFIG = {
    "internal_buckets": ["M1"],
    "agencies": [
        {"id": "AG1", "buckets": ["M2", "M3"], "capacity": 10, "weight": 1, "assignment_days": 30,
         "transport": {"type": "webhook", "url": "https://ag1.example/", "secret_env": "AG1_SECRET"}},
        {"id": "AG2", "buckets": ["M4"], "capacity": 0, "weight": 1, "assignment_days": 30,  # always full
         "transport": {"type": "webhook", "url": "https://ag2.example/", "secret_env": "AG2_SECRET"}},
    ],
}


@dataclass
class Work:
    book: LoanBook


class Bench:
    """One partition's book and a workbench fed the way the processor feeds it."""

    def __init__(self) -> None:
        rules = parse_config(CONFIG).rules(1)
        self.pipeline = Pipeline(rules)  # every stage of the rules (placement included), one partition
        self.book = self.pipeline.books[0]
        self.works = {0: Work(self.book)}
        self.workbench = Workbench(rules, 1, self.works)

    def run(self, *steps: Any) -> list[ev.Output]:
        out: list[ev.Output] = []
        for step in steps:
            if isinstance(step, ev.Tick):
                produced = self.pipeline.tick(step)
                self._feed(produced)
                self.workbench.ticked(0, self.book)
            else:
                loan_id = getattr(step, "loan_id", None) or step.case_id.rsplit(":", 1)[0]
                produced = self.pipeline.apply(loan_id, step)
                self._feed(produced)
            out += produced
        return out

    def _feed(self, outputs: list[ev.Output]) -> None:
        for output in outputs:
            if not isinstance(output, ev.Rejected):
                self.workbench.observe(output)

    def queues(self, days: int = 1) -> dict[str, Any]:
        return merge_queues([self.workbench.local_queues({0: self.book}, days)])["queues"]


def _loan(bench: Bench, loan_id: str, first_due: str, customer_id: str = "C1") -> None:
    bench.run(opened(loan_id, customer_id=customer_id), installment(1, first_due, loan_id=loan_id),
              installment(2, "2026-06-01", loan_id=loan_id))


def scenario() -> tuple[Bench, ev.WorkOrderIssued, ev.WorkOrderIssued]:
    """L1 and L2 go to AG1 in M2; L3 is in M4, whose only agency is full."""
    bench = Bench()
    _loan(bench, "L1", "2026-01-10")
    _loan(bench, "L2", "2026-01-10", customer_id="C2")
    _loan(bench, "L3", "2025-11-10", customer_id="C1")
    out = bench.run(tick("2026-02-14"))
    orders = {o.loan_id: o for o in of(out, ev.WorkOrderIssued)}
    assert set(orders) == {"L1", "L2"}
    return bench, orders["L1"], orders["L2"]


def test_a_broken_promise_is_in_the_queue_since_the_last_tick_and_leaves_it_at_the_next() -> None:
    bench, l1, _ = scenario()
    bench.run(promise(l1, 4_000, "2026-02-16"), repayment("P1", 1_000, loan_id="L1", value_date="2026-02-15"),
              tick("2026-02-15"), tick("2026-02-16"))
    assert bench.queues()["broken_promises"]["count"] == 0
    bench.run(tick("2026-02-17"))  # judged the day after its date
    (item,) = bench.queues()["broken_promises"]["items"]
    assert item["case_id"] == l1.case_id and item["agency_id"] == "AG1"
    assert (item["promised_amount"], item["paid_amount"], item["business_date"]) == (4_000, 1_000, "2026-02-17")
    bench.run(tick("2026-02-18"))
    assert bench.queues()["broken_promises"]["count"] == 0  # no longer "since the last tick"
    assert bench.queues(days=2)["broken_promises"]["count"] == 1  # still within two business dates


def test_violations_are_counted_by_rule_and_agency() -> None:
    bench, l1, l2 = scenario()
    bench.run(tick("2026-03-05"))
    bench.run(contact(l1, at=T0 + 14 * HOUR), contact(l2, at=T0 + 15 * HOUR), contact(l2, at=T0))
    violations = bench.queues()["violations"]
    assert violations["count"] == 2
    assert violations["by_rule_and_agency"] == {"QUIET_HOURS": {"AG1": 2}}
    assert {v["case_id"] for v in violations["items"]} == {l1.case_id, l2.case_id}
    assert all(v["business_date"] == "2026-03-05" for v in violations["items"])


def test_a_case_no_agency_can_take_waits_more_than_two_ticks_before_it_is_queued() -> None:
    bench, _, _ = scenario()
    for n in range(WAIT_TICKS + 1):
        assert bench.queues()["unassigned"]["count"] == 0, n
        bench.run(tick(f"2026-02-{15 + n}"))
    (item,) = bench.queues()["unassigned"]["items"]
    assert (item["loan_id"], item["bucket"], item["since"], item["ticks_waiting"]) == ("L3", "M4", "2026-02-14", 3)
    assert item["why"] == "every agency serving M4 is at capacity"
    # internal buckets (M1) are not waiting for an agency
    _loan(bench, "L4", "2026-02-10")
    bench.run(*(tick(f"2026-02-{18 + n}") for n in range(4)))
    assert {i["loan_id"] for i in bench.queues()["unassigned"]["items"]} == {"L3"}


def test_a_held_case_is_queued_with_its_reason_and_date_and_leaves_on_release() -> None:
    bench, _, l2 = scenario()
    bench.run(tick("2026-02-15"), result(ev.DisputeRaised, l2, details="not my loan"))
    (item,) = bench.queues()["held"]["items"]
    assert (item["case_id"], item["hold_reason"], item["since"], item["status"]) == (
        l2.case_id, "DISPUTE", "2026-02-15", "HOLD")
    bench.run(ev.ReleaseCase("rel-1", 0, l2.case_id, "L2", "supervisor", "resolved"))
    assert bench.queues()["held"]["count"] == 0


def test_the_history_has_open_cases_and_amounts_by_bucket_and_agency_kpis_per_business_date() -> None:
    bench, l1, _ = scenario()
    bench.run(tick("2026-02-15"), contact(l1), tick("2026-02-16"))
    history = merge_history([bench.workbench.local_history()], 1, ("M0", "M1", "M2", "M3", "M4"))
    assert history["dates"] == ["2026-02-14", "2026-02-15", "2026-02-16"]
    assert history["buckets"] == ["M2", "M4"]
    assert history["cases"] == {"M2": [2, 2, 2], "M4": [1, 1, 1]}
    assert history["currency"] == "CNY" and history["amounts"]["M2"][0] == 20_000
    assert history["agencies"]["AG1"]["cases_held"] == [2, 2, 2]
    assert history["agencies"]["AG1"]["contact_rate"] == [0.0, 0.0, 1.0]


def test_history_merges_workers_and_leaves_out_dates_not_every_partition_reported() -> None:
    one = {"days": {"2026-02-14": {"partitions": 2, "buckets": {"M2|CNY": [2, 200]}, "agencies": {}},
                    "2026-02-15": {"partitions": 2, "buckets": {"M2|CNY": [3, 300]}, "agencies": {}}}}
    two = {"days": {"2026-02-15": {"partitions": 1, "buckets": {"M2|CNY": [1, 100]}, "agencies": {}}}}
    history = merge_history([one, two], 3, ("M2",))
    assert history["dates"] == ["2026-02-15"] and history["cases"] == {"M2": [4]}
    assert history["incomplete_dates"] == 1


def test_a_dropped_partition_leaves_nothing_behind() -> None:
    bench, _, l2 = scenario()
    bench.run(result(ev.DisputeRaised, l2, details="x"))
    bench.workbench.drop(0)
    assert bench.workbench.local_history() == {"days": {}}
    assert bench.workbench.loans_of_customer("C2") == []


def test_customers_and_persons_are_indexed_from_outputs_and_stored_loans() -> None:
    bench, _, _ = scenario()
    assert bench.workbench.loans_of_customer("C1") == ["L1", "L3"]  # from the cases' outputs
    bench.workbench.resolve(0, bench.book.store.get)
    assert bench.workbench.loans_of_person(phone_key("138 0000 0000")) == ["L1", "L2", "L3"]
    assert bench.workbench.loans_of_person(name_key(" 张三 ")) == ["L1", "L2", "L3"]
    # a worker that takes the partition over rebuilds the index from the stored loans
    fresh = Workbench(bench.book.rules, 1, bench.works)
    assert fresh.needs_index(0)
    fresh.index_states(0, bench.book.store.values())
    assert not fresh.needs_index(0)
    assert fresh.loans_of_customer("C2") == ["L2"]
    assert fresh.loans_of_person(phone_key("13800000000")) == ["L1", "L2", "L3"]


def test_the_registry_lists_every_queue_with_its_actions() -> None:
    registry = {q["name"]: q for q in merge_queues([{}])["registry"]}
    assert registry["held"]["actions"] == ["release"]
    assert registry["settlements"]["actions"] == ["approve", "reject"]
    assert all(q["available"] for q in registry.values())


def test_pending_settlements_and_paused_loans_open_and_close_their_queues() -> None:
    rules = parse_config({}).rules(1)
    bench = Workbench(rules, 1, {})
    day = dt.date(2026, 3, 2)
    pending = ev.SettlementPending("e1", 0, "L1:1", "L1", day, "L1:1:S1", "AG1", 30_000, dt.date(2026, 3, 20), 0.25)
    paused = ev.DelinquencyPaused("e2", 0, "L2:1", "L2", day, dt.date(2026, 3, 1), None, 0, "M1", "desk")
    for output in (pending, paused):
        bench.observe(output)
    queues = merge_queues([bench.local_queues({0: LoanBook(DictStore(), rules)}, 30)])["queues"]
    assert [(i["settlement_id"], i["pay_by"], i["discount"]) for i in queues["settlements"]["items"]] == [
        ("L1:1:S1", "2026-03-20", 0.25)]
    assert [(i["loan_id"], i["from_date"], i["until_date"]) for i in queues["paused"]["items"]] == [
        ("L2", "2026-03-01", None)]
    bench.observe(ev.SettlementApproved("e3", 0, "L1:1", "L1", day, "L1:1:S1", "AG1", 30_000,
                                        dt.date(2026, 3, 20), 0.25, "supervisor"))
    bench.observe(ev.DelinquencyResumed("e4", 0, "L2:1", "L2", day, day, 1, "M1", "desk"))
    queues = merge_queues([bench.local_queues({0: LoanBook(DictStore(), rules)}, 30)])["queues"]
    assert queues["settlements"]["count"] == queues["paused"]["count"] == 0


def test_search_matches_of_several_workers_list_a_customer_once_with_all_its_loans() -> None:
    from streams.workbench_api import _merge_matches

    one = {"matches": [{"kind": "customer", "customer_id": "C1", "loan_ids": ["L3"]},
                       {"kind": "loan", "loan_id": "C1", "customer_id": "C9"}]}
    two = {"matches": [{"kind": "customer", "customer_id": "C1", "loan_ids": ["L1"]}]}
    assert _merge_matches([one, two]) == [
        {"kind": "loan", "loan_id": "C1", "customer_id": "C9"},
        {"kind": "customer", "customer_id": "C1", "loan_ids": ["L1", "L3"]},
    ]


def test_a_debtors_contacts_say_which_third_party_contact_waits_for_its_verdict() -> None:
    from arrears.domain.compliance import ContactRecord
    from streams.workbench import budget_contacts, merge_contacts

    tp = ContactRecord("tp", "AG1", 2_000, "CALL", "THIRD_PARTY", "RIGHT_PARTY_CONTACT", "L1:1", 0, "WO-1", "L1")
    call = ContactRecord("c1", "AG1", 1_000, "CALL", "DEBTOR", "NO_ANSWER", "L2:1", 0, "WO-2", "L2")
    budget = budget_contacts([call, tp], frozenset({"tp"}))
    journaled = [{"event_id": "tp", "attempted_at": 2_000, "violations": []}]
    merged = merge_contacts(journaled, budget)
    assert [(c["event_id"], c["in_budget"], c["awaiting_verdict"]) for c in merged] == [
        ("c1", True, False), ("tp", True, True)]
