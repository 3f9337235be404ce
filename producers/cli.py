"""``arrears`` subcommands of the upstream producers (imported by :mod:`arrears.cli`)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from arrears.argtypes import (
    fraction,
    http_url,
    input_dir,
    input_file,
    iso_date,
    non_negative,
    output_file,
    seconds,
    timezone_name,
)
from arrears.cli import command


# --------------------------------------------------------------------------- fineract-bridge
def _fineract_bridge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schemas", type=input_dir, action="append", required=True, metavar="DIR",
                   help="your copy of Fineract's fineract-avro-schemas/src/main/avro, the version your "
                        "Fineract runs (repeat during an upgrade to accept both versions)")
    p.add_argument("--topic", default="external-events",
                   help="Fineract's topic, exactly as Fineract names it (not prefixed; default "
                        "external-events); dead letters go to <ARREARS_TOPIC_PREFIX><topic>.dlq")
    p.add_argument("--group", default=None,
                   help="consumer group (default <ARREARS_TOPIC_PREFIX>arrears-fineract-bridge)")
    p.add_argument("--tenant", default=None,
                   help="bridge only this Fineract tenant's events (default: every tenant)")
    p.add_argument("--customer-timezone", type=timezone_name, default=None, metavar="IANA",
                   help="borrowers' timezone for contact hours (Fineract's events carry none; "
                        "default Asia/Shanghai)")
    p.add_argument("--due-events", choices=("schedule", "ignore"), default="schedule",
                   help="map LoanRepaymentDue/OverdueBusinessEvent to InstallmentScheduled (default) or "
                        "ignore them (their amounts are what is outstanding: see docs/fineract.md)")


@command("fineract-bridge", "bridge Apache Fineract's external events into Arrears' input topics",
         _fineract_bridge_args)
def cmd_fineract_bridge(args: argparse.Namespace) -> int:
    from producers.fineract.bridge import BridgeConfig, serve
    from producers.fineract.mapping import MappingOptions

    options = MappingOptions(schedule_from_due_events=args.due_events == "schedule",
                             customer_timezone=args.customer_timezone)
    return serve(BridgeConfig(schema_dirs=tuple(args.schemas), topic=args.topic, group_id=args.group,
                              tenant=args.tenant, options=options))


# --------------------------------------------------------------------------- simulate
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _agency_spec(text: str) -> tuple[str, str | None]:
    """``ID`` or ``ID=ADAPTER_URL``."""
    agency_id, sep, url = text.partition("=")
    if not agency_id:
        raise argparse.ArgumentTypeError(f"expected ID or ID=ADAPTER_URL, got {text!r}")
    return agency_id, http_url(url) if sep else None


def _book_args(p: argparse.ArgumentParser, seed: str) -> None:
    """The synthetic book's options, shared by ``simulate`` and ``demo``."""
    p.add_argument("--loans", type=_positive_int, default=2000, help="loans in the book (default 2000)")
    p.add_argument("--days", type=_positive_int, default=120, help="business days to simulate (default 120)")
    p.add_argument("--seed", default=seed, help=f"random seed: the same seed gives the same book (default {seed})")
    p.add_argument("--start-date", type=iso_date, default=dt.date(2026, 1, 1),
                   help="first business date (default 2026-01-01)")
    p.add_argument("--days-per-second", type=non_negative, default=0.0, metavar="N",
                   help="at most N business days a second (default 0: as fast as the pipeline goes)")
    p.add_argument("--settlement-rate", type=fraction, default=0.15,
                   help="share of the simulated agencies' conversations on cases that allow settlements (the "
                        "config's settlements.max_discount) that end in a settlement proposal (default 0.15)")


def _simulate_args(p: argparse.ArgumentParser) -> None:
    _book_args(p, "arrears")
    p.add_argument("--agency", type=_agency_spec, action="append", default=[], metavar="ID[=ADAPTER_URL]",
                   help="simulate this agency of the config (repeat); a webhook agency needs the URL of its "
                        "adapter, e.g. AG1=http://127.0.0.1:8081, and listens on its configured webhook URL")
    p.add_argument("--violation-rate", type=fraction, default=0.05,
                   help="share of a simulated agency's case-days with a rule break (default 0.05)")
    p.add_argument("--worker-url", type=http_url, action="append", default=[], metavar="URL",
                   help="a worker's query API (repeat for each); the simulator waits for each tick to be "
                        "applied there before the agencies work the day")
    p.add_argument("--settle", type=seconds, default=None, metavar="SECONDS",
                   help="without --worker-url: wait this long after each tick (default 1.0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in a container log)")


@command("simulate", "publish a synthetic loan book day by day, with simulated agencies", _simulate_args)
def cmd_simulate(args: argparse.Namespace) -> int:
    from arrears.cli import UsageError, _logging, _settings

    from .simulate import SimulationOptions, run_simulate

    if args.settle is not None and args.worker_url:
        # Refused rather than ignored: with workers to ask, the simulator waits for them, not a timer.
        raise UsageError("--settle applies only without --worker-url (with it, each day waits for the workers)")
    settings = _settings()
    _logging("simulate", settings)
    agencies: dict[str, str | None] = {}
    for agency_id, url in args.agency:
        settings.config.agency(agency_id)  # an unknown id stops the command here
        agencies[agency_id] = url
    options = SimulationOptions(loans=args.loans, days=args.days, seed=args.seed, start=args.start_date,
                                days_per_second=args.days_per_second, settlement_rate=args.settlement_rate)
    return run_simulate(settings, options, agencies=agencies, worker_urls=args.worker_url,
                        violation_rate=args.violation_rate, settle=1.0 if args.settle is None else args.settle,
                        progress=not args.no_progress)


# --------------------------------------------------------------------------- demo
def _demo_args(p: argparse.ArgumentParser) -> None:
    _book_args(p, "demo")
    p.add_argument("--violation-rate", type=fraction, default=0.05,
                   help="share of an agency's case-days with a rule break (default 0.05)")
    p.add_argument("--report", type=output_file, default=Path("arrears-report.html"),
                   help="where to write the report (default arrears-report.html)")
    p.add_argument("--config", type=input_file, default=None,
                   help="a config to run instead of the bundled demo one (webhook ports and file-drop "
                        "directories are rewritten for the run)")
    p.add_argument("--no-live", action="store_true", help="print a summary every ten days instead of a live view")


@command("demo", "run the whole pipeline on an embedded broker with simulated agencies; live view, then a report",
         _demo_args)
def cmd_demo(args: argparse.Namespace) -> int:
    from arrears.cli import _settings

    from .demo import DemoOptions, run_demo
    from .simulate import SimulationOptions

    # Before a broker starts: the variables the demo passes on to its processes, and --config.
    # (It sets the broker, topics and data directory itself.)
    _settings(kafka_bootstrap_servers="localhost:9092", arrears_config=args.config, arrears_topic_prefix="",
              arrears_data_dir=Path("."), arrears_partitions=6, arrears_session_timeout_ms=6000)

    simulation = SimulationOptions(loans=args.loans, days=args.days, seed=args.seed, start=args.start_date,
                                   days_per_second=args.days_per_second, settlement_rate=args.settlement_rate)
    options = DemoOptions(simulation=simulation, violation_rate=args.violation_rate, report=args.report,
                          live=not args.no_live, config=args.config)
    return run_demo(options)
