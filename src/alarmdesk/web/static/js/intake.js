// The call-taker and duty-report forms: htmx posts them and shows the server's answer; the
// map sets the coordinates with a click.
/* global L */
import { boot, init } from "./lib.js";
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
    document.getElementById("f-type").focus();
  }
});

coords.addEventListener("change", () => {
  const m = coords.value.match(/^\s*(-?\d+(?:\.\d+)?)\s*[,; ]\s*(-?\d+(?:\.\d+)?)\s*$/);
  if (m) {
    place(Number(m[1]), Number(m[2]));
    map.panTo([Number(m[1]), Number(m[2])]);
  }
});

window.addEventListener("DOMContentLoaded", () => {
  ({ map } = makeMap(document.getElementById("map"), B.map));
  map.on("click", (e) => {
    const { lat, lng } = e.latlng;
    coords.value = `${lat.toFixed(5)}, ${lng.toFixed(5)}`;
    place(lat, lng);
  });
});
