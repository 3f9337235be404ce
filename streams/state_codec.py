"""Compact bytes for the processor's table values (loan states and partition states).

A value is a one-line header (the loan's wake date, so the tick index can be rebuilt from a
table scan without decoding every loan) and a JSON body in which each dataclass is
``{"<code>": [field values...]}``, dates are ``{"@": ordinal}`` and frozensets ``{"%": [...]}``.
Fields are positional: new fields go at the end with a default, so older values still decode.

The JSON is written and read by msgspec (the same bytes as ``json.dumps`` with compact
separators and ``ensure_ascii=False``, several times faster), so values stored by any earlier
version decode as they always did.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec

from arrears.domain import cases, ledger, placement
from arrears.domain import events as ev
from arrears.domain.commission import AgencySpan, Recovery
from arrears.domain.compliance import ContactRecord
from arrears.domain.debtor import DebtorState, TickBarrier
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
    "bA": ev.TickApplied,
    "bT": TickBarrier,
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
    _DECODERS[code] = _dataclass_decoder(cls)


# Values JSON carries as they are: the traversal below leaves them alone without a call.
_PLAIN = frozenset({str, int, bool, float, type(None)})


def _dataclass_encoder(cls: type, code: str) -> Callable[[Any], Any]:
    """``{code: [field values...]}`` for one dataclass, as a function written for its fields.

    Generated once per class (as :mod:`dataclasses` writes ``__init__``): reading each field by
    name and testing it inline costs a third less than a generic loop, and this runs for every
    field of every loan each batch changes. Field names come from the class, codes from
    ``_CODES``: nothing outside the program goes into the source.
    """
    names = _FIELDS[cls]
    reads = "".join(f"    v{i} = value.{name}\n" for i, name in enumerate(names))
    items = ", ".join(f"v{i} if type(v{i}) in plain else encoders.get(type(v{i}), unstorable)(v{i})"
                      for i in range(len(names)))
    source = f"def encode(value):\n{reads}    return {{{code!r}: [{items}]}}\n"
    scope: dict[str, Any] = {"plain": _PLAIN, "encoders": _ENCODERS, "unstorable": _unstorable}
    exec(source, scope)  # noqa: S102 - source built above from the dataclass's own field names
    encode: Callable[[Any], Any] = scope["encode"]
    return encode


def _same(value: Any) -> Any:
    return value


def _unstorable(value: Any) -> Any:
    raise TypeError(f"cannot store {type(value).__name__}")


def _encode_items(values: Any) -> list[Any]:
    return [v if type(v) in _PLAIN else _ENCODERS.get(type(v), _unstorable)(v) for v in values]


# Dispatch on the exact type: this runs for every field of every stored loan.
_ENCODERS: dict[type, Callable[[Any], Any]] = {
    str: _same, int: _same, bool: _same, float: _same, type(None): _same,
    dt.date: lambda d: {"@": d.toordinal()},
    tuple: _encode_items,
    list: _encode_items,
    frozenset: lambda s: {"%": sorted(_encode_items(s))},
    dict: lambda d: {"#": [[_encode(k), _encode(v)] for k, v in d.items()]},
    bytes: lambda b: {"b": base64.b64encode(b).decode()},
}


def _encode(value: Any) -> Any:
    return _ENCODERS.get(type(value), _unstorable)(value)


def _decode_items(values: list[Any]) -> list[Any]:
    return [v if type(v) in _PLAIN else _decode(v) for v in values]


def _dataclass_decoder(cls: type) -> Callable[[list[Any]], Any]:
    names = _FIELDS[cls]
    count = len(names)
    if any(f.kw_only or not f.init for f in dataclasses.fields(cls)):
        return lambda body: cls(**{name: _decode(v) for name, v in zip(names, body, strict=False)})

    def decode(body: list[Any]) -> Any:
        # Positional: a value stored before later fields were added fills the first ones (the
        # rest take their defaults); one stored by a newer version with more fields is cut.
        return cls(*_decode_items(body if len(body) <= count else body[:count]))

    return decode


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "@": dt.date.fromordinal,
    "%": lambda body: frozenset(_decode_items(body)),
    "#": lambda body: {_decode(k): _decode(v) for k, v in body},
    "b": base64.b64decode,
}

for _cls, _code in _BY_CLASS.items():
    _ENCODERS[_cls] = _dataclass_encoder(_cls, _code)
    _DECODERS[_code] = _dataclass_decoder(_cls)


def _decode(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return tuple(_decode_items(value))
    if kind is dict:
        ((code, body),) = value.items()
        return _DECODERS[code](body)
    return value


_JSON_ENCODER = msgspec.json.Encoder()  # the same bytes as json.dumps(separators=(",", ":"), ensure_ascii=False)
_JSON_DECODER = msgspec.json.Decoder()


def encode_state(state: Any, wake: dt.date | None = None, portfolio: bool = False) -> bytes:
    """The value bytes; the header says when a tick next needs the loan and whether it counts
    in the partition's portfolio (so a restart decodes only those loans)."""
    header = f"{wake.toordinal() if wake is not None else ''}:{int(portfolio)}\n"
    return header.encode() + _JSON_ENCODER.encode(_encode(state))


def decode_state(data: bytes) -> Any:
    _, _, body = data.partition(b"\n")
    return _decode(_JSON_DECODER.decode(body))


def decode_header(data: bytes) -> tuple[dt.date | None, bool]:
    """(wake date, counts in the portfolio) without decoding the body."""
    header, _, _ = data.partition(b"\n")
    wake, _, portfolio = header.partition(b":")
    return (dt.date.fromordinal(int(wake)) if wake else None), portfolio == b"1"
