"""The shell examples of README.md and docs/*.md, run as a newcomer would, on the embedded broker.

Every fenced ``bash``/``sh`` block is either run here or listed in ``NOT_RUN`` with the reason
(and the test that covers it instead); a new example must be one or the other. Commands run
through ``bash`` with the installed ``arrears`` on the PATH and the test's broker, topic prefix
and worker in the environment, the way the docs say to set them. Each must succeed (or, where
the docs say it refuses, refuse with a sentence) and no output may hold a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import env_for
from kafkatools import read_topic
from processes import WorkerProcess, get_json, wait_until

from arrears.broker import free_port
from arrears.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.broker]

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = str(Path(sys.executable).parent)

#: Blocks not run here, each found by a line of it, with the reason.
NOT_RUN = {
    "make demo": "the demo has its own end-to-end test (tests/e2e/test_demo.py)",
    "make test-fast": "the test suite runs itself",
    "docker compose up": "needs a Docker engine; tests/unit/test_compose.py checks the compose file",
    "make setup": "the benchmark; tests/e2e/test_bench.py runs arrears bench --quick",
    "fineract-provider/api/v1/externalevents/configuration": "talks to a Fineract server",
    "arrears fineract-bridge --schemas /opt/": "runs until stopped; tests/e2e/test_fineract_story.py runs the bridge",
    "arrears dlq list agency.results": "needs dead letters at those offsets; tests/integration/test_dlq_cli.py "
                                       "runs list, show and replay on dead letters it writes",
    "arrears asyncapi --output docs/asyncapi.yaml": "tests/unit/test_asyncapi.py runs the generator and checks the "
                                                    "committed document is what it writes",
    "arrears pause L-7": "needs cases with a settlement pending and recoveries; tests/e2e/test_treatments_e2e.py "
                         "runs pause, resume, settlement approve and statement through the CLI",
}
#: Blocks run by the test below, found the same way.
RUN = (
    "arrears publish worked-example.jsonl",
    "cat body.json; } | openssl dgst -sha256",
    "curl -sS https://arrears.lender.example/results",
    "arrears release LN-0042:1",
)


def fenced(text: str, *langs: str) -> list[str]:
    """The fenced blocks of *text* in one of *langs* (at any indentation), without the fences."""
    found = []
    for match in re.finditer(r"^( *)```(\w+)\n(.*?)^\1```", text, re.S | re.M):
        if match.group(2) in langs:
            indent = match.group(1)
            found.append("".join(line.removeprefix(indent) + "\n" for line in match.group(3).splitlines()))
    return found


def shell_blocks() -> Iterator[tuple[str, str]]:
    for path in DOCS:
        for block in fenced(path.read_text(encoding="utf-8"), "bash", "sh", "shell", "console"):
            yield path.name, block


def block_with(key: str) -> str:
    (block,) = [b for _, b in shell_blocks() if key in b]
    return block


def test_every_shell_example_is_run_here_or_says_why_not() -> None:
    for name, block in shell_blocks():
        keys = [k for k in (*NOT_RUN, *RUN) if k in block]
        assert len(keys) == 1, f"{name}: a shell example neither run by this test nor listed in NOT_RUN:\n{block}"


def bash(script: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["bash", "-c", script], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    assert "Traceback" not in result.stdout + result.stderr, f"$ {script}\n{result.stdout}\n{result.stderr}"
    return result


def commands(block: str) -> list[str]:
    """A block's commands, one a line (comments and blank lines dropped, continuations joined)."""
    joined = block.replace("\\\n", " ")
    return [line for line in (raw.split("  #")[0].strip() for raw in joined.splitlines())
            if line and not line.startswith("#")]


def shell_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = env_for(settings, ARREARS_LOG_FORMAT="text", ARREARS_LOG_LEVEL="WARNING", **extra)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def the_readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_python_sample_and_inline_commands_run_verbatim(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The publisher sample (Publishing from a loan system) and the commands quoted beside it."""
    readme = the_readme()
    settings = make_settings()
    env = shell_env(settings)
    for command in ("arrears topics", "arrears clock --date 2026-02-01"):
        assert f"`{command}`" in readme, command
    assert bash("arrears topics", env, tmp_path).returncode == 0
    (sample,) = [b for b in fenced(readme, "python") if "LoanEventPublisher(load_settings())" in b]
    result = subprocess.run([sys.executable, "-c", sample], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    names = settings.topics
    assert [r.name for r in read_topic(settings, names.loan_accounts, min_count=1, idle=0.3)] == ["LoanOpened"]
    tick = bash("arrears clock --date 2026-02-01", env, tmp_path)
    assert tick.returncode == 0 and tick.stdout.startswith("published BusinessDateChanged 2026-02-01"), tick.stderr
    ticks = read_topic(settings, names.business_date, min_count=2, idle=0.3)
    assert [t.data["business_date"].isoformat() for t in ticks] == ["2026-02-01", "2026-02-01"]  # type: ignore[index]


WORKED_EXAMPLE = [  # the README's table: what appears on collections.cases, and nothing else
    ("CaseOpened", {"dpd": 1, "bucket": "M1", "overdue_amount": 100000, "oldest_due_date": "2026-01-10"}),
    ("CaseDelinquencyChanged", {"previous_bucket": "M1", "bucket": "M2", "dpd": 31, "overdue_amount": 100000}),
    ("CaseBalanceChanged", {"previous_overdue_amount": 200000, "overdue_amount": 100000, "dpd": 1, "bucket": "M1",
                            "payment_id": "PAY-1"}),
    ("CaseClosed", {"reason": "CURED"}),
]


def test_the_docs_shell_examples_run_against_a_worker_and_an_adapter(
    make_settings: Callable[..., Settings], unique: str, tmp_path: Path
) -> None:
    secret = "docs-example-secret"
    settings = make_settings({"agencies": [{
        "id": "AG1", "buckets": ["M7+"], "capacity": 10,  # never the worked example's buckets
        "transport": {"type": "files", "outbox": str(tmp_path / "ag1" / "out"), "inbox": str(tmp_path / "ag1" / "in"),
                      "secret_env": "AG1_SECRET"},
    }]}, arrears_app_id=f"docs-{unique}")
    worker_port, adapter_port = free_port(), free_port()
    env = shell_env(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "data"),
                    ARREARS_URL=f"http://127.0.0.1:{worker_port}", AG1_SECRET=secret)
    assert bash("arrears topics", env, tmp_path).returncode == 0
    worker = WorkerProcess(env, worker_port, tmp_path).start()
    adapter = subprocess.Popen(["arrears", "adapter", "--agency", "AG1", "--port", str(adapter_port),
                                "--host", "127.0.0.1"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=open(tmp_path / "adapter.log", "wb"), start_new_session=True)  # noqa: SIM115
    try:
        worker.wait_ready()
        wait_until(lambda: _status(f"http://127.0.0.1:{adapter_port}/health") == 200, 60, message="the adapter")
        _run_the_worked_example(settings, env, tmp_path)
        _run_the_signature_examples(env, tmp_path, adapter_port, secret)
        _run_the_release_example(env, tmp_path)
        report = bash("arrears report --out report.html", env, tmp_path)
        assert report.returncode == 0 and (tmp_path / "report.html").exists(), report.stderr
    finally:
        adapter.terminate()
        adapter.wait(20)
        worker.stop()


def _status(url: str) -> int:
    try:
        return get_json(url, timeout=2)[0]
    except (OSError, ValueError):
        return 0


def _run_the_worked_example(settings: Settings, env: dict[str, str], cwd: Path) -> None:
    (lines,) = [b for b in fenced(the_readme(), "jsonl") if '"loan_id": "L-1"' in b]
    (cwd / "worked-example.jsonl").write_text(lines, encoding="utf-8")
    publish, case, loan = commands(block_with(RUN[0]))
    published = bash(publish, env, cwd)
    assert published.returncode == 0 and published.stdout.strip() == f"published {len(lines.splitlines())} records", \
        published.stderr
    shown = wait_until(lambda: (r := bash(case, env, cwd)).returncode == 0 and "CURED" in r.stdout and r, 60,
                       message=f"{case} showing the case closed")
    assert "CLOSED" in shown.stdout
    ledger = bash(loan, env, cwd)
    assert ledger.returncode == 0 and "PAY-2" in ledger.stdout, ledger.stderr
    records = [r for r in read_topic(settings, settings.topics.cases, min_count=4, idle=1.0) if r.key == b"L-1"]
    got = [(r.name, {k: _plain(r.data[k]) for k in fields}) for (_, fields), r  # type: ignore[index]
           in zip(WORKED_EXAMPLE, records, strict=False)]
    assert got == WORKED_EXAMPLE and len(records) == len(WORKED_EXAMPLE)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _run_the_signature_examples(env: dict[str, str], cwd: Path, adapter_port: int, secret: str) -> None:
    agencies = (ROOT / "docs" / "agencies.md").read_text(encoding="utf-8")
    # openssl over the example webhook body: the comment under the command gives the expected line.
    check = block_with(RUN[1])
    (body,) = [line for line in agencies.splitlines() if line.startswith('{"type":"WorkOrderCancelled"')]
    (cwd / "body.json").write_bytes(body.encode())
    (expected,) = re.findall(r"^# (\S+) for the example body", check, re.M)
    secret_used = re.search(r"the secret\s+`([^`]+)`", agencies)
    assert secret_used is not None
    signed = bash(check, {**env, "AG1_SECRET": secret_used.group(1)}, cwd)
    assert signed.returncode == 0 and signed.stdout.strip().splitlines()[-1] == expected, signed.stderr
    # curl to POST /results, pointed at this adapter instead of the lender's host name.
    post = block_with(RUN[2]).replace("https://arrears.lender.example", f"http://127.0.0.1:{adapter_port}")
    posted = bash(post, {**env, "AG1_SECRET": secret}, cwd)
    assert posted.returncode == 0 and json.loads(posted.stdout) == {"accepted": 1}, posted.stdout + posted.stderr


def _run_the_release_example(env: dict[str, str], cwd: Path) -> None:
    # A synopsis: the optional parts in brackets are left out. The case is not on hold (it does not
    # exist here), so the command refuses, as the docs say, with a sentence.
    (synopsis,) = commands(block_with(RUN[3]))
    command = re.sub(r"\s*\[[^\]]*\]", "", synopsis)
    refused = bash(command, env, cwd)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("arrears release: error: case LN-0042:1"), refused.stderr
