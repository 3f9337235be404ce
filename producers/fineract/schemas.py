"""Fineract's external-event Avro schemas, prepared the way Fineract's own build prepares them.

The ``.avsc`` files of ``fineract-avro-schemas`` do not parse as they are:

* Fineract's build (``preprocessAvroSchemas`` in ``fineract-avro-schemas/build.gradle``) textually
  replaces every ``"bigdecimal"`` with the type in ``avro-templates/bigdecimal.avsc``
  (bytes, logicalType decimal, precision 20, scale 8);
* files refer to each other's named types by full name
  (``org.apache.fineract.avro.generic.v1.CurrencyDataV1``).

Each schema is expanded here with its named types inlined at first use, as Avro Java resolves
them, so its Parsing Canonical Form, and the CRC-64-AVRO fingerprint that heads every
single-object-encoded value Fineract sends, is Fineract's own. The lender points the bridge at
the copy matching their Fineract version; several directories may be loaded side by side
(during an upgrade both versions' fingerprints are then known).
"""

from __future__ import annotations

import io
import json
import logging
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, fingerprint, to_parsing_canonical_form

from schemas.catalog import expand

from .errors import FineractDecodeError, FineractSchemaError, FineractUnknownSchemaError

log = logging.getLogger(__name__)

SINGLE_OBJECT_MARKER = b"\xc3\x01"
HEADER_LENGTH = 10  # marker + 8-byte fingerprint
TEMPLATE_DIR = "avro-templates"
BIGDECIMAL_TEMPLATE = Path(TEMPLATE_DIR) / "bigdecimal.avsc"
#: the template Fineract ships, for a directory that lacks its copy of avro-templates/bigdecimal.avsc
DEFAULT_BIGDECIMAL = '{"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 8}'

ENVELOPE = "org.apache.fineract.avro.MessageV1"
BULK_PAYLOAD = "org.apache.fineract.avro.BulkMessagePayloadV1"


@dataclass(frozen=True)
class FineractSchema:
    """One Fineract record schema: parsed, canonical form and wire fingerprint."""

    full_name: str
    parsed: Any  # fastavro parsed schema
    canonical: str
    fingerprint: bytes  # the 8 bytes after C3 01 on the wire (little-endian CRC-64-AVRO)

    @property
    def name(self) -> str:
        return self.full_name.rsplit(".", 1)[-1]


def _read_definitions(directory: Path) -> dict[str, dict[str, Any]]:
    """Every named schema under *directory*, preprocessed like Fineract's build, by full name."""
    template_path = directory / BIGDECIMAL_TEMPLATE
    template = template_path.read_text(encoding="utf-8") if template_path.is_file() else DEFAULT_BIGDECIMAL
    definitions: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.rglob("*.avsc")):
        relative = path.relative_to(directory)
        if relative.parts[0] == TEMPLATE_DIR:
            continue  # type snippets, not schemas
        # Textual, exactly as the Gradle task does it, so the result is byte-for-byte Fineract's.
        text = path.read_text(encoding="utf-8").replace('"bigdecimal"', template)
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FineractSchemaError(f"{path}: not valid JSON after preprocessing: {exc}") from None
        if not isinstance(schema, dict) or "name" not in schema:
            log.debug("skipping %s: not a named schema", relative)
            continue
        name = str(schema["name"])
        full_name = name if "." in name else f"{schema.get('namespace', '')}.{name}".lstrip(".")
        if full_name in definitions:
            raise FineractSchemaError(f"{path}: {full_name} is defined twice in {directory}")
        definitions[full_name] = schema
    return definitions


def _build(full_name: str, definitions: dict[str, dict[str, Any]], directory: Path) -> FineractSchema:
    try:
        expanded = expand(full_name, definitions)
        parsed = fastavro.parse_schema(expanded, _write_hint=False)
    except KeyError as exc:
        raise FineractSchemaError(
            f"{directory}: {full_name} refers to {exc.args[0]}, which no file defines"
        ) from None
    except (SchemaParseException, TypeError, ValueError) as exc:
        raise FineractSchemaError(f"{directory}: {full_name} does not parse: {exc}") from None
    canonical = to_parsing_canonical_form(parsed)
    return FineractSchema(
        full_name=full_name,
        parsed=parsed,
        canonical=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


class FineractSchemas:
    """Fineract's record schemas by wire fingerprint and by full name; decodes single-object values."""

    def __init__(self, schemas: Iterable[FineractSchema]) -> None:
        self._by_fingerprint: dict[bytes, FineractSchema] = {}
        self._by_name: dict[str, FineractSchema] = {}
        for schema in schemas:
            self._by_fingerprint.setdefault(schema.fingerprint, schema)
            self._by_name.setdefault(schema.full_name, schema)  # the first directory's version encodes

    @classmethod
    def load(cls, *directories: Path) -> FineractSchemas:
        """Load every named schema under each directory (a startup error names the bad file)."""
        if not directories:
            raise FineractSchemaError("no Fineract schema directory given")
        loaded: list[FineractSchema] = []
        for directory in directories:
            directory = Path(directory)
            if not directory.is_dir():
                raise FineractSchemaError(f"{directory}: not a directory of Fineract .avsc files")
            definitions = _read_definitions(directory)
            if ENVELOPE not in definitions:
                raise FineractSchemaError(f"{directory}: no {ENVELOPE} (MessageV1.avsc) found; is it "
                                          "Fineract's fineract-avro-schemas/src/main/avro?")
            loaded += [
                _build(name, definitions, directory)
                for name, schema in definitions.items()
                if schema.get("type") == "record"
            ]
        schemas = cls(loaded)
        log.info("loaded %d Fineract schemas (%d fingerprints) from %s",
                 len(schemas._by_name), len(schemas._by_fingerprint), ", ".join(map(str, directories)))
        return schemas

    def __contains__(self, full_name: object) -> bool:
        return full_name in self._by_name

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)

    def schema(self, full_name: str) -> FineractSchema:
        try:
            return self._by_name[full_name]
        except KeyError:
            raise FineractUnknownSchemaError(f"no Fineract schema named {full_name}") from None

    def decode(
        self, data: bytes | None, *, expected: str | None = None
    ) -> tuple[FineractSchema, dict[str, Any]]:
        """Decode one single-object-encoded value; *expected* is the full name it must be (``dataschema``).

        The fingerprint decides the writer schema (it is what the bytes were written with);
        ``dataschema`` only has to agree with it.
        """
        if not data:
            raise FineractDecodeError("empty value")
        if data[:2] != SINGLE_OBJECT_MARKER:
            first = bytes(data[:2]).hex()
            raise FineractDecodeError(f"not Avro single-object encoding (first bytes {first})")
        if len(data) < HEADER_LENGTH:
            raise FineractDecodeError(f"truncated single-object header ({len(data)} bytes)")
        fp = bytes(data[2:HEADER_LENGTH])
        schema = self._by_fingerprint.get(fp)
        if schema is None:
            what = f" for {expected}" if expected else ""
            raise FineractUnknownSchemaError(
                f"unknown schema fingerprint {fp.hex()}{what} (not among the {len(self._by_fingerprint)} "
                "loaded Fineract schemas: is --schemas the version this Fineract runs?)"
            )
        if expected is not None and schema.full_name != expected:
            raise FineractUnknownSchemaError(
                f"fingerprint {fp.hex()} is {schema.full_name}, but dataschema says {expected}"
            )
        buf = io.BytesIO(data)
        buf.seek(HEADER_LENGTH)
        try:
            value = fastavro.schemaless_reader(buf, schema.parsed, None)
        except (EOFError, StopIteration, struct.error, IndexError) as exc:
            raise FineractDecodeError(f"{schema.name}: truncated body ({exc})") from exc
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, OverflowError, MemoryError) as exc:
            raise FineractDecodeError(f"{schema.name}: corrupt body ({type(exc).__name__})") from exc
        if buf.tell() != len(data):
            extra = len(data) - buf.tell()
            raise FineractDecodeError(f"{schema.name}: {extra} trailing bytes after the body")
        if not isinstance(value, dict):
            raise FineractDecodeError(f"{schema.name}: not a record")
        return schema, value

    def encode(self, full_name: str, value: Mapping[str, Any]) -> bytes:
        """Single-object-encode *value* as Fineract does (for tests and replay tooling)."""
        schema = self.schema(full_name)
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema.parsed, dict(value))
        return SINGLE_OBJECT_MARKER + schema.fingerprint + out.getvalue()
