// The live queue: the incidents of my desks, kept current from the event stream.
// Order (the server's, see service/console_queries.py): priority, then waiting (new) before
// taken, then the oldest first. The server sends a first page and counts every match; "Show
// more" pages in the rest. Each event updates, inserts or removes only its own row (keyed by
// incident id), built with DOM calls (never innerHTML), so nothing from an incident is ever
// read as markup and a busy queue never redraws as a whole.
import { beep, boot, h, init, isolate, mineDesks, onKeys, openStream, tickAges, toast } from "./lib.js";
import { ACTION_NAMES, act, fetchIncident, isRace, needsDialog, runDialog } from "./actions.js";

init();
const B = boot();
const F = B.filters;
const incidents = new Map(); // id → incident snapshot
const rows = new Map(); // id → <tr>
const ordered = []; // the ids shown, in order
const tbody = document.getElementById("queue-body");
const empty = document.getElementById("queue-empty");
const counts = document.getElementById("queue-counts");
const banner = document.getElementById("p1-banner");
const parkedBanner = document.getElementById("parked-banner"); // a supervisor's queue only
const PARKED_RECHECK_MS = 30000;
const more = document.getElementById("queue-more");
let selected = null;
let cursor = B.next || null; // the next page on the server; null: every match is loaded
let boundary = null; // the last incident of the last page loaded (while more exist)
let serverCounts = B.counts || { total: 0, waiting: 0, p1: 0, p1_waiting: 0 };

function matches(inc) {
  if (!mineDesks(inc.desks, B.desks)) return false;
  if (!F.status.includes(inc.status)) return false;
  if (F.priority.length && !F.priority.includes(inc.priority)) return false;
  if (F.type && inc.type_code !== F.type) return false;
  if (F.desk && !(inc.desks || []).includes(F.desk)) return false;
  return true;
}

function order(a, b) {
  return (
    a.priority - b.priority ||
    Number(b.status === "new") - Number(a.status === "new") ||
    Date.parse(a.opened_at) - Date.parse(b.opened_at) ||
    a.id - b.id
  );
}

function locationText(loc) {
  if (!loc) return "—";
  const parts = [loc.address, loc.site].filter(Boolean).map(isolate);
  if (loc.zone) parts.push(`zone ${isolate(loc.zone)}`);
  if (!parts.length && loc.lat !== undefined) parts.push(`${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}`);
  return parts.join(" · ") || "—";
}

function ageCell(inc) {
  const esc = inc.escalation;
  const attrs = { class: "age", "data-since": inc.opened_at };
  if (esc && inc.status === "new" && esc.thresholds && esc.thresholds.length) {
    attrs["data-warn"] = String(esc.thresholds[0]);
    attrs["data-alarm"] = String(esc.thresholds[esc.thresholds.length - 1]);
  }
  return h("span", attrs);
}

function renderRow(tr, inc) {
  const esc = inc.escalation;
  const escalated = esc && esc.step > 0 ? " escalated" : "";
  tr.className = `p${inc.priority} st-${inc.status}${escalated}${esc && esc.overdue ? " overdue" : ""}`;
  tr.dataset.id = inc.id;
  tr.dataset.status = inc.status;
  tr.dataset.version = inc.version;
  tr.tabIndex = -1;
  tr.setAttribute("aria-selected", String(inc.id === selected));
  const name = B.types[inc.type_code] || "";
  const loc = locationText(inc.location);
  tr.replaceChildren(
    h("td", { class: "c-prio" }, h("span", { class: `prio p${inc.priority}`, title: `priority ${inc.priority}` }, `P${inc.priority}`)),
    h("td", { class: "c-status" }, h("span", { class: `status s-${inc.status}` }, inc.status.replace("_", " "))),
    h("td", { class: "c-age" }, ageCell(inc), escalated ? h("span", { class: "tag esc", title: `escalation step ${esc.step} of ${esc.steps}` }, "esc") : ""),
    h("td", { class: "c-id" }, h("a", { href: `/incidents/${inc.id}`, tabindex: "-1" }, `#${inc.id}`)),
    h("td", { class: "c-type" }, h("span", { class: "mono" }, inc.type_code), h("span", { class: "name" }, name),
      inc.confirmed ? h("span", { class: "tag confirmed", title: "confirmed by another zone of the panel, or on video" }, "confirmed") : ""),
    h("td", { class: "c-loc", title: loc }, loc),
    h("td", { class: "c-desks" }, (inc.desks || []).join(", ")),
    h("td", { class: "c-units" }, (inc.units || []).map((u) => h("span", { class: "unit" }, u))),
    h("td", { class: "c-sig" }, String(inc.signal_count)),
  );
  tickAges(tr);
}

/** Where `inc` belongs in `ordered` (binary search; `ordered` never holds inc itself). */
function slot(inc) {
  let lo = 0;
  let hi = ordered.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (order(incidents.get(ordered[mid]), inc) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function unlist(id) {
  const at = ordered.indexOf(id);
  if (at !== -1) ordered.splice(at, 1);
}

/** Shows `inc` in its place: only its own row is drawn, and moved only if its place changed. */
function place(inc, fresh) {
  const had = incidents.get(inc.id);
  let tr = rows.get(inc.id);
  if (had) unlist(inc.id);
  incidents.set(inc.id, inc);
  const at = slot(inc);
  ordered.splice(at, 0, inc.id);
  if (!tr) {
    tr = h("tr");
    rows.set(inc.id, tr);
    if (fresh) tr.classList.add("fresh");
    renderRow(tr, inc);
  } else if (!had || had.version !== inc.version || had.status !== inc.status) {
    const wasFresh = tr.classList.contains("fresh");
    renderRow(tr, inc);
    if (wasFresh) tr.classList.add("fresh");
  }
  const next = at + 1 < ordered.length ? rows.get(ordered[at + 1]) : null;
  if (tr.parentNode !== tbody || tr.nextSibling !== next) tbody.insertBefore(tr, next);
}

function drop(id) {
  if (!incidents.has(id)) return;
  incidents.delete(id);
  unlist(id);
  rows.get(id)?.remove();
  rows.delete(id);
  if (selected === id) selected = null;
}

function summary() {
  const c = serverCounts;
  empty.hidden = ordered.length > 0 || c.total > 0;
  const shown = ordered.length < c.total ? ` · showing ${ordered.length}` : "";
  counts.textContent = `${c.total} incident${c.total === 1 ? "" : "s"} · ${c.waiting} new${shown}`;
  more.hidden = cursor === null;
  banner.dataset.count = String(c.p1_waiting);
  if (c.p1_waiting > 0) {
    const topId = ordered.find((id) => {
      const i = incidents.get(id);
      return i.priority === 1 && i.status === "new";
    });
    const top = topId === undefined ? null : incidents.get(topId);
    const head = c.p1_waiting === 1 ? "1 new P1 incident" : `${c.p1_waiting} new P1 incidents`;
    banner.replaceChildren(
      h("span", {}, top ? `${head} — the oldest: #${top.id} ${top.type_code} ${B.types[top.type_code] || ""} · ${locationText(top.location)}` : head),
      top ? h("button", { type: "button", "data-open": top.id }, `Open #${top.id}`) : null,
    );
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  showParked(c.parked);
}

/** Queued signals that could not be stored (distributed mode): a count and a time, no content. */
function showParked(p) {
  if (!parkedBanner) return;
  const n = p ? p.count : 0;
  parkedBanner.dataset.count = String(n);
  parkedBanner.hidden = n === 0;
  if (n === 0) return;
  const since = new Date(p.since).toLocaleString([], { dateStyle: "short", timeStyle: "short", hour12: false });
  parkedBanner.textContent =
    `${n} queued signal${n === 1 ? "" : "s"} could not be stored and ${n === 1 ? "is" : "are"} parked, ` +
    `the oldest since ${since}. Nothing was dropped: the administrator lists them with ` +
    "\u201calarmdesk parked list\u201d and puts them back once the fault is mended.";
}

// Counts come from the server (an incident beyond the loaded pages changes them too): asked
// again shortly after events, at most every second.
let countTimer = null;
function recount() {
  if (countTimer) return;
  countTimer = setTimeout(async () => {
    countTimer = null;
    const r = await fetch(`/queue/counts${location.search}`, { headers: { Accept: "application/json" } }).catch(() => null);
    if (r && r.ok) {
      serverCounts = await r.json();
      summary();
    }
  }, 1000);
}

/** Inside the loaded part of the queue: everything while complete, else up to the boundary. */
function loaded(inc) {
  return cursor === null || boundary === null || order(inc, boundary) <= 0;
}

/** Takes a snapshot in (or out); stale snapshots never overwrite. Returns whether it applied. */
function upsert(inc, fresh = false) {
  const have = incidents.get(inc.id);
  if (have && have.version > inc.version) return false;
  if (matches(inc) && (have || loaded(inc))) place(inc, fresh);
  else drop(inc.id);
  return true;
}

function addPage(items, next) {
  cursor = next || null;
  boundary = cursor && items.length ? items[items.length - 1] : null;
  for (const inc of items) upsert(inc);
}

async function loadMore() {
  if (cursor === null) return;
  more.disabled = true;
  try {
    const params = new URLSearchParams(location.search);
    params.set("after", cursor);
    const r = await fetch(`/queue/items?${params}`, { headers: { Accept: "application/json" } }).catch(() => null);
    if (!r || !r.ok) {
      toast("The next incidents could not be loaded; try again.", "error");
      return;
    }
    const page = await r.json();
    addPage(page.items, page.next);
    serverCounts = page.counts;
    summary();
  } finally {
    more.disabled = false;
  }
}

addPage(B.items, B.next);
summary();
more.addEventListener("click", loadMore);

openStream(B.last_event_id, (type, data) => {
  const inc = data.incident;
  if (!inc) return;
  recount();
  if (!upsert(inc, true)) return;
  summary();
  const arrived = type === "incident.opened" || type === "incident.reclassified" || type === "incident.updated";
  if (arrived && inc.priority === 1 && inc.status === "new" && incidents.has(inc.id)) beep();
  // An escalation step repeats the tone until someone acknowledges.
  if (type === "incident.escalated" && data.detail && data.detail.alert && incidents.has(inc.id)) beep();
});

// -- selection and keys ----------------------------------------------------------------------

function select(id, focus = true) {
  selected = id;
  for (const [rid, tr] of rows) tr.setAttribute("aria-selected", String(rid === id));
  const tr = rows.get(id);
  if (tr && focus) {
    tr.focus();
    tr.scrollIntoView({ block: "nearest" });
  }
}

function move(step) {
  const ids = [...tbody.children].map((tr) => Number(tr.dataset.id));
  if (!ids.length) return;
  const at = ids.indexOf(selected);
  const next = at === -1 ? (step > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, at + step));
  select(ids[next]);
}

function current() {
  if (selected === null || !incidents.has(selected)) {
    toast("Select an incident first (j / k).", "warn");
    return null;
  }
  return incidents.get(selected);
}

async function refresh(id) {
  const fresh = await fetchIncident(id);
  if (fresh && !fresh.gone) upsert(fresh);
  else drop(id);
  summary();
  recount();
}

async function perform(inc, action, body) {
  const outcome = await act(inc.id, action, { ...body, expected_version: inc.version });
  if (outcome.ok) {
    upsert(outcome.incident);
    summary();
    recount();
    toast(`${ACTION_NAMES[action]}: #${inc.id} is ${outcome.incident.status.replace("_", " ")}`);
  } else if (isRace(outcome.error)) {
    toast(`Someone else acted first on #${inc.id}: ${outcome.error.message} — showing its current state.`, "warn", 9000);
    await refresh(inc.id);
  } else if (!needsDialog(action)) {
    toast(outcome.error.message, "error");
  }
  return outcome;
}

async function start(action) {
  const inc = current();
  if (!inc) return;
  if (!B.can_act) {
    toast("Your role reads incidents; it cannot act on them.", "warn");
    return;
  }
  if (!(B.rules[action] || []).includes(inc.status)) {
    toast(`${ACTION_NAMES[action]} is not possible: #${inc.id} is ${inc.status.replace("_", " ")}.`, "warn");
    return;
  }
  if (needsDialog(action)) await runDialog(action, inc, (body) => perform(inc, action, body));
  else await perform(inc, action, {});
}

const open = () => {
  const inc = current();
  if (inc) location.assign(`/incidents/${inc.id}`);
};

onKeys({
  j: () => move(1),
  k: () => move(-1),
  ArrowDown: () => move(1),
  ArrowUp: () => move(-1),
  Enter: open,
  o: open,
  a: () => start("acknowledge"),
  d: () => start("dispatch"),
  n: () => start("notes"),
  "/": () => document.getElementById("filter-type")?.focus(),
});

tbody.addEventListener("click", (e) => {
  const tr = e.target.closest("tr");
  if (!tr) return;
  if (e.target.closest("a")) return;
  select(Number(tr.dataset.id), false);
  location.assign(`/incidents/${tr.dataset.id}`);
});
banner.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-open]");
  if (b) location.assign(`/incidents/${b.dataset.open}`);
});
// Parked signals make no incident event: a supervisor's queue asks again every half minute.
if (parkedBanner) setInterval(recount, PARKED_RECHECK_MS);
