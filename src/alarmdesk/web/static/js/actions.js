// Acting on an incident, from the queue and from the incident page: the API call with the
// version the operator saw, the dialogs that collect what an action needs, and what a race
// (someone else acted first) looks like.
import { csrf, h, openDialog } from "./lib.js";

// Errors that mean "the incident is not as you saw it": show the fresh state.
const RACE_CODES = new Set(["version_conflict", "invalid_transition", "not_found"]);
export const isRace = (err) => RACE_CODES.has(err?.code);

const DIALOG_ACTIONS = new Set(["dispatch", "notes", "resolve", "cancel", "reclassify"]);
export const needsDialog = (action) => DIALOG_ACTIONS.has(action);

export const ACTION_NAMES = {
  acknowledge: "Acknowledge",
  dispatch: "Dispatch",
  arrive: "Arrived",
  notes: "Note",
  reclassify: "Reclassify",
  resolve: "Resolve",
  close: "Close",
  cancel: "Cancel",
  step: "Procedure step done",
  verify: "Video verdict",
};

function toLogin() {
  location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
}

export async function act(id, action, body) {
  const r = await fetch(`/api/v1/incidents/${id}/${action}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body || {}),
  }).catch(() => null);
  if (!r) return { ok: false, error: { code: "network", message: "The server could not be reached; nothing was changed." } };
  if (r.status === 401) toLogin();
  const data = await r.json().catch(() => null);
  if (r.ok) return { ok: true, incident: data };
  return { ok: false, status: r.status, error: data?.error || { code: "error", message: `HTTP ${r.status}` } };
}

export async function fetchIncident(id) {
  const r = await fetch(`/api/v1/incidents/${id}`, { headers: { Accept: "application/json" } }).catch(() => null);
  if (!r) return null;
  if (r.status === 401) toLogin();
  return r.ok ? r.json() : { gone: true, status: r.status };
}

// -- unit suggestions ------------------------------------------------------------------------

function metres(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const x = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371000 * Math.asin(Math.sqrt(x));
}

// The server's recommendation (response plan or procedure, nearest fitting available units by
// estimated travel time) first, then every other available unit by distance.
export async function suggestUnits(incident) {
  const get = (url) => fetch(url, { headers: { Accept: "application/json" } }).catch(() => null);
  const [ru, rr] = await Promise.all([get("/api/v1/units"), get(`/api/v1/incidents/${incident.id}/recommendation`)]);
  const units = ru && ru.ok ? await ru.json() : [];
  const rec = rr && rr.ok ? await rr.json() : null;
  const byId = new Map(units.map((u) => [u.id, u]));
  const picks = rec ? rec.units : [];
  const recommended = picks.map((p) => ({
    ...(byId.get(p.unit_id) || {}),
    id: p.unit_id,
    kind: p.kind,
    need: p.need,
    eta: p.eta_s,
    distance: p.distance_m,
    recommended: true,
  }));
  const chosen = new Set(recommended.map((u) => u.id));
  const loc = incident.location;
  const here = loc && loc.lat !== undefined && loc.lon !== undefined ? loc : null;
  const others = units
    .filter((u) => u.status === "available" && !chosen.has(u.id))
    .map((u) => ({ ...u, recommended: false, distance: here && u.lat !== null && u.lon !== null ? metres(here, u) : null }));
  others.sort(
    (a, b) => (a.distance ?? Infinity) - (b.distance ?? Infinity) || a.id.localeCompare(b.id, undefined, { numeric: true }),
  );
  return {
    all: units,
    ranked: [...recommended, ...others],
    recommended: rec ? [...chosen] : null,
    short: rec ? rec.short : [],
  };
}

// -- dialogs ---------------------------------------------------------------------------------

function fill(dialog, name, value) {
  const el = dialog.querySelector(`[data-fill="${name}"]`);
  if (el) el.textContent = value;
  return el;
}

function showError(dialog, message) {
  const el = dialog.querySelector('[data-fill="error"]');
  if (!el) return;
  el.textContent = message || "";
  el.hidden = !message;
}

async function prepareDispatch(dialog, incident) {
  const input = dialog.querySelector('input[name="units"]');
  const list = dialog.querySelector('[data-fill="suggestions"]');
  const options = dialog.querySelector("#unit-options");
  input.value = "";
  list.replaceChildren(h("li", { class: "muted" }, "loading units…"));
  const { ranked, recommended, short } = await suggestUnits(incident);
  dialog.dataset.recommended = recommended ? JSON.stringify(recommended) : "";
  options.replaceChildren(...ranked.map((u) => h("option", { value: u.id }, `${u.kind} · ${u.station || ""}`)));
  const top = ranked.slice(0, Math.max(6, (recommended || []).length));
  const eta = (u) => (u.eta !== undefined && u.eta !== null ? ` · ETA ${Math.max(1, Math.round(u.eta / 60))} min` : "");
  list.replaceChildren(
    ...(top.length
      ? top.map((u) =>
          h(
            "li",
            { class: u.recommended ? "recommended" : "" },
            h("button", { type: "button", "data-unit": u.id }, u.id),
            ` ${u.kind}${u.station ? " · " + u.station : ""}`,
            u.recommended ? ` · for ${u.need}${eta(u)}` : u.distance !== null ? ` · ${(u.distance / 1000).toFixed(1)} km` : "",
          ),
        )
      : [h("li", { class: "muted" }, "no unit is available")]),
    ...short.map((s) => h("li", { class: "short" }, `short: ${s.missing} × ${s.need}`)),
  );
  if (recommended && recommended.length && !input.value.trim()) {
    input.value = recommended.join(", ");
    if (document.activeElement === input) input.select();
  }
  list.onclick = (e) => {
    const b = e.target.closest("button[data-unit]");
    if (!b) return;
    const have = input.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (!have.includes(b.dataset.unit)) have.push(b.dataset.unit);
    input.value = have.join(", ");
    input.focus();
  };
}

function bodyOf(action, form) {
  const data = new FormData(form);
  switch (action) {
    case "dispatch": {
      const units = String(data.get("units") || "").split(/[,\s]+/).map((s) => s.trim()).filter(Boolean);
      const shown = form.closest("dialog")?.dataset.recommended;
      return shown ? { units, recommended: JSON.parse(shown) } : { units };
    }
    case "notes":
      return { text: String(data.get("text") || "") };
    case "resolve": {
      const override = String(data.get("override_reason") || "").trim();
      const body = { disposition: data.get("disposition"), note: String(data.get("note") || "") };
      return override ? { ...body, override_reason: override } : body;
    }
    case "cancel":
      return { reason: data.get("reason"), note: String(data.get("note") || "") };
    case "reclassify": {
      const text = String(data.get("type_code") || "").trim();
      return { type_code: text.split(/\s+[—–-]\s+/)[0].trim().toUpperCase() };
    }
    default:
      return {};
  }
}

/**
 * Opens the dialog of `action` for `incident`; on confirm calls perform(body) and closes when
 * it succeeds or loses a race; any other error stays in the dialog to be corrected.
 */
export async function runDialog(action, incident, perform) {
  const dialog = document.getElementById(`dlg-${action}`);
  if (!dialog) return;
  const form = dialog.querySelector("form");
  form.reset();
  showError(dialog, "");
  fill(dialog, "title", `#${incident.id} ${incident.type_code}`);
  openDialog(dialog);
  if (action === "dispatch") dialog.dataset.recommended = "";
  const first = form.querySelector("input:not([type=hidden]), textarea, select");
  first?.focus();
  first?.select?.();
  // Ready to submit at once: the suggestions arrive while the operator types, and never
  // overwrite what they typed.
  if (action === "dispatch") prepareDispatch(dialog, incident);
  form.onsubmit = async (e) => {
    e.preventDefault();
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const outcome = await perform(bodyOf(action, form));
      if (outcome.ok || isRace(outcome.error)) dialog.close();
      else showError(dialog, outcome.error.message);
    } finally {
      submit.disabled = false;
    }
  };
  dialog.querySelector("[data-close]").onclick = () => dialog.close();
}

// Enter confirms every dialog, wherever the focus is in it: in a note (Shift+Enter is a new
// line) and on a <select> (a browser submits a form on Enter only from a text input).
document.addEventListener("keydown", (e) => {
  const t = e.target;
  if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.defaultPrevented) return;
  if (!(t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement)) return;
  if (!t.closest("dialog") || !t.form) return;
  e.preventDefault();
  t.form.requestSubmit();
});
