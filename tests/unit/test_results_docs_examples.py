"""The examples agencies copy from docs/agencies.md are exactly what the adapter sends and accepts."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from consumers.csvformat import (
    WORK_ORDER_COLUMNS,
    parse_result_file,
    rejected_rows_csv,
    render_csv,
    work_order_row,
)
from consumers.results import parse_results
from consumers.signing import sign
from consumers.webhook import render_body
from schemas import from_json, get_codec

DOC = (Path(__file__).resolve().parents[2] / "docs" / "agencies.md").read_text(encoding="utf-8")
CATALOG = get_codec().catalog
EXAMPLE_T = 1773021605  # the example request's t: 2026-03-09T02:00:05Z


def blocks(lang: str) -> list[str]:
    return [b for b in re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)]


def json_examples() -> dict[str, dict[str, object]]:
    return {obj["type"]: obj for obj in (json.loads(b) for b in blocks("json"))}


def test_every_json_example_is_a_valid_record_and_results_are_accepted_by_the_endpoint() -> None:
    examples = json_examples()
    assert set(examples) == {
        "WorkOrderIssued",
        "WorkOrderUpdated",
        "WorkOrderCancelled",
        "ContactAttempted",
        "PromiseToPay",
        "DisputeRaised",
        "CaseReturned",
        "SettlementProposed",
    }
    for obj in examples.values():
        from_json(CATALOG, obj)
    results = [o for t, o in examples.items() if not t.startswith("WorkOrder")]
    assert len(parse_results(CATALOG, json.dumps(results).encode(), "AG1")) == 5


def test_the_webhook_example_body_and_signature_are_what_the_adapter_sends() -> None:
    name, value = from_json(CATALOG, json_examples()["WorkOrderCancelled"])
    body = render_body(CATALOG, name, value)
    assert body.decode() in DOC
    signature = sign("demo-secret-AG1", body, EXAMPLE_T)
    assert f"X-Arrears-Signature: {signature}" in DOC
    assert f"# {signature.split(',')[1]} for the example body" in DOC


def test_the_documented_python_verifier_accepts_the_adapters_signature_and_refuses_replays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (code,) = (b for b in blocks("python") if "def verify(" in b)
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 - our own documentation
    verify = namespace["verify"]
    body = b'{"type":"WorkOrderCancelled"}'
    header = sign("new", body, EXAMPLE_T)
    monkeypatch.setattr(time, "time", lambda: EXAMPLE_T + 10.0)
    assert verify([b"new", b"old"], body, header)
    assert not verify([b"old"], body, header)
    assert not verify([b"new"], body + b" ", header)
    assert not verify([b"new"], body, None) and not verify([b"new"], body, "sha256=abc")
    monkeypatch.setattr(time, "time", lambda: EXAMPLE_T + 301.0)
    assert not verify([b"new"], body, header)  # replayed five minutes later


def test_the_documented_openssl_command_gives_the_adapters_signature(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl on this machine")
    (snippet,) = (b for b in blocks("sh") if "body.json" in b)
    name, value = from_json(CATALOG, json_examples()["WorkOrderCancelled"])
    (tmp_path / "body.json").write_bytes(render_body(CATALOG, name, value))
    done = subprocess.run(["bash", "-c", snippet], cwd=tmp_path, capture_output=True, text=True,
                          env={"AG1_SECRET": "demo-secret-AG1", "PATH": os.environ["PATH"]}, check=True)
    signature = sign("demo-secret-AG1", render_body(CATALOG, name, value), EXAMPLE_T)
    assert done.stdout.strip() == signature.split(",")[1]


def test_the_outbox_example_is_what_the_adapter_writes_for_the_json_examples() -> None:
    examples = json_examples()
    rows = [
        work_order_row(examples[t]) for t in ("WorkOrderIssued", "WorkOrderUpdated", "WorkOrderCancelled")
    ]
    outbox = [b for b in blocks("csv") if b.startswith("type,event_id,occurred_at,work_order_id")]
    assert outbox == [render_csv(WORK_ORDER_COLUMNS, rows).replace("\r\n", "\n")]


def test_the_inbox_example_gives_the_documented_rejected_file() -> None:
    (inbox,) = (b for b in blocks("csv") if b.startswith("type,event_id,occurred_at,agency_id"))
    columns, rows = parse_result_file(
        CATALOG, inbox.encode(), agency_id="AG2", default_occurred_at=dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    )
    bad = [r for r in rows if r.reason]
    assert [r.row for r in bad] == [3]
    indented = re.search(r"\n   ```csv\n(.*?)   ```", DOC, re.S)  # the rejected file, inside a list item
    assert indented is not None
    documented = "".join(line.removeprefix("   ") + "\n" for line in indented.group(1).splitlines())
    assert rejected_rows_csv(columns, bad).replace("\r\n", "\n") == documented
