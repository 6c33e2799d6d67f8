"""What a standby asks of the node that writes (distributed mode, docs/operations.md).

A console on a standby sees everything (the event relay), and its operator acts from there:
an incident command, a unit's report, a call-taker's call. Those change what only the writer
holds (the incidents in its pipeline, the units, the id counters), so the standby sends them
to it over NATS request and reply (``<stream>.commands``, which only the writer node
subscribes to) and answers its client with what the writer answered: the incident after the
command, or the same error (class, code, message, field), hence the same HTTP status.

The request carries the command as the web layer built it (actor and desks from the caller's
own credentials, checked on the standby) and the audit actor; the writer applies it exactly
as its own web layer would. No node writes (between a writer's death and a standby taking
over): ``503 writer_stopped`` at once, never a wait. A reply that does not come within
``timeout`` is ``503`` too, and the command may have been applied; commands carry the
incident version the operator saw (``expected_version``), so a repeat is refused rather
than applied twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from alarmdesk import logs
from alarmdesk.bus.roundtrip import server_has_read
from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import AlarmdeskError, InputError, WriterStopped
from alarmdesk.domain.signal import Receipt, SignalIn
from alarmdesk.safeguards.audit import Actor, AuditEvent

__all__ = ["CommandRelay", "WriterClient", "WriterSide", "answer"]

log = logs.get_logger(__name__)

# The commands that travel, by name (the request names its kind; nothing else is decoded).
_KINDS: Final[dict[str, type[Any]]] = {
    k.__name__: k
    for k in (
        c.Acknowledge,
        c.Dispatch,
        c.Arrive,
        c.AddNote,
        c.Reclassify,
        c.Resolve,
        c.CompleteStep,
        c.Close,
        c.Cancel,
        c.Verify,
        c.UnitReport,
    )
}
_SIGNALS: Final = "signals"
# Only over the local link (bus/link.py): a worker process's audit entries go to the writer's
# group commit, and a change of the types in force is taken up by the writer after it.
_AUDIT: Final = "audit"
_RELOAD_TYPES: Final = "reload_taxonomy"


class _Request(msgspec.Struct, frozen=True):
    kind: str  # a command's class name, or "signals"
    body: msgspec.Raw  # the command, or the list of signals
    actor: Actor | None = None


class _Error(msgspec.Struct, frozen=True):
    kind: str  # the AlarmdeskError's class name
    code: str
    message: str
    field: str | None = None


class _Reply(msgspec.Struct, frozen=True):
    result: msgspec.Raw  # the answer's JSON; null with an error (Raw takes no union)
    error: _Error | None = None


_encode = msgspec.json.Encoder().encode
_NULL = msgspec.Raw(b"null")


def _errors() -> dict[str, type[AlarmdeskError]]:
    found: dict[str, type[AlarmdeskError]] = {}
    pending: list[type[AlarmdeskError]] = [AlarmdeskError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _raise(error: _Error) -> None:
    """The writer's error, again: its class (for the HTTP status), code, message, field."""
    cls = _errors().get(error.kind, AlarmdeskError)
    exc = cls.__new__(cls)
    AlarmdeskError.__init__(exc, error.message, field=error.field)
    exc.code = error.code
    raise exc


@dataclass(frozen=True, slots=True)
class WriterSide:
    """What the writer node does with each request (its writer's own entry points), while
    ``writing()``: a request is never passed on from a node that stopped writing. ``audit``
    and ``reload_taxonomy`` are served only where given (the local link's writer process)."""

    writing: Callable[[], bool]
    command: Callable[[c.Command, Actor | None], Awaitable[dict[str, Any]]]
    unit_report: Callable[[c.UnitReport, Actor | None], Awaitable[dict[str, Any]]]
    signals: Callable[[Sequence[SignalIn], Actor | None], Awaitable[list[Receipt]]]
    audit: Callable[[Sequence[AuditEvent]], Awaitable[None]] | None = None
    reload_taxonomy: Callable[[], Awaitable[None]] | None = None


def _ask_body(kind: str, body: object, actor: Actor | None) -> bytes:
    """A request to the writer as it travels (over NATS or the local link)."""
    return _encode(_Request(kind, msgspec.Raw(_encode(body)), actor))


def _result_of(data: bytes, *, raw: bool = False) -> Any:
    """The writer's answer to a request: its result (the JSON text with ``raw``), or the
    writer's error raised again."""
    reply = msgspec.json.decode(data, type=_Reply)
    if reply.error is not None:
        _raise(reply.error)
    return bytes(reply.result) if raw else msgspec.json.decode(reply.result)


async def answer(writer: WriterSide, data: bytes) -> bytes:
    """The writer's side of one request: applied with ``writer``, the result or the error
    (class, code, message, field) as it travels back."""
    try:
        result = await _apply(writer, msgspec.json.decode(data, type=_Request))
        reply = _Reply(result=msgspec.Raw(_encode(result)))
    except AlarmdeskError as exc:
        reply = _Reply(_NULL, _Error(type(exc).__name__, exc.code, exc.message, exc.field))
    except msgspec.DecodeError:
        reply = _Reply(_NULL, _Error("InputError", "invalid_input", "a request not understood"))
    except Exception:
        log.exception("a request from another process failed on the writer")
        reply = _Reply(_NULL, _Error("WriterStopped", "writer_stopped", "the writer failed"))
    return _encode(reply)


async def _apply(writer: WriterSide, request: _Request) -> object:
    if not writer.writing():
        raise WriterStopped("this node no longer writes; try again in a few seconds")
    if request.kind == _SIGNALS:
        signals = msgspec.json.decode(request.body, type=list[SignalIn])
        return await writer.signals(signals, request.actor)
    if request.kind == _AUDIT and writer.audit is not None:
        await writer.audit(msgspec.json.decode(request.body, type=list[AuditEvent]))
        return None
    if request.kind == _RELOAD_TYPES and writer.reload_taxonomy is not None:
        await writer.reload_taxonomy()
        return None
    kind = _KINDS.get(request.kind)
    if kind is None:
        raise InputError(f"a request of an unknown kind: {request.kind[:40]!r}")
    if kind is c.UnitReport:
        report = msgspec.json.decode(request.body, type=c.UnitReport)
        return await writer.unit_report(report, request.actor)
    command = msgspec.json.decode(request.body, type=kind)
    return await writer.command(command, request.actor)


class WriterClient:
    """Asks the writer that runs elsewhere (another node, or the writer process of this
    machine) and returns its answer or raises its error; ``_send`` is the transport."""

    async def submit_command(self, command: c.Command, actor: Actor | None) -> dict[str, Any]:
        result: dict[str, Any] = await self._ask(type(command).__name__, command, actor)
        return result

    async def submit_unit_report(self, report: c.UnitReport, actor: Actor | None) -> dict[str, Any]:
        result: dict[str, Any] = await self._ask("UnitReport", report, actor)
        return result

    async def submit_signals(
        self, signals: Sequence[SignalIn], actor: Actor | None
    ) -> list[Receipt]:
        """Signals the writer commits before it answers, with their receipts."""
        raw = await self._ask(_SIGNALS, list(signals), actor, raw=True)
        return msgspec.json.decode(raw, type=list[Receipt])

    async def submit_audit(self, events: Sequence[AuditEvent]) -> None:
        """Audit entries the writer appends in its next transaction (the local link only)."""
        await self._ask(_AUDIT, list(events), None)

    async def reload_taxonomy(self) -> None:
        """The writer takes up the types in force now (the local link only)."""
        await self._ask(_RELOAD_TYPES, None, None)

    async def _ask(self, kind: str, body: object, actor: Actor | None, *, raw: bool = False) -> Any:
        return _result_of(await self._send(_ask_body(kind, body, actor)), raw=raw)

    async def _send(self, request: bytes) -> bytes:
        raise NotImplementedError


class CommandRelay(WriterClient):
    """Sends a standby's commands to the writer node; serves them on the writer node.

    Args:
        nc: the node's NATS connection (the intake log's).
        subject: ``<stream>.commands``.
        timeout: how long a standby waits for the writer's answer.
    """

    def __init__(self, nc: Client, subject: str, *, timeout: float = 10.0) -> None:
        self.nc = nc
        self.subject = subject
        self.timeout = timeout
        self._subscription: Any = None

    # -- a standby's side ---------------------------------------------------------------------

    async def _send(self, request: bytes) -> bytes:
        try:
            msg = await self.nc.request(self.subject, request, timeout=self.timeout)
        except NoRespondersError:
            raise WriterStopped("no node writes now; try again in a few seconds") from None
        except NatsTimeout:
            raise WriterStopped(
                "the writing node did not answer in time; look at the incident before acting again"
            ) from None
        except Exception as exc:  # NATS itself away
            why = type(exc).__name__
            raise WriterStopped(f"the writing node cannot be reached ({why})") from None
        data: bytes = msg.data
        return data

    # -- the writer's side --------------------------------------------------------------------

    async def serve(self, writer: WriterSide) -> None:
        """Answers the standbys' requests with ``writer`` (the node that took the lease)."""

        async def on_request(msg: Msg) -> None:
            reply = await answer(writer, msg.data)
            with contextlib.suppress(Exception):  # the standby gave up waiting
                await msg.respond(reply)

        await self.stop_serving()
        self._subscription = await self.nc.subscribe(self.subject, queue="writer", cb=on_request)
        await server_has_read(self.nc)  # from now on no standby hears "nobody"

    async def stop_serving(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
                await server_has_read(self.nc)  # from now on a standby hears "nobody" at once
