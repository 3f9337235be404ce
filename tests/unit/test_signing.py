"""The HMAC-SHA256 signature agencies verify and the adapter checks on result posts."""

from __future__ import annotations

import pytest

from consumers.signing import sign, verify

BODY = b'{"type":"WorkOrderCancelled"}'
# echo -n '{"type":"WorkOrderCancelled"}' | openssl dgst -sha256 -hmac 'ag1-secret'
OPENSSL = "sha256=04d4c126a1860f1199196f37ab93433374ef8b421d0b9643b4e2645b1301c295"


def test_signature_matches_what_openssl_computes_for_the_documented_example() -> None:
    assert sign("ag1-secret", BODY) == OPENSSL


def test_a_correct_signature_verifies_whatever_the_hex_case() -> None:
    assert verify("ag1-secret", BODY, OPENSSL)
    assert verify("ag1-secret", BODY, OPENSSL.upper().replace("SHA256=", "sha256="))
    assert verify(b"ag1-secret", BODY, f"  {OPENSSL} ")


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        ("other-secret", BODY, OPENSSL),  # another agency's secret
        ("ag1-secret", BODY + b" ", OPENSSL),  # body changed after signing
        ("ag1-secret", BODY, OPENSSL.removeprefix("sha256=")),  # no scheme prefix
        ("ag1-secret", BODY, "sha1=" + OPENSSL.removeprefix("sha256=")),
        ("ag1-secret", BODY, None),
        ("ag1-secret", BODY, ""),
        ("ag1-secret", BODY, "sha256=zz"),
        ("ag1-secret", BODY, "sha256=ä"),  # non-ASCII must not raise
        ("", BODY, sign("", BODY)),  # an empty secret never verifies
    ],
)
def test_a_wrong_missing_or_malformed_signature_does_not_verify(
    secret: str, body: bytes, header: str | None
) -> None:
    assert not verify(secret, body, header)
