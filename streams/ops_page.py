"""The ops page every worker serves at ``GET /``: portfolio, agencies and a case lookup, live.

One static HTML page with its script inline (no external assets: it works on a machine with no
internet). The page itself holds no data: it is the sign-in form and the script. The browser
fetches the JSON query API every few seconds (``/health``, ``/agencies``, ``/portfolio``,
``/agencies/{id}/kpis``, and on a lookup ``/cases/{id}``, ``/cases/{id}/timeline``,
``/cases/{id}/treatments`` (its pause and settlement) and ``/loans/{loan_id}`` for the debtor), sending
``Authorization: Bearer <token>`` once signed in.

Signing in: the page asks for a token (or takes it from a ``#token=...`` link, which the demo
prints: a URL fragment never reaches a server or its logs) and keeps it in ``sessionStorage``:
for this browser tab's session only, gone when the tab closes or on "sign out". A 401 signs the
page out. Personal data is shown as the API gives it: masked for a ``read`` token, whole for a
``pii`` one. A section whose endpoint is missing or failing says so and the others carry on.
Data reaches the page only through ``textContent``, never as markup.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

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
         background: #fafafa; }
  header { background: #1f3b5a; color: #fff; padding: .7rem 1.2rem; display: flex; gap: 1.5rem;
           align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 1.2rem; margin: 0; } header span { opacity: .85; font-size: .9rem; }
  main { padding: 1rem 1.2rem; max-width: 1200px; }
  section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: .8rem 1rem;
            margin-bottom: 1rem; }
  h2 { font-size: 1rem; margin: 0 0 .6rem; }
  .tiles { display: flex; gap: .8rem; flex-wrap: wrap; margin-bottom: .6rem; }
  .tile { border: 1px solid #e3e3e3; border-radius: 6px; padding: .4rem .8rem; min-width: 8rem; }
  .tile b { display: block; font-size: 1.25rem; } .tile span { color: #666; font-size: .78rem; }
  table { border-collapse: collapse; font-size: .85rem; }
  th, td { border-bottom: 1px solid #eee; padding: .25rem .6rem; text-align: left; }
  th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .cols { display: flex; gap: 1.5rem; flex-wrap: wrap; align-items: flex-start; }
  .error { color: #a33; font-size: .85rem; } .muted { color: #777; font-size: .85rem; }
  form { display: flex; gap: .5rem; margin-bottom: .6rem; }
  input { font: inherit; padding: .3rem .5rem; min-width: 18rem; }
  button { font: inherit; padding: .3rem .9rem; }
  ol.timeline { margin: .4rem 0 0; padding-left: 1.4rem; font-size: .85rem; }
  ol.timeline li { margin: .2rem 0; } ol.timeline .type { font-weight: 600; }
  a.case { color: #1f5fa0; cursor: pointer; text-decoration: underline; }
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
    <table id="kpis"><thead><tr><th>agency</th><th>holding</th><th>assignments</th><th>attempts</th>
      <th>contact rate</th><th>right-party</th><th>promise rate</th><th>kept</th><th>recovered</th>
      <th>violations / 100</th><th>open cases</th></tr></thead><tbody></tbody></table>
    <p class="error" id="agencies-error"></p>
    <div id="agency-cases"></div>
  </section>
  <section id="lookup">
    <h2>Case lookup</h2>
    <form id="lookup-form"><input id="case-id" placeholder="case id, e.g. LN-000042:1" autocomplete="off">
      <button type="submit">Look up</button></form>
    <div class="cols"><div id="case"></div><div id="debtor"></div><div id="treatments"></div></div>
    <ol class="timeline" id="timeline"></ol>
    <p class="error" id="lookup-error"></p>
  </section>
</main>
<script>
"use strict";
const CONFIG = __CONFIG__;
const SYMBOLS = {CNY: "\\u00a5", USD: "$", EUR: "\\u20ac"};

function money(minor, currency) {
  if (minor === null || minor === undefined) return "—";
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(minor);
  const major = Math.floor(abs / 100).toLocaleString("en-US");
  const cents = String(abs % 100).padStart(2, "0");
  return sign + (SYMBOLS[currency] || (currency ? currency + " " : "")) + major + "." + cents;
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
function fill(tableId, rows) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren(...rows);
}
function setText(id, text) { document.getElementById(id).textContent = text; }

const TOKEN_KEY = "arrears.token";
let agencies = [];
let timer = null;

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function getJson(path) {
  const headers = {"Accept": "application/json"};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, {headers: headers, cache: "no-store"});
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const reason = body && body.error ? body.error : (response.status === 404 ? "not available on this worker" : "");
    if (response.status === 401) signOut(reason);
    throw new HttpError(response.status, "HTTP " + response.status + (reason ? ": " + reason : ""));
  }
  return body;
}

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
  document.getElementById("signin").hidden = true;
  document.getElementById("main").hidden = false;
  if (who.token) {
    setText("signed-in", "signed in as " + who.token + " (" + (who.scopes || []).join(", ") + ")");
    document.getElementById("sign-out").hidden = false;
  }
  await refresh();
  if (timer === null) timer = setInterval(refresh, CONFIG.refresh_seconds * 1000);
  const id = document.getElementById("case-id").value;
  if (id) lookup(id);
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
    setText("portfolio-error", "");
  } catch (e) {
    setText("portfolio-error", "portfolio: " + e.message);
  }
}

function caseLink(caseId) {
  const a = el("a", caseId, "case");
  a.addEventListener("click", () => { document.getElementById("case-id").value = caseId; lookup(caseId); });
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
      rows.push(row([agency, num(k.cases_held), num(k.assignments), num(k.contact_attempts), pct(k.contact_rate),
                     pct(k.right_party_contact_rate), pct(k.promise_rate), pct(k.promise_kept_rate),
                     money(k.amount_recovered, CONFIG.currency), (k.violations_per_100_contacts ?? 0).toFixed(2),
                     button], 1));
    } catch (e) {
      problems.push(agency + ": " + e.message);
      rows.push(row([agency, "—", "—", "—", "—", "—", "—", "—", "—", "—", ""], 1));
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
    const table = el("table");
    const head = el("thead");
    head.appendChild(row(["case", "status", "bucket", "dpd", "overdue"], 99));
    table.appendChild(head);
    const tbody = el("tbody");
    body.cases.slice(0, 50).forEach(c => tbody.appendChild(
      row([caseLink(c.case_id), c.status, c.bucket, num(c.dpd), money(c.overdue_amount, c.currency)], 3)));
    table.appendChild(tbody);
    const note = el("p", agency + " holds " + body.cases.length + " open case(s)" +
                    (body.cases.length > 50 ? "; the first 50:" : ":"), "muted");
    box.replaceChildren(note, table);
  } catch (e) {
    box.replaceChildren(el("p", agency + " cases: " + e.message, "error"));
  }
}

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

async function lookup(caseId) {
  caseId = caseId.trim();
  const caseBox = document.getElementById("case");
  const debtorBox = document.getElementById("debtor");
  const list = document.getElementById("timeline");
  setText("lookup-error", "");
  list.replaceChildren();
  caseBox.replaceChildren();
  debtorBox.replaceChildren();
  if (!caseId) return;
  try {
    const c = await getJson("/cases/" + encodeURIComponent(caseId));
    const table = el("table");
    const tbody = el("tbody");
    for (const key of ["case_id", "status", "bucket", "dpd", "overdue_amount", "agency_id", "hold_reason",
                       "opened_on", "closed_on", "close_reason", "contact_attempts", "violations"]) {
      if (!(key in c)) continue;
      const value = key === "overdue_amount" ? money(c[key], c.currency) : (c[key] ?? "—");
      tbody.appendChild(row([key.replace(/_/g, " "), value], 1));
    }
    table.appendChild(tbody);
    caseBox.replaceChildren(table);
  } catch (e) {
    setText("lookup-error", "case " + caseId + ": " + e.message);
    return;
  }
  showDebtor(caseId.slice(0, caseId.lastIndexOf(":")));
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

async function showDebtor(loanId) {
  // The debtor as this token may see it: masked for "read", whole (and audited) for "pii".
  const box = document.getElementById("debtor");
  try {
    const loan = await getJson("/loans/" + encodeURIComponent(loanId));
    const person = loan.customer;
    if (!person) return;
    const table = el("table");
    table.id = "debtor-table";
    const tbody = el("tbody");
    tbody.appendChild(row(["debtor", person.name], 1));
    tbody.appendChild(row(["phone", person.phone], 1));
    tbody.appendChild(row(["national id", person.national_id], 1));
    tbody.appendChild(row(["city", [person.province, person.city].filter(Boolean).join(" ")], 1));
    for (const contact of person.emergency_contacts || []) {
      const who = contact.name + " " + contact.phone + " (" + contact.relation + ")";
      tbody.appendChild(row(["emergency contact", who], 1));
    }
    table.appendChild(tbody);
    box.replaceChildren(table);
  } catch (e) {
    box.replaceChildren(el("p", "debtor: " + e.message, "error"));
  }
}

document.getElementById("lookup-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = document.getElementById("case-id").value;
  history.replaceState(null, "", "#case=" + encodeURIComponent(id.trim()));
  lookup(id);
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

async function refresh() {
  await Promise.all([refreshHealth(), refreshPortfolio(), refreshAgencies()]);
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
  if (caseId) document.getElementById("case-id").value = caseId;
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


def render_page(currency: str = "CNY", refresh_seconds: int = REFRESH_SECONDS) -> str:
    """The page; the JSON is made safe to sit inside <script>. It names no agency and holds no data."""
    config = json.dumps({"currency": currency, "refresh_seconds": refresh_seconds})
    return PAGE.replace("__CONFIG__", config.replace("<", "\\u003c"))


def register_ops_page(worker: Worker) -> None:
    """Serve the ops page at ``GET /`` of the worker's web server (the sign-in form: no data, no token)."""
    body = render_page()

    @worker.app.page("/")
    async def ops_page(web: Any, request: Any) -> Any:
        # No caching, and no referrer leaves the page (its address may carry a #case id).
        return web.html(body, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
