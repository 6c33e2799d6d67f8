// Response times for supervisors: the KPI report of /api/v1/reports/kpi as a bar chart (the
// p90 of each interval per group, Chart.js) and as tables. Every text goes in as text.
import { h, init } from "./lib.js";

init();
const form = document.getElementById("kpi-form");
const summary = document.getElementById("kpi-summary");
const head = document.getElementById("kpi-head");
const body = document.getElementById("kpi-body");
const compliance = document.getElementById("kpi-compliance-body");
const complianceTitle = document.getElementById("kpi-compliance-title");
const INTERVALS = ["answer", "call_to_dispatch", "turnout", "travel", "call_to_on_scene", "on_scene", "handling"];
let chart = null;

function seconds(v) {
  return v === null || v === undefined ? "" : v % 1 ? v.toFixed(1) : String(v);
}

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

async function show(event) {
  if (event) event.preventDefault();
  const data = new FormData(form);
  const query = new URLSearchParams({ from: data.get("from"), to: data.get("to"), own: data.get("own") });
  if (data.get("by")) query.set("by", data.get("by"));
  summary.textContent = "Reading…";
  const r = await fetch(`/api/v1/reports/kpi?${query}`, { headers: { Accept: "application/json" } }).catch(() => null);
  if (!r) {
    summary.textContent = "The report could not be read.";
    return;
  }
  const report = await r.json();
  if (!r.ok) {
    summary.textContent = report.error ? report.error.message : "The report could not be read.";
    return;
  }
  const what = report.own ? "incidents of this centre" : "imported calls";
  summary.textContent = `${report.calls} ${what}, ${report.from} to ${report.to} (${report.timezone}).`;
  tables(report);
  draw(report);
  form.dataset.shown = "true";
}

const today = new Date().toISOString().slice(0, 10);
const monthAgo = new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10);
document.getElementById("kpi-from").value = monthAgo;
document.getElementById("kpi-to").value = today;
form.addEventListener("submit", show);
show();
