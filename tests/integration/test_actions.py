"""One transaction per action: a change and its audit entry commit together or not at all,
through the writer (web) and through ``perform`` (command line)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from alarmdesk.bootstrap import audit_chain
from alarmdesk.domain.errors import InvalidField, NotFound
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service import accounts
from alarmdesk.service.actions import perform
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.conftest import prepare_database
from tests.conftest import test_config as config_for

ADMIN = Actor("cli:test", "operator_of_machine")


class AuditBroken(RuntimeError):
    pass


def _broken_append(*_args: object, **_kw: object) -> None:
    raise AuditBroken("the audit log cannot be appended to")


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _entries(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [r.entry for r in conn.execute(sa.select(t.audit_entries.c.entry))]


def test_a_token_and_its_audit_entry_are_stored_together(db_url, services_factory):
    svc = services_factory(db_url)
    loop = asyncio.new_event_loop()
    token_id, secret = loop.run_until_complete(
        svc.writer.run(accounts.create_token(ADMIN, "cad", "intake", []))
    )
    loop.close()
    assert accounts.principal_of_token(svc.engine, secret) is not None
    assert _count(svc.engine, t.api_tokens) == 1
    assert any('"tokens.create"' in e and f'"{token_id}"' in e for e in _entries(svc.engine))


def test_an_action_whose_audit_entry_fails_is_not_stored(db_url, services_factory, monkeypatch):
    svc = services_factory(db_url)
    monkeypatch.setattr(svc.writer.uow.audit, "append", _broken_append)
    loop = asyncio.new_event_loop()
    with pytest.raises(AuditBroken):
        loop.run_until_complete(svc.writer.run(accounts.create_token(ADMIN, "cad", "intake", [])))
    loop.close()
    assert _count(svc.engine, t.api_tokens) == 0


def test_a_sign_in_whose_audit_entry_fails_opens_no_session(db_url, services_factory, monkeypatch):
    svc = services_factory(db_url)
    loop = asyncio.new_event_loop()
    user_id = loop.run_until_complete(
        svc.writer.run(
            accounts.create_user(ADMIN, "ana", "correct horse battery", "operator", ["*"])
        )
    )
    principal = accounts.check_password(svc.engine, "ana", "correct horse battery")
    assert principal is not None and principal.id == f"user:{user_id}"
    monkeypatch.setattr(svc.writer.uow.audit, "append", _broken_append)
    with pytest.raises(AuditBroken):
        loop.run_until_complete(
            svc.writer.run(accounts.sign_in(principal, timedelta(hours=8), "127.0.0.1"))
        )
    monkeypatch.undo()
    assert _count(svc.engine, t.sessions) == 0
    _, session = loop.run_until_complete(
        svc.writer.run(accounts.sign_in(principal, timedelta(hours=8), "127.0.0.1"))
    )
    loop.close()
    assert _count(svc.engine, t.sessions) == 1
    assert session.principal.name == "ana"
    assert any('"sign_in"' in e for e in _entries(svc.engine))


def test_a_refused_action_stores_only_its_denial(db_url, services_factory):
    svc = services_factory(db_url)
    loop = asyncio.new_event_loop()
    with pytest.raises(NotFound):
        loop.run_until_complete(svc.writer.run(accounts.revoke_token(ADMIN, 4711)))
    loop.close()
    denials = [e for e in _entries(svc.engine) if '"tokens.revoke"' not in e and "4711" in e]
    assert len(denials) == 1 and '"denied"' in denials[0] and '"not_found"' in denials[0]


def test_the_command_line_commits_a_change_with_its_entry_or_neither(db_url, monkeypatch, clock):
    prepare_database(db_url)
    cfg = config_for(db_url)
    engine = make_engine(db_url)
    try:
        chain = audit_chain(cfg)
        monkeypatch.setattr(chain, "append", _broken_append)
        with pytest.raises(AuditBroken):
            perform(engine, chain, accounts.create_token(ADMIN, "x", "intake", []), clock())
        assert _count(engine, t.api_tokens) == 0
        chain = audit_chain(cfg)
        token_id, _ = perform(
            engine, chain, accounts.create_token(ADMIN, "x", "intake", []), clock()
        )
        assert _count(engine, t.api_tokens) == 1
        assert any(f'"{token_id}"' in e and '"tokens.create"' in e for e in _entries(engine))
    finally:
        engine.dispose()


def test_a_person_with_the_intake_role_is_refused_and_the_refusal_audited(db_url, services_factory):
    svc = services_factory(db_url)
    loop = asyncio.new_event_loop()
    with pytest.raises(InvalidField, match="intake"):
        loop.run_until_complete(
            svc.writer.run(
                accounts.create_user(ADMIN, "bot", "correct horse battery", "intake", [])
            )
        )
    loop.close()
    assert _count(svc.engine, t.users) == 0
    assert any(
        '"users.add"' not in e and '"denied"' in e and '"user"' in e for e in _entries(svc.engine)
    )
