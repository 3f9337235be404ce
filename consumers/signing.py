"""Timestamped HMAC-SHA256 request signatures shared by webhooks and result posts (SPEC §6).

    X-Arrears-Signature: t=<unix seconds>,sha256=<hex HMAC-SHA256 of "<t>.<raw body>">

The timestamp is signed with the body, so a captured request cannot be replayed later: the
receiver refuses a ``t`` more than :data:`TOLERANCE_SECONDS` away from its own clock. Secrets
rotate without downtime: the variable named by ``secret_env`` may hold two comma-separated
secrets; the sender signs with the first and the receiver accepts either.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

SIGNATURE_HEADER = "X-Arrears-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOLERANCE_SECONDS = 300
MAX_SECRETS = 2  # the current one and, during a rotation, the one it replaces
_PAIR = re.compile(r"^\s*([A-Za-z0-9]+)=([^,\s]*)\s*$")


class SecretsError(ValueError):
    """The secrets variable does not hold one or two non-empty comma-separated secrets."""


def parse_secrets(value: str) -> tuple[str, ...]:
    """``"new"`` or ``"new,old"`` → the secrets, the signing one first.

    Surrounding spaces are dropped; an empty secret or more than two are errors (a secret that
    contains a comma cannot be used).
    """
    parts = tuple(part.strip() for part in value.split(","))
    if not all(parts):
        raise SecretsError("holds an empty secret (expected SECRET or NEW_SECRET,OLD_SECRET)")
    if len(parts) > MAX_SECRETS:
        raise SecretsError(f"holds {len(parts)} secrets; at most {MAX_SECRETS} (NEW_SECRET,OLD_SECRET)")
    return parts


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def signed_payload(timestamp: int, body: bytes) -> bytes:
    """What the HMAC covers: the decimal timestamp, a dot, then the raw body bytes."""
    return str(timestamp).encode("ascii") + b"." + body


def digest(secret: str | bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(_key(secret), signed_payload(timestamp, body), hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Arrears-Signature`` value for *body* sent at *timestamp* (unix seconds)."""
    return f"t={timestamp},sha256={digest(secret, timestamp, body)}"


@dataclass(frozen=True)
class Verification:
    """Whether a request's signature holds, and if not why (said in the 401 answer)."""

    ok: bool
    problem: str = ""
    stale: bool = False  # the signature matched but its t is too far from the receiver's clock

    def __bool__(self) -> bool:
        return self.ok


def _parse(header: str) -> tuple[int, list[str]] | None:
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        match = _PAIR.match(part)
        if match is None:
            return None
        key, value = match.group(1).lower(), match.group(2)
        if key == "t":
            if timestamp is not None or not value.isdigit():
                return None
            timestamp = int(value)
        elif key == "sha256":
            digests.append(value.lower())
    if timestamp is None or not digests:
        return None
    return timestamp, digests


def verify(
    secrets: Sequence[str | bytes] | str | bytes,
    body: bytes,
    header: str | None,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> Verification:
    """Check *header* against *body* under any of *secrets* and the receiver's clock *now*.

    Constant-time comparison; hex case-insensitive. A signature that matches but whose ``t``
    is more than *tolerance* seconds from *now* (either way) is refused: a replay, or a clock
    that needs fixing.
    """
    keys = [secrets] if isinstance(secrets, (str, bytes)) else list(secrets)
    keys = [k for k in keys if k]
    if not header or not header.strip():
        return Verification(False, f"missing {SIGNATURE_HEADER} header")
    parsed = _parse(header)
    if parsed is None:
        return Verification(False, "malformed: expected t=<unix seconds>,sha256=<hex>")
    timestamp, given = parsed
    matched = False
    for key in keys:
        expected = digest(key, timestamp, body).encode()
        for candidate in given:
            matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), expected)
    if not matched:
        return Verification(False, 'does not match the body (HMAC-SHA256 of "<t>.<raw body>")')
    skew = now - timestamp
    if abs(skew) > tolerance:
        direction = "old" if skew > 0 else "ahead of the receiver's clock"
        return Verification(
            False, f"t is {abs(skew):.0f} s {direction} (at most {tolerance:.0f} s): a replay or a wrong clock",
            stale=True,
        )
    return Verification(True)
