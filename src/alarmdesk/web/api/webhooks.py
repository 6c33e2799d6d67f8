"""Webhook subscriptions over HTTP (administrators): list, create, remove, the delivery log."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, QueryParameter

from alarmdesk.domain.errors import NotFound
from alarmdesk.domain.signal import decode
from alarmdesk.domain.webhooks import WebhookSpec
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.service import webhooks
from alarmdesk.web.api.common import actor_of, audit, needs, read_body, services
from alarmdesk.web.api.schemas import (
    AUTH,
    DeliveryOut,
    WebhookCreatedOut,
    WebhookOut,
    body,
    errors,
)

_decoder = msgspec.json.Decoder(WebhookSpec)
MAX_ID = 2**31 - 1


def _checked(webhook_id: int) -> int:
    if not 1 <= webhook_id <= MAX_ID:
        raise NotFound(f"no webhook {webhook_id}", field="webhook_id")
    return webhook_id


async def _one(request: Request[Any, Any, Any], webhook_id: int) -> dict[str, Any]:
    svc = services(request)
    found = await anyio.to_thread.run_sync(lambda: webhooks.list_webhooks(svc.engine, removed=True))
    for w in found:
        if w["id"] == webhook_id:
            return w
    raise NotFound(f"no webhook {webhook_id}", field="webhook_id")


@get(
    "/api/v1/webhooks",
    opt=needs(Permission.WEBHOOKS_MANAGE),
    responses=errors(*AUTH, 422),
    summary="Webhook subscriptions (with removed=true: also removed ones); never their secrets",
)
async def list_webhooks(
    request: Request[Any, Any, Any], removed: Annotated[bool, QueryParameter()] = False
) -> list[WebhookOut]:
    svc = services(request)
    found = await anyio.to_thread.run_sync(
        lambda: webhooks.list_webhooks(svc.engine, removed=removed)
    )
    return msgspec.convert(msgspec.to_builtins(found), list[WebhookOut])


@post(
    "/api/v1/webhooks",
    status_code=201,
    opt=needs(Permission.WEBHOOKS_MANAGE),
    dependencies=body(WebhookSpec),
    responses=errors(*AUTH, 408, 413, 422, 503),
    summary="Subscribe a URL to incident events, signed; the answer shows the secret once",
)
async def create_webhook(request: Request[Any, Any, Any]) -> WebhookCreatedOut:
    spec: WebhookSpec = decode(_decoder, await read_body(request, 16 * 1024))
    created = await services(request).writer.run(webhooks.create(actor_of(request), spec))
    shown = await _one(request, created.id)
    return msgspec.convert(
        msgspec.to_builtins({**shown, "secret": created.secret}), WebhookCreatedOut
    )


@delete(
    "/api/v1/webhooks/{webhook_id:int}",
    status_code=200,
    opt=needs(Permission.WEBHOOKS_MANAGE),
    responses=errors(*AUTH, 404, 409, 422, 503),
    summary="Stop deliveries to a webhook; its delivery log stays",
)
async def remove_webhook(request: Request[Any, Any, Any], webhook_id: FromPath[int]) -> WebhookOut:
    await services(request).writer.run(webhooks.remove(actor_of(request), _checked(webhook_id)))
    return msgspec.convert(msgspec.to_builtins(await _one(request, webhook_id)), WebhookOut)


@get(
    "/api/v1/webhooks/{webhook_id:int}/deliveries",
    opt=needs(Permission.WEBHOOKS_MANAGE),
    responses=errors(*AUTH, 404, 422),
    summary="A webhook's delivery log, newest first: every attempt with its outcome",
)
async def webhook_deliveries(
    request: Request[Any, Any, Any],
    webhook_id: FromPath[int],
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    svc = services(request)
    found = await anyio.to_thread.run_sync(
        lambda: webhooks.deliveries(svc.engine, _checked(webhook_id), limit=limit)
    )
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.CONSULT,
            "webhook_deliveries",
            str(webhook_id),
            detail={"results": len(found)},
        ),
    )
    return msgspec.convert(msgspec.to_builtins(found), list[DeliveryOut])


ROUTES = [list_webhooks, create_webhook, remove_webhook, webhook_deliveries]
