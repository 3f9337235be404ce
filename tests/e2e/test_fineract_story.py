"""The three-loan Fineract story through the bridge, the broker and a worker: the cases a reader expects.

The story (../shared/fineract-fixtures/README.md, CNY, every bucket worked in-house so no agency
is involved):

* loan 1001 (12000.00, 3 months from 2024-03-01) misses installment 1 (4080.27 due 2024-04-01),
  pays 2100.50 on 2024-04-08 and has that payment reversed on 2024-04-09;
* loan 1002 (5000.00, 2 months from 2024-03-02) pays installment 1 on its due date 2024-04-02;
* loan 1003 (6000.00, 6 months from 2024-03-04) misses installment 1 (1035.29 due 2024-04-04)
  and is written off on 2024-04-10.

The same expectations hold through the pure rules alone
(tests/unit/test_fineract_mapping.py::test_the_three_loan_story_through_the_pure_rules_...).
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from conftest import env_for
from fineract_support import FINERACT_AVRO_DIR, fixtures
from kafkatools import read_topic
from processes import WorkerProcess

from arrears.broker import free_port
from arrears.settings import Settings
from producers.fineract.bridge import ensure_topics

pytestmark = [pytest.mark.slow, pytest.mark.broker]

EVERY_BUCKET_INTERNAL = {"internal_buckets": ["M1", "M2", "M3", "M4", "M5", "M6", "M7+"]}
D = dt.date.fromisoformat


def case_event(record: Any) -> tuple[Any, ...]:
    """The fields of a case event a reader of the story cares about."""
    v = record.data
    common = (record.name, v["case_id"], v["business_date"])
    if record.name == "CaseOpened":
        return (*common, v["customer_id"], v["dpd"], v["bucket"], v["overdue_amount"], v["currency"],
                v["oldest_due_date"])
    if record.name == "CaseBalanceChanged":
        return (*common, v["dpd"], v["bucket"], v["overdue_amount"], v["previous_overdue_amount"],
                v["payment_id"])
    if record.name == "CaseDelinquencyChanged":
        return (*common, v["dpd"], v["bucket"], v["previous_bucket"], v["overdue_amount"])
    if record.name == "CaseClosed":
        return (*common, v["reason"])
    return common


def test_the_fineract_story_opens_moves_and_closes_the_cases_a_reader_expects(
    make_settings: Any, unique: str, tmp_path: Path
) -> None:
    settings: Settings = make_settings(config=EVERY_BUCKET_INTERNAL)
    env = env_for(settings, ARREARS_APP_ID=f"arrears-{unique}", ARREARS_DATA_DIR=str(tmp_path / "data"))
    topic = f"{settings.arrears_topic_prefix}external-events"
    ensure_topics(settings, topic)

    worker = WorkerProcess(env, free_port(), tmp_path).start()
    bridge: subprocess.Popen[bytes] | None = None
    try:
        worker.wait_ready()
        # Fineract's messages, as its Kafka producer wrote them, in message-id order.
        producer = Producer({**settings.kafka_config(), "enable.idempotence": True, "acks": "all"})
        for fx in fixtures():
            producer.produce(topic, fx.value, fx.key)
        assert producer.flush(30) == 0
        with open(tmp_path / "bridge.log", "wb") as log:
            bridge = subprocess.Popen(
                [sys.executable, "-m", "arrears", "fineract-bridge", "--schemas", str(FINERACT_AVRO_DIR),
                 "--topic", topic],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        records = read_topic(settings, settings.topics.cases, min_count=5, timeout=180, idle=5.0)
    finally:
        if bridge is not None and bridge.poll() is None:
            bridge.send_signal(signal.SIGTERM)
            bridge.wait(30)
        worker.stop()

    by_case: dict[str, list[tuple[Any, ...]]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_case.setdefault(record.data["case_id"], []).append(case_event(record))
    log_tail = worker.log_tail()
    assert by_case == {
        "1001:1": [
            # Installment 1 (3960.27 + 120.00 due 2024-04-01) is unpaid at the 2024-04-02 tick: DPD 1, M1.
            ("CaseOpened", "1001:1", D("2024-04-02"), "501", 1, "M1", 408027, "CNY", D("2024-04-01")),
            # 2100.50 arrives on 2024-04-08: still overdue (1979.77 left), DPD 7.
            ("CaseBalanceChanged", "1001:1", D("2024-04-08"), 7, "M1", 197977, 408027, "9024"),
            # The payment is reversed on 2024-04-09: the whole installment is overdue again, DPD 8.
            ("CaseBalanceChanged", "1001:1", D("2024-04-09"), 8, "M1", 408027, 197977, "9024"),
        ],
        "1003:1": [
            # Installment 1 (975.29 + 60.00 due 2024-04-04) is unpaid at the 2024-04-05 tick.
            ("CaseOpened", "1003:1", D("2024-04-05"), "503", 1, "M1", 103529, "CNY", D("2024-04-04")),
            # Fineract writes the loan off on 2024-04-10: its case closes with the loan's reason.
            ("CaseClosed", "1003:1", D("2024-04-10"), "WRITTEN_OFF"),
        ],
        # Loan 1002 paid installment 1 on its due date (not overdue on that day): never a case.
    }, log_tail
