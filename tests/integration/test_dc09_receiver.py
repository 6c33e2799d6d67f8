"""The DC-09 receiver over real sockets, with the writer on real databases.

Frames come from tests/fixtures/dc09/frames.json (a test clock makes their timestamps
valid), from our own encoder, and from a dialler we did not write (dc09-spt, PyPI).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alarmdesk.intake.dc09 import Frame, FrameBuffer, encode_frame, load_code_map, parse_frame
from alarmdesk.intake.dc09.codec import crc16_arc
from alarmdesk.intake.dc09.receiver import Dc09Receiver, ReceiverSettings
from alarmdesk.intake.dc09.transport import Dc09Listeners, listening_socket
from alarmdesk.intake.devices import DeviceRegistry, device_from_row
from alarmdesk.intake.service import IntakeConfig, IntakeService
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from alarmdesk.store.intake_keys import recent_keys
from tests.conftest import IN_CI, REPO_ROOT, FakeClock

FIXTURE_TIME = datetime(2026, 9, 25, 14, 12, 10, tzinfo=UTC)  # 6 s after the fixtures' stamp
KEY_A = b"AAAAAAAAAAAAAAAA"
CODE_MAP = load_code_map()
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "dc09"

# Every test here but the pure ones below starts a receiver (sockets, a writer, a database).
pytestmark = pytest.mark.slow

DEVICES: list[dict[str, Any]] = [
    {
        "id": "panel-12345A",
        "kind": "panel",
        "site": "Warehouse 7",
        "lat": 50.1,
        "lon": 5.1,
        "zones": {"129": {"description": "Kitchen smoke detector", "lat": 50.11, "lon": 5.11}},
        "checkin_seconds": 90,
        "settings": {"account": "12345A"},
    },
    {
        "id": "panel-1234",
        "kind": "panel",
        "site": "Shop 1",
        "lat": 50.2,
        "lon": 5.2,
        "zones": {"1": "Front door"},
        "settings": {"account": "1234"},
    },
    {
        "id": "panel-5555",
        "kind": "panel",
        "site": "Office 5",
        "lat": 50.3,
        "lon": 5.3,
        "zones": {"15": "Back door"},
        "checkin_seconds": 90,
        "settings": {"account": "5555"},
    },
    {
        "id": "panel-7890",
        "kind": "panel",
        "site": "Depot",
        "zones": {},
        "checkin_seconds": 90,
        "settings": {"account": "7890"},
    },
    {
        "id": "panel-1111",
        "kind": "panel",
        "site": "Bank",
        "lat": 50.4,
        "lon": 5.4,
        "zones": {"501": "Vault"},
        "settings": {"account": "1111", "key_hex": KEY_A.hex()},
    },
]


def fixture_frames() -> dict[str, dict[str, Any]]:
    path = FIXTURES / "frames.json"
    return {f["name"].split(" (")[0].split(",")[0]: f for f in json.loads(path.read_text())}


def wire(entry: dict[str, Any]) -> bytes:
    return str(entry["frame"]).encode("latin-1")


class Panel:
    """A blocking TCP client that reads replies by DC-09 framing."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.buffer = FrameBuffer()
        self.replies: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, count: int = 1, timeout: float = 5.0) -> list[Frame]:
        deadline = time.monotonic() + timeout
        while len(self.replies) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(self.replies)} of {count} replies")
            self.sock.settimeout(left)
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed by the receiver")
            self.replies += [r for r in self.buffer.feed(chunk) if isinstance(r, bytes)]
        out, self.replies = self.replies[:count], self.replies[count:]
        return [parse_frame(r, KEY_A) for r in out]

    def nothing_within(self, seconds: float) -> bool:
        self.sock.settimeout(seconds)
        try:
            return self.sock.recv(4096) == b""  # b"": closed, which is not "nothing"
        except TimeoutError:
            return True

    def close(self) -> None:
        self.sock.close()


async def exchange(address: tuple[str, int], data: bytes, count: int = 1, **kw: Any) -> list[Frame]:
    def run() -> list[Frame]:
        panel = Panel(address)
        try:
            panel.send(data)
            return panel.read(count, **kw)
        finally:
            panel.close()

    return await asyncio.to_thread(run)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Polls ``condition`` (from a thread other than the receiver's) until true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.01)


def rows(engine: sa.Engine, table: sa.Table, *where: Any) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).where(*where).order_by(table.c.id)).mappings())


@pytest.fixture
def fixture_clock() -> FakeClock:
    return FakeClock(FIXTURE_TIME)


@pytest.fixture
async def start_receiver(services_factory, fixture_clock):
    """Starts alarmdesk with the DC-09 receiver on a free port; yields a factory."""
    made: list[IntakeService] = []

    async def make(url: str, devices: list[dict[str, Any]] = DEVICES, **settings: Any):
        loop = asyncio.get_running_loop()
        svc = services_factory(url, clock=fixture_clock, loop=loop)
        with svc.engine.begin() as conn:
            repo.upsert_devices(conn, devices)
        intake = IntakeService()
        settings.setdefault("dc09_port", 0)
        intake.start(svc, loop, IntakeConfig(**settings))
        made.append(intake)
        return svc, intake

    yield make
    for intake in made:
        await intake.aclose()


# -- the fixture frames -------------------------------------------------------------------------


async def test_fixture_frames_get_their_replies_and_acks_follow_the_commit(
    db_url, start_receiver
) -> None:
    frames = fixture_frames()
    svc, intake = await start_receiver(db_url)
    address = intake.tcp_address

    def stored(account: str) -> list[sa.RowMapping]:
        return rows(svc.engine, t.signals, t.signals.c.source_id == f"panel-{account}")

    # Contact ID fire alarm: ACK echoes the header; the signal is in the store when it comes.
    (ack,) = await exchange(address, wire(frames["spec example: Contact ID fire alarm"]))
    assert (ack.token, ack.seq, ack.receiver, ack.line, ack.account) == (
        "ACK",
        "9876",
        "579BDF",
        "789ABC",
        "12345A",
    )
    (fire,) = stored("12345A")
    assert fire["type_code"] == "ALRF" and fire["condition"] == "active"
    assert fire["location"]["zone"] == "129" and fire["location"]["lat"] == 50.11
    assert fire["location"]["site"] == "Warehouse 7"
    assert fire["payload"]["code"] == "110" and fire["payload"]["qualifier"] == "1"
    assert "Kitchen smoke detector" in fire["summary"]
    assert fire["incident_id"] is not None

    # SIA fire alarm, same account and zone: folds into the same incident.
    (ack,) = await exchange(address, wire(frames["spec example: SIA fire alarm zone 129"]))
    assert ack.token == "ACK"
    assert {r["incident_id"] for r in stored("12345A")} == {fire["incident_id"]}

    # Encrypted SIA burglary: *ACK, encrypted with the account's key, with receiver time.
    (ack,) = await exchange(address, wire(frames["encrypted SIA burglary"]))
    assert ack.token == "ACK" and ack.encrypted and ack.timestamp == FIXTURE_TIME
    (burglary,) = stored("1111")
    assert burglary["type_code"] == "ALRBS" and burglary["payload"]["partition"] == "1"

    # Two frames in one write (Ajax hubs): two ACKs, in order, both stored.
    acks = await exchange(address, wire(frames["two frames in one TCP write"]), count=2)
    assert [a.seq for a in acks] == ["0004", "0005"]
    assert {r["payload"]["zone"] for r in stored("1234")} >= {"003", "004"}

    # Bad CRC, wrong length, garbage: NAK with the receiver's time, nothing stored.
    before = len(rows(svc.engine, t.signals))
    for name in ("CRC corrupted", "length field wrong", "garbage"):
        (nak,) = await exchange(address, wire(frames[name]))
        assert nak.token == "NAK" and nak.timestamp == FIXTURE_TIME, name
    assert len(rows(svc.engine, t.signals)) == before

    # Link test: ACKed at once, a check-in, not stored.
    (ack,) = await exchange(address, wire(frames["link test"]))
    assert ack.token == "ACK" and ack.account == "7890"
    assert stored("7890") == []
    assert intake.supervisor is not None
    assert intake.supervisor.tracker.last_checkin("panel-7890") == FIXTURE_TIME.timestamp()

    # Every reply is counted by kind for /metrics (a *ACK is an ACK), and scraped as such.
    assert intake.receiver is not None
    replies = {k: v for k, v in intake.receiver.stats.items() if k.startswith("replies.")}
    assert replies == {"replies.ACK": 6, "replies.NAK": 3}
    svc.intake = intake  # as Services.start holds the intake it starts
    scraped = {m.name: m for m in svc.scraped()}
    (ack_sample,) = [
        s for s in scraped["alarmdesk_dc09_replies"].samples if s.labels == {"reply": "ACK"}
    ]
    assert ack_sample.value == 6


async def test_a_frame_split_over_many_writes_is_read_whole(sqlite_url, start_receiver) -> None:
    frames = fixture_frames()
    svc, intake = await start_receiver(sqlite_url)
    data = wire(frames["Contact ID burglary restore with timestamp"])

    def run() -> list[Frame]:
        panel = Panel(intake.tcp_address)
        try:
            for i in range(len(data)):
                panel.send(data[i : i + 1])
                time.sleep(0.001)
            return panel.read(1)
        finally:
            panel.close()

    (ack,) = await asyncio.to_thread(run)
    assert (ack.token, ack.seq, ack.account) == ("ACK", "0042", "5555")
    (restore,) = rows(svc.engine, t.signals, t.signals.c.source_id == "panel-5555")
    assert restore["condition"] == "restored" and restore["payload"]["zone"] == "015"


async def test_a_stale_encrypted_frame_gets_a_nak_with_receiver_time(
    sqlite_url, start_receiver
) -> None:
    frames = fixture_frames()
    svc, intake = await start_receiver(sqlite_url)
    (nak,) = await exchange(intake.tcp_address, wire(frames["stale timestamp"]))
    assert nak.token == "NAK" and nak.timestamp == FIXTURE_TIME
    assert rows(svc.engine, t.signals) == []


async def test_an_account_with_the_window_off_accepts_the_old_frame(
    sqlite_url, start_receiver
) -> None:
    frames = fixture_frames()
    devices = [d for d in DEVICES if d["id"] != "panel-1111"] + [
        {
            **next(d for d in DEVICES if d["id"] == "panel-1111"),
            "settings": {"account": "1111", "key_hex": KEY_A.hex(), "timestamp_window": None},
        }
    ]
    svc, intake = await start_receiver(sqlite_url, devices=devices)
    (ack,) = await exchange(intake.tcp_address, wire(frames["stale timestamp"]))
    assert ack.token == "ACK" and ack.encrypted
    (signal,) = rows(svc.engine, t.signals)
    assert signal["payload"]["panel_time"] == "2020-01-01T03:00:00+00:00"


async def test_a_receiver_window_can_be_narrowed(sqlite_url, start_receiver) -> None:
    frames = fixture_frames()  # the encrypted frame is 6 s old
    _, intake = await start_receiver(sqlite_url, dc09_timestamp_window=[-5, 5])
    (nak,) = await exchange(intake.tcp_address, wire(frames["encrypted SIA burglary"]))
    assert nak.token == "NAK"


# -- what is stored ----------------------------------------------------------------------------


def cid(account: str, seq: str, event: str, *, ts: datetime | None = None) -> bytes:
    return encode_frame(
        Frame(token="ADM-CID", seq=seq, account=account, data=f"#{account}|{event}", timestamp=ts)
    )


def sia(account: str, seq: str, event: str) -> bytes:
    return encode_frame(
        Frame(token="SIA-DCS", seq=seq, account=account, data=f"#{account}|{event}")
    )


async def test_a_restore_marks_the_incident_restored_without_closing_it(
    sqlite_url, start_receiver
) -> None:
    svc, intake = await start_receiver(sqlite_url)
    alarm, restore = cid("5555", "0001", "1130 01 015"), cid("5555", "0002", "3130 01 015")
    acks = await exchange(intake.tcp_address, alarm + restore, count=2)
    assert [a.token for a in acks] == ["ACK", "ACK"]
    signals = rows(svc.engine, t.signals)
    assert [s["condition"] for s in signals] == ["active", "restored"]
    (incident,) = rows(svc.engine, t.incidents)
    assert incident["type_code"] == "ALRBS" and incident["condition"] == "restored"
    assert incident["status"] == "new" and incident["signal_count"] == 2
    assert signals[1]["incident_id"] == incident["id"]


async def test_openings_and_periodic_tests_are_recorded_not_alarmed(
    sqlite_url, start_receiver
) -> None:
    svc, intake = await start_receiver(sqlite_url)
    frames = [
        sia("1234", "0001", "Nid3/OP"),
        cid("1234", "0002", "3401 01 003"),  # closing by user 3
        cid("1234", "0003", "1602 00 000"),  # periodic test
        sia("1234", "0004", "NRP"),
        cid("1234", "0005", "1140 00 001"),  # general alarm: no type in the map → UNCLASS
    ]
    acks = await exchange(intake.tcp_address, b"".join(frames), count=len(frames))
    assert all(a.token == "ACK" for a in acks)
    signals = rows(svc.engine, t.signals)
    assert [(s["type_code"], s["record_only"]) for s in signals] == [
        ("SIAOP", True),
        ("CID401", True),
        ("EQTEST", True),
        ("EQTEST", True),
        ("CID140", False),
    ]
    (incident,) = rows(svc.engine, t.incidents)
    assert incident["type_code"] == "UNCLASS"


async def test_an_unknown_account_is_kept_as_an_incident_and_acked(
    sqlite_url, start_receiver
) -> None:
    svc, intake = await start_receiver(sqlite_url)
    (ack,) = await exchange(intake.tcp_address, cid("9999", "0001", "1110 00 002"))
    assert ack.token == "ACK"
    (signal,) = rows(svc.engine, t.signals)
    assert signal["source_id"] == "panel-9999" and signal["type_code"] == "ALRF"
    assert signal["payload"]["unknown_account"] is True
    assert signal["summary"].startswith("Unknown DC-09 account 9999")
    (incident,) = rows(svc.engine, t.incidents)
    assert incident["category"] == "fire"
    # Its link tests: one record an hour, each ACKed.
    link = encode_frame(Frame(token="NULL", seq="0000", account="9999"))
    acks = await exchange(intake.tcp_address, link + link, count=2)
    assert [a.token for a in acks] == ["ACK", "ACK"]
    eqtrbl = rows(svc.engine, t.signals, t.signals.c.type_code == "EQTRBL")
    assert len(eqtrbl) == 1


async def test_an_encrypted_frame_from_an_unknown_account_is_naked_and_recorded(
    sqlite_url, start_receiver
) -> None:
    svc, intake = await start_receiver(sqlite_url)
    frame = Frame(
        token="SIA-DCS",
        seq="0001",
        account="2222",
        data="#2222|NBA1",
        timestamp=FIXTURE_TIME,
        encrypted=True,
    )
    wire_frame = encode_frame(frame, key=KEY_A)
    naks = await exchange(intake.tcp_address, wire_frame + wire_frame, count=2)
    assert [n.token for n in naks] == ["NAK", "NAK"]  # we cannot read it, so no *ACK
    (record,) = rows(svc.engine, t.signals)  # one record for the account, not per frame
    assert record["source_id"] == "panel-2222" and record["type_code"] == "EQTRBL"
    assert record["payload"]["readable"] is False


@pytest.mark.parametrize(
    ("account", "key", "why"),
    [
        ("1234", KEY_A, "no key is set for it"),  # panel-1234 has no key here
        ("1111", bytes(16), "its key does not decrypt"),  # panel-1111's key is KEY_A
        ("1111", None, "sends plaintext, and its key asks for encryption"),
    ],
)
async def test_a_known_panel_whose_frames_cannot_be_read_is_an_equipment_fault(
    sqlite_url, start_receiver, caplog, account, key, why
) -> None:
    """A registered panel that encrypts while the centre has no key for it (or the wrong
    one, or sends plaintext where its key asks for encryption) got a NAK or a DUH for every
    alarm for ever, and nothing told an operator: once an hour, an EQTRBL record of it."""
    svc, intake = await start_receiver(sqlite_url)
    frame = Frame(
        token="SIA-DCS",
        seq="0001",
        account=account,
        data=f"#{account}|NBA1",
        timestamp=FIXTURE_TIME,
        encrypted=key is not None,
    )
    wire_frame = encode_frame(frame, key=key)
    replies = await exchange(intake.tcp_address, wire_frame + wire_frame, count=2)
    assert [r.token for r in replies] == ["DUH" if key is None else "NAK"] * 2
    (record,) = rows(svc.engine, t.signals)  # one record, not one per frame
    assert record["source_id"] == f"panel-{account}" and record["type_code"] == "EQTRBL"
    assert why in record["summary"]
    assert record["location"]["site"] in ("Shop 1", "Bank")
    (incident,) = rows(svc.engine, t.incidents)
    assert incident["type_code"] == "EQTRBL"
    assert any(why in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


async def test_every_duh_is_logged_with_account_and_sequence(
    sqlite_url, start_receiver, caplog
) -> None:
    """A frame refused for good (DUH: the panel stops sending it) is logged at error level,
    whatever refused it; a NUL in the data was only counted."""
    _, intake = await start_receiver(sqlite_url)
    body = b'"SIA-DCS"0070L0#1234[#1234|NBA0\x001]'
    frame = b"\n%04X%04X%s\r" % (crc16_arc(body), len(body), body)
    (duh,) = await exchange(intake.tcp_address, frame)
    assert duh.token == "DUH"
    assert any(
        "1234" in r.getMessage() and "0070" in r.getMessage() and r.levelname == "ERROR"
        for r in caplog.records
    )


async def test_a_panel_in_test_mode_is_recorded_not_alarmed(sqlite_url, start_receiver) -> None:
    devices = [
        {**d, "settings": {**d["settings"], "test_mode": True}} if d["id"] == "panel-1234" else d
        for d in DEVICES
    ]
    svc, intake = await start_receiver(sqlite_url, devices=devices)
    (ack,) = await exchange(intake.tcp_address, cid("1234", "0001", "1110 00 001"))
    assert ack.token == "ACK"
    (signal,) = rows(svc.engine, t.signals)
    assert signal["record_only"] is True and signal["payload"]["test_mode"] is True
    assert rows(svc.engine, t.incidents) == []


async def test_the_account_may_come_only_inside_the_data(sqlite_url, start_receiver) -> None:
    svc, intake = await start_receiver(sqlite_url)
    frame = encode_frame(Frame(token="SIA-DCS", seq="0003", line="1", data="#1234|NBA1"))
    (ack,) = await exchange(intake.tcp_address, frame)
    assert ack.token == "ACK" and ack.account is None
    (signal,) = rows(svc.engine, t.signals)
    assert signal["source_id"] == "panel-1234" and signal["location"]["site"] == "Shop 1"


async def test_unknown_accounts_get_a_duh_when_configured_so(sqlite_url, start_receiver) -> None:
    svc, intake = await start_receiver(sqlite_url, ack_unknown_accounts=False)
    (duh,) = await exchange(intake.tcp_address, cid("9999", "0001", "1110 00 002"))
    assert duh.token == "DUH" and duh.seq == "0001"
    assert len(rows(svc.engine, t.signals)) == 1  # kept all the same


async def test_a_resend_is_acked_and_stored_once(sqlite_url, start_receiver, fixture_clock) -> None:
    svc, intake = await start_receiver(sqlite_url)
    frame = cid("1234", "0007", "1130 01 001", ts=FIXTURE_TIME)
    (first,) = await exchange(intake.tcp_address, frame)
    fixture_clock.advance(seconds=10)
    # The panel resends with a refreshed timestamp: still the same message.
    again = cid("1234", "0007", "1130 01 001", ts=fixture_clock.now.replace(microsecond=0))
    second, third = await exchange(intake.tcp_address, frame + again, count=2)
    assert first.token == second.token == third.token == "ACK"
    assert len(rows(svc.engine, t.signals)) == 1


@pytest.mark.parametrize("stamped", [False, True], ids=["no timestamp", "refreshed timestamp"])
async def test_a_resend_after_a_restart_is_not_stored_twice(
    db_url, start_receiver, fixture_clock, stamped
) -> None:
    svc, intake = await start_receiver(db_url)

    def frame() -> bytes:
        ts = fixture_clock.now.replace(microsecond=0) if stamped else None
        return cid("1234", "0031", "1130 01 001", ts=ts)

    # Committed; the panel never saw this ACK (we went down), so it resends after the restart.
    (ack,) = await exchange(intake.tcp_address, frame())
    assert ack.token == "ACK"
    await intake.aclose()
    fixture_clock.advance(seconds=75)  # another minute of arrival, within resend_seconds

    restarted = IntakeService()
    restarted.start(svc, asyncio.get_running_loop(), IntakeConfig(dc09_port=0))
    try:
        (again,) = await exchange(restarted.tcp_address, frame())
        assert again.token == "ACK"
        (signal,) = rows(svc.engine, t.signals)
        assert signal["payload"]["seq"] == "0031"
        with svc.engine.connect() as conn:  # what the restart read, one row per query
            stored = recent_keys(conn, "dc09:", FIXTURE_TIME, batch=1)
        assert [k.idempotency_key for k in stored] == [signal["idempotency_key"]]
        # A new message (other data, same sequence) is still a new signal.
        (other,) = await exchange(restarted.tcp_address, cid("1234", "0031", "1130 01 002"))
        assert other.token == "ACK" and len(rows(svc.engine, t.signals)) == 2
    finally:
        await restarted.aclose()


async def test_a_frame_that_is_not_committed_is_not_acked(sqlite_url, start_receiver) -> None:
    svc, intake = await start_receiver(sqlite_url)
    svc.writer.stop()

    def run() -> tuple[bool, list[Frame]]:
        panel = Panel(intake.tcp_address)
        try:
            panel.send(cid("1234", "0001", "1130 01 001"))
            silent = panel.nothing_within(0.5)
            panel.send(b"\nHELLO\r")  # the connection is still served
            return silent, panel.read(1)
        finally:
            panel.close()

    silent, (nak,) = await asyncio.to_thread(run)
    assert silent and nak.token == "NAK"
    assert intake.receiver is not None
    assert intake.receiver.stats["store_failures"] == 1


async def test_a_malformed_frame_never_closes_other_connections(sqlite_url, start_receiver) -> None:
    _, intake = await start_receiver(sqlite_url)

    def run() -> list[str]:
        good, bad = Panel(intake.tcp_address), Panel(intake.tcp_address)
        try:
            bad.send(b"\x00\xff\n\r\n" + b"x" * 5000 + b"\r" + bytes(range(256)))
            good.send(sia("1234", "0001", "NBA1"))
            (ack,) = good.read(1)
            bad.send(sia("1234", "0002", "NBA2"))
            # NAKs: "\n\r" (empty), the 5000-byte frame, "\n\x0b\x0c\r" in range(256); ACK
            replies = bad.read(4)
            return [ack.token] + [r.token for r in replies]
        finally:
            good.close()
            bad.close()

    assert await asyncio.to_thread(run) == ["ACK", "NAK", "NAK", "NAK", "ACK"]


async def test_a_silent_connection_is_closed_after_the_idle_timeout(
    sqlite_url, start_receiver
) -> None:
    _, intake = await start_receiver(sqlite_url, dc09_idle_timeout_seconds=1.0)

    def run() -> float:
        panel = Panel(intake.tcp_address)
        started = time.monotonic()
        try:
            panel.sock.settimeout(10)
            assert panel.sock.recv(4096) == b""  # closed by the receiver, nothing sent
            return time.monotonic() - started
        finally:
            panel.close()

    assert 0.9 <= await asyncio.to_thread(run) < 5
    assert intake.receiver is not None and intake.receiver.stats["idle_closed"] == 1


async def test_a_frame_trickled_byte_by_byte_past_the_frame_timeout_is_cut_off(
    sqlite_url, start_receiver
) -> None:
    svc, intake = await start_receiver(
        sqlite_url, dc09_idle_timeout_seconds=5.0, dc09_frame_timeout_seconds=1.0
    )
    data = cid("1234", "0001", "1130 01 001")

    def run() -> bool:
        panel = Panel(intake.tcp_address)
        try:
            # Never silent for the idle timeout, but the frame never ends in time.
            for byte in data[:-1]:
                panel.send(bytes([byte]))
                time.sleep(0.1)
            return False
        except OSError:  # reset by the receiver
            return True
        finally:
            panel.close()

    assert await asyncio.to_thread(run)
    assert intake.receiver is not None and intake.receiver.stats["frame_timeouts"] == 1
    assert rows(svc.engine, t.signals) == []


async def test_dc09_over_udp(sqlite_url, start_receiver) -> None:
    frames = fixture_frames()
    svc, intake = await start_receiver(sqlite_url)
    assert intake.udp_address is not None

    def run() -> list[Frame]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(wire(frames["spec example: SIA fire alarm zone 129"]), intake.udp_address)
            reply, _ = s.recvfrom(4096)
            s.sendto(b"\nHELLO\r", intake.udp_address)
            nak, _ = s.recvfrom(4096)
            return [parse_frame(reply), parse_frame(nak)]

    ack, nak = await asyncio.to_thread(run)
    assert (ack.token, ack.seq, nak.token) == ("ACK", "9876", "NAK")
    assert len(rows(svc.engine, t.signals)) == 1


async def test_a_taken_port_fails_start_up(sqlite_url, services_factory, fixture_clock) -> None:
    taken = listening_socket("127.0.0.1", 0, socket.SOCK_STREAM)
    try:
        svc = services_factory(sqlite_url, clock=fixture_clock, loop=asyncio.get_running_loop())
        intake = IntakeService()
        with pytest.raises(OSError, match="in use"):
            intake.start(
                svc,
                asyncio.get_running_loop(),
                IntakeConfig(dc09_port=taken.getsockname()[1]),
            )
    finally:
        taken.close()


# -- a dialler we did not write -----------------------------------------------------------------


def dc09_spt_module() -> Any:
    try:
        from dc09_spt import dc09_spt  # type: ignore[import-not-found]
    except ImportError:
        if IN_CI:
            pytest.fail("dc09-spt is not installed (pip install --no-deps dc09-spt pycryptodome)")
        pytest.skip("dc09-spt is not installed")
    return dc09_spt  # the module dc09_spt.dc09_spt, whose class is dc09_spt


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_the_dc09_spt_dialler_is_heard(transport, sqlite_url, start_receiver) -> None:
    dc09_spt = dc09_spt_module()
    svc, intake = await start_receiver(sqlite_url)
    host, port = intake.tcp_address

    def run() -> dict[str, Any]:
        # dc09-spt writes the sequence number in hex ('{0:04X}'): from message 10 on
        # ("000A") its frames break DC-09's decimal grammar. Nine messages stay within it.
        spt = dc09_spt.dc09_spt("1234")
        spt.set_path("main", "primary", host, port, type=transport)
        spt.send_msg("SIA", {"code": "BA", "zone": 1, "area": 1})
        spt.send_msg("CID", {"code": "130", "q": "3", "zone": 1, "area": 1})
        spt.send_msg("SIA", {"code": "OP", "user": 3, "area": 1})
        deadline = time.monotonic() + 10
        while spt.notSent() or spt.state().get("send active"):
            if time.monotonic() > deadline:
                raise TimeoutError(spt.state())
            time.sleep(0.05)
        # Its poll (link test) uses its own transfer path: one round trip.
        path = spt.tpaths["main"]["primary"]["path"]
        polled = spt.transfer_msg(0, "NULL", "]", path)
        return {"state": spt.state(), "polled": polled}

    result = await asyncio.to_thread(run)
    assert result["state"]["msgs sent"] == 3 and result["polled"] is True
    signals = rows(svc.engine, t.signals)
    assert [(s["type_code"], s["condition"], s["record_only"]) for s in signals] == [
        ("ALRBS", "active", False),
        ("ALRBS", "restored", False),
        ("SIAOP", "active", True),
    ]
    (incident,) = rows(svc.engine, t.incidents)
    assert incident["condition"] == "restored"


# -- random bytes never crash the receiver ---------------------------------------------------------


class _MemorySink:
    def __init__(self) -> None:
        self.signals: list[Any] = []

    async def submit_signals(self, signals: Any) -> list[Any]:
        self.signals += signals
        return [None] * len(signals)


@pytest.fixture(scope="module")
def live_receiver() -> Iterator[Dc09Receiver]:
    """A receiver on its own loop in a thread, storing into memory (fast enough to fuzz)."""
    loop = asyncio.new_event_loop()
    registry = DeviceRegistry([device_from_row(d) for d in DEVICES])
    receiver = Dc09Receiver(
        _MemorySink(),
        registry,
        clock=lambda: FIXTURE_TIME,
        settings=ReceiverSettings(),
    )
    tcp = listening_socket("127.0.0.1", 0, socket.SOCK_STREAM)
    udp = listening_socket("127.0.0.1", tcp.getsockname()[1], socket.SOCK_DGRAM)
    receiver.address = tcp.getsockname()  # type: ignore[attr-defined]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    listeners = Dc09Listeners(receiver)
    asyncio.run_coroutine_threadsafe(listeners.start_tcp(tcp), loop).result(5)
    asyncio.run_coroutine_threadsafe(listeners.start_udp(udp), loop).result(5)
    yield receiver

    async def shut() -> None:
        listeners.close()
        await listeners.wait_closed()

    asyncio.run_coroutine_threadsafe(shut(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


_seq = iter(range(10**6))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    garbage=st.binary(max_size=700)
    | st.lists(
        st.sampled_from(
            [b"\n", b"\r", b'"SIA-DCS"', b"[", b"]", b"#1234", b"0000", b"_", b"|", b"\xff"]
        ),
        max_size=40,
    ).map(b"".join)
)
def test_random_bytes_never_crash_the_receiver(live_receiver, garbage: bytes) -> None:
    address = live_receiver.address  # type: ignore[attr-defined]
    seq = f"{next(_seq) % 10000:04d}"
    panel = Panel(address)
    try:
        panel.send(garbage)
        panel.send(sia("1234", seq, "NBA1"))
        deadline = time.monotonic() + 5
        while True:  # NAKs for whatever the garbage framed, then our ACK
            (reply,) = panel.read(1, timeout=max(0.1, deadline - time.monotonic()))
            if reply.token == "ACK":
                assert reply.seq == seq
                break
    finally:
        panel.close()
    handled = live_receiver.stats["udp_datagrams"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(garbage or b"\n", address)
    wait_for(lambda: live_receiver.stats["udp_datagrams"] > handled, "the datagram to be handled")
    assert live_receiver.stats["errors"] == 0


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_handling_any_bytes_returns_a_reply_or_nothing(raw: bytes) -> None:
    receiver = Dc09Receiver(
        _MemorySink(),
        DeviceRegistry([device_from_row(d) for d in DEVICES]),
        clock=lambda: FIXTURE_TIME,
        code_map=CODE_MAP,
    )
    reply = asyncio.run(receiver.handle(b"\n" + raw + b"\r"))
    if reply is not None:
        parse_frame(reply, KEY_A)  # always a frame we can read back


# -- supervision ---------------------------------------------------------------------------------


async def test_a_silent_panel_raises_a_communication_failure_that_survives_a_restart(
    sqlite_url, start_receiver, fixture_clock
) -> None:
    svc, intake = await start_receiver(sqlite_url)
    link = encode_frame(Frame(token="NULL", seq="0000", account="7890"))
    await exchange(intake.tcp_address, link)
    fixture_clock.advance(seconds=121)  # 90 s interval + 30 s grace
    assert intake.supervisor is not None
    await intake.supervisor.run_once()
    eqcomm = rows(svc.engine, t.incidents, t.incidents.c.type_code == "EQCOMM")
    # panel-7890 went silent; panel-12345A and panel-5555 never checked in at all
    assert {i["source_id"] for i in eqcomm} == {"panel-7890", "panel-12345A", "panel-5555"}
    assert {i["condition"] for i in eqcomm} == {"active"}
    await intake.aclose()

    restarted = IntakeService()
    restarted.start(svc, asyncio.get_running_loop(), IntakeConfig(dc09_port=0))
    try:
        sup = restarted.supervisor
        assert sup is not None and sup.tracker.is_failed("panel-7890")
        fixture_clock.advance(minutes=10)
        assert await sup.run_once() == 0  # known missing: no second incident
        await exchange(restarted.tcp_address, link)
        # The supervision task stores the restore in the background.
        for _ in range(250):
            if sup.stats.restored:
                break
            await asyncio.sleep(0.02)
        (restored,) = rows(
            svc.engine,
            t.incidents,
            t.incidents.c.type_code == "EQCOMM",
            t.incidents.c.condition == "restored",
        )
        assert restored["source_id"] == "panel-7890" and restored["status"] == "new"
    finally:
        await restarted.aclose()
