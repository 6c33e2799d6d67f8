"""One item of the set-up at a time: list, read, create or replace, remove (the API's
``/api/v1/setup/{kind}/{id}`` and the console's set-up pages).

A change goes through the same rules and the same apply as the files (``service/centre.py``):
the stored set-up with the one item replaced (or removed) is checked whole by
:func:`alarmdesk.domain.centre.check` (purpose screening, references, one id per kind), planned
against the stored records, and the plan, restricted to that item, is written by one
:class:`~alarmdesk.service.actions.Action` with its audit entry (ids and field names, never a
key). The removals the running centre forbids are refused in that transaction (``in_use``).

The check (the types a sensor's topic names included, as an apply's) runs in the caller's
thread, against one revision of the set-up (``setup_revision``, moved by every apply that
changes something). If another apply moves it before the writer runs the change, a caller that
named the revision it read (``expected``, HTTP ``If-Match``) gets ``409 version_conflict``;
without one, the change is checked again inside the transaction.

A panel's AES key (``key_hex``) is write-only: reads say ``<redacted>`` when one is set; a
change without a key, or with ``<redacted>``, keeps the stored one; ``clear_key`` removes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgspec
import sqlalchemy as sa

from alarmdesk.domain.centre import (
    REDACTED,
    CameraSpec,
    Centre,
    CentreFile,
    DeskSpec,
    PanelSpec,
    SensorSpec,
    StationSpec,
    UnitSpec,
    check,
    item_id,
)
from alarmdesk.domain.centre_plan import Plan, diff, records, redact, specs_of
from alarmdesk.domain.errors import (
    AlarmdeskError,
    InvalidField,
    NotFound,
    SetupError,
    StoredSetupInvalid,
    VersionConflict,
)
from alarmdesk.domain.signal import decode
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation, Outcome
from alarmdesk.service import centre_files
from alarmdesk.service.actions import Action
from alarmdesk.service.centre import check_types
from alarmdesk.store.centre import busy, item_states, read_records, revision, write_plan

__all__ = [
    "ITEM_KINDS",
    "SPECS",
    "Changed",
    "Entry",
    "Listing",
    "change",
    "current_revision",
    "decode_item",
    "get_item",
    "list_items",
]

Records = Mapping[str, Mapping[str, Mapping[str, Any]]]

# The kinds one may change item by item (rules stay whole: their order matters).
ITEM_KINDS: Final = ("desks", "stations", "units", "panels", "cameras", "sensors")
SPECS: Final[dict[str, type[Any]]] = {
    "desks": DeskSpec,
    "stations": StationSpec,
    "units": UnitSpec,
    "panels": PanelSpec,
    "cameras": CameraSpec,
    "sensors": SensorSpec,
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored item: its spec (the key redacted) and what the running centre holds of it."""

    id: str
    spec: Any
    key_set: bool = False  # a panel with an AES key
    open_incidents: int = 0  # a device's or desk's open incidents; a unit's: 1 when committed
    status: str | None = None  # a unit's status


@dataclass(frozen=True, slots=True)
class Listing:
    kind: str
    revision: int
    entries: list[Entry]


@dataclass(frozen=True, slots=True)
class Changed:
    """What a change did: the plan (one item at most) and the set-up's revision after it."""

    plan: Plan
    revision: int


_DECODERS: Final = {kind: msgspec.json.Decoder(spec) for kind, spec in SPECS.items()}


def decode_item(kind: str, body: bytes, path_id: str | None = None) -> tuple[Any, bool]:
    """An item of ``kind`` from JSON (the files' spec, field for field) and whether it clears
    the panel's key: ``"key_hex": null`` clears it, a body without ``key_hex`` keeps it.
    With ``path_id`` (the id in ``/api/v1/setup/{kind}/{id}``), a body that leaves its ``id``
    out takes the path's; one that names another id is refused by :func:`change`.

    Raises:
        MalformedInput: not JSON. InvalidField: the spec refuses a field (named).
        SetupError: a key given twice in an object (``invalid_value``), as in a file.
    """
    centre_files.refuse_duplicate_keys(body, _known(kind))
    if path_id is not None:
        body = _with_id(kind, body, path_id)
    spec = decode(_DECODERS[kind], body)
    clear = False
    if kind == "panels" and spec.key_hex is None:
        clear = msgspec.json.decode(body, type=dict[str, Any]).get("key_hex", "") is None
    return spec, clear


def _with_id(kind: str, body: bytes, path_id: str) -> bytes:
    """The body with the path's id when it names none. A panel whose default id
    (``panel-ACCOUNT``) is the path's keeps it left out, as a file that leaves it out writes
    it. A body that is not a JSON object is left to the decoder to refuse."""
    try:
        item = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return body
    if not isinstance(item, dict) or "id" in item:
        return body
    if kind == "panels":
        account = item.get("account")
        if isinstance(account, str) and f"panel-{account.upper()}" == path_id:
            return body
    return msgspec.json.encode({**item, "id": path_id})


def _known(kind: str) -> str:
    if kind not in ITEM_KINDS:
        raise NotFound(f"no kind '{kind}' (one of: {', '.join(ITEM_KINDS)})", field="kind")
    return kind


def _specs(stored: Records) -> CentreFile:
    """The stored records as a file's items.

    Raises:
        StoredSetupInvalid: an item was stored outside the set-up's rules (written directly
            into the database) and no file could hold it.
    """
    try:
        return specs_of(stored)
    except msgspec.ValidationError as exc:
        raise StoredSetupInvalid(
            f"the stored set-up holds an item no set-up file could hold ({exc}); "
            "correct it with alarmdesk config apply"
        ) from None


def _entries(kind: str, recs: Mapping[str, Mapping[str, Any]], conn: sa.Connection) -> list[Entry]:
    states = item_states(conn, kind)
    specs = getattr(_specs({kind: {i: redact(r) for i, r in recs.items()}}), kind)
    out = []
    for spec in specs:
        its_id = item_id(spec)
        state = states.get(its_id, {})
        out.append(
            Entry(
                its_id,
                spec,
                key_set=isinstance(spec, PanelSpec) and spec.key_hex is not None,
                open_incidents=int(state.get("open_incidents", 0)),
                status=state.get("status"),
            )
        )
    return out if kind == "desks" else sorted(out, key=lambda e: e.id)  # desks: their order


def list_items(engine: sa.Engine, kind: str) -> Listing:
    """Every stored item of ``kind``, by id (desks in their order)."""
    _known(kind)
    with engine.begin() as conn:  # one transaction: the items and the revision agree
        rev = revision(conn)
        return Listing(kind, rev, _entries(kind, read_records(conn)[kind], conn))


def current_revision(engine: sa.Engine) -> int:
    """The set-up's revision now (what a new item's form is made against)."""
    with engine.connect() as conn:
        return revision(conn)


def get_item(engine: sa.Engine, kind: str, wanted: str) -> tuple[int, Entry]:
    """The revision of the set-up and one stored item.

    Raises:
        NotFound: no such kind, or no such item.
    """
    _known(kind)
    with engine.begin() as conn:
        rev = revision(conn)
        rec = read_records(conn)[kind].get(wanted)
        if rec is None:
            raise NotFound(f"no {kind[:-1]} '{wanted}'", field="id")
        return rev, _entries(kind, {wanted: rec}, conn)[0]


# --------------------------------------------------------------------------- changes


def _with_key(current: Records, wanted: str, spec: PanelSpec, clear_key: bool) -> PanelSpec:
    """The key a changed panel keeps: the stored one unless a new one is given or cleared."""
    stored = (current["panels"].get(wanted, {}).get("settings") or {}).get("key_hex")
    if clear_key:
        if spec.key_hex not in (None, REDACTED):
            raise InvalidField(
                "give a new key or clear the key, not both", field="key_hex", code="invalid_value"
            )
        return msgspec.structs.replace(spec, key_hex=None)
    if spec.key_hex is None or spec.key_hex == REDACTED:
        if spec.key_hex == REDACTED and not stored:
            raise SetupError(
                f"panel '{wanted}' has no stored key to keep: give the key, or leave it out",
                code="secret_required",
                field="key_hex",
            )
        return msgspec.structs.replace(spec, key_hex=stored)
    return spec


def _where(centre: Centre) -> Any:
    """Names an item by ``kind/id`` where the files' errors say ``file:line``."""

    def where(kind: str, index: int, _field: str | None) -> str:
        items = centre.items(kind)
        return f"{kind}/{item_id(items[index])}" if 0 <= index < len(items) else kind

    return where


def _prepare(
    conn: sa.Connection,
    current: Records,
    kind: str,
    wanted: str,
    spec: Any,
    clear_key: bool,
    create: bool = False,
) -> Plan:
    """The plan that replaces (``spec``) or removes (``None``) one item, after the same check
    as a whole set-up's; with ``create``, one that only adds it."""
    if spec is not None:
        if item_id(spec) != wanted:
            raise InvalidField(
                f"the item's id is '{item_id(spec)}', the path's '{wanted}': to rename an item, "
                "remove it and add it anew",
                field="id",
                code="invalid_value",
            )
        if isinstance(spec, PanelSpec):
            spec = _with_key(current, wanted, spec, clear_key)
    whole = _specs(current)
    items = list(getattr(whole, kind))
    at = next((i for i, x in enumerate(items) if item_id(x) == wanted), None)
    if spec is None:
        if at is None:
            raise NotFound(f"no {kind[:-1]} '{wanted}'", field="id")
        del items[at]
    elif at is None:
        items.append(spec)
    elif create:
        raise SetupError(
            f"{kind[:-1]} '{wanted}' exists: to change it, edit it",
            code="duplicate_id",
            where=f"{kind}/{wanted}",
            field="id",
        )
    else:
        items[at] = spec
    centre = Centre.of([msgspec.structs.replace(whole, **{kind: items})])
    where = _where(centre)
    # Only the changed item's texts are screened: the others were when they were applied.
    check(centre, where, lambda k, item: k == kind and item_id(item) == wanted)
    check_types(conn, centre, where)
    planned = diff(current, records(centre))

    def mine(changes: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(c for c in changes if c.kind == kind and c.id == wanted)

    return Plan(mine(planned.added), mine(planned.changed), mine(planned.removed), planned.records)


def _conflict(expected: int, now: int) -> VersionConflict:
    return VersionConflict(
        f"the set-up is at revision {now}, not {expected}: someone applied a change meanwhile; "
        "read it again",
        field="revision",
    )


def change(
    engine: sa.Engine,
    actor: Actor,
    kind: str,
    wanted: str,
    spec: Any | None,
    *,
    expected: int | None = None,
    clear_key: bool = False,
    create: bool = False,
) -> Action:
    """The action that creates or replaces (``spec``) or removes (``None``) item ``wanted``;
    with ``create`` (the console's "new" form), only creates it: an item of that id is
    ``duplicate_id``, never replaced.

    Reads and checks in the caller's thread (call it in a worker thread); run the action with
    ``Writer.run`` or ``perform``. Its result is a :class:`Changed`.

    Raises (from the runner):
        SetupError: a rule refused it (``protected_purpose``, ``unknown_reference``,
            ``duplicate_id``, ``in_use``, ``secret_required``…), naming ``kind/id``.
        InvalidField: the id does not match, or a key was both given and cleared.
        NotFound: removing an item that does not exist.
        VersionConflict: ``expected`` is not the set-up's revision.
    """
    _known(kind)
    operation = "delete" if spec is None else "put"
    refused_early: AlarmdeskError | None = None
    planned: Plan | None = None
    base = -1
    try:
        with engine.begin() as conn:
            base, current = revision(conn), read_records(conn)
            if expected is not None and expected != base:
                raise _conflict(expected, base)
            planned = _prepare(conn, current, kind, wanted, spec, clear_key, create)
    except AlarmdeskError as exc:
        refused_early = exc

    def run(conn: sa.Connection, now: datetime) -> Changed:
        if refused_early is not None:
            raise refused_early
        plan = planned
        moved = revision(conn)
        if moved != base:  # an apply came between our check and now
            if expected is not None:
                raise _conflict(expected, moved)
            plan = _prepare(conn, read_records(conn), kind, wanted, spec, clear_key, create)
        assert plan is not None
        refused = busy(conn, plan)
        if refused:
            _, its_id, why = refused[0]
            raise SetupError(
                f"cannot remove {kind[:-1]} '{its_id}': {why}",
                code="in_use",
                where=f"{kind}/{its_id}",
                field="id",
            )
        write_plan(conn, plan)
        # the records (every stored key among them) stay here: the caller gets the changes
        return Changed(Plan(plan.added, plan.changed, plan.removed), revision(conn))

    def audit_of(result: Changed | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        target = f"{kind}/{wanted}"
        if error is not None:
            return [
                AuditEvent(
                    actor,
                    Operation.CONFIGURE,
                    "centre",
                    target,
                    outcome=Outcome.DENIED,
                    rule=error.code,
                    detail={"operation": operation},
                )
            ]
        assert result is not None
        return [
            AuditEvent(
                actor,
                Operation.CONFIGURE,
                "centre",
                target,
                rule=f"config.{operation}",
                detail={"counts": result.plan.counts(), **result.plan.summary()},
            )
        ]

    return Action(run, audit_of, reload_setup=True)
