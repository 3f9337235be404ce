"""The only code that turns contract records into bytes and back (SPEC §1).

Two framings, both always decodable:

* Avro single-object encoding: ``C3 01`` + 8-byte little-endian CRC-64-AVRO fingerprint of
  the writer schema's Parsing Canonical Form + the Avro binary body. The fingerprint names
  the record type, so one topic can carry several.
* Confluent wire format: ``00`` + 4-byte big-endian schema id + body, produced when a schema
  registry is configured (TopicRecordNameStrategy).
"""

from __future__ import annotations

import io
import json
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import fastavro
from fastavro.validation import ValidationError, validate

from .catalog import Catalog, RecordSchema, load_catalog
from .errors import MalformedMessageError, SchemaViolationError, UnknownSchemaError

SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = 0
EVENT_TYPE_HEADER = "event_type"


@dataclass(frozen=True)
class Decoded:
    """A decoded message: its record name, its value and the framing it came in."""

    name: str
    value: dict[str, Any]
    framing: str  # "single-object" or "confluent"


class Codec:
    """Encode and decode every record of the contract; schemas are parsed once."""

    def __init__(self, catalog: Catalog, registry: Any | None = None) -> None:
        self.catalog = catalog
        self._by_fingerprint: dict[bytes, tuple[RecordSchema, RecordSchema]] = {
            rec.fingerprint: (rec, rec) for rec in catalog.records.values()
        }
        for fp, old in catalog.released.items():
            # An older writer schema of the same record, read into the current one.
            self._by_fingerprint[fp] = (old, catalog.records[old.name])
        self._registry = registry
        self._serializers: dict[str, Any] = {}
        self._registry_writers: dict[int, tuple[Any, RecordSchema]] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- encoding
    def record(self, name: str) -> RecordSchema:
        try:
            return self.catalog.records[name]
        except KeyError:
            raise UnknownSchemaError(f"no record named {name!r} in the contract") from None

    def validate(self, name: str, value: Mapping[str, Any]) -> None:
        """Raise :class:`SchemaViolationError` naming the field when *value* breaks the schema."""
        rec = self.record(name)
        try:
            validate(dict(value), rec.parsed, raise_errors=True)
        except ValidationError as exc:
            raise SchemaViolationError(f"{name}: {_describe_validation(exc)}") from exc

    def encode_body(self, name: str, value: Mapping[str, Any]) -> bytes:
        rec = self.record(name)
        out = io.BytesIO()
        try:
            fastavro.schemaless_writer(out, rec.parsed, value)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError, struct.error) as exc:
            raise SchemaViolationError(f"{name}: {exc}") from exc
        return out.getvalue()

    def encode(
        self, name: str, value: Mapping[str, Any], *, topic: str | None = None, validate: bool = False
    ) -> bytes:
        """Frame *value* as record *name*: Confluent when a registry is set, else single-object."""
        if validate:
            self.validate(name, value)
        if self._registry is not None:
            if topic is None:
                raise ValueError("the Confluent framing needs the topic (TopicRecordNameStrategy)")
            return self._encode_confluent(name, value, topic)
        return SINGLE_OBJECT_MARKER + self.record(name).fingerprint + self.encode_body(name, value)

    def encode_single_object(self, name: str, value: Mapping[str, Any]) -> bytes:
        return SINGLE_OBJECT_MARKER + self.record(name).fingerprint + self.encode_body(name, value)

    def _encode_confluent(self, name: str, value: Mapping[str, Any], topic: str) -> bytes:
        from confluent_kafka.schema_registry import topic_record_subject_name_strategy
        from confluent_kafka.schema_registry.avro import AvroSerializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        with self._lock:
            serializer = self._serializers.get(name)
            if serializer is None:
                serializer = AvroSerializer(
                    self._registry,
                    json.dumps(self.record(name).expanded),
                    conf={
                        "auto.register.schemas": True,
                        "subject.name.strategy": topic_record_subject_name_strategy,
                    },
                )
                self._serializers[name] = serializer
        try:
            data: bytes = serializer(dict(value), SerializationContext(topic, MessageField.VALUE))
        except Exception as exc:  # the serializer wraps fastavro and registry errors alike
            raise SchemaViolationError(f"{name}: {exc}") from exc
        return data

    # ----------------------------------------------------------------- decoding
    def decode(self, data: bytes | None) -> Decoded:
        """Decode either framing; raise a typed :class:`CodecError` subclass on bad bytes."""
        if not data:
            raise MalformedMessageError("empty message")
        if data[:2] == SINGLE_OBJECT_MARKER:
            if len(data) < 10:
                raise MalformedMessageError(f"truncated single-object header ({len(data)} bytes)")
            fp = bytes(data[2:10])
            try:
                writer, reader = self._by_fingerprint[fp]
            except KeyError:
                raise UnknownSchemaError(f"unknown schema fingerprint {fp.hex()}") from None
            return Decoded(reader.name, self._read(data, 10, writer, reader), "single-object")
        if data[0] == CONFLUENT_MAGIC:
            if len(data) < 5:
                raise MalformedMessageError(f"truncated Confluent header ({len(data)} bytes)")
            schema_id = struct.unpack(">I", data[1:5])[0]
            writer_parsed, reader = self._registry_writer(schema_id)
            return Decoded(reader.name, self._read(data, 5, writer_parsed, reader), "confluent")
        raise MalformedMessageError(f"not an Avro message (first bytes {bytes(data[:2]).hex()})")

    def _read(self, data: bytes, start: int, writer: Any, reader: RecordSchema) -> dict[str, Any]:
        buf = io.BytesIO(data)
        buf.seek(start)
        writer_parsed = writer.parsed if isinstance(writer, RecordSchema) else writer
        reader_parsed = None if writer_parsed is reader.parsed else reader.parsed
        try:
            value = fastavro.schemaless_reader(buf, writer_parsed, reader_parsed)
        except (EOFError, StopIteration, struct.error) as exc:
            raise MalformedMessageError(f"{reader.name}: truncated body") from exc
        except (IndexError, UnicodeDecodeError, ValueError, TypeError, KeyError, OverflowError) as exc:
            # fastavro's compiled reader raises IndexError, not EOFError, when the bytes end
            # inside a varint; only a second, tracked read tells truncation from a bad value.
            if _runs_past_end(data, start, writer_parsed, reader_parsed):
                raise MalformedMessageError(f"{reader.name}: truncated body") from exc
            raise SchemaViolationError(f"{reader.name}: value breaks the schema ({exc!r})") from exc
        if buf.tell() != len(data):
            raise MalformedMessageError(f"{reader.name}: {len(data) - buf.tell()} trailing bytes")
        if not isinstance(value, dict):
            raise SchemaViolationError(f"{reader.name}: not a record")
        return value

    def _registry_writer(self, schema_id: int) -> tuple[Any, RecordSchema]:
        cached = self._registry_writers.get(schema_id)
        if cached is not None:
            return cached
        if self._registry is None:
            raise UnknownSchemaError(
                f"Confluent-framed message (schema id {schema_id}) but SCHEMA_REGISTRY_URL is not set"
            )
        try:
            schema = self._registry.get_schema(schema_id)
        except Exception as exc:
            raise UnknownSchemaError(f"schema id {schema_id} not found in the registry: {exc}") from exc
        definition = json.loads(schema.schema_str)
        short = str(definition.get("name", "")).rsplit(".", 1)[-1]
        reader = self.catalog.records.get(short)
        if reader is None or not reader.is_event:
            raise UnknownSchemaError(f"schema id {schema_id} is {short!r}, not a contract record")
        entry = (fastavro.parse_schema(definition), reader)  # marked parsed: not parsed again per record
        self._registry_writers[schema_id] = entry
        return entry


class _TrackingReader(io.BytesIO):
    """A buffer that remembers whether a read asked for more bytes than were left."""

    ran_out = False

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if size is not None and size > 0 and len(chunk) < size:
            self.ran_out = True
        return chunk


def _runs_past_end(data: bytes, start: int, writer: Any, reader: Any) -> bool:
    """Decode again (on the error path only) and say whether the reader ran out of bytes."""
    buf = _TrackingReader(data)
    buf.seek(start)
    try:
        fastavro.schemaless_reader(buf, writer, reader)
    except Exception:  # noqa: S110 - the first decode already failed; only ran_out matters here
        pass
    return buf.ran_out


def event_type_headers(name: str) -> list[tuple[str, bytes]]:
    """The ``event_type`` header every message carries (SPEC §1)."""
    return [(EVENT_TYPE_HEADER, name.encode())]


def _describe_validation(exc: ValidationError) -> str:
    errors = getattr(exc, "errors", None) or [str(exc)]
    return "; ".join(str(e) for e in errors)[:500]


def registry_client(url: str) -> Any:
    """A Confluent schema registry client for *url* (``mock://`` gives an in-memory one)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    conf = {"url": url}
    # The plain constructor refuses mock:// ("unsupported protocol"); new_client picks the mock.
    new_client = getattr(SchemaRegistryClient, "new_client", None)
    return new_client(conf) if new_client is not None else SchemaRegistryClient(conf)


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return load_catalog()


@lru_cache(maxsize=4)
def get_codec(schema_registry_url: str | None = None) -> Codec:
    """The process-wide codec (one per registry URL); schemas are parsed on first use."""
    registry = registry_client(schema_registry_url) if schema_registry_url else None
    return Codec(default_catalog(), registry)
