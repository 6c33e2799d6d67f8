// The unit status board: every unit with its status, its incident and how long it has had
// that status; read again every few seconds (positions and statuses come from crews and AVL).
import { h, init, tickAges } from "./lib.js";

init();
const body = document.getElementById("units-body");
const summary = document.getElementById("units-summary");
const ORDER = ["on_scene", "en_route", "dispatched", "returning", "available", "out_of_service"];

function row(u) {
  return h(
    "tr",
    { class: `st-${u.status}`, "data-id": u.id },
    h("td", { class: "mono" }, u.id),
    h("td", {}, u.kind),
    h("td", {}, u.station || ""),
    h("td", {}, h("span", { class: `status s-${u.status}` }, u.status.replace(/_/g, " "))),
    h("td", {}, u.incident_id ? h("a", { href: `/incidents/${u.incident_id}` }, `#${u.incident_id}`) : ""),
    h("td", { class: "c-age" }, u.status_at ? h("span", { class: "age", "data-since": u.status_at }) : ""),
    h("td", { class: "mono small" }, u.lat !== null && u.lon !== null ? `${u.lat.toFixed(4)}, ${u.lon.toFixed(4)}` : ""),
  );
}

async function load() {
  const r = await fetch("/api/v1/units", { headers: { Accept: "application/json" } }).catch(() => null);
  if (!r || !r.ok) {
    summary.textContent = "The units could not be read; retrying.";
    return;
  }
  const units = await r.json();
  units.sort((a, b) => ORDER.indexOf(a.status) - ORDER.indexOf(b.status) || a.id.localeCompare(b.id, undefined, { numeric: true }));
  body.replaceChildren(...units.map(row));
  tickAges(body);
  const counts = {};
  for (const u of units) counts[u.status] = (counts[u.status] || 0) + 1;
  summary.textContent = ORDER.filter((s) => counts[s]).map((s) => `${counts[s]} ${s.replace(/_/g, " ")}`).join(" · ");
}

load();
setInterval(load, 5000);
setInterval(() => tickAges(body), 1000);
