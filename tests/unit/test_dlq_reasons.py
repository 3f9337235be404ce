"""Every dead-letter reason the code can write is in arrears.dlq.REASONS and documented for operators."""

from __future__ import annotations

import re
from pathlib import Path

import arrears.dlq as dlq
import arrears.domain.state as state
import producers.fineract.errors as fineract_errors
import schemas.errors as schema_errors

ROOT = Path(__file__).resolve().parents[2]


def reasons_in_code() -> set[str]:
    found = set()
    for module in (dlq, state):  # state: the reasons the processor's rules reject with
        found |= {v for k, v in vars(module).items() if k.isupper() and isinstance(v, str) and k == v}
    for module in (schema_errors, fineract_errors):
        found |= {cls.reason for cls in vars(module).values()
                  if isinstance(cls, type) and isinstance(getattr(cls, "reason", None), str)}
    return found


def test_every_reason_the_code_writes_is_registered() -> None:
    assert reasons_in_code() <= set(dlq.REASONS)


def test_no_other_upper_case_reason_is_passed_to_a_dead_letter_call() -> None:
    # A literal reason written straight into a dead-letter call would bypass the registry.
    call = re.compile(r"(?:_dead_letter|dlq_headers)\([^)]*?\"([A-Z][A-Z_]+)\"")
    for path in [*ROOT.glob("arrears/**/*.py"), *ROOT.glob("streams/*.py"), *ROOT.glob("consumers/*.py"),
                 *ROOT.glob("producers/**/*.py")]:
        for literal in call.findall(path.read_text(encoding="utf-8")):
            assert literal in dlq.REASONS, f"{path.relative_to(ROOT)}: {literal}"


def test_the_operators_doc_lists_every_reason() -> None:
    doc = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    (row,) = [line for line in doc.splitlines() if line.startswith("| `dlq.reason` |")]
    assert set(re.findall(r"`([A-Z][A-Z_]+)`", row)) == set(dlq.REASONS)
