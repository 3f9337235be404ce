"""One typed, frozen settings object: environment variables (SPEC §8) plus the YAML config file.

Nothing here opens a connection; clients are built from :meth:`Settings.kafka_config`.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .config import ArrearsConfig, WebhookTransport, load_config
from .errors import ConfigError
from .topics import TopicNames, TopicSpec, internal_specs

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")
DEFAULT_WORKER_URL = "http://127.0.0.1:6066"
_BROKER = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")


def check_http_url(value: str) -> str:
    """*value* if it is an http(s) URL with a host (and a valid port); else ValueError saying so."""
    example = "e.g. http://127.0.0.1:6066"
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"expected an http:// or https:// URL, {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, {example}")
    if port == 0:
        raise ValueError(f"port 0 is not a port one can connect to, {example}")
    return value.strip()


def check_host(value: str) -> str:
    """*value* if it is a host name or an IP address; else ValueError saying what is expected."""
    if not _HOST.match(value):
        raise ValueError("expected a host name or IP address other workers can reach, e.g. worker-1 or 10.0.0.5")
    return value


def check_writable_path(path: Path, *, directory: bool) -> Path:
    """*path* if a file (or with *directory*, a directory) can be created or written there.

    Checked up front, so a command fails with a sentence before it starts work rather than with
    a traceback at the end (``arrears bench --json`` writes after half an hour).
    """
    if path.exists():
        if directory and not path.is_dir():
            raise ValueError(f"{path} exists and is not a directory")
        if not directory and path.is_dir():
            raise ValueError(f"{path} is a directory; give a file name")
        if not os.access(path, os.W_OK):
            raise ValueError(f"{path} is not writable")
        return path
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot create {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot create {path}: {parent} is not writable")
    return path


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
    # RocksDB's memory per table partition (Faust's defaults are 3 x 64 MB of memtables and a 2 GB
    # block cache per partition: a worker's RSS then grows with its book until those fill up).
    arrears_rocksdb_write_buffer_mb: int = Field(default=4, ge=1, le=1024)
    arrears_rocksdb_block_cache_mb: int = Field(default=16, ge=1, le=65536)
    arrears_session_timeout_ms: int = Field(default=6000, ge=1000)
    arrears_fetch_max_wait_ms: int = Field(default=100, ge=1, le=30000)
    # How far a result's own time may be ahead of its Kafka timestamp (SPEC §4: FUTURE_TIME).
    arrears_clock_skew_ms: int = Field(default=300_000, ge=0)
    arrears_standby_replicas: int = Field(default=0, ge=0, le=8)  # Faust standby replicas of the table
    # A worker asked to stop exits after this long even if its broker is gone (nothing is lost).
    arrears_stop_timeout_seconds: float = Field(default=30.0, gt=0)
    arrears_journal: bool = True  # keep each case's timeline in the worker's table
    arrears_log_format: Literal["json", "text"] = "json"
    arrears_log_level: str = "INFO"
    arrears_url: str = DEFAULT_WORKER_URL  # the worker `arrears case` and `arrears release` ask
    arrears_web_host: str = "127.0.0.1"  # the default of `arrears worker --web-host`

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None
    kafka_ssl_certificate_location: Path | None = None
    kafka_ssl_key_location: Path | None = None

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _broker_list(cls, value: str) -> str:
        for item in value.split(","):
            if not _BROKER.match(item.strip()):
                raise ValueError(f"expected host:port[,host:port...], e.g. localhost:9092; {item.strip()!r} is not one")
        return value

    @field_validator("arrears_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_url(cls, value: str | None) -> str | None:
        if value is None or value.startswith("mock://"):  # confluent-kafka's in-process registry (tests)
            return value
        try:
            return check_http_url(value)
        except ValueError:
            raise ValueError("expected the registry's http:// or https:// URL, e.g. http://registry:8081") from None

    @field_validator("arrears_web_host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("arrears_log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
        return value.strip().upper()

    @field_validator("kafka_sasl_mechanism", mode="before")
    @classmethod
    def _mechanism(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("kafka_ssl_ca_location", "kafka_ssl_certificate_location", "kafka_ssl_key_location")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such file")
        return value

    @field_validator("arrears_data_dir")
    @classmethod
    def _data_dir(cls, value: Path) -> Path:
        return check_writable_path(value, directory=True)

    @cached_property
    def config(self) -> ArrearsConfig:
        return load_config(self.arrears_config)

    @cached_property
    def topics(self) -> TopicNames:
        return TopicNames(self.arrears_topic_prefix)

    def topic_specs(self, *, internal: bool = True) -> list[TopicSpec]:
        """Every topic this deployment needs, with partitions and retention (SPEC §2).

        *internal* adds the processor's own topics (tick markers, table changelogs).
        """
        config = self.config
        specs = self.topics.specs(self.arrears_partitions, [a.id for a in config.agencies],
                                  work_order_retention_days=config.work_order_retention_days)
        if internal:
            specs += internal_specs(self.arrears_app_id, self.arrears_partitions)
        return specs

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
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{env}: {message} (got {got})")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
    settings.config  # noqa: B018 - read the YAML now so a bad file stops the command at once
    return settings
