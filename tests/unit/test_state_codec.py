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


def _json_of_earlier_versions(state: object, wake: dt.date | None, portfolio: bool) -> bytes:
    """The bytes versions before msgspec wrote: the same tree through the standard library's json."""
    import json

    from streams.state_codec import _encode

    header = f"{wake.toordinal() if wake is not None else ''}:{int(portfolio)}\n"
    return header.encode() + json.dumps(_encode(state), separators=(",", ":"), ensure_ascii=False).encode()


def test_values_are_the_bytes_earlier_versions_wrote_so_stored_values_still_decode() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, contact(work_order), promise(work_order, 3_000, "2026-02-20"), repayment("P1", 500), tick("2026-02-15"))
    state = b.store.get("L1")
    old = _json_of_earlier_versions(state, state.wake_date(0), True)
    assert encode_state(state, state.wake_date(0), True) == old
    assert decode_state(old) == state
    # A value written before by hand (a loan with an installment, a 64-bit fingerprint and a
    # non-ASCII reason) reads into the same dataclasses.
    stored = ('737791:0\n{"L":["L9",null,"已结清",[{"I":[1,{"@":737790},100,5,0]}],[],[],[],'
              '{"%":[18446744073709551615]},0,null,[],null,[],[],0,{"%":[]}]}').encode()
    loan = decode_state(stored)
    assert loan.loan_id == "L9" and loan.closed_reason == "已结清"
    assert loan.installments[0].due_date == dt.date.fromordinal(737790) and loan.installments[0].principal_due == 100
    assert loan.applied == frozenset({2**64 - 1})


def test_a_value_stored_with_fewer_fields_takes_the_defaults_and_one_with_more_is_cut() -> None:
    fewer = decode_state(b':0\n{"G":["AG1",2]}')
    assert fewer.agency_id == "AG1" and fewer.assignments == 2 and fewer.violations == 0
    more = decode_state(b':0\n{"G":["AG1",1,2,3,4,5,6,7,8,9,"a field of a later version"]}')
    assert more.agency_id == "AG1" and more.assignments == 1 and more.violations == 9


def test_the_debtor_stages_barrier_and_held_third_party_contacts_round_trip() -> None:
    from arrears.domain import events as ev
    from arrears.domain.compliance import ContactRecord
    from arrears.domain.debtor import DebtorState, TickBarrier

    day = dt.date(2026, 2, 14)
    record = ContactRecord("c1", "AG1", 1, "CALL", "THIRD_PARTY", "RIGHT_PARTY_CONTACT", "L1:1", 2, "WO-1", "L1",
                           True, day)
    debtor = DebtorState("C1", "Asia/Shanghai", (record,), frozenset(), day, frozenset({"c1"}))
    barrier = TickBarrier(((day, frozenset({0, 3})),), day - dt.timedelta(days=1), frozenset({"C1"}))
    applied = ev.TickApplied(day, 3, 5)
    for value in (debtor, barrier, applied):
        assert decode_state(encode_state(value)) == value
    # A debtor stored before contacts carried the date they were counted on, and before held
    # third-party contacts: counted before every tick, nothing held.
    older = decode_state(b':0\n{"B":["C1","UTC",[{"K":["c1","AG1",1,"CALL","DEBTOR","NO_ANSWER"]}],{"%":[]},null]}')
    assert older.contacts[0].counted_on is None and older.held == frozenset()
