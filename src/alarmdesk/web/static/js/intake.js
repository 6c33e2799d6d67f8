// The call-taker and duty-report forms: htmx posts them and shows the server's answer; the
// map sets the coordinates with a click.
/* global L */
import { boot, h, init } from "./lib.js";
import { makeMap } from "./basemap.js";

init();
const B = boot();
const form = document.getElementById("intake-form");
const coords = document.getElementById("f-coords");
let marker = null;
let map = null;

function showErrors(errors) {
  for (const p of form.querySelectorAll(".field-error")) {
    const field = p.id.replace("err-", "");
    p.textContent = errors[field] || "";
    p.hidden = !errors[field];
    form.querySelector(`[aria-describedby~="${p.id}"]`)?.setAttribute("aria-invalid", String(Boolean(errors[field])));
  }
}

function place(lat, lon) {
  if (!map) return;
  if (marker) marker.setLatLng([lat, lon]);
  else marker = L.circleMarker([lat, lon], { radius: 9, color: "#fff", weight: 2, fillColor: "#ffd166", fillOpacity: 1 }).addTo(map);
}

// Open incidents near the place: the call-taker chooses to join one or to open a new one
// (nothing near: nothing to choose, alarmdesk's rules decide).
const candidates = document.getElementById("candidates");
const candidateList = document.getElementById("candidate-list");
let asked = 0;

async function showCandidates(lat, lon) {
  const mine = ++asked;
  const params = new URLSearchParams({ lat: String(lat), lon: String(lon) });
  const r = await fetch(`/api/v1/incidents/nearby?${params}`, { headers: { Accept: "application/json" } }).catch(() => null);
  if (mine !== asked) return; // a newer place was given meanwhile
  const found = r && r.ok ? await r.json() : [];
  candidateList.replaceChildren(
    ...found.map((inc) =>
      h(
        "label",
        {},
        h("input", { type: "radio", name: "choice", value: String(inc.id), required: "" }),
        ` Join #${inc.id} ${inc.type_code} (${B.types?.[inc.type_code] || inc.category}) · ${inc.distance_m} m · ${inc.status.replace("_", " ")}`,
      ),
    ),
  );
  candidates.hidden = found.length === 0;
  for (const input of candidates.querySelectorAll('input[name="choice"]')) {
    input.required = found.length > 0;
    if (found.length === 0) input.checked = false;
  }
}

function hideCandidates() {
  asked++;
  candidates.hidden = true;
  candidateList.replaceChildren();
  for (const input of candidates.querySelectorAll('input[name="choice"]')) {
    input.checked = false;
    input.required = false;
  }
}

form.addEventListener("htmx:afterRequest", (e) => {
  if (e.detail.elt !== form) return;
  const errorBox = document.querySelector("#result [data-errors]");
  if (errorBox) {
    showErrors(JSON.parse(errorBox.dataset.errors));
    const first = form.querySelector('[aria-invalid="true"]');
    first?.focus();
    return;
  }
  if (e.detail.successful) {
    showErrors({});
    const key = document.getElementById("form-key").value;
    form.reset();
    document.getElementById("form-key").value = key;
    if (marker) {
      marker.remove();
      marker = null;
    }
    hideCandidates();
    document.getElementById("f-type").focus();
  }
});

coords.addEventListener("change", () => {
  const m = coords.value.match(/^\s*(-?\d+(?:\.\d+)?)\s*[,; ]\s*(-?\d+(?:\.\d+)?)\s*$/);
  if (m) {
    place(Number(m[1]), Number(m[2]));
    map.panTo([Number(m[1]), Number(m[2])]);
    showCandidates(Number(m[1]), Number(m[2]));
  } else hideCandidates();
});

window.addEventListener("DOMContentLoaded", () => {
  ({ map } = makeMap(document.getElementById("map"), B.map));
  map.on("click", (e) => {
    const { lat, lng } = e.latlng;
    coords.value = `${lat.toFixed(5)}, ${lng.toFixed(5)}`;
    place(lat, lng);
    showCandidates(lat, lng);
  });
});
