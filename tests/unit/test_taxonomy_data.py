"""The default incident-type taxonomy shipped in alarmdesk/data.

Checks the data files against the APCO ANS 2.103.1 source list (scripts/data) and against
"The line we hold" (docs/architecture.md): every type is for a harm, never for people using
their rights or for their status.
"""

import csv
import re
from importlib.resources import files

import pytest

from alarmdesk.domain.categories import HarmCategory
from tests.conftest import BUILD_INPUTS

DATA = files("alarmdesk") / "data"
APCO_TSV = BUILD_INPUTS / "apco_incident_types.tsv"

TAXONOMY_HEADER = ["code", "name", "category", "priority", "definition", "sop"]
EXCLUDED_HEADER = ["code", "reason"]

LOCAL_TYPES = {
    # code: (category, priority)
    "EQTRBL": (HarmCategory.EQUIPMENT, 4),
    "EQCOMM": (HarmCategory.EQUIPMENT, 3),
    "EQTEST": (HarmCategory.EQUIPMENT, 5),
    "EQTAMP": (HarmCategory.PROPERTY, 3),
    "UNCLASS": (HarmCategory.OTHER_HARM, 2),
}

# Words that would make a type target assembly, expression, belief or migration status.
PROTECTED_PURPOSE = re.compile(
    r"\b(protest\w*|demonstrat\w*|riot\w*|sit-in|assembl\w*|petition\w*|immigra\w*|migra\w*|"
    r"aliens?|relig\w*|curfew|panhandl\w*)\b",
    re.IGNORECASE,
)


def _read_tsv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(text.splitlines(), delimiter="\t")
    rows = list(reader)
    return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def taxonomy() -> list[dict[str, str]]:
    header, rows = _read_tsv((DATA / "taxonomy.tsv").read_text(encoding="utf-8"))
    assert header == TAXONOMY_HEADER
    return rows


@pytest.fixture(scope="module")
def excluded() -> list[dict[str, str]]:
    header, rows = _read_tsv((DATA / "taxonomy_excluded.tsv").read_text(encoding="utf-8"))
    assert header == EXCLUDED_HEADER
    return rows


@pytest.fixture(scope="module")
def apco() -> dict[str, dict[str, str]]:
    _, rows = _read_tsv(APCO_TSV.read_text(encoding="utf-8"))
    return {row["code"]: row for row in rows}


def test_every_apco_code_is_either_in_the_taxonomy_or_excluded_never_both(taxonomy, excluded, apco):
    kept = {row["code"] for row in taxonomy}
    dropped = {row["code"] for row in excluded}
    assert len(apco) == 197
    assert not kept & dropped
    assert set(apco) <= kept | dropped
    assert dropped <= set(apco)


def test_apco_rows_keep_the_source_code_and_name(taxonomy, apco):
    for row in taxonomy:
        if row["code"] in apco:
            assert row["name"] == apco[row["code"]]["name"]
            source_definition = apco[row["code"]]["definition"].strip()
            if source_definition:
                assert row["definition"] == source_definition


def test_only_the_local_types_are_outside_apco(taxonomy, apco):
    local = {row["code"] for row in taxonomy} - set(apco)
    assert local == set(LOCAL_TYPES)


def test_civil_disobedience_curfew_and_immigration_are_excluded(excluded):
    dropped = {row["code"] for row in excluded}
    assert {"CIVDIS", "CURFEW", "ALIEN"} <= dropped


def test_every_exclusion_gives_a_reason(excluded):
    for row in excluded:
        assert row["reason"].strip(), row["code"]


def test_violence_at_a_gathering_stays_violence(taxonomy):
    by_code = {row["code"]: row for row in taxonomy}
    assert by_code["ASSAULT"]["category"] == HarmCategory.VIOLENCE
    assert by_code["FIGHT"]["category"] == HarmCategory.VIOLENCE


def test_codes_are_unique(taxonomy, excluded):
    codes = [row["code"] for row in taxonomy]
    assert len(codes) == len(set(codes))
    dropped = [row["code"] for row in excluded]
    assert len(dropped) == len(set(dropped))


def test_every_category_is_a_harm_category(taxonomy):
    allowed = {member.value for member in HarmCategory}
    for row in taxonomy:
        assert row["category"] in allowed, row["code"]


def test_every_priority_is_an_integer_from_one_to_five(taxonomy):
    for row in taxonomy:
        assert re.fullmatch(r"[1-5]", row["priority"]), row["code"]


def test_no_name_definition_or_sop_targets_a_protected_purpose(taxonomy):
    for row in taxonomy:
        for field in ("name", "definition", "sop"):
            match = PROTECTED_PURPOSE.search(row[field])
            assert match is None, f"{row['code']} {field} mentions {match.group(0)!r}"


def test_local_types_exist_with_their_category_and_priority(taxonomy):
    by_code = {row["code"]: row for row in taxonomy}
    for code, (category, priority) in LOCAL_TYPES.items():
        assert code in by_code
        assert by_code[code]["category"] == category
        assert int(by_code[code]["priority"]) == priority


def test_every_type_has_a_definition_and_a_short_sop(taxonomy):
    for row in taxonomy:
        assert row["definition"].strip(), row["code"]
        steps = [step.strip() for step in row["sop"].split(" | ")]
        assert 2 <= len(steps) <= 4, row["code"]
        assert all(steps), row["code"]


def test_life_threatening_types_are_priority_one(taxonomy):
    by_code = {row["code"]: row for row in taxonomy}
    for code in ("CARDIAC", "FSTRU", "SHOOT", "ALRPANS", "ALRROBS", "HOSTAGE", "DROWN"):
        assert by_code[code]["priority"] == "1", code
