// Response times for supervisors: the KPI report of /api/v1/reports/kpi as a bar chart (the
// p90 of each interval per group, Chart.js) and as tables; the heat layer of
// /api/v1/reports/heat (calls per H3 cell) on a map, for the same days and calls. Every text
// goes in as text.
import { boot, csrf, h, init } from "./lib.js";
import { makeMap } from "./basemap.js";
import { heatLayer, seconds } from "./heat.js";

init();
const B = boot();
const form = document.getElementById("kpi-form");
const summary = document.getElementById("kpi-summary");
const head = document.getElementById("kpi-head");
const body = document.getElementById("kpi-body");
const compliance = document.getElementById("kpi-compliance-body");
const complianceTitle = document.getElementById("kpi-compliance-title");
const INTERVALS = ["answer", "call_to_dispatch", "turnout", "travel", "call_to_on_scene", "on_scene", "handling"];
const heatSummary = document.getElementById("heat-summary");
let chart = null;
let heat = null;

function groupName(group) {
  const values = Object.values(group);
  return values.length ? values.map((v) => (v === null ? "-" : String(v))).join(" · ") : "all";
}

function draw(report) {
  const labels = report.groups.map((g) => groupName(g.group));
  const datasets = INTERVALS.map((name) => ({
    label: name.replace(/_/g, " "),
    data: report.groups.map((g) => (g.intervals[name] ? g.intervals[name].p90 : null)),
  }));
  if (chart) chart.destroy();
  chart = new window.Chart(document.getElementById("kpi-chart"), {
    type: "bar",
    data: { labels, datasets },
    options: { animation: false, responsive: true, scales: { y: { title: { display: true, text: "p90, seconds" } } } },
  });
}

function tables(report) {
  head.replaceChildren(
    h("tr", {}, ...[...report.by, "interval", "n", "mean", "p50", "p90", "p99", "left out"].map((c) => h("th", { scope: "col" }, c))),
  );
  const rows = [];
  for (const g of report.groups) {
    for (const [name, f] of Object.entries(g.intervals)) {
      rows.push(
        h(
          "tr",
          {},
          ...Object.values(g.group).map((v) => h("td", {}, v === null ? "-" : String(v))),
          h("td", {}, name.replace(/_/g, " ")),
          h("td", {}, String(f.count)),
          ...[f.mean, f.p50, f.p90, f.p99].map((v) => h("td", { class: "num" }, seconds(v))),
          h("td", {}, `${f.missing}/${f.negative}/${f.zero}`),
        ),
      );
    }
  }
  body.replaceChildren(...rows);
  complianceTitle.textContent = `Compliance: ${report.objectives}`;
  compliance.replaceChildren(
    ...report.compliance.map((c) =>
      h(
        "tr",
        { class: c.met === false ? "overdue" : "" },
        h("td", {}, c.station_area || "-"),
        h("td", {}, c.year),
        h("td", {}, c.objective),
        h("td", {}, `${c.limit_seconds} s`),
        h("td", {}, `${Math.round(c.fraction * 100)} %`),
        h("td", {}, c.achieved === null ? "" : `${(c.achieved * 100).toFixed(1)} %`),
        h("td", {}, c.met === null ? "no data" : c.met ? "met" : "not met"),
        h("td", {}, String(c.count)),
      ),
    ),
  );
}

// Each part of the page draws only the answer to its latest request: the page's first report
// (the centre's own) may answer after the supervisor asked for another, and must not draw
// over it.
const latest = { kpis: 0, heat: 0 };

// A report as JSON, or the message to show instead.
async function read(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } }).catch(() => null);
  if (!r) return { error: "The report could not be read." };
  const body = await r.json().catch(() => null);
  if (!r.ok || !body) return { error: body?.error ? body.error.message : "The report could not be read." };
  return { report: body };
}

function calls(report) {
  if (report.own) return "incidents of this centre";
  return report.source === null ? "imported calls" : `imported calls of source “${report.source}”`;
}

async function showKpis(query, url = `/api/v1/reports/kpi?${query}`) {
  summary.textContent = "Reading…";
  const mine = ++latest.kpis;
  const { report, error } = await read(url);
  if (mine !== latest.kpis) return;
  if (error) {
    summary.textContent = error;
    return;
  }
  const saved = report.saved ? `Saved report “${report.saved}”: ` : "";
  summary.textContent = `${saved}${report.calls} ${calls(report)}, ${report.from} to ${report.to} (${report.timezone}).`;
  tables(report);
  draw(report);
  form.dataset.shown = "true";
}

async function showHeat(query, resolution) {
  heatSummary.textContent = "Reading…";
  const el = document.getElementById("heat-map");
  if (!heat) {
    const { map } = makeMap(el, B.map);
    heat = heatLayer(map, el);
    heat.layer.addTo(map);
    heat.legend.addTo(map);
  }
  const q = new URLSearchParams(query);
  q.set("resolution", resolution);
  const mine = ++latest.heat;
  const { report, error } = await read(`/api/v1/reports/heat?${q}`);
  if (mine !== latest.heat) return;
  if (error) {
    heatSummary.textContent = error;
    return;
  }
  heat.draw(report);
  const located = report.calls - report.unlocated;
  heatSummary.textContent =
    `${located} ${calls(report)} in ${report.features.length} cells of resolution ${report.resolution}, ` +
    `${report.from} to ${report.to}; ${report.unlocated} without a location. ` +
    `Outlined red: ${report.interval.replace(/_/g, " ")} p90 over ${seconds(report.target_seconds)} s.`;
  el.dataset.shown = "true";
}

function show(event) {
  if (event) event.preventDefault();
  const data = new FormData(form);
  const query = new URLSearchParams({ from: data.get("from"), to: data.get("to"), own: data.get("own") });
  const source = String(data.get("source") || "").trim();
  if (source && data.get("own") === "false") query.set("source", source);
  const kpiQuery = new URLSearchParams(query);
  if (data.get("by")) kpiQuery.set("by", data.get("by"));
  showKpis(kpiQuery);
  showHeat(query, data.get("resolution"));
}

// Saved reports: a report's options kept by name (purpose-screened by the server), run again
// over their last days.
const savedForm = document.getElementById("kpi-saved-form");
const savedSelect = document.getElementById("kpi-saved");
const savedStatus = document.getElementById("kpi-saved-status");

async function listSaved(selected = "") {
  const { report: list, error } = await read("/api/v1/reports/saved");
  if (error) {
    savedStatus.textContent = error;
    return;
  }
  savedSelect.replaceChildren(
    h("option", { value: "" }, "—"),
    ...list.map((r) => h("option", { value: r.name, title: r.spec.description }, r.name)),
  );
  savedSelect.value = selected;
  savedForm.dataset.loaded = "true";
}

async function runSaved() {
  const name = savedSelect.value;
  if (!name) return;
  await showKpis(null, `/api/v1/reports/saved/${encodeURIComponent(name)}/kpi`);
}

async function save(event) {
  event.preventDefault();
  const data = new FormData(form);
  const name = document.getElementById("kpi-save-name").value.trim();
  const from = new Date(data.get("from"));
  const to = new Date(data.get("to"));
  const days = Math.max(1, Math.round((to - from) / 86400000) + 1);
  const source = String(data.get("source") || "").trim();
  const own = data.get("own") !== "false";
  const spec = {
    days,
    by: data.get("by") ? [data.get("by")] : [],
    own,
    resolution: Number(data.get("resolution")),
    description: document.getElementById("kpi-save-description").value,
  };
  if (!own && source) spec.source = source;
  savedStatus.textContent = "Saving…";
  const r = await fetch(`/api/v1/reports/saved/${encodeURIComponent(name)}`, {
    method: "PUT",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(spec),
  }).catch(() => null);
  const body = r ? await r.json().catch(() => null) : null;
  if (!r || !r.ok) {
    savedStatus.textContent = body?.error ? body.error.message : "The report could not be saved.";
    return;
  }
  savedStatus.textContent = `Saved “${body.name}”: the last ${body.spec.days} days.`;
  await listSaved(body.name);
}

savedForm.addEventListener("submit", save);
document.getElementById("kpi-saved-run").addEventListener("click", runSaved);
listSaved();

const today = new Date().toISOString().slice(0, 10);
const monthAgo = new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10);
document.getElementById("kpi-from").value = monthAgo;
document.getElementById("kpi-to").value = today;
form.addEventListener("submit", show);
show();
