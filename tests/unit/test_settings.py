"""Settings (SPEC §8) and the YAML config (SPEC §5): defaults, overrides, and errors that name the key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from arrears.cli import main
from arrears.config import load_config, parse_config
from arrears.errors import ConfigError
from arrears.settings import Settings, load_settings

SECRET = "s3cr3t-Pa55word-never-printed"
VALID_CONFIG: dict[str, Any] = {
    "grace_days": 0,
    "internal_buckets": ["M1"],
    "agencies": [
        {
            "id": "AG1", "buckets": ["M2", "M3"], "capacity": 5000, "weight": 2, "assignment_days": 30,
            "transport": {
                "type": "webhook", "url": "https://ag1.example/arrears", "secret_env": "AG1_SECRET",
            },
        },
        {
            "id": "AG2", "buckets": ["M3", "M4", "M5", "M6", "M7+"], "capacity": 2000, "weight": 1,
            "assignment_days": 45,
            "transport": {"type": "files", "outbox": "/var/arrears/ag2/out", "inbox": "/var/arrears/ag2/in"},
        },
    ],
    "policy": {"profile": "CN", "emergency_contacts_allowed": False},
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Arrears or Kafka variable from the outer environment leaks into a test."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def config_with(**changes: Any) -> dict[str, Any]:
    config = yaml.safe_load(yaml.safe_dump(VALID_CONFIG))
    config.update(changes)
    return config


def agency_with(index: int, **changes: Any) -> dict[str, Any]:
    config = config_with()
    config["agencies"][index].update(changes)
    return config


def config_error(data: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "arrears.yaml")
    return str(caught.value)


# --------------------------------------------------------------------------- environment
def test_defaults_match_spec_section_8(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert settings.schema_registry_url is None
    assert settings.arrears_config is None
    assert settings.arrears_topic_prefix == ""
    assert settings.arrears_partitions == 6
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_config() == {
        "bootstrap.servers": "localhost:9092", "security.protocol": "plaintext",
    }
    assert settings.config.grace_days == 0 and settings.config.calendar == "CN"
    assert settings.config.agencies == ()
    assert settings.topics.loan_accounts == "loan.accounts"


def test_environment_variables_override_the_defaults(
    clean_env: pytest.MonkeyPatch, config_file: Callable[[dict[str, Any]], Path]
) -> None:
    path = config_file(VALID_CONFIG)
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    clean_env.setenv("SCHEMA_REGISTRY_URL", "http://registry:8081")
    clean_env.setenv("ARREARS_CONFIG", str(path))
    clean_env.setenv("ARREARS_TOPIC_PREFIX", "prod.")
    clean_env.setenv("ARREARS_PARTITIONS", "12")
    clean_env.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    clean_env.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    clean_env.setenv("KAFKA_SASL_USERNAME", "arrears")
    clean_env.setenv("KAFKA_SASL_PASSWORD", SECRET)

    settings = load_settings()

    assert settings.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.schema_registry_url == "http://registry:8081"
    assert settings.arrears_partitions == 12
    assert settings.topics.loan_repayments == "prod.loan.repayments"
    assert settings.topics.work_orders("AG1") == "prod.agency.AG1.work-orders"
    assert [a.id for a in settings.config.agencies] == ["AG1", "AG2"]
    assert settings.kafka_config() == {
        "bootstrap.servers": "kafka-1:9092,kafka-2:9092",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "arrears",
        "sasl.password": SECRET,
    }


def test_keyword_overrides_win_over_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ARREARS_PARTITIONS", "12")
    assert load_settings(arrears_partitions=3).arrears_partitions == 3


def test_settings_are_frozen(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    with pytest.raises(Exception, match="frozen"):
        settings.arrears_partitions = 3  # type: ignore[misc]


@pytest.mark.parametrize("value", ["six", "0", "-1", "2.5", ""])
def test_a_bad_partition_count_is_one_error_naming_arrears_partitions(
    clean_env: pytest.MonkeyPatch, value: str
) -> None:
    clean_env.setenv("ARREARS_PARTITIONS", value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert "ARREARS_PARTITIONS" in message
    assert message.count("ARREARS_") == 1 and message.count(";") == 0  # exactly one problem reported


def test_a_bad_security_protocol_names_its_variable_and_the_choices(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ConfigError, match="KAFKA_SECURITY_PROTOCOL.*SASL_SSL"):
        load_settings()


def test_the_sasl_password_is_never_in_an_error_or_a_repr(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("KAFKA_SASL_PASSWORD", SECRET)
    settings = load_settings()
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in str(settings.model_dump())

    clean_env.setenv("ARREARS_PARTITIONS", "many")
    clean_env.setenv("KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert SECRET not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_settings(kafka_sasl_password=12345678)
    assert "12345678" not in str(caught.value) and "KAFKA_SASL_PASSWORD" in str(caught.value)


def test_a_webhook_secret_comes_from_the_variable_its_config_names(
    clean_env: pytest.MonkeyPatch, config_file: Callable[[dict[str, Any]], Path]
) -> None:
    settings = load_settings(arrears_config=config_file(VALID_CONFIG))
    transport = settings.config.agency("AG1").transport

    with pytest.raises(ConfigError, match="AG1_SECRET"):
        settings.webhook_secret(transport)  # type: ignore[arg-type]
    clean_env.setenv("AG1_SECRET", SECRET)
    secret = settings.webhook_secret(transport)  # type: ignore[arg-type]
    assert secret.get_secret_value() == SECRET and SECRET not in repr(secret)


# --------------------------------------------------------------------------- the YAML file
def test_the_spec_example_config_parses() -> None:
    config = parse_config(VALID_CONFIG)

    assert config.internal_buckets == ("M1",)
    assert config.agency("AG2").transport.type == "files"
    assert config.agency("AG1").weight == 2
    assert config.policy.contact_policy().emergency_contacts_allowed is False


@pytest.mark.parametrize(
    ("config", "key", "expected"),
    [
        (agency_with(0, capacity=-5), "agencies[0].capacity", "greater than or equal to 0"),
        (agency_with(1, capacity="lots"), "agencies[1].capacity", "integer"),
        (agency_with(0, weight=0), "agencies[0].weight", "greater than or equal to 1"),
        (config_with(agencis=[]), "agencis", "unknown key"),
        (agency_with(0, colour="red"), "agencies[0].colour", "unknown key"),
        (config_with(internal_buckets=["M1", "M9"]), "internal_buckets[1]", "unknown bucket 'M9'"),
        (agency_with(1, buckets=["M3", "M8"]), "agencies[1].buckets[1]", "unknown bucket 'M8'"),
        (agency_with(0, id="AG 1"), "agencies[0].id", "[A-Za-z0-9_-]+"),
        (agency_with(1, id="AG1"), "agencies[1].id", "duplicate agency id 'AG1'"),
        (config_with(policy={"quiet_hours_start": "25:00"}), "policy.quiet_hours_start", "HH:MM"),
        (config_with(policy={"quiet_hours_end": "9pm"}), "policy.quiet_hours_end", "HH:MM"),
        (config_with(policy={"profile": "EU"}), "policy.profile", "'CN' or 'US_REG_F'"),
        (config_with(grace_days=-1), "grace_days", "greater than or equal to 0"),
        (
            agency_with(0, transport={"type": "webhook", "url": "ftp://x", "secret_env": "S"}),
            "agencies[0].transport.url", "https",
        ),
        (
            agency_with(0, transport={"type": "webhook", "url": "http://x", "secret_env": "S"}),
            "agencies[0].transport.url", "allow_insecure_http",
        ),
        (config_with(api={"tokens": [{"name": "ops", "token_env": "T", "scopes": ["write"]}]}),
         "api.tokens[0].scopes[0]", "'read', 'pii' or 'act'"),
        (config_with(api={"tokens": [{"name": "ops", "token_env": "T", "scopes": ["read"]},
                                     {"name": "ops", "token_env": "U", "scopes": ["read"]}]}),
         "api", "tokens[1].name: duplicate token name 'ops'"),
        (
            agency_with(
                0, transport={"type": "webhook", "url": "https://x", "secret_env": "S", "retries": 3}
            ),
            "agencies[0].transport.retries", "unknown key",
        ),
        (agency_with(0, transport={"type": "carrier-pigeon"}), "agencies[0].transport", "webhook"),
    ],
    ids=[
        "negative-capacity", "text-capacity", "zero-weight", "unknown-top-key", "unknown-agency-key",
        "unknown-internal-bucket", "unknown-agency-bucket", "bad-agency-id", "duplicate-agency",
        "bad-quiet-hours-start", "bad-quiet-hours-end", "unknown-profile", "negative-grace",
        "non-http-webhook", "insecure-http-webhook", "unknown-token-scope", "duplicate-token-name",
        "unknown-transport-key", "unknown-transport-type",
    ],
)
def test_a_bad_config_names_the_key_path_and_what_was_expected(
    config: dict[str, Any], key: str, expected: str
) -> None:
    message = config_error(config)

    assert message.startswith("invalid config arrears.yaml: ")
    assert f"{key}: " in message
    assert expected in message


def test_a_config_that_is_not_a_mapping_says_so() -> None:
    assert "expected a mapping" in config_error(["agencies"])


def test_an_empty_config_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_config(path).agencies == ()


def test_a_missing_or_unparsable_config_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ARREARS_CONFIG: cannot read .*nowhere.yaml"):
        load_config(tmp_path / "nowhere.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("agencies: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(broken)


def test_load_settings_reads_the_config_file_at_once(
    clean_env: pytest.MonkeyPatch, config_file: Callable[[dict[str, Any]], Path]
) -> None:
    path = config_file(agency_with(0, capacity=-5))
    with pytest.raises(ConfigError, match=r"agencies\[0\]\.capacity"):
        load_settings(arrears_config=path)


# --------------------------------------------------------------------------- the command line
def test_arrears_topics_with_a_bad_config_prints_one_message_and_exits_2(
    clean_env: pytest.MonkeyPatch,
    config_file: Callable[[dict[str, Any]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean_env.setenv("ARREARS_CONFIG", str(config_file(agency_with(0, capacity=-5))))
    clean_env.setenv("KAFKA_SASL_PASSWORD", SECRET)
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never reached: the config stops it first

    assert main(["topics"]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("arrears topics: error: invalid config ")
    assert "agencies[0].capacity" in lines[0]
    assert SECRET not in err


def test_the_installed_script_exits_2_without_a_traceback_on_a_bad_environment(tmp_path: Path) -> None:
    env = {**os.environ, "ARREARS_PARTITIONS": "none", "KAFKA_SASL_PASSWORD": SECRET}
    script = Path(sys.executable).with_name("arrears")

    result = subprocess.run(
        [str(script), "topics"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("arrears topics: error: ")
    assert "ARREARS_PARTITIONS" in lines[0] and "'none'" in lines[0]
    assert SECRET not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("ARREARS_LOG_LEVEL", "LOUD", "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("ARREARS_URL", "notaurl", "expected an http:// or https:// URL"),
        ("ARREARS_URL", "http://worker:99999", "expected an http:// or https:// URL"),
        ("ARREARS_WEB_HOST", "two words", "expected a host name"),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092,,", "expected host:port"),
        ("KAFKA_BOOTSTRAP_SERVERS", "PLAINTEXT://kafka:9092", "expected host:port"),
        ("SCHEMA_REGISTRY_URL", "registry:8081", "expected the registry's http:// or https:// URL"),
        ("KAFKA_SASL_MECHANISM", "MAGIC", "'PLAIN'"),
        ("KAFKA_SSL_CA_LOCATION", "/no/such/ca.pem", "no such file"),
        ("ARREARS_DATA_DIR", "/dev/null/state", "/dev/null is not a directory"),
        ("ARREARS_JOURNAL", "sometimes", "boolean"),
        ("ARREARS_STORE", "disk", "'memory' or 'rocksdb'"),
    ],
)
def test_every_variable_is_checked_up_front_with_one_message_naming_it(
    clean_env: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"invalid settings: {variable}: ") and says in message
    assert "Value error" not in message


def test_log_level_and_sasl_mechanism_are_taken_in_any_case(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ARREARS_LOG_LEVEL", "debug")
    clean_env.setenv("KAFKA_SASL_MECHANISM", "scram-sha-256")
    settings = load_settings()
    assert (settings.arrears_log_level, settings.kafka_sasl_mechanism) == ("DEBUG", "SCRAM-SHA-256")
    assert settings.arrears_url == "http://127.0.0.1:6066" and settings.arrears_web_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("file_mode", "says"),
    [
        (420, "quoted octal string"),
        ("rw-r--r--", "octal permission mode"),
        ("0444", "owner (the adapter) must keep read and write"),
        ("0755", "no execute bits"),
    ],
)
def test_a_files_transport_mode_must_be_a_quoted_octal_the_adapter_can_write(file_mode: Any, says: str) -> None:
    config = config_with()
    config["agencies"][1]["transport"]["file_mode"] = file_mode
    message = config_error(config)
    assert "agencies[1].transport.file_mode" in message and says in message


def test_a_files_transport_takes_a_mode_and_a_timezone() -> None:
    config = config_with()
    config["agencies"][1]["transport"].update(file_mode="0640", timezone="Asia/Shanghai")
    transport = parse_config(config).agencies[1].transport
    assert (transport.file_mode, transport.timezone) == (0o640, "Asia/Shanghai")  # type: ignore[union-attr]
    config["agencies"][1]["transport"]["timezone"] = "Shanghai"
    assert "agencies[1].transport.timezone: expected an IANA timezone name" in config_error(config)
