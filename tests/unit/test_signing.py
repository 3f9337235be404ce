"""The timestamped HMAC-SHA256 signature agencies verify and the adapter checks on result posts."""

from __future__ import annotations

import pytest

from consumers.signing import SecretsError, parse_secrets, sign, verify

BODY = b'{"type":"WorkOrderCancelled"}'
T = 1773021605  # 2026-03-09T02:00:05Z
# printf '%s' '1773021605.{"type":"WorkOrderCancelled"}' | openssl dgst -sha256 -hmac 'ag1-secret' -r
OPENSSL = "t=1773021605,sha256=69c6ecb6565d008237de412bca75294d5802fa0275571a6dd47eb3bad046de48"


def test_signature_signs_the_timestamp_with_the_body_as_openssl_computes_it() -> None:
    assert sign("ag1-secret", BODY, T) == OPENSSL


def test_a_correct_fresh_signature_verifies_whatever_the_hex_case_and_spacing() -> None:
    assert verify("ag1-secret", BODY, OPENSSL, now=T + 5)
    assert verify(["ag1-secret"], BODY, OPENSSL.replace("sha256=69c6", "SHA256=69C6"), now=T)
    assert verify(b"ag1-secret", BODY, f"  t={T}, sha256={OPENSSL.split('sha256=')[1]} ", now=T - 10)


@pytest.mark.parametrize(
    ("secret", "body", "header", "problem"),
    [
        ("other-secret", BODY, OPENSSL, "does not match"),  # another agency's secret
        ("ag1-secret", BODY + b" ", OPENSSL, "does not match"),  # body changed after signing
        ("ag1-secret", BODY, OPENSSL.replace(f"t={T}", f"t={T + 1}"), "does not match"),  # t changed after signing
        ("ag1-secret", BODY, OPENSSL.split(",")[1], "malformed"),  # the old, untimed form
        ("ag1-secret", BODY, OPENSSL.split(",")[0], "malformed"),  # no digest
        ("ag1-secret", BODY, "t=soon," + OPENSSL.split(",")[1], "malformed"),
        ("ag1-secret", BODY, None, "missing"),
        ("ag1-secret", BODY, "", "missing"),
        ("ag1-secret", BODY, f"t={T},sha256=zz", "does not match"),
        ("ag1-secret", BODY, f"t={T},sha256=ä", "does not match"),  # non-ASCII must not raise
        ("", BODY, sign("", BODY, T), "does not match"),  # an empty secret never verifies
    ],
)
def test_a_wrong_missing_or_malformed_signature_does_not_verify_and_says_why(
    secret: str, body: bytes, header: str | None, problem: str
) -> None:
    checked = verify(secret, body, header, now=T)
    assert not checked
    assert problem in checked.problem and not checked.stale


@pytest.mark.parametrize("offset", [301, -301, 86_400 * 365])
def test_a_signature_more_than_300_seconds_from_the_receivers_clock_is_refused_as_stale(offset: int) -> None:
    checked = verify("ag1-secret", BODY, OPENSSL, now=T + offset)
    assert not checked and checked.stale
    assert "300 s" in checked.problem


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_a_signature_within_300_seconds_either_way_is_accepted(offset: int) -> None:
    assert verify("ag1-secret", BODY, OPENSSL, now=T + offset)


def test_during_a_rotation_either_secret_verifies_and_the_first_one_signs() -> None:
    secrets = parse_secrets(" new-secret , ag1-secret ")
    assert secrets == ("new-secret", "ag1-secret")
    assert verify(secrets, BODY, OPENSSL, now=T)  # the agency still signs with the old one
    assert verify(secrets, BODY, sign(secrets[0], BODY, T), now=T)
    assert not verify(("new-secret",), BODY, OPENSSL, now=T)  # the rotation finished: the old one is gone


@pytest.mark.parametrize("value", ["", "a,", ",b", "a,,b", "a,b,c"])
def test_a_secrets_variable_holds_one_or_two_non_empty_secrets(value: str) -> None:
    with pytest.raises(SecretsError):
        parse_secrets(value)
