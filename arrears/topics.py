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
    # SPEC §10
    "SettlementProposed": "agency.results",
    "PauseDelinquency": "collections.commands",
    "ResumeDelinquency": "collections.commands",
    "ApproveSettlement": "collections.commands",
    "RejectSettlement": "collections.commands",
}

RESULT_TYPES = frozenset(
    {"ContactAttempted", "PromiseToPay", "DisputeRaised", "ComplaintReceived", "CeaseContactRequested", "CaseReturned",
     "SettlementProposed"}
)


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partition count and topic configs."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


KEEP_FOREVER = {"retention.ms": "-1", "cleanup.policy": "delete"}
COMPACTED_FOREVER = {"retention.ms": "-1", "cleanup.policy": "compact"}
#: The processor's tables; each has a changelog topic named ``<app id>-<table>-changelog``.
TABLES = ("loans",)


def ticks_topic(app_id: str) -> str:
    """The processor's per-partition tick markers (internal, named under the app id)."""
    return f"{app_id}-ticks"


def changelog_topic(app_id: str, table: str) -> str:
    """A Faust table's changelog, as Faust names it."""
    return f"{app_id}-{table}-changelog"


def inputs_group(app_id: str) -> str:
    """The consumer group under which the processor records how far it has durably applied its
    input partitions (for lag tooling: its own positions live in its state)."""
    return f"{app_id}-inputs"


@dataclass(frozen=True)
class InternalTopics:
    """The processor's own topics, named under its app id (SPEC §2: its own business)."""

    app_id: str

    @property
    def ticks(self) -> str:
        """Per partition: a marker for every calendar message, with a tick's places in that partition."""
        return ticks_topic(self.app_id)

    @property
    def contacts(self) -> str:
        """Keyed by customer id: every contact, to its debtor's budget (the debtor stage)."""
        return f"{self.app_id}-contacts"

    @property
    def verdicts(self) -> str:
        """Keyed by loan id: the debtor's budget's verdicts, back to the loans they name."""
        return f"{self.app_id}-verdicts"

    @property
    def reports(self) -> str:
        """One partition: every loan partition's placement report after each tick."""
        return f"{self.app_id}-placement"

    @property
    def placements(self) -> str:
        """Per partition: placement's decisions for that partition, tick by tick."""
        return f"{self.app_id}-placements"


def internal_specs(app_id: str, partitions: int) -> list[TopicSpec]:
    """The processor's own topics: its state and what its stages tell each other, kept forever
    (changelogs compacted): a rebuild replays them."""
    names = InternalTopics(app_id)
    return [TopicSpec(names.ticks, partitions, KEEP_FOREVER),
            TopicSpec(names.contacts, partitions, KEEP_FOREVER),
            TopicSpec(names.verdicts, partitions, KEEP_FOREVER),
            TopicSpec(names.reports, 1, KEEP_FOREVER),
            TopicSpec(names.placements, partitions, KEEP_FOREVER),
            *(TopicSpec(changelog_topic(app_id, t), partitions, COMPACTED_FOREVER) for t in TABLES)]


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
    def recoveries(self) -> str:
        """Repayments attributed to agencies with their commission (SPEC §10, key loan_id): kept forever."""
        return self.name("collections.recoveries")

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

    def specs(self, partitions: int, agency_ids: Iterable[str] = (), *,
              work_order_retention_days: int = 30) -> list[TopicSpec]:
        """Every topic of SPEC §2 with its partitioning and retention.

        Topics whose records change state are the system of record a rebuild replays: they
        keep everything. Work orders are deliveries of personal data: they age out.
        """
        agency_ids = list(agency_ids)
        specs = [TopicSpec(t, partitions, KEEP_FOREVER) for t in self.inputs[:3]]
        specs += [
            TopicSpec(self.business_date, 1, KEEP_FOREVER),
            TopicSpec(self.agency_results, partitions, KEEP_FOREVER),
            TopicSpec(self.commands, partitions, KEEP_FOREVER),
            TopicSpec(self.cases, partitions),
            TopicSpec(self.case_state, partitions, {"cleanup.policy": "compact"}),
            TopicSpec(self.compliance, partitions),
            TopicSpec(self.audit, partitions, KEEP_FOREVER),
            TopicSpec(self.recoveries, partitions, KEEP_FOREVER),
        ]
        work_order_retention = {"retention.ms": str(work_order_retention_days * 86_400_000), "cleanup.policy": "delete"}
        specs += [TopicSpec(self.work_orders(a), partitions, work_order_retention) for a in agency_ids]
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


# --------------------------------------------------------------------------- the catalog

@dataclass(frozen=True)
class Party:
    """Who writes or reads a topic; ``arrears`` marks this project's own components."""

    name: str
    arrears: bool = False


@dataclass(frozen=True)
class TopicEntry:
    """One row of SPEC §2: what a topic carries, by which key, between whom.

    ``base`` is the name without the prefix; ``{agency_id}`` stands for an agency's id.
    ``records`` lists every record type the contract puts on the topic, including those of
    later sections (§7, §10) whose ``.avsc`` may not exist yet.
    """

    base: str
    key: str
    records: tuple[str, ...]
    written_by: tuple[Party, ...]
    read_by: tuple[Party, ...]
    summary: str
    spec: str
    co_partitioned: bool = False


PROCESSOR = Party("the processor (`arrears worker`)", arrears=True)
QUERY_API = Party("the query API (`arrears worker`)", arrears=True)
REPORTING = Party("reporting (`arrears report`)", arrears=True)
LOAN_SYSTEMS = Party("loan systems (through the publisher library, `arrears publish` or `arrears fineract-bridge`)")

#: SPEC §2 row by row, with the §10 outputs on ``collections.cases``; the order of the table
TOPIC_CATALOG: tuple[TopicEntry, ...] = (
    TopicEntry(
        base="loan.accounts", key="loan_id", co_partitioned=True, spec="§3",
        records=("LoanOpened", "LoanClosed"),
        written_by=(LOAN_SYSTEMS,), read_by=(PROCESSOR,),
        summary="Loans opened and closed by the lender's loan systems.",
    ),
    TopicEntry(
        base="loan.schedules", key="loan_id", co_partitioned=True, spec="§3",
        records=("InstallmentScheduled",),
        written_by=(LOAN_SYSTEMS,), read_by=(PROCESSOR,),
        summary="Instalments due; re-sending the same (loan_id, installment_no) revises that instalment.",
    ),
    TopicEntry(
        base="loan.repayments", key="loan_id", co_partitioned=True, spec="§3",
        records=("RepaymentReceived", "RepaymentReversed"),
        written_by=(LOAN_SYSTEMS, Party("simulated agencies (`arrears sim-agency`, demo only)", arrears=True)),
        read_by=(PROCESSOR,),
        summary="Money received, and reversals of it.",
    ),
    TopicEntry(
        base="calendar.business-date", key="calendar", spec="§3",
        records=("BusinessDateChanged",),
        written_by=(Party("the loan system's end-of-day (publisher library)"), Party("`arrears clock`", arrears=True)),
        read_by=(PROCESSOR, REPORTING),
        summary="Business-date ticks; each one is a barrier across every input partition.",
    ),
    TopicEntry(
        base="collections.cases", key="loan_id", co_partitioned=True, spec="§4, §5, §10",
        records=("CaseOpened", "CaseDelinquencyChanged", "CaseBalanceChanged", "CaseAssigned", "CaseRecalled",
                 "CaseHeld", "CaseReleased", "PromiseBroken", "PromiseKept", "CaseClosed",
                 "DelinquencyPaused", "DelinquencyResumed", "SettlementApproved", "SettlementRejected",
                 "SettlementPending", "SettlementFulfilled", "SettlementBroken"),
        written_by=(PROCESSOR,), read_by=(Party("the lender's systems"), REPORTING),
        summary="Every transition of every case.",
    ),
    TopicEntry(
        base="collections.case-state", key="case_id", spec="§7",
        records=("CaseState",),
        written_by=(PROCESSOR,), read_by=(QUERY_API, REPORTING),
        summary="The latest snapshot of each case (compacted: one record per case survives).",
    ),
    TopicEntry(
        base="collections.compliance", key="case_id", spec="§6",
        records=("ComplianceViolation",),
        written_by=(PROCESSOR,), read_by=(Party("compliance officers"), REPORTING),
        summary="A finding for every reported contact that breaks a rule of the policy profile.",
    ),
    TopicEntry(
        base="agency.{agency_id}.work-orders", key="case_id", spec="§5",
        records=("WorkOrderIssued", "WorkOrderUpdated", "WorkOrderCancelled"),
        written_by=(PROCESSOR,),
        read_by=(Party("that agency's adapter only (`arrears adapter --agency ID`)", arrears=True),),
        summary="One agency's work orders; its adapter delivers them by signed webhook or file drop.",
    ),
    TopicEntry(
        base="agency.results", key="loan_id", co_partitioned=True, spec="§6, §10",
        records=("ContactAttempted", "PromiseToPay", "DisputeRaised", "ComplaintReceived", "CeaseContactRequested",
                 "CaseReturned", "SettlementProposed"),
        written_by=(Party("agency adapters (`arrears adapter`), from `POST /results` and inbox files", arrears=True),),
        read_by=(PROCESSOR, REPORTING),
        summary="What agencies report about the cases they hold.",
    ),
    TopicEntry(
        base="collections.commands", key="loan_id", co_partitioned=True, spec="§8, §10",
        records=("ReleaseCase", "PauseDelinquency", "ResumeDelinquency", "ApproveSettlement", "RejectSettlement"),
        written_by=(Party("the lender's tooling (`arrears release`, the ops page's release)", arrears=True),),
        read_by=(PROCESSOR,),
        summary="The lender's decisions about cases and loans.",
    ),
    TopicEntry(
        base="collections.audit", key="customer_id", spec="§7",
        records=("PiiAccessed",),
        written_by=(QUERY_API,), read_by=(Party("privacy officers"),),
        summary="Every answer of the query API that showed a debtor's personal data unmasked.",
    ),
    TopicEntry(
        base="collections.recoveries", key="loan_id", co_partitioned=True, spec="§10",
        records=("RecoveryAttributed", "RecoveryReversed"),
        written_by=(PROCESSOR,), read_by=(Party("finance"), Party("agencies' statements (`arrears statement`)",
                                                                    arrears=True)),
        summary="Repayments attributed to the agency that held the case, with its commission.",
    ),
)
