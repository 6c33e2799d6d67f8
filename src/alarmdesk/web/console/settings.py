"""The console's settings and the reference data it caches briefly: the map's background
(docs/console.md, "Map background") and the types and desks every page offers."""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from litestar import Request

from alarmdesk.bootstrap import Services
from alarmdesk.domain.errors import Unauthenticated
from alarmdesk.safeguards.access import Principal
from alarmdesk.service import console_queries
from alarmdesk.service.console_queries import Reference
from alarmdesk.web.api import services
from alarmdesk.web.console.assets import ASSET_VERSION, STATIC, static_url

REFERENCE_TTL: Final = 30.0  # seconds a page may show a cached taxonomy / desk list
# The demo city's streets (docs/basemap.md): drawn when no background is configured.
DEMO_STREETS: Final = STATIC / "basemap" / "demo-city.pmtiles"
DEMO_STREETS_ATTRIBUTION: Final = "Streets sketched from DataSF fire calls (ODC PDDL)"


@dataclass(frozen=True)
class MapSettings:
    """Where the map's background comes from; see docs/console.md ("Map background").

    Read from the configuration's ``[console]`` table when it has one, else from the
    environment: ALARMDESK_TILE_URL, ALARMDESK_TILE_ATTRIBUTION, ALARMDESK_TILE_MAX_ZOOM,
    ALARMDESK_PMTILES, ALARMDESK_BASEMAP_GEOJSON.
    """

    tile_url: str | None = None  # an XYZ template, e.g. https://tiles.example/{z}/{x}/{y}.png
    tile_attribution: str = ""
    tile_max_zoom: int = 19
    pmtiles: str | None = None  # a URL or a local file path of a .pmtiles archive
    basemap_geojson: str | None = None  # a local GeoJSON file to draw instead of the demo city

    @property
    def demo_streets(self) -> bool:
        """Nothing configured: the demo city's street archive is drawn over the outlines."""
        return not (self.tile_url or self.pmtiles or self.basemap_geojson)


def map_settings(svc: Services, env: Mapping[str, str] | None = None) -> MapSettings:
    env = os.environ if env is None else env
    section = svc.config.console

    def pick(name: str, var: str) -> str | None:
        value = getattr(section, name)
        return str(value) if value not in (None, "") else (env.get(var) or None)

    max_zoom = pick("tile_max_zoom", "ALARMDESK_TILE_MAX_ZOOM")
    return MapSettings(
        tile_url=pick("tile_url", "ALARMDESK_TILE_URL"),
        tile_attribution=pick("tile_attribution", "ALARMDESK_TILE_ATTRIBUTION") or "",
        tile_max_zoom=int(max_zoom) if max_zoom and max_zoom.isdigit() else 19,
        pmtiles=pick("pmtiles", "ALARMDESK_PMTILES"),
        basemap_geojson=pick("basemap_geojson", "ALARMDESK_BASEMAP_GEOJSON"),
    )


def is_url(value: str) -> bool:
    """http(s) URLs are fetched by the browser; anything else is a file alarmdesk serves."""
    return value.startswith(("http://", "https://"))


# -- reference data, cached briefly ----------------------------------------------------------


@dataclass
class _Cached:
    reference: Reference
    loaded: float
    owner: weakref.ref[Services]


_reference_cache: dict[int, _Cached] = {}


def reference(svc: Services) -> Reference:
    """The types and desks, read at most every REFERENCE_TTL seconds (call in a thread)."""
    hit = _reference_cache.get(id(svc))
    if hit is not None and hit.owner() is svc and time.monotonic() - hit.loaded < REFERENCE_TTL:
        return hit.reference
    ref = console_queries.reference(svc.engine)
    _reference_cache[id(svc)] = _Cached(ref, time.monotonic(), weakref.ref(svc))
    return ref


def principal(request: Request[Any, Any, Any]) -> Principal:
    p = request.scope.get("principal")
    if not isinstance(p, Principal):
        raise Unauthenticated("sign in first")
    return p


def my_desks(svc: Services, who: Principal) -> list[dict[str, Any]]:
    return [
        {"id": d["id"], "name": d["name"]}
        for d in reference(svc).desks
        if who.all_desks or d["id"] in who.desks
    ]


def map_config(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What map.js needs: background layers and the caller's desks' jurisdictions."""
    svc = services(request)
    s = map_settings(svc)
    pmtiles = None
    if s.pmtiles:
        pmtiles = s.pmtiles if is_url(s.pmtiles) else "/console/tiles.pmtiles"
    who = principal(request)
    desks = [
        d
        for d in reference(svc).desks
        if d["jurisdiction"] and (who.all_desks or d["id"] in who.desks)
    ]
    return {
        "tile_url": s.tile_url,
        "tile_attribution": s.tile_attribution,
        "tile_max_zoom": s.tile_max_zoom,
        "pmtiles": pmtiles,
        # the same route serves the demo archive; ?v= changes when the file does
        "streets": f"/console/tiles.pmtiles?v={ASSET_VERSION}" if s.demo_streets else None,
        "streets_attribution": DEMO_STREETS_ATTRIBUTION,
        "world": static_url("vendor/world-atlas/countries-50m.json"),
        "basemap": "/console/basemap.geojson"
        if s.basemap_geojson
        else static_url("basemap/demo-city.geojson"),
        "desks": desks,
    }
