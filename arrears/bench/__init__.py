"""``arrears bench``: the benchmark suite of SPEC §9, on one broker, in one run.

The command is registered here (``arrears.cli`` imports this package); the work is in the
submodules, imported when the command runs: :mod:`.stats` (pure arithmetic), :mod:`.dataset`
(synthetic records), :mod:`.ceilings`, :mod:`.phases` and :mod:`.runner`.
"""

from __future__ import annotations

import argparse
import json

from arrears.argtypes import output_dir, output_file
from arrears.cli import command


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="a CI-sized run (a 50,000-loan book; a few minutes) instead of the full one")
    p.add_argument("--json", type=output_file, metavar="FILE", help="also write every figure to FILE as JSON")
    p.add_argument("--profile", type=output_dir, metavar="DIR",
                   help="record py-spy profiles of a worker during ingest and the tick into DIR")
    p.add_argument("--workdir", type=output_dir, metavar="DIR",
                   help="keep worker logs and data in DIR (default: a temporary directory)")


@command("bench", "measure ingest, tick cost, latency and memory against librdkafka and Faust ceilings",
         _bench_args)
def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from arrears.cli import _logging

    from .context import Plan
    from .report import print_report
    from .runner import run
    from .stats import missing_keys

    _logging("bench")
    doc = run(Plan.make(args.quick, args.profile), workdir=args.workdir)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a log file or CI: do not wrap the table into unreadable cells
    print_report(doc, console)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    missing = missing_keys(doc)
    if missing:
        print(f"arrears bench: figures missing: {', '.join(missing)}")
        return 1
    return 0
