"""A self-contained HTML page of the AsyncAPI document, for engineers without AsyncAPI tooling.

Rendered from the same dict as ``docs/asyncapi.yaml`` (so the two never disagree): the agency
HTTP operations first (what an agency receives and sends, with every field), then every topic
with its key, partitions, retention, writers, readers and records. One file, inline CSS, no
script and nothing fetched from elsewhere.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

CSS = """
body { font-family: -apple-system, "Segoe UI", "Noto Sans", "Helvetica Neue", Arial, sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; } h3 { margin-top: 1.6em; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; font-size: 90%; }
table { border-collapse: collapse; margin: .6em 0 1em; width: 100%; font-size: 92%; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f6f6f6; } .planned { color: #8a5a00; } .muted { color: #666; font-size: 90%; }
nav ul { columns: 2; }
"""


# --------------------------------------------------------------------------- text
def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


_BULLET = re.compile(r"^(- |\d+\. )")


def markdown(text: str) -> str:
    """The small Markdown the document's descriptions use: paragraphs, ## headings, lists."""
    parts: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if lines[0].startswith("## "):
            parts.append(f"<h3>{_inline(lines[0][3:])}</h3>")
            lines = lines[1:]
            if not lines:
                continue
        items = re.split(r"\n(?=- |\d+\. )", "\n".join(lines))
        if _BULLET.match(items[0]):
            tag = "ol" if items[0][0].isdigit() else "ul"
            body = "".join(f"<li>{_inline(_BULLET.sub('', item))}</li>" for item in items)
            parts.append(f"<{tag}>{body}</{tag}>")
        else:
            parts.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(parts)


def _resolve(document: dict[str, Any], node: Any) -> Any:
    """Follow local ``$ref`` pointers (``#/components/...``) until a real node."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


# --------------------------------------------------------------------------- fields
def avro_fields(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(field path, type, description) for every field of an Avro record, nested ones dotted."""
    for field in schema.get("fields", ()):
        path = f"{prefix}{field['name']}"
        kind, nested = _avro_type(field["type"])
        doc = field.get("doc", "")
        if "default" in field:
            doc = (doc + " " if doc else "") + f"Default {field['default']!r}."
        yield path, kind, doc
        if nested is not None:
            yield from avro_fields(nested, f"{path}{'[]' if kind.startswith('array') else ''}.")


def _avro_type(node: Any) -> tuple[str, dict[str, Any] | None]:
    if isinstance(node, str):
        return node.rsplit(".", 1)[-1], None
    if isinstance(node, list):
        kinds = [_avro_type(b) for b in node]
        nested = next((n for _, n in kinds if n is not None), None)
        return " | ".join(k for k, _ in kinds), nested
    kind = node["type"]
    if node.get("logicalType"):
        return node["logicalType"], None
    if kind == "record":
        return f"{node['name']} (record)", node
    if kind == "enum":
        return f"{node['name']}: one of {', '.join(node['symbols'])}", None
    if kind == "array":
        inner, nested = _avro_type(node["items"])
        return f"array of {inner}", nested
    if kind == "map":
        inner, nested = _avro_type(node["values"])
        return f"map of {inner}", nested
    return _avro_type(kind)


def json_fields(document: dict[str, Any], schema: Any, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(field path, type, description) for every property of a JSON-form schema, nested ones dotted."""
    schema = _resolve(document, schema)
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        kind, nested = _json_type(document, prop)
        description = prop.get("description") or _resolve(document, prop).get("description", "")
        if name not in required:
            description = (description + " " if description else "") + "Optional."
        yield f"{prefix}{name}", kind, description
        if nested is not None:
            yield from json_fields(document, nested, f"{prefix}{name}{'[]' if kind.startswith('array') else ''}.")


def _json_type(document: dict[str, Any], node: Any) -> tuple[str, Any]:
    if "allOf" in node:
        return _json_type(document, node["allOf"][0])
    if "$ref" in node:
        target = _resolve(document, node)
        name = node["$ref"].rsplit("/", 1)[1]
        if target.get("enum"):
            return f"{name}: one of {', '.join(target['enum'])}", None
        return f"{name} (object)", node
    if "oneOf" in node:
        kinds = [_json_type(document, b) for b in node["oneOf"]]
        return " | ".join(k for k, _ in kinds), next((n for _, n in kinds if n is not None), None)
    if "const" in node:
        return f"\"{node['const']}\"", None
    if node.get("type") == "array":
        inner, nested = _json_type(document, node["items"])
        return f"array of {inner}", nested
    if node.get("format") in ("date", "date-time"):
        return f"string ({node['format']})", None
    return str(node.get("type", "any")), None


def _table(rows: list[tuple[str, str, str]], head: tuple[str, str, str] = ("field", "type", "meaning")) -> str:
    cells = "".join(
        f"<tr><td><code>{html.escape(a)}</code></td><td>{html.escape(b)}</td><td>{_inline(c)}</td></tr>"
        for a, b, c in rows
    )
    return f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{cells}</table>"


# --------------------------------------------------------------------------- sections
def _headers_table(document: dict[str, Any], message: dict[str, Any]) -> str:
    headers = _resolve(document, message.get("headers") or {})
    if not headers.get("properties"):
        return ""
    rows = []
    required = set(headers.get("required", ()))
    for name, prop in headers["properties"].items():
        kind = f"\"{prop['const']}\"" if "const" in prop else prop.get("pattern", prop.get("type", ""))
        note = prop.get("description", "") + ("" if name in required else " Optional.")
        rows.append((name, str(kind), note.strip()))
    return "<p>Headers:</p>" + _table(rows, ("header", "value", "meaning"))


def _http_operation(document: dict[str, Any], op_id: str, op: dict[str, Any]) -> str:
    channel = _resolve(document, op["channel"])
    method = op.get("bindings", {}).get("http", {}).get("method", "")
    where = channel["address"] or "the agency's URL"
    out = [f"<h3 id='{op_id}'>{html.escape(op['title'])}: <code>{method} {html.escape(where)}</code></h3>",
           markdown(channel.get("description", "")), f"<p>{_inline(op.get('summary', ''))}</p>"]
    shown = ""
    for ref in op["messages"]:
        message = _resolve(document, ref)
        out.append(f"<h4>{html.escape(message['title'])}</h4><p>{_inline(message.get('summary', ''))}</p>")
        headers = _headers_table(document, message)
        out.append(headers if headers != shown else "<p>Headers: as above.</p>")
        shown = headers
        payload = message["payload"]
        if payload.get("type") == "array":
            names = [r["$ref"].rsplit("/", 1)[1] for r in payload["items"]["oneOf"]]
            out.append(f"<p>Body: a JSON array of {', '.join(names)} (each as above).</p>")
        else:
            out.append(_table(list(json_fields(document, payload))))
    replies = [_resolve(document, ref) for ref in op.get("reply", {}).get("messages", ())]
    rows = [(str(r["bindings"]["http"]["statusCode"]), r["name"], r.get("summary", "")) for r in replies]
    out.append("<p>Answers:</p>" + _table(rows, ("status", "name", "meaning")))
    return "\n".join(out)


def _kafka_channel(document: dict[str, Any], cid: str, channel: dict[str, Any]) -> str:
    status = " <span class='planned'>(planned)</span>" if channel.get("x-arrears-status") == "planned" else ""
    out = [f"<h3 id='{cid}'><code>{html.escape(channel['address'])}</code>{status}</h3>",
           markdown(channel.get("description", ""))]
    for name, ref in channel.get("messages", {}).items():
        message = _resolve(document, ref)
        payload = message["payload"]
        schema = payload.get("schema", payload)
        out.append(f"<h4>{html.escape(name)}</h4><p>{_inline(message.get('summary', ''))}</p>")
        if "x-arrears-fingerprint" in message:
            out.append(f"<p class='muted'>Single-object prefix <code>c301{message['x-arrears-fingerprint']}</code>; "
                       f"registry subject <code>{html.escape(message['x-arrears-confluent-subject'])}</code>; "
                       f"header <code>event_type: {html.escape(name)}</code>.</p>")
        if "fields" in schema:
            out.append(_table(list(avro_fields(schema))))
        else:
            out.append(f"<p>{_inline(schema.get('description', ''))}</p>")
            out.append(_headers_table(document, message))
    return "\n".join(out)


def render_html(document: dict[str, Any]) -> str:
    """The whole page, as one string."""
    info = document["info"]
    http_ops = {k: v for k, v in document["operations"].items() if "http" in v.get("bindings", {})}
    kafka = {k: v for k, v in document["channels"].items() if v.get("servers") == [{"$ref": "#/servers/kafka"}]}
    toc = "".join(f"<li><a href='#{k}'>{html.escape(v['title'])}</a></li>" for k, v in http_ops.items())
    toc += "".join(f"<li><a href='#{k}'><code>{html.escape(v['address'])}</code></a></li>" for k, v in kafka.items())
    overview = [(c["address"], c.get("x-arrears-key", "as the source"), "; ".join(c.get("x-arrears-written-by", ())),
                 "; ".join(c.get("x-arrears-read-by", ())) + ("" if "x-arrears-status" not in c else " (planned)"))
                for c in kafka.values()]
    overview_rows = "".join(
        "<tr>" + "".join(f"<td>{_inline(x) if i else f'<code>{html.escape(x)}</code>'}</td>"
                         for i, x in enumerate(row)) + "</tr>" for row in overview)
    body = [
        f"<h1>{html.escape(info['title'])} {html.escape(info['version'])}: topics, records and agency HTTP</h1>",
        f"<p class='muted'>Rendered from AsyncAPI {document['asyncapi']} (<code>docs/asyncapi.yaml</code>, "
        "generated by <code>arrears asyncapi</code>): do not edit by hand.</p>",
        f"<nav><ul>{toc}</ul></nav>",
        markdown(info["description"]),
        "<h2>Agencies: HTTP</h2>",
        *(_http_operation(document, k, v) for k, v in http_ops.items()),
        "<h2>Kafka topics</h2>",
        "<table><tr><th>topic</th><th>key</th><th>written by</th><th>read by</th></tr>" + overview_rows + "</table>",
        *(_kafka_channel(document, k, v) for k, v in kafka.items()),
    ]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(info['title'])} contract</title><style>{CSS}</style></head><body>\n"
            + "\n".join(part for part in body if part) + "\n</body></html>\n")
