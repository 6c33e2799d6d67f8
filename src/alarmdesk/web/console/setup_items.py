"""The set-up's admin pages: lists of desks, stations, units and devices, a page per item,
forms with one field per setting (not YAML) for stations, units, panels, cameras and sensors,
and removal with a confirmation. Administrators only (``setup.manage``).

A form becomes the item's spec (the same msgspec spec as a file's item) and goes through
``service/centre_items.py``: the same check, plan, apply and audit as the API and the files.
Errors come back next to their field (a purpose refusal with its rule). Settings a form does
not show (a sensor's MQTT topic mapping) are kept as stored. The hidden
``revision`` makes a form sent after someone else's change a conflict, not a silent overwrite.

Text formats of the fields that hold several values (docs/console.md):

- zones: one per line, ``zone: description``, or
  ``zone: description | lat, lon | address | camera`` (the id of the camera that looks at it);
- camera labels: one per line, ``label: TYPE``;
- capabilities, alarm zones: separated by commas;
- timestamp window: ``-behind, ahead`` seconds, ``off``, or empty for the receiver's default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from alarmdesk.domain.centre import ZoneSpec
from alarmdesk.domain.centre import item_id as item_id_of
from alarmdesk.domain.errors import AlarmdeskError, NotFound, SetupError
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.service import centre_items
from alarmdesk.service.centre_items import Entry
from alarmdesk.web.api import actor_of, audit, needs, services
from alarmdesk.web.console.login import read_form
from alarmdesk.web.console.render import render

__all__ = ["ROUTES", "form_values", "spec_data"]

TITLES: Final = {
    "desks": "Desks",
    "stations": "Stations",
    "units": "Units",
    "panels": "Alarm panels",
    "cameras": "Cameras",
    "sensors": "Sensors",
}
# Kinds with a form; desks (categories, sources, a jurisdiction polygon) are edited in the
# set-up text or over the API.
FORM_KINDS: Final = ("stations", "units", "panels", "cameras", "sensors")
DEVICE_KINDS: Final = ("panels", "cameras", "sensors")
LIST_LIMIT: Final = 1000  # rows a list shows; ?q= narrows it


# -- spec <-> form ---------------------------------------------------------------------------


def _num(value: Any) -> str:
    return "" if value is None else format(value, "g") if isinstance(value, float) else str(value)


def _zone_line(name: str, zone: ZoneSpec | str | Mapping[str, Any]) -> str:
    if isinstance(zone, str):
        return f"{name}: {zone}"
    z = msgspec.to_builtins(zone) if isinstance(zone, ZoneSpec) else dict(zone)
    where = f"{_num(z.get('lat'))}, {_num(z.get('lon'))}" if z.get("lat") is not None else ""
    parts = [z.get("description") or "", where, z.get("address") or "", z.get("camera") or ""]
    while len(parts) > 1 and not parts[-1]:
        parts.pop()
    return f"{name}: " + " | ".join(parts)


def form_values(kind: str, spec: Any | None) -> dict[str, str]:
    """The form's text of every field of an item (empty for a new one); never a key."""
    data: dict[str, Any] = msgspec.to_builtins(spec) if spec is not None else {}
    out = {k: "" for k in _FIELDS[kind]}
    for name in ("id", "name", "kind", "station", "site", "address", "account", "frigate_camera"):
        if name in out:
            out[name] = str(data.get(name) or "")
    for name in ("lat", "lon", "checkin_seconds"):
        if name in out:
            out[name] = _num(data.get(name))
    if "capabilities" in out:
        out["capabilities"] = ", ".join(data.get("capabilities") or [])
    if "alarm_zones" in out:
        out["alarm_zones"] = ", ".join(data.get("alarm_zones") or [])
    if "zones" in out:
        out["zones"] = "\n".join(_zone_line(n, z) for n, z in (data.get("zones") or {}).items())
    if "labels" in out:
        out["labels"] = "\n".join(f"{k}: {v}" for k, v in (data.get("labels") or {}).items())
    if "test_mode" in out:
        out["test_mode"] = "on" if data.get("test_mode") else ""
    if "timestamp_window" in out:
        tw = getattr(spec, "timestamp_window", msgspec.UNSET)
        if tw is None:
            out["timestamp_window"] = "off"
        elif tw is not msgspec.UNSET:
            out["timestamp_window"] = f"{_num(float(tw[0]))}, {_num(float(tw[1]))}"
    out.pop("key_hex", None)  # write-only: the form says whether one is set, never what
    return out


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _finite(text: str) -> float:
    """A number as a form writes it; ``nan``, ``inf`` and ``1e400`` are none (JSON has no
    such number: sent on, it would become null and the field be silently dropped).

    Raises:
        ValueError: not a finite number.
    """
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _number(text: str, field: str, errors: dict[str, str], *, whole: bool = False) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text) if whole else _finite(text)
    except ValueError:
        errors[field] = "A whole number." if whole else "A number, e.g. 52.0907."
        return None


def _pairs(text: str, field: str, errors: dict[str, str], example: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or not name:
            errors[field] = f"Line {n}: write '{example}'."
        elif name in out:
            errors[field] = f"Line {n}: '{name}' is given twice."
        else:
            out[name] = rest.strip()
    return out


def _zones(text: str, errors: dict[str, str]) -> dict[str, Any]:
    zones: dict[str, Any] = {}
    for name, rest in _pairs(text, "zones", errors, "zone: description").items():
        parts = [p.strip() for p in rest.split("|")]
        if len(parts) == 1:
            zones[name] = parts[0]
            continue
        zone: dict[str, Any] = {"description": parts[0]}
        if parts[1]:
            lat, sep, lon = parts[1].partition(",")
            try:
                zone.update(lat=_finite(lat), lon=_finite(lon))
            except ValueError:
                errors["zones"] = f"Zone '{name}': its place is 'lat, lon', e.g. 52.09, 5.12."
            if not sep:
                errors["zones"] = f"Zone '{name}': its place is 'lat, lon', e.g. 52.09, 5.12."
        if len(parts) > 2 and parts[2]:
            zone["address"] = parts[2]
        if len(parts) > 3 and parts[3]:
            zone["camera"] = parts[3]
        if len(parts) > 4:
            errors["zones"] = f"Zone '{name}': at most description | lat, lon | address | camera."
        zones[name] = zone
    return zones


def _list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def spec_data(kind: str, fields: Mapping[str, str]) -> tuple[dict[str, Any], bool]:
    """The item a form describes, as the JSON the API takes, and whether it clears the key.

    Raises:
        FormErrors: a field's text cannot be read (the spec's own rules come after).
    """
    errors: dict[str, str] = {}

    def get(name: str) -> str:
        return (fields.get(name) or "").strip()

    data: dict[str, Any] = {}
    for name in ("id", "name", "kind", "station", "site", "address", "account", "frigate_camera"):
        if name in _FIELDS[kind] and get(name):
            data[name] = " ".join(get(name).split()) if name != "id" else get(name)
    for name in ("lat", "lon"):
        if name in _FIELDS[kind]:
            data[name] = _number(get(name), name, errors)
    if "checkin_seconds" in _FIELDS[kind]:
        data["checkin_seconds"] = _number(
            get("checkin_seconds"), "checkin_seconds", errors, whole=True
        )
    if "capabilities" in _FIELDS[kind]:
        data["capabilities"] = _list(get("capabilities"))
    if "alarm_zones" in _FIELDS[kind]:
        data["alarm_zones"] = _list(get("alarm_zones"))
    if "zones" in _FIELDS[kind]:
        data["zones"] = _zones(fields.get("zones") or "", errors)
    if "labels" in _FIELDS[kind]:
        data["labels"] = _pairs(fields.get("labels") or "", "labels", errors, "label: TYPE")
    if "test_mode" in _FIELDS[kind]:
        data["test_mode"] = bool(fields.get("test_mode"))
    clear_key = False
    if kind == "panels":
        key = "".join(get("key_hex").split())
        clear_key = bool(fields.get("clear_key"))
        if key and clear_key:
            errors["key_hex"] = "Give a new key or remove the key, not both."
        elif key:
            data["key_hex"] = key
        tw = get("timestamp_window").lower()
        if tw == "off":
            data["timestamp_window"] = None
        elif tw:
            behind, sep, ahead = tw.partition(",")
            b = _number(behind, "timestamp_window", errors)
            a = _number(ahead, "timestamp_window", errors) if sep else None
            if b is None or a is None:
                errors["timestamp_window"] = (
                    "Write '-behind, ahead' in seconds, e.g. -20, 40, or off."
                )
            else:
                data["timestamp_window"] = [b, a]
    if errors:
        raise FormErrors(errors)
    return {k: v for k, v in data.items() if v is not None or k == "timestamp_window"}, clear_key


_COMMON: Final = ("site", "address", "lat", "lon", "zones", "test_mode")
_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "desks": ("id", "name"),
    "stations": ("id", "name", "lat", "lon"),
    "units": ("id", "kind", "station", "capabilities"),
    "panels": ("account", "id", *_COMMON, "checkin_seconds", "key_hex", "timestamp_window"),
    "cameras": ("id", "frigate_camera", *_COMMON, "labels", "alarm_zones"),
    "sensors": ("id", *_COMMON, "checkin_seconds"),
}


# -- pages -------------------------------------------------------------------------------------


def _kind(kind: str, *, form: bool = False) -> str:
    if kind not in (FORM_KINDS if form else centre_items.ITEM_KINDS):
        raise NotFound(f"no set-up page for '{kind}'", field="kind")
    return kind


async def _stations(request: Request[Any, Any, Any]) -> list[str]:
    found = await anyio.to_thread.run_sync(
        centre_items.list_items, services(request).engine, "stations"
    )
    return [e.id for e in found.entries]


@get("/setup/{kind:str}", opt=needs(Permission.SETUP_MANAGE), include_in_schema=False)
async def list_page(request: Request[Any, Any, Any], kind: FromPath[str]) -> Response[str]:
    _kind(kind)
    found = await anyio.to_thread.run_sync(centre_items.list_items, services(request).engine, kind)
    q = (request.query_params.get("q") or "").strip().casefold()[:100]
    shown = [e for e in found.entries if not q or q in _haystack(e)]
    await audit(
        request,
        AuditEvent(
            actor_of(request), Operation.CONSULT, "centre", kind, detail={"results": len(shown)}
        ),
    )
    return render(
        request,
        "setup_list.html",
        title=TITLES[kind],
        kind=kind,
        kinds=TITLES,
        editable=kind in FORM_KINDS,
        entries=[_row(e) for e in shown[:LIST_LIMIT]],
        total=len(shown),
        limit=LIST_LIMIT,
        q=q,
    )


def _haystack(entry: Entry) -> str:
    spec = entry.spec
    return (
        " ".join(
            str(getattr(spec, name, "") or "") for name in ("id", "name", "kind", "site", "account")
        ).casefold()
        + " "
        + entry.id.casefold()
    )


def _row(entry: Entry) -> dict[str, Any]:
    spec = entry.spec
    return {
        "id": entry.id,
        "spec": msgspec.to_builtins(spec),
        "key_set": entry.key_set,
        "open_incidents": entry.open_incidents,
        "status": entry.status,
    }


@get("/setup/{kind:str}/{item_id:str}", opt=needs(Permission.SETUP_MANAGE), include_in_schema=False)
async def item_page(
    request: Request[Any, Any, Any], kind: FromPath[str], item_id: FromPath[str]
) -> Response[str]:
    _kind(kind)
    rev, entry = await anyio.to_thread.run_sync(
        centre_items.get_item, services(request).engine, kind, item_id
    )
    await audit(
        request, AuditEvent(actor_of(request), Operation.CONSULT, "centre", f"{kind}/{item_id}")
    )
    values = form_values(kind, entry.spec) if kind in FORM_KINDS else {}
    return render(
        request,
        "setup_item.html",
        title=f"{TITLES[kind]}: {item_id}",
        kind=kind,
        kinds=TITLES,
        editable=kind in FORM_KINDS,
        entry=_row(entry),
        values=values,
        revision=rev,
        error=None,
    )


async def _form_page(
    request: Request[Any, Any, Any], kind: str, item_id: str | None
) -> Response[str]:
    _kind(kind, form=True)
    svc = services(request)
    entry: Entry | None = None
    if item_id is None:
        rev = await anyio.to_thread.run_sync(centre_items.current_revision, svc.engine)
    else:
        rev, entry = await anyio.to_thread.run_sync(
            centre_items.get_item, svc.engine, kind, item_id
        )
        await audit(
            request,
            AuditEvent(actor_of(request), Operation.CONSULT, "centre", f"{kind}/{item_id}"),
        )
    return render(
        request,
        "setup_form.html",
        title=(f"Edit {item_id}" if item_id else f"New: {TITLES[kind]}"),
        **_form_context(kind, item_id, entry, rev, await _stations(request)),
    )


def _form_context(
    kind: str,
    item_id: str | None,
    entry: Entry | None,
    rev: int,
    stations: list[str],
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    rule: str = "",
) -> dict[str, Any]:
    return {
        "kind": kind,
        "kinds": TITLES,
        "item_id": item_id,
        "fields": _FIELDS[kind],
        "values": values
        if values is not None
        else form_values(kind, entry.spec if entry else None),
        "key_set": bool(entry and entry.key_set),
        "revision": rev,
        "stations": stations,
        "errors": errors or {},
        "rule": rule,
        "action": f"/setup/{kind}/{item_id}" if item_id else f"/setup/new/{kind}",
    }


@get("/setup/new/{kind:str}", opt=needs(Permission.SETUP_MANAGE), include_in_schema=False)
async def new_page(request: Request[Any, Any, Any], kind: FromPath[str]) -> Response[str]:
    return await _form_page(request, kind, None)


@get(
    "/setup/{kind:str}/{item_id:str}/edit",
    opt=needs(Permission.SETUP_MANAGE),
    include_in_schema=False,
)
async def edit_page(
    request: Request[Any, Any, Any], kind: FromPath[str], item_id: FromPath[str]
) -> Response[str]:
    return await _form_page(request, kind, item_id)


def _revision(fields: Mapping[str, str]) -> int | None:
    text = (fields.get("revision") or "").strip()
    return int(text) if text.isdecimal() and len(text) < 19 else None


async def _save(request: Request[Any, Any, Any], kind: str, item_id: str | None) -> Response[str]:
    _kind(kind, form=True)
    svc = services(request)
    fields = await read_form(request)
    expected = _revision(fields)
    wanted = item_id
    errors: dict[str, str] = {}
    rule = ""
    try:
        data, clear_key = spec_data(kind, fields)
        if item_id is not None:  # the path names the item: a form edits it, never renames it
            data["id"] = item_id
            shown = await anyio.to_thread.run_sync(centre_items.get_item, svc.engine, kind, item_id)
            stored = msgspec.to_builtins(shown[1].spec)
            for name, value in stored.items():  # what the form does not show stays as it is
                if name not in _FIELDS[kind]:
                    data.setdefault(name, value)
        raw = msgspec.json.encode(data)

        def prepare() -> Any:
            spec, _ = centre_items.decode_item(kind, raw)
            nonlocal wanted
            wanted = wanted or item_id_of(spec)
            return centre_items.change(
                svc.engine,
                actor_of(request),
                kind,
                wanted,
                spec,
                expected=expected,
                clear_key=clear_key,
                create=item_id is None,  # the "new" form adds; editing is the edit form's
            )

        action = await anyio.to_thread.run_sync(prepare)
        await svc.writer.run(action)
    except FormErrors as exc:
        errors = exc.errors
    except AlarmdeskError as exc:
        errors = {_form_field(kind, exc.field): _message(exc)}
        rule = str(getattr(exc, "rule", "") or "")
    if not errors:
        return Response("", status_code=200, headers={"HX-Redirect": f"/setup/{kind}/{wanted}"})
    entry = None
    rev = expected or 0
    values = {k: fields.get(k, "") for k in _FIELDS[kind] if k != "key_hex"}
    if item_id is not None:
        try:
            _, entry = await anyio.to_thread.run_sync(
                centre_items.get_item, svc.engine, kind, item_id
            )
        except NotFound:
            entry = None
    return render(
        request,
        "_setup_form.html",
        status_code=422,
        **_form_context(
            kind,
            item_id,
            entry,
            rev,
            await _stations(request),
            values=values,
            errors=errors,
            rule=rule,
        ),
    )


def _form_field(kind: str, field: str | None) -> str:
    """The form field an error names ("lat" for "zones.lat" stays with its field)."""
    name = (field or "").split(".", 1)[0]
    if name == "revision":
        return "form"
    return name if name in _FIELDS[kind] else "form"


def _message(exc: AlarmdeskError) -> str:
    """The error's message without its ``kind/id`` prefix: on the item's own form it is noise."""
    message = exc.message
    if isinstance(exc, SetupError) and exc.where and message.startswith(exc.where + ": "):
        message = message[len(exc.where) + 2 :]
    return message


@post(
    "/setup/new/{kind:str}",
    opt=needs(Permission.SETUP_MANAGE),
    include_in_schema=False,
    status_code=200,
)
async def create_item(request: Request[Any, Any, Any], kind: FromPath[str]) -> Response[str]:
    return await _save(request, kind, None)


@post(
    "/setup/{kind:str}/{item_id:str}",
    opt=needs(Permission.SETUP_MANAGE),
    include_in_schema=False,
    status_code=200,
)
async def save_item(
    request: Request[Any, Any, Any], kind: FromPath[str], item_id: FromPath[str]
) -> Response[str]:
    return await _save(request, kind, item_id)


@post(
    "/setup/{kind:str}/{item_id:str}/delete",
    opt=needs(Permission.SETUP_MANAGE),
    include_in_schema=False,
    status_code=200,
)
async def delete_item(
    request: Request[Any, Any, Any], kind: FromPath[str], item_id: FromPath[str]
) -> Response[str]:
    _kind(kind, form=True)
    svc = services(request)
    fields = await read_form(request)
    expected = _revision(fields)
    try:
        action = await anyio.to_thread.run_sync(
            lambda: centre_items.change(
                svc.engine, actor_of(request), kind, item_id, None, expected=expected
            )
        )
        await svc.writer.run(action)
    except AlarmdeskError as exc:
        return render(
            request,
            "_error_fragment.html",
            status_code=422,
            code=exc.code,
            message=_message(exc),
        )
    return Response("", status_code=200, headers={"HX-Redirect": f"/setup/{kind}"})


ROUTES: Final = [
    list_page,
    new_page,
    item_page,
    edit_page,
    create_item,
    save_item,
    delete_item,
]
