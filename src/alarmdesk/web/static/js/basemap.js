// The map's background, offline by default: Natural Earth country outlines (world-atlas), the
// demo city's streets (a vector PMTiles archive served by alarmdesk, docs/basemap.md) and the
// city's own GeoJSON (outline, desk jurisdictions, stations). A deployment may configure an
// XYZ tile URL, a PMTiles archive or its own GeoJSON instead (docs/console.md, "Map background").
/* global L, topojson */
import { textNode } from "./lib.js";

const loaded = new Map();
function loadScript(src) {
  if (!loaded.has(src)) {
    loaded.set(
      src,
      new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = src;
        s.onload = resolve;
        s.onerror = () => reject(new Error(`cannot load ${src}`));
        document.head.append(s);
      }),
    );
  }
  return loaded.get(src);
}

async function json(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

async function pmtilesLayer(map, url, cfg) {
  await loadScript("/static/vendor/pmtiles/pmtiles.js");
  const archive = new pmtiles.PMTiles(url);
  const header = await archive.getHeader();
  // tileType 1 is vector (MVT); 2–5 are PNG, JPEG, WebP, AVIF images.
  if (header.tileType === 1) {
    await loadScript("/static/vendor/protomaps-leaflet/protomaps-leaflet.js");
    // Without a configured attribution, protomaps-leaflet shows its own (Protomaps, OpenStreetMap).
    return protomapsL.leafletLayer({ url, flavor: "dark", lang: document.documentElement.lang || "en", attribution: cfg.tile_attribution || undefined });
  }
  return pmtiles.leafletRasterLayer(archive, { maxZoom: header.maxZoom || cfg.tile_max_zoom, attribution: cfg.tile_attribution });
}

// The demo city's streets over the world outlines: the dark flavour without its background
// colour, so the outlines around the city stay visible. `data-street-tiles` on the map's
// element counts the tiles drawn (the city may be out of view: then none are).
async function streetsLayer(map, cfg, el) {
  await loadScript("/static/vendor/protomaps-leaflet/protomaps-leaflet.js");
  const layer = protomapsL.leafletLayer({ url: cfg.streets, flavor: "dark", lang: document.documentElement.lang || "en", attribution: cfg.streets_attribution, pane: "streets" });
  // Both are read on every draw: no background colour (the flavour always sets one), and no
  // land of its own (the city's outline below is the same land, in the offline colours).
  layer.backgroundColor = undefined;
  layer.paintRules = layer.paintRules.filter((rule) => rule.dataLayer !== "earth");
  let drawn = 0;
  layer.on("tileload", () => {
    el.dataset.streetTiles = String(++drawn);
  });
  return layer.addTo(map);
}

function boundsOf(desks) {
  const b = L.latLngBounds([]);
  for (const d of desks) {
    const geom = d.jurisdiction;
    const polys = geom.type === "Polygon" ? [geom.coordinates] : geom.coordinates;
    for (const poly of polys) for (const ring of poly) for (const [lon, lat] of ring) b.extend([lat, lon]);
  }
  return b;
}

/**
 * A Leaflet map in `el` with the configured background, the caller's desks outlined, and the
 * view fitted to them. Returns {map, ready} — ready resolves once the background is drawn.
 */
export function makeMap(el, cfg, options = {}) {
  const map = L.map(el, { zoomControl: true, attributionControl: true, preferCanvas: true, zoomSnap: 0.25, minZoom: 2, maxZoom: cfg.tile_max_zoom || 19, ...options });
  map.attributionControl.setPrefix(false);
  const desks = cfg.desks || [];
  const fit = boundsOf(desks);
  if (fit.isValid()) map.fitBounds(fit, { padding: [10, 10] });
  else map.setView([20, 0], 2);
  map.createPane("world").style.zIndex = 200;
  map.createPane("streets").style.zIndex = 225;
  map.createPane("city").style.zIndex = 250;

  const ready = (async () => {
    let tiles = null;
    try {
      if (cfg.tile_url) tiles = L.tileLayer(cfg.tile_url, { maxZoom: cfg.tile_max_zoom, attribution: cfg.tile_attribution });
      else if (cfg.pmtiles) tiles = await pmtilesLayer(map, cfg.pmtiles, cfg);
    } catch (err) {
      console.warn("map tiles unavailable, using the offline background", err);
    }
    let streets = null;
    if (tiles) tiles.addTo(map);
    else {
      const world = await json(cfg.world);
      L.geoJSON(topojson.feature(world, world.objects.countries), {
        pane: "world",
        interactive: false,
        style: { color: "#3a4858", weight: 1, fillColor: "#1b2530", fillOpacity: 1 },
        attribution: "Natural Earth (world-atlas)",
      }).addTo(map);
      if (cfg.streets) {
        try {
          streets = await streetsLayer(map, cfg, el);
        } catch (err) {
          console.warn("the demo city's streets are unavailable", err);
        }
      }
    }
    try {
      const city = await json(cfg.basemap);
      // The outline under the streets (tiles bring their own land); the stations on top.
      if (!tiles) {
        L.geoJSON(city, {
          pane: "world",
          interactive: false,
          filter: (f) => f.properties.kind === "outline",
          style: () => ({ color: "#4a5d72", weight: 1, fillColor: "#233243", fillOpacity: 1 }),
        }).addTo(map);
      }
      L.geoJSON(city, {
        pane: "city",
        filter: (f) => f.properties.kind === "station",
        pointToLayer: (f, latlng) =>
          L.circleMarker(latlng, { radius: 3, color: "#a3afbd", weight: 1, fillColor: "#11161c", fillOpacity: 1 })
            .bindTooltip(textNode(`${f.properties.name} (${f.properties.id})`)),
      }).addTo(map);
    } catch (err) {
      console.warn("city basemap unavailable", err);
    }
    for (const d of desks) {
      L.geoJSON(d.jurisdiction, {
        pane: "city",
        interactive: false,
        style: { color: "#8cc8ff", weight: 1.5, dashArray: "6 5", fill: false },
      }).addTo(map);
    }
    el.dataset.basemap = tiles ? "tiles" : streets ? "streets" : "offline";
  })();
  return { map, ready };
}
