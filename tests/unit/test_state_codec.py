"""The processor's table values: every state the rules build survives a round trip."""

from __future__ import annotations

import datetime as dt

from builders import repayment, tick
from test_agency_rules import book, contact, m2_case, promise, run

from streams.sequencer import Held, SequencerState, TickMarker
from streams.state_codec import decode_header, decode_state, encode_state


def test_a_loan_with_an_assigned_case_contacts_tallies_and_a_promise_round_trips() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, contact(work_order), promise(work_order, 3_000, "2026-02-20"), repayment("P1", 500), tick("2026-02-15"))
    state = b.store.get("L1")
    assert state.case.assignment and state.case.contacts and state.tallies and state.case.promise
    assert state.case.work_orders
    raw = encode_state(state, state.wake_date(0), True)
    assert decode_state(raw) == state
    assert decode_header(raw) == (dt.date.min, True)
    debtor = b.debtor("C1")
    assert debtor is not None and debtor.contacts
    assert decode_state(encode_state(debtor)) == debtor


def test_a_sequencer_state_with_pending_ticks_and_a_held_message_round_trip() -> None:
    marker = TickMarker(3, "tick-3", dt.date(2026, 1, 4), 17, {"loan.accounts": 5})
    state = SequencerState({"loan.accounts": 4}, 2, dt.date(2026, 1, 3), "tick-2", {"loan.accounts": 6}, 4,
                           (marker,), (), 9)
    assert decode_state(encode_state(state)) == state
    held = Held("loan.accounts", 5, 1.5, 4, b"key", b"\xc3\x01value", (("event_type", b"LoanOpened"),))
    assert decode_state(encode_state(held)) == held


def test_a_loan_no_tick_can_change_says_so_in_its_header() -> None:
    assert decode_header(encode_state(SequencerState(), None, False)) == (None, False)
