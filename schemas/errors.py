"""Typed codec errors; each carries the dead-letter reason code it maps to."""

from __future__ import annotations

from arrears.errors import ArrearsError


class CodecError(ArrearsError):
    """Bytes or a value that the contract cannot carry."""

    reason = "DECODE_ERROR"


class MalformedMessageError(CodecError):
    """Not a framed Avro message: empty, wrong marker, truncated or with trailing bytes."""

    reason = "DECODE_ERROR"


class UnknownSchemaError(CodecError):
    """The fingerprint, registry id or record name is not one of the contract's."""

    reason = "UNKNOWN_SCHEMA"


class SchemaViolationError(CodecError):
    """A value breaks its schema (wrong type, missing field, unknown enum symbol)."""

    reason = "SCHEMA_VIOLATION"
