"""The web runs the service actions: a sign-in or a custom type change over HTTP commits with
its audit entry or not at all; text with control characters is refused the same way on
SQLite and PostgreSQL; and nothing under web/ reaches into the store."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from alarmdesk.bootstrap import Services, build_services
from alarmdesk.store import accounts
from alarmdesk.store import tables as t
from alarmdesk.web.app import create_app
from tests.conftest import REPO_ROOT, TEST_PASSWORD, create_test_tokens, prepare_database
from tests.conftest import test_config as config_for


class AuditBroken(RuntimeError):
    pass


def _broken_append(*_args: object, **_kw: object) -> None:
    raise AuditBroken("the audit log cannot be appended to")


@dataclass
class Web:
    client: TestClient[Any]
    svc: Services
    tokens: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def count(self, table: sa.Table) -> int:
        with self.svc.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def entries(self) -> list[str]:
        with self.svc.engine.connect() as conn:
            return [r.entry for r in conn.execute(sa.select(t.audit_entries.c.entry))]


@pytest.fixture
def web(db_url: str) -> Iterator[Web]:
    prepare_database(db_url)
    tokens = create_test_tokens(db_url)
    svc = build_services(config_for(db_url))
    with svc.engine.begin() as conn:
        accounts.create_user(conn, "ana", TEST_PASSWORD, "operator", ["*"], datetime.now(UTC))
    with TestClient(create_app(svc=svc)) as client:
        yield Web(client, svc, tokens)


def a_type(**changes: Any) -> dict[str, Any]:
    body = {
        "code": "GASLEAK2",
        "name": "Gas smell in a building",
        "category": "fire",
        "priority": 2,
        "purpose": "Send the fire service to a reported smell of gas in a building",
        "legal_basis": "Fire services act, art. 3",
        "definition": "A caller smells gas indoors",
        "sop": ["Evacuate", "Ventilate"],
    }
    body.update(changes)
    return body


def test_a_web_sign_in_whose_audit_entry_fails_opens_no_session(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.svc.writer.uow.audit, "append", _broken_append)
    r = web.client.post("/api/v1/session", json={"name": "ana", "password": TEST_PASSWORD})
    assert r.status_code == 500, r.text
    assert "alarmdesk_session" not in r.cookies
    monkeypatch.undo()
    assert web.count(t.sessions) == 0
    r = web.client.post("/api/v1/session", json={"name": "ana", "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text
    assert web.count(t.sessions) == 1
    assert sum('"sign_in"' in e for e in web.entries()) == 1


def test_a_web_sign_out_ends_the_session_with_its_audit_entry(web: Web) -> None:
    r = web.client.post("/api/v1/session", json={"name": "ana", "password": TEST_PASSWORD})
    csrf = r.json()["csrf_token"]
    r = web.client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert web.count(t.sessions) == 0
    assert sum('"sign_out"' in e for e in web.entries()) == 1


def test_a_type_proposal_whose_audit_entry_fails_stores_nothing(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.svc.writer.uow.audit, "append", _broken_append)
    r = web.client.post("/api/v1/incident-types", json=a_type(), headers=web.as_("supervisor"))
    assert r.status_code == 500, r.text
    monkeypatch.undo()
    assert web.count(t.incident_types) == len(_types_before(web))
    r = web.client.post("/api/v1/incident-types", json=a_type(), headers=web.as_("supervisor"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending"
    assert sum('"types.propose"' in e for e in web.entries()) == 1


def test_an_approval_whose_audit_entry_fails_stores_nothing(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = web.client.post("/api/v1/incident-types", json=a_type(), headers=web.as_("supervisor"))
    assert r.status_code == 201, r.text
    approve = "/api/v1/incident-types/GASLEAK2/approve"
    monkeypatch.setattr(web.svc.writer.uow.audit, "append", _broken_append)
    r = web.client.post(approve, headers=web.as_("rights_officer"))
    assert r.status_code == 500, r.text
    monkeypatch.undo()
    r = web.client.get("/api/v1/incident-types?custom=true", headers=web.as_("rights_officer"))
    (proposed,) = [x for x in r.json() if x["code"] == "GASLEAK2"]
    assert proposed["approvals"] == []
    r = web.client.post(approve, headers=web.as_("rights_officer"))
    assert r.status_code == 200, r.text
    r = web.client.post(approve, headers=web.as_("admin"))
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    types = web.client.get("/api/v1/incident-types", headers=web.as_("operator")).json()
    assert "GASLEAK2" in {x["code"] for x in types}  # in force at once (taxonomy reloaded)


def _types_before(web: Web) -> list[str]:
    with web.svc.engine.connect() as conn:
        return [r.code for r in conn.execute(sa.select(t.incident_types.c.code))]


CONTROL = ["\u0000", "\u001b[31m"]  # NUL (PostgreSQL refuses it), an ANSI escape


@pytest.mark.parametrize("bad", CONTROL, ids=["NUL", "ESC"])
@pytest.mark.parametrize("field", ["name", "password"])
def test_a_sign_in_with_control_characters_is_invalid_value(web: Web, bad: str, field: str) -> None:
    creds = {"name": "ana", "password": TEST_PASSWORD}
    creds[field] = creds[field] + bad
    r = web.client.post("/api/v1/session", json=creds)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_value"
    assert r.json()["error"]["field"] == field


@pytest.mark.parametrize("bad", CONTROL, ids=["NUL", "ESC"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", "GAS{}"),
        ("name", "Gas{}"),
        ("category", "fire{}"),
        ("purpose", "Send the fire service{}"),
        ("legal_basis", "Act{}"),
        ("definition", "Smell{}"),
        ("sop", ["Evacuate{}"]),
    ],
)
def test_a_type_proposal_with_control_characters_is_invalid_value(
    web: Web, bad: str, field: str, value: Any
) -> None:
    filled = [v.format(bad) for v in value] if isinstance(value, list) else value.format(bad)
    before = _types_before(web)
    r = web.client.post(
        "/api/v1/incident-types", json=a_type(**{field: filled}), headers=web.as_("supervisor")
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_value", error
    assert error["field"].startswith(field), error
    assert _types_before(web) == before


def _open_incident(web: Web) -> int:
    r = web.client.post(
        "/api/v1/signals",
        json={
            "source_kind": "call",
            "source_id": "ct-1",
            "type_code": "FSTRU",
            "occurred_at": datetime.now(UTC).isoformat(),
            "location": {"lat": 50.0, "lon": 5.0},
        },
        headers=web.as_("intake"),
    )
    assert r.status_code == 202, r.text
    return int(r.json()["incident_id"])


@pytest.mark.parametrize("bad", CONTROL, ids=["NUL", "ESC"])
@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("notes", {"text": "crew on the way{}"}, "text"),
        ("dispatch", {"units": ["E1{}"]}, "units[0]"),
        ("reclassify", {"type_code": "FSTRU{}"}, "type_code"),
        ("resolve", {"disposition": "handled", "note": "done{}"}, "note"),
        ("resolve", {"disposition": "handled{}"}, "disposition"),
        ("cancel", {"reason": "duplicate{}"}, "reason"),
        ("cancel", {"reason": "duplicate", "note": "seen{}"}, "note"),
    ],
)
def test_a_command_with_control_characters_is_invalid_value(
    web: Web, bad: str, action: str, body: dict[str, Any], field: str
) -> None:
    incident = _open_incident(web)
    filled = {
        k: [x.format(bad) for x in v] if isinstance(v, list) else v.format(bad)
        for k, v in body.items()
    }
    events = web.count(t.events)
    r = web.client.post(
        f"/api/v1/incidents/{incident}/{action}", json=filled, headers=web.as_("operator")
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_value", error
    assert error["field"] == field, error
    assert web.count(t.events) == events


def test_a_multiline_note_is_accepted(web: Web) -> None:
    incident = _open_incident(web)
    r = web.client.post(
        f"/api/v1/incidents/{incident}/notes",
        json={"text": "line one\nline two\ttabbed"},
        headers=web.as_("operator"),
    )
    assert r.status_code == 200, r.text


def _store_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [n for n in names if n == "alarmdesk.store" or n.startswith("alarmdesk.store.")]
    return found


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_web_module_but_the_console_imports_the_store(db_url: str) -> None:
    web_dir = REPO_ROOT / "src" / "alarmdesk" / "web"
    offenders = {
        str(p.relative_to(web_dir)): _store_imports(p)
        for p in web_dir.rglob("*.py")
        if not p.relative_to(web_dir).parts[0].startswith("console")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_console_and_report_pages_name_their_charset_once(web: Web) -> None:
    """Litestar adds "; charset=utf-8" to every text/* type: naming it as well sent it twice."""
    r = web.client.post("/api/v1/session", json={"name": "ana", "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text
    page = web.client.get("/")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    report = web.client.get(
        "/api/v1/reports/transparency",
        params={"period": "2026", "format": "html"},
        headers=web.as_("auditor"),
    )
    assert report.status_code == 200, report.text
    assert report.headers["content-type"] == "text/html; charset=utf-8"
    metrics = web.client.get("/metrics")
    assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
