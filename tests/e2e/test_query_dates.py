"""Date and time query parameters: any text a client sends gets 200 or a 422 naming the
parameter (``invalid_value``), never a server error; extreme dates that overflow once made
UTC are refused like any other value out of range."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import LiveServer

INCIDENTS = "/api/v1/incidents"
REPORT = "/api/v1/reports/transparency"
WHY = "checking extreme dates"


def get(server: LiveServer, path: str, who: str, **params: str) -> httpx.Response:
    return httpx.get(server.url + path, params=params, headers=server.headers(who), timeout=30)


def assert_invalid(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_value", error
    assert error["field"] == field, error
    assert error["message"], error


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"from": "0001-01-01T00:00:00+14:00"}, "from", id="from year 1 east of UTC"),
        pytest.param({"to": "9999-12-31T23:59:59-14:00"}, "to", id="to year 9999 west of UTC"),
        pytest.param({"from": "0001-01-01T00:00:00+00:00"}, "from", id="from year 1"),
        pytest.param({"to": "9999-12-31T23:59:59+00:00"}, "to", id="to the last second"),
        pytest.param({"from": "1969-12-31T23:59:59Z"}, "from", id="from before 1970"),
        pytest.param({"to": "10000-01-01T00:00:00Z"}, "to", id="to year 10000"),
        pytest.param({"to": "9999-12-31"}, "to", id="to the last day"),
    ],
)
def test_an_incident_search_with_an_extreme_date_is_invalid_value(
    live_server: LiveServer, params: dict[str, str], field: str
) -> None:
    response = get(live_server, INCIDENTS, "operator", justification=WHY, **params)
    assert_invalid(response, field)


def test_an_incident_search_over_a_plain_range_still_works(live_server: LiveServer) -> None:
    response = get(
        live_server,
        INCIDENTS,
        "operator",
        justification=WHY,
        **{"from": "2020-01-01T00:00:00+14:00", "to": "2100-12-31T23:59:59-14:00"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"from": "0001-01-01", "to": "9999-12-31"}, "from", id="year 1 to 9999"),
        pytest.param({"from": "2026-01-01", "to": "9999-12-31"}, "to", id="to the last day"),
        pytest.param(
            {"from": "0001-01-01T00:00:00+14:00", "to": "2026-01-01"}, "from", id="from year 1"
        ),
        pytest.param(
            {"from": "2026-01-01", "to": "9999-12-31T23:59:59-14:00"}, "to", id="to past 9999"
        ),
        pytest.param({"period": "9999"}, "period", id="the year 9999"),
        pytest.param({"period": "9999-Q4"}, "period", id="the last quarter"),
        pytest.param({"period": "9999-12"}, "period", id="the last month"),
        pytest.param({"period": "0000"}, "period", id="the year 0"),
        pytest.param({"from": "2026-02-30", "to": "2026-03-01"}, "from", id="no such day"),
    ],
)
def test_a_transparency_report_for_an_extreme_period_is_invalid_value(
    live_server: LiveServer, params: dict[str, str], field: str
) -> None:
    assert_invalid(get(live_server, REPORT, "auditor", **params), field)


def test_a_transparency_report_for_a_plain_year_still_works(live_server: LiveServer) -> None:
    response = get(live_server, REPORT, "auditor", **{"from": "2026-01-01", "to": "2026-12-31"})
    assert response.status_code == 200, response.text
