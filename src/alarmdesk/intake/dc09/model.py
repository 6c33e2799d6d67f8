"""The values the DC-09 codec reads and writes: tokens, :class:`Frame`, the timestamp window.

A :class:`Frame` is always valid: its constructor checks every field against the grammar the
encoder writes and the parser reads, so ``parse_frame(encode_frame(f)) == f`` for every frame
that can exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from alarmdesk.intake.dc09.errors import Echo
from alarmdesk.intake.types import TimestampWindow as TimestampWindow

SIA_DCS = "SIA-DCS"  # SIA DC-03/DC-04 data
ADM_CID = "ADM-CID"  # Ademco Contact ID data
NULL = "NULL"  # link test (heartbeat)
ACK = "ACK"
NAK = "NAK"
DUH = "DUH"

#: Tokens of messages a transmitter sends to a receiver.
EVENT_TOKENS = frozenset({SIA_DCS, ADM_CID, NULL})
#: Tokens of the receiver's responses.
RESPONSE_TOKENS = frozenset({ACK, NAK, DUH})
#: Every token the codec reads and writes (without the ``*`` of the encrypted form).
KNOWN_TOKENS = EVENT_TOKENS | RESPONSE_TOKENS
#: Tokens that may appear encrypted (``*SIA-DCS``...); NAK and DUH are always plaintext.
ENCRYPTABLE_TOKENS = frozenset({SIA_DCS, ADM_CID, NULL, ACK})

#: Deviations from DC-09 read all the same (``Frame.deviations``; policy in docs/dc09.md).
BINARY_CRC = "binary_crc"  # the CRC as 2 binary bytes, not 4 hex digits
EMPTY_LINE = "empty_line"  # "L" without its number
EMPTY_RECEIVER = "empty_receiver"  # "R" without its number
MISSING_LINE = "missing_line"  # no "L" field at all (DC-09 makes it mandatory)
ACCOUNT_MISMATCH = "account_mismatch"  # "#acct" in the data differs from the header's

#: Largest frame, <LF> and <CR> included. The length field ("0LLL") tops out at 0xFFF anyway.
MAX_FRAME_BYTES = 4096

_SEQ = re.compile(r"[0-9]{4}")
# Empty is what some panels send ("L#1234"): the field is there, its value is not.
_ID = re.compile(r"[0-9A-Fa-f]{0,6}")
_ACCOUNT = re.compile(r"[0-9A-Fa-f]{3,16}")
_NAK_ACCOUNT = re.compile(r"[0-9A-Fa-f]{1,16}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{32})+")
# Text inside the data block: Latin-1, no brackets, no control characters.
_BLOCK_TEXT = re.compile(r"[^\[\]\x00-\x1f\x7f\u0100-\U0010ffff]*")
# Extended data (x-data) is Windows-1252 (DC-09 section 5.5.1.8): the same rule after that
# encoding, e.g. the euro sign is byte 0x80 there.
_EXT_TEXT = re.compile(r"[^\[\]\x00-\x1f\x7f]*")


DEFAULT_WINDOW = TimestampWindow()


@dataclass(frozen=True, slots=True)
class Frame:
    """One DC-09 message, decoded.

    Attributes:
        token: the ID token without the ``*`` (``SIA-DCS``, ``ADM-CID``, ``NULL``, ``ACK``...).
        encrypted: whether it travels (or travelled) encrypted: ``*SIA-DCS`` and so on.
        seq: the 4-digit sequence number, as sent.
        receiver: the ``R`` field (0-6 hex), ``None`` when absent; ``""`` when the panel
            sent the letter without a value (a deviation some panels make).
        line: the ``L`` field (0-6 hex), ``None`` when absent, ``""`` when sent empty.
        account: the ``#`` field (3-16 hex; 1-16 for NAK), ``None`` when absent.
        data: the text between ``[`` and the first ``]`` (plaintext; ``""`` while sealed).
        extended: the contents of the ``[...]`` blocks after the data, brackets stripped;
            Windows-1252 on the wire.
        timestamp: the ``_HH:MM:SS,MM-DD-YYYY`` field, or ``None``; any aware datetime with
            whole seconds is accepted and stored converted to UTC.
        ciphertext: for an encrypted frame not yet decrypted ("sealed"), the hex after ``[``;
            ``None`` otherwise. A sealed frame has empty ``data``/``extended`` and no timestamp.
        deviations: how the bytes this frame was read from departed from DC-09 while
            meaning the same (``empty_line``, ``binary_crc``...; see docs/dc09.md). Set by
            the parser, ignored by the encoder and by equality.

    Raises:
        ValueError: a field breaks the DC-09 grammar (so the frame could not be written).
    """

    token: str
    seq: str
    data: str = ""
    receiver: str | None = None
    line: str | None = None
    account: str | None = None
    extended: tuple[str, ...] = ()
    timestamp: datetime | None = None
    encrypted: bool = False
    ciphertext: str | None = field(default=None, repr=False)
    deviations: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        _check_token(self.token, self.encrypted)
        _check_header(self)
        _check_body(self)

    @property
    def wire_token(self) -> str:
        """The token as written between the quotes: ``*SIA-DCS`` when encrypted."""
        return f"*{self.token}" if self.encrypted else self.token

    @property
    def sealed(self) -> bool:
        """True for an encrypted frame whose content has not been decrypted yet."""
        return self.ciphertext is not None

    @property
    def echo(self) -> Echo:
        """The header fields a response to this frame repeats."""
        return Echo(seq=self.seq, receiver=self.receiver, line=self.line, account=self.account)


def _check_token(token: str, encrypted: bool) -> None:
    if token not in KNOWN_TOKENS:
        raise ValueError(f"unknown token {token!r}")
    if encrypted and token not in ENCRYPTABLE_TOKENS:
        raise ValueError(f"{token} is never encrypted")


def _check_header(frame: Frame) -> None:
    if not _SEQ.fullmatch(frame.seq):
        raise ValueError(f"seq must be 4 decimal digits, not {frame.seq!r}")
    for name, value in (("receiver", frame.receiver), ("line", frame.line)):
        if value is not None and not _ID.fullmatch(value):
            raise ValueError(f"{name} must be 0-6 hex digits, not {value!r}")
        if value == "" and frame.token == NAK:  # its header is read lazily, see codec
            raise ValueError(f"a NAK's {name} is 1-6 hex digits")
    if frame.account is not None:
        pattern = _NAK_ACCOUNT if frame.token == NAK else _ACCOUNT
        if not pattern.fullmatch(frame.account):
            raise ValueError(f"account must be hex of the allowed length, not {frame.account!r}")
    elif frame.token == NAK:
        # The spec's NAK always names an account ("A0"); requiring one keeps the NAK header
        # unambiguous, see codec._parse_header.
        raise ValueError("a NAK carries an account")


def _check_body(frame: Frame) -> None:
    if frame.ciphertext is not None:
        if not frame.encrypted or not _HEX.fullmatch(frame.ciphertext):
            raise ValueError("ciphertext is whole 16-byte blocks in hex, on encrypted frames")
        if frame.data or frame.extended or frame.timestamp is not None:
            raise ValueError("a sealed frame has no plaintext fields")
        return
    if not _BLOCK_TEXT.fullmatch(frame.data):
        raise ValueError(f"data has brackets, control or non-Latin-1 chars: {frame.data!r}")
    for text in frame.extended:
        if not _EXT_TEXT.fullmatch(text) or not _cp1252_encodable(text):
            raise ValueError(f"x-data has brackets, control or non-cp1252 chars: {text!r}")
    if frame.timestamp is not None:
        # Stored in UTC, the zone the wire format implies; equal instants stay equal.
        object.__setattr__(frame, "timestamp", _utc_whole_seconds(frame.timestamp))
    elif frame.encrypted:
        raise ValueError("an encrypted frame carries a timestamp")


def _utc_whole_seconds(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamps are timezone-aware datetimes")
    if ts.microsecond:
        raise ValueError("DC-09 timestamps have whole seconds")
    try:
        return ts.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("timestamp out of range in UTC") from exc


def _cp1252_encodable(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True
