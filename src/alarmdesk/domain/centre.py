"""A centre's own set-up as data: desks, stations, units and devices (configuration as code).

A centre describes itself in files (``service/centre_files.py`` reads them); this module holds
what the files mean, with no I/O:

- the typed items (:class:`DeskSpec`, :class:`StationSpec`, :class:`UnitSpec`,
  :class:`PanelSpec`, :class:`CameraSpec`, :class:`SensorSpec`) gathered in a :class:`Centre`;
- :func:`check`, the rules a set-up must keep (purpose screening of every name, references
  that resolve, one id per kind), each failure located by a :class:`Where` callback so the
  caller can name the file and line;

Records, plans and redaction are ``domain/centre_plan.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from alarmdesk.domain.dispatch import ResponsePlanSpec
from alarmdesk.domain.errors import (
    AlarmdeskError,
    InvalidField,
    SetupError,
    SpecialCategoryError,
    UnknownCategoryError,
)
from alarmdesk.domain.escalation import EscalationSpec
from alarmdesk.domain.geo import Area, checked_area
from alarmdesk.domain.procedure import check_steps
from alarmdesk.domain.purpose import check_category, identifying_labels, screen
from alarmdesk.domain.routing import RouteSpec, compile_routes, rule_ids
from alarmdesk.domain.signal import NOT_BLANK, Lat, Lon, SourceKind, check_text

__all__ = [
    "KINDS",
    "REDACTED",
    "RULE_KINDS",
    "SECRET_FIELDS",
    "CameraSpec",
    "Centre",
    "CentreFile",
    "DeskSpec",
    "PanelSpec",
    "ProcedureSpec",
    "SensorSpec",
    "SensorTopic",
    "StationSpec",
    "UnitSpec",
    "Where",
    "ZoneSpec",
    "check",
    "item_id",
]

# The kinds of item, in the order they are applied (a unit's station exists before the unit).
KINDS = (
    "desks",
    "stations",
    "units",
    "panels",
    "cameras",
    "sensors",
    "routing",
    "escalation",
    "response_plans",
    "procedures",
)
# Kinds whose items are rules kept whole and in order (their position matters).
RULE_KINDS = ("routing", "escalation", "response_plans", "procedures")
# Fields that hold a secret: written, never shown.
SECRET_FIELDS = frozenset({"key_hex"})
# An exported secret, and what a plan shows for a changed one.
REDACTED = "<redacted>"

Id = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
DeviceId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
# A name (a desk's, a station's, a device's site) says something: empty or spaces only is none.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NOT_BLANK)]
Word = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=NOT_BLANK)]
Text = Annotated[str, msgspec.Meta(max_length=200)]
Account = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Fa-f]{3,16}$")]
KeyHex = Annotated[
    str, msgspec.Meta(pattern=r"^([0-9A-Fa-f]{32}|[0-9A-Fa-f]{48}|[0-9A-Fa-f]{64}|<redacted>)$")
]
Seconds = Annotated[int, msgspec.Meta(ge=10, le=7 * 86400)]


class _Spec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    pass


class ZoneSpec(_Spec, kw_only=True):
    """A zone with its own description and, where it has one, its own location and the camera
    that looks at it (an operator sees its images of the alarm's time: docs/video.md)."""

    description: Text = ""
    lat: Lat | None = None
    lon: Lon | None = None
    address: Text | None = None
    camera: DeviceId | None = None  # the id of a camera of the set-up


class DeskSpec(_Spec, kw_only=True):
    """A desk: what it sees (categories, source kinds) and where (GeoJSON polygon)."""

    id: Id
    name: Name
    categories: list[str] = msgspec.field(default_factory=list)  # empty = every category
    sources: list[str] = msgspec.field(default_factory=list)  # empty = every source kind
    jurisdiction: dict[str, Any] | None = None


class StationSpec(_Spec, kw_only=True):
    id: Id
    name: Name
    lat: Lat | None = None
    lon: Lon | None = None


class UnitSpec(_Spec, kw_only=True):
    """A unit by its call sign; its kind (engine, ladder, medic, patrol…), what it can do."""

    id: Id
    kind: Word
    station: Id | None = None
    capabilities: list[Word] = msgspec.field(default_factory=list)


class _DeviceSpec(_Spec, kw_only=True):
    """What every device has: where it is, its zones, whether it is being commissioned."""

    site: Name
    address: Text | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    zones: dict[str, ZoneSpec | Text] = msgspec.field(default_factory=dict)
    test_mode: bool = False  # signals stored and counted, never alarmed


class PanelSpec(_DeviceSpec, kw_only=True):
    """An alarm panel reporting over SIA DC-09, known by its account."""

    account: Account
    id: DeviceId | None = None  # default: panel-<ACCOUNT>
    checkin_seconds: Seconds | None = None
    key_hex: KeyHex | None = None  # AES-128/192/256; frames must then be encrypted
    timestamp_window: tuple[float, float] | msgspec.UnsetType | None = msgspec.UNSET

    @property
    def device_id(self) -> str:
        return self.id or f"panel-{self.account.upper()}"


class CameraSpec(_DeviceSpec, kw_only=True):
    """A camera reporting through Frigate (MQTT)."""

    id: DeviceId
    frigate_camera: Text | None = None  # default: the id
    labels: dict[str, str] = msgspec.field(default_factory=dict)  # Frigate label -> type code
    alarm_zones: list[str] = msgspec.field(default_factory=list)  # empty = the whole view


Path = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TypeCode = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class SensorTopic(_Spec, kw_only=True):
    """How one sensor's MQTT messages become signals.

    Paths are dotted keys into the JSON message (``"readings.0.t"``); a message that is not a
    JSON object is read as ``{"value": <the message>}``. Every message on ``topic`` is this
    sensor's, whatever it says about its sender.
    """

    topic: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^#+]*$")]
    type: TypeCode
    id_path: Path | None = None  # the message id, for the idempotency key
    time_path: Path | None = None  # epoch seconds or ISO 8601; default: when received
    zone_path: Path | None = None
    lat_path: Path | None = None
    lon_path: Path | None = None
    summary_path: Path | None = None
    condition_path: Path | None = None  # restored when its value is one of restored_values
    restored_values: list[Annotated[str, msgspec.Meta(max_length=32)]] | None = None
    record_only: bool = False  # stored and counted, never alarmed


class SensorSpec(_DeviceSpec, kw_only=True):
    """A sensor reporting over a generic MQTT topic: its own ``topic`` mapping, or a mapping
    of the ``[intake]`` configuration whose ``source_path`` names its id."""

    id: DeviceId
    checkin_seconds: Seconds | None = None
    topic: SensorTopic | None = None


class ProcedureSpec(_Spec, kw_only=True):
    """A centre's own procedure (SOP) for an incident type: its steps in order, a leading
    ``!`` marks a mandatory one. It replaces the type's default procedure for incidents opened
    after the apply."""

    type: TypeCode
    steps: list[Annotated[str, msgspec.Meta(min_length=1, max_length=500)]]

    @property
    def id(self) -> str:
        return self.type.upper()


class CentreFile(_Spec, kw_only=True):
    """One file of a centre's set-up; any file may hold any kinds (the JSON Schema's root)."""

    desks: list[DeskSpec] = msgspec.field(default_factory=list)
    stations: list[StationSpec] = msgspec.field(default_factory=list)
    units: list[UnitSpec] = msgspec.field(default_factory=list)
    panels: list[PanelSpec] = msgspec.field(default_factory=list)
    cameras: list[CameraSpec] = msgspec.field(default_factory=list)
    sensors: list[SensorSpec] = msgspec.field(default_factory=list)
    routing: list[RouteSpec] = msgspec.field(default_factory=list)
    escalation: list[EscalationSpec] = msgspec.field(default_factory=list)
    response_plans: list[ResponsePlanSpec] = msgspec.field(default_factory=list)
    procedures: list[ProcedureSpec] = msgspec.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Centre:
    """A whole set-up: every file's items, in file order."""

    desks: tuple[DeskSpec, ...] = ()
    stations: tuple[StationSpec, ...] = ()
    units: tuple[UnitSpec, ...] = ()
    panels: tuple[PanelSpec, ...] = ()
    cameras: tuple[CameraSpec, ...] = ()
    sensors: tuple[SensorSpec, ...] = ()
    routing: tuple[RouteSpec, ...] = ()
    escalation: tuple[EscalationSpec, ...] = ()
    response_plans: tuple[ResponsePlanSpec, ...] = ()
    procedures: tuple[ProcedureSpec, ...] = ()

    @classmethod
    def of(cls, files: Iterable[CentreFile]) -> Centre:
        items: dict[str, list[Any]] = {k: [] for k in KINDS}
        for f in files:
            for kind in KINDS:
                items[kind].extend(getattr(f, kind))
        return cls(**{k: tuple(v) for k, v in items.items()})

    def items(self, kind: str) -> tuple[Any, ...]:
        return tuple(getattr(self, kind))


# Where(kind, index, field) -> "file:line" of that item (or of its field); "" when unknown.
Where = Callable[[str, int, str | None], str]


def _located(where: str, error: AlarmdeskError, field: str | None = None) -> SetupError:
    """``error`` at ``where``; ``field`` names the item's field when the error's own field is
    the screening's label ("panel site"), so a form can show it next to the field."""
    located = SetupError(error.message, code=error.code, where=where, field=field or error.field)
    located.rule = str(getattr(error, "rule", ""))
    return located


def item_id(item: Any) -> str:
    """An item's id: a panel's ``device_id`` (``panel-ACCOUNT`` unless it names one)."""
    return item.device_id if isinstance(item, PanelSpec) else str(item.id)


def _zone_texts(zones: Mapping[str, ZoneSpec | str]) -> list[str]:
    out = []
    for name, z in zones.items():
        out.append(name)
        if isinstance(z, ZoneSpec):
            out += [z.description, z.address or ""]
        else:
            out.append(z)
    return [t for t in out if t]


def _texts(kind: str, item: Any) -> dict[str, list[str]]:
    """Every free text of an item, by field: screened for purpose and for control characters."""
    texts: dict[str, list[str]] = {"id": [item_id(item)]}
    for name in ("name", "site", "address", "kind", "frigate_camera"):
        value = getattr(item, name, None)
        if value:
            texts[name] = [value]
    if getattr(item, "zones", None):
        texts["zones"] = _zone_texts(item.zones)
    for name in ("capabilities", "alarm_zones"):
        if getattr(item, name, None):
            texts[name] = list(getattr(item, name))
    if getattr(item, "labels", None):
        texts["labels"] = [*item.labels.keys(), *item.labels.values()]
    if isinstance(item, SensorSpec) and item.topic is not None:
        # A topic states a purpose like an incident type does (DESIGN, "Purposes, not keywords").
        texts["topic"] = [item.topic.topic.replace("/", " "), item.topic.type]
    if isinstance(item, ProcedureSpec):
        texts["steps"] = [step.removeprefix("!").strip() for step in item.steps]
    if isinstance(item, RouteSpec):
        for rule, path in rule_ids(item.routes):
            texts.setdefault("id", []).append(path)
            if rule.name:
                texts.setdefault("name", []).append(rule.name)
        for rule, _ in rule_ids([item]):
            for name in ("sites", "devices"):
                texts.setdefault(name, []).extend(getattr(rule.match, name))
        texts = {k: v for k, v in texts.items() if v}
    return texts


def check(
    centre: Centre, where: Where, screen_only: Callable[[str, Any], bool] | None = None
) -> None:
    """Refuses a set-up that breaks a rule, naming the first place that does.

    Every name and text is screened for purpose (a desk, a unit kind or a zone that targets
    people exercising rights is refused like an incident type), checked for control
    characters, and every reference must resolve (a unit's station, a desk's categories).

    ``screen_only(kind, item)`` limits the screening of texts to the items it names (a change
    item by item screens the item it changes: the others were screened when they were
    applied); every other rule still holds over the whole set-up.

    Raises:
        SetupError: with the code of the rule and ``where`` = ``file:line``.
    """
    passed: set[str] = set()  # texts already screened and found admissible
    for kind in KINDS:
        seen: dict[str, int] = {}
        for index, item in enumerate(centre.items(kind)):
            its_id = item_id(item)
            if its_id in seen:
                raise SetupError(
                    f"{kind[:-1]} '{its_id}' is defined twice (first at "
                    f"{where(kind, seen[its_id], None) or 'an earlier item'})",
                    code="duplicate_id",
                    where=where(kind, index, "id"),
                    field="id",
                )
            seen[its_id] = index
            screened = screen_only is None or screen_only(kind, item)
            for fname, texts in _texts(kind, item).items() if screened else ():
                fresh = [x for x in texts if x not in passed]  # "Front door" once, not 100,000 x
                try:
                    for text in fresh:
                        check_text(text, fname)
                    screen({f"{kind[:-1]} {fname}": fresh})
                    passed.update(fresh)
                except AlarmdeskError as exc:
                    raise _located(where(kind, index, fname), exc, fname) from None
            _check_item(kind, index, item, centre, where)
    _check_zone_cameras(centre, where)
    accounts: dict[str, int] = {}
    for index, panel in enumerate(centre.panels):
        acct = panel.account.upper()
        if acct in accounts:
            raise SetupError(
                f"DC-09 account {acct} is used by two panels",
                code="duplicate_id",
                where=where("panels", index, "account"),
                field="account",
            )
        accounts[acct] = index
    topics: dict[str, int] = {}
    for index, sensor in enumerate(centre.sensors):
        if sensor.topic is None:
            continue
        first = topics.setdefault(sensor.topic.topic, index)
        if first != index:
            raise SetupError(
                f"MQTT topic '{sensor.topic.topic}' is mapped by two sensors "
                f"('{centre.sensors[first].id}' and '{sensor.id}')",
                code="duplicate_id",
                where=where("sensors", index, "topic"),
                field="topic",
            )


def _check_zone_cameras(centre: Centre, where: Where) -> None:
    """A zone's ``camera`` names a camera of the set-up."""
    cameras: set[str] | None = None
    for kind in ("panels", "cameras", "sensors"):
        for index, item in enumerate(centre.items(kind)):
            for name, zone in item.zones.items():
                if not isinstance(zone, ZoneSpec) or zone.camera is None:
                    continue
                if cameras is None:
                    cameras = {c.id for c in centre.cameras}
                if zone.camera not in cameras:
                    raise SetupError(
                        f"{kind[:-1]} '{item_id(item)}' zone '{name}' links camera "
                        f"'{zone.camera}', which no file defines",
                        code="unknown_reference",
                        where=where(kind, index, "zones"),
                        field="zones",
                    )


def _check_routing(item: RouteSpec, centre: Centre) -> None:
    desks = {d.id for d in centre.desks}
    seen = {r.id for r in centre.routing if r is not item}
    for rule, path in rule_ids([item]):
        if rule.match.area is not None:
            checked_area(rule.match.area, "area")
        if rule is not item:
            if rule.id in seen:
                raise InvalidField(
                    f"routing rule id '{rule.id}' ({path}) is used twice",
                    field="id",
                    code="duplicate_id",
                )
            seen.add(rule.id)
        for d in rule.desks:
            if d not in desks:
                raise InvalidField(
                    f"routing rule '{path}' sends to desk '{d}', which no file defines",
                    field="desks",
                    code="unknown_reference",
                )
    areas = {
        d.id: Area(d.jurisdiction) if d.jurisdiction is not None else None for d in centre.desks
    }
    compile_routes([item], areas)


def _check_escalation(item: EscalationSpec, centre: Centre) -> None:
    desks = {d.id for d in centre.desks}
    named = [*item.match.desks, *(d for step in item.steps for d in step.add_desks)]
    for d in named:
        if d not in desks:
            raise InvalidField(
                f"escalation policy '{item.id}' names desk '{d}', which no file defines",
                field="desks",
                code="unknown_reference",
            )
    for c in item.match.categories:
        check_category(c)
    if not item.steps and item.on_scene_minutes is None:
        raise InvalidField(
            f"escalation policy '{item.id}' has no steps and no on_scene_minutes: it does nothing",
            field="steps",
            code="invalid_value",
        )


def _check_position(item: Any) -> None:
    """An item with a position (a station, a device, a device's zone) has both ``lat`` and
    ``lon``, or neither: half a position puts it nowhere, or on the equator."""
    if not hasattr(item, "lat"):
        return
    if (item.lat is None) != (item.lon is None):
        raise InvalidField("lat and lon go together", field="lat", code="invalid_value")
    for name, zone in getattr(item, "zones", {}).items():
        if isinstance(zone, ZoneSpec) and (zone.lat is None) != (zone.lon is None):
            raise InvalidField(
                f"zone '{name}': lat and lon go together", field="zones", code="invalid_value"
            )


def _check_labels(camera: CameraSpec) -> None:
    """A camera's labels, held to the rule of ``[intake] frigate_labels`` (one rule,
    ``domain.purpose.identifying_labels``): faces, recognised names, plates and
    special-category names never become alarms (docs/mqtt.md)."""
    identifying = identifying_labels(camera.labels)
    if identifying:
        error = SpecialCategoryError(
            f"camera '{camera.id}' label",
            identifying[0],
            "a label that identifies a person: faces, recognised names and plates never enter",
        )
        error.field = "labels"
        raise error


def _check_item(kind: str, index: int, item: Any, centre: Centre, where: Where) -> None:
    try:
        if isinstance(item, RouteSpec):
            _check_routing(item, centre)
        elif isinstance(item, EscalationSpec):
            _check_escalation(item, centre)
        elif isinstance(item, ProcedureSpec):
            if not item.steps:
                raise InvalidField(
                    f"procedure for '{item.id}' needs steps", field="steps", code="invalid_value"
                )
            check_steps(item.steps, "steps")
        elif isinstance(item, ResponsePlanSpec):
            for need in item.units:
                if (need.kind is None) == (need.capability is None):
                    raise InvalidField(
                        f"response plan '{item.id}': each need names a kind or a capability",
                        field="units",
                        code="invalid_value",
                    )
        if isinstance(item, DeskSpec):
            for c in item.categories:
                if c != "*":
                    try:
                        check_category(c)
                    except UnknownCategoryError as exc:
                        exc.field = "categories"  # the desk's field, not the type's
                        raise
            for s in item.sources:
                try:
                    SourceKind(s)
                except ValueError:
                    raise InvalidField(
                        f"unknown source kind '{s}' (one of: {', '.join(SourceKind)})",
                        field="sources",
                        code="invalid_value",
                    ) from None
            if item.jurisdiction is not None:
                checked_area(item.jurisdiction, "jurisdiction")
        elif (
            isinstance(item, UnitSpec)
            and item.station is not None
            and item.station not in {s.id for s in centre.stations}
        ):
            raise InvalidField(
                f"unit '{item.id}' names station '{item.station}', which no file defines",
                field="station",
                code="unknown_reference",
            )
        _check_position(item)
        if isinstance(item, CameraSpec) and item.labels:
            _check_labels(item)
        if isinstance(item, PanelSpec) and isinstance(item.timestamp_window, tuple):
            behind, ahead = item.timestamp_window
            if behind > 0 or ahead < 0:
                raise InvalidField(
                    "timestamp_window is [-behind, ahead] seconds: the first ≤ 0, the second ≥ 0",
                    field="timestamp_window",
                    code="invalid_value",
                )
    except AlarmdeskError as exc:
        raise _located(where(kind, index, exc.field), exc) from None
