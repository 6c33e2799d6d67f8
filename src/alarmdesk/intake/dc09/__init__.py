"""SIA DC-09 codec: frames, CRC, AES, Contact ID / SIA DC-03 events, receiver responses.

Pure: no sockets, no asyncio, no clock, no database. A receiver feeds socket bytes to a
:class:`FrameBuffer`, passes each frame to :func:`handle_frame` (or to :func:`parse_frame`
and friends), stores what is accepted and then writes the reply.

    buffer = FrameBuffer()  # one per connection
    for item in buffer.feed(chunk):
        if isinstance(item, Dc09Error):
            outcome = reject(item, now)
        else:
            outcome = handle_frame(item, now=now, key_for=lambda acct: keys.get(acct or ""))
        if outcome.verdict is Verdict.ACCEPTED:
            ...  # store events_from_frame(outcome.frame), commit
        ...  # then write outcome.reply, if any
"""

from alarmdesk.intake.dc09.codec import (
    FrameBuffer,
    build_ack,
    build_duh,
    build_nak,
    crc16_arc,
    decrypt_frame,
    encode_frame,
    parse_frame,
)
from alarmdesk.intake.dc09.crypto import check_key, decrypt, encrypt, pad_length, split_pad
from alarmdesk.intake.dc09.errors import (
    BadCrc,
    BadLength,
    Dc09Error,
    Dc09ErrorCode,
    DecryptFailed,
    Echo,
    EncryptionRequired,
    FrameTooLong,
    InvalidText,
    MalformedFrame,
    MissingTimestamp,
    StaleTimestamp,
    UnknownToken,
)
from alarmdesk.intake.dc09.events import (
    AlarmEvent,
    CodeEntry,
    CodeMap,
    EventKind,
    classify,
    events_from_frame,
    load_code_map,
    parse_code_map,
    parse_contact_id,
    parse_sia,
)
from alarmdesk.intake.dc09.handling import (
    KeyLookup,
    Outcome,
    Verdict,
    handle_frame,
    no_keys,
    reject,
    reply_for_error,
)
from alarmdesk.intake.dc09.model import (
    DEFAULT_WINDOW,
    ENCRYPTABLE_TOKENS,
    EVENT_TOKENS,
    KNOWN_TOKENS,
    MAX_FRAME_BYTES,
    RESPONSE_TOKENS,
    Frame,
    TimestampWindow,
)
from alarmdesk.intake.dc09.timestamps import (
    check_frame_timestamp,
    check_timestamp,
    format_timestamp,
    parse_timestamp,
)

__all__ = [
    "DEFAULT_WINDOW",
    "ENCRYPTABLE_TOKENS",
    "EVENT_TOKENS",
    "KNOWN_TOKENS",
    "MAX_FRAME_BYTES",
    "RESPONSE_TOKENS",
    "AlarmEvent",
    "BadCrc",
    "BadLength",
    "CodeEntry",
    "CodeMap",
    "Dc09Error",
    "Dc09ErrorCode",
    "DecryptFailed",
    "Echo",
    "EncryptionRequired",
    "EventKind",
    "Frame",
    "FrameBuffer",
    "FrameTooLong",
    "InvalidText",
    "KeyLookup",
    "MalformedFrame",
    "MissingTimestamp",
    "Outcome",
    "StaleTimestamp",
    "TimestampWindow",
    "UnknownToken",
    "Verdict",
    "build_ack",
    "build_duh",
    "build_nak",
    "check_frame_timestamp",
    "check_key",
    "check_timestamp",
    "classify",
    "crc16_arc",
    "decrypt",
    "decrypt_frame",
    "encode_frame",
    "encrypt",
    "events_from_frame",
    "format_timestamp",
    "handle_frame",
    "load_code_map",
    "no_keys",
    "pad_length",
    "parse_code_map",
    "parse_contact_id",
    "parse_frame",
    "parse_sia",
    "parse_timestamp",
    "reject",
    "reply_for_error",
    "split_pad",
]
