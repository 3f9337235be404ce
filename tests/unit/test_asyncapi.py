"""The AsyncAPI document: fresh, complete against SPEC §2 and the schemas, and its JSON Schemas agree with the codec.

The official AsyncAPI validator runs on the committed file in tests/contract/test_asyncapi_official.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from arrears.asyncapi import AGENCY_PLACEHOLDER, AVRO_FORMAT, build_document, channel_id, render_yaml
from arrears.asyncapi_html import render_html
from arrears.topics import INPUT_ROUTES, TOPIC_CATALOG, TopicNames
from schemas import from_json, get_codec, to_json
from schemas.catalog import SCHEMA_DIR
from schemas.errors import SchemaViolationError

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "SPEC.md"
REGENERATE = "run `arrears asyncapi --output docs/asyncapi.yaml --html docs/asyncapi.html` and commit the result"
CATALOG = get_codec().catalog


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document()


def spec_topics() -> dict[str, tuple[str, bool, set[str]]]:
    """SPEC §2's table: topic → (key, co-partitioned, record types)."""
    section = SPEC.read_text(encoding="utf-8").split("## 2. Topics", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, bool, set[str]]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`") or ".dlq" in cells[0]:
            continue
        topic = re.search(r"`([^`]+)`", cells[0]).group(1).replace("<agency_id>", AGENCY_PLACEHOLDER)  # type: ignore[union-attr]
        types = re.sub(r"\{[^}]*\}|\([^)]*\)", "", cells[4])
        rows[topic] = (cells[1].split()[0], "co-partitioned" in cells[0], set(re.findall(r"\b[A-Z][A-Za-z]+\b", types)))
    return rows


# --------------------------------------------------------------------------- fresh
def test_committed_document_is_what_the_generator_writes_now(document: dict[str, Any]) -> None:
    committed = (ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert committed == render_yaml(document), f"docs/asyncapi.yaml is stale: {REGENERATE}"


def test_committed_html_page_is_what_the_generator_writes_now(document: dict[str, Any]) -> None:
    committed = (ROOT / "docs" / "asyncapi.html").read_text(encoding="utf-8")
    assert committed == render_html(document), f"docs/asyncapi.html is stale: {REGENERATE}"


def test_the_cli_writes_the_same_document(tmp_path: Path) -> None:
    from arrears.cli import main

    out, page = tmp_path / "asyncapi.yaml", tmp_path / "asyncapi.html"
    assert main(["asyncapi", "--output", str(out), "--html", str(page)]) == 0
    assert out.read_text(encoding="utf-8") == (ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_the_html_page_is_self_contained(document: dict[str, Any]) -> None:
    page = render_html(document)
    assert "<script" not in page and not re.search(r"""(src|href)=['"]https?:""", page)
    for channel in document["channels"].values():
        if channel.get("address"):
            assert channel["address"] in page


# --------------------------------------------------------------------------- complete
def test_every_topic_of_spec_section_2_is_a_channel_with_its_key_and_records(document: dict[str, Any]) -> None:
    rows = spec_topics()
    assert len(rows) >= 12, "SPEC §2's table was not read"
    by_address = {c["address"]: c for c in document["channels"].values() if c.get("address")}
    for topic, (key, co_partitioned, types) in rows.items():
        channel = by_address.get(topic)
        assert channel is not None, f"SPEC §2 topic {topic} has no channel"
        assert channel["x-arrears-key"] == key, topic
        entry = next(e for e in TOPIC_CATALOG if e.base == topic)
        assert entry.co_partitioned == co_partitioned, topic
        described = set(channel["messages"]) | set(channel.get("x-arrears-planned-messages", ()))
        assert types <= described, f"{topic}: {sorted(types - described)} missing"


def test_every_event_schema_is_a_message_of_the_channel_of_its_topic(document: dict[str, Any]) -> None:
    carried = {name: e.base for e in TOPIC_CATALOG for name in e.records}
    for name in CATALOG.event_names:
        assert name in carried, f"schemas/{name}.avsc is on no topic: add it to TOPIC_CATALOG in arrears/topics.py"
        channel = document["channels"][channel_id(carried[name])]
        assert name in channel["messages"], name
        assert name not in channel.get("x-arrears-planned-messages", ())


def test_records_without_a_schema_are_listed_as_planned_not_as_messages(document: dict[str, Any]) -> None:
    for entry in TOPIC_CATALOG:
        channel = document["channels"][channel_id(entry.base)]
        missing = [r for r in entry.records if r not in CATALOG.records]
        assert channel.get("x-arrears-planned-messages", []) == missing
        assert not set(missing) & set(channel["messages"])


def test_input_routes_agree_with_the_catalog() -> None:
    carried = {name: e.base for e in TOPIC_CATALOG for name in e.records}
    for name, topic in INPUT_ROUTES.items():
        assert carried[name] == topic, name


def test_channels_carry_the_partitions_and_retention_that_arrears_topics_sets(document: dict[str, Any]) -> None:
    specs = {s.name: s for s in TopicNames().specs(6, [AGENCY_PLACEHOLDER]) if not s.name.endswith(".dlq")}
    channels = {c["address"]: c for c in document["channels"].values() if c.get("address")}
    for name, spec in specs.items():
        binding = channels[name]["bindings"]["kafka"]
        assert binding["partitions"] == spec.partitions, name
        config = dict(spec.config)
        if "retention.ms" in config:
            assert binding["topicConfiguration"]["retention.ms"] == int(config["retention.ms"]), name
        if "cleanup.policy" in config:
            assert binding["topicConfiguration"]["cleanup.policy"] == config["cleanup.policy"].split(","), name
        assert "x-arrears-status" not in channels[name]
    for entry in TOPIC_CATALOG:
        if entry.base not in specs:
            assert document["channels"][channel_id(entry.base)]["x-arrears-status"] == "planned"


def test_kafka_messages_are_the_avsc_files_with_their_framings(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    for name in CATALOG.event_names:
        message, record = messages[name], CATALOG.record(name)
        assert message["payload"] == {"schemaFormat": AVRO_FORMAT, "schema": record.expanded}
        assert message["headers"]["properties"]["event_type"]["const"] == name
        assert message["x-arrears-fingerprint"] == record.fingerprint.hex()
        assert message["x-arrears-confluent-subject"].endswith(f"-arrears.v1.{name}")


def test_a_new_schema_file_shows_up_in_the_next_document(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, schemas, ignore=shutil.ignore_patterns("*.py", "__pycache__", "released"))
    (schemas / "PiiAccessed.avsc").write_text(json.dumps({
        "type": "record", "name": "PiiAccessed", "namespace": "arrears.v1", "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "token_name", "type": "string"}, {"name": "endpoint", "type": "string"},
            {"name": "case_id", "type": ["null", "string"], "default": None},
            {"name": "loan_id", "type": ["null", "string"], "default": None},
            {"name": "customer_id", "type": "string"}]}), encoding="utf-8")
    audit = build_document(schemas)["channels"]["collectionsAudit"]
    assert "PiiAccessed" in audit["messages"]
    assert "x-arrears-planned-messages" not in audit


# --------------------------------------------------------------------------- JSON form over HTTP
def _sample(schema: Any, variant: int) -> Any:
    """A valid Avro value of *schema*: variant 0 is the smallest (nulls, empty arrays), 1 the fullest."""
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        return None if variant == 0 and "null" in schema else _sample(branches[0], variant)
    if isinstance(schema, str):
        return {"string": "x", "int": 3, "long": 12_345, "boolean": True, "double": 0.25}[schema]
    logical = schema.get("logicalType")
    if logical == "date":
        return dt.date(2026, 3, 1)
    if logical == "timestamp-millis":
        return dt.datetime(2026, 3, 1, 2, 15, tzinfo=dt.UTC)
    kind = schema["type"]
    if kind == "record":
        return {f["name"]: _sample(f["type"], variant) for f in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][variant % len(schema["symbols"])]
    if kind == "array":
        return [] if variant == 0 else [_sample(schema["items"], variant)]
    return _sample(kind, variant)


def _http_records(document: dict[str, Any]) -> list[str]:
    return sorted(k.removesuffix("Json") for k in document["components"]["messages"] if k.endswith("Json"))


def _validator(document: dict[str, Any], name: str) -> jsonschema.Draft7Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft7Validator(root)


def test_http_records_are_the_work_orders_and_the_results(document: dict[str, Any]) -> None:
    assert _http_records(document) == sorted([
        "WorkOrderIssued", "WorkOrderUpdated", "WorkOrderCancelled", *(
            r for r in ("ContactAttempted", "PromiseToPay", "DisputeRaised", "ComplaintReceived",
                        "CeaseContactRequested", "CaseReturned", "SettlementProposed") if r in CATALOG.records)])


def test_json_form_of_every_http_record_passes_its_json_schema(document: dict[str, Any]) -> None:
    for name in _http_records(document):
        record = CATALOG.record(name)
        for variant in (0, 1, 2):
            obj = json.loads(json.dumps(to_json(CATALOG, name, _sample(record.expanded, variant))))
            errors = [e.message for e in _validator(document, name).iter_errors(obj)]
            assert not errors, (name, variant, errors)


def _mutations(obj: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [("unknown field", {**obj, "zz_unknown": 1}), ("no type", {k: v for k, v in obj.items() if k != "type"})]
    for field in schema["fields"]:
        name = field["name"]
        if "default" not in field:
            out.append((f"without {name}", {k: v for k, v in obj.items() if k != name}))
        kind = field["type"]
        if isinstance(kind, str) and kind in ("int", "long"):
            out.append((f"{name} as a string", {**obj, name: "12"}))
        if isinstance(kind, dict) and kind.get("type") == "enum":
            out.append((f"{name} unknown symbol", {**obj, name: "NOT_A_SYMBOL"}))
        if isinstance(kind, dict) and kind.get("type") == "record":
            nested = copy.deepcopy(obj)
            nested[name] = {**nested[name], "zz_unknown": "x"}
            out.append((f"{name} with an unknown field", nested))
    return out


def test_json_schema_refuses_exactly_what_the_codec_refuses(document: dict[str, Any]) -> None:
    for name in _http_records(document):
        record = CATALOG.record(name)
        obj = json.loads(json.dumps(to_json(CATALOG, name, _sample(record.expanded, 1))))
        for what, bad in _mutations(obj, record.expanded):
            try:
                from_json(CATALOG, bad)
                codec_accepts = True
            except SchemaViolationError:
                codec_accepts = False
            schema_accepts = _validator(document, name).is_valid(bad)
            assert codec_accepts == schema_accepts, (name, what, codec_accepts)


def test_agency_examples_in_the_docs_pass_the_json_schemas(document: dict[str, Any]) -> None:
    doc = (ROOT / "docs" / "agencies.md").read_text(encoding="utf-8")
    examples = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", doc, re.S)]
    assert len(examples) >= 7
    for example in examples:
        errors = [e.message for e in _validator(document, example["type"]).iter_errors(example)]
        assert not errors, (example["type"], errors)


def test_every_message_of_an_operation_belongs_to_its_channel(document: dict[str, Any]) -> None:
    for op_id, op in document["operations"].items():
        channel = op["channel"]["$ref"]
        for ref in op["messages"] + op.get("reply", {}).get("messages", []):
            assert ref["$ref"].startswith(channel + "/messages/"), (op_id, ref)
            assert ref["$ref"].rsplit("/", 1)[1] in document["channels"][channel.rsplit("/", 1)[1]]["messages"]


def test_document_is_plain_yaml_that_round_trips(document: dict[str, Any]) -> None:
    assert yaml.safe_load(render_yaml(document)) == json.loads(json.dumps(document))
