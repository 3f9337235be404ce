"""The schema evolution guard: every current type must stay fully compatible with its released form.

*Full* compatibility means both directions hold: consumers built on the current schema read
data written with the released one (backward), and consumers still on the released schema read
data written with the current one (forward). In practice a new field needs a default, no field
without a default may go, and no enum symbol may be added or removed.

Run ``python -m schemas.compatibility`` to check the working tree; the contract tests do the same.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from .catalog import RELEASED_DIR, SCHEMA_DIR, expand, read_definitions

_DIRECTIONS = (
    ("backward", "the current schema cannot read data written with the released one"),
    ("forward", "the released schema cannot read data written with the current one"),
)


def _parse(schema: Mapping[str, Any] | str) -> avro.schema.Schema:
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return avro.schema.parse(text)


def check_full_compatibility(
    current: Mapping[str, Any] | str, released: Mapping[str, Any] | str, name: str | None = None
) -> list[str]:
    """Return what stops *current* and *released* from reading each other's data (empty: compatible).

    Both schemas must be self-contained (named types inlined, see :func:`schemas.catalog.expand`).
    """
    current_schema, released_schema = _parse(current), _parse(released)
    label = name or getattr(current_schema, "name", None) or "schema"
    problems: list[str] = []
    for direction, (reader, writer) in zip(
        _DIRECTIONS, ((current_schema, released_schema), (released_schema, current_schema)), strict=True
    ):
        # The checker memoises per instance, so each check gets a fresh one.
        result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
        if result.compatibility is SchemaCompatibilityType.compatible:
            continue
        kinds = ", ".join(sorted({kind.value for kind in result.incompatibilities})) or "incompatible"
        where = ", ".join(sorted(result.locations))
        details = "; ".join(sorted(result.messages))
        problems.append(
            f"{label}: {direction[0]} incompatible ({direction[1]}): {kinds} at {where}: {details}"
        )
    return problems


def check_directory(
    current_dir: Path = SCHEMA_DIR, released_dir: Path = RELEASED_DIR
) -> dict[str, list[str]]:
    """{full type name: problems} for every released type that changed incompatibly or disappeared.

    Types that exist only in *current_dir* are new and so compatible by definition.
    """
    current_defs = read_definitions(current_dir)
    released_defs = read_definitions(released_dir)
    problems: dict[str, list[str]] = {}
    for name in sorted(released_defs):
        if name not in current_defs:
            problems[name] = [f"{name}: removed from the contract (released types must stay)"]
            continue
        found = check_full_compatibility(expand(name, current_defs), expand(name, released_defs), name)
        if found:
            problems[name] = found
    return problems


def main() -> int:
    problems = check_directory()
    for found in problems.values():
        for problem in found:
            print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} type(s) incompatible with schemas/released/", file=sys.stderr)
        return 1
    print("every schema is fully compatible with its released version")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
