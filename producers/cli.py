"""``arrears`` subcommands of the upstream producers (imported by :mod:`arrears.cli`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from arrears.cli import command


# --------------------------------------------------------------------------- fineract-bridge
def _fineract_bridge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schemas", type=Path, action="append", required=True, metavar="DIR",
                   help="your copy of Fineract's fineract-avro-schemas/src/main/avro, the version your "
                        "Fineract runs (repeat during an upgrade to accept both versions)")
    p.add_argument("--topic", default="external-events",
                   help="Fineract's topic, exactly as Fineract names it (not prefixed; default "
                        "external-events); dead letters go to <ARREARS_TOPIC_PREFIX><topic>.dlq")
    p.add_argument("--group", default=None,
                   help="consumer group (default <ARREARS_TOPIC_PREFIX>arrears-fineract-bridge)")
    p.add_argument("--tenant", default=None,
                   help="bridge only this Fineract tenant's events (default: every tenant)")
    p.add_argument("--customer-timezone", default=None, metavar="IANA",
                   help="borrowers' timezone for contact hours (Fineract's events carry none; "
                        "default Asia/Shanghai)")
    p.add_argument("--due-events", choices=("schedule", "ignore"), default="schedule",
                   help="map LoanRepaymentDue/OverdueBusinessEvent to InstallmentScheduled (default) or "
                        "ignore them (their amounts are what is outstanding: see docs/fineract.md)")


@command("fineract-bridge", "bridge Apache Fineract's external events into Arrears' input topics",
         _fineract_bridge_args)
def cmd_fineract_bridge(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from arrears.errors import ConfigError
    from producers.fineract.bridge import BridgeConfig, serve
    from producers.fineract.mapping import MappingOptions

    if args.customer_timezone:
        try:  # an unknown name stops the command before it connects
            ZoneInfo(args.customer_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"--customer-timezone: unknown IANA timezone {args.customer_timezone!r} "
                              "(e.g. Asia/Shanghai)") from None
    options = MappingOptions(schedule_from_due_events=args.due_events == "schedule",
                             customer_timezone=args.customer_timezone)
    return serve(BridgeConfig(schema_dirs=tuple(args.schemas), topic=args.topic, group_id=args.group,
                              tenant=args.tenant, options=options))
