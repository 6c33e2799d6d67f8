"""The watched-subject rule of purpose screening (alarmdesk.domain.purpose).

A purpose may name no protected term and still target people exercising rights: a type that
watches who attends a place of worship ("Mosque attendance monitoring", "Kirchenbesuch
überwachen"), or one that watches people gathering in a public place without naming any harm
("Crowd gathering in the square"). Both are refused, in every supported language and through
the same disguises as protected terms; naming a harm (a crush, a fire, an assault, a
collapse, a medical emergency...) makes the purpose one of responding to harm, and accepted.
"""

from __future__ import annotations

import csv
import random
from importlib.resources import files

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alarmdesk.domain import purpose
from alarmdesk.domain.purpose import (
    ProtectedPurposeError,
    find_protected,
    is_admissible,
    normalise,
    screen,
    terms,
)
from alarmdesk.domain.purpose.screening import _single
from tests.unit.test_purpose_screening import case, homoglyphs, leet, zero_width

WATCHED_TSV = files("alarmdesk") / "data" / "watched_subjects.tsv"
LANGS = ("en", "es", "fr", "de", "ru", "ar", "pt", "zh-Hans", "zh-Hant")

RELIGION = "belief.religion"
ASSEMBLY = "assembly.gathering"

# A place of worship as the thing a type watches: attendance, visitors, who goes there.
WORSHIP_REFUSED: list[str] = [
    # the red-team phrasings
    "Mosque attendance monitoring",
    "count visitors of the synagogue",
    "Kirchenbesuch überwachen",
    # English
    "Church attendance",
    "Who goes to St Mary's church",
    "Surveillance of the gurdwara",
    "Temple visitors list",
    "Chapel footfall",
    "Headcount at the prayer hall",
    "mosque-goers",
    "Track people entering the synagogue",
    "Cathedral occupancy count",
    "Visitors at a place of worship",
    "Sunday mass attendance",
    "Mosque CCTV",
    "Keep an eye on the synagogue",
    # English, disguised
    "M0squ3 4tt3nd4nc3",  # leetspeak
    "c h u r c h attendance",  # spaced letters
    "Syn\u0430gogue visitors",  # Cyrillic а
    "ｍｏｓｑｕｅ ｖｉｓｉｔｏｒｓ",  # fullwidth
    "mos\u200bque atten\u200bdance",  # zero-width spaces
    "t.e.m.p.l.e v.i.s.i.t.o.r.s",  # dotted letters
    "CHÜRCH ÀTTENDANCE",  # accents
    # Spanish, French, German
    "asistencia a la mezquita",
    "contar visitantes de la sinagoga",
    "vigilancia de la iglesia",
    "fréquentation de la mosquée",
    "surveillance de la synagogue",
    "qui va à l'église le vendredi",
    "Moscheebesucher zählen",
    "Überwachung der Synagoge",
    "Besucher des Tempels erfassen",
    "Kirchgänger",
    "Moscheegänger",
    # Russian, Arabic, Portuguese
    "посещаемость мечети",
    "наблюдение за церковью",
    "кто ходит в синагогу",
    "м\u0435четь посетители",  # Cyrillic е written with a Latin-looking one is still Cyrillic
    "حضور المسجد",
    "مراقبة الكنيسة",
    "زوار المعبد",
    "frequentadores da igreja",
    "vigilância da mesquita",
    "contagem de visitantes da sinagoga",
    # Chinese, simplified and traditional
    "清真寺人数统计",
    "监控教堂进出",
    "寺廟訪客登記",
    "教 堂 人 数",
    "去清真寺的人",
]

# People gathering in a public place, with no harm named.
CROWD_REFUSED: list[str] = [
    # the red-team phrasings
    "Crowd gathering in the square",
    "group of people assembling at the park",
    "Menschenansammlung am Marktplatz",
    # English
    "Crowd",
    "Large crowds downtown",
    "People massing at the station",
    "Gathering of residents outside city hall",
    "Flash mob at the mall",
    "People congregating on the bridge",
    "Public assembly in the square",
    "Large group at the bus stop",
    # English, disguised
    "cr0wd at the plaza",
    "g a t h e r i n g in the park",
    "Cr\u043ewd",  # Cyrillic о
    "cr\u200bowd",
    "G.R.O.U.P of p.e.o.p.l.e",
    # Spanish, French, German
    "multitud en la plaza",
    "grupo de personas en el parque",
    "aglomeración en la estación",
    "foule sur la place",
    "attroupement devant la mairie",
    "groupe de personnes au parc",
    "Menschenmenge vor dem Rathaus",
    "Personengruppe im Park",
    # Russian, Arabic, Portuguese
    "толпа на площади",
    "скопление людей у вокзала",
    "группа людей в парке",
    "تجمع في الساحة",
    "حشد أمام البلدية",
    "مجموعة من الناس في الحديقة",
    "multidão na praça",
    "aglomeração na estação",
    "grupo de pessoas no parque",
    # Chinese
    "广场人群聚集",
    "公园聚眾",
    "一群人在車站",
]

# Crowd safety and harm at a place of worship: they name a harm, and stay accepted.
HARM_ACCEPTED: list[str] = [
    "crowd crush risk",
    "overcrowded venue",
    "fight in a crowd",
    "fire at a church",
    "assault outside a mosque",
    "structure collapse at a temple",
    "stampede",
    "medical emergency at the stadium",
    "Crowd surge at the north gate",
    "Synagogue visitors injured by falling masonry",
    "Monitoring the cathedral alarm panel for faults",
    "Lost child in the crowd",
    "Group of people trapped in a lift",
    "Suspicious package left at the gathering",
    "Church camera offline",
    "Pickpocketing in the crowds at the fair",
    "Heat exhaustion among the crowd at the festival",
    "Graffiti on the synagogue, camera footage",
    "Vehicle ramming into a crowd",
    "Ambulance access blocked by the crowd",
    "Temple attendance after the earthquake",
    "Monitoring threats against the synagogue",
    "estampida en la plaza",
    "incendio en la iglesia",
    "bousculade dans la foule",
    "mouvement de foule",
    "incendie à la mosquée",
    "Massenpanik in der Menschenmenge",
    "Kirchenbrand",
    "Körperverletzung vor der Moschee",
    "давка в толпе",
    "пожар в церкви",
    "تدافع في الحشد",
    "حريق في المسجد",
    "pisoteamento na multidão",
    "incêndio na igreja",
    "人群踩踏",
    "教堂火灾",
    "清真寺外襲擊",
]

# Places named as places, and words that only look like watching or crowds.
ORDINARY_ACCEPTED: list[str] = [
    "St Mary's church",
    "Mosque",
    "Kölner Dom",
    "Temple Street traffic monitoring",
    "Church Road speed monitoring",
    "Alarm monitoring at the church",
    "Tempelhofer Feld Überwachung",
    "evidence gathering",
    "crowdfunding page",
    "Assembly point B blocked",
    "Doppelgänger",
    "point de rassemblement bloqué",
    "تجمع المياه في النفق",
]

# A harm named in each language, to add to a refused phrase.
HARM_WORDS: list[str] = [
    "fire", "crush risk", "assault", "collapse", "medical emergency", "stampede", "injured",
    "incendio", "heridos", "incendie", "bagarre", "Brand", "Verletzte", "пожар", "давка",
    "حريق", "إصابات", "incêndio", "feridos", "火灾", "踩踏",
]  # fmt: skip


def _rows() -> list[dict[str, str]]:
    lines = [line for line in WATCHED_TSV.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]  # fmt: skip
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


def _plain(term: str) -> str:
    return term.removeprefix("=").removeprefix("*").removesuffix("*")


# ------------------------------------------------------------------ the tables


def test_the_tables_are_broad():
    assert len(WORSHIP_REFUSED) + len(CROWD_REFUSED) >= 60
    assert len(HARM_ACCEPTED) >= 30


@pytest.mark.parametrize("text", WORSHIP_REFUSED)
def test_watching_a_place_of_worship_is_refused(text):
    verdict = is_admissible(text)
    assert not verdict.ok, text
    assert (verdict.code, verdict.rule, verdict.field) == ("protected_purpose", RELIGION, "name")


@pytest.mark.parametrize("text", CROWD_REFUSED)
def test_watching_a_crowd_without_naming_a_harm_is_refused(text):
    verdict = is_admissible(text)
    assert not verdict.ok, text
    assert (verdict.code, verdict.rule, verdict.field) == ("protected_purpose", ASSEMBLY, "name")


@pytest.mark.parametrize("text", HARM_ACCEPTED)
def test_a_purpose_that_names_a_harm_is_accepted(text):
    assert find_protected(text) is None, (text, find_protected(text))
    assert is_admissible(text, description=text, terms=[text]).ok


@pytest.mark.parametrize("text", ORDINARY_ACCEPTED)
def test_a_place_or_an_ordinary_phrase_alone_is_accepted(text):
    assert find_protected(text) is None, (text, find_protected(text))


# ------------------------------------------------------------------ the refusal


def test_the_refusal_names_the_rule_and_both_terms():
    with pytest.raises(ProtectedPurposeError) as caught:
        screen({"name": "Fire", "description": "Mosque attendance monitoring"})
    err = caught.value
    assert (err.code, err.rule, err.field, err.term) == (
        "protected_purpose",
        RELIGION,
        "description",
        "mosque + attend",
    )
    assert "targets religion or belief (rule belief.religion, matched 'mosque + attend')" in str(
        err
    )
    match = find_protected("Crowd gathering in the square")
    assert match is not None
    assert (match.rule, match.term, match.start, match.end) == (ASSEMBLY, "crowd", 0, 5)


def test_a_protected_term_is_reported_before_the_watched_subject_rule():
    match = find_protected("Worshippers entering the mosque")
    assert match is not None and (match.rule, match.term) == (RELIGION, "worship")
    # and a harm never clears a protected term: only the watched-subject rule
    match = find_protected("Fire at the protest crowd")
    assert match is not None and match.rule == "assembly.protest"


def test_a_harm_anywhere_in_the_text_clears_the_rule_but_fields_are_screened_one_by_one():
    assert is_admissible("Crowd at the square, crush risk").ok
    verdict = is_admissible("Crush risk", description="Crowd at the square")
    assert (verdict.ok, verdict.field, verdict.rule) == (False, "description", ASSEMBLY)


def test_an_allow_phrase_masks_only_itself():
    assert find_protected("Alarm monitoring at the church") is None
    match = find_protected("Alarm monitoring and attendance at the church")
    assert match is not None and match.rule == RELIGION


# ------------------------------------------------------------------ the data file


def test_every_kind_has_terms_in_every_language():
    counts = purpose.watched_term_counts()
    assert set(counts) == purpose.WATCHED_KINDS
    for kind in ("worship", "watching", "crowd", "harm"):
        for lang in LANGS:
            assert counts[kind].get(lang, 0) >= 5, (kind, lang)


def test_every_harm_term_clears_a_refused_crowd():
    for row in _rows():
        if row["kind"] == "harm":
            text = f"Crowd gathering in the square {_plain(row['term'])}"
            assert find_protected(text) is None, row


def test_every_crowd_term_alone_is_refused():
    for row in _rows():
        if row["kind"] == "crowd":
            match = find_protected(_plain(row["term"]))
            assert match is not None and match.rule == ASSEMBLY, row


WATCHING_SAMPLE = {"en": "attendance", "es": "vigilancia", "fr": "fréquentation",
                   "de": "Besucher", "ru": "посещаемость", "ar": "مراقبة", "pt": "frequentadores",
                   "zh-Hans": "人数", "zh-Hant": "人數"}  # fmt: skip
WORSHIP_SAMPLE = {"en": "mosque", "es": "iglesia", "fr": "mosquée", "de": "Synagoge",
                  "ru": "мечеть", "ar": "المسجد", "pt": "igreja", "zh-Hans": "教堂",
                  "zh-Hant": "教堂"}  # fmt: skip


def test_every_place_of_worship_and_every_watching_term_is_refused_together():
    for row in _rows():
        if row["kind"] == "worship":
            text = f"{_plain(row['term'])} {WATCHING_SAMPLE[row['lang']]}"
        elif row["kind"] == "watching":
            text = f"{WORSHIP_SAMPLE[row['lang']]} {_plain(row['term'])}"
        else:
            continue
        match = find_protected(text)
        assert match is not None and match.rule in (RELIGION, ASSEMBLY), (row, text, match)


def test_the_data_file_rejects_an_unknown_kind_or_a_bad_inner_term():
    with pytest.raises(ValueError, match="unknown kind"):
        terms._parse_watched("kind\tlang\tterm\nplace\ten\tchurch\n")
    with pytest.raises(ValueError, match="header"):
        terms._parse_watched("rule\tlang\tterm\nworship\ten\tchurch\n")
    with pytest.raises(ValueError, match="only one word"):
        terms._parse_watched("kind\tlang\tterm\nharm\ten\t*gas leak\n")


def test_a_leading_star_matches_the_end_or_the_inside_of_a_word():
    index = terms._parse_watched("kind\tlang\tterm\nharm\tde\t*brand\nwatching\tde\t*besuch*\n")
    words = [("wohnungsbrand", 0, 13), ("brandenburg", 14, 25), ("kirchenbesucher", 26, 41)]
    hits = {(term.rule, start) for term, start, _ in _single(index, words)}
    assert hits == {("harm", 0), ("watching", 26)}


# ------------------------------------------------------------------ properties

FAST = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no example database in the working tree
    suppress_health_check=[HealthCheck.too_slow],
)
PLACES = {
    "en": ["church", "mosque", "synagogue", "temple", "gurdwara", "chapel", "cathedral",
           "shrine", "prayer hall", "meeting house"],
    "es": ["iglesia", "mezquita", "sinagoga", "templo", "capilla", "catedral"],
    "fr": ["église", "mosquée", "synagogue", "temple", "chapelle", "cathédrale"],
    "de": ["Kirche", "Moschee", "Synagoge", "Tempel", "Kapelle", "Gebetsraum"],
    "ru": ["церковь", "мечеть", "синагога", "храм", "часовня", "собор"],
    "ar": ["المسجد", "الكنيسة", "الكنيس", "المعبد", "المصلى"],
    "pt": ["igreja", "mesquita", "sinagoga", "templo", "capela", "catedral"],
    "zh-Hans": ["教堂", "清真寺", "寺庙", "礼拜堂"],
    "zh-Hant": ["教堂", "清真寺", "寺廟", "禮拜堂"],
}  # fmt: skip
WATCHING = {
    "en": ["{} attendance", "count visitors of the {}", "who goes to the {}",
           "surveillance of the {}", "monitor people entering the {}", "{} headcount"],
    "es": ["asistencia a la {}", "vigilancia de la {}", "contar visitantes de la {}"],
    "fr": ["fréquentation de la {}", "surveillance de la {}", "qui va à la {}"],
    "de": ["{}nbesuch überwachen", "Besucher der {} zählen", "Überwachung der {}"],
    "ru": ["посещаемость: {}", "наблюдение: {}", "посетители: {}"],
    "ar": ["حضور {}", "مراقبة {}", "زوار {}"],
    "pt": ["frequentadores da {}", "vigilância da {}", "contagem de visitantes da {}"],
    "zh-Hans": ["{}人数统计", "监控{}进出", "{}访客登记"],
    "zh-Hant": ["{}人數統計", "監控{}進出", "{}訪客登記"],
}  # fmt: skip
PAIRS = [(lang, place, phrase) for lang in LANGS for place in PLACES[lang]
         for phrase in WATCHING[lang]]  # fmt: skip


@FAST
@given(pair=st.sampled_from(PAIRS), rnd=st.randoms(use_true_random=False))
def test_any_watching_phrase_about_a_place_of_worship_is_refused_in_every_language(pair, rnd):
    lang, place, phrase = pair
    text = phrase.format(place)
    match = find_protected(text)
    assert match is not None and match.rule == RELIGION, (text, match)
    if lang in ("en", "es", "fr", "de", "pt"):
        # disguised, it is still refused (a disguise may also spell a protected term:
        # "vigil@ncia" read as Latin holds "vigil")
        disguised = zero_width(rnd, case(rnd, leet(rnd, homoglyphs(rnd, text))))
        assert not is_admissible(disguised).ok, disguised


@FAST
@given(
    refused=st.sampled_from(CROWD_REFUSED + WORSHIP_REFUSED),
    harm=st.sampled_from(HARM_WORDS),
    before=st.booleans(),
)
def test_any_harm_added_to_a_refused_phrase_makes_it_accepted(refused, harm, before):
    text = f"{harm}: {refused}" if before else f"{refused}, {harm}"
    assert is_admissible(text).ok, text


@FAST
@given(text=st.sampled_from(HARM_ACCEPTED), rnd=st.randoms(use_true_random=False))
def test_case_and_zero_width_characters_do_not_make_a_named_harm_inadmissible(text, rnd):
    assert is_admissible(zero_width(rnd, case(rnd, text))).ok


def test_the_obfuscated_phrasings_are_the_same_phrase_once_decoded():
    # the disguised rows above are real disguises, not different words
    rng = random.Random(8)
    assert normalise("ｍｏｓｑｕｅ ｖｉｓｉｔｏｒｓ") == "mosque visitors"
    assert purpose.variants("M0squ3 4tt3nd4nc3")["leet"] == "mosque attendance"
    assert purpose.variants("Cr\u043ewd")["latinised"] == "crowd"
    assert find_protected(homoglyphs(rng, "crowd gathering")) is not None
