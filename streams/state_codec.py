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
import operator
from collections.abc import Callable
from typing import Any

from arrears.domain import cases, ledger, placement
from arrears.domain import events as ev
from arrears.domain.commission import AgencySpan, Recovery
from arrears.domain.compliance import ContactRecord
from arrears.domain.debtor import DebtorState
from arrears.domain.pauses import Pause
from arrears.domain.settlements import Settlement
from arrears.domain.state import AgencyTally, LoanState, LoanTreatments

from .sequencer import Held, PlacementMarker, SequencerState, TickMarker

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
    "W": cases.WorkOrder,
    "J": cases.Hold,
    "B": DebtorState,
    # messages between the processor's stages (internal topics)
    "N": ev.ContactAttempted,
    "Z": ev.ContactCounted,
    "F": ev.BudgetVerdict,
    "pR": placement.Report,
    "pQ": placement.Request,
    "pH": placement.Held,
    "pD": placement.Decision,
    "pM": PlacementMarker,
    # SPEC §10 treatments
    "tP": Pause,
    "tS": Settlement,
    "tA": AgencySpan,
    "tR": Recovery,
    "tL": LoanTreatments,
    "tC": cases.CaseTreatment,
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
    _ENCODERS[cls] = _dataclass_encoder(cls, code)


def _dataclass_encoder(cls: type, code: str) -> Callable[[Any], Any]:
    names = _FIELDS[cls]
    get = operator.attrgetter(*names) if len(names) > 1 else (lambda obj: (getattr(obj, names[0]),))

    def encode(value: Any) -> Any:
        return {code: [_encode(v) for v in get(value)]}

    return encode


def _same(value: Any) -> Any:
    return value


# Dispatch on the exact type: this runs for every field of every stored loan.
_ENCODERS: dict[type, Callable[[Any], Any]] = {
    str: _same, int: _same, bool: _same, float: _same, type(None): _same,
    dt.date: lambda d: {"@": d.toordinal()},
    tuple: lambda t: [_encode(v) for v in t],
    list: lambda t: [_encode(v) for v in t],
    frozenset: lambda s: {"%": sorted(_encode(v) for v in s)},
    dict: lambda d: {"#": [[_encode(k), _encode(v)] for k, v in d.items()]},
    bytes: lambda b: {"b": base64.b64encode(b).decode()},
}
for _cls, _code in _BY_CLASS.items():
    _ENCODERS[_cls] = _dataclass_encoder(_cls, _code)


def _encode(value: Any) -> Any:
    try:
        return _ENCODERS[type(value)](value)
    except KeyError:
        raise TypeError(f"cannot store {type(value).__name__}") from None


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
