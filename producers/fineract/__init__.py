"""The Apache Fineract bridge: Fineract's external events in, Arrears' contract records out.

``schemas`` loads the lender's Fineract ``.avsc`` files the way Fineract's build does,
``messages`` decodes envelopes and (bulk) payloads, ``mapping`` and ``planner`` are the pure
rules, and ``bridge`` is the consume -> map -> publish loop behind ``arrears fineract-bridge``.
"""

from .errors import (
    ContractError,
    FineractDecodeError,
    FineractError,
    FineractSchemaError,
    FineractUnknownSchemaError,
    MappingError,
)
from .mapping import ItemResult, MappedRecord, MappingOptions, map_item, map_message
from .messages import Envelope, EventItem, FineractMessage, decode_message
from .planner import Plan, Planner
from .schemas import FineractSchemas

__all__ = [
    "ContractError", "FineractDecodeError", "FineractError", "FineractSchemaError",
    "FineractUnknownSchemaError", "MappingError", "ItemResult", "MappedRecord", "MappingOptions",
    "map_item", "map_message", "Envelope", "EventItem", "FineractMessage", "decode_message", "Plan",
    "Planner", "FineractSchemas",
]
