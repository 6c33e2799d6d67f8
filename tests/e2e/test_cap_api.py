"""CAP 1.2 over HTTP: alerts in (every fixture from the field accepted, every invalid one
refused with nothing stored, hostile XML refused), Updates folded into the referenced alert's
incident; public warnings out (published by a supervisor, valid, audited, in the feed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from lxml import etree

from alarmdesk.intake import cap
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from tests.conftest import REPO_ROOT

FIXTURES = Path(__file__).parent.parent / "fixtures" / "cap"
CAP_XML = {"Content-Type": "application/cap+xml"}


def counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return repo.count(conn, t.signals), repo.count(conn, t.incidents)


def entries(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.audit_entries.c.entry).order_by(t.audit_entries.c.seq))
        return [json.loads(r.entry) for r in rows]


def alert(identifier: str, *, msg_type: str = "Alert", references: str = "", **kw: str) -> bytes:
    sent = kw.get("sent", datetime.now(UTC).replace(microsecond=0).isoformat())
    refs = f"<references>{references}</references>" if references else ""
    return f"""<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>met@example.org</sender><sent>{sent}</sent>
  <status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}
  <info><category>Met</category><event>{kw.get("event", "Storm")}</event>
    <urgency>Immediate</urgency><severity>{kw.get("severity", "Moderate")}</severity>
    <certainty>Observed</certainty><headline>Storm warning</headline>
    <area><areaDesc>Coast</areaDesc><circle>51.5,-0.12 10</circle></area></info>
</alert>""".encode()


def test_every_alert_from_the_field_is_stored_once_as_a_feed_signal(live_server) -> None:
    with live_server.client("intake") as client:
        for path in sorted((FIXTURES / "valid").glob("*.cap")):
            r = client.post("/api/v1/cap", content=path.read_bytes(), headers=CAP_XML)
            assert r.status_code == 202, (path.name, r.text)
            again = client.post(
                "/api/v1/cap",
                content=path.read_bytes(),
                headers={"Content-Type": "application/xml"},
            )
            assert again.json() == r.json(), "a resend gets the first receipt"
    with live_server.services.engine.connect() as conn:
        rows = conn.execute(sa.select(t.signals.c.source_kind, t.signals.c.payload)).all()
    assert len(rows) == 4
    assert {r.source_kind for r in rows} == {"feed"}
    assert {r.payload["cap"]["sender"] for r in rows} >= {"cap@ec.gc.ca", "AtHoc"}


@pytest.mark.parametrize(
    "body",
    [
        *(p.read_bytes() for p in sorted((FIXTURES / "invalid").glob("*.cap"))),
        b"""<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&x;</identifier></alert>""",
        b"""<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;&l;&l;">
<!ENTITY l3 "&l2;&l2;&l2;&l2;&l2;&l2;">]><alert>&l3;</alert>""",
        b"not xml at all",
    ],
    ids=["invalid", "invalid_xmlns", "external-entity", "billion-laughs", "not-xml"],
)
def test_a_document_that_is_not_valid_cap_is_refused_and_nothing_is_stored(
    live_server, body
) -> None:
    before = counts(live_server.services.engine)
    r = httpx.post(
        live_server.url + "/api/v1/cap",
        content=body,
        headers={**CAP_XML, **live_server.headers("intake")},
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_cap"
    assert "root:" not in error["message"]  # /etc/passwd was never read
    assert counts(live_server.services.engine) == before


def test_the_schema_violation_is_named_by_path_and_reason(live_server) -> None:
    body = (FIXTURES / "invalid" / "invalid.cap").read_bytes()
    r = httpx.post(
        live_server.url + "/api/v1/cap",
        content=body,
        headers={**CAP_XML, **live_server.headers("intake")},
    )
    assert r.json()["error"]["field"] == "/alert/info"
    assert "scope" in r.json()["error"]["message"]


def test_json_is_refused_with_415_and_only_intake_roles_may_submit(live_server) -> None:
    with live_server.client("intake") as client:
        r = client.post("/api/v1/cap", json={"identifier": "x"})
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    with live_server.client("auditor") as client:
        assert client.post("/api/v1/cap", content=alert("X"), headers=CAP_XML).status_code == 403


def test_a_protest_alert_is_refused_by_purpose_screening(live_server) -> None:
    with live_server.client("intake") as client:
        r = client.post("/api/v1/cap", content=alert("P-1", event="Protest march"), headers=CAP_XML)
    assert r.status_code == 422 and r.json()["error"]["code"] == "protected_purpose"


def test_an_update_and_a_cancel_fold_into_the_referenced_alert_s_incident(live_server) -> None:
    sent = "2026-01-10T08:00:00+00:00"
    ref = f"met@example.org,S-1,{sent}"
    with live_server.client("intake") as client:
        first = client.post("/api/v1/cap", content=alert("S-1", sent=sent), headers=CAP_XML)
        update = client.post(
            "/api/v1/cap",
            content=alert("S-2", msg_type="Update", references=ref, severity="Extreme"),
            headers=CAP_XML,
        )
        cancel = client.post(
            "/api/v1/cap",
            content=alert("S-3", msg_type="Cancel", references=ref),
            headers=CAP_XML,
        )
    incident_id = first.json()["incident_id"]
    assert incident_id is not None
    assert update.json()["incident_id"] == incident_id
    assert cancel.json()["incident_id"] == incident_id
    with live_server.client("operator") as op:
        inc = op.get(f"/api/v1/incidents/{incident_id}").json()
    assert inc["priority"] == 1  # Extreme, raised by the update
    assert inc["condition"] == "restored"  # the cancel
    assert inc["location"]["lat"] == 51.5


def _schema() -> etree.XMLSchema:
    xsd = REPO_ROOT / "src" / "alarmdesk" / "data" / "CAP-v1.2.xsd"  # the OASIS schema, as shipped
    return etree.XMLSchema(etree.parse(str(xsd)))


def test_a_supervisor_publishes_a_warning_and_its_update_the_public_reads_both(
    live_server,
) -> None:
    incident_id = live_server.post_signal(
        {
            "source_kind": "call",
            "source_id": "ct",
            "type_code": "HAZMAT",
            "occurred_at": datetime.now(UTC).isoformat(),
            "location": {"lat": 51.5, "lon": -0.12, "address": "Dock road 4"},
        }
    ).json()["incident_id"]
    warning = {
        "incident_id": incident_id,
        "event": "Chemical release",
        "headline": "Keep windows <closed> & stay inside",
        "description": "A chemical cloud drifts east.",
        "instruction": "Stay indoors.",
        "response_type": "Shelter",
        "radius_km": 2.5,
    }
    with live_server.client("operator") as op:
        assert op.post("/api/v1/cap/alerts", json=warning).status_code == 403
    with live_server.client("supervisor") as sup:
        made = sup.post("/api/v1/cap/alerts", json=warning)
        assert made.status_code == 201, made.text
        first = made.json()
        assert first["sent"].endswith("+00:00") and first["references"] is None
        update = sup.post(
            "/api/v1/cap/alerts",
            json={**warning, "msg_type": "Update", "references": first["identifier"]},
        ).json()
        assert update["references"] == (
            f"alarmdesk@example.invalid,{first['identifier']},{first['sent']}"
        )
        refused = sup.post(
            "/api/v1/cap/alerts", json={**warning, "headline": "Avoid the protest march"}
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "protected_purpose"
        orphan = sup.post(
            "/api/v1/cap/alerts", json={**warning, "msg_type": "Cancel", "references": "nope"}
        )
        assert orphan.status_code == 404
    doc = httpx.get(f"{live_server.url}/api/v1/cap/alerts/{first['identifier']}.xml")
    assert doc.status_code == 200 and doc.headers["content-type"].startswith("application/cap+xml")
    assert _schema().validate(etree.fromstring(doc.content))
    assert b"&lt;closed&gt; &amp; stay inside" in doc.content
    assert b"<circle>51.500000,-0.120000 2.5</circle>" in doc.content
    again = cap.parse(
        httpx.get(f"{live_server.url}/api/v1/cap/alerts/{update['identifier']}.xml").content
    )
    assert again.msg_type == "Update" and again.references[0].identifier == first["identifier"]
    assert httpx.get(f"{live_server.url}/api/v1/cap/alerts/nope.xml").status_code == 404
    feed = httpx.get(f"{live_server.url}/api/v1/cap/feed.atom")
    listed = cap.parse_feed(feed.content)
    assert [e.link.rsplit("/", 1)[1] for e in listed if e.link] == [
        f"{update['identifier']}.xml",
        f"{first['identifier']}.xml",
    ]
    published = [
        e
        for e in entries(live_server.services.engine)
        if e["op"] == "disclose" and e["object_id"] == str(incident_id)
    ]
    assert [(e["outcome"], e["rule"]) for e in published] == [
        ("allowed", "cap.publish"),
        ("allowed", "cap.publish"),
        ("denied", "protected_purpose"),
        ("denied", "not_found"),
    ]
    assert published[0]["detail"]["identifier"] == first["identifier"]
    assert "Keep windows" not in str(published)  # the audit log holds no content
