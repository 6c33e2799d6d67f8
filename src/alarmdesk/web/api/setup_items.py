"""The set-up item by item, for administrators: ``/api/v1/setup/{kind}`` and
``/api/v1/setup/{kind}/{id}`` for desks, stations, units, panels, cameras and sensors
(docs/centre.md). Each change goes through the same rules, apply and audit as a whole set-up
(``service/centre_items.py``); keys are write-only.

Every answer carries the set-up's revision (``ETag: "N"``); a change sent with
``If-Match: "N"`` is refused with 409 ``version_conflict`` when another change came between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Final

import anyio
import msgspec
from litestar import Request, Response, delete, get, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, HeaderParameter

from alarmdesk.domain.errors import InvalidField
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.service import centre_items
from alarmdesk.service.centre_items import ITEM_KINDS, SPECS, Changed, Entry
from alarmdesk.web.api.common import actor_of, audit, needs, read_body, services
from alarmdesk.web.api.schemas import AUTH, SETUP_STRUCTS, SetupItemResult, body, errors

__all__ = ["ROUTES", "entry_data", "expected_revision"]

MAX_ITEM: Final = 1024 * 1024  # bytes of one item (a desk's jurisdiction polygon included)

IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description='The set-up\'s revision the change was made against ("N", the ETag of a '
        "read); another change since is 409 version_conflict",
    ),
]


def expected_revision(value: str | None) -> int | None:
    """The revision an ``If-Match`` header names (``"7"``, ``W/"7"``, ``7``; ``*``: any)."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdecimal() or len(text) > 18:
        raise InvalidField(
            'If-Match is the set-up\'s revision as its ETag gives it, e.g. "7"',
            field="If-Match",
            code="invalid_value",
        )
    return int(text)


def _etag(revision: int) -> dict[str, str]:
    return {"ETag": f'"{revision}"'}


def entry_data(entry: Entry) -> dict[str, Any]:
    """An entry as the API's structs hold it (a unit's status, a panel's key_set)."""
    return {
        "id": entry.id,
        "key_set": entry.key_set,
        "status": entry.status,
        "open_incidents": entry.open_incidents,
        "item": msgspec.to_builtins(entry.spec),
    }


def _result(changed: Changed) -> Response[SetupItemResult]:
    plan = changed.plan
    out = msgspec.convert(
        {"revision": changed.revision, "changes": {"counts": plan.counts(), **plan.summary()}},
        SetupItemResult,
    )
    return Response(out, headers=_etag(changed.revision))


def _typed(fn: Callable[..., Any], **annotations: Any) -> Callable[..., Any]:
    """Litestar reads a handler's types from its annotations: the kind's own structs."""
    fn.__annotations__ = {"request": Request[Any, Any, Any], **annotations}
    return fn


def _routes(kind: str) -> list[HTTPRouteHandler]:
    _, list_type, one_type = SETUP_STRUCTS[kind]
    path = f"/api/v1/setup/{kind}"
    item_path = path + "/{item_id:str}"
    what = kind[:-1]

    async def list_items(request: Any) -> Any:
        found = await anyio.to_thread.run_sync(
            centre_items.list_items, services(request).engine, kind
        )
        await audit(
            request,
            AuditEvent(
                actor_of(request),
                Operation.CONSULT,
                "centre",
                kind,
                detail={"results": len(found.entries)},
            ),
        )
        out = msgspec.convert(
            {"revision": found.revision, "items": [entry_data(e) for e in found.entries]},
            list_type,
        )
        return Response(out, headers=_etag(found.revision))

    async def get_item(request: Any, item_id: str) -> Any:
        rev, entry = await anyio.to_thread.run_sync(
            centre_items.get_item, services(request).engine, kind, item_id
        )
        await audit(
            request, AuditEvent(actor_of(request), Operation.CONSULT, "centre", f"{kind}/{item_id}")
        )
        return Response(
            msgspec.convert({"revision": rev, **entry_data(entry)}, one_type), headers=_etag(rev)
        )

    async def put_item(request: Any, item_id: str, if_match: Any = None) -> Any:
        expected = expected_revision(if_match)
        raw = await read_body(request, MAX_ITEM)
        svc, actor = services(request), actor_of(request)

        def prepare() -> Any:  # decoding and the whole set-up's check: off the event loop
            spec, clear_key = centre_items.decode_item(kind, raw, item_id)
            return centre_items.change(
                svc.engine, actor, kind, item_id, spec, expected=expected, clear_key=clear_key
            )

        return _result(await svc.writer.run(await anyio.to_thread.run_sync(prepare)))

    async def delete_item(request: Any, item_id: str, if_match: Any = None) -> Any:
        expected = expected_revision(if_match)
        svc, actor = services(request), actor_of(request)
        action = await anyio.to_thread.run_sync(
            lambda: centre_items.change(svc.engine, actor, kind, item_id, None, expected=expected)
        )
        return _result(await svc.writer.run(action))

    guard = needs(Permission.SETUP_MANAGE)
    return [
        get(
            path,
            opt=guard,
            name=f"setup-{kind}-list",
            responses=errors(*AUTH, 409),
            summary=f"Every {what} of the set-up"
            + (" (keys: only whether one is set)" if kind == "panels" else ""),
        )(_typed(list_items, **{"return": Response[list_type]})),  # type: ignore[valid-type]
        get(
            item_path,
            opt=guard,
            name=f"setup-{kind}-get",
            responses=errors(*AUTH, 404, 409),
            summary=f"One {what} of the set-up",
        )(_typed(get_item, item_id=FromPath[str], **{"return": Response[one_type]})),  # type: ignore[valid-type]
        put(
            item_path,
            opt=guard,
            name=f"setup-{kind}-put",
            dependencies=body(SPECS[kind]),
            responses=errors(*AUTH, 408, 409, 413, 422, 503),
            summary=f"Create or replace one {what}, with the same rules and audit as an apply",
            description=_PUT_TEXT + (_KEY_TEXT if kind == "panels" else ""),
        )(
            _typed(
                put_item,
                item_id=FromPath[str],
                if_match=IfMatch,
                **{"return": Response[SetupItemResult]},
            )
        ),
        delete(
            item_path,
            opt=guard,
            name=f"setup-{kind}-delete",
            status_code=200,
            responses=errors(*AUTH, 404, 409, 422, 503),
            summary=f"Remove one {what}, with the same rules and audit as an apply",
            description="Refused with 422 in_use while it has open incidents (a unit: while "
            "committed to one), and unknown_reference while another item names it.",
        )(
            _typed(
                delete_item,
                item_id=FromPath[str],
                if_match=IfMatch,
                **{"return": Response[SetupItemResult]},
            )
        ),
    ]


_PUT_TEXT = (
    "The body is the item as a set-up file writes it (docs/centre.md), as JSON; its id is the "
    "path's (a body without one takes it; one naming another is 422 invalid_value). Checked "
    "with the whole set-up: a refused name is 422 protected_purpose naming the field and the "
    "rule, a reference to nothing 422 unknown_reference."
)
_KEY_TEXT = (
    ' key_hex is write-only: left out (or "<redacted>") the stored key is kept; null removes it.'
)

ROUTES: Final = [route for kind in ITEM_KINDS for route in _routes(kind)]
