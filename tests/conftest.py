"""Shared fixtures: one broker per test session, unique topics and groups per test.

The broker is, in order of preference: ``KAFKA_BOOTSTRAP_SERVERS`` when set, Kafka in Docker
through testcontainers when a Docker engine answers, otherwise the embedded Tansu broker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from arrears.settings import Settings, load_settings

CONFORMANCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "conformance"
FINERACT_AVRO_DIR = Path(__file__).resolve().parents[2] / "shared" / "fineract-avro"
FINERACT_FIXTURES_DIR = Path(__file__).resolve().parents[2] / "shared" / "fineract-fixtures"
# Short sessions so group joins on the embedded broker take seconds (it waits ~half of it).
SESSION_TIMEOUT_MS = 6000


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of the session's broker."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
        return
    from arrears.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topic_prefix(unique: str) -> str:
    return f"t{unique}."


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    def write(config: dict[str, Any]) -> Path:
        path = tmp_path / f"arrears-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_settings(
    kafka_bootstrap: str, topic_prefix: str, config_file: Callable[[dict[str, Any]], Path]
) -> Callable[..., Settings]:
    """Settings for this test's broker and topic prefix, with an optional config mapping."""

    def make(config: dict[str, Any] | None = None, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": kafka_bootstrap,
            "arrears_topic_prefix": topic_prefix,
            "arrears_config": config_file(config) if config is not None else None,
            "arrears_session_timeout_ms": SESSION_TIMEOUT_MS,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def topics(settings: Settings) -> Settings:
    """Create the contract's topics under this test's prefix; returns the settings."""
    from arrears.kafka import create_topics

    create_topics(settings, settings.topics.specs(settings.arrears_partitions,
                                                  [a.id for a in settings.config.agencies]))
    return settings


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for running ``arrears`` subcommands against the test's settings."""
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        ARREARS_TOPIC_PREFIX=settings.arrears_topic_prefix,
        ARREARS_PARTITIONS=str(settings.arrears_partitions),
        ARREARS_SESSION_TIMEOUT_MS=str(settings.arrears_session_timeout_ms),
        ARREARS_LOG_FORMAT="json",
    )
    if settings.arrears_config is not None:
        env["ARREARS_CONFIG"] = str(settings.arrears_config)
    env.update(extra)
    return env
