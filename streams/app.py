"""The Faust application: topics, the loans table, the two agents and the web views, in one place.

``build_app`` creates everything when called (nothing connects at import time).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Any

import faust

from arrears.kafka import OffsetReader, create_topics
from arrears.settings import Settings
from arrears.topics import TopicSpec

from . import faust_fixes, lag
from .access import web_bind
from .fanout import CalendarFanout
from .processor import Processor

log = logging.getLogger(__name__)

BATCH_MAX = 2000
BATCH_WITHIN = 0.005  # seconds to wait for more events before processing a batch


@dataclass
class Worker:
    """The app with the objects the web views and tests reach into."""

    app: faust.App
    processor: Processor
    settings: Settings
    ticks_topic: str
    status: str = "starting"

    @property
    def ready(self) -> bool:
        return self.status == "ready" and not self.app.rebalancing


def ticks_topic_name(settings: Settings) -> str:
    return f"{settings.arrears_app_id}-ticks"


def internal_topic_specs(settings: Settings) -> list[TopicSpec]:
    """Topics the worker needs beyond the contract's (created before Faust starts)."""
    return [TopicSpec(ticks_topic_name(settings), settings.arrears_partitions)]


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_ca_location) if settings.kafka_ssl_ca_location else None
        )
        if settings.kafka_ssl_certificate_location:
            context.load_cert_chain(str(settings.kafka_ssl_certificate_location),
                                    str(settings.kafka_ssl_key_location) if settings.kafka_ssl_key_location else None)
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username or "",
            password=password,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def consumer_options(settings: Settings) -> dict[str, Any]:
    """The Faust settings of the worker's broker connection, consumer group and producer.

    Shared with the bench's do-nothing agent, whose ceiling must be measured with the same ones.
    """
    session_timeout = settings.arrears_session_timeout_ms / 1000.0
    settings.arrears_data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "broker": ";".join(f"kafka://{b.strip()}" for b in settings.kafka_bootstrap_servers.split(",")),
        "broker_credentials": _credentials(settings),
        "autodiscover": False,
        "topic_partitions": settings.arrears_partitions,
        "broker_session_timeout": session_timeout,
        "broker_heartbeat_interval": max(0.5, session_timeout / 4),
        "broker_rebalance_timeout": max(10.0, session_timeout * 2),
        "broker_commit_interval": 0.5,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "stream_wait_empty": False,
    }


def build_app(settings: Settings, *, web_port: int = 6066, web_host: str = "127.0.0.1") -> Worker:
    positions: dict[str, Any] = {}
    faust_fixes.apply(
        settings.arrears_fetch_max_wait_ms,
        OffsetReader(settings).end_offsets_of,
        lambda topic, partition: positions["processor"].durable_position(topic, partition)
        if topic != settings.topics.business_date else positions["fanout"].durable_position(),
    )
    store = "rocksdb://" if settings.arrears_store == "rocksdb" else "memory://"
    app = faust.App(
        settings.arrears_app_id,
        **consumer_options(settings),
        store=store,
        datadir=str(settings.arrears_data_dir / f"{settings.arrears_app_id}-{web_port}"),
        topic_allow_declare=True,
        web_port=web_port,
        web_host=web_host,
        web_bind=web_bind(settings),  # 127.0.0.1 unless api.tokens protect the query API (SPEC §7)
        canonical_url=f"http://{web_host}:{web_port}",
        table_standby_replicas=0,
        worker_redirect_stdouts=False,
    )
    ticks_topic = ticks_topic_name(settings)
    loans = app.Table(
        "loans",
        partitions=settings.arrears_partitions,
        key_type=bytes,  # bytes types make Faust use the raw codec for the changelog too
        value_type=bytes,
    )
    processor = Processor(app, settings, loans, ticks_topic)
    lag.instrument(processor)  # batch sizes and processing latency for /metrics
    fanout = CalendarFanout(app, settings, ticks_topic)
    positions.update(processor=processor, fanout=fanout)
    worker = Worker(app, processor, settings, ticks_topic)

    inputs = app.topic(*settings.topics.inputs, ticks_topic, key_serializer="raw", value_serializer="raw")
    calendar = app.topic(settings.topics.business_date, key_serializer="raw", value_serializer="raw")

    async def fail(exc: BaseException) -> None:
        # Our processing never expects an exception: stop the worker rather than go on without
        # an agent (Faust would keep a crashed agent's worker alive). Nothing is lost: what was
        # not committed is redelivered to whoever runs next.
        log.critical("processing failed; stopping the worker", exc_info=exc)
        worker.status = "failed"
        await app.crash(exc)

    @app.agent(inputs, name="ledger")
    async def ledger(stream: Any) -> None:
        try:
            async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
                await processor.handle(events)
        except Exception as exc:
            await fail(exc)
            raise

    @app.agent(calendar, name="calendar-fanout")
    async def calendar_fanout(stream: Any) -> None:
        try:
            async for event in stream.events():
                await fanout.handle(event)
        except Exception as exc:
            await fail(exc)
            raise

    @app.timer(0.2)
    async def release_waiting() -> None:
        try:
            await processor.tick_timer()
        except Exception as exc:
            await fail(exc)
            raise

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        worker.status = "rebalancing"
        await processor.reset()

    @app.on_rebalance_complete.connect
    async def on_complete(sender: Any, **kwargs: Any) -> None:
        await processor.ensure_partitions()
        worker.status = "ready"

    from .ops_page import register_ops_page
    from .web import register_views

    register_views(worker, loans)
    register_ops_page(worker)
    return worker


def prepare_topics(settings: Settings) -> None:
    """Create the contract's topics and the worker's own internal ones when missing."""
    agencies = [a.id for a in settings.config.agencies]
    specs = settings.topics.specs(settings.arrears_partitions, agencies) + internal_topic_specs(settings)
    create_topics(settings, specs)
