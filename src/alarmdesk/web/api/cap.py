"""CAP 1.2 over HTTP (docs/cap.md).

- ``POST /api/v1/cap``: a CAP alert in (an intake token, ``signal.submit``), stored as a
  ``feed`` signal before the 202;
- ``POST /api/v1/cap/alerts``: publish a public warning from an incident (``cap.publish``,
  supervisors; audited as a disclosure);
- ``GET /api/v1/cap/alerts/{identifier}.xml`` and ``GET /api/v1/cap/feed.atom``: what was
  published, served without credentials: these are public warnings, and publishing them was
  the audited disclosure. The feed's id and links are built from ``[cap] public_url`` when it
  is set, else from the request (answered with ``Vary: Host``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.di import Provide
from litestar.params import Body, FromPath

from alarmdesk.domain.errors import InputError, NotFound
from alarmdesk.domain.signal import FORBIDDEN_LINE, decode
from alarmdesk.intake.cap import MAX_DOCUMENT_BYTES, atom_feed, load_mapping
from alarmdesk.safeguards.access import Permission
from alarmdesk.service import cap
from alarmdesk.web.api.common import actor_of, needs, read_body, services
from alarmdesk.web.api.schemas import AUTH, CapAlertOut, ReceiptOut, body, responses
from alarmdesk.web.api.signals import receipt_json
from alarmdesk.web.auth import principal_of

CAP_TYPES = ("application/cap+xml", "application/xml", "text/xml")
FEED_LIMIT = 100

_encode = msgspec.json.Encoder().encode


class UnsupportedMediaType(InputError):
    code = "unsupported_media_type"
    status = 415


def _xml_body() -> dict[str, Provide]:
    """Documents a CAP document as the request body (the route reads its bytes itself)."""

    def documents(data: Any) -> None:  # never called: no route asks for it
        raise AssertionError("a body-documenting dependency was resolved")

    documents.__annotations__ = {
        "data": Annotated[
            bytes,
            Body(media_type="application/cap+xml", description="One CAP 1.2 alert"),
        ],
        "return": None,
    }
    provider: Callable[..., None] = documents
    return {"_request_body": Provide(provider, sync_to_thread=False)}


@post(
    "/api/v1/cap",
    status_code=202,
    opt=needs(Permission.SIGNAL_SUBMIT),
    dependencies=_xml_body(),
    responses=responses(
        202, ReceiptOut, *AUTH, 408, 409, 413, 415, 422, 503, description="Stored: the receipt"
    ),
    summary="Submit one CAP 1.2 alert (stored as a feed signal)",
    description="Content-Type application/cap+xml or application/xml. Validated against the "
    "OASIS CAP 1.2 schema; a document that fails it is refused with invalid_cap naming the "
    "element and the reason, and nothing is stored. Idempotent by sender, identifier and "
    "sent. An Update or Cancel folds into the incident of the alert it references.",
)
async def post_cap(request: Request[Any, Any, Any]) -> Response[bytes]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in CAP_TYPES:
        raise UnsupportedMediaType(
            f"send a CAP document as {' or '.join(CAP_TYPES[:2])}", field="content-type"
        )
    svc = services(request)
    body_bytes = await read_body(request, MAX_DOCUMENT_BYTES)
    receipt = await cap.receive(
        svc.engine,
        svc.writer,
        body_bytes,
        load_mapping(svc.config.intake.cap_mapping),
        svc.clock(),
        languages=svc.config.intake.cap_languages,
        actor=actor_of(request),
    )
    return Response(_encode(receipt_json(receipt)), status_code=202, media_type="application/json")


class CapPublishIn(cap.PublishSpec, kw_only=True):
    """A public warning to publish from the incident ``incident_id``."""

    incident_id: Annotated[int, msgspec.Meta(ge=1, le=2**53)]


_publish_decoder = msgspec.json.Decoder(CapPublishIn)


def _spec_of(body_in: CapPublishIn) -> cap.PublishSpec:
    fields = {f: getattr(body_in, f) for f in cap.PublishSpec.__struct_fields__}
    return cap.PublishSpec(**fields)


@post(
    "/api/v1/cap/alerts",
    status_code=201,
    opt=needs(Permission.CAP_PUBLISH),
    dependencies=body(CapPublishIn),
    responses=responses(201, CapAlertOut, *AUTH, 404, 408, 413, 422, 503),
    summary="Publish a public warning from an incident as CAP 1.2 (audited)",
    description="Supervisors. The texts are screened (protected purposes, special-category "
    "data); the alert is valid against the OASIS schema, its sent time carries a numeric "
    "offset. An Update or Cancel names in references the identifier of an alert published "
    "from the same incident. Served at /api/v1/cap/alerts/{identifier}.xml and in "
    "/api/v1/cap/feed.atom.",
)
async def publish(request: Request[Any, Any, Any]) -> CapAlertOut:
    svc = services(request)
    body_in: CapPublishIn = decode(_publish_decoder, await read_body(request, 64 * 1024))
    principal = principal_of(request)
    published = await svc.writer.run(
        cap.publish(
            actor_of(request),
            body_in.incident_id,
            _spec_of(body_in),
            sender=svc.config.cap.sender,
            sender_name=svc.config.cap.sender_name,
            language=svc.config.cap.language,
            desks=None if principal.all_desks else principal.desks,
        )
    )
    return msgspec.convert(msgspec.to_builtins(published), CapAlertOut)


@get(
    "/api/v1/cap/alerts/{name:str}",
    opt={"public": True},
    responses=responses(
        200,
        str,
        404,
        description="The alert (CAP 1.2 XML)",
        media_type="application/cap+xml",
    ),
    summary="One published alert as CAP 1.2: /api/v1/cap/alerts/{identifier}.xml (public)",
)
async def alert_xml(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    identifier = name.removesuffix(".xml")
    if identifier == name:
        raise NotFound("alerts are served as {identifier}.xml", field="name")
    if FORBIDDEN_LINE.search(identifier):  # no alert is named so (PostgreSQL refuses a NUL)
        raise NotFound("no such alert", field="name")
    found = await anyio.to_thread.run_sync(cap.document, services(request).engine, identifier)
    if found is None:
        raise NotFound(f"no alert {identifier}", field="name")
    return Response(found, media_type="application/cap+xml")


@get(
    "/api/v1/cap/feed.atom",
    opt={"public": True},
    responses=responses(
        200, str, description="The Atom feed of published alerts", media_type="application/atom+xml"
    ),
    summary="The alerts published last (up to 100), as an Atom feed (public)",
)
async def feed(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    entries = await anyio.to_thread.run_sync(cap.feed_entries, svc.engine, FEED_LIMIT)
    # Public and unauthenticated: its links come from [cap] public_url, never from the Host
    # header a client chose. Without it they come from the request, and caches are told.
    configured = svc.config.cap.public_url.rstrip("/")
    base = configured or str(request.base_url).rstrip("/")
    cache = {"Cache-Control": "no-cache"}
    if not configured:
        cache["Vary"] = "Host"
    sender = svc.config.cap.sender
    body_bytes = atom_feed(
        f"{base}/api/v1/cap/feed.atom",
        svc.config.cap.sender_name,
        f"{base}/api/v1/cap/feed.atom",
        max((_parsed(e.sent) for e in entries), default=svc.clock()),
        (
            (
                f"urn:cap:{sender}:{e.identifier}",
                f"{e.msg_type}: {e.headline}" if e.msg_type != "Alert" else e.headline,
                _parsed(e.sent),
                f"{base}/api/v1/cap/alerts/{e.identifier}.xml",
            )
            for e in entries
        ),
    )
    return Response(body_bytes, media_type="application/atom+xml", headers=cache)


def _parsed(text: str) -> datetime:
    return datetime.fromisoformat(text)


ROUTES = [post_cap, publish, alert_xml, feed]

__all__ = ["ROUTES"]
