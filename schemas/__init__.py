"""The ``arrears.v1`` Avro contract (the ``.avsc`` files beside this module) and its codec.

This package is the only code that touches message bytes.
"""

from .catalog import Catalog, RecordSchema, load_catalog
from .codec import Codec, Decoded, default_catalog, event_type_headers, get_codec
from .errors import CodecError, MalformedMessageError, SchemaViolationError, UnknownSchemaError
from .jsonform import from_json, to_json

__all__ = [
    "Catalog", "RecordSchema", "load_catalog", "Codec", "Decoded", "default_catalog",
    "event_type_headers", "get_codec", "CodecError", "MalformedMessageError",
    "SchemaViolationError", "UnknownSchemaError", "from_json", "to_json",
]
