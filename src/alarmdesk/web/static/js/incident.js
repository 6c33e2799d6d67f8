// The incident page. The panel (facts, actions valid now, timeline, signals) is rendered by
// the server; htmx reloads it whenever the incident changes (SSE extension, one event stream
// filtered to this incident) and after each of our own actions.
/* global htmx, L */
import { boot, init, liveIndicator, onKeys, textNode, toast } from "./lib.js";
import { ACTION_NAMES, act, isRace, needsDialog, runDialog } from "./actions.js";
import { makeMap } from "./basemap.js";

init();
const B = boot();
const race = document.getElementById("race");

const panel = () => document.getElementById("panel");

function snapshot() {
  const p = panel();
  if (!p || !p.dataset.id) return null;
  return {
    ...B.incident,
    id: Number(p.dataset.id),
    version: Number(p.dataset.version),
    status: p.dataset.status,
    category: p.dataset.category,
    type_code: p.dataset.title.split(" ").slice(1).join(" "),
  };
}

function reload() {
  const p = panel();
  if (p && p.dataset.id) htmx.trigger(p, "refresh");
}

async function perform(inc, action, body) {
  const outcome = await act(inc.id, action, { ...body, expected_version: inc.version });
  if (outcome.ok) {
    race.hidden = true;
    toast(`${ACTION_NAMES[action]}: #${inc.id} is ${outcome.incident.status.replace("_", " ")}`);
    reload();
  } else if (isRace(outcome.error)) {
    race.textContent = `Someone else acted first: ${outcome.error.message}. The page now shows the incident as it is.`;
    race.hidden = false;
    reload();
  } else if (!needsDialog(action)) {
    toast(outcome.error.message, "error");
  }
  return outcome;
}

async function start(action) {
  const inc = snapshot();
  if (!inc) return;
  const button = panel().querySelector(`[data-action="${action}"]`);
  if (!button) {
    toast(`${ACTION_NAMES[action]} is not possible now (the incident is ${inc.status.replace("_", " ")}).`, "warn");
    return;
  }
  if (needsDialog(action)) await runDialog(action, inc, (body) => perform(inc, action, body));
  else await perform(inc, action, {});
}

document.addEventListener("click", (e) => {
  const b = e.target.closest("#panel [data-action]");
  if (b) start(b.dataset.action);
  const verdict = e.target.closest("#panel button[data-verdict]");
  if (verdict) {
    const inc = snapshot();
    if (inc) perform(inc, "verify", { verdict: verdict.dataset.verdict });
  }
  const step = e.target.closest("#checklist button[data-step]");
  if (step) {
    const inc = snapshot();
    if (inc) perform(inc, "step", { step: Number(step.dataset.step) });
  }
});

onKeys({
  a: () => start("acknowledge"),
  d: () => start("dispatch"),
  o: () => start("arrive"),
  n: () => start("notes"),
  t: () => start("reclassify"),
  r: () => start("resolve"),
  c: () => start("close"),
  x: () => start("cancel"),
  u: () => location.assign("/"),
});

const live = document.getElementById("live-incident");
live.addEventListener("htmx:sseOpen", () => liveIndicator("live"));
live.addEventListener("htmx:sseError", () => liveIndicator("reconnecting"));
live.addEventListener("htmx:sseClose", () => liveIndicator("closed"));

// -- the map ---------------------------------------------------------------------------------
window.addEventListener("DOMContentLoaded", () => {
  const loc = B.incident.location;
  const { map } = makeMap(document.getElementById("map"), B.map);
  if (loc && loc.lat !== undefined) {
    const fill = { 1: "#c62828", 2: "#f0a33a", 3: "#8ec5ff" }[B.incident.priority] || "#8a96a6";
    L.circleMarker([loc.lat, loc.lon], { radius: 9, color: "#fff", weight: 2, fillColor: fill, fillOpacity: 1 })
      .addTo(map)
      .bindTooltip(textNode(`#${B.incident.id} ${B.incident.type_code}`), { permanent: false });
    map.setView([loc.lat, loc.lon], 13);
    showAround(map, loc);
  }
});

// Around the incident: the units (free or committed) and the other open incidents nearby, so
// the operator sees what is close before dispatching. Every label is a text node.
async function showAround(map, loc) {
  const get = (url) => fetch(url, { headers: { Accept: "application/json" } }).catch(() => null);
  const params = new URLSearchParams({ lat: String(loc.lat), lon: String(loc.lon), radius_m: "2000" });
  const [ru, rn] = await Promise.all([get("/api/v1/units"), get(`/api/v1/incidents/nearby?${params}`)]);
  const units = ru && ru.ok ? await ru.json() : [];
  const near = rn && rn.ok ? await rn.json() : [];
  for (const u of units) {
    if (u.lat === null || u.lon === null) continue;
    const free = u.status === "available" || u.status === "returning";
    L.marker([u.lat, u.lon], {
      icon: L.divIcon({ className: `unit-marker ${free ? "available" : "busy"}`, iconSize: [9, 9] }),
      keyboard: false,
    })
      .addTo(map)
      .bindTooltip(textNode(`${u.id} ${u.kind} · ${u.status.replace(/_/g, " ")}`));
  }
  for (const inc of near) {
    if (inc.id === B.incident.id || !inc.location) continue;
    L.marker([inc.location.lat, inc.location.lon], {
      icon: L.divIcon({ className: `inc-marker near p${inc.priority} st-${inc.status}`, iconSize: [12, 12] }),
      keyboard: false,
    })
      .addTo(map)
      .bindTooltip(textNode(`#${inc.id} ${inc.type_code} · ${inc.distance_m} m`));
  }
}
