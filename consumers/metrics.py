"""Prometheus counters of one adapter, in their own registry (several adapters can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class AdapterMetrics:
    """What ``GET /metrics`` shows: deliveries, retries, dead letters, results accepted and rejected."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, agency_id: str) -> None:
        self.registry = CollectorRegistry()
        self._agency = agency_id
        self.deliveries = Counter(
            "arrears_adapter_deliveries",
            "Work-order events delivered to the agency",
            ["agency", "type"],
            registry=self.registry,
        )
        self.retries = Counter(
            "arrears_adapter_delivery_retries",
            "Webhook attempts that failed transiently and were retried",
            ["agency", "cause"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "arrears_adapter_dead_letters",
            "Work-order messages sent to the dead-letter topic",
            ["agency", "reason"],
            registry=self.registry,
        )
        self.results_accepted = Counter(
            "arrears_adapter_results_accepted",
            "Results published to agency.results",
            ["agency", "source"],
            registry=self.registry,
        )
        self.results_rejected = Counter(
            "arrears_adapter_results_rejected",
            "Result posts or rows refused",
            ["agency", "source", "cause"],
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "arrears_adapter_delivery_seconds",
            "Time from first attempt to delivery or dead letter",
            ["agency"],
            registry=self.registry,
        )
        self.paused_gauge = Gauge(
            "arrears_adapter_paused",
            "1 while delivery to the agency is paused because it refuses our requests as a whole",
            ["agency"],
            registry=self.registry,
        )
        self.pauses = Counter(
            "arrears_adapter_pauses",
            "Times delivery to the agency was paused, by the answer that paused it",
            ["agency", "status"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "arrears_adapter_deliveries_in_flight",
            "Work-order events being delivered right now (at most the transport's max_in_flight)",
            ["agency"],
            registry=self.registry,
        )
        self.assigned_partitions = Gauge(
            "arrears_adapter_assigned_partitions",
            "Work-order partitions this adapter holds",
            ["agency"],
            registry=self.registry,
        )

        # Exported from the start, so an alert on "paused == 1" has a series to watch.
        self.paused_gauge.labels(agency_id).set(0)
        self.in_flight.labels(agency_id).set(0)

    def delivered(self, record_type: str) -> None:
        self.deliveries.labels(self._agency, record_type).inc()

    def retried(self, cause: str) -> None:
        self.retries.labels(self._agency, cause).inc()

    def dead_lettered(self, reason: str) -> None:
        self.dead_letters.labels(self._agency, reason).inc()

    def accepted(self, source: str, count: int) -> None:
        self.results_accepted.labels(self._agency, source).inc(count)

    def rejected(self, source: str, cause: str, count: int = 1) -> None:
        self.results_rejected.labels(self._agency, source, cause).inc(count)

    def timed(self, seconds: float) -> None:
        self.delivery_seconds.labels(self._agency).observe(seconds)

    def paused(self, paused: bool, status: str = "") -> None:
        self.paused_gauge.labels(self._agency).set(1 if paused else 0)
        if paused:
            self.pauses.labels(self._agency, status).inc()

    def delivering(self, count: int) -> None:
        self.in_flight.labels(self._agency).set(count)

    def partitions(self, count: int) -> None:
        self.assigned_partitions.labels(self._agency).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
