"""Reading a POST /results body: accepted whole or refused whole, with the item and field named."""

from __future__ import annotations

import json

import pytest

from consumers.results import InvalidResults, parse_results
from schemas import get_codec

CATALOG = get_codec().catalog


def contact(**overrides: object) -> dict[str, object]:
    return {
        "type": "ContactAttempted",
        "event_id": "r-1",
        "occurred_at": "2026-03-02T02:15:00Z",
        "agency_id": "AG1",
        "case_id": "L1:1",
        "work_order_id": "WO-1",
        "attempted_at": "2026-03-02T02:15:00Z",
        "channel": "CALL",
        "party": "DEBTOR",
        "outcome": "NO_ANSWER",
        **overrides,
    }


def body(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_one_result_or_an_array_of_results_is_read() -> None:
    assert [n for n, _ in parse_results(CATALOG, body(contact()), "AG1")] == ["ContactAttempted"]
    promise = {
        **contact(event_id="r-2"),
        "type": "PromiseToPay",
        "promised_amount": 100,
        "promised_date": "2026-03-09",
    }
    for key in ("attempted_at", "channel", "party", "outcome"):
        promise.pop(key)
    results = parse_results(CATALOG, body([contact(), promise]), "AG1")
    assert [n for n, _ in results] == ["ContactAttempted", "PromiseToPay"]


def test_an_empty_array_is_read_as_nothing_to_publish() -> None:
    assert parse_results(CATALOG, b"[]", "AG1") == []


@pytest.mark.parametrize(
    ("doc", "reason", "index"),
    [
        (b"{not json", "body: not valid JSON", None),
        (b"\xff\xfe", "body: not UTF-8", None),
        (b"[" * 100_000 + b"]" * 100_000, "body: nested too deeply", None),
        (b'"\\ud800"', "body: contains an unpaired surrogate", None),
        (body(contact(channel="PIGEON")), "channel: 'PIGEON' is not one of", None),
        (body([contact(), contact(event_id="r-2", outcome=None)]), "[1] outcome: must not be null", 1),
        (body([contact(), {"event_id": "x"}]), "[1] type: missing", 1),
        (
            body([contact(), contact(agency_id="AG2")]),
            "[1] agency_id: 'AG2' is not this adapter's agency (AG1)",
            1,
        ),
        (body([contact(case_id="no-colon")]), "[0] case_id:", 0),
        (body([contact(extra=1)]), "[0] extra: unknown field of ContactAttempted", 0),
        (
            body([{**contact(), "type": "RepaymentReceived"}]),
            "[0] type: 'RepaymentReceived' is not accepted",
            0,
        ),
        (body(42), "expected a JSON object", None),
        # found by the fuzz test: instants a datetime cannot hold were a 500, not a 400
        (body([contact(occurred_at=-62135596800001)]), "occurred_at: instant -62135596800001 ms is outside", 0),
        (body([contact(attempted_at=10**30)]), "attempted_at: instant", 0),
        (body([contact(occurred_at="0001-01-01T00:00:00+01:00")]), "occurred_at: instant", 0),
    ],
)
def test_a_bad_body_is_refused_whole_naming_the_item_and_field(
    doc: bytes, reason: str, index: int | None
) -> None:
    with pytest.raises(InvalidResults) as caught:
        parse_results(CATALOG, doc, "AG1")
    assert caught.value.reason.startswith(reason) or reason in caught.value.reason
    assert caught.value.index == index


def settlement(**overrides: object) -> dict[str, object]:
    return {"type": "SettlementProposed", "event_id": "s-1", "occurred_at": "2026-03-05T10:30:00Z",
            "agency_id": "AG1", "case_id": "L1:1", "work_order_id": "WO-1", "amount": 360_000,
            "pay_by": "2026-03-20", **overrides}


def test_a_settlement_proposal_is_a_result_and_its_amount_must_be_positive_minor_units() -> None:
    ((name, value),) = parse_results(CATALOG, body(settlement()), "AG1")
    assert (name, value["amount"], value["pay_by"].isoformat()) == ("SettlementProposed", 360_000, "2026-03-20")
    for bad, reason in ((settlement(amount=0), "amount: a settlement amount must be > 0"),
                        (settlement(amount=3600.5), "amount: expected an integer"),
                        (settlement(pay_by="20.3.2026"), "pay_by: expected a date"),
                        (settlement(discount=0.1), "discount: unknown field")):
        with pytest.raises(InvalidResults, match=reason):
            parse_results(CATALOG, body(bad), "AG1")
