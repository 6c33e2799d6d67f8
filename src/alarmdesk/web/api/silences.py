"""Silences over HTTP: list them with what they held back, create and end them (audited)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter

from alarmdesk.bootstrap import Services
from alarmdesk.domain.errors import NotFound
from alarmdesk.domain.signal import check_text, decode
from alarmdesk.domain.silences import SilenceSpec
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.service import silences
from alarmdesk.web.api.common import actor_of, audit, needs, read_body, services
from alarmdesk.web.api.schemas import AUTH, SilencedSignalOut, SilenceOut, body, errors

_decoder = msgspec.json.Decoder(SilenceSpec)
MAX_ID = 2**53


def _checked(silence_id: int) -> int:
    if not 1 <= silence_id <= MAX_ID:
        raise NotFound(f"no silence {silence_id}", field="silence_id")
    return silence_id


async def _one(svc: Services, silence_id: int) -> SilenceOut:
    [found] = await anyio.to_thread.run_sync(
        lambda: silences.list_silences(svc.engine, svc.clock(), silence_id=silence_id)
    )
    return msgspec.convert(msgspec.to_builtins(found), SilenceOut)


@get(
    "/api/v1/silences",
    opt=needs(Permission.INCIDENT_READ),
    responses=errors(*AUTH, 422),
    summary="Silences in force or to come (with ended=true: all), with what each held back",
)
async def list_silences(
    request: Request[Any, Any, Any], ended: Annotated[bool, QueryParameter()] = False
) -> list[SilenceOut]:
    svc = services(request)
    found = await anyio.to_thread.run_sync(
        lambda: silences.list_silences(svc.engine, svc.clock(), ended=ended)
    )
    return msgspec.convert(msgspec.to_builtins(found), list[SilenceOut])


@post(
    "/api/v1/silences",
    status_code=201,
    opt=needs(Permission.SILENCE_MANAGE),
    dependencies=body(SilenceSpec),
    responses=errors(*AUTH, 408, 413, 422, 503),
    summary="Silence signals: stored and shown, never alarmed (docs/silences.md)",
)
async def create_silence(request: Request[Any, Any, Any]) -> SilenceOut:
    spec: SilenceSpec = decode(_decoder, await read_body(request, 64 * 1024))
    check_text(spec.reason, "reason", multiline=True)
    svc = services(request)
    silence_id = await svc.writer.run(silences.create(actor_of(request), spec))
    return await _one(svc, silence_id)


@post(
    "/api/v1/silences/{silence_id:int}/end",
    status_code=200,
    opt=needs(Permission.SILENCE_MANAGE),
    responses=errors(*AUTH, 404, 409, 422, 503),
    summary="End a silence now; what it held back stays stored",
)
async def end_silence(request: Request[Any, Any, Any], silence_id: FromPath[int]) -> SilenceOut:
    svc = services(request)
    await svc.writer.run(silences.end(actor_of(request), _checked(silence_id)))
    return await _one(svc, silence_id)


@get(
    "/api/v1/silences/{silence_id:int}/signals",
    opt=needs(Permission.INCIDENT_READ),
    responses=errors(*AUTH, 404, 422),
    summary="The signals a silence held back, newest first (the silenced view)",
)
async def silenced_signals(
    request: Request[Any, Any, Any], silence_id: FromPath[int]
) -> list[SilencedSignalOut]:
    svc = services(request)
    found = await anyio.to_thread.run_sync(
        silences.silenced_signals, svc.engine, _checked(silence_id)
    )
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.CONSULT,
            "signals",
            "",
            detail={"silence": silence_id, "results": len(found)},
        ),
    )
    return msgspec.convert(msgspec.to_builtins(found), list[SilencedSignalOut])


ROUTES = [list_silences, create_silence, end_silence, silenced_signals]
