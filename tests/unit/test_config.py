"""Configuration: unknown keys refused, environment over file, purposes screened."""

from __future__ import annotations

from typing import Any

import pytest

from alarmdesk import config


def load(tmp_path, text: str, env: dict[str, str] | None = None) -> config.Config:
    path = tmp_path / "alarmdesk.toml"
    path.write_text(text)
    return config.load(path, env=env or {})


def test_an_unknown_key_is_refused_so_a_typo_never_keeps_a_default(tmp_path) -> None:
    with pytest.raises(config.ConfigError, match="radius"):
        load(tmp_path, "[correlation]\nradius = 500\n")


def test_the_environment_overrides_the_file(tmp_path) -> None:
    cfg = load(
        tmp_path,
        '[database]\nurl = "sqlite:///a.db"\n',
        {"ALARMDESK_DATABASE_URL": "postgresql://db/x", "ALARMDESK_PORT": "9000"},
    )
    assert cfg.database.url == "postgresql://db/x" and cfg.server.port == 9000


def test_the_analytics_store_s_directory_and_export_period(tmp_path) -> None:
    cfg = load(tmp_path, '[analytics]\ndir = "/data/analytics"\nexport_minutes = 0\n')
    assert (cfg.analytics.dir, cfg.analytics.export_minutes) == ("/data/analytics", 0)
    moved = load(tmp_path, "", {"ALARMDESK_ANALYTICS_DIR": "/srv/parquet"})
    assert moved.analytics.dir == "/srv/parquet" and moved.analytics.export_minutes == 15
    with pytest.raises(config.ConfigError, match="export_minutes"):
        load(tmp_path, "[analytics]\nexport_minutes = -1\n")


def test_an_mqtt_topic_mapping_that_targets_a_protected_purpose_is_refused(tmp_path) -> None:
    with pytest.raises(config.ConfigError, match=r"rule assembly\.protest"):
        load(tmp_path, '[[intake.mqtt_topics]]\ntopic = "city/protest/+"\ntype_code = "SUSP"\n')
    with pytest.raises(config.ConfigError, match=r"refused"):
        load(tmp_path, '[intake.frigate_labels]\nperson = "Demonstrator watch"\n')
    with pytest.raises(config.ConfigError, match=r"refused"):
        load(tmp_path, '[intake]\nfrigate_labels_anywhere = ["protester"]\n')
    ok = load(tmp_path, '[[intake.mqtt_topics]]\ntopic = "site/smoke/+"\ntype_code = "FSMOKE"\n')
    assert ok.intake.mqtt_topics[0].type_code == "FSMOKE"


def test_lengthening_retention_past_its_ceiling_is_refused(tmp_path) -> None:
    with pytest.raises(config.ConfigError, match="retention_ceiling"):
        load(tmp_path, "[retention]\naudit_days = 100000\n")


def test_the_map_settings_take_the_environment_when_the_console_table_leaves_them_out():
    from types import SimpleNamespace

    from alarmdesk.web.console.settings import map_settings

    svc: Any = SimpleNamespace(config=config.Config())
    env = {"ALARMDESK_TILE_MAX_ZOOM": "16", "ALARMDESK_TILE_URL": "https://t.example/{z}/{x}/{y}"}
    assert map_settings(svc, env).tile_max_zoom == 16
    assert map_settings(svc, {}).tile_max_zoom == 19
    svc.config.console.tile_max_zoom = 14  # the table says: it wins
    assert map_settings(svc, env).tile_max_zoom == 14


def test_distributed_mode_is_off_by_default_and_needs_postgresql(tmp_path) -> None:
    cfg = load(tmp_path, "")
    assert not cfg.nats.enabled and cfg.nats.stream == "ALARMDESK_INTAKE"
    assert (cfg.nats.replicas, cfg.nats.partitions) == (1, 16)
    cfg.check()  # one machine on SQLite: fine
    on_pg = load(
        tmp_path,
        "[nats]\nreplicas = 3\npartitions = 32\n",
        {"ALARMDESK_NATS_URL": "nats://n1:4222", "ALARMDESK_DATABASE_URL": "postgresql://db/x"},
    )
    assert on_pg.nats.enabled and (on_pg.nats.replicas, on_pg.nats.partitions) == (3, 32)
    on_pg.check()
    on_sqlite = load(tmp_path, "", {"ALARMDESK_NATS_URL": "nats://n1:4222"})
    with pytest.raises(config.ConfigError, match="needs PostgreSQL"):
        on_sqlite.check()
    with pytest.raises(config.ConfigError, match="stream"):
        load(tmp_path, '[nats]\nstream = "a.b"\n')  # a dot would split its subjects
