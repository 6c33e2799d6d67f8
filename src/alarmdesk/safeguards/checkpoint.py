"""Ed25519-signed log checkpoints in the C2SP signed-note / tlog-checkpoint format.

A checkpoint body (C2SP tlog-checkpoint) is::

    <origin>\\n
    <tree size, ASCII decimal, no leading zeros>\\n
    <root hash, standard base64 with padding>\\n
    [<extension line>\\n ...]

alarmdesk writes at most one extension line, ``time <RFC 3339 UTC>`` (for example
``time 2026-11-25T10:00:00Z``); other extension lines are preserved on parsing.

The body is signed as a C2SP signed note: the body, one blank line, then one or more
signature lines ``"\\u2014 <key name> <base64(key id || signature)>\\n"`` (an em dash, a
space, the key name, a space, the base64). For Ed25519 (signature type ``0x01``)::

    key id    = SHA-256(key name || "\\n" || 0x01 || 32-byte public key)[:4]
    signature = Ed25519(private key, body bytes)          # the body including its final \\n
    vkey      = "<name>+<key id as 8 hex digits>+<base64(0x01 || public key)>"
    skey      = "PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || 32-byte seed)>"

The vkey/skey strings are the formats of golang.org/x/mod/sumdb/note, so the notes
interoperate with existing transparency-log tooling. A verifier ignores signature lines from
keys it does not know (so witnesses can add cosignatures) but rejects the note if none is
from the expected key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "ErrorCode",
    "VerifierKey",
    "format_checkpoint_body",
    "generate_key",
    "key_id",
    "open_note",
    "parse_and_verify_checkpoint",
    "parse_vkey",
    "sign_checkpoint",
    "sign_note",
    "vkey_for",
]

ALG_ED25519: Final = 0x01
"""Signed-note signature type byte for Ed25519."""

SIG_PREFIX: Final = "\u2014 "
"""Every signature line starts with an em dash (U+2014) and a space."""

MAX_SIGNATURES: Final = 100
"""A note with more signature lines than this is rejected as malformed."""

HASH_SIZE: Final = 32

ErrorCode = Literal["bad_signature", "malformed_checkpoint", "unknown_key"]


class CheckpointError(Exception):
    """A checkpoint note could not be accepted.

    ``code`` is one of:

    * ``"malformed_checkpoint"``: not a well-formed signed note or checkpoint body;
    * ``"unknown_key"``: no signature line from the expected key (name and key id);
    * ``"bad_signature"``: a signature line from the expected key does not verify.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A verified checkpoint: the log ``origin`` committed to ``root`` at ``size`` leaves."""

    origin: str
    size: int
    root: bytes
    time: datetime | None = None
    """Timestamp from the ``time`` extension line (timezone-aware UTC), if present."""
    extensions: tuple[str, ...] = ()
    """Extension lines other than ``time``, in order."""


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A parsed vkey: key name, 4-byte key id and the Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey


# --- small strict codecs ---------------------------------------------------------------

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}", re.ASCII)
_HEX8 = re.compile(r"[0-9a-f]{8}", re.ASCII)
_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z",
    re.ASCII,
)
_MAX_SIZE: Final = (1 << 63) - 1


def _b64decode_strict(text: str) -> bytes:
    """Standard base64 with padding; rejects non-canonical encodings (no malleability)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise ValueError("invalid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("non-canonical base64")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _check_key_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name) or _has_control(name):
        raise ValueError(
            f"invalid key name {name!r}: must be non-empty, without spaces, '+' or controls"
        )


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key id of an Ed25519 key.

    ``SHA-256(name || "\\n" || 0x01 || public_key)[:4]`` where ``name`` is UTF-8 encoded and
    ``public_key`` is the raw 32-byte key. Binding the name into the id means the same key
    pair under two names has two ids.
    """
    if len(public_key) != 32:
        raise ValueError("Ed25519 public key must be 32 bytes")
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    ).digest()[:4]


def vkey_for(name: str, public_key: Ed25519PublicKey) -> str:
    """Return the vkey string ``<name>+<hex key id>+<base64(0x01 || pubkey)>``."""
    _check_key_name(name)
    raw = public_key.public_bytes_raw()
    return f"{name}+{key_id(name, raw).hex()}+{_b64(bytes([ALG_ED25519]) + raw)}"


def generate_key(name: str) -> tuple[str, str]:
    """Generate an Ed25519 key pair for signing notes under ``name``.

    Returns ``(skey, vkey)``: the private signer key serialised as
    ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`` (keep secret) and the public
    verifier key as ``<name>+<hex key id>+<base64(0x01 || pubkey)>`` (publish). Raises
    :class:`ValueError` for an invalid key name (empty, spaces, ``+``, control chars).
    """
    _check_key_name(name)
    private = Ed25519PrivateKey.generate()
    raw_pub = private.public_key().public_bytes_raw()
    kid = key_id(name, raw_pub).hex()
    seed = private.private_bytes_raw()
    skey = f"PRIVATE+KEY+{name}+{kid}+{_b64(bytes([ALG_ED25519]) + seed)}"
    return skey, vkey_for(name, private.public_key())


def _parse_skey(skey: str) -> tuple[str, Ed25519PrivateKey]:
    parts = skey.split("+", 4)  # the base64 key may itself contain '+'; names may not
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise ValueError("not a signer key (expected PRIVATE+KEY+<name>+<id>+<key>)")
    _, _, name, kid, key_b64 = parts
    _check_key_name(name)
    try:
        raw = _b64decode_strict(key_b64)
    except ValueError as exc:
        raise ValueError("signer key: bad base64") from exc
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise ValueError("signer key: not an Ed25519 key")
    private = Ed25519PrivateKey.from_private_bytes(raw[1:])
    if key_id(name, private.public_key().public_bytes_raw()).hex() != kid:
        raise ValueError("signer key: key id does not match the key")
    return name, private


def check_key_pair(skey: str, vkey: str) -> None:
    """Raises :class:`ValueError` unless ``skey`` is a signer key and ``vkey`` its verifier
    key (as :func:`generate_key` made them)."""
    name, private = _parse_skey(skey)
    parse_vkey(vkey)
    if vkey_for(name, private.public_key()) != vkey:
        raise ValueError("the verifier key is not the signer key's")


def parse_vkey(vkey: str) -> VerifierKey:
    """Parse and self-check a vkey string; :class:`ValueError` if it is not a valid vkey."""
    parts = vkey.split("+", 2)  # the base64 key may itself contain '+'; names may not
    if len(parts) != 3:
        raise ValueError("not a verifier key (expected <name>+<id>+<key>)")
    name, kid, key_b64 = parts
    _check_key_name(name)
    if not _HEX8.fullmatch(kid):
        raise ValueError("verifier key: key id must be 8 lowercase hex digits")
    try:
        raw = _b64decode_strict(key_b64)
    except ValueError as exc:
        raise ValueError("verifier key: bad base64") from exc
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise ValueError("verifier key: not an Ed25519 key")
    if key_id(name, raw[1:]).hex() != kid:
        raise ValueError("verifier key: key id does not match the key")
    return VerifierKey(name, bytes.fromhex(kid), Ed25519PublicKey.from_public_bytes(raw[1:]))


# --- signed notes ----------------------------------------------------------------------


def _check_note_text(body: str) -> None:
    if not body.endswith("\n"):
        raise ValueError("note text must end with a newline")
    if any(c != "\n" and (ord(c) < 0x20 or ord(c) == 0x7F) for c in body):
        raise ValueError("note text must not contain control characters other than newline")
    try:
        body.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("note text must be valid UTF-8") from exc


def sign_note(body: str, private_key: str | Ed25519PrivateKey, key_name: str | None = None) -> str:
    """Sign ``body`` and return the complete signed note (body, blank line, one signature).

    ``private_key`` is an skey string (its name is used, and ``key_name`` must be ``None``
    or equal to it) or an :class:`Ed25519PrivateKey` (then ``key_name`` is required).
    ``body`` must be UTF-8 text ending in a newline with no control characters besides
    newline. Raises :class:`ValueError` otherwise.
    """
    _check_note_text(body)
    if isinstance(private_key, str):
        name, private = _parse_skey(private_key)
        if key_name is not None and key_name != name:
            raise ValueError(f"key name {key_name!r} does not match signer key {name!r}")
    else:
        if key_name is None:
            raise ValueError("key_name is required with a raw Ed25519PrivateKey")
        _check_key_name(key_name)
        name, private = key_name, private_key
    kid = key_id(name, private.public_key().public_bytes_raw())
    signature = private.sign(body.encode("utf-8"))
    return f"{body}\n{SIG_PREFIX}{name} {_b64(kid + signature)}\n"


def open_note(text: str, vkey: str | VerifierKey) -> str:
    """Verify a signed note against one verifier key and return its body (the signed text).

    Contract (C2SP signed-note): the note is ``body + "\\n" + signature lines``, split at
    the last blank line; every signature line must be well formed. Lines from other keys
    (different name or key id) are ignored. Raises :class:`CheckpointError` with code
    ``malformed_checkpoint`` (structure), ``unknown_key`` (no line from this key) or
    ``bad_signature`` (a line from this key fails to verify). A bad ``vkey`` raises
    :class:`ValueError` (a caller error, not a property of the note).
    """
    key = vkey if isinstance(vkey, VerifierKey) else parse_vkey(vkey)
    if not isinstance(text, str):
        raise CheckpointError("malformed_checkpoint", "note is not text")
    split = text.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed_checkpoint", "no blank line before the signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    try:
        _check_note_text(body)
    except ValueError as exc:
        raise CheckpointError("malformed_checkpoint", str(exc)) from exc
    if not sig_block.endswith("\n"):
        raise CheckpointError("malformed_checkpoint", "signature block must end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError("malformed_checkpoint", "too many signature lines")
    matched: bytes | None = None
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise CheckpointError("malformed_checkpoint", f"not a signature line: {line[:40]!r}")
        name, sep, sig_b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not sep or not name or " " in sig_b64:
            raise CheckpointError("malformed_checkpoint", "signature line is not '— name b64'")
        try:
            raw = _b64decode_strict(sig_b64)
        except ValueError as exc:
            raise CheckpointError("malformed_checkpoint", "signature is not base64") from exc
        if len(raw) < 5:
            raise CheckpointError("malformed_checkpoint", "signature too short")
        if name != key.name or raw[:4] != key.key_id:
            continue  # someone else's signature (e.g. a witness cosignature): ignore
        if matched is not None:
            raise CheckpointError("malformed_checkpoint", f"two signatures by key {name!r}")
        matched = raw[4:]
    if matched is None:
        raise CheckpointError(
            "unknown_key", f"no signature by key {key.name}+{key.key_id.hex()} on this note"
        )
    try:
        key.public_key.verify(matched, body.encode("utf-8"))
    except InvalidSignature as exc:
        raise CheckpointError(
            "bad_signature",
            f"signature by key {key.name}+{key.key_id.hex()} does not verify",
        ) from exc
    return body


# --- checkpoints -----------------------------------------------------------------------


def _format_time(when: datetime) -> str:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("checkpoint time must be timezone-aware")
    utc = when.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _parse_time(text: str) -> datetime:
    m = _TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"time is not RFC 3339 UTC ('...Z'): {text!r}")
    year, month, day, hour, minute, second, frac = m.groups()
    micro = int((frac or "0").ljust(6, "0"))
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC
    )


def format_checkpoint_body(
    origin: str,
    size: int,
    root: bytes,
    time: datetime | None = None,
    extensions: Sequence[str] = (),
) -> str:
    """Return the unsigned checkpoint body (tlog-checkpoint), every line newline-terminated.

    ``time`` (timezone-aware; rendered in UTC with ``Z``) becomes a ``time ...`` line after
    the root, followed by ``extensions``. Raises :class:`ValueError` for an empty origin, a
    negative or too-large size, a root that is not 32 bytes, an aware-less ``time``, or an
    empty/multi-line/``time``-prefixed extension line.
    """
    if not origin or "\n" in origin or _has_control(origin):
        raise ValueError("origin must be a non-empty single line without control characters")
    if isinstance(size, bool) or not 0 <= size <= _MAX_SIZE:
        raise ValueError(f"tree size out of range: {size}")
    if len(root) != HASH_SIZE:
        raise ValueError(f"root hash must be {HASH_SIZE} bytes")
    lines = [origin, str(size), _b64(root)]
    if time is not None:
        lines.append("time " + _format_time(time))
    for ext in extensions:
        if not ext or "\n" in ext or _has_control(ext) or ext.startswith("time "):
            raise ValueError(f"invalid extension line {ext!r}")
        lines.append(ext)
    return "".join(line + "\n" for line in lines)


def sign_checkpoint(
    origin: str,
    size: int,
    root: bytes,
    time: datetime | None,
    private_key: str | Ed25519PrivateKey,
    key_name: str | None = None,
    *,
    extensions: Sequence[str] = (),
) -> str:
    """Return a signed checkpoint note for ``(origin, size, root)`` with optional time line.

    ``private_key`` is an skey from :func:`generate_key` or a raw
    :class:`Ed25519PrivateKey`; ``key_name`` defaults to the skey's name, or to ``origin``
    for a raw key (tlog-checkpoint convention: the log's key is named after its origin).
    Raises :class:`ValueError` on invalid arguments (see :func:`format_checkpoint_body`).
    """
    body = format_checkpoint_body(origin, size, root, time, extensions)
    if not isinstance(private_key, str) and key_name is None:
        key_name = origin
    return sign_note(body, private_key, key_name)


def parse_and_verify_checkpoint(text: str, vkey: str | VerifierKey) -> Checkpoint:
    """Verify a signed checkpoint note against ``vkey`` and parse its body.

    The signature is checked before the body is interpreted. Raises
    :class:`CheckpointError` (see its codes); a malformed ``vkey`` raises :class:`ValueError`.
    """
    body = open_note(text, vkey)
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("malformed_checkpoint", "checkpoint needs origin, size and root")
    origin, size_text, root_text, *rest = lines
    if not origin:
        raise CheckpointError("malformed_checkpoint", "empty origin line")
    if not _DECIMAL.fullmatch(size_text) or int(size_text) > _MAX_SIZE:
        raise CheckpointError("malformed_checkpoint", f"bad tree size {size_text!r}")
    try:
        root = _b64decode_strict(root_text)
    except ValueError as exc:
        raise CheckpointError("malformed_checkpoint", "root hash is not base64") from exc
    if len(root) != HASH_SIZE:
        raise CheckpointError("malformed_checkpoint", f"root hash is not {HASH_SIZE} bytes")
    when: datetime | None = None
    extensions: list[str] = []
    for line in rest:
        if not line:
            raise CheckpointError("malformed_checkpoint", "empty extension line")
        if line.startswith("time "):
            if when is not None:
                raise CheckpointError("malformed_checkpoint", "more than one time line")
            try:
                when = _parse_time(line[len("time ") :])
            except ValueError as exc:
                raise CheckpointError("malformed_checkpoint", str(exc)) from exc
        else:
            extensions.append(line)
    return Checkpoint(origin, int(size_text), root, when, tuple(extensions))
