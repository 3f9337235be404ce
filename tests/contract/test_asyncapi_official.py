"""docs/asyncapi.yaml passes the official AsyncAPI validator (`asyncapi validate` of @asyncapi/cli).

The CLI comes from the npm registry through npx (Node.js: `make test` installs Debian's nodejs
and npm when they are missing and it may). ARREARS_SKIP_NODE=1 skips this test knowingly on a
machine without Node.js. The first run downloads the CLI (about a minute); npx caches it.

The official parser registers Avro under `version=1.9.0` and `1.8.2` only, so a document with
Avro 1.11's media type is valid but its Avro payloads go unchecked. The second run therefore
validates a copy with the 1.9.0 media type, in which @asyncapi/avro-schema-parser parses every
payload (the schemas use nothing newer than Avro 1.9: records, enums, arrays, unions, and the
date and timestamp-millis logical types).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from arrears.asyncapi import AVRO_FORMAT
from schemas import get_codec

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
# Pinned: 4.x runs on Debian 12's Node.js 18 as well as on Node.js 20 (5.x and later ask for Node.js 24).
CLI = "@asyncapi/cli@4.1.1"


def _npx() -> str:
    found = shutil.which("npx")
    if found:
        return found
    if os.environ.get("ARREARS_SKIP_NODE") == "1":
        pytest.skip("ARREARS_SKIP_NODE=1 and no npx on this machine")
    pytest.fail("no npx on this machine: install Node.js and npm (make test does when it may: root or "
                "password-less sudo) or set ARREARS_SKIP_NODE=1")


def _validate(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    analytics = tmp_path / "asyncapi-analytics.json"
    analytics.write_text(json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true"}), encoding="utf-8")
    # No usage metrics leave this machine: the CLI reads its analytics switch from this file.
    env = {**os.environ, "ASYNCAPI_METRICS_CONFIG_PATH": str(analytics), "NO_COLOR": "1"}
    return subprocess.run(
        [_npx(), "--yes", CLI, "validate", str(path), "--fail-severity", "warn", "--diagnostics-format", "text"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )


def test_committed_document_passes_the_official_asyncapi_validator(tmp_path: Path) -> None:
    result = _validate(DOCUMENT, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout, result.stdout


def test_every_avro_payload_passes_the_official_avro_schema_parser(tmp_path: Path) -> None:
    text = DOCUMENT.read_text(encoding="utf-8")
    assert text.count(AVRO_FORMAT) == len(get_codec().catalog.event_names)
    copy = tmp_path / "asyncapi-avro-1.9.yaml"
    copy.write_text(text.replace(AVRO_FORMAT, "application/vnd.apache.avro;version=1.9.0"), encoding="utf-8")
    result = _validate(copy, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_catches_a_broken_document(tmp_path: Path) -> None:
    """The check above would notice: a payload that is not Avro fails the parser."""
    text = DOCUMENT.read_text(encoding="utf-8").replace(AVRO_FORMAT, "application/vnd.apache.avro;version=1.9.0")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("type: record", "type: recordx", 1), encoding="utf-8")
    result = _validate(broken, tmp_path)
    assert result.returncode != 0, result.stdout
