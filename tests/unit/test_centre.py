"""A centre's set-up as files: reading with lines, the rules, plans, redaction, the schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alarmdesk.demo import demo_centre, demo_centre_texts
from alarmdesk.domain.centre import REDACTED, check
from alarmdesk.domain.centre_plan import diff, records, resolve_secrets
from alarmdesk.domain.errors import SetupError
from alarmdesk.domain.purpose import find_protected
from alarmdesk.service import centre_files
from tests.conftest import REPO_ROOT

KEY = "00112233445566778899AABBCCDDEEFF"

SMALL = """\
desks:
  - id: alarms
    name: Alarm desk
    categories: [fire, property]
stations:
  - id: ST1
    name: Station 1
    lat: 51.5
    lon: -0.12
units:
  - id: E1
    kind: engine
    station: ST1
    capabilities: [fire]
panels:
  - account: 1234AB
    site: Riverside school
    key_hex: {key}
    zones:
      1: Front door
      015: {{description: Boiler room smoke, lat: 51.51, lon: -0.12}}
    checkin_seconds: 3600
"""


def write(tmp_path: Path, text: str, name: str = "centre.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_and_check(path: Path) -> None:
    located = centre_files.load(path)
    check(located.centre, located.where)


def refused(path: Path) -> SetupError:
    with pytest.raises(SetupError) as info:
        load_and_check(path)
    return info.value


def test_a_small_centre_reads_with_text_zone_numbers_and_passes_the_rules(tmp_path):
    located = centre_files.load(write(tmp_path, SMALL.format(key=KEY)))
    check(located.centre, located.where)
    panel = located.centre.panels[0]
    assert panel.device_id == "panel-1234AB"
    assert set(panel.zones) == {"1", "015"}  # "015" is not 15
    recs = records(located.centre)
    assert recs["panels"]["panel-1234AB"]["settings"] == {"account": "1234AB", "key_hex": KEY}
    assert recs["units"]["E1"] == {
        "id": "E1",
        "kind": "engine",
        "station_id": "ST1",
        "capabilities": ["fire"],
    }


def test_a_desk_that_targets_a_protest_stops_the_apply_naming_file_line_and_rule(tmp_path):
    text = SMALL.format(key=KEY).replace("name: Alarm desk", "name: Protest watch desk")
    path = write(tmp_path, text)
    error = refused(path)
    assert error.code == "protected_purpose"
    assert error.where == f"{path}:3"
    assert error.rule.startswith("assembly")
    assert f"{path}:3" in error.message


def test_a_zone_description_that_watches_a_place_of_worship_is_refused(tmp_path):
    text = SMALL.format(key=KEY).replace("1: Front door", "1: Mosque attendance watch")
    error = refused(write(tmp_path, text))
    assert error.code == "protected_purpose"
    assert error.where.endswith(":19")  # the zones field of the panel


def test_a_type_error_names_the_line_of_the_field(tmp_path):
    text = SMALL.format(key=KEY).replace("checkin_seconds: 3600", "checkin_seconds: often")
    error = refused(write(tmp_path, text))
    assert error.code == "invalid_value"
    assert error.where.endswith(":22")
    assert "checkin_seconds" in error.message


def test_a_short_aes_key_is_refused_where_it_is_written(tmp_path):
    error = refused(write(tmp_path, SMALL.format(key="0011")))
    assert error.code == "invalid_value"
    assert error.where.endswith(":18")


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("station: ST1", "station: ST9", "unknown_reference"),
        ("categories: [fire, property]", "categories: [fire, politics]", "unknown_category"),
        ("name: Station 1", 'name: "Station\\0 1"', "invalid_value"),
        ("lat: 51.5\n", "lat: 91.5\n", "invalid_value"),
    ],
)
def test_broken_references_categories_control_characters_and_ranges_are_refused(
    tmp_path, old, new, code
):
    text = SMALL.format(key=KEY).replace(old, new)
    assert text != SMALL.format(key=KEY)
    assert refused(write(tmp_path, text)).code == code


def test_a_desk_or_routing_area_that_would_route_wrongly_is_refused_where_it_is_written(
    tmp_path,
):
    """tests/unit/test_areas.py has each rule; here, a file's desk and routing rule."""
    across = "{type: Polygon, coordinates: [[[178, -16], [-179, -16], [-179, -17], [178, -16]]]}"
    desk = SMALL.format(key=KEY).replace(
        "categories: [fire, property]", f"categories: [fire, property]\n    jurisdiction: {across}"
    )
    error = refused(write(tmp_path, desk, "desk.yaml"))
    assert (error.code, error.where) == ("invalid_value", f"{tmp_path / 'desk.yaml'}:5")
    assert "180th meridian" in error.message
    rule = f"routing:\n  - id: islands\n    match: {{area: {across}}}\n    desks: [alarms]\n"
    (tmp_path / "desk.yaml").unlink()
    error = refused(write(tmp_path, SMALL.format(key=KEY) + rule, "rule.yaml"))
    assert error.code == "invalid_value" and "180th meridian" in error.message
    assert error.where.startswith(str(tmp_path / "rule.yaml"))


def test_an_item_defined_in_two_files_names_both_places(tmp_path):
    write(tmp_path, SMALL.format(key=KEY), "a.yaml")
    write(tmp_path, "units:\n  - id: E1\n    kind: ladder\n", "b.yaml")
    error = refused(tmp_path)
    assert error.code == "duplicate_id"
    assert error.where == f"{tmp_path / 'b.yaml'}:2"
    assert f"{tmp_path / 'a.yaml'}:11" in error.message


def test_a_duplicate_key_and_bad_yaml_are_refused_with_their_line(tmp_path):
    error = refused(write(tmp_path, "stations:\n  - id: A\n    name: x\n    name: y\n"))
    assert error.code == "invalid_value"
    assert error.where.endswith(":4")
    error = refused(write(tmp_path, "stations: [\n", "bad.yaml"))
    assert error.code == "invalid_value"


def test_unknown_fields_and_kinds_are_refused(tmp_path):
    assert refused(write(tmp_path, "stations:\n  - {id: A, name: x, colour: red}\n")).code == (
        "invalid_value"
    )
    assert refused(write(tmp_path, "protests: []\n", "kind.yaml")).code == "invalid_value"


def test_the_plan_names_added_changed_and_removed_and_never_a_key(tmp_path):
    before = records(centre_files.load(write(tmp_path, SMALL.format(key=KEY))).centre)
    other = "FFEEDDCCBBAA99887766554433221100"
    text = (
        SMALL.format(key=other)
        .replace("kind: engine", "kind: ladder")
        .replace("  - id: E1\n", "  - id: L1\n    kind: ladder\n    station: ST1\n  - id: E1\n")
    )
    after = records(centre_files.load(write(tmp_path, text, "b.yaml")).centre)
    after["stations"].clear()
    after["units"] = {k: v for k, v in after["units"].items() if k != "nothing"}
    plan = diff(before, after)
    assert [(c.kind, c.id) for c in plan.added] == [("units", "L1")]
    assert [(c.kind, c.id, c.fields) for c in plan.changed] == [
        ("units", "E1", ("kind",)),
        ("panels", "panel-1234AB", ("key_hex",)),
    ]
    assert [(c.kind, c.id) for c in plan.removed] == [("stations", "ST1")]
    assert other not in json.dumps(plan.summary()) and KEY not in json.dumps(plan.summary())
    assert plan.counts()["units"] == {"added": 1, "changed": 1, "removed": 0}
    assert diff(before, before).empty


def test_a_redacted_key_keeps_the_stored_one_and_is_refused_for_a_new_panel(tmp_path):
    stored = records(centre_files.load(write(tmp_path, SMALL.format(key=KEY))).centre)
    exported = centre_files.dump(stored, include_secrets=False)
    assert KEY not in exported["panels.yaml"] and REDACTED in exported["panels.yaml"]
    folder = tmp_path / "export"
    centre_files.write(folder, exported)
    wanted = records(centre_files.load(folder).centre)
    resolve_secrets(stored, wanted)
    assert diff(stored, wanted).empty
    with pytest.raises(SetupError) as info:
        resolve_secrets({}, records(centre_files.load(folder).centre))
    assert info.value.code == "secret_required"


def test_an_export_read_back_is_the_same_set_up(tmp_path):
    stored = records(centre_files.load(write(tmp_path, SMALL.format(key=KEY))).centre)
    folder = tmp_path / "export"
    centre_files.write(folder, centre_files.dump(stored, include_secrets=True))
    assert diff(stored, records(centre_files.load(folder).centre)).empty


def test_the_shipped_demo_centre_is_rendered_from_the_demo_city_and_passes_the_rules():
    with demo_centre() as folder:
        shipped = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.yaml"))}
        located = centre_files.load(folder)
    assert shipped == demo_centre_texts(), "run: python -m alarmdesk.demo"
    check(located.centre, located.where)
    assert len(located.centre.panels) == 40 and len(located.centre.cameras) == 12


def test_the_published_json_schema_is_the_one_the_code_reads():
    published = json.loads((REPO_ROOT / "docs" / "centre.schema.json").read_text("utf-8"))
    assert published == centre_files.schema(), (
        "run: alarmdesk config schema > docs/centre.schema.json"
    )


def test_the_worked_example_of_a_small_alarm_receiving_centre_passes_the_rules():
    located = centre_files.load(REPO_ROOT / "docs" / "examples" / "small-arc")
    check(located.centre, located.where)
    assert len(located.centre.desks) == 3
    assert len(located.centre.panels) == 20
    assert len(located.centre.cameras) == 2


def test_a_key_of_digits_only_is_a_yaml_number_and_the_error_says_to_quote_it(tmp_path):
    text = SMALL.format(key="4" * 32)
    error = refused(write(tmp_path, text))
    assert error.code == "invalid_value" and "quote it" in error.message
    quoted = SMALL.format(key="'" + "4" * 32 + "'")
    load_and_check(write(tmp_path, quoted, "quoted.yaml"))


OWN = """\
sensors:
  - id: flood-basement
    site: Riverside school
    topic:
      topic: site/riverside/basement/water
      type: FLOOD
      condition_path: state
      restored_values: [dry]
procedures:
  - type: FLOOD
    steps:
      - "!Call the keyholder"
      - Send the caretaker to the basement
"""


def test_a_sensor_topic_and_a_procedure_are_read_stored_and_exported(tmp_path):
    located = centre_files.load(write(tmp_path, SMALL.format(key=KEY) + OWN))
    check(located.centre, located.where)
    recs = records(located.centre)
    topic = recs["sensors"]["flood-basement"]["settings"]["topic"]
    assert topic == {
        "topic": "site/riverside/basement/water",
        "type": "FLOOD",
        "condition_path": "state",
        "restored_values": ["dry"],
    }
    assert recs["procedures"]["FLOOD"]["spec"]["steps"][0] == "!Call the keyholder"
    folder = tmp_path / "export"
    centre_files.write(folder, centre_files.dump(recs, include_secrets=True))
    assert diff(recs, records(centre_files.load(folder).centre)).empty


@pytest.mark.parametrize(
    ("change", "code", "line"),
    [
        # a procedure step that watches people for their belief is screened like a type
        ("Send the caretaker to the basement", "Note who attends the mosque", "protected_purpose"),
        ('"!Call the keyholder"', '"!"', "invalid_value"),
        ("topic: site/riverside/basement/water", "topic: site/+/water", "invalid_value"),
        ("type: FLOOD\n      condition", "type: PROTEST\n      condition", "protected_purpose"),
    ],
    ids=["screened-step", "empty-step", "wildcard-topic", "screened-topic-type"],
)
def test_a_bad_procedure_or_sensor_topic_is_refused_where_it_is_written(
    tmp_path, change, code, line
):
    text = SMALL.format(key=KEY) + OWN.replace(change, code)
    error = refused(write(tmp_path, text))
    assert error.code == line
    assert error.where.startswith(str(tmp_path))


def test_two_sensors_on_one_topic_and_two_procedures_for_one_type_are_refused(tmp_path):
    twice = OWN.replace(
        "sensors:\n",
        "sensors:\n"
        + OWN.split("sensors:\n")[1].split("procedures")[0].replace("flood-basement", "flood-2"),
    )
    assert refused(write(tmp_path, SMALL.format(key=KEY) + twice)).code == "duplicate_id"
    again = OWN + OWN.split("procedures:\n")[1].replace("type: FLOOD", "type: flood")
    assert refused(write(tmp_path, SMALL.format(key=KEY) + again, "b.yaml")).code == "duplicate_id"


def test_screening_can_be_limited_to_the_items_a_change_touches(tmp_path):
    text = SMALL.format(key=KEY).replace("name: Alarm desk", "name: Protest watch desk")
    located = centre_files.load(write(tmp_path, text))
    # Screening only the unit (a change of E1): the stored desk is not screened again...
    check(located.centre, located.where, lambda kind, item: kind == "units")
    # ...the desk itself, or the whole set-up, is.
    for only in (lambda kind, item: kind == "desks", None):
        with pytest.raises(SetupError) as info:
            check(located.centre, located.where, only)
        assert info.value.code == "protected_purpose"
    # Every other rule still holds over the whole set-up.
    twice = text.replace("units:\n", "units:\n  - {id: E1, kind: engine}\n")
    with pytest.raises(SetupError) as dup:
        check(
            centre_files.load(write(tmp_path, twice, "b.yaml")).centre,
            located.where,
            lambda k, i: False,
        )
    assert dup.value.code == "duplicate_id"


CAMERA = """\
cameras:
  - id: cam-yard
    site: Depot yard
    alarm_zones: [yard]
    labels: {{fire: FUNK, {label}: TRESPASS}}
"""


@pytest.mark.parametrize(
    "label",
    ["face", "license_plate", "plate", "sub_label", "Face", "subLabel", "ethnicity", "iris_scan"],
)
def test_a_camera_label_that_identifies_a_person_is_refused_naming_the_camera_and_label(
    tmp_path, label
):
    """The rule of ``[intake] frigate_labels`` (docs/mqtt.md): faces, recognised names,
    plates and special-category names never enter, through the set-up either."""
    path = write(tmp_path, CAMERA.format(label=label))
    error = refused(path)
    # a label the purpose screen refuses as text already ("ethnicity") is refused as that
    assert error.code == ("protected_purpose" if find_protected(label) else "special_category")
    assert error.field == "labels"
    assert error.where == f"{path}:5"
    if error.code == "special_category":
        assert "cam-yard" in error.message and repr(label) in error.message


def test_a_camera_with_the_labels_frigate_ships_passes(tmp_path):
    labels = "{person: TRESPASS, car: TRESPASS, fire: FUNK, smoke: FSMOKE, dog: TRESPASS}"
    text = CAMERA.format(label="x").replace("{fire: FUNK, x: TRESPASS}", labels)
    load_and_check(write(tmp_path, text))


def test_the_set_up_and_the_intake_configuration_refuse_the_same_labels_by_one_rule(tmp_path):
    from alarmdesk import config
    from alarmdesk.domain.purpose import identifying_labels
    from alarmdesk.intake.types import IntakeConfig

    candidates = ["person", "face", "license_plate", "plate", "sub_label", "race", "car",
                  "faceEmbedding", "religion", "dog", "trade_union_member", "smoke"]  # fmt: skip
    bad = identifying_labels(candidates)
    assert bad == sorted(["face", "license_plate", "plate", "sub_label", "race",
                          "faceEmbedding", "religion", "trade_union_member"])  # fmt: skip
    for label in candidates:
        cfg = tmp_path / "alarmdesk.toml"
        cfg.write_text(f'[intake.frigate_labels]\n{label} = "TRESPASS"\n')
        intake_refuses = True
        try:
            config.load(cfg, env={})
        except config.ConfigError:
            pass
        else:
            intake_refuses = False
        try:
            check(
                centre_files.load(write(tmp_path, CAMERA.format(label=label))).centre,
                lambda *a: "",
            )
        except SetupError:
            setup_refuses = True
        else:
            setup_refuses = False
        assert intake_refuses == setup_refuses == (label in bad), label
    assert IntakeConfig().frigate_labels  # the defaults pass


def test_the_domain_vocabulary_of_special_names_is_the_one_intake_minimisation_uses():
    """``safeguards/special_category.is_special`` (payload minimisation, the schema check) and
    the camera labels' rule ask one vocabulary: ``domain.purpose.is_special_name``."""
    from alarmdesk.domain.purpose import identifying_labels, is_special_name
    from alarmdesk.safeguards import special_category

    assert special_category.is_special is is_special_name
    assert identifying_labels(["person", "subLabel", "sexLife", "Race", "car"]) == [
        "Race",
        "sexLife",
        "subLabel",
    ]
