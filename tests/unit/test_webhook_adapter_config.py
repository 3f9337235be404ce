"""How an adapter reads its part of the config, and how it refuses to start without it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from arrears.cli import main
from arrears.config import parse_config
from arrears.errors import ConfigError
from arrears.settings import load_settings
from consumers.adapter import agency_secrets, consumer_config, group_id

CONFIG = {
    "agencies": [
        {
            "id": "AG1",
            "buckets": ["M2"],
            "capacity": 5,
            "transport": {
                "type": "webhook",
                "url": "https://ag1.example/hook",
                "secret_env": "AG1_SECRET",
                "timeout_seconds": 20,
                "max_attempts": 10,
                "backoff_max_seconds": 60,
            },
        },
        {
            "id": "AG2",
            "buckets": ["M3"],
            "capacity": 5,
            "transport": {"type": "files", "outbox": "/tmp/o", "inbox": "/tmp/i"},
        },
    ]
}


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "arrears.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    monkeypatch.setenv("ARREARS_CONFIG", str(path))
    monkeypatch.delenv("AG1_SECRET", raising=False)
    return path


def test_an_unknown_agency_stops_the_command_naming_the_known_ones(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["adapter", "--agency", "AG9"]) == 2
    assert "no agency with id 'AG9' (known: AG1, AG2)" in capsys.readouterr().err


def test_a_missing_webhook_secret_stops_the_command_naming_the_variable(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["adapter", "--agency", "AG1"]) == 2
    assert "environment variable AG1_SECRET is not set" in capsys.readouterr().err


def test_a_files_agency_needs_no_secret_unless_it_names_one(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(CONFIG)
    assert agency_secrets(config.agency("AG2")) is None
    monkeypatch.setenv("AG1_SECRET", "x")
    assert [s.get_secret_value() for s in agency_secrets(config.agency("AG1")) or ()] == ["x"]
    with pytest.raises(ConfigError, match="secret_env"):
        parse_config(
            {
                "agencies": [
                    {
                        **CONFIG["agencies"][1],
                        "transport": {  # type: ignore[dict-item]
                            "type": "files",
                            "outbox": "/o",
                            "inbox": "/i",
                            "secret_env": "not a name",
                        },
                    }
                ]
            }
        )


def test_the_consumer_group_and_poll_interval_fit_the_agency(config_path: Path) -> None:
    settings = load_settings(arrears_topic_prefix="t1.")
    webhook = consumer_config(settings, settings.config.agency("AG1"))
    assert group_id(settings, "AG1") == webhook["group.id"] == "t1.arrears-adapter-AG1"
    assert group_id(load_settings(), "AG1") == "arrears-adapter-AG1"
    assert webhook["enable.auto.commit"] is False
    # ten attempts of 20 s and nine waits of 60 s must fit between two polls
    assert webhook["max.poll.interval.ms"] >= (10 * 20 + 9 * 60) * 1000
    files = consumer_config(settings, settings.config.agency("AG2"))
    assert "max.poll.interval.ms" not in files


def test_a_rotation_puts_two_secrets_in_the_variable_and_anything_else_stops_the_adapter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agency = parse_config(CONFIG).agency("AG1")
    monkeypatch.setenv("AG1_SECRET", "new-one,old-one")
    assert [s.get_secret_value() for s in agency_secrets(agency) or ()] == ["new-one", "old-one"]
    for bad in ("a,b,c", "new-one,"):
        monkeypatch.setenv("AG1_SECRET", bad)
        with pytest.raises(ConfigError) as caught:
            agency_secrets(agency)
        assert "agencies[AG1].transport.secret_env: AG1_SECRET" in str(caught.value)
        assert "new-one" not in str(caught.value)  # a secret is never printed


def test_an_http_webhook_url_is_refused_at_start_unless_allowed_for_local_testing() -> None:
    insecure = {**CONFIG["agencies"][0], "transport": {  # type: ignore[dict-item]
        **CONFIG["agencies"][0]["transport"], "url": "http://ag1.example/hook"}}  # type: ignore[index]
    with pytest.raises(ConfigError) as caught:
        parse_config({"agencies": [insecure]})
    assert "agencies[0].transport.url: http:// would send debtors' personal data unencrypted" in str(caught.value)
    assert "allow_insecure_http: true" in str(caught.value)
    insecure["transport"]["allow_insecure_http"] = True  # type: ignore[index]
    assert parse_config({"agencies": [insecure]}).agency("AG1").transport.url == "http://ag1.example/hook"
