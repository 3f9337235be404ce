"""Every topic of the contract (SPEC §2) in one place, with the optional name prefix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

DLQ_SUFFIX = ".dlq"

#: which topic carries each record type that upstream systems, adapters and tooling publish
INPUT_ROUTES = {
    "LoanOpened": "loan.accounts",
    "LoanClosed": "loan.accounts",
    "InstallmentScheduled": "loan.schedules",
    "RepaymentReceived": "loan.repayments",
    "RepaymentReversed": "loan.repayments",
    "BusinessDateChanged": "calendar.business-date",
    "ContactAttempted": "agency.results",
    "PromiseToPay": "agency.results",
    "DisputeRaised": "agency.results",
    "ComplaintReceived": "agency.results",
    "CeaseContactRequested": "agency.results",
    "CaseReturned": "agency.results",
    "ReleaseCase": "collections.commands",
}

RESULT_TYPES = frozenset(
    {"ContactAttempted", "PromiseToPay", "DisputeRaised", "ComplaintReceived", "CeaseContactRequested", "CaseReturned"}
)


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partition count and topic configs."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    optional_config: dict[str, str] = field(default_factory=dict)  # dropped where the broker refuses it


@dataclass(frozen=True)
class TopicNames:
    """Topic names under an optional prefix (``ARREARS_TOPIC_PREFIX``)."""

    prefix: str = ""

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def loan_accounts(self) -> str:
        return self.name("loan.accounts")

    @property
    def loan_schedules(self) -> str:
        return self.name("loan.schedules")

    @property
    def loan_repayments(self) -> str:
        return self.name("loan.repayments")

    @property
    def business_date(self) -> str:
        return self.name("calendar.business-date")

    @property
    def cases(self) -> str:
        return self.name("collections.cases")

    @property
    def case_state(self) -> str:
        return self.name("collections.case-state")

    @property
    def compliance(self) -> str:
        return self.name("collections.compliance")

    @property
    def agency_results(self) -> str:
        return self.name("agency.results")

    @property
    def commands(self) -> str:
        return self.name("collections.commands")

    @property
    def audit(self) -> str:
        """Who saw whose personal data unmasked (PiiAccessed, key customer_id): kept forever."""
        return self.name("collections.audit")

    def work_orders(self, agency_id: str) -> str:
        return self.name(f"agency.{agency_id}.work-orders")

    @staticmethod
    def dlq(topic: str) -> str:
        return f"{topic}{DLQ_SUFFIX}"

    def for_record(self, record_name: str) -> str:
        """The topic an input record type is published to."""
        try:
            return self.name(INPUT_ROUTES[record_name])
        except KeyError:
            raise KeyError(f"{record_name} is not published by upstream systems or adapters") from None

    @property
    def inputs(self) -> tuple[str, ...]:
        """The co-partitioned topics the processor reads; ticks are barriers across all of them."""
        return (self.loan_accounts, self.loan_schedules, self.loan_repayments, self.agency_results, self.commands)

    def resolve(self, topic: str) -> str:
        """Accept a topic name with or without the prefix (barriers may name either)."""
        if self.prefix and not topic.startswith(self.prefix):
            return self.name(topic)
        return topic

    def specs(self, partitions: int, agency_ids: Iterable[str] = ()) -> list[TopicSpec]:
        """Every topic of SPEC §2 with its partitioning and retention."""
        keep_forever = {"retention.ms": "-1", "cleanup.policy": "delete"}
        specs = [TopicSpec(t, partitions, optional_config=keep_forever) for t in self.inputs[:3]]
        specs += [
            TopicSpec(self.business_date, 1, optional_config=keep_forever),
            TopicSpec(self.agency_results, partitions),
            TopicSpec(self.commands, partitions),
            TopicSpec(self.cases, partitions),
            TopicSpec(self.case_state, partitions, optional_config={"cleanup.policy": "compact"}),
            TopicSpec(self.compliance, partitions),
            TopicSpec(self.audit, partitions, optional_config=keep_forever),
        ]
        specs += [TopicSpec(self.work_orders(a), partitions) for a in agency_ids]
        dlqs = [TopicSpec(self.dlq(s.name), s.partitions) for s in specs if s.name in self.dlq_sources(agency_ids)]
        return specs + dlqs

    def dlq_sources(self, agency_ids: Iterable[str] = ()) -> set[str]:
        """Topics whose consumers dead-letter what they cannot use."""
        return {*self.inputs, self.business_date, *(self.work_orders(a) for a in agency_ids)}


def loan_id_of_case(case_id: str) -> str:
    """Case ids are ``<loan_id>:<n>``; the loan id is everything before the last colon."""
    loan_id, sep, number = case_id.rpartition(":")
    if not sep or not loan_id or not number.isdigit():
        raise ValueError(f"case id {case_id!r} is not of the form <loan_id>:<n>")
    return loan_id


def record_key(record_name: str, value: dict[str, object]) -> str:
    """The Kafka key of an input record: its loan id (ticks: the calendar)."""
    if record_name == "BusinessDateChanged":
        return str(value.get("calendar") or "CN")
    if record_name in RESULT_TYPES:
        return loan_id_of_case(str(value["case_id"]))
    return str(value["loan_id"])
