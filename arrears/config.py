"""The YAML configuration of agencies, strategy and contact policy (SPEC §5), as frozen models.

Every model forbids unknown keys, so a typo stops the command with the key's path instead of
being silently ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .domain.allocation import AgencyTerms, AllocationRules
from .domain.buckets import DEFAULT_BUCKETS, BucketScheme
from .domain.commission import CommissionRates
from .domain.compliance_profiles import PROFILES, ContactPolicy
from .domain.settlements import SettlementTerms
from .domain.state import Rules
from .errors import ConfigError

AGENCY_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookTransport(_Frozen):
    type: Literal["webhook"]
    # Declared before url: url's check reads it.
    allow_insecure_http: bool = False  # http:// URLs for local testing and the demo only
    url: str
    # The variable holds the secret, or two comma-separated during a rotation (sign with the
    # first, accept either); read by the adapter at start (consumers.signing.parse_secrets).
    secret_env: str = Field(pattern=_ENV_NAME)
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    backoff_initial_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    # Deliveries in flight at once; each case's events still go one after the other, in order.
    max_in_flight: int = Field(default=8, ge=1, le=256)
    # While the agency refuses our requests as a whole (401, 403, 404, ...), delivery is paused
    # and the refused event is tried again this often.
    paused_retry_seconds: float = Field(default=60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _https_url(cls, value: str, info: ValidationInfo) -> str:
        if value.startswith("https://"):
            return value
        if value.startswith("http://"):
            if info.data.get("allow_insecure_http"):
                return value
            raise ValueError(
                "http:// would send debtors' personal data unencrypted: use an https:// URL "
                "(allow_insecure_http: true in the transport permits http:// for local testing)"
            )
        raise ValueError("expected an https:// URL")


class FilesTransport(_Frozen):
    type: Literal["files"]
    outbox: Path
    inbox: Path
    poll_seconds: float = Field(default=2.0, gt=0)
    # Optional: a file-drop agency may also POST results to the adapter's /results, signed
    # with the secret this variable holds; without it /results answers 404 for this agency.
    secret_env: str | None = Field(default=None, pattern=_ENV_NAME)
    # Whose calendar day names the outbox file the adapter writes to (SPEC §6).
    timezone: str = "UTC"
    # Permissions of the files the agency reads (outbox files, their .done markers, rejected rows):
    # the agency reads the share under its own account, so group/other read by default.
    file_mode: int = 0o644

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("file_mode", mode="before")
    @classmethod
    def _octal_mode(cls, value: Any) -> int:
        return parse_file_mode(value)


def parse_file_mode(value: Any) -> int:
    """A permission mode written as a quoted octal string ("0640"); see FilesTransport.file_mode.

    A bare YAML number is refused: ``0640`` is read as 416 and ``640`` as decimal 640, and a
    wrong guess would silently hand the debtors' data to the wrong readers.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('write the mode as a quoted octal string, e.g. "0644": YAML reads a bare 0644 as 420')
    if not isinstance(value, str) or not re.fullmatch(r"(0o?)?[0-7]{3}", value.strip()):
        raise ValueError('expected an octal permission mode as a quoted string, e.g. "0644" or "0640"')
    mode = int(value.strip().removeprefix("0o").removeprefix("0") or "0", 8)
    if mode & 0o600 != 0o600:
        raise ValueError("the owner (the adapter) must keep read and write permission (e.g. \"0644\", \"0640\")")
    if mode & 0o111:
        raise ValueError("work-order files are data: no execute bits (e.g. \"0644\", \"0640\")")
    return mode


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("expected an IANA timezone name, e.g. Asia/Shanghai or UTC") from None
    return value


Transport = Annotated[WebhookTransport | FilesTransport, Field(discriminator="type")]


Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]  # a fraction: 0.15 is 15%


class Agency(_Frozen):
    id: str
    buckets: tuple[str, ...] = Field(min_length=1)
    capacity: int = Field(ge=0)
    weight: int = Field(default=1, ge=1)
    assignment_days: int = Field(default=30, ge=1)
    transport: Transport
    # SPEC §10: commission rate by bucket (the case's bucket when it was assigned); none: 0.
    commission: dict[str, Share] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_chars(cls, value: str) -> str:
        if not AGENCY_ID.match(value):
            raise ValueError("expected letters, digits, '_' or '-' only ([A-Za-z0-9_-]+)")
        return value


class Policy(_Frozen):
    profile: Literal["CN", "US_REG_F"] = "CN"
    quiet_hours_start: str | None = None
    quiet_hours_end: str | None = None
    max_connected_calls_per_day: int | None = Field(default=None, ge=0)
    max_attempts_per_day: int | None = Field(default=None, ge=0)
    max_attempts_per_week: int | None = Field(default=None, ge=0)
    call_after_conversation_days: int | None = Field(default=None, ge=0)
    emergency_contacts_allowed: bool | None = None
    visits_allowed: bool | None = None
    default_timezone: str | None = None  # used when a debtor's timezone is not a known IANA name
    # third parties only after this many of the debtor's latest calls went unanswered (CN: 3)
    third_party_after_unreachable: int | None = Field(default=None, ge=1)

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        if value is not None and not _HHMM.match(value):
            raise ValueError("expected local time HH:MM, e.g. 22:00")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _iana_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    def contact_policy(self) -> ContactPolicy:
        """The profile's numbers with this config's overrides applied."""
        overrides = {k: v for k, v in self.model_dump(exclude={"profile"}).items() if v is not None}
        return PROFILES[self.profile].with_overrides(**overrides)


class Settlements(_Frozen):
    """SPEC §10: the discounts agencies may settle for, by the case's bucket, and maker-checker."""

    max_discount: dict[str, Share] = Field(default_factory=dict)  # a bucket not listed: no settlements
    approval_above: Share | None = None  # discounts above this need a person's approval; None: none do


Scope = Literal["read", "pii", "act"]


class ApiToken(_Frozen):
    """One bearer token of the query API and the ops page (SPEC §7); its value lives in ``token_env``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]+$")  # recorded in PiiAccessed and in commands it publishes
    token_env: str = Field(pattern=_ENV_NAME)
    scopes: tuple[Scope, ...] = Field(min_length=1)


class Api(_Frozen):
    """Access to the workers' query API: with no tokens it listens on 127.0.0.1 only."""

    tokens: tuple[ApiToken, ...] = ()

    @model_validator(mode="after")
    def _distinct(self) -> Api:
        names: set[str] = set()
        variables: set[str] = set()
        for i, token in enumerate(self.tokens):
            if token.name in names:
                raise ValueError(f"tokens[{i}].name: duplicate token name {token.name!r}")
            if token.token_env in variables:
                raise ValueError(f"tokens[{i}].token_env: {token.token_env} already holds another token")
            names.add(token.name)
            variables.add(token.token_env)
        return self


class ArrearsConfig(_Frozen):
    grace_days: int = Field(default=0, ge=0)
    # Work-order topics carry debtors' personal data to agencies: they are deliveries, not records.
    work_order_retention_days: int = Field(default=30, ge=1)
    calendar: str = "CN"
    buckets: dict[str, int] | None = Field(
        default=None, description="bucket name -> lowest DPD in it; the first must start at 0"
    )
    internal_buckets: tuple[str, ...] = ()
    agencies: tuple[Agency, ...] = ()
    policy: Policy = Policy()
    settlements: Settlements = Settlements()
    api: Api = Api()

    @model_validator(mode="after")
    def _consistent(self) -> ArrearsConfig:
        scheme = self.bucket_scheme()
        known = set(scheme.names)
        for i, name in enumerate(self.internal_buckets):
            if name not in known:
                raise ValueError(f"internal_buckets[{i}]: unknown bucket {name!r} (known: {', '.join(scheme.names)})")
        seen: set[str] = set()
        for i, agency in enumerate(self.agencies):
            if agency.id in seen:
                raise ValueError(f"agencies[{i}].id: duplicate agency id {agency.id!r}")
            seen.add(agency.id)
            for j, name in enumerate(agency.buckets):
                if name not in known:
                    raise ValueError(
                        f"agencies[{i}].buckets[{j}]: unknown bucket {name!r} (known: {', '.join(scheme.names)})"
                    )
            for name in agency.commission:
                if name not in known:
                    raise ValueError(
                        f"agencies[{i}].commission.{name}: unknown bucket {name!r} (known: {', '.join(scheme.names)})"
                    )
        for name in self.settlements.max_discount:
            if name not in known:
                raise ValueError(
                    f"settlements.max_discount.{name}: unknown bucket {name!r} (known: {', '.join(scheme.names)})"
                )
        return self

    @field_validator("buckets")
    @classmethod
    def _bucket_bounds(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is not None:
            BucketScheme.from_mapping(value)  # raises ValueError with the reason
        return value

    def bucket_scheme(self) -> BucketScheme:
        return BucketScheme.from_mapping(self.buckets) if self.buckets else DEFAULT_BUCKETS

    def rules(self, partitions: int) -> Rules:
        """The configuration the pure rules depend on."""
        allocation = AllocationRules(
            agencies=tuple(
                AgencyTerms(a.id, frozenset(a.buckets), a.capacity, a.weight, a.assignment_days) for a in self.agencies
            ),
            internal_buckets=frozenset(self.internal_buckets),
            partitions=partitions,
        )
        settlements = SettlementTerms(tuple(sorted(self.settlements.max_discount.items())),
                                      self.settlements.approval_above)
        commission = CommissionRates(tuple((a.id, tuple(sorted(a.commission.items()))) for a in self.agencies))
        return Rules(buckets=self.bucket_scheme(), grace_days=self.grace_days, allocation=allocation,
                     policy=self.policy.contact_policy(), settlements=settlements, commission=commission)

    def agency(self, agency_id: str) -> Agency:
        for agency in self.agencies:
            if agency.id == agency_id:
                return agency
        known = ", ".join(a.id for a in self.agencies) or "none configured"
        raise ConfigError(f"agencies: no agency with id {agency_id!r} (known: {known})")


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part not in ("webhook", "files", "function-after[_consistent(), ArrearsConfig]"):
                path += f".{part}" if path else str(part)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        got = err.get("input")
        detail = f" (got {got!r})" if err["type"] not in ("extra_forbidden", "missing") and not isinstance(
            got, (dict, list)
        ) else ""
        lines.append(f"{path or '<top>'}: {message}{detail}" if path else f"{message}{detail}")
    return f"invalid config {source}: " + "; ".join(lines)


def parse_config(data: Any, source: str = "<config>") -> ArrearsConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {source}: expected a mapping at the top, got {type(data).__name__}")
    try:
        return ArrearsConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def load_config(path: Path | None) -> ArrearsConfig:
    """Read the YAML file named by ``ARREARS_CONFIG`` (defaults when there is none)."""
    if path is None:
        return ArrearsConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"ARREARS_CONFIG: cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid config {path}: not valid YAML: {exc}") from None
    return parse_config(data, str(path))
