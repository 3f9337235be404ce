"""The JSON form of a record (SPEC §1): agency webhooks, result posts, JSON lines, the query API.

An object with ``"type"`` = the record name and the record's fields by the same names; dates
``"YYYY-MM-DD"``, instants ISO-8601 UTC with ``Z``, money as integers in minor units, enums as
their symbols, null for absent nullable fields. Reading is strict about types and unknown
fields (the reason names the field) and lenient in one place only: an instant may also be
given as epoch milliseconds.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from .catalog import Catalog
from .errors import SchemaViolationError, UnknownSchemaError

UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def _kind(schema: Any) -> tuple[str, str | None]:
    if isinstance(schema, str):
        return schema, None
    if isinstance(schema, list):
        return "union", None
    return schema["type"] if isinstance(schema["type"], str) else "nested", schema.get("logicalType")


# --------------------------------------------------------------------------- to JSON
def format_instant(value: dt.datetime | int) -> str:
    if isinstance(value, int):
        value = _EPOCH + dt.timedelta(milliseconds=value)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _to_json(schema: Any, value: Any) -> Any:
    kind, logical = _kind(schema)
    if value is None:
        return None
    if kind == "union":
        branches = [b for b in schema if b != "null"]
        return _to_json(branches[0], value) if len(branches) == 1 else value
    if kind == "nested":
        return _to_json(schema["type"], value)
    if logical == "date":
        return value.isoformat() if isinstance(value, dt.date) else _date_from_days(value).isoformat()
    if logical == "timestamp-millis":
        return format_instant(value)
    if kind == "record":
        return {f["name"]: _to_json(f["type"], value.get(f["name"])) for f in schema["fields"]}
    if kind == "array":
        return [_to_json(schema["items"], item) for item in value]
    if kind == "map":
        return {k: _to_json(schema["values"], v) for k, v in value.items()}
    return value


def to_json(catalog: Catalog, name: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """Return the JSON form of record *name* (``{"type": name, ...fields}``)."""
    rec = catalog.records.get(name)
    if rec is None:
        raise UnknownSchemaError(f"no record named {name!r} in the contract")
    return {"type": name, **_to_json(rec.expanded, value)}


# --------------------------------------------------------------------------- from JSON
def _date_from_days(days: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=days)


def parse_instant(value: Any, path: str) -> dt.datetime:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _EPOCH + dt.timedelta(milliseconds=value)
        except OverflowError:
            raise SchemaViolationError(f"{path}: instant {value} ms is outside years 1-9999") from None
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                raise SchemaViolationError(f"{path}: instant {value!r} needs a UTC offset or Z")
            try:
                return parsed.astimezone(UTC)
            except OverflowError:
                raise SchemaViolationError(f"{path}: instant {value!r} is outside years 1-9999 in UTC") from None
    raise SchemaViolationError(f"{path}: expected an ISO-8601 instant like 2026-01-31T08:00:00Z, got {value!r}")


def parse_date(value: Any, path: str) -> dt.date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise SchemaViolationError(f"{path}: expected a date YYYY-MM-DD, got {value!r}")


def _from_json(schema: Any, value: Any, path: str) -> Any:
    kind, logical = _kind(schema)
    if kind == "union":
        if value is None and "null" in schema:
            return None
        branches = [b for b in schema if b != "null"]
        return _from_json(branches[0], value, path)
    if kind == "nested":
        return _from_json(schema["type"], value, path)
    if value is None:
        raise SchemaViolationError(f"{path}: must not be null")
    if logical == "date":
        return parse_date(value, path)
    if logical == "timestamp-millis":
        return parse_instant(value, path)
    if kind in ("int", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaViolationError(f"{path}: expected an integer, got {value!r}")
        limit = 2**31 if kind == "int" else 2**63
        if not -limit <= value < limit:
            raise SchemaViolationError(f"{path}: {value} is out of range for {kind}")
        return value
    if kind in ("double", "float"):
        # Shares and rates (a discount, a commission rate): never money, which is a long.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SchemaViolationError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if kind == "string":
        if not isinstance(value, str):
            raise SchemaViolationError(f"{path}: expected a string, got {value!r}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise SchemaViolationError(f"{path}: expected true or false, got {value!r}")
        return value
    if kind == "enum":
        if value not in schema["symbols"]:
            raise SchemaViolationError(f"{path}: {value!r} is not one of {', '.join(schema['symbols'])}")
        return value
    if kind == "array":
        if not isinstance(value, list):
            raise SchemaViolationError(f"{path}: expected an array, got {value!r}")
        return [_from_json(schema["items"], item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == "record":
        if not isinstance(value, Mapping):
            raise SchemaViolationError(f"{path}: expected an object, got {value!r}")
        return _record_from_json(schema, value, path)
    raise SchemaViolationError(f"{path}: unsupported schema type {kind}")


def _record_from_json(schema: Mapping[str, Any], value: Mapping[str, Any], path: str) -> dict[str, Any]:
    known = {f["name"] for f in schema["fields"]}
    unknown = sorted(set(value) - known - ({"type"} if not path else set()))
    if unknown:
        where = f"{path}." if path else ""
        raise SchemaViolationError(f"{where}{unknown[0]}: unknown field of {schema['name']}")
    out: dict[str, Any] = {}
    for field in schema["fields"]:
        name = field["name"]
        where = f"{path}.{name}" if path else name
        if name in value:
            out[name] = _from_json(field["type"], value[name], where)
        elif "default" in field:
            out[name] = _from_json(field["type"], field["default"], where)
        else:
            raise SchemaViolationError(f"{where}: missing field of {schema['name']}")
    return out


def from_json(catalog: Catalog, obj: Any, *, allowed: set[str] | None = None) -> tuple[str, dict[str, Any]]:
    """Read one record in JSON form; return (record name, Avro-ready value).

    *allowed* restricts the record types accepted (e.g. agency results only).
    """
    if not isinstance(obj, Mapping):
        raise SchemaViolationError(f"expected a JSON object, got {type(obj).__name__}")
    name = obj.get("type")
    if not isinstance(name, str):
        raise SchemaViolationError('type: missing: every record names its type, e.g. "type": "PromiseToPay"')
    rec = catalog.records.get(name)
    if rec is None or not rec.is_event or (allowed is not None and name not in allowed):
        accepted = ", ".join(sorted(allowed)) if allowed is not None else "a contract record name"
        raise SchemaViolationError(f"type: {name!r} is not accepted here (expected {accepted})")
    return name, _record_from_json(rec.expanded, obj, "")
