"""The signal mix every phase of bench/ingest.py sends or stores.

A pool of signal *variants* (everything but the idempotency key) is built once from a
seed: half panels (keyed equipment: 20,000 accounts x zones, so they fold into open
incidents by correlation key), 40 % calls and 10 % duty reports at random points of the
demo city (San Francisco), with the demo city's real call types. Requests are made from
pre-encoded templates: ``head + body_prefix + KEY + body_suffix`` with a fixed-width key,
so a request costs one bytes concatenation in the load generator.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

KEY_WIDTH = 12  # digits of the per-request counter inside an idempotency key
SF_LAT = (37.708, 37.810)
SF_LON = (-122.510, -122.385)

PANEL_EVENTS = [  # (weight, type code, zone, summary) as alarmdesk.simulate sends them
    (50, "ALRBS", "1", "Burglary, entry/exit door"),
    (15, "ALRBS", "2", "Burglary, interior PIR"),
    (10, "ALRF", "3", "Fire alarm, smoke detector"),
    (5, "ALRPANS", "4", "Silent panic, reception"),
    (17, "EQTRBL", "0", "AC power loss"),
]
DUTY_TYPES = ["SUSP", "VANDAL", "FSMOKE", "TRESPASS", "WELFARE", "ODOR", "WIRES", "THAZ"]
# The demo city's most frequent call types (alarmdesk/data/demo_city.json), with weights.
CALL_TYPES = [
    ("ALS", 1593),
    ("BLS", 1093),
    ("ALRF", 261),
    ("FSTRU", 149),
    ("ASSIST", 102),
    ("FOTHER", 82),
    ("CITASST", 76),
    ("MVA", 54),
    ("MVAINJY", 47),
    ("ELECHZD", 40),
    ("ENTRAP", 25),
    ("GASLEAK", 14),
]

_enc = msgspec.json.Encoder()


def variants(
    n: int,
    seed: int,
    occurred_at: datetime,
    *,
    panels: int = 20_000,
    lat: tuple[float, float] = SF_LAT,
    lon: tuple[float, float] = SF_LON,
) -> list[dict[str, Any]]:
    """``n`` signal dicts without an idempotency key (deterministic for a seed)."""
    rng = random.Random(seed)
    at = occurred_at.astimezone(UTC).isoformat()
    p_w = [w for w, *_ in PANEL_EVENTS]
    c_codes = [c for c, _ in CALL_TYPES]
    c_w = [w for _, w in CALL_TYPES]
    out: list[dict[str, Any]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.5:
            acct = rng.randrange(panels)
            prng = random.Random(acct)  # an account sits at one place
            _, code, zone, summary = rng.choices(PANEL_EVENTS, p_w)[0]
            out.append(
                {
                    "source_kind": "equipment",
                    "source_id": f"panel-{acct:05d}",
                    "type_code": code,
                    "occurred_at": at,
                    "location": {
                        "lat": round(prng.uniform(*lat), 5),
                        "lon": round(prng.uniform(*lon), 5),
                        "zone": zone,
                    },
                    "summary": summary,
                    "payload": {"account": f"{acct:05X}", "zone": zone},
                }
            )
        elif roll < 0.9:
            out.append(
                {
                    "source_kind": "call",
                    "source_id": f"calltaker-{rng.randint(1, 6)}",
                    "type_code": rng.choices(c_codes, c_w)[0],
                    "occurred_at": at,
                    "location": {
                        "lat": round(rng.uniform(*lat), 5),
                        "lon": round(rng.uniform(*lon), 5),
                        "address": f"{rng.randint(1, 40) * 100} Block of TEST ST",
                    },
                    "summary": "Caller reports a problem",
                    "payload": {},
                }
            )
        else:
            out.append(
                {
                    "source_kind": "duty",
                    "source_id": f"officer-{rng.randint(1, 50)}",
                    "type_code": rng.choice(DUTY_TYPES),
                    "occurred_at": at,
                    "location": {
                        "lat": round(rng.uniform(*lat), 5),
                        "lon": round(rng.uniform(*lon), 5),
                    },
                    "summary": "Seen on patrol",
                    "payload": {},
                }
            )
    return out


@dataclass(frozen=True, slots=True)
class Template:
    prefix: bytes  # body up to the key counter
    suffix: bytes  # body after it
    size: int  # body length in bytes

    def body(self, n: int) -> bytes:
        return self.prefix + b"%0*d" % (KEY_WIDTH, n) + self.suffix


def templates(vs: list[dict[str, Any]], key_prefix: str) -> list[Template]:
    """Body templates; the key of request n is ``f"{key_prefix}{n:0{KEY_WIDTH}d}"``."""
    out = []
    mark = "Z" * KEY_WIDTH
    for v in vs:
        raw = _enc.encode({**v, "idempotency_key": key_prefix + mark})
        i = raw.index(b'"idempotency_key":"') + len(b'"idempotency_key":"') + len(key_prefix)
        assert raw[i : i + KEY_WIDTH] == mark.encode()
        out.append(Template(raw[:i], raw[i + KEY_WIDTH :], len(raw)))
    return out


def alert_templates(
    vs: list[dict[str, Any]], key_prefix: str, *, wrap: bool = False
) -> list[Template]:
    """The same variants as Prometheus Alertmanager alerts (``POST /api/v2/alerts`` takes a
    JSON array of them): the signal's identity and location become labels, its summary an
    annotation, ``occurred_at`` ``startsAt``. The idempotency key is a label too, so every
    request is a new alert for Alertmanager as every signal is a new row for alarmdesk.
    ``wrap`` puts the alert in an array of one (a single-alert request)."""
    out = []
    mark = "Z" * KEY_WIDTH
    for v in vs:
        labels = {
            "alertname": v["type_code"],
            "source_kind": v["source_kind"],
            "source_id": v["source_id"],
            "lat": str(v["location"]["lat"]),
            "lon": str(v["location"]["lon"]),
            "idempotency_key": key_prefix + mark,
        }
        if "zone" in v["location"]:
            labels["zone"] = v["location"]["zone"]
        raw = _enc.encode(
            {
                "labels": labels,
                "annotations": {"summary": v["summary"]},
                "startsAt": v["occurred_at"],
            }
        )
        if wrap:
            raw = b"[" + raw + b"]"
        i = raw.index(b'"idempotency_key":"') + len(b'"idempotency_key":"') + len(key_prefix)
        assert raw[i : i + KEY_WIDTH] == mark.encode()
        out.append(Template(raw[:i], raw[i + KEY_WIDTH :], len(raw)))
    return out


def sqlite_rows(
    vs: list[dict[str, Any]], count: int, key_prefix: str, received_at: datetime
) -> list[dict[str, Any]]:
    """Rows of alarmdesk's ``signals`` table as SQLAlchemy stores them on SQLite
    (datetimes as naive-UTC text, JSON columns as json.dumps text, booleans as 0/1)."""
    rx = (
        received_at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    )
    rows = []
    rng = random.Random(7)
    for n in range(count):
        v = vs[n % len(vs)]
        occ = datetime.fromisoformat(v["occurred_at"]).astimezone(UTC).replace(tzinfo=None)
        rows.append(
            {
                "id": n + 1,
                "idempotency_key": f"{key_prefix}{n:0{KEY_WIDTH}d}",
                "fingerprint": f"{rng.getrandbits(96):024x}",
                "source_kind": v["source_kind"],
                "source_id": v["source_id"],
                "type_code": v["type_code"].upper(),
                "occurred_at": occ.isoformat(sep=" ", timespec="microseconds"),
                "received_at": rx,
                "location": json.dumps(v["location"]),
                "summary": v["summary"],
                "payload": json.dumps(v["payload"]),
                "condition": "active",
                "record_only": 0,
                "incident_id": 1 + n // 3,
            }
        )
    return rows
