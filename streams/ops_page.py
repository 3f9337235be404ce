"""The ops page every worker serves at ``GET /``: a collections supervisor's workbench, live.

One static HTML page with its script inline (no external assets, no chart library: it works on a
machine with no internet). The page itself holds no data: it is the sign-in form and the script.
The browser fetches the JSON query API every few seconds, sending ``Authorization: Bearer
<token>`` once signed in:

* **work queues** (``/workbench/queues``): promises broken since the last tick (or the last 7 or
  30 business dates), contact-rule violations by rule and agency, cases waiting for an agency,
  cases on hold with a *release* action for a token with the ``act`` scope
  (``POST /cases/{id}/release``), settlements pending a person's decision with *approve* and
  *reject* actions (``POST /cases/{id}/settlement/approve|reject``), and paused loans;
* **charts**, drawn as inline SVG by the page's own script: open cases and overdue amount by
  bucket over business dates and agency KPIs over time (``/workbench/history``), the roll-rate
  matrix as a heat map (``/portfolio``);
* **portfolio and agencies** (``/portfolio``, ``/agencies/{id}/kpis``, ``/agencies/{id}/cases``);
* **search** (``/search``) by case, loan or customer id, and by phone or name for a ``pii``
  token; a case shows its state, timeline, treatments (SPEC §10: its pause and settlement) and
  debtor (``/cases/{id}``, ``/cases/{id}/timeline``, ``/cases/{id}/treatments``,
  ``/loans/{loan_id}``), a customer the **debtor view** with all the debtor's cases and contacts
  (``/customers/{id}``).

Signing in: the page asks for a token (or takes it from a ``#token=...`` link, which the demo
prints: a URL fragment never reaches a server or its logs) and keeps it in ``sessionStorage``:
for this browser tab's session only, gone when the tab closes or on "sign out". A 401 signs the
page out. Personal data is shown as the API gives it: masked for a ``read`` token, whole for a
``pii`` one. A section whose endpoint is missing or failing says so and the others carry on.
Data reaches the page only through ``textContent`` and SVG attributes, never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from arrears.report import AGENCY_COLOURS, BUCKET_COLOURS

if TYPE_CHECKING:
    from .app import Worker

REFRESH_SECONDS = 3

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Arrears ops</title>
<link rel="icon" href="data:,">
<style>
  body { font-family: -apple-system, "Segoe UI", "Noto Sans", Arial, sans-serif; margin: 0; color: #222;
         background: #f4f5f7; }
  header { background: #1f3b5a; color: #fff; padding: .7rem 1.2rem; display: flex; gap: 1.5rem;
           align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 1.2rem; margin: 0; } header span { opacity: .85; font-size: .9rem; }
  main { padding: 1rem 1.2rem; max-width: 1320px; }
  section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: .8rem 1rem;
            margin-bottom: 1rem; }
  h2 { font-size: 1rem; margin: 0 0 .6rem; display: flex; gap: .8rem; align-items: baseline; }
  h2 select { font-size: .8rem; font-weight: normal; }
  h3 { font-size: .9rem; margin: 0 0 .4rem; display: flex; gap: .5rem; align-items: baseline; }
  .tiles { display: flex; gap: .8rem; flex-wrap: wrap; margin-bottom: .6rem; }
  .tile { border: 1px solid #e3e3e3; border-radius: 6px; padding: .4rem .8rem; min-width: 8rem; }
  .tile b { display: block; font-size: 1.25rem; } .tile span { color: #666; font-size: .78rem; }
  table { border-collapse: collapse; font-size: .82rem; }
  th, td { border-bottom: 1px solid #eee; padding: .22rem .5rem; text-align: left; white-space: nowrap; }
  th { background: #f4f4f4; } .panel td:last-child { white-space: normal; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .cols { display: flex; gap: 1.5rem; flex-wrap: wrap; align-items: flex-start; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(600px, 1fr)); gap: .8rem; }
  .panel { border: 1px solid #e6e6e6; border-radius: 6px; padding: .5rem .7rem; overflow-x: auto; }
  .count { background: #1f3b5a; color: #fff; border-radius: 9px; padding: 0 .5rem; font-size: .78rem; }
  .count.zero { background: #9aa5b1; }
  .panel.unavailable { opacity: .6; }
  .error { color: #a33; font-size: .85rem; } .muted { color: #777; font-size: .82rem; }
  .ok { color: #2d6a3e; font-size: .85rem; }
  form { display: flex; gap: .5rem; margin-bottom: .6rem; flex-wrap: wrap; }
  input, select { font: inherit; padding: .3rem .5rem; } #case-id { min-width: 20rem; }
  button { font: inherit; padding: .25rem .8rem; cursor: pointer; }
  td button, td input { font-size: .8rem; padding: .1rem .4rem; }
  ol.timeline { margin: .4rem 0 0; padding-left: 1.4rem; font-size: .85rem; }
  ol.timeline li { margin: .2rem 0; } ol.timeline .type { font-weight: 600; }
  a.case { color: #1f5fa0; cursor: pointer; text-decoration: underline; }
  .chart svg { display: block; max-width: 100%; height: auto; }
  .legend { display: flex; gap: .7rem; flex-wrap: wrap; font-size: .75rem; color: #444; margin-top: .2rem; }
  .legend i { display: inline-block; width: .7rem; height: .7rem; margin-right: .25rem; vertical-align: -1px; }
  #signin { max-width: 32rem; margin: 3rem auto; }
  #signin input { min-width: 22rem; }
  header button { margin-left: auto; font-size: .8rem; padding: .15rem .6rem; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<header>
  <h1>Arrears ops</h1>
  <span>business date <b id="business-date">—</b></span>
  <span id="worker-status">connecting…</span>
  <span id="refreshed"></span>
  <span id="signed-in"></span>
  <button id="sign-out" type="button" hidden>sign out</button>
</header>
<section id="signin" hidden>
  <h2>Sign in</h2>
  <p class="muted">This worker's query API needs an access token (ask your administrator; the demo prints a link
    that signs you in). It is kept for this browser tab only.</p>
  <form id="signin-form"><input id="token" type="password" placeholder="access token" autocomplete="off">
    <button type="submit">Sign in</button></form>
  <p class="error" id="signin-error"></p>
</section>
<main id="main" hidden>
  <section id="lookup">
    <h2>Search</h2>
    <form id="lookup-form">
      <select id="search-by" aria-label="search by">
        <option value="id">case, loan or customer id</option>
        <option value="phone">phone (pii)</option>
        <option value="name">name (pii)</option>
      </select>
      <input id="case-id" placeholder="e.g. LN-000042:1, LN-000042 or C-000042" autocomplete="off">
      <button type="submit">Search</button></form>
    <div id="matches"></div>
    <div class="cols"><div id="case"></div><div id="debtor"></div><div id="treatments"></div></div>
    <ol class="timeline" id="timeline"></ol>
    <div id="debtor-view"></div>
    <p class="error" id="lookup-error"></p>
  </section>
  <section id="queues">
    <h2>Work queues
      <select id="queue-window" aria-label="broken promises and violations of">
        <option value="1">since the last tick</option>
        <option value="7">last 7 business dates</option>
        <option value="30">last 30 business dates</option>
      </select>
      <span class="muted" id="act-note"></span>
    </h2>
    <div class="grid" id="queue-panels"></div>
    <p id="action-status"></p>
    <p class="error" id="queues-error"></p>
  </section>
  <section id="charts">
    <h2>How the book is rolling</h2>
    <div class="grid">
      <div class="panel"><h3>Open cases by bucket</h3><div class="chart" id="chart-cases"></div></div>
      <div class="panel"><h3>Overdue amount by bucket</h3><div class="chart" id="chart-amounts"></div></div>
      <div class="panel"><h3>Roll rates <span class="muted">cases that entered a bucket, by where they
        went</span></h3><div class="chart" id="chart-rolls"></div></div>
      <div class="panel"><h3>Agencies over time
        <select id="kpi-select" aria-label="agency KPI">
          <option value="cases_held">cases held</option>
          <option value="contact_rate">contact rate</option>
          <option value="promise_kept_rate">promises kept</option>
          <option value="violations_per_100_contacts">violations per 100 contacts</option>
          <option value="amount_recovered">amount recovered</option>
        </select></h3><div class="chart" id="chart-agencies"></div></div>
    </div>
    <p class="muted" id="history-note"></p>
    <p class="error" id="charts-error"></p>
  </section>
  <section id="portfolio">
    <h2>Portfolio</h2>
    <div class="tiles">
      <div class="tile"><b id="open-cases">—</b><span>open cases</span></div>
      <div class="tile"><b id="overdue-total">—</b><span>overdue amount</span></div>
      <div class="tile"><b id="unassigned">—</b><span>unassigned</span></div>
      <div class="tile"><b id="held">—</b><span>on hold</span></div>
    </div>
    <div class="cols">
      <div><table id="buckets"><thead><tr><th>bucket</th><th>open cases</th><th>overdue</th></tr></thead>
        <tbody></tbody></table></div>
      <div><table id="assigned"><thead><tr><th>agency</th><th>cases held</th></tr></thead><tbody></tbody></table></div>
      <div><table id="rolls"><thead><tr><th>from</th><th>to</th><th>cases</th><th>rate</th></tr></thead>
        <tbody></tbody></table></div>
    </div>
    <p class="error" id="portfolio-error"></p>
  </section>
  <section id="agencies">
    <h2>Agencies</h2>
    <table id="kpis"><thead><tr><th>agency</th><th>holding</th><th>debtors</th><th>assignments</th><th>attempts</th>
      <th>contact rate</th><th>right-party</th><th>promise rate</th><th>kept</th><th>recovered</th>
      <th>violations / 100</th><th>open cases</th></tr></thead><tbody></tbody></table>
    <p class="error" id="agencies-error"></p>
    <div id="agency-cases"></div>
  </section>
</main>
<script>
"use strict";
const CONFIG = __CONFIG__;
const SYMBOLS = {CNY: "\\u00a5", USD: "$", EUR: "\\u20ac"};
const SVG_NS = "http://www.w3.org/2000/svg";

function money(minor, currency) {
  if (minor === null || minor === undefined) return "—";
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(minor);
  const major = Math.floor(abs / 100).toLocaleString("en-US");
  const cents = String(abs % 100).padStart(2, "0");
  return sign + (SYMBOLS[currency] || (currency ? currency + " " : "")) + major + "." + cents;
}
function shortMoney(minor, currency) {
  const major = minor / 100;
  const symbol = SYMBOLS[currency] || "";
  if (Math.abs(major) >= 1e6) return symbol + (major / 1e6).toFixed(1) + "M";
  if (Math.abs(major) >= 1e3) return symbol + (major / 1e3).toFixed(0) + "k";
  return symbol + major.toFixed(0);
}
function pct(share) { return (share === null || share === undefined) ? "—" : (share * 100).toFixed(1) + "%"; }
function num(n) { return (n === null || n === undefined) ? "—" : Number(n).toLocaleString("en-US"); }
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}
function row(cells, numericFrom) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = (c instanceof Node) ? (() => { const t = el("td"); t.appendChild(c); return t; })() : el("td", c);
    if (i >= numericFrom) td.className = "num";
    tr.appendChild(td);
  });
  return tr;
}
function table(headers, rows, numericFrom) {
  const t = el("table");
  const head = el("thead");
  head.appendChild(row(headers, 999));
  t.appendChild(head);
  const body = el("tbody");
  rows.forEach(r => body.appendChild(row(r, numericFrom)));
  t.appendChild(body);
  return t;
}
function fill(tableId, rows) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren(...rows);
}
function setText(id, text) { document.getElementById(id).textContent = text; }

const TOKEN_KEY = "arrears.token";
let agencies = [];
let scopes = [];
let timer = null;
let pendingCase = "";  // a case named in the sign-in link, looked up once signed in

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function request(method, path, body) {
  const headers = {"Accept": "application/json"};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {method: method, headers: headers, cache: "no-store",
                                      body: body === undefined ? undefined : JSON.stringify(body)});
  let answer = null;
  try { answer = await response.json(); } catch (e) { answer = null; }
  if (!response.ok) {
    const reason = answer && answer.error ? answer.error
      : (response.status === 404 ? "not available on this worker" : "");
    if (response.status === 401) signOut(reason);
    throw new HttpError(response.status, "HTTP " + response.status + (reason ? ": " + reason : ""));
  }
  return answer;
}
function getJson(path) { return request("GET", path); }

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (timer !== null) { clearInterval(timer); timer = null; }
  document.getElementById("main").hidden = true;
  document.getElementById("sign-out").hidden = true;
  setText("signed-in", "");
  document.getElementById("signin").hidden = false;
  setText("signin-error", reason || "");
  document.getElementById("token").focus();
}

async function start() {
  let who;
  try {
    who = await getJson("/agencies");
  } catch (e) {
    if (e.status !== 401) {
      document.getElementById("signin").hidden = false;
      setText("signin-error", e.message);
    }
    return;
  }
  agencies = who.agencies || [];
  scopes = who.scopes || [];
  document.getElementById("signin").hidden = true;
  document.getElementById("main").hidden = false;
  if (who.token) {
    setText("signed-in", "signed in as " + who.token + " (" + scopes.join(", ") + ")");
    document.getElementById("sign-out").hidden = false;
  }
  for (const option of document.querySelectorAll("#search-by option")) {
    option.disabled = option.value !== "id" && !scopes.includes("pii");
  }
  setText("act-note", scopes.includes("act") ? "" : "actions need a token with the act scope");
  await refresh();
  if (timer === null) timer = setInterval(refresh, CONFIG.refresh_seconds * 1000);
  if (pendingCase) { lookup(pendingCase); pendingCase = ""; }
}

async function refreshHealth() {
  try {
    const h = await getJson("/health");
    setText("worker-status", "worker " + h.status + ", partitions " + (h.partitions || []).join(","));
  } catch (e) {
    setText("worker-status", "worker " + e.message);
  }
}

async function refreshPortfolio() {
  try {
    const p = await getJson("/portfolio");
    setText("business-date", p.business_date || "—");
    setText("open-cases", num(p.open_cases));
    const currencies = [...new Set((p.buckets || []).map(b => b.currency))];
    const total = (p.buckets || []).reduce((s, b) => s + b.overdue_amount, 0);
    setText("overdue-total",
            currencies.length > 1 ? "mixed currencies" : money(total, currencies[0] || CONFIG.currency));
    setText("unassigned", num(p.unassigned));
    setText("held", num(p.held));
    fill("buckets", (p.buckets || []).map(
      b => row([b.bucket, num(b.open_cases), money(b.overdue_amount, b.currency)], 1)));
    const assigned = Object.entries(p.assigned || {}).sort();
    fill("assigned", assigned.length ? assigned.map(([a, n]) => row([a, num(n)], 1)) : [row(["none", ""], 1)]);
    fill("rolls", (p.roll_rates || []).map(r => row([r.from, r.to, num(r.count), pct(r.rate)], 2)));
    drawRolls(p.roll_rates || [], p.entered || {});
    setText("portfolio-error", "");
  } catch (e) {
    setText("portfolio-error", "portfolio: " + e.message);
  }
}

function caseLink(caseId) {
  const a = el("a", caseId, "case");
  a.addEventListener("click", () => {
    document.getElementById("case-id").value = caseId;
    document.getElementById("search-by").value = "id";
    lookup(caseId);
    document.getElementById("lookup").scrollIntoView();
  });
  return a;
}
function customerLink(customerId) {
  const a = el("a", customerId, "case");
  a.addEventListener("click", () => showDebtor(customerId));
  return a;
}

async function refreshAgencies() {
  const rows = [];
  const problems = [];
  for (const agency of agencies) {
    try {
      const k = await getJson("/agencies/" + encodeURIComponent(agency) + "/kpis");
      const button = el("a", "show", "case");
      button.addEventListener("click", () => showAgencyCases(agency));
      rows.push(row([agency, num(k.cases_held), num(k.debtors_held), num(k.assignments), num(k.contact_attempts),
                     pct(k.contact_rate), pct(k.right_party_contact_rate), pct(k.promise_rate),
                     pct(k.promise_kept_rate), money(k.amount_recovered, CONFIG.currency),
                     (k.violations_per_100_contacts ?? 0).toFixed(2), button], 1));
    } catch (e) {
      problems.push(agency + ": " + e.message);
      rows.push(row([agency, "—", "—", "—", "—", "—", "—", "—", "—", "—", "—", ""], 1));
    }
  }
  fill("kpis", rows);
  setText("agencies-error", problems.join("; "));
}

async function showAgencyCases(agency) {
  const box = document.getElementById("agency-cases");
  box.replaceChildren(el("p", "loading " + agency + "…", "muted"));
  try {
    const body = await getJson("/agencies/" + encodeURIComponent(agency) + "/cases");
    const rows = body.cases.slice(0, 50).map(
      c => [caseLink(c.case_id), c.status, c.bucket, num(c.dpd), money(c.overdue_amount, c.currency)]);
    const note = el("p", agency + " holds " + body.cases.length + " open case(s)" +
                    (body.cases.length > 50 ? "; the first 50:" : ":"), "muted");
    box.replaceChildren(note, table(["case", "status", "bucket", "dpd", "overdue"], rows, 3));
  } catch (e) {
    box.replaceChildren(el("p", agency + " cases: " + e.message, "error"));
  }
}

// ------------------------------------------------------------------ work queues
const SHOWN = 12;  // rows per queue before "show all"
const expanded = new Set();
const releasing = new Set();  // case ids whose release form is open: a refresh keeps it

function panel(spec, count, body) {
  const box = el("div", null, "panel" + (spec.available ? "" : " unavailable"));
  box.id = "queue-" + spec.name;
  const head = el("h3", spec.title);
  const badge = el("span", spec.available ? num(count) : "—", "count" + (count ? "" : " zero"));
  head.appendChild(badge);
  if (spec.note) head.appendChild(el("span", spec.note, "muted"));
  box.appendChild(head);
  if (body) box.appendChild(body);
  return box;
}

function limited(name, rows) {
  if (rows.length <= SHOWN || expanded.has(name)) return [rows, null];
  const more = el("a", "show all " + rows.length, "case");
  more.addEventListener("click", () => { expanded.add(name); refreshQueues(); });
  return [rows.slice(0, SHOWN), more];
}

function queueTable(name, headers, rows, numericFrom, total) {
  if (!rows.length) return el("p", "none", "muted");
  const [shown, more] = limited(name, rows);
  const box = el("div");
  box.appendChild(table(headers, shown, numericFrom));
  if (total > rows.length) box.appendChild(el("p", "the oldest " + rows.length + " of " + total + " shown", "muted"));
  if (more) box.appendChild(more);
  return box;
}

function releaseCell(item) {
  const cell = el("span");
  if (!scopes.includes("act")) return cell;
  if (!releasing.has(item.case_id)) {
    const button = el("button", "release");
    button.type = "button";
    button.dataset.case = item.case_id;
    button.addEventListener("click", () => { releasing.add(item.case_id); refreshQueues(); });
    cell.appendChild(button);
    return cell;
  }
  const reason = el("input");
  reason.placeholder = "why the hold is lifted";
  reason.className = "release-reason";
  reason.dataset.case = item.case_id;
  const confirm = el("button", "confirm release");
  confirm.type = "button";
  confirm.className = "release-confirm";
  const cancel = el("button", "cancel");
  cancel.type = "button";
  cancel.addEventListener("click", () => { releasing.delete(item.case_id); refreshQueues(); });
  confirm.addEventListener("click", () => release(item.case_id, reason.value));
  cell.append(reason, confirm, cancel);
  return cell;
}

async function release(caseId, reason) {
  const status = document.getElementById("action-status");
  if (!reason.trim()) { status.className = "error"; status.textContent = "say why the hold is lifted"; return; }
  try {
    const r = await request("POST", "/cases/" + encodeURIComponent(caseId) + "/release", {reason: reason});
    releasing.delete(caseId);
    status.className = "ok";
    status.textContent = "ReleaseCase published for " + r.case_id + " (hold " + r.hold_reason + ") by " +
                         r.requested_by + "; event " + r.event_id;
  } catch (e) {
    status.className = "error";
    status.textContent = "release of " + caseId + ": " + e.message;
  }
  refreshQueues();
}

function decisionCell(item) {
  // Approve or reject a pending settlement (act scope); the token's name is who decided.
  const cell = el("span");
  if (!scopes.includes("act")) return cell;
  for (const decision of ["approve", "reject"]) {
    const button = el("button", decision);
    button.type = "button";
    button.className = "settlement-" + decision;
    button.dataset.case = item.case_id;
    button.addEventListener("click", () => decideSettlement(item.case_id, decision));
    cell.appendChild(button);
  }
  return cell;
}

async function decideSettlement(caseId, decision) {
  const status = document.getElementById("action-status");
  try {
    const r = await request("POST", "/cases/" + encodeURIComponent(caseId) + "/settlement/" + decision, {});
    status.className = "ok";
    status.textContent = r.published + " published for " + r.settlement_id + " by " + r.decided_by +
                         "; event " + r.event_id;
  } catch (e) {
    status.className = "error";
    status.textContent = decision + " of the settlement of " + caseId + ": " + e.message;
  }
  refreshQueues();
}

function violationsBody(q) {
  const box = el("div");
  const matrix = q.by_rule_and_agency || {};
  const rules = Object.keys(matrix);
  if (!rules.length) { box.appendChild(el("p", "none", "muted")); return box; }
  const names = [...new Set(rules.flatMap(r => Object.keys(matrix[r])))].sort();
  box.appendChild(table(["rule", ...names, "total"],
    rules.map(r => [r, ...names.map(a => num(matrix[r][a] || 0)),
                    num(Object.values(matrix[r]).reduce((s, n) => s + n, 0))]), 1));
  box.appendChild(el("p", "latest", "muted"));
  box.appendChild(queueTable("violations", ["case", "agency", "rule", "business date"],
    q.items.map(v => [caseLink(v.case_id), v.agency_id, v.rule, v.business_date || "—"]), 99, q.count));
  return box;
}

async function refreshQueues() {
  const days = document.getElementById("queue-window").value;
  try {
    const body = await getJson("/workbench/queues?days=" + encodeURIComponent(days));
    const q = body.queues;
    const bodies = {
      broken_promises: () => queueTable("broken_promises",
        ["case", "agency", "promised", "by", "paid", "broken on"],
        q.broken_promises.items.map(b => [caseLink(b.case_id), b.agency_id, money(b.promised_amount, CONFIG.currency),
                                          b.promised_date, money(b.paid_amount, CONFIG.currency), b.business_date]),
        99, q.broken_promises.count),
      violations: () => violationsBody(q.violations),
      unassigned: () => queueTable("unassigned", ["case", "bucket", "dpd", "overdue", "since", "ticks", "why"],
        q.unassigned.items.map(c => [caseLink(c.case_id), c.bucket, num(c.dpd), money(c.overdue_amount, c.currency),
                                     c.since, num(c.ticks_waiting), c.why]), 99, q.unassigned.count),
      held: () => queueTable("held", ["case", "reason", "since", "bucket", "overdue", ""],
        q.held.items.map(c => [caseLink(c.case_id), c.hold_reason, c.since || "before this worker started", c.bucket,
                               money(c.overdue_amount, c.currency), releaseCell(c)]), 99, q.held.count),
      settlements: () => queueTable("settlements", ["case", "agency", "settlement", "amount", "discount", "pay by",
                                                    "since", ""],
        (q.settlements || {items: []}).items.map(i => [caseLink(i.case_id), i.agency_id, i.settlement_id,
          money(i.amount, CONFIG.currency), pct(i.discount), i.pay_by, i.since || "—", decisionCell(i)]),
        99, (q.settlements || {count: 0}).count),
      paused: () => queueTable("paused", ["loan", "case", "from", "until", "dpd", "bucket", "by"],
        (q.paused || {items: []}).items.map(i => [i.loan_id, i.case_id ? caseLink(i.case_id) : "—", i.from_date,
          i.until_date || "until resumed", num(i.dpd), i.bucket, i.requested_by]),
        99, (q.paused || {count: 0}).count),
    };
    const panels = body.registry.map(spec => {
      if (!spec.available) return panel(spec, 0, el("p", "not available yet", "muted"));
      const make = bodies[spec.name];
      const queue = q[spec.name] || {count: 0, items: []};
      return panel(spec, queue.count, make ? make() : queueTable(spec.name, ["case", "loan", "agency", "since"],
        queue.items.map(i => [caseLink(i.case_id), i.loan_id, i.agency_id || "—", i.since || "—"]), 99, queue.count));
    });
    // Keep a half-typed release reason across the refresh.
    const typing = document.activeElement && document.activeElement.classList.contains("release-reason")
      ? [document.activeElement.dataset.case, document.activeElement.value] : null;
    const typed = {};
    document.querySelectorAll(".release-reason").forEach(i => { typed[i.dataset.case] = i.value; });
    document.getElementById("queue-panels").replaceChildren(...panels);
    document.querySelectorAll(".release-reason").forEach(i => {
      if (typed[i.dataset.case]) i.value = typed[i.dataset.case];
    });
    if (typing) {
      const again = document.querySelector('.release-reason[data-case="' + CSS.escape(typing[0]) + '"]');
      if (again) again.focus();
    }
    setText("queues-error", body.unreachable_workers ? body.unreachable_workers + " worker(s) did not answer" : "");
  } catch (e) {
    setText("queues-error", "queues: " + e.message);
  }
}

// ------------------------------------------------------------------ charts (inline SVG, no library)
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function niceMax(v) {
  // Four gridlines at round values: the top is four times a step of 1, 2, 2.5 or 5 times a power of ten.
  if (!(v > 0)) return 4;
  const step = v / 4;
  const p = Math.pow(10, Math.floor(Math.log10(step)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= step) return 4 * m * p;
  return 40 * p;
}
function legend(keys, colours) {
  const box = el("div", null, "legend");
  keys.forEach(k => {
    const item = el("span");
    const swatch = el("i");
    swatch.style.background = colours[k] || "#999";
    item.append(swatch, document.createTextNode(k));
    box.appendChild(item);
  });
  return box;
}
const W = 600, H = 230, L = 58, R = 12, T = 10, B = 30;

function frame(title, dates, max, format) {
  const root = svg("svg", {viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": title});
  root.dataset.points = String(dates.length);
  root.dataset.lastDate = dates[dates.length - 1] || "";
  const y = v => T + (H - T - B) * (1 - v / max);
  for (let t = 0; t <= 4; t++) {
    const v = max * t / 4;
    root.appendChild(svg("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e8e8e8"}));
    root.appendChild(svg("text", {x: L - 5, y: y(v) + 3, "text-anchor": "end", "font-size": 10, fill: "#666"},
                         format(v)));
  }
  const n = dates.length;
  const x = i => n <= 1 ? L : L + i * (W - L - R) / (n - 1);
  const ticks = [...new Set([0, Math.floor((n - 1) / 2), n - 1])].filter(i => i >= 0 && i < n);
  ticks.forEach(i => root.appendChild(svg("text", {x: x(i), y: H - B + 15, "font-size": 10, fill: "#666",
    "text-anchor": i === 0 ? "start" : (i === n - 1 ? "end" : "middle")}, dates[i])));
  return [root, x, y];
}

function stacked(id, title, dates, keys, values, format) {
  const box = document.getElementById(id);
  if (!dates.length || !keys.length) {
    box.replaceChildren(el("p", "no business dates yet: the history starts at this worker's next tick", "muted"));
    return;
  }
  if (dates.length === 1) {  // one day: draw it as a flat band
    dates = [dates[0], dates[0]];
    values = Object.fromEntries(keys.map(k => [k, [values[k][0], values[k][0]]]));
  }
  const totals = dates.map((_, i) => keys.reduce((s, k) => s + (values[k][i] || 0), 0));
  const [root, x, y] = frame(title, dates, niceMax(Math.max(...totals)), format);
  const base = dates.map(() => 0);
  for (const k of keys) {
    const top = base.map((b, i) => b + (values[k][i] || 0));
    const upper = dates.map((_, i) => x(i).toFixed(1) + "," + y(top[i]).toFixed(1));
    const lower = dates.map((_, i) => x(i).toFixed(1) + "," + y(base[i]).toFixed(1)).reverse();
    const area = svg("path", {d: "M" + upper.join(" L") + " L" + lower.join(" L") + " Z",
                              fill: CONFIG.bucket_colours[k] || "#999", "data-series": k});
    area.appendChild(svg("title", {}, k + ": " + format(values[k][values[k].length - 1] || 0) + " on " +
                                      dates[dates.length - 1]));
    root.appendChild(area);
    top.forEach((v, i) => { base[i] = v; });
  }
  box.replaceChildren(root, legend(keys, CONFIG.bucket_colours));
}

function lines(id, title, dates, series, format, fixedMax) {
  const box = document.getElementById(id);
  const keys = Object.keys(series);
  if (!dates.length || !keys.length) {
    box.replaceChildren(el("p", "no business dates yet: the history starts at this worker's next tick", "muted"));
    return;
  }
  const all = keys.flatMap(k => series[k]).filter(v => v !== null && v !== undefined);
  const [root, x, y] = frame(title, dates, fixedMax || niceMax(Math.max(0, ...all)), format);
  const colours = {};
  keys.forEach((k, i) => { colours[k] = CONFIG.agency_colours[i % CONFIG.agency_colours.length]; });
  for (const k of keys) {
    let d = "";
    let pen = false;
    series[k].forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += (pen ? " L" : " M") + x(i).toFixed(1) + "," + y(v).toFixed(1);
      pen = true;
    });
    if (dates.length === 1 && d) d += " h4";
    const line = svg("path", {d: d.trim() || "M0,0", fill: "none", stroke: colours[k], "stroke-width": 2,
                              "data-series": k});
    line.appendChild(svg("title", {}, k));
    root.appendChild(line);
  }
  box.replaceChildren(root, legend(keys, colours));
}

function drawRolls(moves, entered) {
  // As in the run report: where the cases that entered each bucket went, "still open" included.
  const box = document.getElementById("chart-rolls");
  const rolls = moves.slice();
  for (const [bucket, n] of Object.entries(entered)) {
    const left = moves.filter(m => m.from === bucket).reduce((s, m) => s + m.count, 0);
    if (n - left > 0) rolls.push({from: bucket, to: "still open", count: n - left, rate: (n - left) / n});
  }
  if (!rolls.length) { box.replaceChildren(el("p", "no cases yet", "muted")); return; }
  const order = CONFIG.buckets;
  const rank = b => { const i = order.indexOf(b); return i < 0 ? 99 : i; };
  const rows = [...new Set(rolls.map(r => r.from))].sort((a, b) => rank(a) - rank(b));
  const columns = [...new Set(rolls.map(r => r.to))].sort(
    (a, b) => (a === "still open") - (b === "still open") || rank(a) - rank(b) || a.localeCompare(b));
  const cells = {};
  rolls.forEach(r => { cells[r.from + "|" + r.to] = r; });
  const left = 48, top = 56, cw = Math.max(44, Math.min(70, 520 / columns.length)), ch = 24;
  const width = left + cw * columns.length + 40, height = top + ch * rows.length + 6;
  const root = svg("svg", {viewBox: "0 0 " + width + " " + height, width: width, height: height, role: "img",
                           "aria-label": "roll-rate matrix"});
  root.dataset.cells = String(rolls.length);
  columns.forEach((c, j) => root.appendChild(svg("text", {
    x: left + cw * j + cw / 2, y: top - 8, "font-size": 10, fill: "#444", "text-anchor": "start",
    transform: "rotate(-35 " + (left + cw * j + cw / 2) + " " + (top - 8) + ")"},
    order.includes(c) ? c : c.replace(/_/g, " ").toLowerCase())));
  rows.forEach((r, i) => {
    root.appendChild(svg("text", {x: left - 6, y: top + ch * i + ch / 2 + 4, "font-size": 11, "text-anchor": "end",
                                  fill: "#444"}, r));
    columns.forEach((c, j) => {
      const cell = cells[r + "|" + c];
      const rate = cell ? cell.rate : 0;
      const shade = Math.round(255 - rate * 200);
      const rect = svg("rect", {x: left + cw * j + 1, y: top + ch * i + 1, width: cw - 2, height: ch - 2,
                                fill: cell ? "rgb(" + shade + "," + Math.round(255 - rate * 150) + ",255)"
                                           : "#f7f7f7"});
      if (cell) {
        rect.appendChild(svg("title", {}, r + " to " + c + ": " + cell.count + " case(s), " + pct(cell.rate)));
        root.appendChild(rect);
        root.appendChild(svg("text", {x: left + cw * j + cw / 2, y: top + ch * i + ch / 2 + 4, "font-size": 10,
                                      "text-anchor": "middle", fill: rate > 0.55 ? "#fff" : "#222"},
                             (rate * 100).toFixed(0) + "%"));
      } else {
        root.appendChild(rect);
      }
    });
  });
  box.replaceChildren(root);
}

let chartHistory = null;
function drawAgencies() {
  if (!chartHistory) return;
  const kpi = document.getElementById("kpi-select").value;
  const series = Object.fromEntries(Object.entries(chartHistory.agencies).map(([a, k]) => [a, k[kpi]]));
  const rate = kpi.endsWith("_rate");
  const format = kpi === "amount_recovered" ? (v => shortMoney(v, CONFIG.currency))
    : (rate ? (v => (v * 100).toFixed(0) + "%") : (v => num(Math.round(v * 100) / 100)));
  lines("chart-agencies", "agency " + kpi.replace(/_/g, " ") + " over business dates", chartHistory.dates, series,
        format, rate ? 1 : null);
}

async function refreshCharts() {
  try {
    chartHistory = await getJson("/workbench/history");
    const currency = chartHistory.currency || CONFIG.currency;
    const h = chartHistory;
    stacked("chart-cases", "open cases by bucket over business dates", h.dates, h.buckets, h.cases,
            v => num(Math.round(v * 100) / 100));
    if (chartHistory.currency) {
      stacked("chart-amounts", "overdue amount by bucket over business dates", chartHistory.dates, chartHistory.buckets,
              chartHistory.amounts, v => shortMoney(v, currency));
    } else {
      document.getElementById("chart-amounts").replaceChildren(
        el("p", h.dates.length ? "mixed currencies: amounts are not added up" : "no business dates yet", "muted"));
    }
    drawAgencies();
    const notes = [];
    if (h.dates.length) {
      notes.push(h.dates.length + " business dates since " + h.dates[0] +
                 " (the history is the workers' own: it restarts with them)");
    }
    if (h.incomplete_dates) notes.push(h.incomplete_dates + " date(s) not every partition reported left out");
    setText("history-note", notes.join("; "));
    setText("charts-error", "");
  } catch (e) {
    setText("charts-error", "charts: " + e.message);
  }
}

// ------------------------------------------------------------------ search, case, debtor
const SKIP = new Set(["type", "event_id", "occurred_at", "case_id", "loan_id", "business_date", "barrier"]);
function describe(event) {
  const parts = [];
  for (const [key, value] of Object.entries(event)) {
    if (SKIP.has(key) || value === null || value === undefined || typeof value === "object") continue;
    const shown = /amount$/.test(key) && typeof value === "number"
      ? money(value, event.currency || CONFIG.currency) : value;
    parts.push(key + " " + shown);
  }
  return parts.join(", ");
}

function clearResults() {
  setText("lookup-error", "");
  for (const id of ["matches", "case", "debtor", "treatments", "timeline", "debtor-view"]) {
    document.getElementById(id).replaceChildren();
  }
}

async function search(query, by) {
  query = query.trim();
  clearResults();
  if (!query) return;
  let body;
  try {
    body = await getJson("/search?by=" + encodeURIComponent(by) + "&q=" + encodeURIComponent(query));
  } catch (e) {
    setText("lookup-error", "search: " + e.message);
    return;
  }
  const matches = body.matches || [];
  if (!matches.length) {
    setText("lookup-error", "nothing found for " + (by === "id" ? query : "that " + by));
    return;
  }
  if (matches.length === 1 && matches[0].kind === "case") return lookup(matches[0].case_id);
  if (matches.length === 1) return showDebtor(matches[0].customer_id, matches[0].loan_id);
  const list = el("ul");
  for (const m of matches) {
    const li = el("li", m.kind + " ");
    if (m.kind === "case") li.appendChild(caseLink(m.case_id));
    else if (m.kind === "loan") { li.append(m.loan_id + " of customer "); li.appendChild(customerLink(m.customer_id)); }
    else { li.appendChild(customerLink(m.customer_id)); li.append(" (" + m.loan_ids.length + " loan(s) with cases)"); }
    list.appendChild(li);
  }
  document.getElementById("matches").replaceChildren(el("p", matches.length + " matches:", "muted"), list);
}

async function lookup(caseId) {
  caseId = caseId.trim();
  clearResults();
  if (!caseId) return;
  const caseBox = document.getElementById("case");
  const list = document.getElementById("timeline");
  let c;
  try {
    c = await getJson("/cases/" + encodeURIComponent(caseId));
    const rows = [];
    for (const key of ["case_id", "status", "bucket", "dpd", "overdue_amount", "agency_id", "hold_reason",
                       "opened_on", "closed_on", "close_reason", "contact_attempts", "violations"]) {
      if (!(key in c)) continue;
      const value = key === "overdue_amount" ? money(c[key], c.currency) : (c[key] ?? "—");
      rows.push([key.replace(/_/g, " "), value]);
    }
    if (c.customer_id) rows.push(["customer", customerLink(c.customer_id)]);
    const t = el("table");
    const tbody = el("tbody");
    rows.forEach(r => tbody.appendChild(row(r, 1)));
    t.appendChild(tbody);
    caseBox.replaceChildren(t);
  } catch (e) {
    setText("lookup-error", "case " + caseId + ": " + e.message);
    return;
  }
  showPerson(caseId.slice(0, caseId.lastIndexOf(":")));
  showTreatments(caseId);
  try {
    const t = await getJson("/cases/" + encodeURIComponent(caseId) + "/timeline");
    if (!t.events.length) list.appendChild(el("li", "no events recorded", "muted"));
    let when = "";
    for (const event of t.events) {
      const li = el("li");
      li.dataset.type = event.type;
      // Work orders and results carry no business date: they happened on the one before them.
      when = event.business_date || when || (event.occurred_at || "").slice(0, 10);
      li.appendChild(el("span", when + " "));
      li.appendChild(el("span", event.type, "type"));
      const detail = describe(event);
      if (detail) li.appendChild(el("span", " — " + detail));
      list.appendChild(li);
    }
  } catch (e) {
    setText("lookup-error", "timeline: " + e.message);
  }
}

async function showTreatments(caseId) {
  // SPEC §10: the loan's pause and the case's settlement, beside the case.
  const box = document.getElementById("treatments");
  box.replaceChildren();
  try {
    const t = await getJson("/cases/" + encodeURIComponent(caseId) + "/treatments");
    const tbody = el("tbody");
    const until = t.paused_until === "9999-12-31" ? "until resumed" : t.paused_until;
    tbody.appendChild(row(["paused", t.paused_until ? "yes, " + until : "no"], 1));
    const s = t.settlement;
    if (s) {
      tbody.appendChild(row(["settlement", s.settlement_id + " " + s.status], 1));
      tbody.appendChild(row(["settlement amount", money(s.amount, t.currency) + " by " + s.pay_by], 1));
      tbody.appendChild(row(["discount", pct(s.discount)], 1));
      if (s.approved_by) tbody.appendChild(row(["approved by", s.approved_by + " on " + s.approved_on], 1));
      if (s.paid_amount) tbody.appendChild(row(["paid towards it", money(s.paid_amount, t.currency)], 1));
    }
    const table = el("table");
    table.id = "treatments-table";
    table.appendChild(tbody);
    box.replaceChildren(table);
  } catch (e) {
    box.replaceChildren(el("p", "treatments: " + e.message, "error"));
  }
}

function personTable(person) {
  const t = el("table");
  t.id = "debtor-table";
  const tbody = el("tbody");
  tbody.appendChild(row(["debtor", person.name], 1));
  tbody.appendChild(row(["phone", person.phone], 1));
  tbody.appendChild(row(["national id", person.national_id], 1));
  tbody.appendChild(row(["city", [person.province, person.city].filter(Boolean).join(" ")], 1));
  for (const contact of person.emergency_contacts || []) {
    const who = contact.name + " " + contact.phone + " (" + contact.relation + ")";
    tbody.appendChild(row(["emergency contact", who], 1));
  }
  t.appendChild(tbody);
  return t;
}

async function showPerson(loanId) {
  // The debtor as this token may see it: masked for "read", whole (and audited) for "pii".
  const box = document.getElementById("debtor");
  try {
    const loan = await getJson("/loans/" + encodeURIComponent(loanId));
    if (loan.customer) box.replaceChildren(personTable(loan.customer));
  } catch (e) {
    box.replaceChildren(el("p", "debtor: " + e.message, "error"));
  }
}

async function showDebtor(customerId, loanId) {
  // Every case of one debtor (customer id), across loans and workers.
  clearResults();
  const box = document.getElementById("debtor-view");
  box.replaceChildren(el("p", "loading customer " + customerId + "…", "muted"));
  try {
    const d = await getJson("/customers/" + encodeURIComponent(customerId));
    const head = el("h3", "Debtor " + d.customer_id);
    head.appendChild(el("span", d.open_cases + " open of " + d.cases + " case(s) on " + d.loans.length + " loan(s)",
                        "muted"));
    const rows = [];
    for (const loan of d.loans) {
      for (const c of loan.cases) {
        rows.push([loan.loan_id + (loan.loan_id === loanId ? " (searched)" : ""), caseLink(c.case_id), c.status,
                   c.bucket || "—", c.dpd ?? "—",
                   c.overdue_amount === undefined ? "—" : money(c.overdue_amount, loan.currency),
                   c.agency_id || "—", c.opened_on, c.closed_on || "—", c.close_reason || "—"]);
      }
    }
    const cases = table(["loan", "case", "status", "bucket", "dpd", "overdue", "agency", "opened", "closed", "why"],
                        rows, 99);
    cases.id = "debtor-cases";
    // Every contact attempt with the debtor, whatever loan or agency it was about: one budget.
    const contactRows = (d.contacts || []).slice().reverse().map(c => [
      new Date(c.attempted_at).toISOString().slice(0, 16).replace("T", " ") + " UTC", c.agency_id,
      c.case_id ? caseLink(c.case_id) : "—", c.channel, c.party, c.outcome,
      c.violations.length ? c.violations.join(", ")
        : (c.awaiting_verdict ? "third-party verdict at the next tick" : "—"),
      c.in_budget ? "yes" : "no"]);
    const contacts = table(["attempted", "agency", "case", "channel", "party", "outcome", "violations",
                            "counts now"], contactRows, 99);
    contacts.id = "debtor-contacts";
    const agencies = d.agencies && d.agencies.length ? "worked by " + d.agencies.join(", ") : "no agency now";
    box.replaceChildren(head, el("p", agencies, "muted"), el("div", null, "cols"),
                        el("h4", "Contacts (" + contactRows.length + ", newest first)"), contacts);
    box.children[2].append(d.customer ? personTable(d.customer) : el("span"), cases);
  } catch (e) {
    box.replaceChildren(el("p", "customer " + customerId + ": " + e.message, "error"));
  }
}

document.getElementById("lookup-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = document.getElementById("case-id").value;
  const by = document.getElementById("search-by").value;
  if (by === "id") history.replaceState(null, "", "#case=" + encodeURIComponent(id.trim()));
  search(id, by);
});

document.getElementById("signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = document.getElementById("token");
  const token = input.value.trim();
  input.value = "";
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  setText("signin-error", "");
  start();
});

document.getElementById("sign-out").addEventListener("click", () => signOut("signed out"));
document.getElementById("queue-window").addEventListener("change", refreshQueues);
document.getElementById("kpi-select").addEventListener("change", drawAgencies);

async function refresh() {
  await Promise.all([refreshHealth(), refreshQueues(), refreshCharts(), refreshPortfolio(), refreshAgencies()]);
  setText("refreshed", "updated " + new Date().toLocaleTimeString());
}

// A sign-in link carries the token in the fragment (#token=...&case=...), which no server sees;
// it moves to sessionStorage and leaves the address bar at once. "#<case id>" is a bare lookup.
function readFragment() {
  const hash = location.hash.slice(1);
  if (!hash) return;
  const params = new URLSearchParams(hash.includes("=") ? hash : "case=" + hash);
  if (params.get("token")) sessionStorage.setItem(TOKEN_KEY, params.get("token"));
  const caseId = params.get("case");
  if (caseId) {
    document.getElementById("case-id").value = caseId;
    document.getElementById("search-by").value = "id";
    pendingCase = caseId;
  }
  history.replaceState(null, "", location.pathname + location.search +
                       (caseId ? "#case=" + encodeURIComponent(caseId) : ""));
}
window.addEventListener("hashchange", () => { readFragment(); start(); });  // a link followed in this tab
readFragment();
start();
</script>
</body>
</html>
"""


def render_page(currency: str = "CNY", refresh_seconds: int = REFRESH_SECONDS,
                buckets: Sequence[str] = tuple(BUCKET_COLOURS)) -> str:
    """The page; the JSON is made safe to sit inside <script>. It names no agency and holds no data."""
    config = json.dumps({"currency": currency, "refresh_seconds": refresh_seconds, "buckets": list(buckets),
                         "bucket_colours": BUCKET_COLOURS, "agency_colours": list(AGENCY_COLOURS)})
    return PAGE.replace("__CONFIG__", config.replace("<", "\\u003c"))


def register_ops_page(worker: Worker) -> None:
    """Serve the ops page at ``GET /`` of the worker's web server (the sign-in form: no data, no token)."""
    body = render_page(buckets=worker.processor.rules.buckets.names)

    @worker.app.page("/")
    async def ops_page(web: Any, request: Any) -> Any:
        # No caching, and no referrer leaves the page (its address may carry a #case id).
        return web.html(body, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
