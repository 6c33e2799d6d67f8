"""Public accountability (docs/architecture.md, "The line we hold", 5): every figure of the
transparency report equals a direct query on seeded data, written here independently of the
report's code (raw SQL per dialect); 1 to 4 show as "<5", true zeros as 0; the report carries
the checkpoint closing the period, the public key, and the result of verifying the log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient
from typer.testing import CliRunner

from alarmdesk.bootstrap import Services, audit_chain
from alarmdesk.domain import commands as c
from alarmdesk.domain.signal import Location, SignalIn, SourceKind
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation, Outcome
from alarmdesk.safeguards.retention_policy import ReportConfig, RetentionConfig
from alarmdesk.safeguards.transparency import (
    Period,
    parse_period,
    render_html,
    suppress,
)
from alarmdesk.service.reports import build_report
from alarmdesk.store import tables as t
from tests.conftest import FakeClock, create_test_tokens, prepare_database

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)
NOW = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)
PERIOD = Period(START, END)
POLICY = RetentionConfig(media_days=14, incidents_by_category={"equipment": 180})

OPERATOR = Actor("user:1", "operator", "aaaa", "10.0.0.1")
AUDITOR = Actor("user:2", "auditor", "bbbb", "10.0.0.2")
CALL_TAKER = Actor("user:3", "call_taker", "cccc", "10.0.0.3")
ADMIN = Actor("user:4", "admin", "dddd", "10.0.0.4")
RETENTION = Actor("system:retention", "system")

CUSTOM = {
    "code": "PUMPFAIL",
    "name": "Flood pump failure",
    "category": "hazard",
    "priority": 2,
    "definition": "A municipal flood pump stops while water rises",
    "sop": [],
    "origin": "custom",
    "status": "active",
    "purpose": "Send the water board before basements flood",
    "legal_basis": "Water Act art. 5.30",
    "author": "supervisor-anna",
}
APPROVALS = [
    {"code": "PUMPFAIL", "approver": "rights-rita", "role": "rights_officer"},
    {"code": "PUMPFAIL", "approver": "super-sam", "role": "supervisor"},
]


def expected(n: int) -> int | str:
    """The suppression rule, written again: 1..4 become "<5"."""
    return "<5" if 1 <= n <= 4 else n


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def seed_custom_type(url: str) -> None:
    """The custom type with whatever columns this schema has (purpose etc. from 0004)."""
    from alarmdesk.store.database import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        columns = {col["name"] for col in inspector.get_columns("incident_types")}
        conn.execute(
            t.incident_types.insert().values(
                {k: v for k, v in CUSTOM.items() if k in columns and k in t.incident_types.c}
            )
        )
        approvals = getattr(t, "incident_type_approvals", None)
        if approvals is not None and inspector.has_table("incident_type_approvals"):
            conn.execute(
                approvals.insert(),
                [{**a, "at": datetime(2025, 12, 1, tzinfo=UTC)} for a in APPROVALS],
            )
    engine.dispose()


class World:
    def __init__(self, svc: Services, clock: FakeClock, loop: asyncio.AbstractEventLoop) -> None:
        self.svc, self.clock, self.loop = svc, clock, loop
        self.chain = audit_chain(svc.config)
        self.n = 0

    def at(self, when: datetime) -> None:
        self.clock.now = when

    def signal(
        self,
        code: str,
        *,
        kind: SourceKind = SourceKind.CALL,
        payload: dict[str, Any] | None = None,
        record_only: bool = False,
    ) -> int | None:
        self.n += 1
        s = SignalIn(
            source_kind=kind,
            source_id=f"src-{self.n}",
            type_code=code,
            occurred_at=self.clock.now,
            location=Location(lat=40.5 + self.n * 0.05, lon=-5.0),  # far apart: no folding
            summary="seeded",
            idempotency_key=f"k{self.n}",
            payload=payload or {},
            record_only=record_only,
        )
        (r,) = self.loop.run_until_complete(self.svc.writer.submit_signals([s], actor=OPERATOR))
        return r.incident_id

    def note(self, incident_id: int, text: str) -> None:
        self.loop.run_until_complete(
            self.svc.writer.submit_command(c.AddNote(incident_id, "op", text=text), actor=OPERATOR)
        )

    def audit(self, *events: AuditEvent) -> None:
        with self.svc.engine.begin() as conn:
            self.chain.append(conn, list(events), self.clock.now)


@pytest.fixture
def world(db_url: str, services_factory: Any, loop: asyncio.AbstractEventLoop) -> World:
    prepare_database(db_url)
    seed_custom_type(db_url)
    clock = FakeClock(datetime(2025, 12, 31, 23, 0, tzinfo=UTC))
    svc = services_factory(db_url, clock=clock, loop=loop, prepare=False)
    w = World(svc, clock, loop)

    # Outside the period, on both sides: must count nowhere.
    w.signal("FSTRU")
    w.audit(AuditEvent(AUDITOR, Operation.CONSULT, "incident", "1"))

    w.at(datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    fires = [w.signal("FSTRU") for _ in range(6)]  # 6: shown as is
    w.signal("CARDIAC", payload={"people": [{"role": "caller", "name": "A"}]})
    w.signal(
        "CARDIAC",
        payload={"people": [{"role": "victim", "name": "B"}, {"role": "caller", "name": "C"}]},
    )
    w.signal("PUMPFAIL")
    for i in range(5):  # media references on equipment signals: 5 of them
        w.signal(
            "ALRBS",
            kind=SourceKind.EQUIPMENT,
            payload={"snapshot_ref": f"/api/events/{i}/snapshot.jpg"},
        )
    for _ in range(3):  # record-only: belongs to no incident
        w.signal("ALRBS", kind=SourceKind.EQUIPMENT, record_only=True)
    for i, inc in enumerate(fires):
        assert inc is not None
        w.note(inc, f"note {i}")
    assert fires[0] is not None
    w.loop.run_until_complete(
        svc.writer.submit_command(
            c.Cancel(fires[0], "op", reason="false_alarm", note="why"), actor=OPERATOR
        )
    )

    w.at(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    w.audit(
        *[AuditEvent(AUDITOR, Operation.CONSULT, "audit_log") for _ in range(7)],
        *[
            AuditEvent(
                CALL_TAKER,
                Operation.CONSULT,
                "route",
                "GET /api/v1/audit",
                Outcome.DENIED,
                "audit.read",
            )
            for _ in range(3)
        ],
        AuditEvent(ADMIN, Operation.CONFIGURE, "user", "9", Outcome.DENIED, "accounts.manage"),
        *[
            AuditEvent(
                AUDITOR,
                Operation.EXPORT,
                "incidents",
                justification="court order 12",
                detail={"recipient": "court-of-appeal"},
            )
            for _ in range(5)
        ],
        *[AuditEvent(AUDITOR, Operation.EXPORT, "audit_log", "/tmp/x") for _ in range(2)],
        *[
            AuditEvent(
                OPERATOR,
                Operation.DISCLOSE,
                "incident",
                "3",
                detail={"recipient": "fire-brigade"},
            )
            for _ in range(6)
        ],
        *[AuditEvent(ADMIN, Operation.CONFIGURE, "user", str(i)) for i in range(2)],
        *[AuditEvent(ADMIN, Operation.CONFIGURE, "token", str(i)) for i in range(5)],
        AuditEvent(RETENTION, Operation.ERASE, "people", detail={"count": 7, "cutoff": "x"}),
        AuditEvent(RETENTION, Operation.ERASE, "signals", detail={"count": 12, "cutoff": "x"}),
        AuditEvent(RETENTION, Operation.ERASE, "signals", detail={"count": 1, "cutoff": "x"}),
    )
    # Two entries in the period whose content retention erased.
    with svc.engine.begin() as conn:
        a = t.audit_entries
        seqs = conn.execute(
            sa.select(a.c.seq).where(a.c.at >= START, a.c.at < END).order_by(a.c.seq).limit(2)
        ).scalars()
        conn.execute(a.update().where(a.c.seq.in_(list(seqs))).values(entry=None))

    w.at(datetime(2027, 1, 1, 0, 0, tzinfo=UTC))  # the period's end is excluded
    w.signal("CARDIAC")
    w.audit(AuditEvent(AUDITOR, Operation.CONSULT, "incident", "2"))
    return w


# -- direct queries, written independently of the report's code -----------------------------------


class Direct:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"

    def ts(self, when: datetime) -> Any:
        # SQLite holds naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'; PostgreSQL timestamptz.
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else when

    def rows(self, sql: str, **params: Any) -> list[Any]:
        params = {k: self.ts(v) if isinstance(v, datetime) else v for k, v in params.items()}
        return list(
            self.conn.execute(sa.text(sql), {"a": self.ts(START), "b": self.ts(END), **params})
        )

    def one(self, sql: str, **params: Any) -> int:
        return int(self.rows(sql, **params)[0][0] or 0)

    def j(self, column: str, *path: str) -> str:
        """JSON text at path of a JSON (signals, events) or TEXT (audit entry) column."""
        if self.sqlite:
            return f"json_extract({column}, '$.{'.'.join(path)}')"
        base = f"({column})::jsonb" if column == "entry" else column
        inner = "".join(f" -> '{p}'" for p in path[:-1])
        return f"({base}{inner} ->> '{path[-1]}')"

    def audit_group(self, key: str, where: str = "1=1") -> dict[str, int]:
        return {
            str(k): int(n)
            for k, n in self.rows(
                f"SELECT {key} AS k, count(*) FROM audit_entries WHERE at >= :a AND at < :b "
                f"AND entry IS NOT NULL AND {where} GROUP BY {key}"
            )
        }


def test_every_figure_equals_a_direct_query(world: World) -> None:
    svc = world.svc
    config = ReportConfig(organisation="Test City", complaints=3, costs="0.2 FTE")
    with svc.engine.begin() as conn:
        report = build_report(
            conn, PERIOD, chain=world.chain, policy=POLICY, now=NOW, config=config
        )
    with svc.engine.connect() as conn:
        d = Direct(conn)
        inc = "FROM incidents WHERE opened_at >= :a AND opened_at < :b"
        sig = "FROM signals WHERE received_at >= :a AND received_at < :b"
        use = report["use"]

        opened = d.one(f"SELECT count(*) {inc}")
        assert opened == 14
        assert use["incidents_opened"] == expected(opened)
        by_cat = {k: n for k, n in d.rows(f"SELECT category, count(*) {inc} GROUP BY category")}
        for category, shown in use["incidents_by_category"].items():
            assert shown == expected(by_cat.get(category, 0)), category
        assert set(by_cat) <= set(use["incidents_by_category"])
        by_type = {
            code: (name, n)
            for code, name, n in d.rows(
                "SELECT i.type_code, ty.name, count(*) FROM incidents i "
                "LEFT JOIN incident_types ty ON ty.code = i.type_code "
                "WHERE i.opened_at >= :a AND i.opened_at < :b GROUP BY i.type_code, ty.name"
            )
        }
        assert set(use["incidents_by_type"]) == set(by_type)
        for code, (name, n) in by_type.items():
            assert use["incidents_by_type"][code]["count"] == expected(n)
            assert use["incidents_by_type"][code]["name"] == name

        received = d.one(f"SELECT count(*) {sig}")
        assert use["signals_received"] == expected(received)
        by_kind = {
            k: n for k, n in d.rows(f"SELECT source_kind, count(*) {sig} GROUP BY source_kind")
        }
        for kind, shown in use["signals_by_source_kind"].items():
            assert shown == expected(by_kind.get(kind, 0)), kind
        orphans = d.one(f"SELECT count(*) {sig} AND incident_id IS NULL")
        assert orphans == 3 and use["signals_without_incident"] == "<5"

        data = report["data"]
        assert data["signals"] == expected(received)
        assert data["incidents"] == expected(opened)
        notes = d.one(
            "SELECT count(*) FROM events WHERE at >= :a AND at < :b AND "
            f"(type = 'incident.noted' OR {d.j('detail', 'note')} IS NOT NULL)"
        )
        assert notes == 7 and data["notes"] == 7
        people_len = (
            "json_array_length(payload, '$.people')"
            if d.sqlite
            else "jsonb_array_length(payload -> 'people')"
        )
        people = d.one(f"SELECT sum({people_len}) {sig} AND {d.j('payload', 'people')} IS NOT NULL")
        assert people == 3 and data["people"] == "<5"
        media = d.one(f"SELECT count(*) {sig} AND {d.j('payload', 'snapshot_ref')} IS NOT NULL")
        assert media == 5 and data["signals_with_media_references"] == 5
        entries = d.one("SELECT count(*) FROM audit_entries WHERE at >= :a AND at < :b")
        assert data["audit_entries"] == expected(entries)

        access = report["access"]
        assert access["entries"] == expected(entries)
        erased = d.one(
            "SELECT count(*) FROM audit_entries WHERE at >= :a AND at < :b AND entry IS NULL"
        )
        assert erased == 2 and access["erased_entries"] == "<5"
        by_op = d.audit_group(d.j("entry", "op"))
        for op in Operation:
            assert access["by_operation"][op.value] == expected(by_op.get(op.value, 0)), op
        by_role = d.audit_group(d.j("entry", "role"))
        for role, shown in access["by_role"].items():
            assert shown == expected(by_role.get(role, 0)), role
        assert set(by_role) <= set(access["by_role"])
        pairs = {
            (op, role): int(n)
            for op, role, n in d.rows(
                f"SELECT {d.j('entry', 'op')}, {d.j('entry', 'role')}, count(*) "
                "FROM audit_entries WHERE at >= :a AND at < :b AND entry IS NOT NULL "
                f"GROUP BY {d.j('entry', 'op')}, {d.j('entry', 'role')}"
            )
        }
        flat = {
            (op, r): n
            for op, roles in access["by_operation_and_role"].items()
            for r, n in roles.items()
        }
        assert flat == {k: expected(n) for k, n in pairs.items()}

        denied = f"{d.j('entry', 'outcome')} = 'denied'"
        denials = access["denials"]
        assert denials["total"] == expected(sum(d.audit_group(d.j("entry", "op"), denied).values()))
        assert denials["total"] == "<5"  # 4
        den_op = d.audit_group(d.j("entry", "op"), denied)
        for op in Operation:
            assert denials["by_operation"][op.value] == expected(den_op.get(op.value, 0))
        assert denials["by_rule"] == {
            k: expected(n) for k, n in d.audit_group(d.j("entry", "rule"), denied).items()
        }
        den_role = d.audit_group(d.j("entry", "role"), denied)
        for role, shown in denials["by_role"].items():
            assert shown == expected(den_role.get(role, 0))

        allowed = f"{d.j('entry', 'outcome')} = 'allowed'"
        recipient = (
            f"coalesce({d.j('entry', 'detail', 'recipient')}, {d.j('entry', 'object_type')})"
        )
        exports = d.audit_group(recipient, f"{allowed} AND {d.j('entry', 'op')} = 'export'")
        assert exports == {"court-of-appeal": 5, "audit_log": 2}
        sharing = report["sharing"]
        assert sharing["exports_by_recipient"] == {k: expected(n) for k, n in exports.items()}
        assert sharing["exports_total"] == expected(sum(exports.values()))
        disclosures = d.audit_group(recipient, f"{allowed} AND {d.j('entry', 'op')} = 'disclose'")
        assert sharing["disclosures_by_recipient"] == {
            k: expected(n) for k, n in disclosures.items()
        }
        assert sharing["disclosures_total"] == expected(sum(disclosures.values()))

        count = f"CAST({d.j('entry', 'detail', 'count')} AS INTEGER)"
        erase_where = (
            f"at >= :a AND at < :b AND entry IS NOT NULL AND {d.j('entry', 'op')} = 'erase'"
        )
        erased_by_class = {
            str(k): int(n)
            for k, n in d.rows(
                f"SELECT {d.j('entry', 'object_type')}, sum({count}) FROM audit_entries "
                f"WHERE {erase_where} GROUP BY {d.j('entry', 'object_type')}"
            )
        }
        assert erased_by_class == {"people": 7, "signals": 13}
        erasures = report["erasures"]
        for cls, shown in erasures["by_data_class"].items():
            assert shown == expected(erased_by_class.get(cls, 0)), cls
        # a run: one entry per chunk it erased, all with its actor and time
        run = f"{d.j('entry', 'actor')}, {d.j('entry', 'at')}"
        runs = d.one(
            f"SELECT count(*) FROM (SELECT DISTINCT {run} FROM audit_entries "
            f"WHERE {erase_where}) AS r"
        )
        assert runs == 1  # the three entries of the seeding are one run's
        assert erasures["runs"] == expected(runs)

        configured = d.audit_group(
            d.j("entry", "object_type"), f"{allowed} AND {d.j('entry', 'op')} = 'configure'"
        )
        changes = report["configuration_changes"]
        assert changes["by_object_type"] == {k: expected(n) for k, n in configured.items()}
        assert changes["total"] == expected(sum(configured.values()))
        assert changes["total"] == 7

        # Custom types: purpose, approvers, use in the period.
        (custom,) = report["custom_types"]
        assert custom["code"] == "PUMPFAIL"
        assert custom["incidents_opened"] == expected(
            d.one(f"SELECT count(*) {inc} AND type_code = 'PUMPFAIL'")
        )
        columns = {col["name"] for col in sa.inspect(conn).get_columns("incident_types")}
        if "purpose" in columns:
            assert custom["purpose"] == CUSTOM["purpose"]
            assert custom["legal_basis"] == CUSTOM["legal_basis"]
            assert custom["author"] == CUSTOM["author"]
        if sa.inspect(conn).has_table("incident_type_approvals"):
            approvers = d.rows(
                "SELECT approver, role FROM incident_type_approvals WHERE code = 'PUMPFAIL' "
                "ORDER BY approver"
            )
            assert sorted((a["name"], a["role"]) for a in custom["approvers"]) == [
                tuple(r) for r in approvers
            ]

        # The closing checkpoint: the first signed at or after the period's end.
        log = report["audit_log"]
        first_after = d.rows(
            "SELECT size, note FROM audit_checkpoints WHERE at >= :b ORDER BY size LIMIT 1"
        )
        assert first_after, "the writer or the report signed one"
        assert log["checkpoint"]["size"] == int(first_after[0][0])
        assert log["checkpoint"]["note"] == first_after[0][1]
        before_end = d.one("SELECT count(*) FROM audit_entries WHERE at < :b")
        assert log["checkpoint"]["covers_period"] is (log["checkpoint"]["size"] >= before_end)
        assert log["checkpoint"]["covers_period"] is True
        assert log["public_key"] == world.chain.signer.vkey
        assert log["finding"]["result"] == "verified", log["finding"]
        assert log["finding"]["entries_checked"] == log["checkpoint"]["size"]
        assert log["finding"]["erased_entries"] == d.one(
            "SELECT count(*) FROM audit_entries WHERE entry IS NULL AND seq < :n",
            n=log["checkpoint"]["size"],
        )

    assert report["retention"] == POLICY.describe()
    assert report["complaints"] == "<5" and report["costs"] == "0.2 FTE"
    assert report["period"] == {
        "from": START.isoformat(),
        "to": END.isoformat(),
        "provisional": False,
    }
    # All three kinds of figures occur: exact, suppressed, true zero.
    assert use["incidents_by_category"]["fire"] == 6
    assert use["incidents_by_category"]["medical"] == "<5"
    assert use["incidents_by_category"]["traffic"] == 0
    json.dumps(report)  # JSON-ready


def test_suppression_rule() -> None:
    assert [suppress(n) for n in range(7)] == [0, "<5", "<5", "<5", "<5", 5, 6]


def test_the_report_signs_a_closing_checkpoint_when_none_exists(world: World) -> None:
    svc = world.svc
    # A period that ended after every checkpoint so far: the report signs one.
    period = Period(START, datetime(2027, 1, 3, tzinfo=UTC))
    with svc.engine.begin() as conn:
        pending = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_checkpoints)
            .where(t.audit_checkpoints.c.at >= period.end)
        ).scalar_one()
        assert pending == 0
        first = build_report(conn, period, chain=world.chain, policy=POLICY, now=NOW)
    assert first["audit_log"]["checkpoint"]["signed_for_this_report"] is True
    assert first["audit_log"]["checkpoint"]["at"] == NOW.isoformat()
    assert first["audit_log"]["finding"]["result"] == "verified"
    with svc.engine.begin() as conn:
        again = build_report(
            conn, period, chain=world.chain, policy=POLICY, now=NOW + timedelta(hours=1)
        )
    assert again["audit_log"]["checkpoint"]["signed_for_this_report"] is False
    assert again["audit_log"]["checkpoint"]["note"] == first["audit_log"]["checkpoint"]["note"]


def test_a_period_not_yet_ended_is_provisional(world: World) -> None:
    with world.svc.engine.begin() as conn:
        report = build_report(conn, parse_period("2027"), chain=world.chain, policy=POLICY, now=NOW)
    assert report["period"]["provisional"] is True
    assert report["complaints"] == 0  # a true zero
    assert report["audit_log"]["checkpoint"]["covers_period"] is True  # so far


def test_a_tampered_log_is_reported(world: World) -> None:
    svc = world.svc
    with svc.engine.begin() as conn:
        build_report(conn, PERIOD, chain=world.chain, policy=POLICY, now=NOW)
        a = t.audit_entries
        row = conn.execute(
            sa.select(a.c.seq, a.c.entry).where(a.c.entry.is_not(None)).order_by(a.c.seq).limit(1)
        ).one()
        forged = json.loads(row.entry)
        forged["role"] = "auditor-who-was-not-there"
        conn.execute(
            a.update().where(a.c.seq == row.seq).values(entry=json.dumps(forged, sort_keys=True))
        )
    with svc.engine.begin() as conn:
        report = build_report(conn, PERIOD, chain=world.chain, policy=POLICY, now=NOW)
    assert report["audit_log"]["finding"]["result"] == "problems_found"
    assert report["audit_log"]["finding"]["problems"]


def test_html_renders_escaped_with_the_checkpoint_and_key(world: World) -> None:
    with world.svc.engine.begin() as conn:
        report = build_report(
            conn,
            PERIOD,
            chain=world.chain,
            policy=POLICY,
            now=NOW,
            config=ReportConfig(organisation="<script>alert(1)</script>"),
        )
    html = render_html(report)
    assert world.chain.signer.vkey in html
    note = report["audit_log"]["checkpoint"]["note"]
    for line in note.splitlines():
        assert line.replace("&", "&amp;") in html
    assert "&lt;5" in html and "<script>alert" not in html
    assert "PUMPFAIL" in html and "verified" in html


@pytest.mark.parametrize(
    ("args", "start", "end"),
    [
        (("2026", None, None), START, END),
        (
            ("2026-02", None, None),
            datetime(2026, 2, 1, tzinfo=UTC),
            datetime(2026, 3, 1, tzinfo=UTC),
        ),
        (("2026-Q4", None, None), datetime(2026, 10, 1, tzinfo=UTC), END),
        ((None, "2026-01-01", "2026-12-31"), START, END),
        (
            (None, "2026-01-01T06:00:00+02:00", "2026-01-02T00:00:00Z"),
            datetime(2026, 1, 1, 4, tzinfo=UTC),
            datetime(2026, 1, 2, tzinfo=UTC),
        ),
    ],
)
def test_periods(args: tuple[Any, Any, Any], start: datetime, end: datetime) -> None:
    p = parse_period(*args)
    assert (p.start, p.end) == (start, end)


@pytest.mark.parametrize(
    "args",
    [
        ("26", None, None),
        ("2026-13", None, None),
        (None, "2026-01-01", None),
        (None, "2026-02-01", "2026-01-01"),
        (None, "2026-01-01T00:00:00", "2026-02-01"),
        ("2026", "2026-01-01", "2026-02-01"),
        (None, "0001-01-01T00:00:00+14:00", "2026-01-01"),
        (None, "2026-01-01", "9999-12-31"),
        (None, "2026-01-01", "9999-12-31T23:59:59-14:00"),
    ],
)
def test_bad_periods_are_refused(args: tuple[Any, Any, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_period(*args)


# -- command line and API -------------------------------------------------------------------------


def test_cli_writes_json_and_html_and_logs_the_report(world: World, tmp_path: Any) -> None:
    from alarmdesk.cli import app

    svc = world.svc
    cfg = tmp_path / "alarmdesk.toml"
    cfg.write_text(f'[audit]\nkey_file = "{svc.config.audit.key_file}"\n')
    url = svc.config.database.url
    runner = CliRunner()
    out = tmp_path / "r.json"
    base = ["report", "transparency", "-c", str(cfg), "--database-url", url]
    result = runner.invoke(
        app, [*base, "--period", "2026", "--out", str(out), "--complaints", "12"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["complaints"] == 12
    assert report["audit_log"]["finding"]["result"] == "verified"
    result = runner.invoke(
        app, [*base, "--from", "2026-01-01", "--to", "2026-12-31", "--format", "html"]
    )
    assert result.exit_code == 0 and "<h1>Transparency report</h1>" in result.output
    with svc.engine.connect() as conn:
        logged = [
            json.loads(e)
            for e in conn.execute(
                sa.select(t.audit_entries.c.entry).where(t.audit_entries.c.entry.is_not(None))
            ).scalars()
        ]
    assert (
        sum(e["object_type"] == "transparency_report" and e["op"] == "combine" for e in logged) == 2
    )
    bad = runner.invoke(app, [*base, "--from", "yesterday", "--to", "2026-12-31"])
    assert bad.exit_code == 2
    bad = runner.invoke(app, [*base, "--period", "2026", "--format", "pdf"])
    assert bad.exit_code == 2


def test_api_route_for_auditors_and_rights_officers(sqlite_url: str) -> None:
    from alarmdesk.bootstrap import build_services
    from alarmdesk.web.app import create_app
    from alarmdesk.web.reports import ROUTES
    from tests.conftest import test_config

    prepare_database(sqlite_url)
    tokens = create_test_tokens(sqlite_url)
    svc = build_services(test_config(sqlite_url))
    app = create_app(svc=svc)
    if not any(r.path == "/api/v1/reports/transparency" for r in app.routes):
        for route in ROUTES:  # until web/app.py lists reports.ROUTES
            app.register(route)
    path = "/api/v1/reports/transparency"
    with TestClient(app) as client:

        def get(who: str, **params: str) -> Any:
            return client.get(
                path, params=params, headers={"Authorization": f"Bearer {tokens[who]}"}
            )

        r = get("auditor", period="2026")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["audit_log"]["public_key"] == svc.writer.audit.signer.vkey  # type: ignore[union-attr]
        r = get("rights_officer", **{"from": "2026-01-01", "to": "2026-12-31", "format": "html"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert get("operator", period="2026").status_code == 403
        assert get("admin", period="2026").status_code == 403
        r = get("auditor", period="2026", format="pdf")
        assert r.status_code == 422 and r.json()["error"]["field"] == "format"
        assert get("auditor", **{"from": "2026-02-01", "to": "2026-01-01"}).status_code == 422
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        logged = [
            json.loads(e)
            for e in conn.execute(
                sa.select(t.audit_entries.c.entry).where(t.audit_entries.c.entry.is_not(None))
            ).scalars()
        ]
    engine.dispose()
    reads = [e for e in logged if e["object_type"] == "transparency_report"]
    assert [(e["op"], e["role"]) for e in reads] == [
        ("combine", "auditor"),
        ("combine", "rights_officer"),
    ]
    assert any(e["outcome"] == "denied" and e["role"] == "operator" for e in logged)
