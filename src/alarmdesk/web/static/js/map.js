// The map page: open incidents of my desks and the units, live; clusters when dense; a click
// on an incident opens it.
/* global L */
import { boot, h, init, isolate, mineDesks, openStream, textNode } from "./lib.js";
import { makeMap } from "./basemap.js";
import { heatOverlay } from "./heat.js";

init();
const B = boot();
const incidents = new Map(); // id → {inc, marker}
const FINAL = new Set(["closed", "cancelled"]);
let map, incidentLayer, unitLayer;

function clusterIcon(cluster) {
  const n = cluster.getChildCount();
  const top = Math.min(...cluster.getAllChildMarkers().map((m) => m.options.priority));
  return L.divIcon({
    html: h("div", {}, h("span", {}, String(n))),
    className: `marker-cluster inc-cluster top-p${Math.min(top, 4)}`,
    iconSize: L.point(40, 40),
  });
}

function unitClusterIcon(cluster) {
  const markers = cluster.getAllChildMarkers();
  const free = markers.filter((m) => m.options.available).length;
  return L.divIcon({
    html: h("span", {}, `${free}/${markers.length}`),
    className: "unit-cluster",
    iconSize: L.point(34, 18),
  });
}

function incidentIcon(inc) {
  const size = inc.priority === 1 ? 18 : 14;
  return L.divIcon({ className: `inc-marker p${inc.priority} st-${inc.status}`, iconSize: [size, size] });
}

function label(inc) {
  const name = B.types[inc.type_code] || "";
  const where = inc.location?.address || "";
  return `#${inc.id} P${inc.priority} ${inc.type_code} ${name} — ${inc.status.replace("_", " ")}${where ? " — " + isolate(where) : ""}`;
}

function upsert(inc) {
  const have = incidents.get(inc.id);
  if (have && have.inc.version > inc.version) return;
  const loc = inc.location;
  const show = mineDesks(inc.desks, B.desks) && !FINAL.has(inc.status) && loc && loc.lat !== undefined;
  if (have) {
    incidentLayer.removeLayer(have.marker);
    incidents.delete(inc.id);
  }
  if (!show) return;
  const marker = L.marker([loc.lat, loc.lon], {
    icon: incidentIcon(inc),
    priority: inc.priority,
    title: label(inc),
    keyboard: true,
    riseOnHover: true,
  });
  marker.bindTooltip(textNode(label(inc)));
  marker.on("click", () => location.assign(`/incidents/${inc.id}`));
  incidentLayer.addLayer(marker);
  incidents.set(inc.id, { inc, marker });
  counts();
}

function counts() {
  const el = document.getElementById("map-counts");
  if (el) el.textContent = `${incidents.size} open incidents on the map`;
}

let unitTimer = null;
async function loadUnits() {
  const r = await fetch("/api/v1/units", { headers: { Accept: "application/json" } }).catch(() => null);
  if (!r || !r.ok) return;
  const units = await r.json();
  unitLayer.clearLayers();
  for (const u of units) {
    if (u.lat === null || u.lon === null) continue;
    const free = u.status === "available";
    const m = L.marker([u.lat, u.lon], {
      available: free,
      pane: "units",
      icon: L.divIcon({ className: `unit-marker ${free ? "available" : "busy"}`, iconSize: [9, 9] }),
      keyboard: false,
      title: `${u.id} ${u.kind} — ${u.status.replace("_", " ")}`,
    });
    m.bindTooltip(textNode(`unit ${u.id} (${u.kind}, ${u.station || "no station"}) — ${u.status.replace("_", " ")}${u.incident_id ? " on #" + u.incident_id : ""}`));
    unitLayer.addLayer(m);
  }
}
const unitsChanged = () => {
  clearTimeout(unitTimer);
  unitTimer = setTimeout(loadUnits, 800);
};

window.addEventListener("DOMContentLoaded", () => {
  ({ map } = makeMap(document.getElementById("map"), B.map));
  incidentLayer = L.markerClusterGroup({ iconCreateFunction: clusterIcon, maxClusterRadius: 45, showCoverageOnHover: false });
  map.createPane("units").style.zIndex = 550; // under the incidents (marker pane: 600)
  unitLayer = L.markerClusterGroup({
    clusterPane: "units",
    iconCreateFunction: unitClusterIcon,
    maxClusterRadius: 30,
    showCoverageOnHover: false,
    disableClusteringAtZoom: 17,
  });
  incidentLayer.addTo(map);
  unitLayer.addTo(map);
  const overlays = { Incidents: incidentLayer, "Units (free/all)": unitLayer };
  // Supervisors: the centre's finished incidents of the last 30 days per H3 cell (off at first).
  if (B.heat) overlays["Heat (H3), 30 days"] = heatOverlay(map, document.getElementById("map"));
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);
  for (const inc of B.items) upsert(inc);
  counts();
  loadUnits();
  openStream(B.last_event_id, (type, data) => {
    if (data.incident) upsert(data.incident);
    if (type === "incident.transitioned" || type === "incident.units_assigned" || type === "incident.unit_status") unitsChanged();
  });
  setInterval(loadUnits, 10000); // positions from AVL move without an incident event
});
