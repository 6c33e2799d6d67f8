// Silences: the list with what each held back, a form to silence a device or a site for some
// hours, End buttons, and the silenced view of one silence.
import { csrf, h, init, localTime, toast } from "./lib.js";

init();
const body = document.getElementById("silences-body");
const form = document.getElementById("silence-form");
const error = document.getElementById("silence-error");
const held = document.getElementById("held");
const heldList = document.getElementById("held-list");
const JSON_HEADERS = { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf };

function matchText(m) {
  return Object.entries(m || {})
    .filter(([, v]) => v && (!Array.isArray(v) || v.length))
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : "area"}`)
    .join("; ");
}

async function end(id) {
  const r = await fetch(`/api/v1/silences/${id}/end`, { method: "POST", headers: JSON_HEADERS, body: "{}" }).catch(() => null);
  if (!r || !r.ok) toast(`Silence #${id} could not be ended.`, "error");
  else toast(`Silence #${id} ended: its signals alarm again.`);
  load();
}

async function show(id) {
  const r = await fetch(`/api/v1/silences/${id}/signals`, { headers: { Accept: "application/json" } }).catch(() => null);
  const signals = r && r.ok ? await r.json() : [];
  heldList.replaceChildren(
    ...(signals.length
      ? signals.map((s) => h("li", {}, h("span", { class: "muted small" }, `${localTime(s.received_at)} · ${s.source_id}`), ` ${s.type_code} ${s.summary || ""}`))
      : [h("li", { class: "muted" }, "nothing held back yet")]),
  );
  held.hidden = false;
}

function row(s) {
  const active = s.state === "active" || s.state === "pending";
  return h(
    "tr",
    { "data-id": String(s.id), class: `sil-${s.state}` },
    h("td", { class: "mono" }, String(s.id)),
    h("td", {}, s.state),
    h("td", {}, matchText(s.match)),
    h("td", { class: "mono small" }, s.ends_at ? localTime(s.ends_at) : s.weekly.length ? "weekly, until ended" : ""),
    h("td", {}, h("button", { type: "button", class: "quiet", "data-show": String(s.id) }, String(s.signals))),
    h("td", {}, s.reason),
    h("td", { class: "small" }, s.author),
    h("td", {}, active && form ? h("button", { type: "button", "data-end": String(s.id) }, "End") : ""),
  );
}

async function load() {
  const r = await fetch("/api/v1/silences?ended=true", { headers: { Accept: "application/json" } }).catch(() => null);
  const silences = r && r.ok ? await r.json() : [];
  body.replaceChildren(...silences.map(row));
}

body.addEventListener("click", (e) => {
  const stop = e.target.closest("button[data-end]");
  if (stop) end(stop.dataset.end);
  const look = e.target.closest("button[data-show]");
  if (look) show(look.dataset.show);
});

form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(form);
  const device = String(data.get("device") || "").trim();
  const match = {};
  if (/^[0-9A-Fa-f]{3,16}$/.test(device)) match.accounts = [device];
  else if (device) match.devices = [device];
  const site = String(data.get("site") || "").trim();
  if (site) match.sites = [site];
  const type = String(data.get("type") || "").trim().toUpperCase();
  if (type) match.types = [type];
  const until = new Date(Date.now() + Number(data.get("hours")) * 3600_000).toISOString();
  const r = await fetch("/api/v1/silences", {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ match, reason: String(data.get("reason") || ""), ends_at: until }),
  }).catch(() => null);
  const answer = r ? await r.json().catch(() => null) : null;
  if (!r || !r.ok) {
    error.textContent = answer?.error?.message || "The silence could not be made.";
    error.hidden = false;
    return;
  }
  error.hidden = true;
  form.reset();
  toast(`Silence #${answer.id} in force until ${localTime(answer.ends_at)}.`);
  load();
});

load();
setInterval(load, 10000);
