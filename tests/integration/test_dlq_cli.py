"""``arrears dlq list|show|replay`` against a real broker (SPEC §8)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from confluent_kafka import Producer
from conftest import env_for
from kafkatools import read_topic

from arrears.dlq import CONTRACT_VIOLATION, FUTURE_TIME, dlq_headers
from arrears.kafka import producer_config
from arrears.settings import Settings
from schemas import event_type_headers, get_codec

pytestmark = pytest.mark.broker


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "arrears", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def dead_letter(settings: Settings, name: str, value: dict[str, Any], reason: str, error: str) -> None:
    """What a worker writes for a record it refused: the original key, bytes and headers, plus dlq.*."""
    codec = get_codec()
    topic = settings.topics.for_record(name)
    key = (value.get("loan_id") or value["case_id"].rsplit(":", 1)[0]).encode()
    headers = dlq_headers(reason, error, topic, 2, 41, event_type_headers(name))
    producer = Producer(producer_config(settings))
    producer.produce(settings.topics.dlq(topic), codec.encode(name, value, topic=topic), key, headers=headers)
    assert producer.flush(10) == 0


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_list_show_and_replay_a_dead_letter_topic(topics: Settings) -> None:
    settings = topics
    env = env_for(settings)
    repayment = {"event_id": "pay-1", "occurred_at": 1_767_225_600_000, "loan_id": "DLQ-1", "payment_id": "P-1",
                 "amount": 5_000, "currency": "USD", "value_date": 20_454, "channel": "BANK_TRANSFER",
                 "reference": None}
    dead_letter(settings, "RepaymentReceived", repayment, CONTRACT_VIOLATION, "currency USD differs from CNY")
    dead_letter(settings, "RepaymentReceived", {**repayment, "event_id": "pay-2", "payment_id": "P-2"},
                CONTRACT_VIOLATION, "currency USD differs from CNY")
    opened = {"event_id": "open-9", "occurred_at": 1_767_225_600_000, "loan_id": "DLQ-9", "customer_id": "C-9",
              "product_code": "CASH", "currency": "CNY", "principal": 1, "opened_on": 20_454,
              "customer": {"name": "王小明", "phone": "13812348000", "national_id": "110101199001011234",
                           "province": "广东省", "city": "深圳市", "timezone": "Asia/Shanghai",
                           "emergency_contacts": []}}
    dead_letter(settings, "LoanOpened", opened, FUTURE_TIME, "just to have a second topic")

    listed = run(["dlq", "list", "loan.repayments"], env)
    assert listed.returncode == 0, listed.stderr
    assert f"{settings.topics.dlq(settings.topics.loan_repayments)}: 2 dead letters" in listed.stdout
    assert "CONTRACT_VIOLATION" in listed.stdout and "2" in listed.stdout

    shown = run(["dlq", "show", "loan.accounts.dlq"], env)  # the .dlq name works too
    assert shown.returncode == 0, shown.stderr
    (body,) = [json.loads(chunk) for chunk in [shown.stdout]]
    assert body["headers"]["dlq.reason"] == FUTURE_TIME and body["headers"]["event_type"] == "LoanOpened"
    assert body["record"]["customer"]["name"] == "王*" and "王小明" not in shown.stdout  # masked by default
    assert "13812348000" not in shown.stdout and body["record"]["customer"]["phone"] == "138****8000"
    unmasked = run(["dlq", "show", "loan.accounts", "--unmasked"], env)
    assert "王小明" in unmasked.stdout

    refused = run(["dlq", "replay", "loan.repayments"], env)
    assert refused.returncode != 0 and "--offset N, --reason REASON or --all" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = run(["dlq", "replay", "loan.repayments", "--offset", "99"], env)
    assert missing.returncode != 0 and "no dead letter at offset 99" in missing.stderr

    dry = run(["dlq", "replay", "loan.repayments", "--all", "--dry-run"], env)
    assert dry.returncode == 0 and dry.stdout.count("would republish") == 2
    assert read_topic(settings, settings.topics.loan_repayments, timeout=2, idle=0.5) == []

    (first,) = [r for r in read_topic(settings, settings.topics.dlq(settings.topics.loan_repayments), min_count=2)
                if r.data and r.data["event_id"] == "pay-1"]
    replayed = run(["dlq", "replay", "loan.repayments", "--offset", str(first.offset),
                    "--partition", str(first.partition)], env)
    assert replayed.returncode == 0, replayed.stderr
    assert "republished" in replayed.stdout and "CONTRACT_VIOLATION" in replayed.stdout
    (back,) = read_topic(settings, settings.topics.loan_repayments, min_count=1)
    assert (back.key, back.value) == (first.key, first.value)  # same bytes: the same event_id
    assert back.headers == {"event_type": b"RepaymentReceived"}  # the dlq.* headers are gone

    unknown = run(["dlq", "list", "no.such.topic"], env)
    assert unknown.returncode != 0 and "there is no topic" in unknown.stderr and "Traceback" not in unknown.stderr
