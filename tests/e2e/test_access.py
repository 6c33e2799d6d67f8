"""Access control: every role against every API route, generated from the one matrix in
``safeguards/access.py``; plus sessions, CSRF, desk scoping and sign-in throttling."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from alarmdesk.safeguards.access import MATRIX, Permission, Role
from alarmdesk.store import accounts
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from tests.conftest import TEST_PASSWORD, TEST_TOKENS, offline_app

_keys = itertools.count()
LIVE = {"status": ["new", "acknowledged", "dispatched", "on_scene"]}


def signal(lon: float = 5.0) -> dict:
    return {
        "source_kind": "call",
        "source_id": "ct",
        "type_code": "FSTRU",
        "occurred_at": datetime.now(UTC).isoformat(),
        "idempotency_key": f"a{next(_keys)}",
        "location": {"lat": 50.0, "lon": lon},
    }


# One plausible request per route: (method, path template, json body).
REQUESTS: dict[tuple[str, str], tuple[str, dict | None]] = {
    ("POST", "/api/v1/signals"): ("/api/v1/signals", "signal"),
    ("POST", "/api/v1/signals/batch"): ("/api/v1/signals/batch", "batch"),
    ("GET", "/api/v1/incidents"): ("/api/v1/incidents", None),
    ("GET", "/api/v1/incidents/{incident_id:int}"): ("/api/v1/incidents/{id}", None),
    ("GET", "/api/v1/incidents/nearby"): ("/api/v1/incidents/nearby?lat=51.5&lon=-0.1", None),
    ("GET", "/api/v1/setup"): ("/api/v1/setup", None),
    ("GET", "/api/v1/silences"): ("/api/v1/silences", None),
    ("POST", "/api/v1/silences"): ("/api/v1/silences", {"match": {}, "reason": "x"}),
    ("POST", "/api/v1/silences/{silence_id:int}/end"): ("/api/v1/silences/999/end", {}),
    ("GET", "/api/v1/silences/{silence_id:int}/signals"): ("/api/v1/silences/1/signals", None),
    ("GET", "/api/v1/reports/kpi"): ("/api/v1/reports/kpi?from=2026-12-01&to=2026-12-03", None),
    ("GET", "/api/v1/reports/heat"): ("/api/v1/reports/heat?from=2026-12-01&to=2026-12-03", None),
    ("GET", "/api/v1/reports/saved"): ("/api/v1/reports/saved", None),
    ("PUT", "/api/v1/reports/saved/{name:str}"): ("/api/v1/reports/saved/weekly", {"days": 7}),
    ("DELETE", "/api/v1/reports/saved/{name:str}"): ("/api/v1/reports/saved/nope", None),
    ("GET", "/api/v1/reports/saved/{name:str}/kpi"): ("/api/v1/reports/saved/nope/kpi", None),
    ("GET", "/api/v1/webhooks"): ("/api/v1/webhooks", None),
    ("POST", "/api/v1/webhooks"): ("/api/v1/webhooks", {"url": "ftp://refused.example/"}),
    ("DELETE", "/api/v1/webhooks/{webhook_id:int}"): ("/api/v1/webhooks/999", None),
    ("GET", "/api/v1/webhooks/{webhook_id:int}/deliveries"): (
        "/api/v1/webhooks/999/deliveries",
        None,
    ),
    ("POST", "/api/v1/setup/plan"): ("/api/v1/setup/plan", {"desks": []}),
    ("POST", "/api/v1/setup/apply"): ("/api/v1/setup/apply", {"no_such_kind": []}),
    ("POST", "/api/v1/units/{unit_id:str}/report"): (
        "/api/v1/units/E1/report",
        {"lat": 51.5, "lon": -0.1},
    ),
    ("GET", "/api/v1/incidents/{incident_id:int}/recommendation"): (
        "/api/v1/incidents/{id}/recommendation",
        None,
    ),
    ("GET", "/api/v1/incidents/{incident_id:int}/media"): ("/api/v1/incidents/{id}/media", None),
    ("GET", "/api/v1/incidents/{incident_id:int}/media/{n:int}"): (
        "/api/v1/incidents/{id}/media/1",
        None,
    ),
    ("GET", "/api/v1/incidents/{incident_id:int}/eido"): (
        "/api/v1/incidents/{id}/eido?recipient=Fire+Brigade",
        None,
    ),
    ("POST", "/api/v1/incidents/{incident_id:int}/{action:str}"): (
        "/api/v1/incidents/{id}/notes",
        {"text": "checked"},
    ),
    ("GET", "/api/v1/incident-types"): ("/api/v1/incident-types", None),
    ("POST", "/api/v1/incident-types"): ("/api/v1/incident-types", "type"),
    ("POST", "/api/v1/incident-types/{code:str}/approve"): (
        "/api/v1/incident-types/NOPE/approve",
        None,
    ),
    ("GET", "/api/v1/desks"): ("/api/v1/desks", None),
    ("GET", "/api/v1/units"): ("/api/v1/units", None),
    ("GET", "/api/v1/audit/export"): ("/api/v1/audit/export?justification=annual+audit", None),
    ("GET", "/api/v1/audit/pubkey"): ("/api/v1/audit/pubkey", None),
    ("GET", "/api/v1/reports/transparency"): ("/api/v1/reports/transparency?period=2026", None),
    ("GET", "/api/v1/stream"): ("/api/v1/stream", None),
    ("GET", "/api/v1/health"): ("/api/v1/health", None),
    ("POST", "/api/v1/cap"): ("/api/v1/cap", {"not": "cap"}),
    ("POST", "/api/v1/cap/alerts"): ("/api/v1/cap/alerts", {"incident_id": 999}),
    ("GET", "/api/v1/cap/alerts/{name:str}"): ("/api/v1/cap/alerts/none.xml", None),
    ("GET", "/api/v1/cap/feed.atom"): ("/api/v1/cap/feed.atom", None),
    ("POST", "/api/v1/session"): ("/api/v1/session", {"name": "nobody", "password": "x" * 12}),
    ("GET", "/api/v1/session"): ("/api/v1/session", None),
    ("DELETE", "/api/v1/session"): ("/api/v1/session", None),
}
# The set-up item by item: the same four routes per kind (web/api/setup_items.py).
for _kind in ("desks", "stations", "units", "panels", "cameras", "sensors"):
    _item = f"/api/v1/setup/{_kind}/{{item_id:str}}"
    REQUESTS[("GET", f"/api/v1/setup/{_kind}")] = (f"/api/v1/setup/{_kind}", None)
    REQUESTS[("GET", _item)] = (f"/api/v1/setup/{_kind}/NOPE", None)
    REQUESTS[("PUT", _item)] = (f"/api/v1/setup/{_kind}/NOPE", {"no_such_field": 1})
    REQUESTS[("DELETE", _item)] = (f"/api/v1/setup/{_kind}/NOPE", None)


def api_routes() -> list[tuple[str, str, object]]:
    app = offline_app()
    out = []
    for route in app.routes:
        if not route.path.startswith("/api/v1"):
            continue
        for handler in route.route_handlers:  # type: ignore[attr-defined]
            for method in sorted(handler.http_methods):
                if method in ("HEAD", "OPTIONS"):
                    continue
                out.append((method, route.path, handler.opt))
    return out


ROUTES = api_routes()


def test_every_api_route_names_a_permission_or_is_public() -> None:
    for method, path, opt in ROUTES:
        assert opt.get("public") or isinstance(opt.get("permission"), Permission), (method, path)


def test_every_api_route_has_a_request_in_this_test() -> None:
    assert {(m, p) for m, p, _ in ROUTES} == set(REQUESTS)


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {tb.name: repo.count(conn, tb) for tb in (t.signals, t.incidents, t.events)}


def call(client: httpx.Client, method: str, template: str, body, incident_id: int) -> int:
    url = template.format(id=incident_id)
    if body == "signal":
        body = signal()
    elif body == "batch":
        body = {"signals": [signal()]}
    elif body == "type":
        body = {
            "code": f"X{next(_keys)}",
            "name": "Lithium battery fire",
            "category": "fire",
            "priority": 2,
            "purpose": "Battery fires need special extinguishing agents",
            "legal_basis": "Fire services act s.1",
        }
    if url.endswith("/stream"):
        with client.stream("GET", url) as r:
            return r.status_code
    return client.request(method, url, json=body).status_code


@pytest.mark.parametrize("who", sorted(TEST_TOKENS))
def test_each_role_gets_exactly_what_the_matrix_allows_on_every_route(live_server, who) -> None:
    role = Role("operator" if who == "west_operator" else who)
    incident_id = live_server.post_signal(signal(lon=-5.0)).json()["incident_id"]  # west desk
    with live_server.client(who, timeout=5) as client:
        for method, path, opt in ROUTES:
            template, body = REQUESTS[(method, path)]
            before = counts(live_server.services.engine)
            status = call(client, method, template, body, incident_id)
            if opt.get("public"):  # sign-in and health: open to all, checked elsewhere
                assert status != 403, (who, method, path, status)
                continue
            if role in MATRIX[opt["permission"]]:
                assert status not in (401, 403), (who, method, path, status)
            else:
                assert status == 403, (who, method, path, status)
                assert counts(live_server.services.engine) == before, "a denial changes nothing"


def test_requests_without_credentials_are_401(live_server) -> None:
    for method, path, opt in ROUTES:
        if opt.get("public"):
            continue
        template, body = REQUESTS[(method, path)]
        with httpx.Client(base_url=live_server.url, timeout=5) as anon:
            status = call(anon, method, template, body, 1)
        assert status == 401, (method, path)


def test_a_wrong_or_revoked_token_is_401(live_server) -> None:
    r = httpx.get(live_server.url + "/api/v1/incidents", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


def test_an_intake_token_can_only_submit_signals(live_server) -> None:
    with live_server.client("intake") as c:
        assert c.post("/api/v1/signals", json=signal()).status_code == 202
        r = c.get("/api/v1/incidents")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


# -- desks --------------------------------------------------------------------------------


def test_an_operator_sees_and_acts_only_on_incidents_of_their_desks(live_server) -> None:
    east = live_server.post_signal(signal(lon=5.0)).json()["incident_id"]
    west = live_server.post_signal(signal(lon=-5.0)).json()["incident_id"]
    with live_server.client("west_operator") as c:
        ids = [i["id"] for i in c.get("/api/v1/incidents", params=LIVE).json()["items"]]
        assert west in ids and east not in ids
        assert c.get(f"/api/v1/incidents/{east}").status_code == 403
        assert c.get("/api/v1/incidents", params={**LIVE, "desk": "east"}).status_code == 403
        before = counts(live_server.services.engine)
        r = c.post(f"/api/v1/incidents/{east}/acknowledge")
        assert r.status_code == 403
        assert counts(live_server.services.engine) == before
        assert c.post(f"/api/v1/incidents/{west}/acknowledge").status_code == 200


# -- sessions -------------------------------------------------------------------------------


@pytest.fixture
def user(live_server) -> str:
    with live_server.services.engine.begin() as conn:
        accounts.create_user(conn, "olga", TEST_PASSWORD, "operator", ["west"], datetime.now(UTC))
    return "olga"


def login(client: httpx.Client, name: str, password: str = TEST_PASSWORD) -> httpx.Response:
    return client.post("/api/v1/session", json={"name": name, "password": password})


def test_signing_in_sets_a_strict_httponly_cookie_and_returns_a_csrf_token(
    live_server, user
) -> None:
    with httpx.Client(base_url=live_server.url) as c:
        r = login(c, user)
        assert r.status_code == 200
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure
        assert r.json()["user"] == {
            "id": r.json()["user"]["id"],
            "name": "olga",
            "role": "operator",
            "desks": ["west"],
        }
        assert c.get("/api/v1/session").json()["user"]["name"] == "olga"


def test_changes_over_a_session_need_the_csrf_token(live_server, user) -> None:
    inc = live_server.post_signal(signal(lon=-5.0)).json()["incident_id"]
    with httpx.Client(base_url=live_server.url) as c:
        csrf = login(c, user).json()["csrf_token"]
        before = counts(live_server.services.engine)
        r = c.post(f"/api/v1/incidents/{inc}/acknowledge")
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
        r = c.post(f"/api/v1/incidents/{inc}/acknowledge", headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403
        assert counts(live_server.services.engine) == before
        r = c.post(f"/api/v1/incidents/{inc}/acknowledge", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"


def test_signing_in_never_reuses_a_session_id_the_client_brought(live_server, user) -> None:
    with httpx.Client(base_url=live_server.url) as c:
        login(c, user)
        first = c.cookies["alarmdesk_session"]
        login(c, user)  # e.g. an attacker planted `first` before the victim signed in
        second = c.cookies["alarmdesk_session"]
        assert first != second
    with httpx.Client(base_url=live_server.url, cookies={"alarmdesk_session": first}) as old:
        assert old.get("/api/v1/session").status_code == 401
    with httpx.Client(
        base_url=live_server.url, cookies={"alarmdesk_session": "made-up-by-attacker"}
    ) as planted:
        assert planted.get("/api/v1/session").status_code == 401


def test_signing_out_ends_the_session(live_server, user) -> None:
    with httpx.Client(base_url=live_server.url) as c:
        csrf = login(c, user).json()["csrf_token"]
        secret = c.cookies["alarmdesk_session"]
        assert c.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 200
    with httpx.Client(base_url=live_server.url, cookies={"alarmdesk_session": secret}) as c:
        assert c.get("/api/v1/session").status_code == 401


def test_failed_sign_ins_are_throttled(live_server, user) -> None:
    with httpx.Client(base_url=live_server.url) as c:
        for _ in range(5):
            assert login(c, user, "wrong password!").status_code == 401
        r = login(c, user)  # even the right password waits now
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert r.json()["error"]["code"] == "too_many_attempts"


def test_failed_sign_ins_from_elsewhere_do_not_lock_a_user_out_of_their_console(
    live_server, user
) -> None:
    """Five wrong passwords typed for a name from anywhere locked its operator out for a
    quarter of an hour, the right password at their own console included."""
    attacker = {"X-Forwarded-For": "10.9.9.9"}  # the test server trusts its proxy, 127.0.0.1
    with httpx.Client(base_url=live_server.url, headers=attacker) as c:
        for _ in range(5):
            assert login(c, user, "wrong password!").status_code == 401
        assert login(c, user, "wrong password!").status_code == 429
    with httpx.Client(base_url=live_server.url, headers={"X-Forwarded-For": "10.1.1.1"}) as c:
        assert login(c, user).status_code == 200


def test_passwords_are_stored_as_argon2id_hashes(live_server, user) -> None:
    with live_server.services.engine.connect() as conn:
        stored = conn.execute(sa.select(t.users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and TEST_PASSWORD not in stored
