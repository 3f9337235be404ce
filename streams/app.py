"""The Faust application: topics, the loans table, the two agents and the web views, in one place.

``build_app`` creates everything when called (nothing connects at import time). The web layer
(query API, ops page) sits on top of it and depends on it, never the other way round:
:func:`streams.service.build_worker` adds it.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import faust

from arrears.kafka import OffsetReader, check_topics, create_topics
from arrears.settings import Settings
from arrears.topics import InternalTopics, TopicSpec, internal_specs, ticks_topic

from . import faust_fixes
from .processor import Processor

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """The app with the objects the web views and tests reach into."""

    app: faust.App
    processor: Processor
    settings: Settings
    ticks_topic: str
    table: Any = None
    status: str = "starting"

    @property
    def ready(self) -> bool:
        return self.status == "ready" and not self.app.rebalancing


LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - only with tokens configured


def web_bind(settings: Settings) -> str:
    """Where the worker's web server listens: everywhere only when tokens protect the query API (SPEC §7)."""
    return ALL_INTERFACES if settings.config.api.tokens else LOOPBACK


def ticks_topic_name(settings: Settings) -> str:
    return ticks_topic(settings.arrears_app_id)


def internal_topic_specs(settings: Settings) -> list[TopicSpec]:
    """Topics the worker needs beyond the contract's (created before Faust starts, kept forever)."""
    return internal_specs(settings.arrears_app_id, settings.arrears_partitions)


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


def rocksdb_options(settings: Settings) -> dict[str, int]:
    """Bound what RocksDB holds in memory per table partition (two memtables and a block cache),
    so that a worker's resident memory does not grow with its book (issue 15)."""
    mb = 1024 * 1024
    return {"write_buffer_size": settings.arrears_rocksdb_write_buffer_mb * mb, "max_write_buffer_number": 2,
            "block_cache_size": settings.arrears_rocksdb_block_cache_mb * mb,
            "block_cache_compressed_size": settings.arrears_rocksdb_block_cache_mb * mb}


def build_app(settings: Settings, *, web_port: int = 6066, web_host: str = "127.0.0.1") -> Worker:
    faust_fixes.apply(settings.arrears_fetch_max_wait_ms, OffsetReader(settings).end_offsets_of)
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
        table_standby_replicas=settings.arrears_standby_replicas,
        worker_redirect_stdouts=False,
    )
    ticks_topic = ticks_topic_name(settings)
    loans = app.Table(
        "loans",
        partitions=settings.arrears_partitions,
        key_type=bytes,  # bytes types make Faust use the raw codec for the changelog too
        value_type=bytes,
        options=rocksdb_options(settings) if settings.arrears_store == "rocksdb" else None,
    )
    processor = Processor(settings, loans, ticks_topic)
    worker = Worker(app, processor, settings, ticks_topic, loans)

    # Faust owns membership: the worker owns partition p of every input topic exactly when it
    # is assigned partition p of the ticks topic (Faust assigns the ticks topic, the table's
    # changelog and every other topic of the same partition count together), and it fans out
    # the calendar when it is assigned the calendar topic. The records themselves are read by
    # the processor's own consumer (streams/intake.py); these agents only hold the assignment.
    ticks = app.topic(ticks_topic, key_serializer="raw", value_serializer="raw")
    calendar = app.topic(settings.topics.business_date, key_serializer="raw", value_serializer="raw")

    @app.agent(ticks, name="ticks-membership")
    async def ticks_membership(stream: Any) -> None:
        async for _ in stream.events():
            pass

    @app.agent(calendar, name="calendar-membership")
    async def calendar_membership(stream: Any) -> None:
        async for _ in stream.events():
            pass

    # Placement runs where the reports topic's one partition is assigned (streams/coordinator.py).
    reports = app.topic(InternalTopics(settings.arrears_app_id).reports, key_serializer="raw",
                        value_serializer="raw")

    @app.agent(reports, name="placement-membership")
    async def placement_membership(stream: Any) -> None:
        async for _ in stream.events():
            pass

    @app.task
    async def run_processor() -> None:
        try:
            await processor.start()
            await processor.wait()
        except Exception as exc:
            # Our processing never expects an exception: stop the worker rather than go on
            # without it. Nothing is lost: what is not durable is read again by whoever runs next.
            log.critical("processing failed; stopping the worker", exc_info=exc)
            worker.status = "failed"
            await app.crash(exc)
            raise

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        worker.status = "rebalancing"
        await processor.suspend()

    @app.on_rebalance_complete.connect
    async def on_complete(sender: Any, **kwargs: Any) -> None:
        assignment = app.consumer.assignment()
        owned = {tp.partition for tp in assignment if tp.topic == ticks_topic}
        owns_calendar = any(tp.topic == settings.topics.business_date for tp in assignment)
        owns_reports = any(tp.topic == processor.internal.reports for tp in assignment)
        await processor.resume(owned, owns_calendar, owns_reports)
        worker.status = "ready"

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        worker.status = "stopping"
        exit_if_stuck(settings.arrears_stop_timeout_seconds)
        await processor.stop()

    return worker


def exit_if_stuck(seconds: float) -> None:
    """Exit the process if stopping takes longer than *seconds*.

    A stop waits for the broker (the last commits, leaving the group); with the broker gone for
    good (a demo's broker stopped with it, a host shut down) it would wait forever and leave the
    process behind. Exiting then is as safe as a SIGKILL, which the edge tests prove: the local
    store never runs ahead of the changelog, and the next owner re-reads what was not committed.
    """

    def stuck() -> None:
        log.error("stopping took more than %.0f s (is the broker gone?): exiting now; nothing is lost, "
                  "the next owner of the partitions re-reads what was not committed", seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, stuck)
    timer.daemon = True
    timer.start()


def prepare_topics(settings: Settings) -> None:
    """Create the contract's topics and the worker's own internal ones when missing, and warn
    about topics whose retention would not keep what a rebuild needs (``arrears topics`` fixes it)."""
    specs = settings.topic_specs()
    create_topics(settings, specs)
    for problem in check_topics(settings, specs):
        log.warning("topic check: %s; run `arrears topics` to set it", problem)
