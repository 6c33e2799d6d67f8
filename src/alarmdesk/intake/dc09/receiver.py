"""The SIA DC-09 receiver: what a frame becomes (stored signals) and what it is answered.

The listeners and connections that bring frames here over TCP and UDP are in
:mod:`alarmdesk.intake.dc09.transport`; this module never touches a socket.

One frame, start to end (:meth:`Dc09Receiver.handle`):

1. :func:`~alarmdesk.intake.dc09.handling.handle_frame` checks length and CRC, decrypts with
   the account's key and decides: accept, reject (NAK / DUH) or ignore.
2. The timestamp is checked against the account's window (``timestamp_window`` in the
   device settings; ``null`` turns it off) or the receiver's default (+20 s / -40 s).
3. Any accepted frame of a registered account is a check-in (supervision, in memory).
4. Events are classified with the code map (data: ``alarmdesk/data/dc09_codes.tsv``),
   located through the account's zones, minimised, and stored through the writer.
5. Only once the writer has committed is the ACK written (the durability contract).

What is stored, and why link tests are not: a link test (``NULL``, or an event frame with
empty data) carries no event; the ACK only tells the panel its path works. A centre with
100,000 panels receives ~1,000 of them a second: storing each would be 86 million rows a
day that say "still there". They update supervision in memory and are ACKed at once (there
is nothing to commit). What proves life durably are the stored signals: every event and the
periodic tests (Contact ID 602, SIA RP) that panels send hourly or daily, stored as
record-only signals. After a restart supervision gives every device a fresh interval
(the silence was ours), see :mod:`alarmdesk.intake.supervision`.

Frames from unknown accounts are never dropped: events are stored with their classified type
(a fire alarm from an unregistered panel is still a fire) marked ``unknown_account``, link
tests and undecryptable frames as one ``EQTRBL`` record per account per hour; the panel gets
an ACK after the commit, or a DUH when ``ack_unknown`` is off.

Policy (what is accepted from real panels that deviate from DC-09, what is answered DUH
because it can never be stored): docs/dc09.md.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from alarmdesk.domain.errors import InputError
from alarmdesk.domain.signal import MAX_FUTURE, Location, SignalIn, SourceKind, validate
from alarmdesk.intake.dc09.codec import build_duh
from alarmdesk.intake.dc09.crypto import pad_length
from alarmdesk.intake.dc09.errors import Dc09Error, DecryptFailed, EncryptionRequired
from alarmdesk.intake.dc09.events import (
    AlarmEvent,
    CodeMap,
    EventKind,
    classify,
    events_from_frame,
    load_code_map,
)
from alarmdesk.intake.dc09.handling import Verdict, handle_frame, reject
from alarmdesk.intake.dc09.model import ACCOUNT_MISMATCH, DEFAULT_WINDOW, Frame, TimestampWindow
from alarmdesk.intake.dc09.records import Record, TroubleRecords
from alarmdesk.intake.dc09.timestamps import check_frame_timestamp, format_timestamp
from alarmdesk.intake.devices import (
    USE_DEFAULT,
    Device,
    DeviceRegistry,
    SignalSink,
    UseDefault,
    normalise_account,
    store,
)
from alarmdesk.safeguards.minimise import minimise

log = logging.getLogger(__name__)

# An account whose key_hex is unusable gets this key: nothing an attacker can know, so every
# encrypted frame fails (NAK) and every plaintext frame is refused (DUH) until it is fixed.
_REFUSE_KEY = secrets.token_bytes(16)
# The *ACK's pad. The codec's default draws it with one secrets.choice() per byte, which
# took 28 % of the receiver's loop under load; one token_hex() call is as unpredictable for
# this purpose (hex digits are never "|", "[", "]" or "#"). An *ACK's content is "]_" and
# the 19-character timestamp, so its pad has a fixed length (1 to 16 bytes).
_ACK_PAD = pad_length(len("]_" + format_timestamp(datetime(2000, 1, 1, tzinfo=UTC))))
_RECORD_ONLY_KINDS = frozenset({EventKind.TEST, EventKind.OPEN_CLOSE})
_MAX_DEVIATION_ACCOUNTS = 100_000
_KEY_PREFIX = "dc09:"  # every idempotency key this receiver writes


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """How the receiver answers.

    Attributes:
        window: the default timestamp window (DC-09: +20 s / -40 s); ``None`` = off.
        check_plain: check timestamps of plaintext frames too (DC-09 requires it only for
            encrypted frames; many plaintext panels have wrong clocks).
        ack_unknown: ACK frames of unknown accounts once stored; otherwise DUH.
        max_in_flight: frames of one connection handled at once (then reading pauses).
        idle_timeout: seconds without a byte after which a TCP connection is closed.
        frame_timeout: seconds a frame may take from its first byte to its <CR> on TCP;
            past that the connection is closed (the bytes held are dropped, unanswered).
        unknown_record_seconds: at most one record per unknown account's link test in this.
        resend_seconds: a frame repeated (same account, sequence and data) within this is
            the same message, even if its timestamp was refreshed.
        udp_max_in_flight: datagrams handled at once; more are dropped (the panel retries).
    """

    window: TimestampWindow | None = DEFAULT_WINDOW
    check_plain: bool = False
    ack_unknown: bool = True
    max_in_flight: int = 16
    idle_timeout: float = 90.0
    frame_timeout: float = 30.0
    unknown_record_seconds: float = 3600.0
    resend_seconds: float = 120.0
    udp_max_in_flight: int = 1000


class CheckinSink(Protocol):
    """What the receiver tells about check-ins (the supervisor implements it)."""

    def checkin(self, device_id: str) -> None: ...


class _NoSupervision:
    def checkin(self, device_id: str) -> None:
        return None


class Dc09Receiver:
    """Turns DC-09 frames into stored signals and replies. Run on the application's loop.

    Args:
        sink: the writer (anything with ``submit_signals``).
        registry: the device registry; replace the attribute to reload.
        clock: the receiver clock (aware datetimes), for windows, NAK and *ACK timestamps.
        supervision: told about every check-in of a registered account.
        code_map: the event code map; default the packaged one.
    """

    def __init__(
        self,
        sink: SignalSink,
        registry: DeviceRegistry,
        *,
        clock: Callable[[], datetime],
        settings: ReceiverSettings | None = None,
        supervision: CheckinSink | None = None,
        code_map: CodeMap | None = None,
    ) -> None:
        self.sink = sink
        self.registry = registry
        self.clock = clock
        self.settings = settings or ReceiverSettings()
        self.supervision: CheckinSink = supervision or _NoSupervision()
        self.code_map = code_map or load_code_map()
        self.stats: Counter[str] = Counter()
        #: account → deviation kind → frames accepted with it (``Frame.deviations`` and
        #: ``account_mismatch``), so an operator can ask an installer to fix a panel.
        self.deviations: dict[str, Counter[str]] = {}
        self._resends: OrderedDict[tuple[str, str, str], tuple[str, datetime, float]] = (
            OrderedDict()
        )
        self.records = TroubleRecords(_KEY_PREFIX, self.settings.unknown_record_seconds)
        self._locations: dict[tuple[str, str | None], Location] = {}
        self._locations_of: DeviceRegistry | None = None

    # -- one frame ---------------------------------------------------------------------------

    async def handle(self, raw: bytes) -> bytes | None:
        """The reply to one frame (``None``: send nothing), once what it carries is stored;
        counted by kind (``replies.ACK``, ``NAK``, ``DUH``, ``none``) for the metrics."""
        reply = await self._reply(raw)
        self.stats[f"replies.{reply_kind(reply)}"] += 1
        return reply

    async def _reply(self, raw: bytes) -> bytes | None:
        now = self.clock()
        registry = self.registry
        # Only an encrypted frame ('"*' after <LF>, CRC and length) gets an *ACK with a pad.
        pad = secrets.token_hex(8)[:_ACK_PAD].encode() if raw[9:11] == b'"*' else None
        outcome = handle_frame(raw, now=now, key_for=self._key_for, window=None, pad=pad)
        if outcome.verdict is Verdict.IGNORED:
            self.stats["ignored"] += 1
            return None
        if outcome.verdict is Verdict.REJECTED:
            assert outcome.error is not None
            return await self._rejected(outcome.error, outcome.reply, now)
        frame = outcome.frame
        assert frame is not None
        account = frame.account or _data_account(frame)
        self._count_deviations(frame, account)
        device = registry.account(account)
        own = device.window if device is not None else USE_DEFAULT
        window = self.settings.window if isinstance(own, UseDefault) else own
        try:
            check_frame_timestamp(frame, now, window, check_plain=self.settings.check_plain)
        except Dc09Error as error:
            self.stats[f"rejected.{error.code}"] += 1
            return reject(error, now).reply
        if device is not None:
            self.supervision.checkin(device.id)
        events = events_from_frame(frame)
        if not events:  # a link test: NULL, or an event frame with no data
            self.stats["link_tests"] += 1
            if device is not None:
                return outcome.reply
            return await self._unknown_link_test(frame, account, now, outcome.reply)
        try:
            signals = self._signals(frame, events, account, device, now)
        except InputError as error:
            # Never storable, whatever the panel does: DUH, so it does not resend forever.
            self.stats[f"rejected.{error.code}"] += 1
            log.error(
                "DC-09 account %s seq %s: refused, its signal can never be stored (%s: %s)",
                account,
                frame.seq,
                error.code,
                error,
            )
            return _duh(frame, now)
        try:
            await store(self.sink, signals)
        except Exception:
            # Nothing was committed, so nothing is acknowledged: the panel sends it again.
            self.stats["store_failures"] += 1
            log.exception("DC-09 account %s seq %s: storing failed, no ACK", account, frame.seq)
            return None
        self.stats["stored_frames"] += 1
        self.stats["stored_signals"] += len(signals)
        if device is None and not self.settings.ack_unknown:
            return _duh(frame, now)
        return outcome.reply

    def _count_deviations(self, frame: Frame, account: str | None) -> None:
        """Counts, per account, how an accepted frame departed from DC-09 (docs/dc09.md)."""
        kinds = list(frame.deviations)
        inner = _data_account(frame)
        if frame.account and inner and normalise_account(inner) != normalise_account(frame.account):
            kinds.append(ACCOUNT_MISMATCH)  # the header's account is the one used
        if not kinds:
            return
        acct = normalise_account(account) if account else "UNKNOWN"
        per = self.deviations.get(acct)
        if per is None:
            if len(self.deviations) >= _MAX_DEVIATION_ACCOUNTS:
                acct = "OTHER"  # bounded: frames with valid CRCs can name any account
            per = self.deviations.setdefault(acct, Counter())
        for kind in kinds:
            per[kind] += 1
            self.stats[f"deviations.{kind}"] += 1

    def _key_for(self, account: str | None) -> bytes | None:
        device = self.registry.account(account)
        if device is None:
            return None
        return _REFUSE_KEY if device.key_invalid else device.key

    async def _rejected(self, error: Dc09Error, reply: bytes | None, now: datetime) -> bytes | None:
        self.stats[f"rejected.{error.code}"] += 1
        account = error.echo.account if error.echo is not None else None
        seq = error.echo.seq if error.echo is not None else ""
        if reply is not None and reply_kind(reply) == "DUH":
            # Refused for good (the panel stops sending it): the centre must learn of it.
            why = f"{error.code}: {error}"
            log.error("DC-09 account %s seq %s: refused with DUH (%s)", account, seq, why)
        if account is None or not isinstance(error, DecryptFailed | EncryptionRequired):
            return reply
        device = self.registry.account(account)
        if device is None:
            if not isinstance(error, DecryptFailed):
                return reply
            # An encrypted panel we do not know: we cannot read it, but an operator must
            # learn that it is trying to reach us. The NAK stands: we cannot *ACK it.
            record = self.records.unknown(account, seq, now)
        else:
            # A panel we know whose frames we cannot take: an equipment fault, once an hour.
            record = self.records.unreadable(device, account, seq, now, error)
            if record is not None:
                log.error("DC-09 account %s (%s): %s", account, device.id, record.signal.summary)
        if record is not None:
            await self._keep(record)
        return reply

    async def _unknown_link_test(
        self, frame: Frame, account: str | None, now: datetime, ack: bytes | None
    ) -> bytes | None:
        record = self.records.unknown(account or "", frame.seq, now, frame=frame)
        if record is not None and not await self._keep(record):
            return None
        return ack if self.settings.ack_unknown else _duh(frame, now)

    async def _keep(self, record: Record) -> bool:
        """Stores an equipment-fault record; forgets it when that fails (the next frame
        records it again)."""
        try:
            await store(self.sink, [record.signal])
        except Exception:
            self.stats["store_failures"] += 1
            self.records.forget(record)
            log.exception("storing the record of DC-09 account %s failed", record.key)
            return False
        return True

    # -- events to signals -------------------------------------------------------------------

    def _signals(
        self,
        frame: Frame,
        events: tuple[AlarmEvent, ...],
        account: str | None,
        device: Device | None,
        now: datetime,
    ) -> list[SignalIn]:
        """The frame's signals, each minimised and validated like any intake's.

        Raises:
            InputError: a signal breaks the limits of every intake (``validate``).
        """
        acct = normalise_account(account) if account else "UNKNOWN"
        key_base, occurred_at = self._message_identity(frame, acct, now)
        out: list[SignalIn] = []
        for i, event in enumerate(events):
            signal = self._signal(frame, event, acct, device, occurred_at, f"{key_base}:{i}")
            minimised, dropped = minimise(signal)
            if dropped:
                self.stats["minimised_fields"] += dropped
            out.append(validate(minimised, now))
        return out

    def _message_identity(self, frame: Frame, acct: str, now: datetime) -> tuple[str, datetime]:
        """(idempotency key prefix, occurred_at) of a frame; a resend gets the same.

        DESIGN: DC-09 keys are account + sequence + timestamp. A digest of the data is added
        so that a key can only repeat for the same message, and a frame without timestamp
        uses the minute it arrived. Panels often refresh the timestamp when they resend; a
        repeat of (account, sequence, data digest) within ``resend_seconds`` therefore
        reuses the first key and time. The key itself carries account, sequence and digest,
        so :meth:`remember` rebuilds this memory from the store after a restart.
        """
        body = "\x1f".join((frame.data, *frame.extended))
        digest = hashlib.blake2b(body.encode("utf-8"), digest_size=6).hexdigest()
        ident = (acct, frame.seq, digest)
        tick = now.timestamp()
        cached = self._resends.get(ident)
        if cached is not None and cached[2] > tick:
            return cached[0], cached[1]
        ts = frame.timestamp
        # The panel's timestamp as epoch seconds; "r" + the minute of arrival without one.
        stamp = str(int(ts.timestamp())) if ts is not None else f"r{int(tick // 60)}"
        key = f"{_KEY_PREFIX}{acct}:{frame.seq}:{stamp}:{digest}"
        occurred_at = ts if ts is not None and abs(ts - now) <= MAX_FUTURE else now
        self._cache_resend(ident, key, occurred_at, tick + self.settings.resend_seconds, tick)
        return key, occurred_at

    def _cache_resend(
        self,
        ident: tuple[str, str, str],
        key: str,
        occurred_at: datetime,
        until: float,
        tick: float,
    ) -> None:
        self._resends[ident] = (key, occurred_at, until)
        self._resends.move_to_end(ident)
        while len(self._resends) > 50_000 or (
            self._resends and next(iter(self._resends.values()))[2] <= tick
        ):
            self._resends.popitem(last=False)

    def remember(self, key: str, occurred_at: datetime, received_at: datetime) -> bool:
        """Takes a stored signal's idempotency key back into the resend memory.

        Call it at start with the keys stored in the last ``resend_seconds`` (oldest first,
        see :func:`alarmdesk.store.intake_keys.recent_keys`): a frame committed but not
        acknowledged before a restart, resent after it, then gets its first key again.

        Returns:
            Whether ``key`` was one of this receiver's message keys.
        """
        parts = key.split(":")
        if len(parts) != 6 or f"{parts[0]}:" != _KEY_PREFIX or parts[3] == "unknown":
            return False
        _, acct, seq, stamp, digest, _index = parts
        tick = self.clock().timestamp()
        until = received_at.timestamp() + self.settings.resend_seconds
        if until <= tick:
            return False
        base = f"{_KEY_PREFIX}{acct}:{seq}:{stamp}:{digest}"
        self._cache_resend((acct, seq, digest), base, occurred_at, until, tick)
        return True

    def _signal(
        self,
        frame: Frame,
        event: AlarmEvent,
        acct: str,
        device: Device | None,
        occurred_at: datetime,
        key: str,
    ) -> SignalIn:
        type_code, kind, restore = classify(event, self.code_map)
        entry = self.code_map.lookup(event.protocol, event.code) if event.code is not None else None
        mapped = type_code is not None
        if type_code is None:  # unknown code: the raw code, which the taxonomy makes UNCLASS
            type_code = f"{event.protocol.upper()}{event.code}" if event.code else "UNCLASS"
        zone = _zone(event.zone)
        record_only = (
            kind in _RECORD_ONLY_KINDS
            or (kind is EventKind.SUPERVISORY and not mapped)
            or (device is not None and device.test_mode)
        )
        if device is not None:
            location: Location | None = self._location(device, zone)
            zone_info = device.zone(zone)
        else:
            location = _extended_location(frame, zone)
            zone_info = None
        what = entry.description if entry is not None else _unknown_code(event)
        summary = what
        if zone is not None and zone != "0":
            summary += f", zone {zone}"
            if zone_info is not None and zone_info.description:
                summary += f" ({zone_info.description})"
        if device is None:
            summary = f"Unknown DC-09 account {acct}: {summary}"
        elif device.site:
            summary += f" — {device.site}"
        payload: dict[str, Any] = {
            "protocol": event.protocol,
            "code": event.code,
            "qualifier": event.qualifier,
            "partition": event.partition,
            "zone": event.zone,
            "user": event.user,
            "text": event.text,
            "time": event.time,
            "kind": kind.value,
            "seq": frame.seq,
            "receiver": frame.receiver,
            "line": frame.line,
            "encrypted": frame.encrypted or None,
            "panel_time": frame.timestamp.isoformat() if frame.timestamp else None,
            "raw": None if event.complete else event.raw[:500],
            "extended": _extended(frame) or None,
            "account": acct if device is None else None,  # else: in source_id and location
            "unknown_account": True if device is None else None,
            "test_mode": True if device is not None and device.test_mode else None,
        }
        return SignalIn(
            source_kind=SourceKind.EQUIPMENT,
            source_id=(device.id if device is not None else f"panel-{acct}")[:128],
            type_code=type_code[:32],
            occurred_at=occurred_at,
            location=location,
            summary=summary[:1000],
            idempotency_key=key[:200],
            payload={k: v for k, v in payload.items() if v is not None},
            condition="restored" if restore else "active",
            record_only=record_only,
        )

    def _location(self, device: Device, zone: str | None) -> Location:
        """``device.location(zone)``, cached while the registry stays the same."""
        if self._locations_of is not self.registry:
            self._locations.clear()
            self._locations_of = self.registry
        key = (device.id, zone)
        found = self._locations.get(key)
        if found is None:
            if len(self._locations) >= 200_000:
                self._locations.clear()
            found = self._locations[key] = device.location(zone)
        return found


def _data_account(frame: Frame) -> str | None:
    """The ``#acct`` inside the data, for frames whose header names no account."""
    if frame.data.startswith("#"):
        account = frame.data[1:].split("|", 1)[0]
        return account or None
    return None


def _zone(zone: str | None) -> str | None:
    if zone is None or zone == "":
        return None
    return str(int(zone)) if zone.isdecimal() else zone[:64]


def _unknown_code(event: AlarmEvent) -> str:
    if event.code is None:
        return f"Unreadable {event.protocol.upper()} event"
    return f"Unknown {event.protocol.upper()} code {event.code}"


def _extended(frame: Frame) -> dict[str, str]:
    """DC-09 extended data blocks by their letter: X lon, Y lat, V verification, M MAC..."""
    out: dict[str, str] = {}
    for block in frame.extended:
        if block:
            out.setdefault(block[0], block[1:][:200])
    return out


def _extended_location(frame: Frame, zone: str | None) -> Location | None:
    """A location from the panel's own X/Y blocks (used for unknown accounts)."""
    ext = _extended(frame)
    try:
        lon, lat = float(ext["X"]), float(ext["Y"])
    except (KeyError, ValueError):
        return Location(zone=zone) if zone else None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return Location(zone=zone) if zone else None
    return Location(lat=lat, lon=lon, zone=zone)


def reply_kind(reply: bytes | None) -> str:
    """ACK, NAK or DUH for a reply frame (an encrypted *ACK is an ACK); none for no reply.
    A reply is <LF>, 4 CRC characters, 4 length characters, then its quoted id."""
    if reply is None:
        return "none"
    token = reply[10:15].split(b'"', 1)[0].lstrip(b"*")
    return token.decode("ascii", "replace") or "none"


def _duh(frame: Frame, now: datetime) -> bytes | None:
    try:
        return build_duh(frame.echo)
    except ValueError:
        return None
