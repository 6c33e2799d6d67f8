"""The receiver's decision for one frame: accept (ACK), reject (NAK or DUH), or ignore.

Still pure: the caller supplies the frame bytes, the receiver clock and a key lookup, and
gets back what to store and what to send. Policy:

==========================================  =========  ==========================
situation                                   reply      error code
==========================================  =========  ==========================
too long, malformed, bad length, bad CRC    NAK        frame_too_long, malformed_frame,
                                                       bad_length, bad_crc
well-formed, unknown token                  DUH        unknown_token
well-formed, NUL/control char in a block    DUH        invalid_value
encrypted, no key for the account           NAK        decrypt_failed
encrypted, does not decrypt                 NAK        decrypt_failed
encrypted, no timestamp                     NAK        missing_timestamp
timestamp outside the window                NAK        stale_timestamp
plaintext for an account that has a key     DUH        encryption_required
ACK, NAK or DUH from the peer               none       (ignored)
anything else                               ACK/*ACK   (accepted)
==========================================  =========  ==========================

NAK for frames that cannot be read lets the panel retry at once instead of waiting for its
ACK timeout; DUH tells it retrying the same message is pointless: it is the answer to every
frame whose CRC and length hold (so the panel would resend the very same bytes) but that can
never be accepted. The receiver adds one case: a frame whose signal fails
:func:`alarmdesk.domain.signal.validate` is answered DUH too (see docs/dc09.md).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from alarmdesk.intake.dc09.codec import (
    build_ack,
    build_duh,
    build_nak,
    decrypt_frame,
    parse_frame,
    with_binary_crc,
)
from alarmdesk.intake.dc09.errors import (
    Dc09Error,
    DecryptFailed,
    EncryptionRequired,
    InvalidText,
    UnknownToken,
)
from alarmdesk.intake.dc09.model import (
    BINARY_CRC,
    DEFAULT_WINDOW,
    RESPONSE_TOKENS,
    Frame,
    TimestampWindow,
)
from alarmdesk.intake.dc09.timestamps import check_frame_timestamp

#: account (``None`` when the frame names none) → its AES key, or ``None`` for no key.
KeyLookup = Callable[[str | None], bytes | None]


def no_keys(account: str | None) -> None:
    """A :data:`KeyLookup` for receivers without encrypted accounts."""
    return None


class Verdict(enum.StrEnum):
    """What the receiver does with a frame."""

    ACCEPTED = "accepted"  # store the frame, then send the ACK
    REJECTED = "rejected"  # store nothing, send the NAK or DUH
    IGNORED = "ignored"  # a response from the peer: store nothing, send nothing


@dataclass(frozen=True, slots=True)
class Outcome:
    """The decision for one frame.

    Attributes:
        verdict: accepted, rejected or ignored.
        frame: the decoded (decrypted) frame when accepted or ignored; ``None`` when rejected.
        reply: bytes to send back, or ``None``. For an accepted frame this is the ACK, which
            alarmdesk's durability contract says to send only once the frame is committed.
        error: why it was rejected, else ``None``.
    """

    verdict: Verdict
    frame: Frame | None
    reply: bytes | None
    error: Dc09Error | None = None


def handle_frame(
    raw: bytes,
    *,
    now: datetime,
    key_for: KeyLookup = no_keys,
    window: TimestampWindow | None = DEFAULT_WINDOW,
    check_plain: bool = False,
    require_encryption: bool = True,
    pad: bytes | None = None,
) -> Outcome:
    """Decide what to do with one frame from :class:`~alarmdesk.intake.dc09.FrameBuffer`.

    Args:
        raw: the frame bytes.
        now: the receiver clock (aware), used for the window and the NAK/*ACK timestamps.
        key_for: the AES key of an account, or ``None``.
        window: accepted timestamp offsets; ``None`` turns the window check off.
        check_plain: also check timestamps of plaintext frames against ``window``.
        require_encryption: refuse plaintext frames from accounts that have a key.
        pad: the *ACK's encryption pad (tests only).

    Raises:
        ValueError: ``key_for`` returned a key that is not 16, 24 or 32 bytes; naive ``now``.
    """
    try:
        frame = parse_frame(raw)
        if frame.token in RESPONSE_TOKENS:
            return Outcome(Verdict.IGNORED, frame, None)
        key = key_for(frame.account)
        frame = _unseal(frame, key, require_encryption)
        check_frame_timestamp(frame, now, window, check_plain=check_plain)
    except Dc09Error as error:
        return reject(error, now)
    ack = build_ack(frame, now=now, key=key, pad=pad)
    if BINARY_CRC in frame.deviations:  # answered in the form it was asked
        ack = with_binary_crc(ack)
    return Outcome(Verdict.ACCEPTED, frame, ack)


def reject(error: Dc09Error, now: datetime) -> Outcome:
    """The rejection for ``error`` (also for :class:`FrameBuffer`'s ``FrameTooLong``)."""
    return Outcome(Verdict.REJECTED, None, reply_for_error(error, now), error)


def reply_for_error(error: Dc09Error, now: datetime) -> bytes:
    """DUH for well-formed frames we will not process, NAK (with ``now``) for the rest."""
    if isinstance(error, UnknownToken | EncryptionRequired | InvalidText) and error.echo:
        try:
            return build_duh(error.echo)
        except ValueError:  # an echo no response can carry (e.g. a 1-digit account)
            pass
    return build_nak(now)


def _unseal(frame: Frame, key: bytes | None, require_encryption: bool) -> Frame:
    if frame.sealed:
        if key is None:
            raise DecryptFailed(f"no key for account {frame.account}", echo=frame.echo)
        return decrypt_frame(frame, key)
    if key is not None and require_encryption:
        raise EncryptionRequired(
            f"account {frame.account} has a key but sent plaintext", echo=frame.echo
        )
    return frame
