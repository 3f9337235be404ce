"""Simulated collection agencies for the demo and the tests: one over HTTP, one by file drop.

Both keep a :class:`~consumers.simplan.CaseBook` of the work orders they received and, once
per business day, report what :func:`~consumers.simplan.plan_book` says happened: the HTTP
agency POSTs results to its adapter's ``/results``; the file-drop agency writes a CSV into the
inbox. Debtors who pay do so as ``RepaymentReceived`` (channel ``AGENCY``) on
``loan.repayments``. Drive a day with :meth:`SimulatedAgency.work_day`, or let
:func:`follow_calendar` call it at every business-date tick.

The HTTP agency also misbehaves on request (:class:`HttpBehaviour`): 503 for the first N
deliveries of each key, always some status, or slow answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiohttp import web

from arrears.errors import ArrearsError
from arrears.settings import Settings
from producers.publisher import LoanEventPublisher
from schemas import CodecError, from_json, get_codec

from .csvformat import RESULT_COLUMNS, WORK_ORDER_TYPES, flatten, render_csv, unflatten
from .files import atomic_write, read_outbox_rows
from .httpserver import BackgroundServer
from .signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, parse_secrets, sign, verify
from .simplan import CaseBook, DayPlan, SimProfile, plan_book

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DayReport:
    """What an agency reported on one business day (for the demo's summary)."""

    agency_id: str
    day: dt.date
    cases_worked: int
    results: dict[str, int]  # by record type
    contacts: int
    violations: dict[str, int]  # rule breaks injected on purpose, by rule
    repayments: int
    repaid_amount: int


class SimulatedAgency:
    """The part both simulated agencies share: the case book, the day's plan, repayments."""

    def __init__(
        self,
        agency_id: str,
        *,
        seed: str = "arrears",
        profile: SimProfile | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.agency_id = agency_id
        self.seed = seed
        self.profile = profile or SimProfile()
        self.settings = settings
        self.book = CaseBook()
        self.lock = threading.Lock()
        self.reports: list[DayReport] = []
        self._publisher: LoanEventPublisher | None = None

    def work_day(self, day: dt.date) -> DayReport:
        """Work every active case for business day *day*; report the results and publish repayments.

        Returns once the adapter accepted the results (HTTP: 202; files: the file is in the
        inbox) and the broker acknowledged the repayments.
        """
        self.refresh()
        with self.lock:
            cases = self.book.active()
        plan, updated = plan_book(cases, day, agency_id=self.agency_id, seed=self.seed, profile=self.profile)
        with self.lock:
            for case in updated:
                self.book.update(case)
        if plan.results:
            self.report(day, plan.results)
        self._pay(plan.repayments)
        report = self._summarise(day, len(cases), plan)
        self.reports.append(report)
        log.info(
            "agency %s worked %s: %d case(s), %d result(s), %d repayment(s)",
            self.agency_id,
            day,
            len(cases),
            len(plan.results),
            len(plan.repayments),
        )
        return report

    def refresh(self) -> None:
        """Pick up work orders not pushed to us (the file-drop agency reads its outbox)."""

    def report(self, day: dt.date, results: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _pay(self, repayments: list[dict[str, Any]]) -> None:
        if not repayments:
            return
        if self.settings is None:
            log.info(
                "agency %s: %d repayment(s) not published (no settings)", self.agency_id, len(repayments)
            )
            return
        if self._publisher is None:
            self._publisher = LoanEventPublisher(self.settings)
        for value in repayments:
            self._publisher.publish("RepaymentReceived", value)
        self._publisher.flush()

    def _summarise(self, day: dt.date, cases: int, plan: DayPlan) -> DayReport:
        kinds = Counter(r["type"] for r in plan.results)
        return DayReport(
            self.agency_id,
            day,
            cases,
            dict(kinds),
            kinds.get("ContactAttempted", 0),
            dict(Counter(plan.violations)),
            len(plan.repayments),
            sum(int(r["amount"]) for r in plan.repayments),
        )

    def active_work_orders(self) -> set[str]:
        with self.lock:
            return set(self.book.cases)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None


# --------------------------------------------------------------------------- HTTP
@dataclass
class HttpBehaviour:
    """Failure modes of the HTTP agency (mutable: a test may change them mid-run)."""

    fail_first: int = 0  # answer fail_status to the first N deliveries of each Idempotency-Key
    fail_status: int = 503
    always_status: int | None = None  # answer this to every delivery (500: down; 400: refuses all)
    delay_seconds: float = 0.0  # answer this late (a slow agency)
    retry_after: str | None = None  # Retry-After header sent with failures
    status_for: Callable[[Mapping[str, Any]], int | None] | None = None  # per-body override
    delay_for: Callable[[Mapping[str, Any]], float] | None = None  # per-body delay (one slow case)


@dataclass(frozen=True)
class Delivery:
    """One webhook request the agency received, and what it answered."""

    key: str | None
    body: bytes
    status: int
    signature_ok: bool
    attempt: str | None
    received_at: float


class HttpAgency(SimulatedAgency):
    """An agency with a webhook endpoint (``POST <path>``) that reports to its adapter over HTTP."""

    def __init__(
        self,
        agency_id: str,
        secret: str,
        *,
        adapter_url: str | None = None,
        seed: str = "arrears",
        profile: SimProfile | None = None,
        behaviour: HttpBehaviour | None = None,
        settings: Settings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/work-orders",
    ) -> None:
        super().__init__(agency_id, seed=seed, profile=profile, settings=settings)
        # "NEW" or "NEW,OLD" during a rotation: sign with the first, accept either (like the adapter).
        self.secrets = parse_secrets(secret)
        self.adapter_url = adapter_url
        self.behaviour = behaviour or HttpBehaviour()
        self.path = path
        self.deliveries: list[Delivery] = []
        self._attempts: Counter[str] = Counter()
        self.server = BackgroundServer(self._app, host, port)
        self._client = httpx.Client(timeout=30.0)

    # -- the webhook endpoint
    def _app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post(self.path, self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        key = request.headers.get(IDEMPOTENCY_HEADER)
        signed = bool(verify(self.secrets, body, request.headers.get(SIGNATURE_HEADER), time.time()))
        behaviour = self.behaviour
        delay = behaviour.delay_seconds
        if behaviour.delay_for is not None:
            try:
                delay += behaviour.delay_for(json.loads(body))
            except ValueError:
                pass
        if delay:
            await asyncio.sleep(delay)
        status, obj = self._decide(body, key, signed, behaviour)
        with self.lock:
            self.deliveries.append(
                Delivery(
                    key, body, status, signed, request.headers.get("X-Arrears-Attempt"), time.monotonic()
                )
            )
            if 200 <= status < 300 and obj is not None:
                self.book.apply(obj)
        headers = {"Retry-After": behaviour.retry_after} if status >= 400 and behaviour.retry_after else None
        return web.json_response({"status": status}, status=status, headers=headers)

    def _decide(
        self, body: bytes, key: str | None, signed: bool, behaviour: HttpBehaviour
    ) -> tuple[int, dict[str, Any] | None]:
        if not signed:
            return 401, None
        if not key:
            return 400, None
        try:
            obj = json.loads(body)
            from_json(get_codec().catalog, obj, allowed=set(WORK_ORDER_TYPES))
        except (ValueError, CodecError):
            return 400, None
        if obj.get("event_id") != key:
            return 400, None
        with self.lock:
            self._attempts[key] += 1
            attempt = self._attempts[key]
        if behaviour.always_status is not None:
            return behaviour.always_status, obj
        if attempt <= behaviour.fail_first:
            return behaviour.fail_status, obj
        if behaviour.status_for is not None:
            override = behaviour.status_for(obj)
            if override is not None:
                return override, obj
        return 200, obj

    # -- what tests and the demo look at
    @property
    def webhook_url(self) -> str:
        return f"{self.server.url}{self.path}"

    def accepted(self) -> dict[str, list[bytes]]:
        """Bodies answered 2xx, by Idempotency-Key (exactly once per key when all went well)."""
        with self.lock:
            out: dict[str, list[bytes]] = {}
            for d in self.deliveries:
                if 200 <= d.status < 300 and d.key:
                    out.setdefault(d.key, []).append(d.body)
            return out

    def received(self) -> dict[str, list[bytes]]:
        """Every signed body received, answered or failed, by Idempotency-Key."""
        with self.lock:
            out: dict[str, list[bytes]] = {}
            for d in self.deliveries:
                if d.key and d.signature_ok:
                    out.setdefault(d.key, []).append(d.body)
            return out

    def wait_for(self, predicate: Callable[[HttpAgency], bool], timeout: float = 30.0) -> bool:
        """Poll *predicate* until it holds (True) or *timeout* passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return predicate(self)

    def wait_idle(self, quiet: float = 1.0, timeout: float = 60.0) -> None:
        """Wait until no delivery arrived for *quiet* seconds (the demo calls this before a day)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                last = self.deliveries[-1].received_at if self.deliveries else 0.0
            if time.monotonic() - last >= quiet:
                return
            time.sleep(0.05)

    # -- reporting to the adapter
    def report(self, day: dt.date, results: list[dict[str, Any]]) -> None:
        if self.adapter_url is None:
            raise ArrearsError(f"agency {self.agency_id}: no adapter_url to report results to")
        post_results(self._client, self.adapter_url, self.secrets[0], results)

    def start(self) -> HttpAgency:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self._client.close()
        self.close()

    def __enter__(self) -> HttpAgency:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def post_results(
    client: httpx.Client,
    adapter_url: str,
    secret: str,
    results: list[dict[str, Any]],
    *,
    batch: int = 200,
    attempts: int = 6,
) -> int:
    """POST results to ``<adapter_url>/results`` in signed batches; retry 503 and connection errors."""
    url = adapter_url.rstrip("/") + "/results"
    sent = 0
    for start in range(0, len(results), batch):
        body = json.dumps(results[start : start + batch], ensure_ascii=False, separators=(",", ":")).encode()
        for attempt in range(1, attempts + 1):
            # Signed at each attempt: the adapter refuses a t more than 300 s from its clock.
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body, int(time.time()))}
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 202:
                    sent += int(response.json()["accepted"])
                    break
                if response.status_code < 500:
                    raise ArrearsError(
                        f"{url} refused results: HTTP {response.status_code} {response.text[:300]}"
                    )
                problem = f"HTTP {response.status_code}"
            if attempt == attempts:
                raise ArrearsError(f"{url}: results not accepted after {attempts} attempts ({problem})")
            time.sleep(min(5.0, 0.2 * 2 ** (attempt - 1)))
    return sent


# --------------------------------------------------------------------------- files
class FileDropAgency(SimulatedAgency):
    """An agency that reads the outbox CSVs and answers with a result CSV in the inbox."""

    def __init__(
        self,
        agency_id: str,
        outbox: Path,
        inbox: Path,
        *,
        seed: str = "arrears",
        profile: SimProfile | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(agency_id, seed=seed, profile=profile, settings=settings)
        self.outbox = Path(outbox)
        self.inbox = Path(inbox)
        self.rows_read = 0
        self.read_to: dict[str, int] = {}  # outbox file -> bytes read
        self.files_written: list[Path] = []

    def refresh(self) -> None:
        self.read_outbox()

    def read_outbox(self) -> int:
        """Apply the outbox rows not seen yet (by event_id); return how many were new.

        Reads each day's file from where the last read stopped, whole rows only (the adapter may
        be appending a batch right now), as docs/agencies.md tells agencies reading during the day.
        """
        catalog = get_codec().catalog
        new = 0
        for path in sorted(self.outbox.glob("work-orders-*.csv")):
            rows, self.read_to[path.name] = read_outbox_rows(path, self.read_to.get(path.name, 0))
            for row in rows:
                obj = unflatten(catalog, row["type"], row)
                with self.lock:
                    new += self.book.apply(obj)
        self.rows_read += new
        return new

    def report(self, day: dt.date, results: list[dict[str, Any]]) -> None:
        name = f"results-{self.agency_id}-{day.isoformat()}.csv"
        path = self.inbox / name
        n = 1
        while path.exists() or (self.inbox / "processed" / path.name).exists():
            path = self.inbox / f"results-{self.agency_id}-{day.isoformat()}-{n}.csv"
            n += 1
        atomic_write(path, results_csv(results).encode("utf-8"))
        self.files_written.append(path)


def results_csv(results: Iterable[Mapping[str, Any]]) -> str:
    """Results in JSON form as an inbox CSV (header row, the result columns)."""
    return render_csv(RESULT_COLUMNS, (flatten(r) for r in results))


# --------------------------------------------------------------------------- calendar
def follow_calendar(
    settings: Settings,
    agency: SimulatedAgency,
    stop: threading.Event,
    *,
    settle_seconds: float = 2.0,
    from_beginning: bool = False,
) -> None:
    """Work a day at every new business date on ``calendar.business-date`` until *stop* is set.

    The agency waits *settle_seconds* after the tick so the work orders it causes can arrive
    first; timing-dependent, so the demo that wants exact runs calls ``work_day`` itself.
    """
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

    from arrears.kafka import client_config

    codec = get_codec(settings.schema_registry_url)
    topic = settings.topics.business_date
    consumer = Consumer(
        client_config(settings, **{"group.id": f"sim-agency-{agency.agency_id}", "enable.auto.commit": False})
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING if from_beginning else OFFSET_END)])
    last: dt.date | None = None
    try:
        while not stop.is_set():
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            try:
                decoded = codec.decode(msg.value())
            except CodecError:
                continue
            if decoded.name != "BusinessDateChanged" or decoded.value["calendar"] != settings.config.calendar:
                continue
            day = decoded.value["business_date"]
            if last is not None and day <= last:
                continue
            if stop.wait(settle_seconds):
                return
            last = day
            agency.work_day(day)
    finally:
        consumer.close()


def make_agency(
    settings: Settings,
    agency_id: str,
    *,
    adapter_url: str | None = None,
    seed: str = "arrears",
    profile: SimProfile | None = None,
) -> SimulatedAgency:
    """The simulated agency a config entry describes: HTTP on its webhook URL's port, or file drop."""
    from arrears.config import WebhookTransport

    from .adapter import agency_secrets

    agency = settings.config.agency(agency_id)
    transport = agency.transport
    if isinstance(transport, WebhookTransport):
        url = urlsplit(transport.url)
        secrets = agency_secrets(agency)
        assert secrets is not None
        return HttpAgency(
            agency_id,
            ",".join(s.get_secret_value() for s in secrets),
            adapter_url=adapter_url,
            seed=seed,
            profile=profile,
            settings=settings,
            host=url.hostname or "127.0.0.1",
            port=url.port or (443 if url.scheme == "https" else 80),
            path=url.path or "/",
        )
    return FileDropAgency(
        agency_id, transport.outbox, transport.inbox, seed=seed, profile=profile, settings=settings
    )


def run_simulated_agency(
    settings: Settings,
    agency_id: str,
    *,
    adapter_url: str | None,
    seed: str,
    violation_rate: float,
    settle_seconds: float,
    from_beginning: bool,
) -> int:
    """``arrears sim-agency``: serve (HTTP) and work a day at every tick until SIGINT/SIGTERM."""
    import signal

    agency = make_agency(
        settings,
        agency_id,
        adapter_url=adapter_url,
        seed=seed,
        profile=SimProfile(violation_rate=violation_rate),
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if isinstance(agency, HttpAgency):
        agency.start()
        log.info("simulated agency %s receiving work orders at %s", agency_id, agency.webhook_url)
    try:
        follow_calendar(settings, agency, stop, settle_seconds=settle_seconds, from_beginning=from_beginning)
    finally:
        if isinstance(agency, HttpAgency):
            agency.stop()
        else:
            agency.close()
    return 0
