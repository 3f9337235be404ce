"""The ``arrears`` command: one console script, one subcommand per part of the pipeline."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .argtypes import input_file, iso_date, name_value, output_file, port, seconds, timezone_name
from .errors import ArrearsError

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Handler]] = []


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    def register(handler: Handler) -> Handler:
        _COMMANDS.append((name, help_text, configure, handler))
        return handler

    return register


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
    p.add_argument("--port", type=port, default=9092, help="port to listen on (default 9092)")
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
def _topics_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true",
                   help="only read every topic's settings back and report what differs (exit 1 if anything does)")
    p.add_argument("--allow-finite-retention", action="store_true",
                   help="warn instead of failing when the broker will not keep a topic's records forever")


@command("topics", "create every topic with its retention, set what differs, and read it back", _topics_args)
def cmd_topics(args: argparse.Namespace) -> int:
    from .kafka import align_topics, check_topics, create_topics

    settings = _settings()
    _logging("topics", settings)
    specs = settings.topic_specs()
    created: set[str] = set()
    if not args.check:
        created = set(create_topics(settings, specs, allow_finite_retention=args.allow_finite_retention))
        for fixed in align_topics(settings, check_topics(settings, specs)):
            print(f"set      {fixed.topic}: {fixed.setting}={fixed.wanted} (was {fixed.actual})")
    problems = check_topics(settings, specs)
    wrong = {p.topic for p in problems}
    for spec in specs:
        state = "created" if spec.name in created else ("DIFFERS" if spec.name in wrong else "ok")
        settings_text = ", ".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
        print(f"{state:8} {spec.name} ({spec.partitions} partition{'s' if spec.partitions > 1 else ''}"
              f"{'; ' + settings_text if settings_text else ''})")
    for problem in problems:
        print(f"arrears topics: {'warning: ' if args.allow_finite_retention else ''}{problem}", file=sys.stderr)
    if args.check:
        print(f"{len(specs) - len(wrong)} as expected, {len(wrong)} differ")
        return 1 if problems else 0
    print(f"{len(created)} created, {len(specs) - len(created)} already there, {len(wrong)} differ")
    if problems and not args.allow_finite_retention:
        return 1
    return 0


# --------------------------------------------------------------------------- clock
def _clock_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--date", type=iso_date, help="publish one tick: the business date is now DATE")
    group.add_argument("--daemon", action="store_true", help="publish the new date at every local midnight")
    p.add_argument("--timezone", type=timezone_name, default=None,
                   help="with --daemon: whose midnight (IANA name; default Asia/Shanghai)")
    p.add_argument("--calendar", default=None, help="calendar id (default: the config's calendar, CN)")


@command("clock", "publish business-date ticks (with their barrier)", _clock_args)
def cmd_clock(args: argparse.Namespace) -> int:
    from producers.clock import DEFAULT_TIMEZONE, publish_tick, run_daemon

    if args.date is not None and args.timezone is not None:
        # Refused rather than ignored: --date is the business date itself, no clock is read.
        raise UsageError("--timezone applies to --daemon only: with --date the business date is the one given")
    settings = _settings()
    _logging("clock", settings)
    calendar = args.calendar or settings.config.calendar
    if calendar != settings.config.calendar:
        print(f"arrears clock: warning: calendar {calendar!r} is not this deployment's "
              f"({settings.config.calendar!r}); its workers ignore these ticks (counted as other_calendar)",
              file=sys.stderr)
    if args.daemon:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        run_daemon(settings, args.timezone or DEFAULT_TIMEZONE, calendar=calendar, stop=stop)
        return 0
    tick = publish_tick(settings, args.date, calendar)
    print(f"published BusinessDateChanged {tick['business_date']} (calendar {tick['calendar']}, "
          f"event {tick['event_id']}, barrier over {len(tick['barrier'])} partitions)")
    return 0


# --------------------------------------------------------------------------- publish
def _publish_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=input_file, help="JSON lines, one record in JSON form per line ('-' for stdin)")
    p.add_argument("--continue-on-error", action="store_true",
                   help="publish the valid lines and list the bad ones (default: a bad line publishes nothing)")
    p.add_argument("--no-barrier", action="store_true", help="publish ticks without a barrier")
    p.add_argument("--pause-after-tick", type=seconds, default=0.0, metavar="SECONDS")


@command("publish", "publish a file of input records in JSON form, in order, each acknowledged", _publish_args)
def cmd_publish(args: argparse.Namespace) -> int:
    from producers.jsonlines import check_lines, publish_lines
    from producers.publisher import LoanEventPublisher
    from schemas import get_codec

    settings = _settings()
    _logging("publish", settings)
    source = "stdin" if str(args.file) == "-" else str(args.file)
    data = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    checked = check_lines(get_codec(settings.schema_registry_url).catalog, data)
    listing = "".join(f"\n  {source}:{bad.number}: {bad.reason}" for bad in checked.bad)
    if checked.bad and not args.continue_on_error:
        raise ArrearsError(f"{len(checked.bad)} bad line(s) in {source}; nothing published. Fix them and run "
                           f"again, or publish the others with --continue-on-error:{listing}")
    with LoanEventPublisher(settings) as publisher:
        done = publish_lines(publisher, checked.lines, barrier=not args.no_barrier,
                             pause_after_tick=args.pause_after_tick)
    print(f"published {done.count} records")
    if checked.bad:
        print(f"arrears publish: {len(checked.bad)} line(s) not published:{listing}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- report
def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=output_file, default=Path("arrears-report.html"),
                   help="the HTML file to write (default arrears-report.html)")
    p.add_argument("--param", type=name_value, action="append", default=[], metavar="NAME=VALUE",
                   help="a run parameter to show in the report (repeat)")


@command("report", "write the HTML report of what the topics hold (charts inline, one file)", _report_args)
def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    settings = _settings()
    _logging("report", settings)
    params = dict(args.param)
    path = write_report(settings, args.out, params)
    print(path.resolve())
    return 0


# --------------------------------------------------------------------------- dlq
def _offset(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an offset (a whole number >= 0), got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an offset (a whole number >= 0), got {text!r}")
    return value


def _dlq_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "show", "replay"],
                   help="list: counts by reason; show: records decoded with their headers; "
                        "replay: republish chosen records to their source topic")
    p.add_argument("topic", help="the source topic or its dead-letter topic (e.g. agency.results or "
                                 "agency.results.dlq; the topic prefix is added when missing)")
    p.add_argument("--offset", type=_offset, nargs="+", default=[], help="the dead letters at these offsets")
    p.add_argument("--partition", type=_offset, default=None, help="only this partition of the dead-letter topic")
    p.add_argument("--reason", default=None, help="only dead letters with this dlq.reason")
    p.add_argument("--all", action="store_true", help="replay: every dead letter (narrowed by --partition)")
    p.add_argument("--dry-run", action="store_true", help="replay: say what would be republished, send nothing")
    p.add_argument("--unmasked", action="store_true",
                   help="show: print names, phones and national ids as stored (they are masked by default)")


@command("dlq", "what a dead-letter topic holds, and republishing records once their cause is fixed", _dlq_args)
def cmd_dlq(args: argparse.Namespace) -> int:
    import json

    from . import deadletters as dl

    settings = _settings()
    _logging("dlq", settings)
    topic = dl.dlq_topic_of(settings, args.topic)
    letters = dl.read_dead_letters(settings, topic)
    if args.action == "list":
        chosen = [d for d in letters if args.partition is None or d.partition == args.partition]
        print(f"{topic}: {len(chosen)} dead letter{'s' if len(chosen) != 1 else ''}")
        for reason, count in sorted(dl.by_reason(chosen).items()):
            offsets = [f"{d.partition}@{d.offset}" for d in chosen if d.reason == reason]
            shown = ", ".join(offsets[:8]) + (f", ... ({len(offsets) - 8} more)" if len(offsets) > 8 else "")
            print(f"  {reason:20} {count:6}   {shown}")
        return 0
    if args.action == "show":
        from schemas import get_codec

        chosen = dl.choose(letters, offsets=args.offset, partition=args.partition, reason=args.reason,
                           everything=args.all or not (args.offset or args.reason))
        codec = get_codec(settings.schema_registry_url)
        for letter in chosen:
            body = dl.describe(letter, codec, codec.catalog)
            if not args.unmasked:
                body = _masked(body)
            print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    chosen = dl.choose(letters, offsets=args.offset, partition=args.partition, reason=args.reason,
                       everything=args.all)
    if not chosen:
        print(f"{topic}: nothing matches; nothing republished")
        return 0
    if args.dry_run:
        for letter in chosen:
            print(f"would republish {letter.partition}@{letter.offset} ({letter.reason}) to {letter.source_topic}")
        return 0
    for letter, target, partition, offset in dl.replay(settings, chosen):
        print(f"republished {letter.partition}@{letter.offset} ({letter.reason}) to {target}[{partition}]@{offset}")
    return 0


def _masked(body: dict[str, Any]) -> dict[str, Any]:
    """The decoded record with names, phones and national ids masked (the dead letter is unchanged)."""
    from .privacy import mask_record

    if isinstance(body.get("record"), dict):
        body = {**body, "record": mask_record(body["record"])}
    return body


# --------------------------------------------------------------------------- asyncapi
def _asyncapi_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", type=output_file, default=None, metavar="FILE",
                   help="write the YAML document to FILE (default: standard output); the repository keeps "
                   "docs/asyncapi.yaml")
    p.add_argument("--html", type=output_file, default=None, metavar="FILE",
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

    for module in ("streams.cli", "streams.treatment_cli", "consumers.cli", "producers.cli", "arrears.bench"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


class UsageError(ArrearsError):
    """Arguments that are valid one by one but not together; reported like argparse's own errors."""


def describe_os_error(exc: OSError) -> str:
    """An OSError as a sentence: what failed, on which file or address."""
    what = exc.strerror or str(exc)
    target = exc.filename if exc.filename is not None else None
    return f"{target}: {what}" if target is not None else what


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ArrearsError as exc:
        print(f"arrears {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # A file, directory or address the command was pointed at (unreadable, taken, unreachable):
        # a sentence, not a traceback. ARREARS_LOG_LEVEL=DEBUG shows the traceback for a bug report.
        if os.environ.get("ARREARS_LOG_LEVEL", "").strip().upper() == "DEBUG":
            raise
        print(f"arrears {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

