"""CAP 1.2: the codec against real alerts from the field, the mapping table, threads of
Updates and Cancels through the pipeline, and alerts written back (no database, no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest

from alarmdesk.domain.errors import ConfigError, InvalidCap, ProtectedPurposeError
from alarmdesk.domain.signal import content_digest, to_signal, validate
from alarmdesk.domain.taxonomy import Taxonomy, default_types
from alarmdesk.domain.units import Desk
from alarmdesk.intake import cap
from alarmdesk.pipeline import Pipeline

FIXTURES = Path(__file__).parent.parent / "fixtures" / "cap"
VALID = sorted((FIXTURES / "valid").glob("*.cap"))
INVALID = sorted((FIXTURES / "invalid").glob("*.cap"))
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
MAPPING = cap.default_mapping()


def alert_xml(
    identifier: str = "A-1",
    *,
    msg_type: str = "Alert",
    sent: str = "2026-11-25T09:00:00+01:00",
    references: str = "",
    category: str = "Fire",
    event: str = "Structure fire",
    severity: str = "Severe",
    urgency: str = "Immediate",
    headline: str = "Fire at the depot",
    area: str = "<circle>52.37,4.89 2</circle>",
    status: str = "Actual",
) -> bytes:
    refs = f"<references>{references}</references>" if references else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>agency@example.org</sender>
  <sent>{sent}</sent><status>{status}</status><msgType>{msg_type}</msgType>
  <scope>Public</scope>{refs}
  <info><category>{category}</category><event>{event}</event><urgency>{urgency}</urgency>
    <severity>{severity}</severity><certainty>Observed</certainty>
    <headline>{headline}</headline><description>Keep windows closed.</description>
    <area><areaDesc>Harbour district</areaDesc>{area}</area></info>
</alert>""".encode()


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_alert_from_the_field_is_accepted_and_makes_a_valid_feed_signal(path) -> None:
    alert = cap.parse(path.read_bytes())
    signal = validate(cap.to_signal(alert, MAPPING, cap.thread_of(alert, {})), NOW)
    assert signal.source_kind == "feed"
    assert signal.idempotency_key == alert.key
    assert signal.payload["cap"]["identifier"] == alert.identifier
    content_digest(signal)  # storable


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_every_invalid_document_is_refused_naming_the_element(path) -> None:
    with pytest.raises(InvalidCap) as err:
        cap.parse(path.read_bytes())
    assert err.value.code == "invalid_cap"
    assert err.value.field and err.value.field.startswith("/")


def test_a_missing_scope_is_named_by_its_place_and_the_schema_s_reason() -> None:
    with pytest.raises(InvalidCap) as err:
        cap.parse((FIXTURES / "invalid" / "invalid.cap").read_bytes())
    assert err.value.field == "/alert/info"
    assert "scope" in err.value.message and "not expected" in err.value.message


def test_a_sent_time_in_z_is_refused_as_the_schema_says() -> None:
    with pytest.raises(InvalidCap, match="sent"):
        cap.parse(alert_xml(sent="2026-11-25T09:00:00Z"))


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol3;</identifier></alert>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "xxe"])
def test_hostile_xml_is_refused_and_never_expanded(body) -> None:
    with pytest.raises(InvalidCap, match="DTD") as err:
        cap.parse(body)
    assert "root:" not in err.value.message and "lollol" not in err.value.message


def test_not_xml_and_oversized_documents_are_refused() -> None:
    with pytest.raises(InvalidCap, match="well-formed"):
        cap.parse(b"<alert")
    with pytest.raises(InvalidCap, match="larger"):
        cap.parse(b" " * (cap.MAX_DOCUMENT_BYTES + 1))


def test_type_and_priority_come_from_the_mapping_table() -> None:
    fire = cap.to_signal(cap.parse(alert_xml()), MAPPING, "t")
    assert (fire.type_code, fire.priority) == ("FSTRU", 2)  # "structure" → FSTRU, Severe → 2
    quake = cap.to_signal(
        cap.parse(alert_xml(category="Geo", event="Earthquake", severity="Extreme")), MAPPING, "t"
    )
    assert (quake.type_code, quake.priority) == ("MAJORINC", 1)
    past = cap.to_signal(cap.parse(alert_xml(urgency="Past")), MAPPING, "t")
    assert (past.type_code, past.priority) == ("INFO", 5)


def test_a_centre_s_mapping_replaces_the_shipped_one_and_is_screened(tmp_path) -> None:
    table = tmp_path / "map.tsv"
    header = "category\tevent\turgency\tseverity\tcertainty\ttype_code\tpriority\n"
    table.write_text(header + "Fire\t*\t*\t*\t*\tFBRUSH\t1\n")
    mine = cap.load_mapping(str(table))
    assert mine.resolve(cap.parse(alert_xml()).infos[0]) == ("FBRUSH", 1)
    bad = tmp_path / "protest.tsv"
    bad.write_text(header + "Security\tprotest|demonstration\t*\t*\t*\tASSAULT\t1\n")
    with pytest.raises(ProtectedPurposeError):
        cap.load_mapping(str(bad))
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text(header + "Weather\t*\t*\t*\t*\tINFO\t\n")
    with pytest.raises(ConfigError, match="Weather"):
        cap.load_mapping(str(wrong))


def test_the_area_becomes_a_point_and_its_geometry_stays_in_the_payload() -> None:
    square = "<polygon>52.0,4.0 52.0,5.0 53.0,5.0 53.0,4.0 52.0,4.0</polygon>"
    signal = cap.to_signal(cap.parse(alert_xml(area=square)), MAPPING, "t")
    assert signal.location is not None
    assert (signal.location.lat, signal.location.lon) == (52.5, 4.5)
    assert signal.location.address == "Harbour district"
    assert signal.payload["cap"]["areas"][0]["polygons"][0][0] == [52.0, 4.0]
    canada_xml = (FIXTURES / "valid" / "canada.cap").read_bytes()
    canada = cap.to_signal(cap.parse(canada_xml), MAPPING, "t")
    assert 41.7 < canada.location.lat < 42.7 and -83.2 < canada.location.lon < -81.5


def test_an_area_across_the_180th_meridian_is_placed_on_it_not_half_a_world_away() -> None:
    """A tsunami or cyclone warning for Taveuni (Fiji) or the Aleutians draws its polygon
    across the meridian: its point is where the polygon is (routing and the map use it),
    not the mean of 179.9 and -179.9, which is in the Atlantic."""
    taveuni = "<polygon>-16.6,179.8 -16.6,-179.9 -16.9,-179.9 -16.9,179.8 -16.6,179.8</polygon>"
    signal = cap.to_signal(cap.parse(alert_xml(area=taveuni)), MAPPING, "t")
    assert signal.location is not None
    assert signal.location.lat == pytest.approx(-16.75)
    assert signal.location.lon == pytest.approx(179.95)
    two = "<circle>51.9,179.6 10</circle><circle>51.9,-179.4 10</circle>"  # Aleutian islands
    point = cap.area_point(cap.parse(alert_xml(area=two)).infos[0].areas)
    assert point is not None and point[1] == pytest.approx(-179.9)

    def lon(i: int) -> float:
        x = 179.5 + i / 1000
        return x - 360 if x > 180 else x

    ring = " ".join(f"-16.{i % 10},{lon(i):.3f}" for i in range(600))
    big = cap.to_signal(
        cap.parse(alert_xml(area=f"<polygon>{ring} -16.0,179.5</polygon>")), MAPPING, "t"
    )
    assert big.payload["cap"]["geometry"] == "truncated"
    west, east = big.payload["cap"]["bbox"][1], big.payload["cap"]["bbox"][3]
    assert (west, east) == (179.5, pytest.approx(-179.901))  # west > east, as GeoJSON


def test_an_area_too_large_for_a_signal_keeps_its_bounding_box() -> None:
    ring = " ".join(f"{50 + i / 1000:.4f},{4 + i / 1000:.4f}" for i in range(600))
    ring += " 50.0000,4.0000"
    signal = validate(
        cap.to_signal(cap.parse(alert_xml(area=f"<polygon>{ring}</polygon>")), MAPPING, "t"), NOW
    )
    assert signal.payload["cap"]["geometry"] == "truncated"
    assert signal.payload["cap"]["bbox"][0] == 50.0


def test_tests_and_exercises_are_recorded_only_and_a_cancel_restores() -> None:
    exercise = cap.to_signal(cap.parse(alert_xml(status="Exercise")), MAPPING, "t")
    assert exercise.record_only
    cancel = cap.to_signal(
        cap.parse((FIXTURES / "valid" / "no_info_tag.cap").read_bytes()), MAPPING, "t"
    )
    assert cancel.condition == "restored" and cancel.type_code == "UNCLASS"


def test_an_update_takes_the_thread_of_the_alert_it_references() -> None:
    first = cap.parse(alert_xml("A-1"))
    update = cap.parse(
        alert_xml(
            "A-2",
            msg_type="Update",
            references="agency@example.org,A-1,2026-11-25T09:00:00+01:00",
            sent="2026-11-25T09:30:00+01:00",
        )
    )
    assert update.references[0].key == first.key
    assert cap.thread_of(first, {}) == first.key
    assert cap.thread_of(update, {first.key: "thread-of-a1"}) == "thread-of-a1"
    assert cap.thread_of(update, {}) == first.key  # the first alert itself not stored (yet)


def _signals(*docs: bytes):
    known: dict[str, str] = {}
    ids = count(1)
    for doc in docs:
        alert = cap.parse(doc)
        thread = cap.thread_of(alert, known)
        known[alert.key] = thread
        s = cap.to_signal(alert, MAPPING, thread)
        yield to_signal(s, id=next(ids), key=alert.key, fp="f", received_at=NOW)


def test_an_update_and_a_cancel_fold_into_the_incident_of_the_alert_they_reference() -> None:
    p = Pipeline(Taxonomy(default_types()), [Desk("all", "All")])
    ref1 = "agency@example.org,A-1,2026-11-25T09:00:00+01:00"
    alert, update, cancel = _signals(
        alert_xml("A-1", severity="Moderate"),
        # The update changes the event and its severity: another type, a higher priority.
        alert_xml(
            "A-2",
            msg_type="Update",
            references=ref1,
            event="Warehouse fire, toxic smoke",
            severity="Extreme",
            sent="2026-11-25T09:20:00+01:00",
        ),
        alert_xml(
            "A-3",
            msg_type="Cancel",
            references=f"{ref1} agency@example.org,A-2,2026-11-25T09:20:00+01:00",
            sent="2026-11-25T09:40:00+01:00",
        ),
    )
    opened = p.ingest(alert)
    inc = p.incidents[opened.incident_id]
    assert inc.priority == 3
    assert p.ingest(update).incident_id == inc.id
    assert inc.priority == 1 and inc.signal_count == 2
    assert p.ingest(cancel).incident_id == inc.id
    assert inc.condition.value == "restored"
    other = next(_signals(alert_xml("B-1")))
    assert p.ingest(other).incident_id != inc.id  # another alert: another incident


def test_a_written_alert_is_valid_cap_with_a_numeric_offset_and_reads_back() -> None:
    sent = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
    body = cap.build_alert(
        cap.OutAlert(
            identifier="alarmdesk-1",
            sender="centre@example.org",
            sent=sent,
            status="Actual",
            msg_type="Update",
            references=(("centre@example.org", "alarmdesk-0", sent - timedelta(hours=1)),),
            info=cap.OutInfo(
                category="Fire",
                event="Fire",
                urgency="Immediate",
                severity="Severe",
                certainty="Observed",
                headline="Smoke <over> the harbour & docks",
                area_desc="Harbour",
                circle=(52.37, 4.89, 2.0),
                expires=sent + timedelta(hours=4),
            ),
        )
    )
    assert b"<sent>2026-11-25T10:00:00+00:00</sent>" in body
    assert b"Z<" not in body
    assert b"&lt;over&gt; the harbour &amp; docks" in body
    back = cap.parse(body)
    assert back.references[0].identifier == "alarmdesk-0"
    assert back.infos[0].areas[0].circles == ((52.37, 4.89, 2.0),)


def test_feeds_in_atom_and_rss_list_their_alerts_inline_or_by_link() -> None:
    inline = alert_xml().split(b"?>", 1)[1]
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><id>f</id><title>t</title>'
        b"<updated>2026-11-25T09:00:00+00:00</updated>"
        b"<entry><id>e1</id><updated>u1</updated>"
        b'<link rel="alternate" type="application/cap+xml" href="/alerts/1.xml"/></entry>'
        b"<entry><id>e2</id><updated>u2</updated><content type='text/xml'>"
        + inline
        + b"</content></entry></feed>"
    )
    entries = cap.parse_feed(atom)
    assert [(e.id, e.link) for e in entries] == [("e1", "/alerts/1.xml"), ("e2", None)]
    assert entries[1].alert is not None and cap.parse(entries[1].alert).identifier == "A-1"
    rss = b"<rss version='2.0'><channel><item><guid>g</guid><link>http://x/a.xml</link></item></channel></rss>"
    assert cap.parse_feed(rss)[0].link == "http://x/a.xml"
    with pytest.raises(InvalidCap):
        cap.parse_feed(b"<html/>")


@pytest.mark.parametrize(
    "sent",
    [
        "9999-12-31T23:59:59-14:00",  # cannot be made UTC (the alert's key): was a 500
        "0001-01-01T00:00:00+14:00",
        "1969-12-31T23:59:59+00:00",
    ],
)
def test_a_sent_time_at_the_edge_of_the_calendar_is_refused_as_invalid_cap(sent) -> None:
    with pytest.raises(InvalidCap) as err:
        cap.parse(alert_xml(sent=sent))
    assert err.value.code == "invalid_cap"
    assert err.value.field == "/alert/sent"  # as a schema error on it is named


def test_a_reference_at_the_edge_of_the_calendar_folds_nothing_and_breaks_nothing() -> None:
    update = cap.parse(
        alert_xml(
            "A-2",
            msg_type="Update",
            references="agency@example.org,A-1,9999-12-31T23:59:59-14:00",
        )
    )
    assert update.references == ()
    assert cap.thread_of(update, {}) == update.key
