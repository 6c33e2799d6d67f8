"""Build the San Francisco demo city from one real week of SF Fire Department calls.

    python scripts/build_demo_city.py \
        [--calls scripts/data/sf_fire_calls_2016-12-31_2017-01-07.csv.xz] \
        [--taxonomy scripts/data/apco_incident_types.tsv] \
        [--out src/alarmdesk/data/demo_city.json]

Input (both in scripts/data/, described in its README.md): DataSF "Fire Department Calls for
Service" (ODC PDDL), one row per responding unit, as CSV or xz-compressed CSV; and the APCO
ANS 2.103.1 incident-type list (to check every code we map to). Output: one
compact JSON file (sorted keys, coordinates rounded to 5 decimals) with the desks, stations,
units, the week's incidents, and demo alarm-panel accounts and cameras placed at the
addresses of real calls. The same input always gives byte-identical output: nothing depends
on the clock, the machine, the input's path or hash ordering.

Stdlib only, so it runs before the project's dependencies are installed.
"""

from __future__ import annotations

import argparse
import csv
import json
import lzma
import math
import re
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parents[1]
INPUTS = REPO_ROOT / "scripts" / "data"
DEFAULT_CALLS = INPUTS / "sf_fire_calls_2016-12-31_2017-01-07.csv.xz"
DEFAULT_TAXONOMY = INPUTS / "apco_incident_types.tsv"
DEFAULT_OUT = REPO_ROOT / "src" / "alarmdesk" / "data" / "demo_city.json"

LOCAL_TZ_NAME = "America/Los_Angeles"  # the dataset's times are local, without an offset
COORD_DECIMALS = 5  # ~1 m; the source locations are block-level anyway
BBOX_PAD_DEG = 0.01  # desks' jurisdictions reach a little past the outermost call
SIZE_BUDGET_BYTES = 600 * 1024
N_ACCOUNTS = 40
N_CAMERAS = 12

# APCO codes alarmdesk never uses, whatever the source says (docs/architecture.md, "The line
# we hold"): they describe people's lawful activity or status, not harm.
EXCLUDED_CODES = frozenset({"CIVDIS", "CURFEW", "ALIEN"})

# SF `Call Type` -> APCO ANS 2.103.1 code. Covers the types this week contains plus the other
# types DataSF publishes, so another week's extract builds too; an unknown type stops the build.
CALL_TYPE_TO_APCO: dict[str, str] = {
    "Administrative": "ADMIN",
    "Aircraft Emergency": "AIR",
    "Alarms": "ALRF",  # SFFD "Alarms" are fire alarms (automatic and manual)
    "Assist Police": "STDBY",
    "Citizen Assist / Service Call": "CITASST",
    "Confined Space / Structure Collapse": "BLDCLPSE",
    "Electrical Hazard": "ELECHZD",
    "Elevator / Escalator Rescue": "ENTRAP",
    "Explosion": "EXPLOS",
    "Extrication / Entrapped (Machinery, Vehicle)": "XTRACATE",
    "Fuel Spill": "HAZMAT",
    "Gas Leak (Natural and LP Gases)": "GASLEAK",
    "HazMat": "HAZMAT",
    "High Angle Rescue": "RESCUE",
    "Industrial Accidents": "ACCIND",
    "Lightning Strike (Investigation)": "FOTHER",
    "Marine Fire": "FMARINE",
    "Medical Incident": "SICK",  # refined by Call Type Group below
    # APCO ASSIST is "assist to other agency or request for manpower": mutual aid exactly.
    "Mutual Aid / Assist Outside Agency": "ASSIST",
    "Odor (Strange / Unknown)": "ODOR",
    "Oil Spill": "HAZMAT",
    "Other": "ASSIST",
    "Outside Fire": "FOTHER",
    "Smoke Investigation (Outside)": "FSMOKE",
    "Structure Fire": "FSTRU",
    "Structure Fire / Smoke in Building": "FSTRU",
    "Suspicious Package": "BOMB",
    "Traffic Collision": "MVA",  # refined by Call Type Group below
    "Train / Rail Fire": "FTRAIN",
    "Train / Rail Incident": "TRAIN",
    "Transfer": "TRANSFER",
    # APCO WATER covers "boat/jet ski accident, water evacuations"; MISBOATR is for people
    # missing from a boat, which a distress call is not (yet).
    "Watercraft in Distress": "WATER",
    "Water Rescue": "WATER",
    "Vehicle Fire": "FVEH",
}

# Where SF's triage (`Call Type Group`) says more than the call type, a more exact APCO code.
CALL_TYPE_GROUP_REFINEMENT: dict[tuple[str, str], str] = {
    ("Medical Incident", "Potentially Life-Threatening"): "ALS",  # advanced life support
    ("Medical Incident", "Non Life-threatening"): "BLS",  # basic life support
    ("Traffic Collision", "Potentially Life-Threatening"): "MVAINJY",
}

# Call types that are a fire or a rescue of people in danger: a priority-1 response when SF
# sent it as an emergency, whatever its Call Type Group (SF files most of them under "Alarm").
LIFE_THREAT_CALL_TYPES = frozenset(
    {
        "Aircraft Emergency",
        "Confined Space / Structure Collapse",
        "Explosion",
        "Extrication / Entrapped (Machinery, Vehicle)",
        "High Angle Rescue",
        "Marine Fire",
        "Outside Fire",
        "Structure Fire",
        "Structure Fire / Smoke in Building",
        "Train / Rail Fire",
        "Vehicle Fire",
        "Water Rescue",
        "Watercraft in Distress",
    }
)
LIFE_THREAT_GROUPS = frozenset({"Potentially Life-Threatening", "Fire"})

# SF `Unit Type` -> (alarmdesk unit kind, capabilities). Anything else is "support".
UNIT_TYPES: dict[str, tuple[str, list[str]]] = {
    "ENGINE": ("engine", ["fire", "medical", "rescue"]),
    "MEDIC": ("medic", ["medical"]),
    "TRUCK": ("truck", ["fire", "rescue"]),
    "CHIEF": ("chief", ["command"]),
    "RESCUE CAPTAIN": ("rescue", ["rescue", "medical"]),
    "RESCUE SQUAD": ("rescue", ["rescue", "medical"]),
    "PRIVATE": ("private", ["medical"]),
}
SUPPORT_UNIT: tuple[str, list[str]] = ("support", [])

ACCOUNT_ZONES = {
    "1": "Front door",
    "2": "Hall PIR",
    "3": "Smoke detector kitchen",
    "4": "Panic button reception",
}
ACCOUNT_CHECKIN_SECONDS = 90
CAMERA_ZONES = ["entrance", "yard"]
# People and vehicles alarm in the yard (closed to the public); fire and smoke anywhere
# (alarmdesk/data/frigate_labels.tsv).
CAMERA_ALARM_ZONES = ["yard"]

NEIGHBORHOOD_COLUMN = "Neighborhood  District"  # sic: two spaces in DataSF's header
_LOCATION_PAREN = re.compile(r"^\(\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)$")
_LOCATION_WKT = re.compile(r"^POINT\s*\(\s*(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)\s*\)$", re.I)
_DTTM = re.compile(r"^(\d{2})/(\d{2})/(\d{4}) (\d{1,2}):(\d{2}):(\d{2}) ([AP]M)$")


def priority(final_priority: str, call_type: str, call_type_group: str) -> int:
    """alarmdesk priority (1 = most urgent .. 5) from SF's final priority and triage.

    SF Final Priority 3 (emergency, lights and siren):
      - "Alarms" (an alarm panel or pull station, not yet confirmed)  -> 2
      - a potentially life-threatening or fire group, or a fire/rescue call type -> 1
      - any other emergency (non-life-threatening, hazards, assists)  -> 2
    SF Final Priority 2 (non-emergency) -> 3. Anything else (E, A, B, blank) -> 4.
    Priority 5 is left for the operations centre's own low-priority types.
    """
    if final_priority == "3":
        if call_type == "Alarms":
            return 2
        if call_type_group in LIFE_THREAT_GROUPS or call_type in LIFE_THREAT_CALL_TYPES:
            return 1
        return 2
    if final_priority == "2":
        return 3
    return 4


def apco_code(call_type: str, call_type_group: str) -> str:
    refined = CALL_TYPE_GROUP_REFINEMENT.get((call_type, call_type_group))
    return refined if refined is not None else CALL_TYPE_TO_APCO[call_type]


def parse_location(text: str) -> tuple[float, float] | None:
    """(lat, lon) from "(lat, lon)" (or WKT "POINT (lon lat)"); None if absent or implausible."""
    text = text.strip()
    if m := _LOCATION_PAREN.match(text):
        lat, lon = float(m[1]), float(m[2])
    elif m := _LOCATION_WKT.match(text):
        lon, lat = float(m[1]), float(m[2])
    else:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lat, lon


def local_timezone() -> tzinfo | None:
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    except ImportError:  # pragma: no cover - Python < 3.9
        return None
    try:
        return ZoneInfo(LOCAL_TZ_NAME)
    except ZoneInfoNotFoundError:
        return None


def parse_dttm(text: str, tz: tzinfo | None) -> datetime | None:
    """ "MM/DD/YYYY hh:mm:ss AM/PM" local time; None if empty or malformed.

    Parsed by hand: strptime's %p depends on the process locale.
    """
    m = _DTTM.match(text.strip())
    if not m:
        return None
    month, day, year, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not 1 <= hour <= 12:
        return None
    hour = hour % 12 + (12 if m[7] == "PM" else 0)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None


def seconds_between(start: datetime, end: datetime) -> int:
    # Aware datetimes in the same ZoneInfo subtract as wall time; go through UTC for true
    # elapsed seconds across a DST change.
    if start.tzinfo is not None:
        return round(end.timestamp() - start.timestamp())
    return round((end - start).total_seconds())


def rounded(value: float) -> float:
    return round(value, COORD_DECIMALS)


def station_id(station_area: str) -> str:
    return f"ST{int(station_area):02d}"


def open_text(path: Path) -> TextIO:
    """Opens the calls CSV, xz-compressed (the committed copy) or not; a BOM is skipped."""
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def load_apco_codes(path: Path) -> set[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return {row["code"] for row in csv.DictReader(f, delimiter="\t")}


def rectangle(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> dict[str, Any]:
    """GeoJSON Polygon, exterior ring counter-clockwise (RFC 7946 §3.1.6), closed."""
    ring = [
        [min_lon, min_lat],
        [max_lon, min_lat],
        [max_lon, max_lat],
        [min_lon, max_lat],
        [min_lon, min_lat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def slug(text: str) -> str:
    text = re.sub(r"\bblock of\b", " ", text, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def is_block_address(address: str) -> bool:
    """ "1600 Block of CLAY ST": a street block, where a building (and its panel) can be."""
    return " Block of " in address


def pick_spread(
    calls: list[dict[str, Any]], count: int, offset: int, used: set[str], *, blocks_only: bool
) -> list[dict[str, Any]]:
    """`count` calls spread evenly over the week (every Nth), each at a new address."""
    step = max(1, len(calls) // count)
    picked: list[dict[str, Any]] = []
    i = offset
    while len(picked) < count and i < offset + len(calls):
        call = calls[i % len(calls)]
        address = call["address"]
        if address and address not in used and (is_block_address(address) or not blocks_only):
            used.add(address)
            picked.append(call)
            i += step
        else:
            i += 1  # not a usable address: take the next call instead
    if len(picked) < count:
        raise SystemExit(f"only {len(picked)} distinct addresses for {count} demo sites")
    return picked


def build(calls_path: Path, taxonomy_path: Path) -> tuple[dict[str, Any], list[str]]:
    """The demo city document and a human-readable report of what was built and skipped."""
    report: list[str] = []
    apco = load_apco_codes(taxonomy_path)
    bad_codes = sorted(
        {c for c in CALL_TYPE_TO_APCO.values() if c not in apco or c in EXCLUDED_CODES}
        | {c for c in CALL_TYPE_GROUP_REFINEMENT.values() if c not in apco or c in EXCLUDED_CODES}
    )
    if bad_codes:
        raise SystemExit(f"mapping uses codes missing from the APCO list or excluded: {bad_codes}")

    tz = local_timezone()
    if tz is None:
        print(
            f"warning: no tz database for {LOCAL_TZ_NAME}; using naive local times", file=sys.stderr
        )

    with open_text(calls_path) as f:
        rows = list(csv.DictReader(f))
    report.append(f"rows: {len(rows)}")

    type_counts = Counter(r["Call Type"] for r in rows)
    report.append("call types (rows):")
    report.extend(
        f"  {n:5d}  {t}" for t, n in sorted(type_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    unmapped = sorted(t for t in type_counts if t not in CALL_TYPE_TO_APCO)
    if unmapped:
        raise SystemExit(f"unmapped SF call types, add them to CALL_TYPE_TO_APCO: {unmapped}")

    # Units: every row counts, with or without a location.
    unit_types: dict[str, Counter[str]] = defaultdict(Counter)
    unit_areas: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        unit_types[r["Unit ID"]][r["Unit Type"]] += 1
        if r["Station Area"].strip():
            unit_areas[r["Unit ID"]][r["Station Area"].strip()] += 1

    # Incidents: the first dispatched unit's row among rows with a usable location and time.
    skipped: Counter[str] = Counter()
    first_rows: dict[str, tuple[int, int, dict[str, str], tuple[float, float], datetime]] = {}
    for index, r in enumerate(rows):
        loc = parse_location(r["Location"])
        if loc is None:
            skipped["no parseable Location"] += 1
            continue
        received = parse_dttm(r["Received DtTm"], tz)
        if received is None:
            skipped["no parseable Received DtTm"] += 1
            continue
        try:
            seq = int(r["Unit sequence in call dispatch"])
        except ValueError:
            seq = sys.maxsize
        key = (seq, index)
        incident = r["Incident Number"]
        if incident not in first_rows or key < first_rows[incident][:2]:
            first_rows[incident] = (seq, index, r, loc, received)
    for reason, n in sorted(skipped.items()):
        report.append(f"rows skipped ({reason}): {n}")
    all_incidents = {r["Incident Number"] for r in rows}
    report.append(
        f"incidents: {len(all_incidents)}, with a location: {len(first_rows)}, "
        f"dropped: {len(all_incidents - first_rows.keys())}"
    )

    week_start = min(v[4] for v in first_rows.values())
    calls: list[dict[str, Any]] = []
    areas: dict[str, str] = {}  # incident -> station area ("" if SF left it blank)
    phase_notes: Counter[str] = Counter()
    for incident, (_, _, r, (lat, lon), received) in first_rows.items():
        phases: dict[str, int] = {}
        for name, column in (
            ("dispatch", "Dispatch DtTm"),
            ("on_scene", "On Scene DtTm"),
            ("available", "Available DtTm"),
        ):
            at = parse_dttm(r[column], tz)
            if at is None:
                phase_notes[f"{name} missing"] += 1
                continue
            seconds = seconds_between(received, at)
            if seconds < 0:
                phase_notes[f"{name} before received"] += 1
                continue
            phases[name] = seconds
        call_type, group = r["Call Type"], r["Call Type Group"].strip()
        calls.append(
            {
                "_incident": incident,
                "t": seconds_between(week_start, received),
                "type": apco_code(call_type, group),
                "sf_type": call_type,
                "priority": priority(r["Final Priority"].strip(), call_type, group),
                "lat": rounded(lat),
                "lon": rounded(lon),
                "address": r["Address"].strip(),
                "phases": phases,
            }
        )
        areas[incident] = r["Station Area"].strip()
    for note, n in sorted(phase_notes.items()):
        report.append(f"phases omitted ({note}): {n}")
    calls.sort(key=lambda c: (c["t"], c["_incident"]))

    # Stations: one per Station Area, at the median location of its incidents.
    by_area: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in calls:
        if areas[c["_incident"]]:
            by_area[areas[c["_incident"]]].append(c)
    all_areas = {a for counts in unit_areas.values() for a in counts} | by_area.keys()
    stations: list[dict[str, Any]] = []
    for area in sorted(all_areas, key=int):
        located = by_area.get(area)
        if not located:
            raise SystemExit(f"station area {area} has no located incident to place it")
        stations.append(
            {
                "id": station_id(area),
                "name": f"Station {int(area)}",
                "lat": rounded(statistics.median(c["lat"] for c in located)),
                "lon": rounded(statistics.median(c["lon"] for c in located)),
            }
        )

    def nearest_station(lat: float, lon: float) -> str:
        # Equirectangular distance: plenty for picking the nearest of a city's stations.
        k = math.cos(math.radians(lat))
        nearest: dict[str, Any] = min(
            stations,
            key=lambda s: ((s["lat"] - lat) ** 2 + ((s["lon"] - lon) * k) ** 2, s["id"]),
        )
        return str(nearest["id"])

    no_area = 0
    for c in calls:
        area = areas[c.pop("_incident")]
        if area:
            c["station"] = station_id(area)
        else:
            c["station"] = nearest_station(c["lat"], c["lon"])
            no_area += 1
    if no_area:
        report.append(f"calls without a Station Area, given the nearest station: {no_area}")

    units = []
    for unit_id in sorted(unit_types):
        sf_type = unit_types[unit_id].most_common(1)[0][0]
        kind, caps = UNIT_TYPES.get(sf_type, SUPPORT_UNIT)
        counts = unit_areas[unit_id]
        if not counts:
            raise SystemExit(f"unit {unit_id} never has a Station Area")
        # Most frequent station area; ties go to the lowest station number.
        area = min(counts, key=lambda a: (-counts[a], int(a)))
        units.append(
            {"id": unit_id, "kind": kind, "station": station_id(area), "capabilities": list(caps)}
        )

    lats = [c["lat"] for c in calls]
    lons = [c["lon"] for c in calls]
    min_lon, min_lat, max_lon, max_lat = min(lons), min(lats), max(lons), max(lats)
    split_lat = rounded(statistics.median(lats))
    pad = BBOX_PAD_DEG
    p_min_lon, p_min_lat = rounded(min_lon - pad), rounded(min_lat - pad)
    p_max_lon, p_max_lat = rounded(max_lon + pad), rounded(max_lat + pad)
    desks = [
        {
            "id": "north",
            "name": "North dispatch",
            "categories": ["*"],
            "jurisdiction": rectangle(p_min_lon, split_lat, p_max_lon, p_max_lat),
        },
        {
            "id": "south",
            "name": "South dispatch",
            "categories": ["*"],
            "jurisdiction": rectangle(p_min_lon, p_min_lat, p_max_lon, split_lat),
        },
        {
            "id": "alarms",
            "name": "Alarm monitoring",
            "categories": ["fire", "property", "violence", "equipment", "hazard", "medical"],
            "sources": ["equipment"],
            "jurisdiction": rectangle(p_min_lon, p_min_lat, p_max_lon, p_max_lat),
        },
    ]

    used_addresses: set[str] = set()
    # Panels sit in buildings, so on a street block; cameras may watch an intersection too.
    account_sites = pick_spread(calls, N_ACCOUNTS, 0, used_addresses, blocks_only=True)
    camera_sites = pick_spread(
        calls, N_CAMERAS, len(calls) // N_CAMERAS // 2, used_addresses, blocks_only=False
    )
    accounts = [
        {
            "account": f"{1000 + i:04X}",
            "site": f"Demo site {i + 1}, {c['address']}",
            "lat": c["lat"],
            "lon": c["lon"],
            "zones": dict(ACCOUNT_ZONES),
            "checkin_seconds": ACCOUNT_CHECKIN_SECONDS,
        }
        for i, c in enumerate(account_sites)
    ]
    cameras = [
        {
            "id": f"cam-{slug(c['address'])}",
            "site": f"Demo camera site {i + 1}, {c['address']}",
            "lat": c["lat"],
            "lon": c["lon"],
            "zones": list(CAMERA_ZONES),
            "alarm_zones": list(CAMERA_ALARM_ZONES),
        }
        for i, c in enumerate(camera_sites)
    ]

    city = {
        "name": "San Francisco (demo)",
        "source": {
            "dataset": "DataSF Fire Department Calls for Service",
            "file": calls_path.name.removesuffix(".xz"),  # the CSV, however it is stored
            "license": "ODC-PDDL-1.0",
            "timezone": LOCAL_TZ_NAME,
            "calls_start": week_start.isoformat(),
        },
        "center": {
            "lat": rounded(statistics.median(lats)),
            "lon": rounded(statistics.median(lons)),
        },
        "bbox": [min_lon, min_lat, max_lon, max_lat],
        "desks": desks,
        "stations": stations,
        "units": units,
        "calls": calls,
        "accounts": accounts,
        "cameras": cameras,
    }

    kinds = Counter(u["kind"] for u in units)
    report.append(f"calls: {len(calls)}  stations: {len(stations)}  units: {len(units)}")
    report.append(f"units by kind: {dict(sorted(kinds.items()))}")
    report.append(f"priorities: {dict(sorted(Counter(c['priority'] for c in calls).items()))}")
    report.append("call type mapping (incidents):")
    mapping = Counter((c["sf_type"], c["type"]) for c in calls)
    report.extend(f"  {n:5d}  {sf} -> {code}" for (sf, code), n in sorted(mapping.items()))
    return city, report


def encode(city: dict[str, Any]) -> bytes:
    text = json.dumps(
        city, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return (text + "\n").encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=Path, default=DEFAULT_CALLS, help="SFFD calls CSV")
    parser.add_argument("--taxonomy", type=Path, default=DEFAULT_TAXONOMY, help="APCO TSV")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="demo city JSON to write")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)

    city, report = build(args.calls, args.taxonomy)
    data = encode(city)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    if not args.quiet:
        print("\n".join(report))
        print(f"wrote {args.out} ({len(data):,} bytes)")
    if len(data) > SIZE_BUDGET_BYTES:
        print(
            f"warning: {len(data):,} bytes is over the {SIZE_BUDGET_BYTES:,}-byte budget",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
