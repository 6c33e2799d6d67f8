"""The DC-09 exception tree. Every error carries a stable machine ``code``.

    Dc09Error                   base; code "dc09_error"; never raised itself
    ├── FrameTooLong            frame_too_long      over the frame size limit (stream or frame)
    ├── MalformedFrame          malformed_frame     not DC-09 framing or grammar
    ├── BadLength               bad_length          the length field differs from the body
    ├── BadCrc                  bad_crc             the CRC field differs from the body
    ├── UnknownToken            unknown_token       well-formed, but the ID token is not one we know
    ├── DecryptFailed           decrypt_failed      ciphertext absent, not hex, not whole
    │                                               blocks, or no DC-09 plaintext under this key
    ├── MissingTimestamp        missing_timestamp   an encrypted frame without its timestamp
    ├── StaleTimestamp          stale_timestamp     timestamp outside the receiver's window
    ├── EncryptionRequired      encryption_required plaintext frame for an account that has a
    │                                               key (raised by handling, not the codec)
    └── InvalidText             invalid_value       a well-formed frame whose data or extended
                                                    blocks hold a NUL or control character

``Dc09Error`` is an :class:`alarmdesk.domain.errors.InputError` (bad input from outside), so the
rest of alarmdesk can treat it like any other rejected input. ``echo`` holds the header fields
(sequence, receiver, line, account) when they were read before the failure, so a DUH or a log
line can name the message; it is ``None`` when the header itself could not be trusted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from alarmdesk.domain.errors import InputError


class Dc09ErrorCode(enum.StrEnum):
    """The stable machine codes; values never change once released."""

    BAD_CRC = "bad_crc"
    BAD_LENGTH = "bad_length"
    MALFORMED_FRAME = "malformed_frame"
    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105 (an error code, not a secret)
    DECRYPT_FAILED = "decrypt_failed"
    STALE_TIMESTAMP = "stale_timestamp"
    MISSING_TIMESTAMP = "missing_timestamp"
    FRAME_TOO_LONG = "frame_too_long"
    ENCRYPTION_REQUIRED = "encryption_required"
    INVALID_VALUE = "invalid_value"  # the code every intake edge uses for such text


@dataclass(frozen=True, slots=True)
class Echo:
    """The header fields a response echoes: sequence, receiver, line and account.

    ``receiver``, ``line`` and ``account`` are ``None`` when the frame did not carry them;
    responses then leave them out too.
    """

    seq: str
    receiver: str | None = None
    line: str | None = None
    account: str | None = None


class Dc09Error(InputError):
    """Base of every error the DC-09 codec raises on purpose."""

    code: str = "dc09_error"

    def __init__(self, message: str, *, echo: Echo | None = None) -> None:
        super().__init__(message)
        self.echo = echo

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class FrameTooLong(Dc09Error):
    """A frame, or the bytes after a frame start, exceed the frame size limit."""

    code = Dc09ErrorCode.FRAME_TOO_LONG


class MalformedFrame(Dc09Error):
    """The bytes are not a DC-09 frame: framing, fields or grammar are wrong."""

    code = Dc09ErrorCode.MALFORMED_FRAME


class BadLength(Dc09Error):
    """The length field does not equal the number of bytes it covers."""

    code = Dc09ErrorCode.BAD_LENGTH


class BadCrc(Dc09Error):
    """The CRC field does not equal the CRC-16/ARC of the bytes it covers."""

    code = Dc09ErrorCode.BAD_CRC


class UnknownToken(Dc09Error):
    """The frame is well formed but its ID token is not one this codec handles."""

    code = Dc09ErrorCode.UNKNOWN_TOKEN


class DecryptFailed(Dc09Error):
    """The encrypted part cannot be decrypted into DC-09 plaintext with the given key."""

    code = Dc09ErrorCode.DECRYPT_FAILED


class MissingTimestamp(Dc09Error):
    """An encrypted frame carries no timestamp (DC-09 makes it mandatory there)."""

    code = Dc09ErrorCode.MISSING_TIMESTAMP


class StaleTimestamp(Dc09Error):
    """The frame's timestamp lies outside the receiver's acceptance window."""

    code = Dc09ErrorCode.STALE_TIMESTAMP


class EncryptionRequired(Dc09Error):
    """A plaintext frame for an account configured with a key (possible injection)."""

    code = Dc09ErrorCode.ENCRYPTION_REQUIRED


class InvalidText(Dc09Error):
    """CRC and length hold, but a data or extended block holds a NUL or control character.

    No signal may carry such text (:func:`alarmdesk.domain.signal.check_text`), and the
    panel's resend would be the same bytes: answered DUH, never NAK.
    """

    code = Dc09ErrorCode.INVALID_VALUE
