"""One set-up item at a time against a real database (SQLite and PostgreSQL): the same
check and apply as a file, the key kept, an apply that comes between the check and the write
checked again or refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alarmdesk.bootstrap import audit_chain
from alarmdesk.domain.centre import PanelSpec, StationSpec, UnitSpec
from alarmdesk.domain.errors import SetupError, VersionConflict
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service import centre_items
from alarmdesk.service.actions import perform
from alarmdesk.store.centre import read_records
from alarmdesk.store.database import make_engine
from tests.conftest import prepare_database
from tests.conftest import test_config as config_for

ADMIN = Actor("cli:test", "admin")
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
KEY = "00112233445566778899AABBCCDDEEFF"


@pytest.fixture
def items(db_url):
    prepare_database(db_url)
    engine = make_engine(db_url)
    chain = audit_chain(config_for(db_url))

    def change(kind, item_id, spec, **kw):
        action = centre_items.change(engine, ADMIN, kind, item_id, spec, **kw)
        return perform(engine, chain, action, NOW)

    yield engine, chain, change
    engine.dispose()


def test_an_item_is_added_changed_and_removed_and_a_panel_keeps_its_key(items) -> None:
    engine, _, change = items
    change("stations", "S1", StationSpec(id="S1", name="North", lat=45.0, lon=-2.0))
    added = change("units", "L7", UnitSpec(id="L7", kind="ladder", station="S1"))
    assert [c.id for c in added.plan.added] == ["L7"]
    change("panels", "panel-7A01", PanelSpec(account="7A01", site="Bakery", key_hex=KEY))
    kept = change("panels", "panel-7A01", PanelSpec(account="7A01", site="Bakery, north"))
    assert [c.fields for c in kept.plan.changed] == [("site",)]
    with engine.connect() as conn:
        assert read_records(conn)["panels"]["panel-7A01"]["settings"]["key_hex"] == KEY
    listing = centre_items.list_items(engine, "panels")
    assert [(e.id, e.key_set, e.spec.key_hex) for e in listing.entries] == [
        ("panel-7A01", True, "<redacted>")
    ]
    with pytest.raises(SetupError) as refused:
        change("stations", "S1", None)
    assert refused.value.code == "unknown_reference" and refused.value.field == "station"
    removed = change("units", "L7", None)
    assert [c.id for c in removed.plan.removed] == ["L7"]
    assert centre_items.get_item(engine, "units", "E1")[1].status == "available"


def test_an_apply_between_the_check_and_the_write_is_checked_again_or_refused(items) -> None:
    engine, chain, change = items
    change("stations", "S1", StationSpec(id="S1", name="North"))
    # checked against a set-up with station S1 ...
    late = centre_items.change(
        engine, ADMIN, "units", "L8", UnitSpec(id="L8", kind="x", station="S1")
    )
    pinned = centre_items.change(
        engine,
        ADMIN,
        "units",
        "L9",
        UnitSpec(id="L9", kind="x"),
        expected=centre_items.current_revision(engine),
    )
    change("stations", "S1", None)  # ... which another change removes before they run
    with pytest.raises(SetupError) as rechecked:
        perform(engine, chain, late, NOW)
    assert rechecked.value.code == "unknown_reference"
    with pytest.raises(VersionConflict):
        perform(engine, chain, pinned, NOW)
    with engine.connect() as conn:
        assert {"L8", "L9"}.isdisjoint(read_records(conn)["units"])
