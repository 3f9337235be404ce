"""Who may ask the query API what (SPEC §7): bearer tokens, their scopes, and where to listen.

Tokens are configured by name in ``api.tokens`` (the values live in the environment variables
the config names, never in the file). Once any is configured, every endpoint but ``/health`` and
``/metrics`` needs ``Authorization: Bearer <token>``: no token or an unknown one is 401, a
token without ``read`` is 403; ``pii`` shows personal data unmasked (and each such answer is
audited). With no tokens the API is a development tool: it listens on 127.0.0.1 only and
answers everyone as ``read`` (masked).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from arrears.config import Api
from arrears.errors import ConfigError
from arrears.settings import Settings

from .app import ALL_INTERFACES, LOOPBACK, web_bind  # noqa: F401 - where the query API listens

READ = "read"
PII = "pii"
ACT = "act"
AUTHORIZATION = "Authorization"


@dataclass(frozen=True)
class Principal:
    """Whoever a request comes from: a configured token's name and scopes."""

    name: str
    scopes: frozenset[str]

    @property
    def sees_pii(self) -> bool:
        return PII in self.scopes


#: everyone, when no token is configured (development, loopback only): masked reads
ANONYMOUS = Principal("anonymous", frozenset({READ}))


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the HTTP status and the reason for the JSON body."""

    status: int
    reason: str


class TokenBook:
    """The configured tokens, resolved from the environment once, at start."""

    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        self._tokens = dict(tokens)

    @classmethod
    def from_config(cls, api: Api, environ: Mapping[str, str] | None = None) -> TokenBook:
        """Read every token's variable; one missing or empty stops the worker naming the key."""
        env = os.environ if environ is None else environ
        tokens: dict[str, Principal] = {}
        for i, token in enumerate(api.tokens):
            value = env.get(token.token_env, "").strip()
            if not value:
                raise ConfigError(f"api.tokens[{i}].token_env: environment variable {token.token_env} is not set "
                                  f"(it holds the bearer token named {token.name!r})")
            if len(value) < 16:
                raise ConfigError(f"api.tokens[{i}].token_env: the token in {token.token_env} is shorter than "
                                  "16 characters (use e.g. `openssl rand -hex 24`)")
            if value in tokens:
                raise ConfigError(f"api.tokens[{i}].token_env: {token.token_env} holds the same token as another one")
            tokens[value] = Principal(token.name, frozenset(token.scopes))
        return cls(tokens)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenBook:
        return cls.from_config(settings.config.api)

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def authenticate(self, header: str | None) -> Principal | Refusal:
        """The principal of an ``Authorization`` header, or why it is refused (401)."""
        if not self.enabled:
            return ANONYMOUS
        scheme, _, token = (header or "").strip().partition(" ")
        if not header or scheme.lower() != "bearer" or not token.strip():
            return Refusal(401, "unauthorized: send Authorization: Bearer <token>")
        given = token.strip().encode()
        found: Principal | None = None
        for value, principal in self._tokens.items():  # constant time in the token's content
            if hmac.compare_digest(given, value.encode()):
                found = principal
        if found is None:
            return Refusal(401, "unauthorized: unknown token")
        return found

    def authorize(self, header: str | None, scope: str = READ) -> Principal | Refusal:
        """:meth:`authenticate`, then 403 when the token lacks *scope*."""
        principal = self.authenticate(header)
        if isinstance(principal, Refusal):
            return principal
        if scope not in principal.scopes:
            return Refusal(403, f"forbidden: token {principal.name!r} does not have the {scope!r} scope")
        return principal



