"""Who may ask the query API what: bearer tokens, scopes, and the listening address (SPEC §7)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from arrears.config import parse_config
from arrears.errors import ConfigError
from arrears.settings import load_settings
from streams.access import ANONYMOUS, Principal, Refusal, TokenBook, web_bind

OPS = "ops-token-0123456789abcdef"
COMPLIANCE = "compliance-token-0123456789"
ACTOR = "act-only-token-0123456789"
CONFIG = {"api": {"tokens": [
    {"name": "ops", "token_env": "ARREARS_OPS_TOKEN", "scopes": ["read"]},
    {"name": "compliance", "token_env": "ARREARS_COMPLIANCE_TOKEN", "scopes": ["read", "pii"]},
    {"name": "release-bot", "token_env": "ARREARS_ACT_TOKEN", "scopes": ["act"]},
]}}
ENV = {"ARREARS_OPS_TOKEN": OPS, "ARREARS_COMPLIANCE_TOKEN": COMPLIANCE, "ARREARS_ACT_TOKEN": ACTOR}


def book() -> TokenBook:
    return TokenBook.from_config(parse_config(CONFIG).api, ENV)


@pytest.mark.parametrize(
    ("header", "status", "reason"),
    [
        (None, 401, "send Authorization: Bearer <token>"),
        ("", 401, "send Authorization: Bearer <token>"),
        (f"Basic {OPS}", 401, "send Authorization: Bearer <token>"),
        ("Bearer ", 401, "send Authorization: Bearer <token>"),
        ("Bearer not-a-token-we-know-at-all", 401, "unknown token"),
        (f"Bearer {OPS}x", 401, "unknown token"),
        (f"Bearer {ACTOR}", 403, "token 'release-bot' does not have the 'read' scope"),
    ],
)
def test_no_token_or_an_unknown_one_is_401_and_one_without_the_scope_403(
    header: str | None, status: int, reason: str
) -> None:
    refusal = book().authorize(header)
    assert isinstance(refusal, Refusal)
    assert (refusal.status, reason in refusal.reason) == (status, True)


def test_a_read_token_reads_masked_and_a_pii_token_unmasked() -> None:
    ops = book().authorize(f"Bearer {OPS}")
    compliance = book().authorize(f"bearer  {COMPLIANCE} ")
    assert isinstance(ops, Principal) and (ops.name, ops.sees_pii) == ("ops", False)
    assert isinstance(compliance, Principal) and (compliance.name, compliance.sees_pii) == ("compliance", True)


def test_without_tokens_everyone_reads_masked_data() -> None:
    empty = TokenBook.from_config(parse_config({}).api, {})
    assert not empty.enabled
    assert empty.authorize(None) == ANONYMOUS and not ANONYMOUS.sees_pii


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({**ENV, "ARREARS_COMPLIANCE_TOKEN": ""},
         "api.tokens[1].token_env: environment variable ARREARS_COMPLIANCE_TOKEN is not set"),
        ({k: v for k, v in ENV.items() if k != "ARREARS_OPS_TOKEN"},
         "api.tokens[0].token_env: environment variable ARREARS_OPS_TOKEN is not set"),
        ({**ENV, "ARREARS_OPS_TOKEN": "short"}, "shorter than 16 characters"),
        ({**ENV, "ARREARS_ACT_TOKEN": OPS}, "api.tokens[2].token_env: ARREARS_ACT_TOKEN holds the same token"),
    ],
)
def test_a_token_variable_missing_short_or_shared_stops_the_worker_naming_the_key(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        TokenBook.from_config(parse_config(CONFIG).api, env)
    assert message in str(caught.value)
    assert OPS not in str(caught.value)  # a token is never printed


def test_the_api_listens_on_loopback_only_without_tokens(tmp_path: Path) -> None:
    path = tmp_path / "arrears.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    assert web_bind(load_settings(arrears_config=path)) == "0.0.0.0"
    path.write_text(yaml.safe_dump({}))
    assert web_bind(load_settings(arrears_config=path)) == "127.0.0.1"
