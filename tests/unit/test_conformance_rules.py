"""The worked scenarios of ../shared/conformance through the pure rules (exact match, no Kafka)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_loan_rules import DictStore

from arrears.domain import events as ev
from arrears.domain.book import LoanBook
from arrears.domain.loan import Rules
from schemas import default_catalog, from_json, to_json
from streams.records import to_domain, to_record, to_tick

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"
SCENARIOS = sorted(p.name.split(".")[0] for p in CONFORMANCE.glob("scenario-*.events.jsonl"))


def run_scenario(path: Path) -> dict[str, list[dict[str, object]]]:
    """Apply the events in publish order to one book: ticks are barriers, so one partition suffices."""
    catalog = default_catalog()
    book = LoanBook(DictStore(), Rules())
    outputs: list[ev.Output] = []
    for line in path.read_text().splitlines():
        name, value = from_json(catalog, json.loads(line))
        if name == "BusinessDateChanged":
            outputs += book.tick(to_tick(value))
        else:
            outputs += book.apply(value["loan_id"], to_domain(name, value))
    by_loan: dict[str, list[dict[str, object]]] = {}
    for output in outputs:
        if isinstance(output, (ev.CaseState, ev.Rejected)):
            continue
        name, record = to_record(output)
        by_loan.setdefault(record["loan_id"], []).append(to_json(catalog, name, record))
    return by_loan


def project(actual: list[dict[str, object]], expected: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: a.get(k) for k in e} for a, e in zip(actual, expected, strict=False)]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario_matches_exactly(scenario: str) -> None:
    expected = json.loads((CONFORMANCE / f"{scenario}.expected.json").read_text())
    actual = run_scenario(CONFORMANCE / f"{scenario}.events.jsonl")
    for loan_id, events in expected.items():
        got = actual.get(loan_id, [])
        assert len(got) == len(events), f"{loan_id}: {len(got)} case events, expected {len(events)}"
        assert project(got, events) == events, loan_id
    assert set(actual) <= set(expected), f"unexpected case events for {set(actual) - set(expected)}"
