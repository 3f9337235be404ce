"""Load the ``arrears.v1`` contract files, inline named types and fingerprint each record.

Every ``.avsc`` file holds one named type; records refer to nested types by full name
(``arrears.v1.Customer``). A record's self-contained form inlines each named type at its
first use, exactly as Avro's own parsers expand it, so its Parsing Canonical Form (and so
its CRC-64-AVRO fingerprint) is the one the specification defines.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

NAMESPACE = "arrears.v1"
SCHEMA_DIR = Path(__file__).resolve().parent
RELEASED_DIR = SCHEMA_DIR / "released"
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


@dataclass(frozen=True)
class RecordSchema:
    """One record type: its self-contained JSON, parsed form and fingerprint."""

    name: str  # short record name, e.g. "RepaymentReceived"
    full_name: str
    expanded: dict[str, Any]  # self-contained JSON schema
    parsed: Any  # fastavro parsed schema
    canonical: str
    fingerprint: bytes  # 8 bytes, little-endian CRC-64-AVRO

    @property
    def is_event(self) -> bool:
        """Top-level records (with event_id) are what topics carry; the rest are nested types."""
        return any(f["name"] == "event_id" for f in self.expanded.get("fields", ()))

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f["name"] for f in self.expanded.get("fields", ()))


def _full_name(schema: dict[str, Any]) -> str:
    name = schema["name"]
    return name if "." in name else f"{schema.get('namespace', NAMESPACE)}.{name}"


def read_definitions(directory: Path) -> dict[str, dict[str, Any]]:
    """Read every ``.avsc`` in *directory* into {full name: JSON definition}."""
    definitions: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.avsc")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        definitions[_full_name(schema)] = schema
    return definitions


def expand(full_name: str, definitions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return the definition of *full_name* with named references inlined at first use."""
    seen: set[str] = set()

    def resolve(node: Any, namespace: str) -> Any:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return node
            ref = node if "." in node else f"{namespace}.{node}"
            if ref in seen:
                return ref
            if ref not in definitions:
                raise KeyError(f"unknown named type {ref!r}")
            return resolve(copy.deepcopy(definitions[ref]), namespace)
        if isinstance(node, list):
            return [resolve(branch, namespace) for branch in node]
        if isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "enum", "fixed"):
                name = _full_name({**node, "namespace": node.get("namespace", namespace)})
                seen.add(name)
                inner_ns = name.rsplit(".", 1)[0]
                if kind == "record":
                    node = {**node, "fields": [
                        {**fld, "type": resolve(fld["type"], inner_ns)} for fld in node["fields"]
                    ]}
                return node
            if kind == "array":
                return {**node, "items": resolve(node["items"], namespace)}
            if kind == "map":
                return {**node, "values": resolve(node["values"], namespace)}
            if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _PRIMITIVES):
                return {**node, "type": resolve(kind, namespace)}
            return node
        raise TypeError(f"not an Avro schema node: {node!r}")

    return resolve(full_name, full_name.rsplit(".", 1)[0])


def build_record(full_name: str, definitions: dict[str, dict[str, Any]]) -> RecordSchema:
    expanded = expand(full_name, definitions)
    canonical = to_parsing_canonical_form(fastavro.parse_schema(expanded, _write_hint=False))
    # Parsed with fastavro's marker: its reader and writer then take the schema as it is
    # instead of parsing it again on every record (most of a small record's cost).
    parsed = fastavro.parse_schema(expanded)
    return RecordSchema(
        name=full_name.rsplit(".", 1)[1],
        full_name=full_name,
        expanded=expanded,
        parsed=parsed,
        canonical=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


@dataclass(frozen=True)
class Catalog:
    """Every record of the contract, by short name and by fingerprint."""

    records: dict[str, RecordSchema]
    #: fingerprints of released (older) writer schemas, decoded into the current reader schema
    released: dict[bytes, RecordSchema]

    def record(self, name: str) -> RecordSchema:
        return self.records[name]

    @property
    def event_names(self) -> list[str]:
        return sorted(n for n, r in self.records.items() if r.is_event)


def load_catalog(directory: Path = SCHEMA_DIR, released_dir: Path | None = RELEASED_DIR) -> Catalog:
    """Parse the contract once; every component shares the result."""
    definitions = read_definitions(directory)
    records = {
        name.rsplit(".", 1)[1]: build_record(name, definitions)
        for name, schema in definitions.items()
        if schema.get("type") == "record"
    }
    released: dict[bytes, RecordSchema] = {}
    if released_dir is not None and released_dir.is_dir():
        old_definitions = read_definitions(released_dir)
        for name, schema in old_definitions.items():
            if schema.get("type") != "record":
                continue
            old = build_record(name, old_definitions)
            current = records.get(old.name)
            if current is not None and old.fingerprint != current.fingerprint:
                released[old.fingerprint] = old
    return Catalog(records=records, released=released)
