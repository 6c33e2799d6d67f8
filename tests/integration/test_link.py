"""The link between the writer process and its HTTP workers (bus/link.py), over a real Unix
socket: requests and their answers or errors, events to every worker, and every way the link
can end or be abused."""

from __future__ import annotations

import asyncio
import struct
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alarmdesk.bus import link as link_mod
from alarmdesk.bus.commands import WriterSide
from alarmdesk.bus.hub import Hub
from alarmdesk.bus.link import LinkClient, LinkServer
from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import PayloadTooLarge, VersionConflict, WriterStopped
from alarmdesk.domain.signal import Receipt, SignalIn, SourceKind
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation

pytestmark = pytest.mark.slow  # binds sockets

ACTOR = Actor("user:7", "operator", "ab" * 8, "10.0.0.7")
AT = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
SECRET = "s3cret-of-this-pool"


class Writer:
    """The writer process's entry points, recording what reached them."""

    def __init__(self) -> None:
        self.got: list[Any] = []
        self.writing = True
        self.hold: asyncio.Event | None = None  # set: requests wait for it

    def side(self) -> WriterSide:
        return WriterSide(
            lambda: self.writing,
            self.command,
            self.unit_report,
            self.signals,
            self.audit,
            self.reload,
        )

    async def command(self, cmd: c.Command, actor: Actor | None) -> dict[str, Any]:
        self.got.append((cmd, actor))
        if isinstance(cmd, c.Close):
            raise VersionConflict("someone else acted first")
        return {"id": cmd.incident_id, "status": "acknowledged", "note": "<b>x</b>"}

    async def unit_report(self, report: c.UnitReport, actor: Actor | None) -> dict[str, Any]:
        self.got.append((report, actor))
        return {"id": report.unit_id}

    async def signals(self, batch: Sequence[SignalIn], actor: Actor | None) -> list[Receipt]:
        if self.hold is not None:
            await self.hold.wait()
        self.got.append((list(batch), actor))
        return [Receipt(41 + i, 9, s.idempotency_key or "k", AT) for i, s in enumerate(batch)]

    async def audit(self, events: Sequence[AuditEvent]) -> None:
        self.got.append(list(events))

    async def reload(self) -> None:
        self.got.append("reload")


def signal_in(key: str, summary: str = "<script>x</script>") -> SignalIn:
    return SignalIn(
        source_kind=SourceKind.CALL,
        source_id="ct-1",
        type_code="FSTRU",
        occurred_at=AT,
        summary=summary,
        idempotency_key=key,
    )


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Writer, LinkServer, Hub, Path]]:
    with tempfile.TemporaryDirectory(prefix="adk-link-") as d:
        path = Path(d) / "link.sock"
        writer, hub = Writer(), Hub()
        server = LinkServer(path, SECRET, writer.side(), hub)
        await server.start()
        try:
            yield writer, server, hub, path
        finally:
            await server.close()


async def connected(path: Path, secret: str = SECRET) -> tuple[LinkClient, Hub]:
    client, hub = LinkClient(path, secret), Hub()
    await client.connect(hub)
    return client, hub


async def until(check: Any) -> None:
    deadline = asyncio.get_running_loop().time() + 5.0
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.01)


async def test_requests_reach_the_writer_and_answers_and_errors_come_back(pair) -> None:
    writer, _, _, path = pair
    client, _ = await connected(path)
    try:
        receipts = await client.submit_signals([signal_in("a"), signal_in("b", "a\u2028b")], ACTOR)
        assert [r.signal_id for r in receipts] == [41, 42]
        assert writer.got[-1] == ([signal_in("a"), signal_in("b", "a\u2028b")], ACTOR)
        dispatch = c.Dispatch(9, "user:7", 3, frozenset({"fire"}), ("E1",), ("E1", "E2"))
        view = await client.submit_command(dispatch, ACTOR)
        assert view == {"id": 9, "status": "acknowledged", "note": "<b>x</b>"}
        assert writer.got[-1] == (dispatch, ACTOR)
        with pytest.raises(VersionConflict) as conflict:
            await client.submit_command(c.Close(9, "user:7", 4), ACTOR)
        assert conflict.value.code == "version_conflict"
        reading = AuditEvent(ACTOR, Operation.CONSULT, "incident", "9")
        await client.submit_audit([reading])
        assert writer.got[-1] == [reading]
        await client.reload_taxonomy()
        assert writer.got[-1] == "reload"
        # many at once, answered by id whatever order they finish in
        answers = await asyncio.gather(
            *(client.submit_signals([signal_in(f"m{i}")], ACTOR) for i in range(50))
        )
        assert [a[0].idempotency_key for a in answers] == [f"m{i}" for i in range(50)]
        writer.writing = False  # e.g. stopping: refused, not applied
        with pytest.raises(WriterStopped):
            await client.submit_signals([signal_in("late")], ACTOR)
    finally:
        await client.close()


async def test_every_commit_reaches_every_worker_s_consoles(pair) -> None:
    _, server, hub, path = pair
    one, hub1 = await connected(path)
    two, hub2 = await connected(path)
    await until(lambda: len(server.peers) == 2)
    subs = [h.subscribe(["west"]) for h in (hub1, hub2)]
    hub.offer([(1, ("west",), b"id: 1\ndata: {}\n\n"), (2, ("east",), b"id: 2\n\n")])
    hub.offer([(3, ("west", "east"), b"id: 3\n\n")])
    for sub, h in zip(subs, (hub1, hub2), strict=True):
        assert await asyncio.wait_for(sub.queue.get(), 5) == [(1, b"id: 1\ndata: {}\n\n")]
        assert await asyncio.wait_for(sub.queue.get(), 5) == [(3, b"id: 3\n\n")]
        assert h.last_id == 3
    await one.close()
    await two.close()


async def test_a_commit_larger_than_a_message_goes_in_order_in_several(pair, monkeypatch) -> None:
    _, server, hub, path = pair
    monkeypatch.setattr(link_mod, "MAX_MESSAGE", 4096)
    client, whub = await connected(path)
    await until(lambda: server.peers)
    sub = whub.subscribe()
    frames = [(i, ("d",), b"x" * 1000) for i in range(1, 21)]
    hub.offer(frames)
    got: list[int] = []
    while len(got) < 20:
        got += [i for i, _ in await asyncio.wait_for(sub.queue.get(), 5)]
    assert got == list(range(1, 21)) and not sub.dropped
    await client.close()


async def test_a_wrong_secret_is_closed_and_gets_nothing(pair) -> None:
    writer, server, _, path = pair
    with pytest.raises(WriterStopped):  # the worker's start-up fails
        await connected(path, secret="guessed")
    assert writer.got == [] and not server.peers


async def test_workers_hear_whether_the_writer_runs_and_its_backlog(pair, monkeypatch) -> None:
    writer, server, _, path = pair
    monkeypatch.setattr(link_mod, "STATUS_SECONDS", 0.05)
    await server.close()  # again, with a backlog to tell and the shorter period
    waiting = [0]
    server = LinkServer(path, SECRET, writer.side(), Hub(), backlog=lambda: waiting[0])
    await server.start()
    try:
        client, _ = await connected(path)
        assert client.writing and client.backlog == 0  # said at once, before any request
        waiting[0], writer.writing = 1234, False
        await until(lambda: client.backlog == 1234 and not client.writing)
        await client.close()
    finally:
        await server.close()


async def test_garbage_and_oversized_messages_end_that_link_only(pair) -> None:
    _, server, _, path = pair
    good, _ = await connected(path)
    await until(lambda: len(server.peers) == 1)
    for junk in (
        b"\x00\x00\x00\x05hello",  # not a message
        struct.pack(">I", link_mod.MAX_MESSAGE + 1),  # longer than any may be
    ):
        reader, w = await asyncio.open_unix_connection(str(path))
        w.write(_hello() + junk)
        await w.drain()
        got = await asyncio.wait_for(reader.read(), 5)  # to the end: closed by the writer process
        assert link_mod._decode(got[4:]) == link_mod.Status(True, 0)  # its greeting, no more
        w.close()
    # the worker that behaves is still served
    assert (await good.submit_signals([signal_in("ok")], ACTOR))[0].idempotency_key == "ok"
    await good.close()


async def test_a_request_too_large_for_the_link_is_refused_and_the_link_stays(
    pair, monkeypatch
) -> None:
    writer, _, _, path = pair
    monkeypatch.setattr(link_mod, "MAX_MESSAGE", 4096)  # as if [limits] allowed more
    client, _ = await connected(path)
    with pytest.raises(PayloadTooLarge):
        await client.submit_signals([signal_in("big", "x" * 5000)], ACTOR)
    assert client.up and writer.got == []
    assert (await client.submit_signals([signal_in("small")], ACTOR))[0].signal_id == 41
    await client.close()


def _hello() -> bytes:
    return link_mod.frame(link_mod.Hello(SECRET, 1))


async def test_a_worker_loses_its_writer_process(pair) -> None:
    writer, server, _, path = pair
    writer.hold = asyncio.Event()
    client, _ = await connected(path)
    lost: list[bool] = []
    client.on_lost = lambda: lost.append(True)
    pending = asyncio.create_task(client.submit_signals([signal_in("in-flight")], ACTOR))
    await until(lambda: server._tasks)
    for peer in list(server.peers):  # the writer process dies
        peer.writer.transport.abort()
    with pytest.raises(WriterStopped):
        await pending  # 503: the client resends it; its key makes that safe
    assert lost == [True] and not client.up
    with pytest.raises(WriterStopped):
        await client.submit_command(c.Acknowledge(1, "user:7"), ACTOR)
    writer.hold.set()


async def test_a_worker_that_does_not_read_its_events_is_cut_off(pair, monkeypatch) -> None:
    _, server, hub, path = pair
    monkeypatch.setattr(link_mod, "SEND_BUFFER_LIMIT", 64 * 1024)
    _, w = await asyncio.open_unix_connection(str(path))  # says hello, then never reads
    w.write(_hello())
    await w.drain()
    await until(lambda: server.peers)
    for i in range(1, 400):
        hub.offer([(i, ("d",), b"y" * 4096)])
        if not server.peers:
            break
        await asyncio.sleep(0)
    await until(lambda: not server.peers)  # cut off; its pool starts it again
    w.close()
