"""No table, column, API property, parameter or enum names or describes special-category
data: racial or ethnic origin, religion or belief, political opinion, union membership, sex
life or orientation, biometrics and face identities, person risk scores."""

from __future__ import annotations

import pytest

from alarmdesk.safeguards.special_category import (
    SpecialCategoryError,
    check_field_name,
    scan_metadata,
    scan_openapi,
)
from alarmdesk.store.tables import metadata
from tests.conftest import offline_app


def test_the_database_schema_holds_no_special_category_field() -> None:
    assert scan_metadata(metadata) == []


def test_the_api_document_holds_no_special_category_field() -> None:
    doc = offline_app().openapi_schema.to_schema()
    assert doc["paths"], "the OpenAPI document was generated"
    assert scan_openapi(doc) == []


@pytest.mark.parametrize(
    "name",
    [
        "race",
        "ethnicity",
        "Ethnic_Origin",
        "religion",
        "faith",
        "political_opinion",
        "politicalAffiliation",
        "union_member",
        "sexual_orientation",
        "sexLife",
        "face_embedding",
        "faceId",
        "face_identity",
        "biometric_template",
        "fingerprint",
        "risk_score",
        "threatScore",
        "religión",
        "Religion",
        "ethnicité",
        "人脸识别",
        "rac\u200be",
        "ＲＡＣＥ",
        "p0litical",
    ],
)
def test_a_field_named_for_special_category_data_is_refused(name) -> None:
    with pytest.raises(SpecialCategoryError) as exc:
        check_field_name(name)
    assert exc.value.code == "special_category"


@pytest.mark.parametrize(
    "name",
    [
        "source_kind",
        "incident_id",
        "callback",
        "summary",
        "location",
        "lat",
        "zone",
        "disposition",
        "priority",
        "category",
        "condition",
        "units",
        "desks",
        "label",
        "snapshot",
        "occurred_at",
        "surface",
        "interface",
        "trace_id",
        "facility",
        "racetrack_id",
    ],
)
def test_ordinary_field_names_pass(name) -> None:
    check_field_name(name)


def test_the_check_catches_a_field_added_to_a_table() -> None:
    import sqlalchemy as sa

    md = sa.MetaData()
    sa.Table("people", md, sa.Column("id", sa.Integer), sa.Column("religion", sa.String))
    problems = scan_metadata(md)
    assert len(problems) == 1 and "people.religion" in problems[0]
