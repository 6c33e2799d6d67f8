"""SIA DC-09 framing: CRC, length, parsing, encoding, responses, stream splitting (the AES
layer is :mod:`alarmdesk.intake.dc09.crypto`, timestamps :mod:`alarmdesk.intake.dc09.timestamps`).

Pure code: no sockets, no clock, no database. The caller passes the receiver's time (``now``)
and the account's AES key; the only source of randomness is the encryption pad, drawn from
:mod:`secrets` unless the caller supplies it.

Wire format (DC-09-2013/2021)::

    <LF> CRC LEN "ID" seq [Rrcvr] [Lline] [#acct] [data] [ext]... [_HH:MM:SS,MM-DD-YYYY] <CR>

``CRC`` is the CRC-16/ARC, ``LEN`` the byte count ("0LLL"), both 4 uppercase hex digits and
both computed over everything from the opening quote of the ID token up to the byte before
<CR>. In an encrypted frame (``"*SIA-DCS"``, ``"*ADM-CID"``, ``"*NULL"``, ``"*ACK"``)
everything after the data block's ``[`` is replaced by the uppercase hex of
AES-CBC(key, IV = 16 zero bytes) over::

    pad | data ] [ext]... _HH:MM:SS,MM-DD-YYYY

where ``pad`` brings the length to a multiple of 16 bytes; there is no closing bracket after
the hex. See :func:`split_pad` for how a pad without its ``|`` is recognised.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from alarmdesk.intake.dc09.crypto import CONTROL as _CONTROL
from alarmdesk.intake.dc09.crypto import decrypt, encrypt
from alarmdesk.intake.dc09.errors import (
    BadCrc,
    BadLength,
    Dc09Error,
    DecryptFailed,
    Echo,
    FrameTooLong,
    InvalidText,
    MalformedFrame,
    MissingTimestamp,
    UnknownToken,
)
from alarmdesk.intake.dc09.model import (
    ACK,
    BINARY_CRC,
    DUH,
    EMPTY_LINE,
    EMPTY_RECEIVER,
    ENCRYPTABLE_TOKENS,
    KNOWN_TOKENS,
    MAX_FRAME_BYTES,
    MISSING_LINE,
    NAK,
    RESPONSE_TOKENS,
    Frame,
)
from alarmdesk.intake.dc09.timestamps import (
    format_timestamp,
    parse_timestamp,
    require_aware,
)

LF = 0x0A
CR = 0x0D

# --------------------------------------------------------------------------------- CRC


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_arc(data: bytes, table: tuple[int, ...] = _CRC_TABLE) -> int:
    """CRC-16/ARC of ``data``: polynomial 0x8005 reflected (0xA001), init 0, no final XOR.

    (``table`` is bound as a default: a local read per byte, not a global one.)
    """
    crc = 0
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


# ------------------------------------------------------------------------------ parsing

_FIELD4 = re.compile(rb"[0-9A-Fa-f]{4}")
_TOKEN = re.compile(r'"(\*?)([^"]*)"')
_HEX = r"[0-9A-Fa-f]"
# R and L may come without a value ("0001L#1234"): a deviation read as the empty string.
_HEADER = re.compile(
    rf"(?P<seq>[0-9]{{4}})(?:R(?P<receiver>{_HEX}{{0,6}}))?(?:L(?P<line>{_HEX}{{0,6}}))?"
    rf"(?:#(?P<account>{_HEX}{{3,16}}))?"
)
_NAK_HEADER = re.compile(
    rf"(?P<seq>[0-9]{{4}})(?:R(?P<receiver>{_HEX}{{1,6}}))?(?:L(?P<line>{_HEX}{{1,6}}))?"
    rf"#(?P<account>{_HEX}{{1,16}})"
)
# The spec's own NAK writes its account as "A0" ("NAK"0000R0L0A0[]). "A" is also a hex digit,
# so the fields before it are matched lazily: the first "A" after L (or R) starts the account.
_NAK_A_HEADER = re.compile(
    rf"(?P<seq>[0-9]{{4}})(?:R(?P<receiver>{_HEX}{{1,6}}?))?(?:L(?P<line>{_HEX}{{1,6}}?))?"
    rf"A(?P<account>{_HEX}{{1,16}})"
)
_CONTENT = re.compile(r"(?P<data>[^\[\]]*)\](?P<ext>(?:\[[^\[\]]*\])*)(?:_(?P<ts>.*))?", re.DOTALL)
_EXT_BLOCK = re.compile(r"\[([^\[\]]*)\]")


def parse_frame(raw: bytes, key: bytes | None = None) -> Frame:
    """Decode one frame.

    Args:
        raw: one frame as :class:`FrameBuffer` yields it; the leading <LF> and trailing <CR>
            may be left off.
        key: the account's AES key. An encrypted frame parsed without one comes back sealed
            (``frame.sealed``; read ``frame.account``, fetch the key, call
            :func:`decrypt_frame`). Ignored for plaintext frames.

    Returns:
        The frame; plaintext fields are not checked against any clock (see
        :func:`check_frame_timestamp`).

    Raises:
        FrameTooLong: more than ``MAX_FRAME_BYTES``.
        MalformedFrame: not DC-09 framing or grammar.
        BadLength: the length field is wrong.
        BadCrc: the CRC field is wrong.
        UnknownToken: a well-formed frame with a token we do not handle (``echo`` is set).
        InvalidText: a well-formed plaintext frame whose data or extended blocks hold a NUL
            or control character (``echo`` is set).
        DecryptFailed: the encrypted part cannot be decrypted with ``key``.
        MissingTimestamp: decrypted, but without the mandatory timestamp.
        ValueError: ``key`` is not 16, 24 or 32 bytes.
    """
    if len(raw) > MAX_FRAME_BYTES:
        raise FrameTooLong(f"frame of {len(raw)} bytes exceeds {MAX_FRAME_BYTES}")
    body, binary_crc = _checked_body(_strip_terminators(raw))
    frame = _parse_body(body.decode("latin-1"), binary_crc)
    if key is not None and frame.sealed:
        frame = decrypt_frame(frame, key)
    return frame


def _deviations(token: str, echo: Echo, binary_crc: bool) -> tuple[str, ...]:
    """What departs from DC-09 in a frame read all the same (docs/dc09.md)."""
    out = []
    if binary_crc:
        out.append(BINARY_CRC)
    if token not in RESPONSE_TOKENS:
        if echo.receiver == "":
            out.append(EMPTY_RECEIVER)
        if echo.line == "":
            out.append(EMPTY_LINE)
        elif echo.line is None:
            out.append(MISSING_LINE)
    return tuple(out)


def decrypt_frame(frame: Frame, key: bytes) -> Frame:
    """The plaintext frame of a sealed one (a frame that is not sealed is returned as is).

    Raises:
        DecryptFailed: the ciphertext does not decrypt into DC-09 content under ``key``.
        MissingTimestamp: it does, but carries no timestamp.
        ValueError: ``key`` is not 16, 24 or 32 bytes.
    """
    if frame.ciphertext is None:
        return frame
    content = decrypt(frame.ciphertext, key, echo=frame.echo)
    try:
        data, extended, timestamp = _parse_content(content)
    except MalformedFrame:
        raise DecryptFailed("decrypted content is not DC-09 data", echo=frame.echo) from None
    if timestamp is None:
        raise MissingTimestamp("encrypted frame without timestamp", echo=frame.echo)
    return replace(frame, data=data, extended=extended, timestamp=timestamp, ciphertext=None)


def _strip_terminators(raw: bytes) -> bytes:
    start = 1 if raw[:1] == b"\n" else 0
    end = len(raw) - 1 if raw[-1:] == b"\r" and len(raw) > start else len(raw)
    return raw[start:end]


def _checked_body(frame: bytes) -> tuple[bytes, bool]:
    """The bytes after CRC and LEN once both fields check out, and whether the CRC came as
    two binary bytes (some panels send it so: ``<LF> cc 0LLL "...``) instead of 4 hex."""
    if _is_binary_crc(frame):
        crc, length_field, body = int.from_bytes(frame[:2], "big"), frame[2:6], frame[6:]
    else:
        crc_field, length_field, body = frame[:4], frame[4:8], frame[8:]
        if not (_FIELD4.fullmatch(crc_field) and _FIELD4.fullmatch(length_field)):
            raise MalformedFrame("frame does not start with 4 hex CRC and 4 hex length digits")
        crc = int(crc_field, 16)
    if int(length_field, 16) != len(body):
        raise BadLength(f"length field says {int(length_field, 16)}, body has {len(body)}")
    computed = crc16_arc(body)
    if crc != computed:
        raise BadCrc(f"CRC field {crc:04X} != {computed:04X}")
    return body, len(frame) - len(body) == 6


def _is_binary_crc(frame: bytes) -> bool:
    """Two bytes, then 4 hex length digits, then the quote of the ID token.

    A frame with a hex CRC is never read so: in ``CCCCLLLL"`` the seventh byte is a length
    digit, not the quote.
    """
    return frame[6:7] == b'"' and _FIELD4.fullmatch(frame[2:6]) is not None


def _parse_body(text: str, binary_crc: bool = False) -> Frame:
    m = _TOKEN.match(text)
    if m is None:
        raise MalformedFrame('frame body does not start with a quoted "ID" token')
    star, token = m.groups()
    header, bracket, after = text[m.end() :].partition("[")
    if _CONTROL.search(token) or _CONTROL.search(header):
        raise MalformedFrame("control characters inside the frame header")
    if not bracket:
        raise MalformedFrame("no data block '['")
    echo = _parse_header(header, token)
    if token not in KNOWN_TOKENS or (star and token not in ENCRYPTABLE_TOKENS):
        raise UnknownToken(f"unknown token {star + token!r}", echo=echo)
    deviations = _deviations(token, echo, binary_crc)
    if star:
        return _sealed_frame(token, echo, after, deviations)
    if (bad := _CONTROL.search(after)) is not None:
        # CRC and length hold: the panel meant these bytes, and would resend them as they are.
        raise InvalidText(
            f"control character U+{ord(bad.group()):04X} in the data or extended blocks",
            echo=echo,
        )
    data, extended, timestamp = _parse_content(after, echo)
    return _frame(
        token, echo, data=data, extended=extended, timestamp=timestamp, deviations=deviations
    )


def _parse_header(header: str, token: str) -> Echo:
    if token == NAK:
        m = (_NAK_HEADER if "#" in header else _NAK_A_HEADER).fullmatch(header)
    else:
        m = _HEADER.fullmatch(header)
    if m is None:
        raise MalformedFrame(f"header {header!r} is not seq [Rrcvr] [Lline] [#acct]")
    return Echo(seq=m["seq"], receiver=m["receiver"], line=m["line"], account=m["account"])


def _sealed_frame(
    token: str, echo: Echo, ciphertext: str, deviations: tuple[str, ...] = ()
) -> Frame:
    if not re.fullmatch(r"(?:[0-9A-Fa-f]{32})+", ciphertext):
        raise DecryptFailed("encrypted part is not whole 16-byte blocks of hex", echo=echo)
    return _frame(token, echo, encrypted=True, ciphertext=ciphertext, deviations=deviations)


def _frame(
    token: str,
    echo: Echo,
    *,
    data: str = "",
    extended: tuple[str, ...] = (),
    timestamp: datetime | None = None,
    encrypted: bool = False,
    ciphertext: str | None = None,
    deviations: tuple[str, ...] = (),
) -> Frame:
    try:
        return Frame(
            token=token,
            seq=echo.seq,
            receiver=echo.receiver,
            line=echo.line,
            account=echo.account,
            data=data,
            extended=extended,
            timestamp=timestamp,
            encrypted=encrypted,
            ciphertext=ciphertext,
            deviations=deviations,
        )
    except ValueError as exc:  # the grammar above should make this unreachable
        raise MalformedFrame(str(exc), echo=echo) from exc


def _parse_content(
    text: str, echo: Echo | None = None
) -> tuple[str, tuple[str, ...], datetime | None]:
    """``data]`` ``[ext]``... ``_timestamp`` → (data, extended blocks, timestamp or None)."""
    m = _CONTENT.fullmatch(text)
    if m is None:
        raise MalformedFrame("data is not 'data]' + '[ext]'... + optional '_timestamp'", echo=echo)
    try:  # x-data is Windows-1252 (DC-09 5.5.1.8); the text here is the bytes as Latin-1
        extended = tuple(b.encode("latin-1").decode("cp1252") for b in _EXT_BLOCK.findall(m["ext"]))
    except UnicodeDecodeError as exc:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: no character
        raise InvalidText(f"x-data byte undefined in Windows-1252: {exc}", echo=echo) from None
    if m["ts"] is None:
        return m["data"], extended, None
    try:
        return m["data"], extended, parse_timestamp(m["ts"])
    except MalformedFrame as exc:
        raise MalformedFrame(exc.message, echo=echo) from None


# ----------------------------------------------------------------------------- encoding


def encode_frame(frame: Frame, *, key: bytes | None = None, pad: bytes | None = None) -> bytes:
    """The wire bytes of ``frame``, <LF> to <CR>.

    Args:
        frame: what to write. A sealed frame is written with its ciphertext unchanged.
        key: the AES key; required when the frame is encrypted and not sealed.
        pad: the encryption pad (tests only); random by default, see :func:`encrypt`.

    Raises:
        ValueError: an encrypted frame without ``key``, a bad key or pad, or a frame longer
            than ``MAX_FRAME_BYTES``.
    """
    if frame.ciphertext is not None:
        after = frame.ciphertext
    elif frame.encrypted:
        if key is None:
            raise ValueError("an encrypted frame needs its key")
        after = encrypt(_content_text(frame), key, pad)
    else:
        after = _content_text(frame)
    return _wrap(f'"{frame.wire_token}"{_header_text(frame)}[{after}')


def _header_text(frame: Frame) -> str:
    parts = [frame.seq]
    if frame.receiver is not None:
        parts.append(f"R{frame.receiver}")
    if frame.line is not None:
        parts.append(f"L{frame.line}")
    if frame.account is not None:
        parts.append(f"#{frame.account}")
    return "".join(parts)


def _content_text(frame: Frame) -> str:
    """The content as the wire's bytes read as Latin-1 (x-data encoded in Windows-1252)."""
    ext = "".join(f"[{block.encode('cp1252').decode('latin-1')}]" for block in frame.extended)
    ts = "" if frame.timestamp is None else f"_{format_timestamp(frame.timestamp)}"
    return f"{frame.data}]{ext}{ts}"


def _wrap(body_text: str) -> bytes:
    body = body_text.encode("latin-1")
    out = b"\n%04X%04X%s\r" % (crc16_arc(body), len(body), body)
    if len(out) > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {len(out)} bytes exceeds {MAX_FRAME_BYTES}")
    return out


# ---------------------------------------------------------------------------- responses


def build_ack(
    frame: Frame,
    *,
    now: datetime | None = None,
    key: bytes | None = None,
    pad: bytes | None = None,
) -> bytes:
    """The ACK for ``frame``: its seq, receiver, line and account, and empty data ``[]``.

    For an encrypted frame it is ``*ACK`` whose encrypted part is ``pad|]_<now in UTC>``, so
    ``now`` and ``key`` are then required; a plaintext ACK carries no timestamp.

    Raises:
        ValueError: encrypted frame without ``now`` or ``key``; naive ``now``.
    """
    if not frame.encrypted:
        return encode_frame(_response(ACK, frame.echo))
    if now is None or key is None:
        raise ValueError("the ACK of an encrypted frame needs now and key")
    ack = _response(ACK, frame.echo, timestamp=_whole_second(now), encrypted=True)
    return encode_frame(ack, key=key, pad=pad)


def with_binary_crc(reply: bytes) -> bytes:
    """``reply`` (as the encoder writes it) with its CRC as two binary bytes, for the panels
    that send theirs so and read replies the same way.

    Raises:
        ValueError: ``reply`` is not a frame the encoder wrote.
    """
    if not (reply[:1] == b"\n" and _FIELD4.fullmatch(reply[1:5])):
        raise ValueError("not an encoded frame")
    return b"\n" + bytes.fromhex(reply[1:5].decode("ascii")) + reply[5:]


def build_nak(now: datetime) -> bytes:
    """The DC-09 NAK, ``"NAK"0000R0L0A0[]_HH:MM:SS,MM-DD-YYYY``, carrying receiver time.

    Sent when a frame cannot be read or trusted (bad CRC or length, malformed, decryption
    failed, timestamp missing or out of the window); the panel may reset its clock from it.
    """
    return _wrap(f'"NAK"0000R0L0A0[]_{format_timestamp(_whole_second(now))}')


def build_duh(echo: Echo) -> bytes:
    """The DUH for a well-formed frame the receiver cannot process: echoes the header, ``[]``.

    Raises:
        ValueError: ``echo`` holds fields no frame can carry.
    """
    return encode_frame(_response(DUH, echo))


def _response(
    token: str, echo: Echo, *, timestamp: datetime | None = None, encrypted: bool = False
) -> Frame:
    return Frame(
        token=token,
        seq=echo.seq,
        receiver=echo.receiver,
        line=echo.line,
        account=echo.account,
        timestamp=timestamp,
        encrypted=encrypted,
    )


def _whole_second(now: datetime) -> datetime:
    return require_aware(now, "now").replace(microsecond=0)


# ------------------------------------------------------------------------------ stream


class FrameBuffer:
    """Splits a TCP byte stream into frames: <LF> ... <CR>.

    ``feed`` returns, in stream order, each complete frame (bytes, <LF> and <CR> included,
    not yet parsed: pass it to :func:`parse_frame`) and a :class:`FrameTooLong` for each
    frame start not closed within ``max_frame`` bytes. Bytes outside frames are dropped
    and counted in ``discarded``; so is a frame start followed by another <LF> before its
    <CR> (a truncated frame: the buffer resynchronises on the later <LF>, since no valid
    frame contains one). The two bytes of a binary CRC (``<LF> cc 0LLL "``) are never taken
    for a <CR> or <LF>, once the 7 bytes after the <LF> have arrived. Between calls the
    buffer never holds more than ``max_frame`` bytes.
    """

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        if max_frame < 11:  # <LF> CRC LEN "" <CR> at the very least
            raise ValueError("max_frame is too small for any frame")
        self.max_frame = max_frame
        self.discarded = 0
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[bytes | Dc09Error]:
        """Add ``chunk`` and return the frames (and size errors) it completes, in order."""
        out: list[bytes | Dc09Error] = []
        self._buf += chunk
        while self._align():
            item = self._take()
            if item is None:
                break
            out.append(item)
        return out

    @property
    def pending(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    def _align(self) -> bool:
        """Drop bytes before the next <LF>; False if there is none (the buffer is then empty).

        This also skips the rest of an oversize frame: nothing is kept until a new <LF>.
        """
        start = self._buf.find(LF)
        if start < 0:
            self._drop(len(self._buf))
            return False
        self._drop(start)
        return True

    def _take(self) -> bytes | Dc09Error | None:
        """The frame or error at the head of the buffer (which starts with <LF>), or None."""
        while True:
            # A binary CRC (two bytes after <LF>) may hold a <CR> or <LF>: skip over it.
            first = 3 if _is_binary_crc(bytes(self._buf[1:8])) else 1
            end = self._buf.find(CR, first)
            stop = end if end >= 0 else len(self._buf)
            restart = self._buf.find(LF, first, stop)
            if restart < 0:
                break
            self._drop(restart)  # truncated frame: resynchronise on the later <LF>
        if end < 0:
            if len(self._buf) <= self.max_frame:
                return None  # wait for more
            size = len(self._buf)
            self._drop(size)
            return FrameTooLong(f"no frame end within {self.max_frame} bytes ({size} seen)")
        if end + 1 > self.max_frame:
            self._drop(end + 1)
            return FrameTooLong(f"frame of {end + 1} bytes exceeds {self.max_frame}")
        frame = bytes(self._buf[: end + 1])
        del self._buf[: end + 1]
        return frame

    def _drop(self, count: int) -> None:
        self.discarded += count
        del self._buf[:count]
