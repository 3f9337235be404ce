"""The ``arrears`` command: one console script, one subcommand per part of the pipeline."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import ArrearsError

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Handler]] = []


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    def register(handler: Handler) -> Handler:
        _COMMANDS.append((name, help_text, configure, handler))
        return handler

    return register


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _settings(**overrides: Any) -> Any:
    from .settings import load_settings

    return load_settings(**overrides)


def _logging(component: str, settings: Any | None = None) -> None:
    from .logs import setup_logging

    if settings is None:
        setup_logging(component, "text", "WARNING")
    else:
        setup_logging(component, settings.arrears_log_format, settings.arrears_log_level)


def _wait_for_signal(is_running: Callable[[], bool] = lambda: True) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set() and is_running():
        stop.wait(0.5)


# --------------------------------------------------------------------------- broker
def _broker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=9092, help="port to listen on (default 9092)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on and advertise (default 127.0.0.1)")


@command("broker", "run the embedded Kafka-compatible broker (Tansu; memory only)", _broker_args)
def cmd_broker(args: argparse.Namespace) -> int:
    from .broker import EmbeddedBroker
    from .errors import BrokerError

    _logging("broker")
    broker = EmbeddedBroker(args.port, host=args.host).start()
    try:
        print(broker.bootstrap_servers, flush=True)
        print(f"# export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}   (Ctrl-C stops it)", file=sys.stderr)
        _wait_for_signal(lambda: broker.process is not None and broker.process.poll() is None)
        if broker.process is not None and broker.process.poll() is not None:
            raise BrokerError(f"the broker process exited on its own (code {broker.process.returncode})")
    finally:
        broker.stop()
    return 0


# --------------------------------------------------------------------------- topics
@command("topics", "create every topic of the contract (idempotent)")
def cmd_topics(args: argparse.Namespace) -> int:
    from .kafka import create_topics

    settings = _settings()
    _logging("topics")
    specs = settings.topics.specs(settings.arrears_partitions, [a.id for a in settings.config.agencies])
    created = set(create_topics(settings, specs))
    for spec in specs:
        state = "created" if spec.name in created else "exists"
        print(f"{state:8} {spec.name} ({spec.partitions} partition{'s' if spec.partitions > 1 else ''})")
    print(f"{len(created)} created, {len(specs) - len(created)} already there")
    return 0


# --------------------------------------------------------------------------- clock
def _clock_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--date", type=_date, help="publish one tick: the business date is now DATE")
    group.add_argument("--daemon", action="store_true", help="publish the new date at every local midnight")
    p.add_argument("--timezone", default="Asia/Shanghai", help="with --daemon: whose midnight (IANA name)")
    p.add_argument("--calendar", default=None, help="calendar id (default: the config's calendar, CN)")


@command("clock", "publish business-date ticks (with their barrier)", _clock_args)
def cmd_clock(args: argparse.Namespace) -> int:
    from producers.clock import publish_tick, run_daemon, zone

    settings = _settings()
    _logging("clock", settings)
    if args.daemon:
        zone(args.timezone)  # a bad name stops the command before it connects
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        run_daemon(settings, args.timezone, calendar=args.calendar, stop=stop)
        return 0
    tick = publish_tick(settings, args.date, args.calendar)
    print(f"published BusinessDateChanged {tick['business_date']} (calendar {tick['calendar']}, "
          f"event {tick['event_id']}, barrier over {len(tick['barrier'])} partitions)")
    return 0


# --------------------------------------------------------------------------- publish
def _publish_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="JSON lines, one record in JSON form per line ('-' for stdin)")
    p.add_argument("--no-barrier", action="store_true", help="publish ticks without a barrier")
    p.add_argument("--pause-after-tick", type=float, default=0.0, metavar="SECONDS")


@command("publish", "publish a file of input records in JSON form, in order, each acknowledged", _publish_args)
def cmd_publish(args: argparse.Namespace) -> int:
    from producers.publisher import LoanEventPublisher

    settings = _settings()
    _logging("publish", settings)
    lines = sys.stdin if str(args.file) == "-" else args.file.open(encoding="utf-8")
    count = 0
    with LoanEventPublisher(settings) as publisher:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ArrearsError(f"{args.file}:{number}: not JSON: {exc}") from None
            name = obj.pop("type", None)
            if name == "BusinessDateChanged" and not args.no_barrier and not obj.get("barrier"):
                publisher.end_of_day(obj.pop("business_date"), calendar=obj.pop("calendar", None),
                                     event_id=obj.get("event_id"), occurred_at=obj.get("occurred_at"))
                if args.pause_after_tick:
                    time.sleep(args.pause_after_tick)
            else:
                publisher.publish(str(name), obj, wait=True)
                if name == "BusinessDateChanged" and args.pause_after_tick:
                    time.sleep(args.pause_after_tick)
            count += 1
    print(f"published {count} records")
    return 0


# --------------------------------------------------------------------------- report
def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("arrears-report.html"),
                   help="the HTML file to write (default arrears-report.html)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a run parameter to show in the report (repeat)")


@command("report", "write the HTML report of what the topics hold (charts inline, one file)", _report_args)
def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    settings = _settings()
    _logging("report", settings)
    params = dict(p.partition("=")[::2] for p in args.param)
    path = write_report(settings, args.out, params)
    print(path.resolve())
    return 0


# --------------------------------------------------------------------------- asyncapi
def _asyncapi_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", type=Path, default=None, metavar="FILE",
                   help="write the YAML document to FILE (default: standard output); the repository keeps "
                   "docs/asyncapi.yaml")
    p.add_argument("--html", type=Path, default=None, metavar="FILE",
                   help="also write a self-contained HTML page of it for agencies' and lenders' engineers "
                   "(the repository keeps docs/asyncapi.html)")


@command("asyncapi", "write the AsyncAPI 3.0 document of the topics, records and agency HTTP operations",
         _asyncapi_args)
def cmd_asyncapi(args: argparse.Namespace) -> int:
    from .asyncapi import build_document, render_yaml
    from .asyncapi_html import render_html

    document = build_document()
    text = render_yaml(document)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    if args.html is not None:
        args.html.write_text(render_html(document), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arrears",
        description="Arrears: Kafka-native delinquency and third-party collections pipeline.",
        epilog="Settings come from KAFKA_BOOTSTRAP_SERVERS, ARREARS_CONFIG, ARREARS_TOPIC_PREFIX, "
        "ARREARS_PARTITIONS, SCHEMA_REGISTRY_URL and KAFKA_SECURITY_PROTOCOL/SASL/SSL variables.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _load_plugins()
    for name, help_text, configure, handler in _COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(handler=handler)
    return parser


def _load_plugins() -> None:
    """Import the modules that register the commands of the other packages."""
    import importlib

    for module in ("streams.cli", "consumers.cli", "producers.cli", "arrears.bench"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ArrearsError as exc:
        print(f"arrears {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

