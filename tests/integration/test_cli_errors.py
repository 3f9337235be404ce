"""Every documented command, given a bad value of each kind of argument, answers with one sentence.

No traceback, exit status 2, and a line of stderr ``arrears <command>: error: ...`` naming
what was wrong (the option, the variable, the line or the file). Every case must stop
before it connects anywhere: the broker address points at a closed port, and each run has a
time limit. No broker is needed.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from arrears.broker import free_port

ARREARS = [sys.executable, "-m", "arrears"]
CLOSED = "127.0.0.1:9"  # nothing listens: a case that got as far as connecting would fail differently

FILES_AGENCY = {"id": "AG1", "buckets": ["M2"], "capacity": 10,
                "transport": {"type": "files", "outbox": "out", "inbox": "in", "secret_env": "AG1_TEST_SECRET"}}


def cases(tmp: Path) -> list[tuple[str, list[str], dict[str, str], str]]:
    """(what, argv, environment, what stderr must say)."""
    good = tmp / "good.yaml"
    good.write_text(yaml.safe_dump({"agencies": [FILES_AGENCY]}))
    bad = tmp / "bad.yaml"
    bad.write_text(yaml.safe_dump({"agencies": [{**FILES_AGENCY, "capacity": -1}]}))
    no_type = tmp / "no-type.jsonl"
    no_type.write_text('{"loan_id": "L-1"}\n')
    not_json = tmp / "not-json.jsonl"
    not_json.write_text('{"type": "LoanOpened",\n')
    cfg = {"ARREARS_CONFIG": str(good)}
    port = str(free_port())
    return [
        # broker: ports and hosts
        ("broker port not a number", ["broker", "--port", "x"], {}, "argument --port: expected a port"),
        ("broker port out of range", ["broker", "--port", "70000"], {}, "argument --port: expected a port"),
        ("broker unknown host", ["broker", "--host", "999.1.1.1", "--port", port], {}, "check --host"),
        # topics: the environment and the config file
        ("topics bad partitions", ["topics"], {"ARREARS_PARTITIONS": "six"}, "ARREARS_PARTITIONS"),
        ("dlq bad action", ["dlq", "purge", "loan.repayments"], {}, "invalid choice"),
        ("dlq bad offset", ["dlq", "show", "loan.repayments", "--offset", "-3"], {}, "--offset"),
        ("dlq bad partition", ["dlq", "list", "loan.repayments", "--partition", "x"], {}, "--partition"),
        ("asyncapi unwritable output", ["asyncapi", "--output", "/dev/null/asyncapi.yaml"], {}, "argument --output"),
        ("topics bad log level", ["topics"], {"ARREARS_LOG_LEVEL": "LOUD"}, "ARREARS_LOG_LEVEL"),
        ("topics bad bootstrap", ["topics"], {"KAFKA_BOOTSTRAP_SERVERS": "kafka 9092"}, "KAFKA_BOOTSTRAP_SERVERS"),
        ("topics missing config", ["topics"], {"ARREARS_CONFIG": str(tmp / "none.yaml")}, "ARREARS_CONFIG"),
        ("topics invalid config", ["topics"], {"ARREARS_CONFIG": str(bad)}, "agencies[0].capacity"),
        ("topics bad protocol", ["topics"], {"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ("topics missing TLS file", ["topics"], {"KAFKA_SSL_CA_LOCATION": str(tmp / "ca.pem")},
         "KAFKA_SSL_CA_LOCATION"),
        # worker
        ("worker web port", ["worker", "--web-port", "0"], {}, "argument --web-port"),
        ("worker web host", ["worker", "--web-host", "a b"], {}, "argument --web-host"),
        ("worker web host variable", ["worker"], {"ARREARS_WEB_HOST": "a b"}, "ARREARS_WEB_HOST"),
        ("worker store", ["worker"], {"ARREARS_STORE": "disk"}, "ARREARS_STORE"),
        ("worker data dir", ["worker"], {"ARREARS_DATA_DIR": "/dev/null/state"}, "ARREARS_DATA_DIR"),
        ("worker journal", ["worker"], {"ARREARS_JOURNAL": "sometimes"}, "ARREARS_JOURNAL"),
        ("worker log level", ["worker"], {"ARREARS_LOG_LEVEL": "LOUD"}, "ARREARS_LOG_LEVEL"),
        ("worker session timeout", ["worker"], {"ARREARS_SESSION_TIMEOUT_MS": "soon"}, "ARREARS_SESSION_TIMEOUT_MS"),
        # adapter
        ("adapter unknown agency", ["adapter", "--agency", "NOPE"], cfg, "no agency with id 'NOPE'"),
        ("adapter port", ["adapter", "--agency", "AG1", "--port", "-1"], cfg, "argument --port"),
        ("adapter missing secret", ["adapter", "--agency", "AG1", "--port", port], cfg, "AG1_TEST_SECRET"),
        ("adapter unknown host", ["adapter", "--agency", "AG1", "--host", "999.1.1.1", "--port", port],
         {**cfg, "AG1_TEST_SECRET": "s"}, "999.1.1.1"),
        ("sim-agency rate", ["sim-agency", "--agency", "AG1", "--violation-rate", "lots"], cfg, "--violation-rate"),
        ("sim-agency adapter url", ["sim-agency", "--agency", "AG1", "--adapter", "adapter"], cfg, "--adapter"),
        # clock
        ("clock date", ["clock", "--date", "2026-13-01"], {}, "argument --date: expected a date"),
        ("clock timezone", ["clock", "--daemon", "--timezone", "Mars/Olympus_Mons"], {}, "argument --timezone"),
        ("clock timezone with a date", ["clock", "--date", "2026-03-01", "--timezone", "Asia/Shanghai"], {},
         "--timezone applies to --daemon only"),
        # publish: the file and its lines
        ("publish missing file", ["publish", str(tmp / "none.jsonl")], {}, "no such file"),
        ("publish a directory", ["publish", str(tmp)], {}, "is a directory"),
        ("publish a line without type", ["publish", str(no_type)], {}, f'{no_type}:1: no "type"'),
        ("publish a line that is not JSON", ["publish", str(not_json)], {}, f"{not_json}:1: not JSON"),
        ("publish pause", ["publish", str(no_type), "--pause-after-tick", "-1"], {}, "--pause-after-tick"),
        # report
        ("report out", ["report", "--out", "/dev/null/report.html"], {}, "argument --out"),
        ("report param", ["report", "--param", "seed"], {}, "argument --param: expected NAME=VALUE"),
        # case and release: URLs and ids
        ("case url", ["case", "L-1:1", "--url", "notaurl"], {}, "argument --url"),
        ("case url variable", ["case", "L-1:1"], {"ARREARS_URL": "notaurl"}, "ARREARS_URL"),
        ("case no worker there", ["case", "L-1:1", "--url", f"http://127.0.0.1:{port}"], {},
         "--url or ARREARS_URL"),
        ("release case id", ["release", "L-1", "--reason", "done"], {}, "not of the form <loan_id>:<n>"),
        ("release without reason", ["release", "L-1:1"], {}, "--reason"),
        ("release no worker there", ["release", "L-1:1", "--reason", "done", "--url", f"http://127.0.0.1:{port}"],
         {}, "--url or ARREARS_URL"),
        # treatments (SPEC §10): dates, names, ids, months
        ("pause date", ["pause", "L-1", "--from", "2026-02-30", "--reason", "x", "--by", "ops"], {},
         "argument --from: expected a date"),
        ("pause without reason", ["pause", "L-1", "--from", "2026-02-01", "--by", "ops"], {}, "--reason"),
        ("pause without who", ["pause", "L-1", "--from", "2026-02-01", "--reason", "x"], {}, "--by"),
        ("pause inverted", ["pause", "L-1", "--from", "2026-02-10", "--until", "2026-02-01", "--reason", "x",
                            "--by", "ops"], {}, "--until 2026-02-01 is before --from 2026-02-10"),
        ("resume without date", ["resume", "L-1", "--by", "ops"], {}, "--on"),
        ("settlement decision", ["settlement", "accept", "L-1:1", "--by", "ops"], {}, "invalid choice: 'accept'"),
        ("settlement case id", ["settlement", "approve", "L-1", "--by", "ops"], {}, "not of the form <loan_id>:<n>"),
        ("settlement no worker there", ["settlement", "approve", "L-1:1", "--by", "ops", "--url",
                                        f"http://127.0.0.1:{port}"], {}, "--url or ARREARS_URL"),
        ("statement month", ["statement", "--agency", "AG1", "--month", "2026-13"], {},
         "argument --month: expected a month YYYY-MM"),
        ("statement format", ["statement", "--agency", "AG1", "--month", "2026-03", "--format", "pdf"], {},
         "argument --format"),
        ("statement output", ["statement", "--agency", "AG1", "--month", "2026-03", "--output",
                              "/dev/null/s.csv"], {}, "argument --output"),
        # simulate and demo
        ("simulate loans", ["simulate", "--loans", "0"], {}, "argument --loans"),
        ("simulate start date", ["simulate", "--start-date", "tomorrow"], {}, "argument --start-date"),
        ("simulate rate", ["simulate", "--violation-rate", "1.5"], {}, "argument --violation-rate"),
        ("simulate speed", ["simulate", "--days-per-second", "-1"], {}, "argument --days-per-second"),
        ("simulate agency url", ["simulate", "--agency", "AG1=adapter"], cfg, "argument --agency"),
        ("simulate unknown agency", ["simulate", "--agency", "NOPE"], cfg, "no agency with id 'NOPE'"),
        ("simulate worker url", ["simulate", "--worker-url", "worker"], {}, "argument --worker-url"),
        ("simulate settle", ["simulate", "--settle", "-1"], {}, "argument --settle"),
        ("simulate settle with workers", ["simulate", "--settle", "2", "--worker-url", "http://127.0.0.1:6066"], {},
         "--settle applies only without --worker-url"),
        ("demo days", ["demo", "--days", "many"], {}, "argument --days"),
        ("demo report", ["demo", "--report", "/dev/null/report.html"], {}, "argument --report"),
        ("demo missing config", ["demo", "--config", str(tmp / "none.yaml")], {}, "argument --config"),
        ("demo invalid config", ["demo", "--config", str(bad)], {}, "agencies[0].capacity"),
        ("demo log level", ["demo"], {"ARREARS_LOG_LEVEL": "LOUD"}, "ARREARS_LOG_LEVEL"),
        # the Fineract bridge and the bench
        ("bridge schemas", ["fineract-bridge", "--schemas", str(tmp / "none")], {}, "argument --schemas"),
        ("bridge timezone", ["fineract-bridge", "--schemas", str(tmp), "--customer-timezone", "Mars/X"], {},
         "argument --customer-timezone"),
        ("bridge due events", ["fineract-bridge", "--schemas", str(tmp), "--due-events", "maybe"], {},
         "argument --due-events"),
        ("bench json", ["bench", "--json", "/dev/null/bench.json"], {}, "argument --json"),
        ("bench workdir", ["bench", "--workdir", "/dev/null/work"], {}, "argument --workdir"),
        ("an unknown command", ["frobnicate"], {}, "invalid choice: 'frobnicate'"),
    ]


#: Cases that change process-wide state past their checks (signal handlers, client threads):
#: run as processes only.
PROCESS_ONLY = {"adapter unknown host", "adapter missing secret"}


def _clean_environment() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ARREARS_", "KAFKA_", "SCHEMA_REGISTRY"))}
    base["KAFKA_BOOTSTRAP_SERVERS"] = CLOSED
    return base


def _problem(what: str, argv: list[str], says: str, code: int, stderr: str) -> str | None:
    prefix = f"arrears {argv[0]}: error: " if argv[0] != "frobnicate" else "arrears: error: "
    sentence = any(line.startswith(prefix) for line in stderr.splitlines())
    if "Traceback" in stderr or code != 2 or says not in stderr or not sentence:
        return f"{what}: arrears {' '.join(argv)} -> {code}\n{stderr[-1500:]}"
    return None


def test_bad_input_gets_one_sentence_from_main(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The quick check, in this process: nothing escapes ``main`` and each answer names the problem."""
    from arrears.cli import main

    monkeypatch.chdir(tmp_path)
    problems = []
    root = logging.getLogger()
    for what, argv, env, says in cases(tmp_path):
        if what in PROCESS_ONLY:
            continue
        handlers, level = root.handlers[:], root.level
        with monkeypatch.context() as m:
            for name in list(os.environ):
                if name.startswith(("ARREARS_", "KAFKA_", "SCHEMA_REGISTRY")):
                    m.delenv(name)
            for name, value in {"KAFKA_BOOTSTRAP_SERVERS": CLOSED, **env}.items():
                m.setenv(name, value)
            escaped = ""
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse's own errors
                code = int(exit_.code or 0)
            except Exception as exc:  # noqa: BLE001 - what a user would see as a traceback
                code, escaped = -1, f"Traceback: {type(exc).__name__}: {exc}"
            finally:
                root.handlers[:], root.level = handlers, level
        stderr = capsys.readouterr().err + escaped
        problem = _problem(what, argv, says, code, stderr)
        if problem:
            problems.append(problem)
    assert not problems, "\n\n".join(problems)


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ARREARS, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.slow  # about sixty processes
def test_every_documented_command_answers_bad_input_with_one_sentence_and_no_traceback(tmp_path: Path) -> None:
    base = _clean_environment()
    table = cases(tmp_path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda case: _run(case[1], {**base, **case[2]}, tmp_path), table))
    problems = [_problem(what, argv, says, result.returncode, result.stderr)
                for (what, argv, _env, says), result in zip(table, results, strict=True)]
    assert not [p for p in problems if p], "\n\n".join(p for p in problems if p)


def test_the_table_covers_every_command(tmp_path: Path) -> None:
    from arrears.cli import build_parser

    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) <= {argv[0] for _, argv, _, _ in cases(tmp_path)}
