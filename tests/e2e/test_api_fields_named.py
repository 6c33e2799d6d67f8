"""What the API answers names the API's own fields: a report's bad option by its query or body
parameter (never the command line's flag), a dispatch's ``recommended`` units checked as its
``units`` are, and a set-up item's id taken from its path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest


def _error(r) -> dict:
    assert r.status_code == 422, r.text
    return r.json()["error"]


@pytest.mark.parametrize(
    ("query", "field", "code", "starts"),
    [
        ("from=0001-01-01&to=9999-12-31&own=true", "from", "invalid_date", "from 0001-01-01"),
        ("from=2026-13-01&to=2026-12-31&own=true", "from", "invalid_date", "from '2026-13-01'"),
        ("from=2026-01-01&to=2025-12-31&own=true", "to", "invalid_date", "to 2025-12-31"),
        ("from=2026-01-01&to=2026-01-02&timezone=Mars/Base", "timezone", "invalid_value", ""),
        ("from=2026-01-01&to=2026-01-02&by=bogus", "by", "invalid_value", "by 'bogus'"),
        ("from=2026-01-01&to=2026-01-02&by=hour,hour", "by", "invalid_value", "by names"),
        ("from=2026-01-01&to=2026-01-02&period=decade", "period", "invalid_value", "period"),
        ("from=2026-01-01&to=2026-01-02&own=true&source=x", "source", "invalid_value", "own "),
    ],
)
def test_a_kpi_report_s_bad_option_is_named_as_the_api_names_it(
    live_server, query, field, code, starts
) -> None:
    with live_server.client("supervisor") as sup:
        for path in ("/api/v1/reports/kpi", "/api/v1/reports/heat"):
            if path.endswith("heat") and field in ("by", "period"):
                continue  # the heat layer has neither
            error = _error(sup.get(f"{path}?{query}"))
            assert (error["code"], error["field"]) == (code, field), error
            assert "--" not in error["message"], error
            assert error["message"].startswith(starts or field), error


@pytest.mark.parametrize(
    ("body", "field", "starts"),
    [
        ({"by": ["bogus"]}, "by", "by 'bogus'"),
        ({"by": ["hour", "hour"]}, "by", "by names hour twice"),
        ({"timezone": "Mars/Base"}, "timezone", "timezone 'Mars/Base'"),
        ({"period": "decade"}, "period", "period 'decade'"),
    ],
)
def test_a_saved_report_s_bad_field_is_named_as_the_body_names_it(
    live_server, body, field, starts
) -> None:
    with live_server.client("supervisor") as sup:
        error = _error(sup.put("/api/v1/reports/saved/t1", json=body))
    assert (error["code"], error["field"]) == ("invalid_value", field), error
    assert "--" not in error["message"] and error["message"].startswith(starts), error


def test_a_dispatch_s_recommended_units_keep_only_units_that_exist(live_server) -> None:
    signal = {
        "source_kind": "call",
        "source_id": "ct-1",
        "type_code": "FSTRU",
        "occurred_at": datetime.now(UTC).isoformat(),
        "location": {"lat": 51.5, "lon": -0.1},
        "summary": "smoke",
    }
    inc = live_server.post_signal(signal).json()["incident_id"]
    url = f"/api/v1/incidents/{inc}/dispatch"
    with live_server.client("operator") as op:
        error = _error(op.post(url, json={"units": ["E1"], "recommended": ["E2"] * 101}))
        assert (error["code"], error["field"]) == ("invalid_value", "recommended"), error
        assert op.get(f"/api/v1/incidents/{inc}").json()["units"] == []
        recommended = ["<script>alert(9)</script>", "E2", "NOPE", "E2"]
        done = op.post(url, json={"units": ["E1"], "recommended": recommended})
        assert done.status_code == 200, done.text  # what is not a unit is left out
        timeline = op.get(f"/api/v1/incidents/{inc}").json()["timeline"]
    [dispatched] = [e for e in timeline if "recommended" in (e["detail"] or {})]
    assert dispatched["detail"]["recommended"] == ["E2"]
    assert dispatched["detail"]["override"] is True


@pytest.mark.parametrize(
    ("kind", "item_id", "body"),
    [
        ("units", "PX1", {"kind": "engine"}),
        ("stations", "ST9", {"name": "Harbour", "lat": 45.0, "lon": -2.0}),
        ("desks", "d9", {"name": "Harbour desk"}),
        ("cameras", "cam-9", {"site": "Quay", "lat": 45.0, "lon": -2.0}),
        ("panels", "panel-9", {"account": "7A09", "site": "Quay 9", "lat": 45.0, "lon": -2.0}),
        ("sensors", "sn-9", {"site": "Quay", "topic": {"topic": "q/9", "type": "FSTRU"}}),
    ],
)
def test_a_set_up_item_without_an_id_takes_the_path_s(live_server, kind, item_id, body) -> None:
    with live_server.client("admin") as admin:
        put = admin.put(f"/api/v1/setup/{kind}/{item_id}", json=body)
        assert put.status_code == 200, put.text
        assert put.json()["changes"]["added"][0]["id"] == item_id
        read = admin.get(f"/api/v1/setup/{kind}/{item_id}")
        assert read.status_code == 200, read.text
        assert read.json()["id"] == item_id
        again = admin.put(f"/api/v1/setup/{kind}/{item_id}", json=body)  # unchanged
        assert again.status_code == 200, again.text
        assert again.json()["changes"]["changed"] == [], again.text
        other = admin.put(f"/api/v1/setup/{kind}/{item_id}", json={**body, "id": "other-1"})
        error = _error(other)
        assert (error["code"], error["field"]) == ("invalid_value", "id"), error


def test_a_panel_named_by_its_account_keeps_its_default_id(live_server) -> None:
    body = {"account": "7A08", "site": "Quay 8", "lat": 45.0, "lon": -2.0}
    with live_server.client("admin") as admin:
        put = admin.put("/api/v1/setup/panels/panel-7A08", json=body)
        assert put.status_code == 200, put.text
        item = admin.get("/api/v1/setup/panels/panel-7A08").json()["item"]
    assert "id" not in item  # as a file that leaves it out writes it


def test_a_body_without_an_id_is_refused_as_before_when_its_json_is(live_server) -> None:
    with live_server.client("admin") as admin:
        url = "/api/v1/setup/stations/ST8"
        out_of_range = admin.put(url, content=b'{"name": "Quay", "lat": 1e400}')
        assert out_of_range.status_code in (400, 422), out_of_range.text
        malformed = admin.put(url, content=b'{"name": "Quay", "lat": NaN}')
        assert malformed.status_code == 400, malformed.text
        not_an_object = admin.put(url, content=b'["ST8"]')
        assert not_an_object.status_code in (400, 422), not_an_object.text
        assert admin.get(url).status_code == 404
