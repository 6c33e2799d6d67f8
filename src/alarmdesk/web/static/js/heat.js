// The heat layer: a report of /api/v1/reports/heat (a GeoJSON FeatureCollection of H3 cells)
// drawn on a Leaflet map, each cell shaded by its number of calls, outlined red when its p90
// exceeds the report's target; a legend with the scale; a popup per cell. Every text goes in
// as text (h, textNode).
/* global L */
import { h, textNode } from "./lib.js";

// Light to dark: more calls, darker. Blue-green, so the red outline stays apart from the fill.
export const SHADES = ["#c7e9b4", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494"];
const OVER = "#ff3b30";

export function seconds(v) {
  return v === null || v === undefined ? "" : v % 1 ? v.toFixed(1) : String(v);
}

/**
 * Up to five classes [low, high] of calls per cell, from 1 to the busiest cell's count, on a
 * logarithmic scale: calls per cell are skewed (a city centre holds hundreds, most cells a
 * few), and equal steps would shade all but the busiest cell alike.
 */
export function classes(max) {
  const n = Math.min(SHADES.length, max);
  const out = [];
  let low = 1;
  for (let k = 1; k <= n; k++) {
    const high = k === n ? max : Math.round(max ** (k / n));
    if (high >= low) {
      out.push([low, high]);
      low = high + 1;
    }
  }
  return out;
}

function shade(calls, scale) {
  const i = scale.findIndex(([, high]) => calls <= high);
  return SHADES[Math.max(0, i === -1 ? scale.length - 1 : i) + SHADES.length - scale.length];
}

// A cell's popup lines: its index, calls, the interval's p90 and p50.
function popupLines(p, report) {
  const over = p.p90 !== null && p.p90 > report.target_seconds;
  const interval = report.interval.replace(/_/g, " ");
  return [
    h("div", {}, h("strong", {}, "cell "), h("span", { class: "mono" }, p.cell)),
    h("div", {}, `${p.calls} calls`),
    h(
      "div",
      { class: over ? "over" : "" },
      p.p90 === null ? `${interval}: not measured` : `${interval} p90 ${seconds(p.p90)} s, p50 ${seconds(p.p50)} s (n ${p.count})`,
    ),
    over ? h("div", { class: "over" }, `over the target of ${seconds(report.target_seconds)} s`) : null,
  ];
}

// Colours through the CSSOM: the console's policy (style-src 'self') refuses style attributes.
function swatch(fill, outline) {
  const el = h("i", { class: outline ? "swatch outline" : "swatch" });
  if (fill) el.style.backgroundColor = fill;
  if (outline) el.style.borderColor = outline;
  return el;
}

function legendBody(report, scale) {
  const interval = report.interval.replace(/_/g, " ");
  return [
    h("div", { class: "heat-legend-title" }, `calls per H3 cell (resolution ${report.resolution})`),
    ...scale.map(([low, high]) =>
      h("div", { class: "heat-class" }, swatch(shade(high, scale)), low === high ? String(low) : `${low}–${high}`),
    ),
    scale.length ? null : h("div", { class: "muted" }, "no located calls"),
    h("div", { class: "heat-class" }, swatch(null, OVER), `${interval} p90 over ${seconds(report.target_seconds)} s`),
    h("div", { class: "muted" }, `${report.unlocated} of ${report.calls} calls without a location`),
  ];
}

/**
 * The heat layer for `map`: {layer, legend, draw}. The caller adds the layer and the legend
 * (a control for the corner) to the map, or offers them as an overlay; draw(report) draws
 * each new report. Cells are SVG paths of class heat-cell (over-target when outlined red),
 * each naming its cell (data-cell); `el` (the map's element) gets data-heat-cells, the number
 * of cells drawn. With `fit`, the map moves to the cells drawn.
 */
export function heatLayer(map, el, { fit = true } = {}) {
  const renderer = L.svg({ padding: 0.5 });
  const layer = L.featureGroup();
  const legend = L.control({ position: "bottomright" });
  const box = h("div", { class: "heat-legend leaflet-bar", id: "heat-legend", role: "note", "aria-label": "Legend of the heat layer" });
  legend.onAdd = () => box;
  L.DomEvent.disableClickPropagation(box);

  function draw(report) {
    layer.clearLayers();
    const features = report.features || [];
    const max = features.reduce((m, f) => Math.max(m, f.properties.calls), 0);
    const scale = classes(max);
    for (const f of features) {
      const p = f.properties;
      const over = p.p90 !== null && p.p90 > report.target_seconds;
      const latlngs = f.geometry.coordinates[0].map(([lon, lat]) => [lat, lon]);
      const cell = L.polygon(latlngs, {
        renderer,
        className: over ? "heat-cell over-target" : "heat-cell",
        color: over ? OVER : "#d0d7de",
        weight: over ? 3 : 1,
        opacity: over ? 1 : 0.6,
        fillColor: shade(p.calls, scale),
        fillOpacity: 0.65,
      });
      cell.bindTooltip(textNode(`${p.calls} calls${p.p90 === null ? "" : `, p90 ${seconds(p.p90)} s`}`), { sticky: true });
      cell.bindPopup(h("div", { class: "heat-popup" }, popupLines(p, report)));
      // the path names its cell; Leaflet makes a new path each time the layer is shown
      cell.on("add", () => cell.getElement()?.setAttribute("data-cell", p.cell));
      layer.addLayer(cell);
    }
    box.replaceChildren(...legendBody(report, scale).filter(Boolean));
    el.dataset.heatCells = String(features.length);
    // Not animated: a fit begun while another view's zoom animation runs can be lost, leaving
    // the cells outside the view (drawn as empty paths).
    if (fit && features.length) {
      map.invalidateSize({ pan: false }); // the page above may have grown since (tables, a scrollbar)
      map.fitBounds(layer.getBounds(), { padding: [20, 20], maxZoom: 15, animate: false });
    }
  }

  return { layer, legend, draw };
}

/**
 * The heat layer of the centre's own finished incidents of the last `days` days, offered as an
 * overlay of the live map (supervisors): read and drawn each time it is switched on.
 */
export function heatOverlay(map, el, { days = 30, resolution = 8 } = {}) {
  const heat = heatLayer(map, el, { fit: false });
  async function load() {
    const to = new Date();
    const from = new Date(to.getTime() - (days - 1) * 86400000);
    const q = new URLSearchParams({ from: from.toISOString().slice(0, 10), to: to.toISOString().slice(0, 10), own: "true", resolution: String(resolution) });
    const r = await fetch(`/api/v1/reports/heat?${q}`, { headers: { Accept: "application/json" } }).catch(() => null);
    const report = r && r.ok ? await r.json().catch(() => null) : null;
    if (report) heat.draw(report);
    else el.dataset.heatCells = "error";
  }
  map.on("overlayadd", (e) => {
    if (e.layer !== heat.layer) return;
    heat.legend.addTo(map);
    load();
  });
  map.on("overlayremove", (e) => {
    if (e.layer === heat.layer) heat.legend.remove();
  });
  return heat.layer;
}
