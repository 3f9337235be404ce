"""One agency's adapter (``arrears adapter --agency ID``): work orders out, results in (SPEC §6).

Three threads: the work-order loop (a confluent-kafka consumer of ``agency.<id>.work-orders``
only, group ``arrears-adapter-<id>``), the inbox poller (files transport), and the HTTP
server (``POST /results``, ``/health``, ``/metrics``). The loop commits an offset only once
its event was delivered or dead-lettered, so a crash re-delivers rather than loses, with
the same Idempotency-Key (the event_id).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import SecretStr

from arrears.config import Agency, FilesTransport, WebhookTransport
from arrears.dlq import CONTRACT_VIOLATION, UNEXPECTED_TYPE, dlq_headers
from arrears.errors import BrokerError, ConfigError
from arrears.kafka import client_config, make_producer
from arrears.settings import Settings
from producers.publisher import LoanEventPublisher
from schemas import Codec, CodecError, get_codec, to_json

from .csvformat import WORK_ORDER_TYPES
from .delivery import DeliveryFailure, DeliveryInterrupted, Transport, WorkOrder
from .files import Inbox, Outbox
from .guard import work_order_problem
from .httpserver import BackgroundServer
from .lanes import Job, Lanes, OffsetTracker
from .metrics import AdapterMetrics
from .results import ResultSink
from .results_api import make_app
from .retry import worst_case_seconds
from .signing import SecretsError, parse_secrets
from .webhook import WebhookSender

log = logging.getLogger(__name__)

DEFAULT_PORT = 8081
LANE_BATCH = 200  # messages taken per poll on the webhook path
# The webhook path stops fetching when this many events are taken and not finished (a paused or
# slow agency): memory stays bounded while the consumer keeps its group membership.
MIN_BACKLOG = 500
BACKLOG_PER_LANE = 50


def group_id(settings: Settings, agency_id: str) -> str:
    """``arrears-adapter-<id>``, under the topic prefix so prefixed deployments never share a group."""
    return f"{settings.arrears_topic_prefix}arrears-adapter-{agency_id}"


def agency_secrets(agency: Agency) -> tuple[SecretStr, ...] | None:
    """The agency's secrets from the variable its transport names (None: not configured).

    One secret, or two comma-separated during a rotation: the first signs, either verifies.
    """
    name = agency.transport.secret_env
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise ConfigError(
            f"agencies[{agency.id}].transport.secret_env: environment variable {name} is not set "
            "(it holds the agency's HMAC signing secret)"
        )
    try:
        return tuple(SecretStr(s) for s in parse_secrets(value))
    except SecretsError as exc:
        raise ConfigError(f"agencies[{agency.id}].transport.secret_env: {name} {exc}") from None


def consumer_config(settings: Settings, agency: Agency) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "group.id": group_id(settings, agency.id),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.arrears_session_timeout_ms,
        "heartbeat.interval.ms": max(100, settings.arrears_session_timeout_ms // 3),
    }
    if isinstance(agency.transport, WebhookTransport):
        t = agency.transport
        # Deliveries run in lanes while the loop keeps polling, but the sequential interface
        # (WebhookSender.deliver) may spend an event's whole retry budget between two polls; the
        # group must not evict us for that, or another member would deliver it concurrently.
        budget_ms = int(worst_case_seconds(t.max_attempts, t.timeout_seconds, t.backoff_max_seconds) * 1000)
        extra["max.poll.interval.ms"] = max(300_000, budget_ms + 60_000)
    return client_config(settings, **extra)


class OutboxWriter:
    """The files transport's delivery: rows appended to the outbox file of the day."""

    batch_size = 500  # one append (one write and fsync) per batch, not per event

    def __init__(self, transport: FilesTransport, codec: Codec, metrics: AdapterMetrics) -> None:
        self.outbox = Outbox(transport.outbox, timezone=transport.timezone, file_mode=transport.file_mode)
        self.retry_seconds = transport.poll_seconds
        self.codec = codec
        self.metrics = metrics

    def deliver(self, orders: Sequence[WorkOrder], stop: threading.Event) -> dict[int, DeliveryFailure]:
        events = [to_json(self.codec.catalog, o.name, o.value) for o in orders]
        while True:
            try:
                written = self.outbox.append(events)
                break
            except OSError as exc:
                # A full or unmounted disk is not the event's fault: wait, never dead-letter.
                log.error("cannot write the outbox %s: %s; retrying", self.outbox.directory, exc)
                if stop.wait(self.retry_seconds):
                    raise DeliveryInterrupted("outbox") from exc
        for order in orders:
            self.metrics.delivered(order.name)
        log.info("outbox: %d event(s), %d new row(s)", len(orders), written)
        return {}

    def keep_days(self, stop: threading.Event) -> None:
        """Close each day's file soon after the day ends (its ``.done`` marker), work orders or not."""
        while True:
            try:
                self.outbox.roll()
            except OSError as exc:
                log.error("cannot close the outbox day in %s: %s; retrying", self.outbox.directory, exc)
            if stop.wait(min(self.retry_seconds, 30.0)):
                return

    def close(self) -> None:
        pass


class WorkOrderLoop:
    """Consume the agency's work-order topic, deliver, dead-letter, commit; in partition order."""

    def __init__(
        self, settings: Settings, agency: Agency, transport: Transport, codec: Codec, metrics: AdapterMetrics
    ) -> None:
        self.settings = settings
        self.agency = agency
        self.transport = transport
        self.codec = codec
        self.metrics = metrics
        self.topic = settings.topics.work_orders(agency.id)
        self.dlq_topic = settings.topics.dlq(self.topic)
        self.assigned: set[tuple[str, int]] = set()
        self.rebalanced = threading.Event()
        self._dlq_failures: list[str] = []
        # The webhook path's state (see _run_lanes); the rebalance callbacks reach it.
        self._tracker = OffsetTracker()
        self._aborts: dict[int, threading.Event] = {}
        self._lanes_state: tuple[Consumer, Any, Lanes] | None = None

    def run(self, stop: threading.Event) -> None:
        consumer = Consumer(consumer_config(self.settings, self.agency))
        producer = make_producer(self.settings)
        consumer.subscribe(
            [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        log.info(
            "adapter %s consuming %s as group %s",
            self.agency.id,
            self.topic,
            group_id(self.settings, self.agency.id),
        )
        try:
            if isinstance(self.transport, WebhookSender):
                self._run_lanes(consumer, producer, self.transport, stop)
                return
            while not stop.is_set():
                messages = consumer.consume(self.transport.batch_size, 0.5)
                if not messages:
                    continue
                try:
                    self._handle(messages, producer, stop)
                except DeliveryInterrupted:
                    log.info(
                        "adapter %s stopping mid-delivery; the batch will be re-delivered", self.agency.id
                    )
                    return
                self._commit(consumer, messages)
        finally:
            consumer.close()
            producer.flush(10)

    # ------------------------------------------------------------------ webhooks: lanes in parallel
    def _run_lanes(self, consumer: Consumer, producer: Any, sender: WebhookSender, stop: threading.Event) -> None:
        """Consume, hand each event to its case's lane, dead-letter and commit as lanes finish."""
        lanes = Lanes(sender.post, sender.max_in_flight, self.metrics.delivering, f"deliver-{self.agency.id}")
        self._tracker = OffsetTracker()
        self._aborts: dict[int, threading.Event] = {}
        self._lanes_state = (consumer, producer, lanes)
        backlog_limit = max(MIN_BACKLOG, BACKLOG_PER_LANE * sender.max_in_flight)
        held_back = False
        try:
            while not stop.is_set():
                self._finish_completed(lanes, producer)
                self._commit_positions(consumer, self._tracker.committable())
                backlog = self._tracker.backlog()
                if backlog >= backlog_limit and not held_back:
                    consumer.pause(consumer.assignment())  # keep polling (group membership), fetch nothing
                    held_back = True
                elif held_back and backlog < backlog_limit // 2:
                    consumer.resume(consumer.assignment())
                    held_back = False
                messages = consumer.consume(LANE_BATCH, 0.1)
                if messages:
                    self._admit(messages, producer, lanes)
        finally:
            for abort in self._aborts.values():
                abort.set()
            lanes.close()
            self._finish_completed(lanes, producer)
            self._commit_positions(consumer, self._tracker.committable())
            self._lanes_state = None

    def _admit(self, messages: list[Message], producer: Any, lanes: Lanes) -> None:
        refused: list[tuple[int, int, int]] = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise BrokerError(f"consumer of {self.topic} failed: {err.str()}")
                log.warning("consumer of %s: %s", self.topic, err.str())
                continue
            _, partition, offset = _coordinates(msg)
            self._tracker.take(partition, offset)
            generation = self._tracker.generation(partition)
            order = self._decode(msg, producer)
            if order is None:
                refused.append((partition, offset, generation))
                continue
            abort = self._aborts.setdefault(partition, threading.Event())
            key = (msg.key() or b"").decode("utf-8", "replace") or order.event_id
            lanes.submit(Job(key, partition, offset, generation, order, abort, msg))
        if refused:
            self._await_dead_letters(producer)
            for partition, offset, generation in refused:
                self._tracker.finish(partition, offset, generation)

    def _decode(self, msg: Message, producer: Any) -> WorkOrder | None:
        """The work order in *msg*, or None after dead-lettering what must not be sent."""
        try:
            decoded = self.codec.decode(msg.value())
        except CodecError as exc:
            self._dead_letter(producer, msg, exc.reason, str(exc))
            return None
        if decoded.name not in WORK_ORDER_TYPES:
            self._dead_letter(producer, msg, UNEXPECTED_TYPE, f"{decoded.name} on a work-order topic")
            return None
        problem = work_order_problem(decoded.name, decoded.value, self.agency.id)
        if problem is not None:
            self._dead_letter(producer, msg, CONTRACT_VIOLATION, problem)
            return None
        return WorkOrder(*_coordinates(msg), decoded.name, decoded.value)

    def _finish_completed(self, lanes: Lanes, producer: Any, partitions: set[int] | None = None) -> None:
        """Dead-letter what failed, then mark finished what was delivered or dead-lettered."""
        finished: list[tuple[int, int, int]] = []
        dead = False
        for done in lanes.drain():
            job = done.job
            if done.error is not None:
                raise done.error
            if done.interrupted or not self._tracker.tracks(job.partition, job.generation):
                continue  # revoked or stopping: whoever owns the partition next delivers it again
            if done.failure is not None:
                self._dead_letter(producer, job.source, done.failure.reason, done.failure.error, job.order)
                dead = True
            finished.append((job.partition, job.offset, job.generation))
        if dead:
            self._await_dead_letters(producer)
        for partition, offset, generation in finished:
            self._tracker.finish(partition, offset, generation)

    def _commit_positions(self, consumer: Consumer, positions: dict[int, int]) -> None:
        if not positions:
            return
        offsets = [TopicPartition(self.topic, p, o) for p, o in positions.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("commit of %s failed (%s); those events will be re-delivered", offsets, exc)
            return
        self._tracker.committed(positions)

    def _handle(self, messages: list[Message], producer: Any, stop: threading.Event) -> None:
        orders: list[tuple[Message, WorkOrder]] = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise BrokerError(f"consumer of {self.topic} failed: {err.str()}")
                log.warning("consumer of %s: %s", self.topic, err.str())
                continue
            try:
                decoded = self.codec.decode(msg.value())
            except CodecError as exc:
                self._dead_letter(producer, msg, exc.reason, str(exc))
                continue
            if decoded.name not in WORK_ORDER_TYPES:
                self._dead_letter(producer, msg, UNEXPECTED_TYPE, f"{decoded.name} on a work-order topic")
                continue
            problem = work_order_problem(decoded.name, decoded.value, self.agency.id)
            if problem is not None:
                self._dead_letter(producer, msg, CONTRACT_VIOLATION, problem)
                continue
            orders.append((msg, WorkOrder(*_coordinates(msg), decoded.name, decoded.value)))
        if orders:
            failures = self.transport.deliver([o for _, o in orders], stop)
            for index, failure in sorted(failures.items()):
                msg, order = orders[index]
                self._dead_letter(producer, msg, failure.reason, failure.error, order)
        self._await_dead_letters(producer)

    def _dead_letter(
        self, producer: Any, msg: Message, reason: str, error: str, order: WorkOrder | None = None
    ) -> None:
        raw = msg.headers() or []
        pairs = raw.items() if isinstance(raw, dict) else raw
        original = [(k, v) for k, v in pairs if isinstance(v, bytes)]
        headers = dlq_headers(reason, error, *_coordinates(msg), original)

        def on_delivery(err: KafkaError | None, _m: Message) -> None:
            if err is not None:
                self._dlq_failures.append(err.str())

        producer.produce(self.dlq_topic, msg.value(), msg.key(), headers=headers, on_delivery=on_delivery)
        self.metrics.dead_lettered(reason)
        topic, partition, offset = _coordinates(msg)
        what = order.ids if order else f"{topic}[{partition}]@{offset}"
        log.warning("dead-lettered %s to %s: %s (%s)", what, self.dlq_topic, reason, error,
                    extra={"agency_id": self.agency.id, "topic": topic, "partition": partition, "offset": offset,
                           "reason": reason})

    def _await_dead_letters(self, producer: Any) -> None:
        """Block until the dead letters are on the broker: only then may the offsets move."""
        remaining = producer.flush(60)
        failures, self._dlq_failures = self._dlq_failures, []
        if remaining or failures:
            raise BrokerError(
                f"cannot write to {self.dlq_topic}: {failures or f'{remaining} unacknowledged'}"
            )

    def _commit(self, consumer: Consumer, messages: list[Message]) -> None:
        ends: dict[int, int] = {}
        for msg in messages:
            if msg.error() is None:
                _, partition, offset = _coordinates(msg)
                ends[partition] = max(ends.get(partition, -1), offset + 1)
        if not ends:
            return
        offsets = [TopicPartition(self.topic, p, o) for p, o in ends.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # The partition moved to another member during delivery: it will redeliver from the
            # last commit, and the agency sees the same Idempotency-Key again. Not fatal.
            log.warning("commit of %s failed (%s); those events will be re-delivered", offsets, exc)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._lanes_state is not None:
            for p in partitions:
                self._tracker.assign(p.partition)
                self._aborts[p.partition] = threading.Event()
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        self.metrics.partitions(len(self.assigned))
        self.rebalanced.set()
        log.info("adapter %s assigned %s", self.agency.id, sorted(p for _, p in self.assigned))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._lanes_state is not None:
            # Stop the lanes of these partitions, keep what they finished, and let them go: the
            # next owner re-delivers the rest from the committed position.
            consumer, producer, lanes = self._lanes_state
            revoked = {p.partition for p in partitions}
            for partition in revoked:
                self._aborts.pop(partition, threading.Event()).set()
            self._finish_completed(lanes, producer)
            self._commit_positions(consumer, self._tracker.committable(revoked))
            for partition in revoked:
                self._tracker.forget(partition)
        self.assigned -= {(p.topic, p.partition) for p in partitions}
        self.metrics.partitions(len(self.assigned))


def _coordinates(msg: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message (only error events lack them)."""
    return str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0)


class InboxPoller:
    """The files transport's way in: result files from the inbox, published acknowledged."""

    def __init__(
        self, transport: FilesTransport, inbox: Inbox, sink: ResultSink, metrics: AdapterMetrics
    ) -> None:
        self.poll_seconds = transport.poll_seconds
        self.inbox = inbox
        self.sink = sink
        self.metrics = metrics

    def poll_once(self) -> int:
        """Process every waiting file; return how many were filed away."""
        done = 0
        for path in self.inbox.pending():
            try:
                outcome = self.inbox.process(path, self.sink.publish_batch)
            except OSError as exc:
                log.error("inbox file %s: %s; will retry", path.name, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - PublishError and kin: leave the file, try later
                log.error("inbox file %s not published (%s); will retry", path.name, exc)
                continue
            if outcome.file_error:
                self.metrics.rejected("files", "file")
            self.metrics.accepted("files", outcome.accepted)
            if outcome.rejected:
                self.metrics.rejected("files", "invalid", outcome.rejected)
            done += 1
        return done

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll_once()
            stop.wait(self.poll_seconds)


class Adapter:
    """One agency's adapter: work-order loop, inbox poller (files) and HTTP server, as threads."""

    def __init__(
        self,
        settings: Settings,
        agency_id: str,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
    ) -> None:
        self.settings = settings
        self.agency = settings.config.agency(agency_id)
        self.codec = get_codec(settings.schema_registry_url)
        self.metrics = AdapterMetrics(agency_id)
        transport = self.agency.transport
        self.secrets = agency_secrets(self.agency)  # fail before connecting when they are missing
        self.publisher = LoanEventPublisher(settings, codec=self.codec)
        self.sink = ResultSink(self.publisher)
        self.transport: Transport
        self.poller: InboxPoller | None = None
        if isinstance(transport, WebhookTransport):
            assert self.secrets is not None  # webhook transports always name a secret
            self.transport = WebhookSender(transport, [s.get_secret_value() for s in self.secrets],
                                           self.codec.catalog, self.metrics, agency_id=agency_id)
        else:
            self.transport = OutboxWriter(transport, self.codec, self.metrics)
            inbox = Inbox(transport.inbox, self.codec.catalog, agency_id, file_mode=transport.file_mode)
            self.poller = InboxPoller(transport, inbox, self.sink, self.metrics)
        self.loop = WorkOrderLoop(settings, self.agency, self.transport, self.codec, self.metrics)
        self.server = BackgroundServer(self._app, host, port)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.error: BaseException | None = None

    def _app(self) -> Any:
        return make_app(
            agency_id=self.agency.id,
            secrets=[s.get_secret_value() for s in self.secrets] if self.secrets else None,
            catalog=self.codec.catalog,
            sink=self.sink,
            metrics=self.metrics,
            health=self.health,
        )

    @property
    def url(self) -> str:
        return self.server.url

    def health(self) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "agency": self.agency.id,
            "transport": self.agency.transport.type,
            "partitions": sorted(p for _, p in self.loop.assigned),
        }
        if self.error is not None:
            return 503, {**body, "status": "failed", "error": str(self.error)}
        if not self.loop.rebalanced.is_set():
            return 503, {**body, "status": "starting"}
        gate = getattr(self.transport, "gate", None)
        if gate is not None and gate.paused is not None:
            # The process is healthy (no restart would help); the agency is not taking deliveries.
            body["delivery"] = f"paused: {gate.paused}"
        return 200, {**body, "status": "ready"}

    def _guard(self, name: str, target: Any) -> threading.Thread:
        def run() -> None:
            try:
                target(self._stop)
            except BaseException as exc:  # recorded; run_adapter turns it into the exit status
                log.exception("adapter %s: %s thread failed", self.agency.id, name)
                self.error = exc
                self._stop.set()

        thread = threading.Thread(target=run, name=f"adapter-{self.agency.id}-{name}", daemon=True)
        thread.start()
        return thread

    def start(self) -> Adapter:
        self.server.start()
        self._threads.append(self._guard("work-orders", self.loop.run))
        if self.poller is not None:
            self._threads.append(self._guard("inbox", self.poller.run))
        if isinstance(self.transport, OutboxWriter):
            self._threads.append(self._guard("outbox-days", self.transport.keep_days))
        log.info("adapter %s (%s) serving %s", self.agency.id, self.agency.transport.type, self.url)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the loop holds its partitions (tests and the demo publish after this)."""
        deadline = time.monotonic() + timeout
        while not self.loop.rebalanced.wait(0.1):
            if self.error is not None or time.monotonic() > deadline:
                raise BrokerError(
                    f"adapter {self.agency.id} not ready: {self.error or 'no partitions assigned'}"
                )

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self.server.stop()
        self.transport.close()
        try:
            self.sink.close()
        except Exception as exc:  # noqa: BLE001 - closing after a broker failure must not mask it
            log.error("adapter %s: results publisher closed with an error: %s", self.agency.id, exc)

    def __enter__(self) -> Adapter:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def run_adapter(
    settings: Settings, agency_id: str, *, host: str = "0.0.0.0", port: int = DEFAULT_PORT
) -> int:  # noqa: S104
    """Run until SIGINT/SIGTERM or a fatal error; the exit status of ``arrears adapter``."""
    import signal

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per POST is our own log's job
    adapter = Adapter(settings, agency_id, host=host, port=port)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: adapter.stopping.set())
    adapter.start()
    try:
        while not adapter.stopping.wait(0.5):
            pass
    finally:
        adapter.stop()
    if adapter.error is not None:
        log.error("adapter %s stopped: %s", agency_id, adapter.error)
        return 1
    return 0
