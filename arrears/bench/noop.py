"""The Faust ceiling: a do-nothing agent with the worker's settings, run as its own process.

``python -m arrears.bench.noop --expect N`` reads the input topics under the configured
prefix with the worker's consumer settings and fetch-wait patch, takes events off Faust's
stream in batches (``take_events``, up to 2,000 within 5 ms: the cheapest way through Faust's
stream), does nothing with them, and prints one JSON line on stdout, ``{"count": N,
"seconds": S}``, after the N-th event (seconds from the first event to it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

BATCH_MAX = 2000
BATCH_WITHIN = 0.005  # seconds to wait for more events before handing a batch over


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    import faust

    from arrears.settings import load_settings
    from streams import faust_fixes
    from streams.app import consumer_options

    parser = argparse.ArgumentParser(prog="arrears-bench-noop")
    parser.add_argument("--expect", type=int, required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    # Same patch as the worker: without it every fetch on the embedded broker waits 1.5 s.
    faust_fixes.limit_fetch_wait(settings.arrears_fetch_max_wait_ms)
    app = faust.App(
        settings.arrears_app_id,
        **consumer_options(settings),
        store="memory://",
        web_enabled=False,
        datadir=str(settings.arrears_data_dir / f"{settings.arrears_app_id}-noop"),
        worker_redirect_stdouts=False,
    )
    inputs = app.topic(*settings.topics.inputs, key_serializer="raw", value_serializer="raw")
    seen = {"count": 0, "first": 0.0}

    @app.timer(2.0)
    async def report() -> None:  # progress for the log: a stalled ceiling must be visible
        sys.stderr.write(f"noop: {seen['count']} events, assignment {len(app.consumer.assignment())}\n")

    @app.agent(inputs, name="noop")
    async def noop(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            if not seen["count"]:
                seen["first"] = time.monotonic()
            seen["count"] += len(events)
            if seen["count"] >= args.expect:
                _say(count=seen["count"], seconds=time.monotonic() - seen["first"])

    faust.Worker(app, loglevel="WARNING", quiet=True, override_logging=False,
                 redirect_stdouts=False).execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
