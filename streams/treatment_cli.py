"""The lender's treatment commands (SPEC §10): ``arrears pause|resume``, ``arrears settlement``,
``arrears statement``.

``pause`` and ``resume`` publish their command on ``collections.commands`` directly (the
processor applies them to the loan whichever worker owns it). ``settlement approve|reject``
first asks a worker's query API which settlement of the case is pending, so the decision names
it. ``statement`` reads ``collections.recoveries``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from arrears.argtypes import case_id as case_id_arg
from arrears.argtypes import http_url, iso_date, output_file
from arrears.cli import UsageError, _logging, _settings, command

from .cli import CommandRefused, _token_arg, api_path, fetch_json, refusal, worker_url


def _who(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--by", required=True, metavar="NAME",
                   help=f"who {what} (recorded in the command; a person's or team's name, no personal data)")


# --------------------------------------------------------------------------- pause / resume
def _pause_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("loan_id", help="the loan whose delinquency pauses")
    p.add_argument("--from", dest="from_date", type=iso_date, required=True, metavar="DATE",
                   help="the first paused day (YYYY-MM-DD); a past date pauses backdated, at once")
    p.add_argument("--until", dest="until_date", type=iso_date, default=None, metavar="DATE",
                   help="the last paused day (default: open-ended, until `arrears resume`)")
    p.add_argument("--reason", required=True, help="why (forbearance, hardship, disaster relief; no personal data)")
    _who(p, "decided the pause")


@command("pause", "pause a loan's delinquency: paused days do not count towards DPD (publishes PauseDelinquency)",
         _pause_args)
def cmd_pause(args: argparse.Namespace) -> int:
    from producers.publisher import LoanEventPublisher

    if args.until_date is not None and args.until_date < args.from_date:
        raise UsageError(f"--until {args.until_date} is before --from {args.from_date}")
    settings = _settings()
    _logging("pause", settings)
    with LoanEventPublisher(settings) as publisher:
        record = publisher.publish("PauseDelinquency", {
            "loan_id": args.loan_id, "from_date": args.from_date, "until_date": args.until_date,
            "reason": args.reason, "requested_by": args.by,
        }, wait=True)
    until = args.until_date.isoformat() if args.until_date else "further notice"
    print(f"published PauseDelinquency for {args.loan_id}: {args.from_date} to {until} (event {record['event_id']})")
    return 0


def _resume_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("loan_id", help="the paused loan")
    p.add_argument("--on", dest="on_date", type=iso_date, required=True, metavar="DATE",
                   help="the first day that counts again (the pause ends the day before)")
    _who(p, "ends the pause")


@command("resume", "end a loan's pause (publishes ResumeDelinquency)", _resume_args)
def cmd_resume(args: argparse.Namespace) -> int:
    from producers.publisher import LoanEventPublisher

    settings = _settings()
    _logging("resume", settings)
    with LoanEventPublisher(settings) as publisher:
        record = publisher.publish("ResumeDelinquency", {
            "loan_id": args.loan_id, "on_date": args.on_date, "requested_by": args.by,
        }, wait=True)
    print(f"published ResumeDelinquency for {args.loan_id}: days count again from {args.on_date} "
          f"(event {record['event_id']})")
    return 0


# --------------------------------------------------------------------------- settlement
def _settlement_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("decision", choices=["approve", "reject"], help="what to do with the case's pending settlement")
    p.add_argument("case_id", type=case_id_arg, help="the case (<loan_id>:<n>)")
    _who(p, "decides (the checker: never the agency that proposed it)")
    p.add_argument("--url", type=http_url, default=None,
                   help="a worker's query API, to find the pending settlement (default $ARREARS_URL or "
                        "http://127.0.0.1:6066)")
    _token_arg(p)


def decide_settlement(settings: Any, url: str, case_id: str, decision: str, decided_by: str,
                      token: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Find the case's pending settlement through a worker's query API and publish the decision.

    Shared by ``arrears settlement`` and the ops page's approve/reject actions (whose
    *decided_by* is the token's name). Returns (the settlement as the API showed it, the command
    published); raises :class:`~streams.cli.CommandRefused` when the id is bad, the case unknown,
    nothing is pending, or *decided_by* is the agency that proposed it (maker-checker).
    """
    from arrears.topics import loan_id_of_case
    from producers.publisher import LoanEventPublisher

    try:
        loan_id = loan_id_of_case(case_id)
    except ValueError as exc:
        raise CommandRefused(str(exc), 400) from None
    status, body = fetch_json(url + api_path("cases", case_id) + "/treatments", token)
    if status != 200 or not isinstance(body, dict):
        raise CommandRefused(f"case {case_id}: {refusal(status, body)}", status if status in (401, 403, 404) else 502)
    settlement = body.get("settlement")
    if not isinstance(settlement, dict) or settlement.get("status") != "PENDING":
        where = f"its settlement {settlement['settlement_id']} is {settlement['status']}" if isinstance(
            settlement, dict) else "it has no settlement"
        raise CommandRefused(f"case {case_id} has no settlement pending a decision ({where})", 409)
    if decided_by == settlement["agency_id"]:
        raise CommandRefused(f"{decided_by} proposed settlement {settlement['settlement_id']}: the agency cannot "
                             "decide its own proposal (maker-checker)", 403)
    record_name = "ApproveSettlement" if decision == "approve" else "RejectSettlement"
    with LoanEventPublisher(settings) as publisher:
        record = publisher.publish(record_name, {
            "loan_id": loan_id, "case_id": case_id, "settlement_id": settlement["settlement_id"],
            "decided_by": decided_by,
        }, wait=True)
    return settlement, record


@command("settlement", "approve or reject a case's pending settlement (publishes ApproveSettlement/RejectSettlement)",
         _settlement_args)
def cmd_settlement(args: argparse.Namespace) -> int:
    settings = _settings()
    _logging("settlement", settings)
    settlement, record = decide_settlement(settings, worker_url(args, settings), args.case_id, args.decision,
                                           args.by, args.token)
    record_name = "ApproveSettlement" if args.decision == "approve" else "RejectSettlement"
    print(f"published {record_name} for {settlement['settlement_id']} ({settlement['agency_id']}: "
          f"{settlement['amount']} minor units by {settlement['pay_by']}, discount {settlement['discount']:.2%}; "
          f"event {record['event_id']})")
    return 0


# --------------------------------------------------------------------------- statement
def _month(text: str) -> str:
    from arrears.statement import check_month

    try:
        return check_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _statement_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agency", required=True, metavar="ID", help="the agency (its id in the config)")
    p.add_argument("--month", required=True, type=_month, metavar="YYYY-MM",
                   help="the month of the repayments' value dates (and of the reversals)")
    p.add_argument("--format", choices=["csv", "html"], default="csv", help="csv (default) or html")
    p.add_argument("--output", type=output_file, default=None, metavar="FILE",
                   help="write to FILE (default: standard output)")


@command("statement", "write an agency's monthly commission statement from collections.recoveries", _statement_args)
def cmd_statement(args: argparse.Namespace) -> int:
    from arrears.statement import collect, render_csv, render_html

    settings = _settings()
    _logging("statement", settings)
    if args.agency not in {a.id for a in settings.config.agencies}:
        print(f"arrears statement: warning: {args.agency} is not an agency of this config; its records are "
              "listed if there are any", file=sys.stderr)
    statement = collect(settings, args.agency, args.month)
    text = render_csv(statement) if args.format == "csv" else render_html(statement)
    if args.output is None:
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8", newline="")
        totals = "; ".join(f"{amount} recovered, {commission} commission ({currency or 'no currency'})"
                           for currency, (amount, commission) in statement.totals().items()) or "nothing attributed"
        print(f"wrote {args.output}: {len(statement.lines)} line(s), {totals}", file=sys.stderr)
    return 0

