"""The simulated HTTP agency end to end with its adapter: work orders in, a day's results out."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable

import pytest
from kafkatools import read_topic
from workorders import issued, publish_work_orders

from arrears.broker import free_port
from arrears.kafka import create_topics
from arrears.settings import Settings
from consumers.adapter import Adapter
from consumers.simagency import HttpAgency
from consumers.simplan import SimProfile

pytestmark = pytest.mark.broker
SECRET = "sim-secret"


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_http_agency_reports_its_day_to_the_adapter_and_its_debtors_pay_on_loan_repayments(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AG1_SECRET", SECRET)
    profile = SimProfile(violation_rate=0.5, self_cure_rate=0.2)
    with HttpAgency("AG1", SECRET, seed="it", profile=profile) as agency:
        settings = make_settings(
            {
                "agencies": [
                    {
                        "id": "AG1",
                        "buckets": ["M2"],
                        "capacity": 100,
                        "transport": {
                            "type": "webhook",
                            "url": agency.webhook_url,
                            "allow_insecure_http": True,
                            "secret_env": "AG1_SECRET",
                        },
                    }
                ]
            },
            arrears_partitions=3,
        )
        agency.settings = settings
        create_topics(settings, settings.topics.specs(3, ["AG1"]))
        orders = [issued(f"SIM-{i}:1") for i in range(20)]
        with Adapter(settings, "AG1", port=free_port()) as adapter:
            agency.adapter_url = adapter.url
            adapter.wait_ready()
            publish_work_orders(settings, "AG1", orders)
            assert agency.wait_for(lambda a: len(a.accepted()) == 20, timeout=20)
            report = agency.work_day(dt.date(2026, 3, 2))
            total = sum(report.results.values())
            results = read_topic(settings, settings.topics.agency_results, min_count=total, timeout=10)
            payments = read_topic(settings, settings.topics.loan_repayments, min_count=report.repayments)
    assert report.cases_worked == 20 and total == len(results) > 0
    assert Counter(r.name for r in results) == Counter(report.results)
    assert {r.key for r in results} <= {f"SIM-{i}".encode() for i in range(20)}
    assert sum(report.violations.values()) > 0
    assert len(payments) == report.repayments > 0
    assert sum(p.data["amount"] for p in payments) == report.repaid_amount  # type: ignore[index]
    assert {p.data["channel"] for p in payments} == {"AGENCY"}  # type: ignore[index]
