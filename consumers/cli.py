"""``arrears adapter`` and ``arrears sim-agency``: argument parsing and a call into the package."""

from __future__ import annotations

import argparse

from arrears.argtypes import fraction, http_url, port, seconds
from arrears.cli import _logging, _settings, command


def _adapter_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agency", required=True, metavar="ID", help="the agency id in the config")
    p.add_argument(
        "--port", type=port, default=8081, help="port of POST /results, /health, /metrics (default 8081)"
    )
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")  # noqa: S104


@command("adapter", "run one agency's adapter: work orders out, results in", _adapter_args)
def cmd_adapter(args: argparse.Namespace) -> int:
    from .adapter import run_adapter

    settings = _settings()
    settings.config.agency(args.agency)  # an unknown id stops the command before it logs or connects
    _logging(f"adapter-{args.agency}", settings)
    return run_adapter(settings, args.agency, host=args.host, port=args.port)


def _sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agency", required=True, metavar="ID", help="the agency id in the config")
    p.add_argument(
        "--adapter",
        type=http_url,
        default="http://127.0.0.1:8081",
        metavar="URL",
        help="the adapter to report results to (webhook agencies; default http://127.0.0.1:8081)",
    )
    p.add_argument("--seed", default="arrears", help="random seed (same seed, same results)")
    p.add_argument("--violation-rate", type=fraction, default=0.05, help="share of case-days with a rule break")
    p.add_argument(
        "--settle",
        type=seconds,
        default=2.0,
        metavar="SECONDS",
        help="wait this long after a tick before working the day",
    )
    p.add_argument("--from-beginning", action="store_true", help="work every business date on the topic")


@command("sim-agency", "run a simulated agency that works a day at every business-date tick", _sim_args)
def cmd_sim_agency(args: argparse.Namespace) -> int:
    from .simagency import run_simulated_agency

    settings = _settings()
    settings.config.agency(args.agency)
    _logging(f"sim-agency-{args.agency}", settings)
    return run_simulated_agency(
        settings,
        args.agency,
        adapter_url=args.adapter,
        seed=args.seed,
        violation_rate=args.violation_rate,
        settle_seconds=args.settle,
        from_beginning=args.from_beginning,
    )
