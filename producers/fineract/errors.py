"""Errors of the Fineract bridge; each carries the dead-letter reason its message goes out with."""

from __future__ import annotations

from arrears import dlq
from arrears.errors import ArrearsError


class FineractError(ArrearsError):
    """A Fineract message the bridge cannot turn into contract records."""

    reason = dlq.MAPPING_ERROR


class FineractSchemaError(FineractError):
    """The lender's Fineract schema directory cannot be loaded (a startup error, not a message's)."""


class FineractDecodeError(FineractError):
    """Not a single-object-encoded Avro value: empty, wrong marker, truncated or with trailing bytes."""

    reason = dlq.DECODE_ERROR


class FineractUnknownSchemaError(FineractError):
    """A fingerprint no loaded schema has, or one that contradicts the envelope's ``dataschema``."""

    reason = dlq.UNKNOWN_SCHEMA


class MappingError(FineractError):
    """A decoded event lacks what its contract record needs (no loan id, no currency, ...)."""

    reason = dlq.MAPPING_ERROR


class ContractError(MappingError):
    """A decoded event whose values the contract forbids (sub-minor-unit amounts, amount <= 0, ...)."""

    reason = dlq.CONTRACT_VIOLATION
