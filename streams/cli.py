"""Commands of the stream processor: ``arrears worker`` and ``arrears case``."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from arrears.argtypes import case_id as case_id_arg
from arrears.argtypes import host, http_url, port
from arrears.cli import _logging, _settings, command
from arrears.errors import ArrearsError


def _worker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--web-port", type=port, default=6066, help="port of the query API (default 6066)")
    p.add_argument("--web-host", type=host, default=None,
                   help="host name other workers reach this one by (default $ARREARS_WEB_HOST or 127.0.0.1)")


@command("worker", "run the stream processor (a Faust worker) with its query API", _worker_args)
def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings()  # before the heavy imports: a bad setting answers at once

    import faust

    from .app import prepare_topics
    from .service import build_worker

    _logging(f"worker:{args.web_port}", settings)
    prepare_topics(settings)
    worker = build_worker(settings, web_port=args.web_port, web_host=args.web_host or settings.arrears_web_host)
    _tune_gc()
    faust.Worker(
        worker.app,
        loglevel=settings.arrears_log_level,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
    ).execute_from_commandline()
    return 0


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the processing path.

    A worker allocates a few hundred short-lived objects per event (nearly none in cycles) and
    holds many long-lived ones (decoded loans, the wake index): with the default thresholds the
    collector runs every 700 allocations and regularly walks the whole heap (~10% of a book
    load's CPU). Everything imported and built so far is frozen out of its reach, and it runs
    after 20,000 allocations instead.
    """
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def _token_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token", default=os.environ.get("ARREARS_API_TOKEN"),
                   help="bearer token for the query API when api.tokens are configured (default $ARREARS_API_TOKEN; "
                        "prefer the variable: a command line is visible to other users)")


def _case_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="a case id (<loan_id>:<n>), or a loan id with --loan")
    p.add_argument("--loan", action="store_true", help="show the loan's ledger and cases")
    p.add_argument("--url", type=http_url, default=None,
                   help="a worker's query API (default $ARREARS_URL or http://127.0.0.1:6066)")
    _token_arg(p)
    p.add_argument("--json", action="store_true", help="print the JSON as the API returns it")


def worker_url(args: argparse.Namespace, settings: Any) -> str:
    """--url, else ARREARS_URL (checked with the other settings), else the default worker."""
    return str(args.url or settings.arrears_url).rstrip("/")


def api_path(kind: str, key: str) -> str:
    """``/cases/<id>`` with the id quoted whole (a '/' in it must not reach another endpoint)."""
    return f"/{kind}/{urllib.parse.quote(key, safe='')}"


def fetch_json(url: str, token: str | None = None) -> tuple[int, Any]:
    """GET *url* (with the bearer *token* when given): (status, JSON body)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - operator-given URL
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.load(exc)
        except ValueError:
            return exc.code, {"error": exc.reason}
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ArrearsError(
            f"no worker answered at {url} ({reason}); start one (arrears worker --web-port PORT) or point "
            "--url or ARREARS_URL at a running worker's query API, e.g. http://127.0.0.1:6066"
        ) from None
    except ValueError as exc:  # a body that is not JSON: something else listens there
        raise ArrearsError(
            f"{url} did not answer with JSON ({exc}); is --url or ARREARS_URL a worker's query API?"
        ) from None


@command("case", "look up a case (or with --loan a loan's ledger) through a worker's API", _case_args)
def cmd_case(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .show import render_case, render_loan

    settings = _settings()
    path = api_path("loans", args.id) if args.loan else api_path("cases", args.id)
    status, body = fetch_json(worker_url(args, settings) + path, args.token)
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0 if status == 200 else 1
    if status != 200:
        print(f"arrears case: {refusal(status, body)}", file=sys.stderr)
        return 1
    console = Console()
    console.print(render_loan(body) if args.loan else render_case(body))
    return 0


def _release_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("case_id", type=case_id_arg, help="the case to release (<loan_id>:<n>)")
    p.add_argument("--reason", required=True, help="why the hold is lifted (kept in the audit trail)")
    p.add_argument("--requested-by", default=os.environ.get("USER", "cli"), help="who asks (default $USER)")
    p.add_argument("--url", type=http_url, default=None,
                   help="a worker's query API, to check the case is on hold first "
                        "(default $ARREARS_URL or http://127.0.0.1:6066)")
    _token_arg(p)


def refusal(status: int, body: Any) -> str:
    """What a refused query means, with the hint a 401 or 403 needs."""
    reason = body.get("error", status) if isinstance(body, dict) else status
    if status == 401:
        return f"{reason} (pass a token with --token or ARREARS_API_TOKEN)"
    if status == 403:
        return f"{reason} (this command needs a token with the 'read' scope)"
    return str(reason)


class CommandRefused(ArrearsError):
    """A command that cannot be published, with the HTTP status the ops page answers it with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def release_case(settings: Any, worker_url: str, case_id: str, reason: str, requested_by: str,
                 token: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check through a worker's query API that the case is on hold, then publish ReleaseCase.

    Shared by ``arrears release`` and the ops page's release action (whose *requested_by* is the
    token's name). Returns (the case as the API showed it, the command published); raises
    :class:`CommandRefused` when the id is bad, the case unknown or not on hold.
    """
    from arrears.topics import loan_id_of_case
    from producers.publisher import LoanEventPublisher

    try:
        loan_id = loan_id_of_case(case_id)
    except ValueError as exc:
        raise CommandRefused(str(exc), 400) from None
    status, case = fetch_json(worker_url + api_path("cases", case_id), token)
    if status != 200 or not isinstance(case, dict):
        raise CommandRefused(f"case {case_id}: {refusal(status, case)}", status if status in (401, 403, 404) else 502)
    if case.get("status") != "HOLD":
        raise CommandRefused(f"case {case_id} is not on hold (status {case.get('status')}); nothing to release", 409)
    with LoanEventPublisher(settings) as publisher:
        command = publisher.publish("ReleaseCase", {
            "case_id": case_id, "loan_id": loan_id, "requested_by": requested_by, "reason": reason,
        }, wait=True)
    return case, command


@command("release", "lift the hold on a case (publishes ReleaseCase on collections.commands)", _release_args)
def cmd_release(args: argparse.Namespace) -> int:
    settings = _settings()
    _logging("release", settings)
    case, command = release_case(settings, worker_url(args, settings), args.case_id, args.reason, args.requested_by,
                                 args.token)
    print(f"published ReleaseCase for {args.case_id} (hold {case.get('hold_reason')}, event {command['event_id']})")
    return 0
