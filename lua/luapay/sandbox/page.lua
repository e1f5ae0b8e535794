--- luapay.sandbox.page: the sandbox's web page, GET /_sandbox/ (served by
-- luapay.sandbox.journal). One HTML document with its CSS and JavaScript
-- inline: nothing is loaded from anywhere else, so it works offline. The
-- script uses only the journal's JSON API: it loads /_sandbox/operations
-- and /_sandbox/journal, follows the journal with its cursor (`since`),
-- and its buttons POST /_sandbox/trigger with the actions of
-- /_sandbox/events, as `luapay trigger` does.
--
-- Everything shown comes from the journal, and notification bodies and the
-- merchants' answers are anyone's text: the script only ever sets
-- textContent (never innerHTML, never a link), and the answer's
-- Content-Security-Policy runs no script but the page's own (a nonce per
-- answer), loads nothing and submits nowhere.
local core = require "luapay.core"

local page = {}

local CSS = [[
:root { color-scheme: light dark; --line: #8884; --dim: #888; --ok: #2a7a2a; --bad: #b3261e; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5em 2em; }
header { display: flex; gap: 1em; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 1.3em; margin: .8em 0 .3em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
#live { color: var(--dim); }
#live.down { color: var(--bad); }
table { border-collapse: collapse; width: 100%; }
table.headers { width: auto; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; }
td.amount { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.id, .mono, pre { font-family: ui-monospace, monospace; font-size: 12.5px; }
td.id { word-break: break-all; }
.status-succeeded, .status-refunded, .status-authorized { color: var(--ok); }
.status-failed, .status-canceled, .status-reversed, .status-partially_reversed { color: var(--bad); }
.dim { color: var(--dim); }
button { margin: 0 .3em .2em 0; }
#result { min-height: 1.4em; margin: .5em 0; }
#result.error { color: var(--bad); }
details.notification { border-bottom: 1px solid var(--line); padding: .3em 0; }
details.notification summary { cursor: pointer; }
details.notification > div { margin: .4em 0 .4em 1.2em; }
pre { white-space: pre-wrap; word-break: break-all; margin: .2em 0; padding: .4em; background: #8881; }
form#trigger { display: flex; gap: .5em; flex-wrap: wrap; align-items: center; }
form#trigger input { width: 8em; }
]]

local SCRIPT = [==[
"use strict";
// The page's state: operations by "provider:id", notifications by seq.
const ops = new Map(), notes = new Map(), rows = new Map();
let cursor = 0, events = null, busy = false;
const $ = (id) => document.getElementById(id);

// Every element the page shows is made here, its text set as text.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify(body) };
  const res = await fetch("/_sandbox/" + path, init);
  const value = await res.json();
  if (!res.ok) throw new Error(value.error || ("HTTP " + res.status));
  return value;
}

// Money as money: minor units and the currency's own number of decimals.
function money(amount, currency) {
  if (amount === null || amount === undefined) return "";
  let digits = 2;
  try {
    digits = new Intl.NumberFormat("en", { style: "currency", currency: currency })
      .resolvedOptions().maximumFractionDigits;
  } catch (e) { /* not an ISO 4217 code: two decimals */ }
  const neg = amount < 0, s = String(Math.abs(amount)).padStart(digits + 1, "0");
  const text = digits > 0 ? s.slice(0, -digits) + "." + s.slice(-digits) : s;
  return (neg ? "-" : "") + text + (currency ? " " + currency : "");
}

function time(at) {
  return typeof at === "number" ? new Date(at * 1000).toISOString().slice(11, 23) : "";
}

// The actions (the page's buttons) the provider's fake offers on a kind of operation.
function actionsFor(provider, kind) {
  const out = [];
  if (!events) return out;
  for (const e of events.providers[provider] || []) {
    if (e.action && e.on === kind) out.push(e);
  }
  out.sort((a, b) => events.actions.indexOf(a.action) - events.actions.indexOf(b.action));
  return out;
}

const LABEL = { approve: "Approve", decline: "Decline", fail_refund: "Fail refund", reverse_payout: "Reverse payout" };

function sentAbout(o) {
  let n = 0;
  for (const x of notes.values()) if (x.provider === o.provider && x.id === o.id) n++;
  return n;
}

// A row is made again only when its operation changed or sent something:
// a button being pressed stays the same element.
function renderOperations() {
  const list = Array.from(ops.values()).sort((a, b) => b.seq - a.seq);
  $("operations").replaceChildren(...list.map((o) => {
    const key = o.provider + ":" + o.id, sent = sentAbout(o), kept = rows.get(key);
    if (kept && kept.seq === o.seq && kept.sent === sent) return kept.tr;
    const tr = row(o, sent);
    rows.set(key, { seq: o.seq, sent: sent, tr: tr });
    return tr;
  }));
  $("no-operations").hidden = list.length > 0;
}

function row(o, sent) {
  const buttons = actionsFor(o.provider, o.kind).map((e) =>
    el("button", { type: "button", "data-action": e.action, "data-event": e.name, title: e.doc },
       LABEL[e.action] || e.action));
  for (const b of buttons) b.addEventListener("click", () => act(o, b.getAttribute("data-action"), b));
  return el("tr", { class: "op", "data-provider": o.provider, "data-id": o.id, "data-key": o.provider + ":" + o.id },
    el("td", null, o.provider),
    el("td", { class: "kind" }, o.kind),
    el("td", { class: "id" }, o.id, o.parent ? el("div", { class: "dim" }, "of " + o.parent) : null),
    el("td", { class: "amount" }, money(o.amount, o.currency)),
    el("td", { class: "status status-" + o.status }, o.status),
    el("td", { class: "dim" }, time(o.at)),
    el("td", { class: "sent" }, String(sent)),
    el("td", { class: "actions" }, ...buttons));
}

function headersTable(headers) {
  const names = Object.keys(headers || {}).sort();
  if (names.length === 0) return el("p", { class: "dim" }, "no headers");
  return el("table", { class: "headers" }, ...names.map((k) =>
    el("tr", null, el("th", { class: "mono" }, k), el("td", { class: "mono" }, headers[k]))));
}

function answerOf(answer, error) {
  if (answer) {
    return [el("p", null, "HTTP ", el("span", { class: "answer-status" }, String(answer.status))),
            el("pre", { class: "answer-body" }, answer.body === null ? "" : answer.body)];
  }
  return [el("p", { class: "answer-error" }, error || "no answer")];
}

function renderNotification(n) {
  const summary = el("summary", null,
    el("span", { class: "dim" }, time(n.at) + " "), el("strong", null, n.provider), " ",
    el("span", { class: "event" }, n.event), n.id ? " about " : "", n.id ? el("span", { class: "mono" }, n.id) : null,
    " → ", n.answer ? "HTTP " + n.answer.status : (n.error || "no answer"),
    n.forward ? " (forwarded: " + (n.forward.answer ? "HTTP " + n.forward.answer.status : n.forward.error) + ")" : "");
  const parts = [
    el("p", null, el("span", { class: "mono" }, n.method + " " + (n.url || "(no notification URL)"))),
    el("h3", null, n.method === "GET" ? "Signed message (the query string)" : "Signed message"),
    el("pre", { class: "body" }, n.body),
    headersTable(n.headers),
    el("h3", null, "The merchant's answer"),
    ...answerOf(n.answer, n.error),
  ];
  if (n.forward) {
    parts.push(el("h3", null, "Also forwarded to ", el("span", { class: "mono forward-url" }, n.forward.url)),
               ...answerOf(n.forward.answer, n.forward.error));
  }
  return el("details", { class: "notification", "data-seq": String(n.seq), "data-provider": n.provider,
                         "data-id": n.id, "data-event": n.event }, summary, el("div", null, ...parts));
}

function renderNotifications() {
  const list = $("notifications");
  const shown = new Map(Array.from(list.children).map((d) => [d.getAttribute("data-seq"), d]));
  const all = Array.from(notes.values()).sort((a, b) => b.seq - a.seq);
  // Keep the open ones open: only new notifications are made.
  list.replaceChildren(...all.map((n) => shown.get(String(n.seq)) || renderNotification(n)));
  $("no-notifications").hidden = all.length > 0;
}

function take(entry) {
  if (entry.type === "operation") ops.set(entry.provider + ":" + entry.id, entry);
  else if (entry.type === "notification") notes.set(entry.seq, entry);
}

// Reads the journal after the cursor (pages of at most 500) until it is
// read; true if there was anything new.
async function follow() {
  let changed = false;
  for (;;) {
    const doc = await api("journal?type=operation,notification&since=" + cursor);
    if (doc.cursor < cursor) return restart(); // a new sandbox on the same port
    doc.entries.forEach(take);
    changed = changed || doc.entries.length > 0;
    cursor = doc.cursor;
    if (doc.entries.length < 500) return changed;
  }
}

async function restart() {
  ops.clear(); notes.clear(); rows.clear(); cursor = 0;
  $("notifications").replaceChildren();
  // What the journal no longer keeps is still in operations.
  (await api("operations")).operations.forEach(take);
  await follow();
  return true;
}

function render() {
  renderOperations();
  renderNotifications();
}

async function tick() {
  if (busy) return;
  busy = true;
  try {
    if (await follow()) render();
    const fwd = await api("forward"); // `luapay listen` sets and clears it
    $("forward").textContent = fwd.url ? "also forwarding to " + fwd.url : "";
    $("live").textContent = "live (journal at " + cursor + ")";
    $("live").className = "";
  } catch (e) {
    $("live").textContent = "cannot read the journal: " + e.message;
    $("live").className = "down";
  } finally {
    busy = false;
  }
}

function say(text, error) {
  $("result").textContent = text;
  $("result").className = error ? "error" : "";
}

function outcome(doc) {
  const n = doc.notifications[0];
  let text = doc.provider + " " + doc.event + " about " + doc.id + ": ";
  if (!n) return text + "nothing sent";
  return text + (n.answer ? "the merchant answered HTTP " + n.answer.status : (n.error || "no answer"));
}

async function trigger(body) {
  try {
    const doc = await api("trigger", body);
    say(outcome(doc), false);
  } catch (e) {
    say(body.provider + " " + body.event + ": " + e.message, true);
  }
  await tick();
}

async function act(o, action, button) {
  button.disabled = true;
  await trigger({ provider: o.provider, event: action, id: o.id });
  button.disabled = false;
}

function fillEvents() {
  const provider = $("t-provider").value;
  $("t-event").replaceChildren(...(events.providers[provider] || []).map((e) =>
    el("option", { value: e.name, title: e.doc }, e.name + " (" + e.on + ": " + e.means + ")")));
}

async function main() {
  events = await api("events");
  $("t-provider").replaceChildren(...events.order.map((p) => el("option", { value: p }, p)));
  fillEvents();
  $("t-provider").addEventListener("change", fillEvents);
  $("trigger").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = { provider: $("t-provider").value, event: $("t-event").value };
    const amount = $("t-amount").value.trim(), currency = $("t-currency").value.trim();
    if (amount !== "") body.amount = Number(amount);
    if (currency !== "") body.currency = currency;
    trigger(body);
  });
  await restart();
  render();
  await tick();
  setInterval(tick, 1000);
}

main().catch((e) => say("the page could not start: " + e.message, true));
]==]

local HTML = [[<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>luapay sandbox</title>
<style nonce="%s">%s</style>
</head>
<body>
<header><h1>luapay sandbox</h1><span id="live">loading…</span><span id="forward" class="dim"></span></header>
<p id="result" role="status"></p>
<h2>Payments, refunds and payouts</h2>
<table>
<thead><tr><th>Provider</th><th>Kind</th><th>Id</th><th>Amount</th><th>Status</th><th>Changed (UTC)</th>
<th>Sent</th><th>Actions</th></tr></thead>
<tbody id="operations"></tbody>
</table>
<p id="no-operations" class="dim">None yet.</p>
<h2>Send an event</h2>
<form id="trigger">
<select id="t-provider" aria-label="provider"></select>
<select id="t-event" aria-label="event"></select>
<input id="t-amount" inputmode="numeric" placeholder="amount (minor units)" aria-label="amount">
<input id="t-currency" placeholder="currency" aria-label="currency" size="4">
<button type="submit">Send</button>
</form>
<p class="dim">About a new operation, to the forward target only (<code>luapay listen</code>); <code>luapay
trigger</code> does the same from the shell.</p>
<h2>Notifications</h2>
<div id="notifications"></div>
<p id="no-notifications" class="dim">None yet.</p>
<script nonce="%s">%s</script>
</body>
</html>
]]

--- page.handle(): answers GET /_sandbox/ with the page.
function page.handle()
    if ngx.req.get_method() ~= "GET" and ngx.req.get_method() ~= "HEAD" then
        ngx.status = 405
        ngx.header["Allow"] = "GET, HEAD"
        ngx.header["Content-Type"] = "text/plain"
        ngx.print("GET the page\n")
        return
    end
    local nonce = core.base64_encode(core.random_bytes(18))
    ngx.header["Content-Type"] = "text/html; charset=utf-8"
    ngx.header["Cache-Control"] = "no-store"
    ngx.header["X-Content-Type-Options"] = "nosniff"
    ngx.header["Content-Security-Policy"] = ("default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; "
        .. "connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        :format(nonce, nonce)
    ngx.print(HTML:format(nonce, CSS, nonce, SCRIPT))
end

return page
