"""Test helper: a work order carries no more personal data than SPEC §5 allows.

    assert_minimal_pii(msg.value(), national_ids={...}, customer_ids={...},
                       emergency_contacts=[("李四", "+8613900000000"), ...])

``message`` may be the Avro bytes from ``agency.<id>.work-orders``, a webhook body (JSON
bytes or text), or the JSON form / decoded value as a mapping. Checks, whatever is given:

* no field named ``customer_id``, ``national_id`` or ``customer`` anywhere in the record;
* ``debtor.national_id_masked`` has every character but the last 4 replaced by ``*`` (all of them
  for an id of 4 characters or fewer);
* ``emergency_contacts`` is empty unless allowed (by the argument *and* the work order's policy);

and, for the known values passed in, that none appears in the bytes or any string field: a full
national id, a customer id (substring match for ids of 6+ characters, exact field match for
shorter ones) or, when not allowed, an emergency contact's name or phone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from arrears.privacy import is_masked_national_id
from schemas import CodecError, from_json, get_codec, to_json

FORBIDDEN_FIELDS = frozenset({"customer_id", "national_id", "customer"})
WORK_ORDER_TYPES = frozenset({"WorkOrderIssued", "WorkOrderUpdated", "WorkOrderCancelled"})


def _as_json_form(message: bytes | str | Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
    codec = get_codec()
    if isinstance(message, Mapping):
        obj = dict(message)
        if "type" not in obj:
            raise AssertionError("a mapping work order must carry its 'type'")
        if not isinstance(obj.get("occurred_at"), str):  # a decoded Avro value: render it first
            obj = to_json(codec.catalog, obj.pop("type"), obj)
        return obj, json.dumps(obj, ensure_ascii=False).encode()
    raw = message.encode() if isinstance(message, str) else bytes(message)
    if raw[:2] == b"\xc3\x01" or raw[:1] == b"\x00":
        decoded = codec.decode(raw)
        return to_json(codec.catalog, decoded.name, decoded.value), raw
    return json.loads(raw), raw


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def _keys(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, str(key)
            yield from _keys(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _keys(item, f"{path}[{i}]")


def _hint(secret: str) -> str:
    """Name a leaked value without printing it whole into CI logs."""
    return f"{secret[:2]}…({len(secret)} chars)"


def assert_minimal_pii(
    message: bytes | str | Mapping[str, Any],
    *,
    national_ids: Iterable[str] = (),
    customer_ids: Iterable[str] = (),
    emergency_contacts: Iterable[tuple[str, str]] = (),
    emergency_contacts_allowed: bool = False,
) -> None:
    """Raise AssertionError naming the leak if the work order carries forbidden personal data."""
    obj, raw = _as_json_form(message)
    name = obj.get("type")
    assert name in WORK_ORDER_TYPES, f"not a work order: type {name!r}"
    text = json.dumps(obj, ensure_ascii=False)
    for where, key in _keys(obj):
        assert key not in FORBIDDEN_FIELDS, f"{name} {obj.get('event_id')}: field {where} must not be sent"
    try:
        from_json(get_codec().catalog, obj)  # exactly its schema: no smuggled fields
    except CodecError as exc:
        raise AssertionError(f"{name} {obj.get('event_id')}: not its schema: {exc}") from None
    debtor = obj.get("debtor")
    if isinstance(debtor, Mapping):
        masked = str(debtor.get("national_id_masked", ""))
        assert is_masked_national_id(masked), (
            f"{name} {obj.get('event_id')}: debtor.national_id_masked is not masked but for the last 4 "
            "(or entirely, for 4 characters or fewer)"
        )
    policy_allows = bool((obj.get("contact_policy") or {}).get("emergency_contacts_allowed"))
    allowed = emergency_contacts_allowed and policy_allows
    if not allowed:
        assert not obj.get("emergency_contacts"), (
            f"{name} {obj.get('event_id')}: emergency_contacts sent although the policy does not allow them"
        )
    strings = dict(_strings(obj))
    for national_id in national_ids:
        if national_id:
            leaked = national_id.encode() in raw or national_id in text
            assert not leaked, (
                f"{name} {obj.get('event_id')}: a full national id ({_hint(national_id)}) leaked"
            )
    for customer_id in customer_ids:
        if not customer_id:
            continue
        exact = [w for w, v in strings.items() if v == customer_id]
        assert not exact, f"{name} {obj.get('event_id')}: customer id in field {exact[0]}"
        if len(customer_id) >= 6:
            leaked = customer_id.encode() in raw or customer_id in text
            assert not leaked, f"{name} {obj.get('event_id')}: customer id {_hint(customer_id)} leaked"
    if not allowed:
        for contact_name, phone in emergency_contacts:
            for secret in (contact_name, phone):
                if secret and (secret.encode() in raw or secret in text):
                    raise AssertionError(
                        f"{name} {obj.get('event_id')}: emergency contact detail {_hint(secret)} leaked"
                    )
