"""Equipment-fault records of panels whose frames alarmdesk cannot take: an unknown account
(a link test, or an encrypted frame it has no key for), or a registered panel whose frames
cannot be read (no key here, a key that does not decrypt, plaintext where its key asks for
encryption). Each is an ``EQTRBL`` signal at most once per account and kind in ``every``
seconds: link tests and resends come every minute, an operator needs to hear it once."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alarmdesk.domain.signal import SignalIn, SourceKind
from alarmdesk.intake.dc09.errors import Dc09Error, EncryptionRequired
from alarmdesk.intake.dc09.model import Frame
from alarmdesk.intake.devices import Device, normalise_account

UNKNOWN_TYPE = "EQTRBL"  # a link test or unreadable frame from an unknown account
_MAX_REMEMBERED = 100_000


@dataclass(frozen=True, slots=True)
class Record:
    """A record to store, and what it is remembered as (to forget it if storing fails)."""

    key: str
    signal: SignalIn


class TroubleRecords:
    def __init__(self, key_prefix: str, every: float) -> None:
        self.key_prefix = key_prefix
        self.every = every
        self._last: OrderedDict[str, float] = OrderedDict()

    def _due(self, key: str, now: datetime) -> int | None:
        """The period's bucket when ``key`` is due again; else None (recorded lately)."""
        tick = now.timestamp()
        seen = self._last.get(key)
        if seen is not None and tick - seen < self.every:
            return None
        self._last[key] = tick
        self._last.move_to_end(key)
        while len(self._last) > _MAX_REMEMBERED:  # bounded: valid CRCs can name any account
            self._last.popitem(last=False)
        return int(tick // self.every)

    def forget(self, record: Record) -> None:
        """Storing ``record`` failed: the next frame records it again."""
        self._last.pop(record.key, None)

    def unknown(
        self, account: str, seq: str, now: datetime, *, frame: Frame | None = None
    ) -> Record | None:
        """An unknown account's link test (``frame``) or encrypted frame."""
        account = normalise_account(account) if account else "UNKNOWN"
        bucket = self._due(account, now)
        if bucket is None:
            return None
        readable = frame is not None
        what = "link test" if readable else "encrypted frame it cannot decrypt (no key)"
        payload: dict[str, Any] = {
            "protocol": "dc09",
            "account": account,
            "seq": seq,
            "unknown_account": True,
            "readable": readable,
        }
        if frame is not None:
            payload["token"] = frame.token
        signal = SignalIn(
            source_kind=SourceKind.EQUIPMENT,
            source_id=f"panel-{account}"[:128],
            type_code=UNKNOWN_TYPE,
            occurred_at=now,
            summary=f"Unknown DC-09 account {account}: {what}",
            idempotency_key=f"{self.key_prefix}{account}:unknown:{bucket}"[:200],
            payload=payload,
        )
        return Record(account, signal)

    def unreadable(
        self, device: Device, account: str, seq: str, now: datetime, error: Dc09Error
    ) -> Record | None:
        """A registered panel whose frames cannot be read: each of its alarms is refused until
        the set-up or the panel is fixed, and supervision would only say "missed check-in"."""
        account = normalise_account(account)
        key = f"{account}:unreadable"
        bucket = self._due(key, now)
        if bucket is None:
            return None
        if isinstance(error, EncryptionRequired):
            why = "sends plaintext, and its key asks for encryption"
        elif device.key is None:
            why = "sends encrypted frames, and no key is set for it"
        else:
            why = "sends encrypted frames its key does not decrypt"
        signal = SignalIn(
            source_kind=SourceKind.EQUIPMENT,
            source_id=device.id,
            type_code=UNKNOWN_TYPE,
            occurred_at=now,
            location=device.location(None),
            summary=f"DC-09 account {account} {why}: its alarms are refused",
            idempotency_key=f"{self.key_prefix}{account}:unreadable:{bucket}"[:200],
            payload={"protocol": "dc09", "account": account, "seq": seq, "reason": error.code},
        )
        return Record(key, signal)
