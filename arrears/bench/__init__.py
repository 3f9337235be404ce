"""``arrears bench``: the benchmark suite of SPEC §9, on one broker, in one run.

The command is registered here (``arrears.cli`` imports this package); the work is in the
submodules, imported when the command runs: :mod:`.stats` (pure arithmetic), :mod:`.dataset`
(synthetic records), :mod:`.feed` (publishing backlogs), :mod:`.watch` (following a run from
the broker's side), :mod:`.ceilings`, the phases :mod:`.ingest`, :mod:`.book` and
:mod:`.latency`, and :mod:`.runner`.
"""

from __future__ import annotations

import argparse
import json

from arrears.argtypes import output_dir, output_file, positive_int
from arrears.cli import command


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="a CI-sized run (1,000 loans of mix, a 2,000-loan book; about 3 minutes)")
    p.add_argument("--ingest-loans", type=positive_int, metavar="N",
                   help="loans in the ingest mix (about 25 events each; full run: 10,000)")
    p.add_argument("--book-loans", type=positive_int, metavar="N",
                   help="loans in the large book (about 19 events each; full run: 200,000)")
    p.add_argument("--json", type=output_file, metavar="FILE", help="also write every figure to FILE as JSON")
    p.add_argument("--profile", type=output_dir, metavar="DIR",
                   help="record py-spy profiles of a worker during ingest and the tick into DIR")
    p.add_argument("--workdir", type=output_dir, metavar="DIR",
                   help="keep worker logs and data in DIR (default: a temporary directory)")


@command("bench", "measure ingest, book load, tick, latency and memory against librdkafka and Faust ceilings",
         _bench_args)
def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from arrears.cli import _logging

    from .context import Plan
    from .report import print_report
    from .runner import run
    from .stats import missing_keys

    _logging("bench")
    plan = Plan.make(args.quick, args.profile, ingest_loans=args.ingest_loans, book_loans=args.book_loans)
    doc = run(plan, workdir=args.workdir)
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
