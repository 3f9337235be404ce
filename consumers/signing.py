"""HMAC-SHA256 request signatures shared by webhooks and result posts (SPEC §6).

The signature is ``sha256=<hex>`` of HMAC-SHA256 over the raw request body under the
agency's secret, sent in the ``X-Arrears-Signature`` header.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Arrears-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_PREFIX = "sha256="


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Arrears-Signature`` value for *body*: ``sha256=`` + lowercase hex digest."""
    return _PREFIX + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Whether *header* is a valid signature of *body* (constant-time; hex case-insensitive)."""
    if not header or not secret:
        return False
    header = header.strip()
    if not header.lower().startswith(_PREFIX):
        return False
    given = header[len(_PREFIX) :].lower()
    return hmac.compare_digest(given.encode("ascii", "replace"), sign(secret, body)[len(_PREFIX) :].encode())
