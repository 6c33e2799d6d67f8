"""A centre's set-up as records: what the store keeps and compares, the plan between what is
stored and what the files want, and the files written back from records.

- :func:`records`, the canonical record of each item, and :func:`diff`, the :class:`Plan`;
- :func:`resolve_secrets` keeps a stored key where a file says :data:`REDACTED`;
- :func:`redact` and :func:`specs_of` write the stored set-up back as a file's items.

A plan never shows a secret (a changed AES key is named, not shown).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from alarmdesk.domain.centre import (
    KINDS,
    REDACTED,
    RULE_KINDS,
    SECRET_FIELDS,
    CameraSpec,
    Centre,
    CentreFile,
    PanelSpec,
    SensorSpec,
    ZoneSpec,
)
from alarmdesk.domain.errors import SetupError

__all__ = ["Change", "Plan", "diff", "records", "redact", "resolve_secrets", "specs_of"]


# --------------------------------------------------------------------------- records


def _zones(zones: Mapping[str, ZoneSpec | str]) -> dict[str, Any]:
    return {name: z if isinstance(z, str) else msgspec.to_builtins(z) for name, z in zones.items()}


def _device(item: PanelSpec | CameraSpec | SensorSpec, kind: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if item.address:
        settings["address"] = item.address
    if item.test_mode:
        settings["test_mode"] = True
    checkin: int | None = None
    if isinstance(item, PanelSpec):
        settings["account"] = item.account.upper()
        if item.key_hex:
            settings["key_hex"] = item.key_hex.upper() if item.key_hex != REDACTED else REDACTED
        if item.timestamp_window is not msgspec.UNSET:
            tw = item.timestamp_window
            settings["timestamp_window"] = list(tw) if isinstance(tw, tuple) else None
        checkin = item.checkin_seconds
    elif isinstance(item, CameraSpec):
        if item.frigate_camera:
            settings["frigate_camera"] = item.frigate_camera
        if item.labels:
            settings["labels"] = dict(item.labels)
        if item.alarm_zones:
            settings["alarm_zones"] = list(item.alarm_zones)
    else:
        checkin = item.checkin_seconds
        if item.topic is not None:
            settings["topic"] = msgspec.to_builtins(item.topic)
    return {
        "id": item.device_id if isinstance(item, PanelSpec) else item.id,
        "kind": kind,
        "site": item.site,
        "lat": item.lat,
        "lon": item.lon,
        "zones": _zones(item.zones),
        "checkin_seconds": checkin,
        "settings": settings,
    }


_DEVICE_KIND = {"panels": "panel", "cameras": "camera", "sensors": "sensor"}


def records(centre: Centre) -> dict[str, dict[str, dict[str, Any]]]:
    """The canonical record of every item, by kind and id: what the store keeps.

    Desks keep their file order as ``position`` (the console lists them so).
    """
    out: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
    for pos, d in enumerate(centre.desks):
        out["desks"][d.id] = {
            "id": d.id,
            "name": d.name,
            "categories": [c for c in d.categories if c != "*"],
            "source_kinds": list(d.sources),
            "jurisdiction": d.jurisdiction,
            "position": pos,
        }
    for s in centre.stations:
        out["stations"][s.id] = {"id": s.id, "name": s.name, "lat": s.lat, "lon": s.lon}
    for u in centre.units:
        out["units"][u.id] = {
            "id": u.id,
            "kind": u.kind,
            "station_id": u.station,
            "capabilities": list(u.capabilities),
        }
    for kind, device_kind in _DEVICE_KIND.items():
        for item in centre.items(kind):
            rec = _device(item, device_kind)
            out[kind][rec["id"]] = rec
    for kind in RULE_KINDS:
        for pos, r in enumerate(centre.items(kind)):
            out[kind][r.id] = {"id": r.id, "position": pos, "spec": msgspec.to_builtins(r)}
    return out


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    id: str
    fields: tuple[str, ...] = ()  # for a change: the fields that differ


@dataclass(frozen=True, slots=True)
class Plan:
    """What applying a set-up would do, per kind; secrets never appear in it."""

    added: tuple[Change, ...] = ()
    changed: tuple[Change, ...] = ()
    removed: tuple[Change, ...] = ()
    records: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{kind: {"added": n, "changed": n, "removed": n}}`` for every kind with a change."""
        out: dict[str, dict[str, int]] = {}
        for what, changes in (
            ("added", self.added),
            ("changed", self.changed),
            ("removed", self.removed),
        ):
            for c in changes:
                out.setdefault(c.kind, {"added": 0, "changed": 0, "removed": 0})[what] += 1
        return out

    def summary(self, limit: int | None = None) -> dict[str, Any]:
        """The plan as data, for JSON output and the audit entry (ids and field names only);
        ``limit`` keeps the first items of each list (an apply of 100,000 panels is audited by
        its counts, not by 100,000 ids)."""
        return {
            "added": [{"kind": c.kind, "id": c.id} for c in self.added[:limit]],
            "changed": [
                {"kind": c.kind, "id": c.id, "fields": list(c.fields)} for c in self.changed[:limit]
            ],
            "removed": [{"kind": c.kind, "id": c.id} for c in self.removed[:limit]],
        }


def _settings_secret(rec: Mapping[str, Any]) -> Any:
    return (rec.get("settings") or {}).get("key_hex")


def _differs(now: Mapping[str, Any], wanted: Mapping[str, Any]) -> tuple[str, ...]:
    fields: list[str] = []
    for key in wanted:
        if key == "settings":
            a, b = dict(now.get("settings") or {}), dict(wanted.get("settings") or {})
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name):
                    fields.append(name)
        elif now.get(key) != wanted.get(key):
            fields.append(key)
    return tuple(fields)


def resolve_secrets(
    current: Mapping[str, Mapping[str, Mapping[str, Any]]],
    wanted: dict[str, dict[str, dict[str, Any]]],
    where: Callable[[str, str], str] = lambda kind, item_id: "",
) -> None:
    """Replaces a :data:`REDACTED` key (an exported file applied back) by the stored key.

    Raises:
        SetupError: ``secret_required`` when there is no stored key to keep.
    """
    for kind in ("panels",):
        for item_id, rec in wanted.get(kind, {}).items():
            if _settings_secret(rec) != REDACTED:
                continue
            stored = _settings_secret(current.get(kind, {}).get(item_id, {}))
            if not stored:
                raise SetupError(
                    f"panel '{item_id}' has a redacted key_hex and no stored key to keep: "
                    "give the key, or remove key_hex",
                    code="secret_required",
                    where=where(kind, item_id),
                    field="key_hex",
                )
            rec["settings"]["key_hex"] = stored


def diff(
    current: Mapping[str, Mapping[str, Mapping[str, Any]]],
    wanted: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> Plan:
    """The plan from the stored records to the wanted ones (both as :func:`records` gives).

    Only the fields the files describe are compared: a unit's status and position, kept by the
    store, are not the set-up's.
    """
    added: list[Change] = []
    changed: list[Change] = []
    removed: list[Change] = []
    for kind in KINDS:
        now, want = current.get(kind, {}), wanted.get(kind, {})
        for item_id, rec in want.items():
            if item_id not in now:
                added.append(Change(kind, item_id))
            else:
                fields = _differs(now[item_id], rec)
                if fields:
                    changed.append(Change(kind, item_id, fields))
        removed += [Change(kind, item_id) for item_id in now if item_id not in want]
    return Plan(tuple(added), tuple(changed), tuple(removed), wanted)


def redact(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A record with its secrets replaced by :data:`REDACTED`."""
    out = dict(rec)
    settings = dict(out.get("settings") or {})
    for name in SECRET_FIELDS & settings.keys():
        settings[name] = REDACTED
    if "settings" in out:
        out["settings"] = settings
    return out


def specs_of(records_by_kind: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> CentreFile:
    """The set-up stored as records, as one :class:`CentreFile` (for export)."""
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    desks = sorted(records_by_kind.get("desks", {}).values(), key=lambda r: r["position"])
    for r in desks:
        out["desks"].append(
            {
                "id": r["id"],
                "name": r["name"],
                "categories": list(r.get("categories") or []),
                "sources": list(r.get("source_kinds") or []),
                "jurisdiction": r.get("jurisdiction"),
            }
        )
    for r in records_by_kind.get("stations", {}).values():
        out["stations"].append({k: r.get(k) for k in ("id", "name", "lat", "lon")})
    for r in records_by_kind.get("units", {}).values():
        out["units"].append(
            {
                "id": r["id"],
                "kind": r["kind"],
                "station": r.get("station_id"),
                "capabilities": list(r.get("capabilities") or []),
            }
        )
    for kind in _DEVICE_KIND:
        for r in records_by_kind.get(kind, {}).values():
            s = dict(r.get("settings") or {})
            item: dict[str, Any] = {
                "id": r["id"],
                "site": r["site"],
                "address": s.get("address"),
                "lat": r.get("lat"),
                "lon": r.get("lon"),
                "zones": r.get("zones") or {},
                "test_mode": bool(s.get("test_mode", False)),
            }
            if kind == "panels":
                account = str(s.get("account") or r["id"].removeprefix("panel-")).upper()
                item["account"] = account
                if r["id"] == f"panel-{account}":
                    del item["id"]
                item["checkin_seconds"] = r.get("checkin_seconds")
                item["key_hex"] = s.get("key_hex")
                if "timestamp_window" in s:
                    item["timestamp_window"] = s["timestamp_window"]
            elif kind == "cameras":
                item["frigate_camera"] = s.get("frigate_camera")
                item["labels"] = dict(s.get("labels") or {})
                item["alarm_zones"] = list(s.get("alarm_zones") or [])
            else:
                item["checkin_seconds"] = r.get("checkin_seconds")
                if s.get("topic"):
                    item["topic"] = s["topic"]
            out[kind].append(item)
    for kind in RULE_KINDS:
        rules = sorted(records_by_kind.get(kind, {}).values(), key=lambda r: r["position"])
        out[kind] = [r["spec"] for r in rules]
    return msgspec.convert(out, CentreFile)
