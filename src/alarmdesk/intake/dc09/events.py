"""Alarm events inside DC-09 data: Ademco Contact ID and SIA DC-03, and their classification.

Parsing is tolerant: data it cannot read completely still yields an event carrying the raw
text (``complete=False``), so nothing a panel sends is silently dropped.

The code → incident-type mapping is data (``alarmdesk/data/dc09_codes.tsv``), read by
:func:`load_code_map`; :func:`classify` applies it.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal, TypeVar

from alarmdesk.intake.dc09.model import ADM_CID, SIA_DCS, Frame

Protocol = Literal["cid", "sia"]


class EventKind(enum.StrEnum):
    """What an event means for the operations centre."""

    ALARM = "alarm"  # a condition to respond to (may open an incident)
    RESTORE = "restore"  # an earlier condition has cleared
    TROUBLE = "trouble"  # equipment fault: power, battery, communication, sensor
    TEST = "test"  # periodic or manual test; proves the path works
    OPEN_CLOSE = "open_close"  # arming, disarming, access: recorded, never alarmed
    SUPERVISORY = "supervisory"  # status worth recording: bypass, reset, supervisory points


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One event from a panel message.

    Attributes:
        protocol: ``"cid"`` (ADM-CID) or ``"sia"`` (SIA-DCS).
        code: 3-digit Contact ID event code or 2-letter SIA code; ``None`` if unreadable.
        qualifier: Contact ID only: ``"1"`` new event / opening, ``"3"`` restore / closing,
            ``"6"`` previously reported, still present.
        restore: the message itself says "restore" (Contact ID qualifier 3). SIA restores
            are separate codes (``BR``, ``FH``...), resolved by :func:`classify`.
        partition: Contact ID group/partition, SIA ``ri`` area; ``None`` when absent.
        zone: Contact ID zone or user number, SIA address (zone, point or user).
        user: SIA ``id`` user number.
        time: SIA ``ti`` time, as sent (``HH:MM``).
        account: the ``#account`` inside the data, when present.
        text: SIA ``|A`` text field.
        raw: the data block the event came from, unchanged.
        complete: False when part of ``raw`` could not be read.
    """

    protocol: Protocol
    code: str | None
    raw: str
    qualifier: str | None = None
    restore: bool = False
    partition: str | None = None
    zone: str | None = None
    user: str | None = None
    time: str | None = None
    account: str | None = None
    text: str | None = None
    complete: bool = True


# ----------------------------------------------------------------------------- parsing

_ACCOUNT_PREFIX = re.compile(r"#([0-9A-Fa-f]{1,16})\|")
# Q EEE GG ZZZ; E/R/P are the letter forms of qualifiers 1/3/6 some receivers print.
_CONTACT_ID = re.compile(r"\s*([136ERP])([0-9]{3}) ?([0-9]{2}) ?([0-9]{3})\s*")
_QUALIFIERS = {"E": "1", "R": "3", "P": "6"}
# SIA tokens: "xx" lowercase modifier + value, or "XX" uppercase event code + address.
_SIA_TOKEN = re.compile(r"(?:(?P<mod>[a-z]{2})|(?P<code>[A-Z]{2}))(?P<value>[^A-Za-z/]*)")
_SIA_MODIFIERS = {"ri": "partition", "id": "user", "ti": "time"}


def events_from_frame(frame: Frame) -> tuple[AlarmEvent, ...]:
    """The events a frame carries: none for NULL, responses, empty or sealed data."""
    if frame.sealed or not frame.data:
        return ()
    if frame.token == ADM_CID:
        return (parse_contact_id(frame.data),)
    if frame.token == SIA_DCS:
        return parse_sia(frame.data)
    return ()


def parse_contact_id(data: str) -> AlarmEvent:
    """Read ``#acct|QEEE GG ZZZ`` (account prefix and spaces optional).

    Never raises: unreadable data gives an event with ``code=None``, ``complete=False``.
    """
    account, body = _split_account(data)
    m = _CONTACT_ID.fullmatch(body)
    if m is None:
        return AlarmEvent(protocol="cid", code=None, raw=data, account=account, complete=False)
    qualifier = _QUALIFIERS.get(m[1], m[1])
    return AlarmEvent(
        protocol="cid",
        code=m[2],
        raw=data,
        qualifier=qualifier,
        restore=qualifier == "3",
        partition=m[3],
        zone=m[4],
        account=account,
    )


def parse_sia(data: str) -> tuple[AlarmEvent, ...]:
    """Read SIA DC-03 data: ``#acct|N`` + blocks + optional ``|A`` text.

    Blocks are separated by ``/``; each holds modifiers (``ri`` area, ``id`` user, ``ti``
    time, others ignored) and event codes, a 2-letter code followed by its address, as in
    ``Nri1/BA501``, ``NFA129``, ``Nti10:22/id3/ri1/OP``. Modifiers apply to the codes after
    them, in this block and the following ones, until set again. Every code gives one event.

    Never raises: unreadable parts set ``complete=False``; with no code at all the result is
    one event with ``code=None``.
    """
    account, body = _split_account(data)
    events_part, *fields = body.split("|")
    text, complete = _sia_text(fields)
    events, tokens_ok = _sia_events(_strip_new_marker(events_part))
    complete = complete and tokens_ok
    if not events:
        return (
            AlarmEvent(
                protocol="sia", code=None, raw=data, account=account, text=text, complete=False
            ),
        )
    return tuple(
        AlarmEvent(
            protocol="sia",
            code=code,
            raw=data,
            zone=zone,
            account=account,
            text=text,
            complete=complete,
            partition=modifiers.get("partition"),
            user=modifiers.get("user"),
            time=modifiers.get("time"),
        )
        for code, zone, modifiers in events
    )


def _split_account(data: str) -> tuple[str | None, str]:
    m = _ACCOUNT_PREFIX.match(data)
    return (m[1], data[m.end() :]) if m else (None, data)


def _sia_text(fields: list[str]) -> tuple[str | None, bool]:
    """The ``A`` text among the fields after the event part; False if others are present."""
    texts = [f[1:] for f in fields if f.startswith("A")]
    return ("|".join(texts) if texts else None), len(texts) == len(fields)


def _strip_new_marker(part: str) -> str:
    """Drop the leading ``N`` ("new event") when what follows still reads as SIA."""
    if part[:1] == "N" and _SIA_TOKEN.match(part, 1):
        return part[1:]
    return part


_SiaEvent = tuple[str, str | None, dict[str, str]]


def _sia_events(part: str) -> tuple[list[_SiaEvent], bool]:
    """Events (code, address, modifiers) in ``part``; False if some of it was unreadable."""
    events: list[_SiaEvent] = []
    modifiers: dict[str, str] = {}
    complete = True
    for block in part.split("/"):
        for kind, name, value in _sia_tokens(block):
            if kind == "bad":
                complete = False
            elif kind == "mod":
                if name in _SIA_MODIFIERS and value:
                    modifiers[_SIA_MODIFIERS[name]] = value
            else:
                events.append((name, value or None, dict(modifiers)))
    return events, complete


def _sia_tokens(block: str) -> Iterator[tuple[str, str, str]]:
    """("mod" | "code" | "bad", name, value) for each token of one block."""
    pos = 0
    while pos < len(block):
        m = _SIA_TOKEN.match(block, pos)
        if m is None:
            yield "bad", block[pos:], ""
            return
        yield ("mod", m["mod"], m["value"]) if m["mod"] else ("code", m["code"], m["value"])
        pos = m.end()


# ---------------------------------------------------------------------------- code map

_KINDS = frozenset(EventKind)
_CID_CODE = re.compile(r"([0-9]{3})(?:-([0-9]{3}))?")
_SIA_CODE = re.compile(r"[A-Z]{2}")
_TYPE_CODE = re.compile(r"[A-Z0-9]{2,12}")
_COLUMNS = ("protocol", "code", "type_code", "kind", "description")
_K = TypeVar("_K")


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """One row of the code map: an incident type code (``None`` = record only) and a kind."""

    type_code: str | None
    kind: EventKind
    description: str


@dataclass(frozen=True, slots=True)
class CodeMap:
    """Panel code → :class:`CodeEntry`. Exact codes win over ranges, narrower over wider.

    ``exact`` maps (protocol, code) to entries; ``ranges`` holds Contact ID ranges as
    (low, high, entry), narrowest first.
    """

    exact: Mapping[tuple[str, str], CodeEntry]
    ranges: tuple[tuple[int, int, CodeEntry], ...]

    def lookup(self, protocol: str, code: str) -> CodeEntry | None:
        """The entry for ``code``, or ``None`` when neither the code nor a range knows it."""
        entry = self.exact.get((protocol, code))
        if entry is not None or protocol != "cid" or not code.isdecimal():
            return entry
        number = int(code)
        return next((e for low, high, e in self.ranges if low <= number <= high), None)


def load_code_map(path: Path | None = None) -> CodeMap:
    """Read a code map TSV; by default the packaged ``alarmdesk/data/dc09_codes.tsv``.

    Format: a header ``protocol  code  type_code  kind  description`` (tab-separated), then
    one row per code. ``protocol`` is ``cid`` or ``sia``. A ``cid`` code is 3 digits or an
    inclusive range ``110-119``; a ``sia`` code is 2 uppercase letters. ``type_code`` is an
    incident type code (APCO or local, e.g. ``ALRF``, ``EQTRBL``) or empty for events that are
    recorded but never open an incident. ``kind`` is an :class:`EventKind` value. Blank lines
    are skipped. Duplicate codes (the same exact code or the same range twice) are an error.

    Raises:
        ValueError: a malformed row, naming its line.
    """
    if path is None:
        text = (resources.files("alarmdesk") / "data" / "dc09_codes.tsv").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return parse_code_map(text)


def parse_code_map(text: str) -> CodeMap:
    """The :class:`CodeMap` of TSV text in the :func:`load_code_map` format."""
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != _COLUMNS:
        raise ValueError(f"code map header must be {' '.join(_COLUMNS)}, not {header}")
    exact: dict[tuple[str, str], CodeEntry] = {}
    ranges: dict[tuple[int, int], CodeEntry] = {}
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        try:
            _add_row(row, exact, ranges)
        except ValueError as exc:
            raise ValueError(f"code map line {reader.line_num}: {exc}") from None
    ordered = sorted(ranges.items(), key=lambda item: (item[0][1] - item[0][0], item[0][0]))
    return CodeMap(exact=exact, ranges=tuple((lo, hi, e) for (lo, hi), e in ordered))


def _add_row(
    row: list[str],
    exact: dict[tuple[str, str], CodeEntry],
    ranges: dict[tuple[int, int], CodeEntry],
) -> None:
    if len(row) != len(_COLUMNS):
        raise ValueError(f"{len(row)} columns, expected {len(_COLUMNS)}")
    protocol, code, type_code, kind, description = (cell.strip() for cell in row)
    if kind not in _KINDS:
        raise ValueError(f"kind {kind!r} is not one of {sorted(_KINDS)}")
    if type_code and not _TYPE_CODE.fullmatch(type_code):
        raise ValueError(f"type_code {type_code!r} is not an incident type code")
    entry = CodeEntry(type_code=type_code or None, kind=EventKind(kind), description=description)
    if protocol == "sia" and _SIA_CODE.fullmatch(code):
        _insert(exact, (protocol, code), entry)
        return
    m = _CID_CODE.fullmatch(code) if protocol == "cid" else None
    if m is None:
        raise ValueError(f"{protocol!r} code {code!r} is not a cid code/range or sia code")
    if m[2] is None:
        _insert(exact, (protocol, code), entry)
        return
    low, high = int(m[1]), int(m[2])
    if low > high:
        raise ValueError(f"range {code} runs backwards")
    _insert(ranges, (low, high), entry)


def _insert(table: dict[_K, CodeEntry], key: _K, entry: CodeEntry) -> None:
    if key in table:
        raise ValueError(f"duplicate code {key}")
    table[key] = entry


# --------------------------------------------------------------------------- classify


def classify(event: AlarmEvent, code_map: CodeMap) -> tuple[str | None, EventKind, bool]:
    """(incident type code or None, kind, restore) of an event.

    Rules:
    - A restore (Contact ID qualifier 3, or a SIA code whose row has kind ``restore``) has
      kind ``restore``, ``restore=True`` and the type of the condition that cleared, so it
      can be matched to the open incident.
    - Contact ID qualifier 3 on an open/close code means "closing", not a restore: kind
      ``open_close``, ``restore=False``.
    - An unknown or unreadable code is an ``alarm`` with type ``None``: it surfaces for a
      person to classify rather than disappearing.
    """
    entry = code_map.lookup(event.protocol, event.code) if event.code else None
    if entry is None:
        return None, EventKind.RESTORE if event.restore else EventKind.ALARM, event.restore
    if entry.kind is EventKind.OPEN_CLOSE:
        return entry.type_code, EventKind.OPEN_CLOSE, False
    if event.restore or entry.kind is EventKind.RESTORE:
        return entry.type_code, EventKind.RESTORE, True
    return entry.type_code, entry.kind, False
