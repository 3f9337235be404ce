"""``arrears publish``'s file checks, without a broker: every line checked first, errors name the line."""

from __future__ import annotations

import json

from producers.jsonlines import check_lines, derived_event_id, file_digest
from schemas import get_codec

CATALOG = get_codec().catalog
LOAN = {"type": "LoanOpened", "loan_id": "L-1", "customer_id": "C-1", "product_code": "CASH", "currency": "CNY",
        "principal": 300000, "opened_on": "2026-01-01",
        "customer": {"name": "测试", "phone": "13800000000", "national_id": "110101199001011234",
                     "province": "广东省", "city": "深圳市"}}
TICK = {"type": "BusinessDateChanged", "business_date": "2026-01-11"}


def jsonl(*objs: object) -> bytes:
    return "".join((o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)) + "\n" for o in objs).encode()


def test_good_lines_keep_their_order_and_line_numbers_and_blank_lines_are_skipped() -> None:
    data = jsonl(LOAN, "", TICK)
    checked = check_lines(CATALOG, data)
    assert checked.bad == []
    assert [(line.number, line.name) for line in checked.lines] == [(1, "LoanOpened"), (3, "BusinessDateChanged")]
    assert "type" not in checked.lines[0].fields


def test_lines_without_an_event_id_get_one_from_the_file_and_the_line_the_same_on_every_run() -> None:
    data = jsonl(LOAN, TICK, {**TICK, "event_id": "mine"})
    first, second = check_lines(CATALOG, data), check_lines(CATALOG, data)
    ids = [line.fields["event_id"] for line in first.lines]
    assert ids == [line.fields["event_id"] for line in second.lines]
    assert ids[:2] == [derived_event_id(file_digest(data), 1), derived_event_id(file_digest(data), 2)]
    assert ids[2] == "mine"
    assert len(set(ids)) == 3
    other = jsonl(TICK, LOAN)  # another file: other ids
    assert not set(ids) & {line.fields["event_id"] for line in check_lines(CATALOG, other).lines}


def test_every_bad_line_is_named_by_its_number_with_the_reason() -> None:
    data = jsonl(
        LOAN,
        {"loan_id": "L-1"},                                   # 2: no type
        '{"type": "RepaymentReceived", "loan_id": ',          # 3: not JSON
        [1, 2],                                               # 4: not an object
        {"type": "CaseOpened", "loan_id": "L-1"},             # 5: an output record
        {**LOAN, "principal": "lots"},                        # 6: a field of the wrong type
        {"type": "CaseReturned", "agency_id": "AG1", "case_id": "nocolon", "work_order_id": "W", "reason": "r"},  # 7
        TICK,
    ) + b"\xff\xfe\n"                                         # 9: not UTF-8
    checked = check_lines(CATALOG, data)
    assert [line.number for line in checked.lines] == [1, 8]
    reasons = {bad.number: bad.reason for bad in checked.bad}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 9]
    assert reasons[2].startswith('no "type"')
    assert reasons[3].startswith("not JSON")
    assert reasons[4] == "expected one record as a JSON object, got list"
    assert reasons[5].startswith("CaseOpened: type: 'CaseOpened' is not an input record")
    assert reasons[6].startswith("LoanOpened: principal")
    assert reasons[7].startswith("CaseReturned: case id 'nocolon' is not of the form <loan_id>:<n>")
    assert reasons[9].startswith("not UTF-8")
    assert all("None" not in reason for reason in reasons.values())  # the issue: "None is not an input record"
