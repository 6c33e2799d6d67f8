"""The signal: one shape for every source (docs/architecture.md, "The signal").

``SignalIn`` is what an adapter or an HTTP client hands in; msgspec decodes and validates it
in one pass (no framework validation on the hot path). ``Signal`` is what is stored: the
same fields plus what alarmdesk sets (id, received time, the idempotency key it settled on).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from alarmdesk.domain.errors import (
    InvalidField,
    MalformedInput,
    PayloadTooLarge,
    ProtectedPurposeError,
)
from alarmdesk.domain.purpose import RULES, Match, find_protected

MAX_PAYLOAD_BYTES = 8 * 1024
MAX_PAYLOAD_DEPTH = 16  # nesting of objects and arrays inside ``payload``
MAX_FUTURE = timedelta(hours=24)
# Earlier times are a sender's broken clock, and years near 1 overflow once made UTC.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# The last instant any time a client gives may name: far beyond any data, and far enough from
# datetime.max that an offset or a day added to it stays representable.
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
# The keys the writer makes for keyless signals (``settle_key``); never looked up, so a client
# may not send one (it would collide with a stored signal's key instead of being its resend).
RESERVED_KEY_PREFIX = "auto:"
MAX_KEY_LENGTH = 200


class SourceKind(enum.StrEnum):
    EQUIPMENT = "equipment"  # panels, cameras, sensors
    DUTY = "duty"  # staff on duty reporting what they see
    CALL = "call"  # a call from the public taken by a call-taker
    FEED = "feed"  # another system over HTTP or CAP


Lat = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
# Characters that draw nothing: the format characters (soft hyphen, ALM, Mongolian vowel
# separator, zero-width space and joiners, LRM/RLM, bidi controls, word joiner and invisible
# operators, BOM, interlinear annotation), the combining grapheme joiner, variation selectors
# and the Hangul and Khmer fillers. A character class body written as escapes, which Python's
# re and a JSON Schema (ECMA-262) pattern read alike: the set-up's schema publishes it
# (docs/centre.schema.json). Tag characters (U+E0000...) are beyond what such a pattern can name.
INVISIBLE = (
    r"\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
)
# An id, a code or a name: at least one character that is neither white space nor invisible
# ("   " and "\u200b" name nothing). A msgspec pattern, searched like re.search.
NOT_BLANK = rf"[^\s{INVISIBLE}]"
_NOT_BLANK = re.compile(NOT_BLANK)
_NOT_BLANK_SHOWN = repr(NOT_BLANK)[1:-1]  # as msgspec's refusal quotes it


def is_blank(text: str) -> bool:
    """True when a text shows nothing: empty, white space and invisible characters only.

    The one rule of "blank" wherever a text must say something (``NOT_BLANK`` in schemas, a
    search's justification, an export's recipient).
    """
    return _NOT_BLANK.search(text) is None


def visible_length(text: str) -> int:
    """How many characters of a text show (neither white space nor invisible)."""
    return len(_NOT_BLANK.findall(text))


class Location(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    lat: Lat | None = None
    lon: Lon | None = None
    address: ShortText | None = None
    zone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    site: ShortText | None = None

    @property
    def has_point(self) -> bool:
        return self.lat is not None and self.lon is not None


class SignalIn(msgspec.Struct, forbid_unknown_fields=True):
    source_kind: SourceKind
    source_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=NOT_BLANK)]
    type_code: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=NOT_BLANK)]
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)]
    location: Location | None = None
    summary: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    idempotency_key: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_LENGTH)] | None
    ) = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    # A device's restore ("restored") marks its open incident's condition; it opens nothing.
    condition: Literal["active", "restored"] = "active"
    # Stored and counted, never alarmed: openings/closings, periodic tests, check-ins.
    record_only: bool = False
    # A call-taker's choice when open incidents are near: fold into this one, or open a new
    # incident whatever is near (``separate``). Neither: alarmdesk folds by its own rules.
    join: Annotated[int, msgspec.Meta(ge=1, le=2**53)] | None = None
    separate: bool = False
    # The sender's own priority (CAP's severity through the mapping table), over the type's.
    priority: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None


class SignalBatchIn(msgspec.Struct, forbid_unknown_fields=True):
    signals: Annotated[list[SignalIn], msgspec.Meta(min_length=1, max_length=1000)]


class Signal(msgspec.Struct, frozen=True):
    """A signal as stored: what came in, plus what alarmdesk set."""

    id: int
    idempotency_key: str
    content_digest: str
    received_at: datetime
    source_kind: SourceKind
    source_id: str
    type_code: str
    occurred_at: datetime
    location: Location | None
    summary: str
    payload: dict[str, Any]
    condition: str = "active"
    record_only: bool = False
    join: int | None = None
    separate: bool = False
    priority: int | None = None


class Receipt(msgspec.Struct, frozen=True):
    """What the source hears back once its signal is committed."""

    signal_id: int
    incident_id: int | None  # None: recorded only (a test, an opening, a restore of nothing)
    idempotency_key: str
    received_at: datetime


_decoder_one = msgspec.json.Decoder(SignalIn)
_decoder_batch = msgspec.json.Decoder(SignalBatchIn)
_encoder = msgspec.json.Encoder()


def _field_from(message: str) -> str | None:
    # msgspec says "... - at `$.location.lat`" or "missing required field `source_id`".
    if "- at `$" in message:
        path = message.rsplit("- at `$", 1)[1].rstrip("`")
        return path.lstrip(".") or None
    if "field `" in message:
        return message.split("field `", 1)[1].split("`", 1)[0]
    return None


def _validation_error(err: msgspec.ValidationError, prefix: str = "") -> InvalidField:
    message = str(err)
    field = _field_from(message)
    if message.startswith("Object missing required field") or message.startswith(
        "Object contains unknown field"
    ):
        code = "missing_field" if message.startswith("Object missing") else "unknown_field"
        if "- at `$" in message:  # nested: "... field `x` - at `$.location`"
            inner = message.split("field `", 1)[1].split("`", 1)[0]
            field = f"{field}.{inner}" if field else inner
    elif message.startswith("Expected") and ", got `" in message:
        code = "wrong_type"  # the JSON type is wrong ("Expected `str`, got `int`")
    else:
        code = "invalid_value"  # right type, refused value (range, length, format)
        if _NOT_BLANK_SHOWN in message:  # not the pattern itself, a line of escapes
            at = message.rsplit(" - at ", 1)[1] if " - at " in message else ""
            message = "Expected `str` showing a character, not only white space or invisible ones"
            message += f" - at {at}" if at else ""
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    return InvalidField(message, field=field, code=code)


# Text that no store keeps the same way, or that means nothing in a field: C0 controls, DEL
# and the C1 controls U+0080-U+009F (PostgreSQL refuses NUL outright; SQLite stores it; NEL and
# CSI break lines and drive terminals), and lone surrogates (not UTF-8). Also the explicit bidi
# controls, embeddings and overrides U+202A-U+202E and isolates U+2066-U+2069: they reorder
# what follows them on screen, beyond their own field (an address turned the coordinates shown
# after it around). The marks LRM, RLM and ALM (U+200E, U+200F, U+061C) reorder nothing and
# stay allowed: right-to-left text needs them.
# Free text may keep tab and line breaks; one-line fields keep none.
# One regex search each, in C, instead of a loop over the characters in Python.
_BIDI = "\u202a-\u202e\u2066-\u2069"
FORBIDDEN_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]")
FORBIDDEN_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]")
# The same in UTF-8 (JSON leaves them unescaped): a C1 control is 0xC2 0x80-0x9F (0xC2 is only
# ever a lead byte), a bidi control 0xE2 0x80 0xAA-0xAE or 0xE2 0x81 0xA6-0xA9. A search with a
# literal lead byte each, behind a test for that byte: one pattern with two lead bytes makes
# Python's regex try every position (10-20x slower on an 8 KiB payload with a dash in it).
_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")
_BIDI_UTF8 = re.compile(b"\xe2(?:\x80[\xaa-\xae]|\x81[\xa6-\xa9])")


def _bad_char(text: str, forbidden: re.Pattern[str]) -> str | None:
    if text.isascii() and text.isprintable():
        return None  # the common case, without even the regex
    found = forbidden.search(text)
    return None if found is None else found.group()


def check_text(text: str, field: str, *, multiline: bool = False) -> str:
    """Refuses control characters (and NUL), bidi controls and lone surrogates in one text.

    The one rule for every edge (HTTP, MQTT, DC-09, forms): the same input gets the same
    answer on SQLite and PostgreSQL.

    Raises:
        InvalidField: ``invalid_value``, naming the field and the character.
    """
    ch = _bad_char(text, FORBIDDEN_TEXT if multiline else FORBIDDEN_LINE)
    if ch is not None:
        what = "bidi control" if 0x202A <= ord(ch) <= 0x2069 else "control character"
        raise InvalidField(
            f"{field} contains the {what} U+{ord(ch):04X}",
            field=field,
            code="invalid_value",
        )
    return text


def check_time(when: datetime, field: str) -> datetime:
    """The one rule for a time a client gives (a body field, a query, a CAP alert's sent):
    with a UTC offset, and once made UTC within :data:`EARLIEST`..:data:`LATEST`, so that no
    conversion or arithmetic after it can overflow (``9999-12-31T23:59:59-14:00`` can't be
    made UTC at all).

    Raises:
        InvalidField: ``invalid_value`` naming the field.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidField(f"{field} needs a UTC offset", field=field, code="invalid_value")
    if not EARLIEST <= when <= LATEST:  # compared without converting: this cannot overflow
        raise InvalidField(
            f"{field} must lie between {EARLIEST.date()} and {LATEST.date()} (UTC)",
            field=field,
            code="invalid_value",
        )
    return when


def _reserved_key(field: str) -> InvalidField:
    return InvalidField(
        f"{field} may not start with {RESERVED_KEY_PREFIX!r}: those are the keys alarmdesk "
        "makes for signals sent without one",
        field=field,
        code="invalid_value",
    )


def check_key(key: str, field: str = "idempotency_key") -> str:
    """A client's idempotency key given outside the JSON body (the ``Idempotency-Key``
    header) held to the body field's rules: 1 to 200 characters, one line without control
    characters, not the prefix of alarmdesk's own keys.

    Raises:
        InvalidField: ``invalid_value`` naming the field.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidField(
            f"{field} must be 1 to {MAX_KEY_LENGTH} characters long",
            field=field,
            code="invalid_value",
        )
    check_text(key, field)
    if key.startswith(RESERVED_KEY_PREFIX):
        raise _reserved_key(field)
    return key


def _check_payload(value: Any, field: str, depth: int = 0) -> None:
    if depth > MAX_PAYLOAD_DEPTH:
        raise InvalidField(
            f"payload is nested more than {MAX_PAYLOAD_DEPTH} levels deep",
            field=field,
            code="invalid_value",
        )
    if isinstance(value, str):
        check_text(value, field, multiline=True)
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidField("payload keys must be text", field=field, code="wrong_type")
            check_text(k, f"{field}.{k[:40]}")
            _check_payload(v, f"{field}.{k[:40]}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_payload(v, f"{field}[{i}]", depth + 1)


_LINE_FIELDS = ("source_id", "type_code", "idempotency_key")
_LOCATION_FIELDS = ("address", "zone", "site")


def _texts_clean(signal: SignalIn) -> bool:
    """Whether ``_check_texts`` is sure to pass: one search over the one-line fields joined
    (joining makes no character and unmakes none) and one over the summary."""
    loc = signal.location
    line = [signal.source_id, signal.type_code, signal.idempotency_key or ""]
    if loc is not None:
        line += (loc.address or "", loc.zone or "", loc.site or "")
    return (
        _bad_char("".join(line), FORBIDDEN_LINE) is None
        and _bad_char(signal.summary or "", FORBIDDEN_TEXT) is None
    )


def _check_texts(signal: SignalIn, where: str) -> None:
    """``check_text`` on each text field in turn, so an error names the first bad one."""
    for name in _LINE_FIELDS:
        value = getattr(signal, name)
        if value:
            check_text(value, f"{where}{name}")
    if signal.summary:
        check_text(signal.summary, f"{where}summary", multiline=True)
    if signal.location is not None:
        for name in _LOCATION_FIELDS:
            value = getattr(signal.location, name)
            if value:
                check_text(value, f"{where}location.{name}")


@functools.lru_cache(maxsize=4096)
def _protected_code(type_code: str) -> Match | None:
    """The purpose screen's verdict on a type code, by code: a centre sends a few hundred
    codes at most, so the intake pays a dictionary look-up, not a screening, per signal (an
    unbounded stream of new codes costs one screening each, like a purpose)."""
    return find_protected(type_code)


def check(signal: SignalIn, now: datetime, *, prefix: str = "") -> SignalIn:
    """Checks what the schema cannot express; returns the signal unchanged.

    Raises:
        InvalidField: occurred_at too far in the future, a location with half a point,
            a control character in a text, a payload nested too deeply, an idempotency key
            with the prefix of alarmdesk's own keys.
        ProtectedPurposeError: the type code names a protected purpose (``PROTEST``): an
            unknown code is stored as it came and shared (EIDO), so it is screened like the
            code of an incident type.
        PayloadTooLarge: the payload encodes to more than ``MAX_PAYLOAD_BYTES``.
    """
    where = f"{prefix}." if prefix else ""
    if not _texts_clean(signal):
        _check_texts(signal, where)
    match = _protected_code(signal.type_code)
    if match is not None:
        raise ProtectedPurposeError(
            f"{where}type_code", match.rule, match.term, RULES.get(match.rule, "")
        )
    key = signal.idempotency_key
    if key is not None and key.startswith(RESERVED_KEY_PREFIX):
        raise _reserved_key(f"{where}idempotency_key")
    if signal.occurred_at < EARLIEST:
        raise InvalidField(
            "occurred_at is before 1970; check the sender's clock",
            field=f"{where}occurred_at",
            code="invalid_value",
        )
    if signal.occurred_at - now > MAX_FUTURE:
        raise InvalidField(
            "occurred_at is more than 24 hours in the future; check the sender's clock",
            field=f"{where}occurred_at",
            code="stale_timestamp",
        )
    loc = signal.location
    if loc is not None and (loc.lat is None) != (loc.lon is None):
        raise InvalidField(
            "location needs both lat and lon, or neither",
            field=f"{where}location",
            code="invalid_value",
        )
    if signal.payload:
        try:
            encoded = _encoder.encode(signal.payload)
        except RecursionError:
            raise InvalidField(
                "payload is nested too deeply", field=f"{where}payload", code="invalid_value"
            ) from None
        except UnicodeEncodeError:
            encoded = None  # a lone surrogate, which the walk below names
        if encoded is not None and len(encoded) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"payload is larger than {MAX_PAYLOAD_BYTES} bytes once encoded",
                field=f"{where}payload",
            )
        if encoded is None or not _flat_and_clean(signal.payload, encoded):
            _check_payload(signal.payload, f"{where}payload")
    return signal


def _flat_and_clean(payload: dict[str, Any], encoded: bytes) -> bool:
    """Whether ``_check_payload`` is sure to pass, read off the payload's JSON (the common
    case: one object of text keys and scalar values, no control character anywhere).

    JSON escapes every C0 control character with a backslash, and leaves DEL, the C1 controls
    and the bidi controls as they are (looked for as bytes); a lone surrogate cannot be encoded
    at all.
    One ``{`` and no ``[`` means nothing nested (a bracket inside a text only sends the
    payload to the full walk).
    """
    return (
        b"\\" not in encoded
        and b"\x7f" not in encoded
        and (b"\xc2" not in encoded or _C1_UTF8.search(encoded) is None)
        and (b"\xe2" not in encoded or _BIDI_UTF8.search(encoded) is None)
        and b"[" not in encoded
        and encoded.count(b"{") == 1
        and all(type(k) is str for k in payload)
    )


def validate(signal: SignalIn, now: datetime) -> SignalIn:
    """Validates a signal an adapter built in code exactly as the HTTP API validates a decoded
    one: the schema's limits (msgspec does not check them on construction), then ``check``.

    Every intake path (MQTT, DC-09, CAP, forms) calls this, so every path has the same limits
    and the same error codes.

    Raises:
        InvalidField, PayloadTooLarge: as ``decode_one`` would for the same signal as JSON.
    """
    try:
        checked = msgspec.convert(msgspec.structs.asdict(signal), SignalIn, from_attributes=True)
    except msgspec.ValidationError as err:
        raise _validation_error(err) from None
    except RecursionError:
        raise InvalidField(
            "payload is nested too deeply", field="payload", code="invalid_value"
        ) from None
    return check(checked, now)


def decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    """Decodes JSON with the one mapping of decoder errors to API errors."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as err:
        raise _validation_error(err) from None
    except msgspec.DecodeError as err:
        raise MalformedInput(f"body is not valid JSON: {err}") from None
    except RecursionError:
        raise MalformedInput("body is nested too deeply") from None


class _Twice(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Twice(key)
        out[key] = value
    return out


def duplicate_key(body: bytes) -> str | None:
    """The first key given twice in one object of a JSON text (decoders keep the last of two
    silently: ``{"step":1,"step":2}`` ticked step 2); None when there is none, or when the
    text is not JSON (the decoder's to say). For bodies a person writes (commands, set-up
    items), not the ingest path's."""
    try:
        json.loads(body, object_pairs_hook=_unique)
    except _Twice as twice:
        return twice.key
    except (ValueError, RecursionError):
        return None
    return None


def decode_one(body: bytes, now: datetime) -> SignalIn:
    """Decodes and validates one signal from JSON bytes."""
    signal: SignalIn = decode(_decoder_one, body)
    return check(signal, now)


def decode_batch(body: bytes, now: datetime) -> list[SignalIn]:
    """Decodes and validates a batch ``{"signals": [...]}``; one bad signal rejects all."""
    batch: SignalBatchIn = decode(_decoder_batch, body)
    for i, signal in enumerate(batch.signals):
        check(signal, now, prefix=f"signals[{i}]")
    return batch.signals


def content_digest(signal: SignalIn) -> str:
    """A digest of what the source said, to tell a true resend from a reused key."""
    body = _encoder.encode(
        (
            signal.source_kind,
            signal.source_id,
            signal.type_code,
            signal.occurred_at.astimezone(UTC),
            signal.location,
            signal.summary,
            signal.payload,
            signal.condition,
            signal.record_only,
            # only when given: digests of signals without a choice stay as they were
            *((signal.join, signal.separate) if signal.join or signal.separate else ()),
            *((signal.priority,) if signal.priority is not None else ()),
        )
    )
    return hashlib.blake2b(body, digest_size=12).hexdigest()


def settle_key(signal: SignalIn) -> str:
    """The idempotency key: the client's, or a fresh one (a keyless signal is never a repeat)."""
    return signal.idempotency_key or f"auto:{uuid.uuid4().hex}"


def to_signal(signal: SignalIn, *, id: int, key: str, fp: str, received_at: datetime) -> Signal:
    return Signal(
        id=id,
        idempotency_key=key,
        content_digest=fp,
        received_at=received_at,
        source_kind=signal.source_kind,
        source_id=signal.source_id,
        type_code=signal.type_code.upper(),
        occurred_at=signal.occurred_at.astimezone(UTC),
        location=signal.location,
        summary=signal.summary,
        payload=signal.payload,
        condition=signal.condition,
        record_only=signal.record_only,
        join=signal.join,
        separate=signal.separate,
        priority=signal.priority,
    )
