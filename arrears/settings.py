"""One typed, frozen settings object: environment variables (SPEC §8) plus the YAML config file.

Nothing here opens a connection; clients are built from :meth:`Settings.kafka_config`.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .config import ArrearsConfig, WebhookTransport, load_config
from .errors import ConfigError
from .topics import TopicNames


class Settings(BaseSettings):
    """Where the broker is, how topics are named, and the YAML config."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = Field(default="localhost:9092", min_length=1)
    schema_registry_url: str | None = None
    arrears_config: Path | None = None
    arrears_topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    arrears_partitions: int = Field(default=6, ge=1, le=1024)
    arrears_app_id: str = Field(default="arrears-processor", pattern=r"^[A-Za-z0-9._-]+$")
    arrears_store: Literal["memory", "rocksdb"] = "memory"
    arrears_data_dir: Path = Path(".arrears-data")
    arrears_session_timeout_ms: int = Field(default=6000, ge=1000)
    arrears_fetch_max_wait_ms: int = Field(default=100, ge=1, le=30000)
    # How far a result's own time may be ahead of its Kafka timestamp (SPEC §4: FUTURE_TIME).
    arrears_clock_skew_ms: int = Field(default=300_000, ge=0)
    arrears_standby_replicas: int = Field(default=0, ge=0, le=8)  # Faust standby replicas of the table
    arrears_journal: bool = True  # keep each case's timeline in the worker's table
    arrears_log_format: Literal["json", "text"] = "json"
    arrears_log_level: str = "INFO"

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None
    kafka_ssl_certificate_location: Path | None = None
    kafka_ssl_key_location: Path | None = None

    @cached_property
    def config(self) -> ArrearsConfig:
        return load_config(self.arrears_config)

    @cached_property
    def topics(self) -> TopicNames:
        return TopicNames(self.arrears_topic_prefix)

    def kafka_config(self) -> dict[str, Any]:
        """librdkafka settings shared by every confluent-kafka client."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol.lower(),
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password is not None:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = str(self.kafka_ssl_ca_location)
        if self.kafka_ssl_certificate_location:
            conf["ssl.certificate.location"] = str(self.kafka_ssl_certificate_location)
        if self.kafka_ssl_key_location:
            conf["ssl.key.location"] = str(self.kafka_ssl_key_location)
        return conf

    def webhook_secret(self, transport: WebhookTransport) -> SecretStr:
        """Read an agency's signing secret from the variable its config names."""
        value = os.environ.get(transport.secret_env)
        if not value:
            raise ConfigError(
                f"transport.secret_env: environment variable {transport.secret_env} is not set "
                "(it holds the agency's HMAC signing secret)"
            )
        return SecretStr(value)


_ENV_NAMES = {name: name.upper() for name in Settings.model_fields}


def load_settings(**overrides: Any) -> Settings:
    """Read the environment and the config file; stop with one message naming the bad key."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            env = _ENV_NAMES.get(field, field.upper())
            got = "<hidden>" if "password" in field else repr(err.get("input"))
            problems.append(f"{env}: {err['msg']} (got {got})")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
    settings.config  # noqa: B018 - read the YAML now so a bad file stops the command at once
    return settings
