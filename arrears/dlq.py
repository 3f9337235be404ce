"""Dead-letter conventions (SPEC §2): the original bytes to ``<topic>.dlq`` with reason headers."""

from __future__ import annotations

# Reason codes, shared by every consumer that dead-letters.
DECODE_ERROR = "DECODE_ERROR"  # not a framed Avro message, truncated, trailing bytes
UNKNOWN_SCHEMA = "UNKNOWN_SCHEMA"  # fingerprint / registry id / record name not in the contract
SCHEMA_VIOLATION = "SCHEMA_VIOLATION"  # a value breaks its schema (e.g. unknown enum symbol)
CONTRACT_VIOLATION = "CONTRACT_VIOLATION"  # valid Avro that breaks a rule (amount <= 0, wrong currency)
UNEXPECTED_TYPE = "UNEXPECTED_TYPE"  # a valid record on a topic that does not carry that type
NOT_ASSIGNED = "NOT_ASSIGNED"  # an agency result for a case it does not hold
DELIVERY_FAILED = "DELIVERY_FAILED"  # an adapter could not deliver a work order within its retry budget
MAPPING_ERROR = "MAPPING_ERROR"  # a bridged upstream event that cannot be mapped to the contract
INVALID_BARRIER = "INVALID_BARRIER"  # a tick whose barrier names an offset, topic or partition that does not exist
FUTURE_TIME = "FUTURE_TIME"  # a result timed later than its Kafka timestamp plus the allowed clock skew
NOT_HELD = "NOT_HELD"  # a ReleaseCase for a case that is not on hold (arrears.domain.state raises it)
NOT_PAUSED = "NOT_PAUSED"  # a ResumeDelinquency for a loan with no pause that reaches its on_date (§10)
NOT_PENDING = "NOT_PENDING"  # an Approve/RejectSettlement for a settlement that is not pending (§10)
MAKER_CHECKER = "MAKER_CHECKER"  # an Approve/RejectSettlement decided by the agency that proposed it (§10)

#: Every ``dlq.reason`` any Arrears consumer writes, with what it means for an operator.
#: docs/operating.md lists them; a test keeps the two, and the code's constants, in step.
REASONS: dict[str, str] = {
    DECODE_ERROR: "not a framed Avro message (empty, wrong marker, truncated, trailing bytes)",
    UNKNOWN_SCHEMA: "a schema fingerprint, registry id or record name the contract does not have",
    SCHEMA_VIOLATION: "a value that breaks its schema (e.g. an unknown enum symbol)",
    CONTRACT_VIOLATION: "valid Avro that breaks a rule: an amount <= 0, another currency than the loan's, a "
                        "message in the wrong partition, a work order the adapter refuses to send",
    UNEXPECTED_TYPE: "a valid record on a topic that does not carry its type",
    NOT_ASSIGNED: "an agency result for a case the agency did not hold at the result's time (not to be replayed)",
    NOT_HELD: "a ReleaseCase for a case that is not on hold when the processor applies it",
    NOT_PAUSED: "a ResumeDelinquency for a loan with no pause that reaches its on_date",
    NOT_PENDING: "an ApproveSettlement or RejectSettlement for a settlement that is not (or no longer) pending",
    MAKER_CHECKER: "an ApproveSettlement or RejectSettlement decided by the agency that proposed the settlement",
    DELIVERY_FAILED: "an adapter could not deliver a work order within its retry budget",
    MAPPING_ERROR: "a Fineract event the bridge cannot map to contract records",
    INVALID_BARRIER: "a tick whose barrier names a topic, partition or offset that does not exist (the tick is "
                     "not applied; publish it again with a valid barrier)",
    FUTURE_TIME: "an agency result timed later than its Kafka timestamp plus ARREARS_CLOCK_SKEW_MS (fix the "
                 "agency's clock or the record, then replay it)",
}


def dlq_headers(
    reason: str,
    error: str,
    topic: str,
    partition: int,
    offset: int,
    original: list[tuple[str, bytes]] | None = None,
) -> list[tuple[str, bytes]]:
    """The original message's headers plus the dead-letter headers of SPEC §2."""
    kept = [(k, v) for k, v in (original or []) if not k.startswith("dlq.")]
    return kept + [
        ("dlq.reason", reason.encode()),
        ("dlq.error", error[:2000].encode()),
        ("dlq.source.topic", topic.encode()),
        ("dlq.source.partition", str(partition).encode()),
        ("dlq.source.offset", str(offset).encode()),
    ]
