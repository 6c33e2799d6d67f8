// The live queue: the incidents of my desks, kept current from the event stream.
// Order: priority, then unacknowledged (new) first, then newest. Rows are built with DOM
// calls (never innerHTML), so nothing from an incident is ever read as markup.
import { beep, boot, h, init, mineDesks, onKeys, openStream, tickAges, toast } from "./lib.js";
import { ACTION_NAMES, act, fetchIncident, isRace, needsDialog, runDialog } from "./actions.js";

init();
const B = boot();
const F = B.filters;
const incidents = new Map(); // id → incident snapshot
const rows = new Map(); // id → <tr>
const tbody = document.getElementById("queue-body");
const empty = document.getElementById("queue-empty");
const counts = document.getElementById("queue-counts");
const banner = document.getElementById("p1-banner");
let selected = null;
let firstRender = true;

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
    Date.parse(b.opened_at) - Date.parse(a.opened_at) ||
    b.id - a.id
  );
}

function locationText(loc) {
  if (!loc) return "—";
  const parts = [loc.address, loc.site].filter(Boolean);
  if (loc.zone) parts.push(`zone ${loc.zone}`);
  if (!parts.length && loc.lat !== undefined) parts.push(`${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}`);
  return parts.join(" · ") || "—";
}

function renderRow(tr, inc) {
  tr.className = `p${inc.priority} st-${inc.status}`;
  tr.dataset.id = inc.id;
  tr.dataset.status = inc.status;
  tr.dataset.version = inc.version;
  tr.tabIndex = -1;
  const name = B.types[inc.type_code] || "";
  const loc = locationText(inc.location);
  tr.replaceChildren(
    h("td", { class: "c-prio" }, h("span", { class: `prio p${inc.priority}`, title: `priority ${inc.priority}` }, `P${inc.priority}`)),
    h("td", { class: "c-status" }, h("span", { class: `status s-${inc.status}` }, inc.status.replace("_", " "))),
    h("td", { class: "c-age" }, h("span", { class: "age", "data-since": inc.opened_at })),
    h("td", { class: "c-id" }, h("a", { href: `/incidents/${inc.id}`, tabindex: "-1" }, `#${inc.id}`)),
    h("td", { class: "c-type" }, h("span", { class: "mono" }, inc.type_code), h("span", { class: "name" }, name)),
    h("td", { class: "c-loc", title: loc }, loc),
    h("td", { class: "c-desks" }, (inc.desks || []).join(", ")),
    h("td", { class: "c-units" }, (inc.units || []).map((u) => h("span", { class: "unit" }, u))),
    h("td", { class: "c-sig" }, String(inc.signal_count)),
  );
}

function render() {
  const list = [...incidents.values()].sort(order);
  const hadFocus = selected !== null && document.activeElement === rows.get(selected);
  for (const inc of list) {
    let tr = rows.get(inc.id);
    if (!tr) {
      tr = h("tr");
      rows.set(inc.id, tr);
      if (!firstRender) tr.classList.add("fresh");
    }
    const fresh = tr.classList.contains("fresh");
    renderRow(tr, inc);
    if (fresh) tr.classList.add("fresh");
    tr.setAttribute("aria-selected", String(inc.id === selected));
    tbody.append(tr); // moves it into order
  }
  for (const [id, tr] of rows) {
    if (!incidents.has(id)) {
      tr.remove();
      rows.delete(id);
    }
  }
  if (selected !== null && !incidents.has(selected)) selected = null;
  if (hadFocus) rows.get(selected)?.focus();
  empty.hidden = list.length > 0;
  const fresh = list.filter((i) => i.status === "new").length;
  counts.textContent = `${list.length} incident${list.length === 1 ? "" : "s"} · ${fresh} new${B.truncated ? " · showing the newest 500" : ""}`;
  const p1 = list.filter((i) => i.priority === 1 && i.status === "new");
  if (p1.length) {
    const top = p1[0];
    banner.replaceChildren(
      h("span", {}, `${p1.length === 1 ? "New P1" : `${p1.length} new P1 incidents`} — #${top.id} ${top.type_code} ${B.types[top.type_code] || ""} · ${locationText(top.location)}`),
      h("button", { type: "button", "data-open": top.id }, `Open #${top.id}`),
    );
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  tickAges(tbody);
  firstRender = false;
}

/** Puts a snapshot in the queue (or takes it out); stale snapshots never overwrite. */
function upsert(inc) {
  const have = incidents.get(inc.id);
  if (have && have.version > inc.version) return false;
  if (matches(inc)) incidents.set(inc.id, inc);
  else incidents.delete(inc.id);
  return true;
}

for (const inc of B.items) upsert(inc);
render();

openStream(B.last_event_id, (type, data) => {
  const inc = data.incident;
  if (!inc || !upsert(inc)) return;
  render();
  const arrived = type === "incident.opened" || type === "incident.reclassified" || type === "incident.updated";
  if (arrived && inc.priority === 1 && inc.status === "new" && incidents.has(inc.id)) beep();
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
  if (fresh && !fresh.gone) {
    upsert(fresh);
  } else {
    incidents.delete(id);
  }
  render();
}

async function perform(inc, action, body) {
  const outcome = await act(inc.id, action, { ...body, expected_version: inc.version });
  if (outcome.ok) {
    upsert(outcome.incident);
    render();
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
