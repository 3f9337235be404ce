"""The CSV shapes of the files transport (SPEC §6): pure mapping between rows and the JSON form.

Work-order rows flatten the JSON form: nested records become ``<field>_<subfield>`` columns
(``debtor_name``, ``contact_policy_quiet_hours_start``), arrays one cell holding a JSON
array (``emergency_contacts``), booleans ``true``/``false``, nulls an empty cell. Result rows
are read back the same way, guided by the record's schema; an empty cell means "absent".
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from arrears.topics import RESULT_TYPES, loan_id_of_case
from schemas import Catalog, CodecError, SchemaViolationError, from_json
from schemas.jsonform import format_instant

WORK_ORDER_TYPES = ("WorkOrderIssued", "WorkOrderUpdated", "WorkOrderCancelled")

#: Columns of the outbox files, in order; a type leaves the columns it does not have empty.
WORK_ORDER_COLUMNS: tuple[str, ...] = (
    "type",
    "event_id",
    "occurred_at",
    "work_order_id",
    "case_id",
    "loan_id",
    "agency_id",
    "debtor_name",
    "debtor_phone",
    "debtor_national_id_masked",
    "debtor_province",
    "debtor_city",
    "debtor_timezone",
    "overdue_amount",
    "currency",
    "dpd",
    "bucket",
    "oldest_due_date",
    "expires_on",
    "contact_policy_profile",
    "contact_policy_quiet_hours_start",
    "contact_policy_quiet_hours_end",
    "contact_policy_max_connected_calls_per_day",
    "contact_policy_max_attempts_per_day",
    "contact_policy_max_attempts_per_week",
    "contact_policy_emergency_contacts_allowed",
    "emergency_contacts",
    "reason",
    # SPEC §10: the settlement limits of the case (all empty: the agency may not propose settlements)
    "settlement_policy_max_discount",
    "settlement_policy_approval_above",
    "settlement_policy_outstanding_amount",
    "settlement_policy_min_amount",
)

#: Columns an inbox result file may have (``type`` is required; the rest as the type needs).
RESULT_COLUMNS: tuple[str, ...] = (
    "type",
    "event_id",
    "occurred_at",
    "agency_id",
    "case_id",
    "work_order_id",
    "attempted_at",
    "channel",
    "party",
    "outcome",
    "promised_amount",
    "promised_date",
    "details",
    "reason",
    # SPEC §10: SettlementProposed
    "amount",
    "pay_by",
)

#: Namespace of event ids derived for result rows that do not carry one.
RESULT_ROW_NAMESPACE = uuid.UUID("6f1d2c5e-8a43-5b7e-9c1a-3e0d4b2f7a61")

_INTEGER = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


# --------------------------------------------------------------------------- writing
def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """One JSON-form object as CSV cells (nested records prefixed, arrays as JSON, null empty)."""
    cells: dict[str, str] = {}
    for key, value in obj.items():
        column = f"{prefix}{key}"
        if isinstance(value, Mapping):
            cells.update(flatten(value, f"{column}_"))
        elif isinstance(value, list):
            cells[column] = json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value else ""
        elif isinstance(value, bool):
            cells[column] = "true" if value else "false"
        elif value is None:
            cells[column] = ""
        else:
            cells[column] = str(value)
    return cells


def render_csv(columns: Sequence[str], rows: Iterable[Mapping[str, str]], header: bool = True) -> str:
    """CSV text (RFC 4180: CRLF line ends, quotes where needed) of *rows* in *columns* order."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def work_order_row(json_form: Mapping[str, Any]) -> dict[str, str]:
    """The outbox row of one work-order event in JSON form; unknown columns are reported."""
    cells = flatten(json_form)
    for key in [k for k, v in cells.items() if v == "" and k not in WORK_ORDER_COLUMNS]:
        if any(c.startswith(f"{key}_") for c in WORK_ORDER_COLUMNS):
            del cells[key]  # a null nested record: its columns stay empty
    extra = sorted(set(cells) - set(WORK_ORDER_COLUMNS))
    if extra:
        # A newer schema grew a field this writer has no column for: fail loudly, not silently.
        raise ValueError(f"{extra[0]}: no work-order CSV column for this field")
    return cells


# --------------------------------------------------------------------------- reading
def _branch(schema: Any) -> tuple[Any, bool]:
    if isinstance(schema, list):
        rest = [b for b in schema if b != "null"]
        return rest[0], "null" in schema
    return schema, False


def _kind(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    inner = schema["type"]
    if isinstance(inner, str):
        return str(schema.get("logicalType") or inner)
    return _kind(inner)


def schema_columns(catalog: Catalog, name: str) -> list[str]:
    """The flattened CSV columns of record *name* (with ``type`` first)."""

    def walk(fields: list[dict[str, Any]], prefix: str) -> list[str]:
        out: list[str] = []
        for field in fields:
            schema, _ = _branch(field["type"])
            if _kind(schema) == "record":
                out += walk(schema["fields"], f"{prefix}{field['name']}_")
            else:
                out.append(f"{prefix}{field['name']}")
        return out

    return ["type", *walk(catalog.records[name].expanded["fields"], "")]


def unflatten(catalog: Catalog, name: str, cells: Mapping[str, str]) -> dict[str, Any]:
    """CSV cells back into the JSON form of record *name*, typed by its schema.

    Raises :class:`SchemaViolationError` naming the column for a cell that is not its type.
    A cell of a column the type does not have must be empty.
    """
    if name not in catalog.records:
        raise SchemaViolationError(f"type: {name!r} is not a contract record name")
    used: set[str] = {"type"}

    def walk(fields: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in fields:
            column = f"{prefix}{field['name']}"
            schema, nullable = _branch(field["type"])
            kind = _kind(schema)
            if kind == "record":
                nested = walk(schema["fields"], f"{column}_")
                empty = not any((cells.get(c) or "").strip() for c in cells if c.startswith(f"{column}_"))
                out[field["name"]] = None if nullable and empty else nested
                continue
            used.add(column)
            cell = (cells.get(column) or "").strip()
            if not cell:
                if kind == "array":
                    out[field["name"]] = []
                elif nullable:
                    out[field["name"]] = None
                continue  # absent: the schema default applies, or from_json names it missing
            if kind in ("int", "long"):
                if not _INTEGER.match(cell):
                    raise SchemaViolationError(
                        f"{column}: expected an integer (minor units for money), got {cell!r}"
                    )
                out[field["name"]] = int(cell)
            elif kind in ("double", "float"):
                if not _NUMBER.match(cell):
                    raise SchemaViolationError(f"{column}: expected a decimal number like 0.15, got {cell!r}")
                out[field["name"]] = float(cell)
            elif kind == "boolean":
                if cell.lower() not in ("true", "false"):
                    raise SchemaViolationError(f"{column}: expected true or false, got {cell!r}")
                out[field["name"]] = cell.lower() == "true"
            elif kind == "array":
                try:
                    items = json.loads(cell)
                except json.JSONDecodeError:
                    raise SchemaViolationError(f"{column}: expected a JSON array, got {cell!r}") from None
                out[field["name"]] = items
            else:  # strings, enums, dates and instants keep their JSON-form text
                out[field["name"]] = cell
        return out

    obj = {"type": name, **walk(catalog.records[name].expanded["fields"], "")}
    stray = sorted(c for c, v in cells.items() if c not in used and (v or "").strip())
    if stray:
        raise SchemaViolationError(f"{stray[0]}: not a field of {name} (leave the cell empty)")
    return obj


class ResultFileError(ValueError):
    """The whole result file is unusable (encoding, header); no row of it is published."""


@dataclass(frozen=True)
class ResultRow:
    """One data row of an inbox file: the record it became, or why it was rejected."""

    row: int  # 1-based data row number (the header is not counted)
    cells: dict[str, str]
    name: str | None = None
    value: dict[str, Any] | None = None  # Avro-ready, validated
    reason: str | None = None


def derived_event_id(agency_id: str, data: bytes, row: int) -> str:
    """The event id of a row without one: stable for the same file content and row number.

    So a file processed again after a crash republishes the same ids, which the processor
    ignores, while a different file that happens to reuse a name gets new ids.
    """
    digest = hashlib.sha256(data).hexdigest()
    return str(uuid.uuid5(RESULT_ROW_NAMESPACE, f"{agency_id}/{digest}/{row}"))


def read_header(data: bytes) -> tuple[str, list[str]]:
    """Decode a result file and check its header; return (text, columns)."""
    try:
        text = data.decode("utf-8-sig")  # tolerate the BOM spreadsheet programs write
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"file: not UTF-8 (byte {exc.start})") from None
    header = next(csv.reader(io.StringIO(text)), None)
    if not header or not any(h.strip() for h in header):
        raise ResultFileError("header: the file has no header row")
    columns = [h.strip() for h in header]
    if "type" not in columns:
        raise ResultFileError("header: no 'type' column")
    for column in columns:
        if column not in RESULT_COLUMNS:
            raise ResultFileError(f"header: unknown column {column!r} (known: {', '.join(RESULT_COLUMNS)})")
        if columns.count(column) > 1:
            raise ResultFileError(f"header: column {column!r} appears twice")
    return text, columns


def parse_result_file(
    catalog: Catalog, data: bytes, *, agency_id: str, default_occurred_at: dt.datetime
) -> tuple[list[str], list[ResultRow]]:
    """Validate an inbox result file row by row; return (header columns, rows).

    Defaults: an empty ``agency_id`` is the adapter's, an empty ``event_id`` is
    :func:`derived_event_id`, an empty ``occurred_at`` is the row's ``attempted_at`` when it has
    one, else *default_occurred_at* (the file's modification time).
    """
    text, columns = read_header(data)
    reader = csv.reader(io.StringIO(text))
    next(reader)
    rows: list[ResultRow] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate((r for r in reader if any(c.strip() for c in r)), 1):
        cells = dict(zip(columns, (c.strip() for c in raw), strict=False))
        if len(raw) != len(columns):
            rows.append(
                ResultRow(number, cells, reason=f"row: {len(raw)} cells, the header has {len(columns)}")
            )
            continue
        try:
            name, value = _result_from_cells(catalog, cells, agency_id, data, number, default_occurred_at)
        except (CodecError, ValueError) as exc:
            rows.append(ResultRow(number, cells, reason=str(exc)))
            continue
        first = seen.setdefault(value["event_id"], number)
        if first != number:
            rows.append(ResultRow(number, cells, reason=f"event_id: duplicate of row {first}"))
            continue
        rows.append(ResultRow(number, cells, name, value))
    return columns, rows


def _result_from_cells(
    catalog: Catalog, cells: dict[str, str], agency_id: str, data: bytes, row: int, default_at: dt.datetime
) -> tuple[str, dict[str, Any]]:
    name = cells.get("type", "")
    if name not in RESULT_TYPES:
        raise SchemaViolationError(
            f"type: {name!r} is not a result type (one of {', '.join(sorted(RESULT_TYPES))})"
        )
    filled = dict(cells)
    if not filled.get("agency_id"):
        filled["agency_id"] = agency_id
    if not filled.get("event_id"):
        filled["event_id"] = derived_event_id(agency_id, data, row)
    if not filled.get("occurred_at"):
        filled["occurred_at"] = filled.get("attempted_at") or format_instant(default_at)
    record_name, value = from_json(catalog, unflatten(catalog, name, filled), allowed=set(RESULT_TYPES))
    check_result(value, agency_id)
    return record_name, value


def check_result(value: Mapping[str, Any], agency_id: str) -> None:
    """The checks beyond the schema that every result must pass at the adapter."""
    if value["agency_id"] != agency_id:
        raise SchemaViolationError(
            f"agency_id: {value['agency_id']!r} is not this adapter's agency ({agency_id})"
        )
    try:
        loan_id_of_case(value["case_id"])
    except ValueError as exc:
        raise SchemaViolationError(f"case_id: {exc}") from None
    if "amount" in value and value["amount"] <= 0:  # SettlementProposed (SPEC §10)
        raise SchemaViolationError(f"amount: a settlement amount must be > 0 (minor units), got {value['amount']}")


#: Columns the rejected file adds around the original ones (``reason`` is taken: CaseReturned has one).
ROW_COLUMN, REJECTION_COLUMN = "row", "rejection_reason"


def rejected_rows_csv(columns: Sequence[str], rows: Iterable[ResultRow]) -> str:
    """The ``rejected/<name>`` file: each bad row's number, its original cells and why it was rejected."""
    header = [ROW_COLUMN, *columns, REJECTION_COLUMN]
    return render_csv(
        header, ({**r.cells, ROW_COLUMN: str(r.row), REJECTION_COLUMN: r.reason or ""} for r in rows)
    )
