"""The correlation key: one value object, one text form, re-keyed by one rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.correlation import CorrelationKey

texts = st.text(st.characters(blacklist_characters="|", blacklist_categories=("Cs",)), max_size=20)
sources = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
categories = st.sampled_from(list(HarmCategory))


@given(sources, texts, categories)
def test_a_panel_key_reads_back_from_its_text(source, zone, category):
    key = CorrelationKey.equipment(source, zone, category)
    assert CorrelationKey.parse(str(key)) == key


@given(sources, texts, st.from_regex(r"[A-Z]{2,8}", fullmatch=True), texts.filter(bool))
def test_a_camera_key_reads_back_from_its_text(source, zone, code, label):
    key = CorrelationKey.equipment(source, zone, HarmCategory.FIRE, label, code)
    assert CorrelationKey.parse(str(key)) == key


@given(sources, st.from_regex(r"[A-Z]{2,8}", fullmatch=True), texts)
def test_a_feed_key_reads_back_from_its_text(source, code, zone):
    key = CorrelationKey.feed(source, code, zone)
    assert CorrelationKey.parse(str(key)) == key


def test_the_text_form_is_the_one_stored_before_the_value_object():
    assert str(CorrelationKey.equipment("p1", "5", HarmCategory.PROPERTY)) == "eq|p1|5|property"
    assert str(CorrelationKey.feed("cap:nws", "HAZMAT", "Z1")) == "feed|cap:nws|HAZMAT|Z1"
    cam = CorrelationKey.equipment("cam-1", None, HarmCategory.PROPERTY, "person", "ALRBS")
    assert str(cam) == "eq|cam-1||ALRBS/person"


def test_a_key_by_category_follows_a_reclassification_and_a_named_one_stays():
    panel = CorrelationKey.equipment("p1", "5", HarmCategory.PROPERTY)
    assert panel.reclassified(HarmCategory.FIRE) == CorrelationKey.equipment(
        "p1", "5", HarmCategory.FIRE
    )
    feed = CorrelationKey.feed("cap:nws", "HAZMAT", "Z1")
    assert feed.reclassified(HarmCategory.FIRE) == feed
    cam = CorrelationKey.equipment("cam-1", "", HarmCategory.PROPERTY, "person", "ALRBS")
    assert cam.reclassified(HarmCategory.VIOLENCE) == cam


@pytest.mark.parametrize("text", ["", "eq|x", "feed|a|b", "zz|a|b|c"])
def test_a_text_no_key_writes_is_refused(text):
    with pytest.raises(ValueError, match="not a correlation key"):
        CorrelationKey.parse(text)
