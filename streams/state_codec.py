"""Compact bytes for the processor's table values (loan states and partition states).

A value is a one-line header (the loan's wake date, so the tick index can be rebuilt from a
table scan without decoding every loan) and a JSON body in which each dataclass is
``{"<code>": [field values...]}``, dates are ``{"@": ordinal}`` and frozensets ``{"%": [...]}``.
Fields are positional: new fields go at the end with a default, so older values still decode.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from typing import Any

from arrears.domain import cases, ledger
from arrears.domain import events as ev
from arrears.domain.compliance import ContactRecord
from arrears.domain.state import AgencyTally, LoanState

from .sequencer import Held, SequencerState, TickMarker

# Codes are part of the stored format: never reuse or renumber one.
_CODES: dict[str, type] = {
    "L": LoanState,
    "I": ledger.Installment,
    "R": ledger.Repayment,
    "C": cases.Case,
    "A": cases.Assignment,
    "P": cases.PromiseRecord,
    "H": cases.CaseSummary,
    "O": ev.LoanOpened,
    "U": ev.Customer,
    "E": ev.EmergencyContact,
    "X": ev.LoanClosed,
    "S": ev.InstallmentScheduled,
    "Y": ev.RepaymentReceived,
    "V": ev.RepaymentReversed,
    "Q": SequencerState,
    "T": TickMarker,
    "M": Held,
    "G": AgencyTally,
    "K": ContactRecord,
}
_BY_CLASS = {cls: code for code, cls in _CODES.items()}
_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _CODES.values()}


def register(code: str, cls: type) -> None:
    """Add a dataclass to the format (used by later modules for their own state types)."""
    if code in _CODES and _CODES[code] is not cls:
        raise ValueError(f"state code {code!r} is taken by {_CODES[code].__name__}")
    _CODES[code] = cls
    _BY_CLASS[cls] = code
    _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, bool, float)):
        return value
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode()}
    code = _BY_CLASS.get(type(value))
    if code is not None:
        return {code: [_encode(getattr(value, name)) for name in _FIELDS[type(value)]]}
    if isinstance(value, dt.date):
        return {"@": value.toordinal()}
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, frozenset):
        return {"%": sorted(_encode(v) for v in value)}
    if isinstance(value, dict):
        return {"#": [[_encode(k), _encode(v)] for k, v in value.items()]}
    raise TypeError(f"cannot store {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        ((code, body),) = value.items()
        if code == "@":
            return dt.date.fromordinal(body)
        if code == "%":
            return frozenset(_decode(v) for v in body)
        if code == "#":
            return {_decode(k): _decode(v) for k, v in body}
        if code == "b":
            return base64.b64decode(body)
        cls = _CODES[code]
        names = _FIELDS[cls]
        return cls(**{name: _decode(v) for name, v in zip(names, body, strict=False)})
    return value


def encode_state(state: Any, wake: dt.date | None = None, portfolio: bool = False) -> bytes:
    """The value bytes; the header says when a tick next needs the loan and whether it counts
    in the partition's portfolio (so a restart decodes only those loans)."""
    header = f"{wake.toordinal() if wake is not None else ''}:{int(portfolio)}"
    return f"{header}\n".encode() + json.dumps(_encode(state), separators=(",", ":"), ensure_ascii=False).encode()


def decode_state(data: bytes) -> Any:
    _, _, body = data.partition(b"\n")
    return _decode(json.loads(body))


def decode_header(data: bytes) -> tuple[dt.date | None, bool]:
    """(wake date, counts in the portfolio) without decoding the body."""
    header, _, _ = data.partition(b"\n")
    wake, _, portfolio = header.partition(b":")
    return (dt.date.fromordinal(int(wake)) if wake else None), portfolio == b"1"
