// The "Publish warning" form of the incident page (supervisors): posts the warning to the API
// and lists it. Texts go in and out as text only (the list is rebuilt from the answer with h()).
import { csrf, h, localTime, toast } from "./lib.js";

const form = document.getElementById("cap-form");
const error = document.getElementById("cap-error");
const list = document.getElementById("cap-alerts");
const JSON_HEADERS = { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf };

function value(name) {
  const el = form.elements.namedItem(name);
  return el ? el.value : "";
}

form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  error.hidden = true;
  const body = {
    incident_id: Number(form.dataset.incident),
    msg_type: value("msg_type"),
    status: value("status"),
    event: value("event").trim(),
    urgency: value("urgency"),
    severity: value("severity"),
    certainty: value("certainty"),
    headline: value("headline").trim(),
    description: value("description"),
    instruction: value("instruction"),
    area_desc: value("area_desc").trim(),
    radius_km: Number(value("radius_km") || 1),
  };
  if (body.msg_type !== "Alert") body.references = value("references");
  const r = await fetch("/api/v1/cap/alerts", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body) }).catch(() => null);
  if (!r || !r.ok) {
    const answer = r ? await r.json().catch(() => null) : null;
    error.textContent = answer?.error?.message || "The warning could not be published.";
    error.hidden = false;
    return;
  }
  const a = await r.json();
  list.querySelector("li.muted")?.remove();
  list.append(
    h(
      "li",
      { "data-identifier": a.identifier },
      h("span", { class: "muted small" }, `${localTime(a.sent)} · ${a.msg_type} `),
      h("a", { href: `/api/v1/cap/alerts/${encodeURIComponent(a.identifier)}.xml` }, a.headline),
    ),
  );
  form.reset();
  toast(`Warning published (${a.msg_type}).`);
});
