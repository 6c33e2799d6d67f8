"""Purpose screening: the one policy that decides whether a purpose is admissible.

alarmdesk responds to harm (fire, violence, theft and damage, medical emergencies, hazards,
failed equipment). It never becomes a tool to watch people for exercising their rights
(docs/architecture.md, "The line we hold"). Every incident type, routing or grouping rule, saved
search, report filter and MQTT topic mapping states a purpose; whatever defines one passes its
texts through :func:`screen` (or :func:`is_admissible`), which refuses any text that targets
assembly, protest, petitioning, speech and the press, religion or belief, ethnic or national
origin, political opinion, trade-union activity, migration status, curfews or begging.

The terms, and the normalised readings of a text they are matched in, are
:mod:`alarmdesk.domain.purpose.terms`. Each reading is matched three ways: word by word
(punctuation splits words), chunk by chunk (punctuation inside a chunk removed: "pro-test",
"p.r.o.t.e.s.t", "pro_test"), and across spaced-out fragments ("p r o t e s t", "pr ot est");
Han, Kana and Hangul terms match as substrings of the text with everything but letters and
digits removed.

A purpose can target people without naming a protected term: "Mosque attendance monitoring",
"Crowd gathering in the square". The watched-subject rule (:data:`WATCHED_SUBJECTS`, terms in
``alarmdesk/data/watched_subjects.tsv``, matched through the same normalisation and readings)
refuses a place of worship named together with a watching term (attendance, visitors,
monitoring, counting…) under ``belief.religion``, and a crowd or gathering under
``assembly.gathering``, unless the text names a harm ("crowd crush risk", "assault outside a
mosque", "fire at a church"). Protected terms are looked for first.

Pure: standard library only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import ProtectedPurposeError, UnknownCategoryError
from alarmdesk.domain.purpose.terms import (
    CJK,
    HARM,
    RULES,
    WATCHED_SUBJECTS,
    Chunks,
    Term,
    TermIndex,
    Token,
    chunks_of,
    forms_of,
    is_allow,
    normalise,
    protected_index,
    readings_of,
    watched_index,
    words_of,
)

PROTECTED_PURPOSE = "protected_purpose"
UNKNOWN_CATEGORY = "unknown_category"


@dataclass(frozen=True, slots=True)
class Match:
    """Where a protected term was found in a text.

    ``start``/``end`` index into ``normalise(text)``; ``variant`` says which reading of the
    text matched ("original", "latinised", "cyrillised", "leet", "leet-l").
    """

    rule: str
    term: str
    lang: str
    variant: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer of :func:`is_admissible`. ``ok`` is False with a code and, for a protected
    purpose, the rule, the matched term and the field it was found in."""

    ok: bool
    code: str | None = None
    rule: str | None = None
    term: str | None = None
    field: str | None = None
    message: str | None = None


# ---------------------------------------------------------------------------- matching

_Hit = tuple[Term, int, int]  # term, start, end in the reading


def _single(
    index: TermIndex, tokens: list[Token], joints: list[tuple[int, ...]] | None = None
) -> Iterable[_Hit]:
    """Tokens that are a term, or begin with a stem. In a chunk joined across punctuation the
    rest of the word after a stem may not cross a joint: "pro_testers" is "protesters", but
    "sit_in_wait" is not a "sit-in" (and "p.r.o.t.e.s.t.e.r.s" is found by :func:`_spaced`)."""
    for number, (token, start, end) in enumerate(tokens):
        for form in forms_of(token):
            for term in index.exact.get(form, ()):
                yield term, start, end
            if index.inner_any is not None and index.inner_any.search(form):
                for term in index.inner:
                    if len(form) > len(term.joined) and (
                        form.endswith(term.joined) or (term.stem and term.joined in form)
                    ):
                        yield term, start, end
            cut = len(token) - len(form)
            for n in index.stem_lengths:
                if n >= len(form):
                    break
                terms = index.stems.get(form[:n], ())
                if terms and joints and any(cut + n <= j for j in joints[number]):
                    continue
                for term in terms:
                    yield term, start, end


def _word_matches(term: Term, word: str, last: bool) -> bool:
    return word == term.words[-1] or (last and term.stem and word.startswith(term.words[-1]))


def _phrases(index: TermIndex, tokens: list[Token]) -> Iterable[_Hit]:
    for i, (token, start, _) in enumerate(tokens):
        for form in forms_of(token):
            for term in index.phrases.get(form, ()):
                n = len(term.words)
                following = tokens[i + 1 : i + n]
                if len(following) != n - 1:
                    continue
                if all(
                    w == term.words[k + 1] or (k == n - 2 and _word_matches(term, w, True))
                    for k, (w, _, _) in enumerate(following)
                ):
                    yield term, start, following[-1][2]


def _spaced(index: TermIndex, tokens: list[Token], fragment: list[bool]) -> Iterable[_Hit]:
    """Terms spelled across consecutive tokens ("p r o t e s t", "pr ot est", "a r.a.b.s",
    "pro_test_ers"). The tokens must make up exactly the term. Ordinary word pairs rarely
    spell a term, but to be safe a term needs 7 letters across two tokens and 5 across three
    or more, unless every token is a fragment (a single character, or letters split by
    punctuation): then 4."""
    for i in range(len(tokens)):
        joined = tokens[i][0]
        all_fragments = fragment[i]
        for j in range(i + 1, len(tokens)):
            joined += tokens[j][0]
            all_fragments = all_fragments and fragment[j]
            if len(joined) > index.longest:
                break
            if len(joined) < (4 if all_fragments else 7 if j == i + 1 else 5):
                continue
            for term in index.exact.get(joined, ()):
                yield term, tokens[i][1], tokens[j][2]


def _substrings(index: TermIndex, reading: str) -> Iterable[_Hit]:
    if CJK.search(reading) is None:
        return
    positions = [i for i, ch in enumerate(reading) if ch.isalnum()]
    squeezed = "".join(reading[i] for i in positions)
    for term in index.cjk:
        at = squeezed.find(term.joined)
        while at >= 0:
            yield term, positions[at], positions[at + len(term.joined) - 1] + 1
            at = squeezed.find(term.joined, at + 1)


@dataclass(frozen=True, slots=True)
class _Reading:
    """One reading of a text, split once for every index matched against it."""

    name: str
    text: str
    words: list[Token]
    chunks: Chunks
    has_cjk: bool


def _split(readings: Mapping[str, str]) -> list[_Reading]:
    return [
        _Reading(name, text, words_of(text), chunks_of(text), CJK.search(text) is not None)
        for name, text in readings.items()
    ]


def _hits(index: TermIndex, reading: _Reading) -> Iterable[_Hit]:
    words, chunks = reading.words, reading.chunks
    # Without punctuation inside a word the chunks are the words, and would find the same.
    by_chunk = chunks.tokens != words
    yield from _single(index, words)
    if by_chunk:
        yield from _single(index, chunks.tokens, chunks.joints)
    yield from _phrases(index, words)
    if by_chunk:
        yield from _phrases(index, chunks.tokens)
    yield from _spaced(index, words, [len(w) == 1 for w, _, _ in words])
    if by_chunk:
        yield from _spaced(index, chunks.tokens, chunks.fragment)
    if reading.has_cjk:
        yield from _substrings(index, reading.text)


_Found = tuple[Term, int, int, str, int]  # term, start, end, reading name, reading order


def _scan(index: TermIndex, readings: list[_Reading]) -> list[_Found]:
    """Every term of an index found in every reading, less those lying wholly inside an
    allow phrase found in the same reading."""
    out: list[_Found] = []
    for order, reading in enumerate(readings):
        name = reading.name
        allowed: list[tuple[int, int]] = []
        found: list[_Hit] = []
        for hit in _hits(index, reading):
            if is_allow(hit[0].rule):
                allowed.append((hit[1], hit[2]))
            else:
                found.append(hit)
        out.extend(
            (term, start, end, name, order)
            for term, start, end in found
            if not any(a <= start and end <= b for a, b in allowed)
        )
    return out


def _first(found: Iterable[_Found]) -> _Found | None:
    """The earliest, then longest, then the longest term, then the plainest reading."""
    return min(found, key=lambda f: (f[1], f[1] - f[2], -len(f[0].text), f[4]), default=None)


def _protected(readings: list[_Reading]) -> Match | None:
    first = _first(_scan(protected_index(), readings))
    if first is None:
        return None
    term, start, end, name, _ = first
    return Match(term.rule, term.text, term.lang, name, start, end)


def _watched(readings: list[_Reading]) -> Match | None:
    """The watched-subject rule: a subject (with its watching term, if its kind needs one)
    and no harm named anywhere in the text, in any reading."""
    found: dict[str, list[_Found]] = {}
    for f in _scan(watched_index(), readings):
        found.setdefault(f[0].rule, []).append(f)
    if HARM in found:
        return None
    candidates: list[Match] = []
    for kind, (rule, needs) in WATCHED_SUBJECTS.items():
        subject = _first(found.get(kind, ()))
        if subject is None:
            continue
        term, start, end, name, _ = subject
        text = term.text
        if needs is not None:
            watching = _first(found.get(needs, ()))
            if watching is None:
                continue
            pair = sorted((subject, watching), key=lambda f: f[1])
            text = " + ".join(f[0].text for f in pair)
            start, end = pair[0][1], max(f[2] for f in pair)
        candidates.append(Match(rule, text, term.lang, name, start, end))
    return min(candidates, key=lambda m: (m.start, m.start - m.end), default=None)


def find_protected(text: str) -> Match | None:
    """The first protected term in a text (earliest, then longest), or else the match of the
    watched-subject rule (a place of worship watched, a crowd, with no harm named), or None.
    For the watched-subject rule ``term`` names the subject and its watching term
    ("mosque + attendance")."""
    if not text:
        return None
    readings = _split(readings_of(normalise(text)))
    return _protected(readings) or _watched(readings)


# ---------------------------------------------------------------------------- the policy


def check_category(value: HarmCategory | str) -> HarmCategory:
    """A harm category from a member or its value ("fire"); anything else is refused.

    Raises:
        UnknownCategoryError: not one of the closed list (code ``unknown_category``).
    """
    if isinstance(value, HarmCategory):
        return value
    if isinstance(value, str):
        try:
            return HarmCategory(value.strip().lower())
        except ValueError:
            pass
    raise UnknownCategoryError(value, allowed=", ".join(member.value for member in HarmCategory))


def _values(value: str | Iterable[str]) -> Iterable[str]:
    return (value,) if isinstance(value, str) else value


def screen(
    fields: Mapping[str, str | Iterable[str]], *, category: HarmCategory | str | None = None
) -> None:
    """Refuses a purpose whose fields target people exercising rights.

    ``fields`` maps a field name (name, description, terms, topic, …) to a text or to several
    texts (each screened on its own); fields are screened in order and the first match is
    raised.

    Raises:
        UnknownCategoryError: ``category`` is given and is not a harm category.
        ProtectedPurposeError: a field matches a protected term (code ``protected_purpose``).
    """
    if category is not None:
        check_category(category)
    for field, value in fields.items():
        for text in _values(value):
            match = find_protected(text)
            if match is not None:
                raise ProtectedPurposeError(
                    field,
                    match.rule,
                    match.term,
                    RULES.get(match.rule, "people exercising rights"),
                )


def is_admissible(
    name: str,
    description: str = "",
    terms: Iterable[str] = (),
    category: HarmCategory | str | None = None,
) -> Verdict:
    """Whether a purpose may exist, as a verdict rather than an exception."""
    try:
        screen(
            {"name": name, "description": description, "terms": tuple(terms)},
            category=category,
        )
    except ProtectedPurposeError as exc:
        return Verdict(False, exc.code, exc.rule, exc.term, exc.field, str(exc))
    except UnknownCategoryError as exc:
        return Verdict(False, exc.code, None, None, exc.field, str(exc))
    return Verdict(True)


# ---------------------------------------------------------------------------- names and labels

# One word each, matched against the words of a name (a key, a column, a camera's label):
# short identifiers too ambiguous to refuse in free text ("race", "faith") that have no
# business being the name of a field or of what a camera reports.
SPECIAL_WORDS = frozenset(
    {
        # face recognition and biometrics
        "face", "faces", "facial", "faceprint", "biometric", "biometrics", "embedding",
        "embeddings", "fingerprint", "fingerprints", "iris", "retina", "voiceprint", "gait",
        "sublabel", "sublabels",
        # racial or ethnic origin, nationality (DESIGN: no category for ethnicity/nationality)
        "race", "racial", "ethnic", "ethnicity", "nationality", "citizenship",
        # religion or belief
        "religion", "religious", "faith", "belief", "beliefs",
        # political opinion, union membership
        "political", "politics", "unionist",
        # sex life, sexual orientation
        "sexual", "sexuality", "unionised",
    }
)  # fmt: skip
# Consecutive words; each tuple must appear in order in the name's words.
SPECIAL_PHRASES = (
    ("sub", "label"),
    ("sub", "labels"),
    ("trade", "union"),
    ("union", "member"),
    ("union", "membership"),
    ("party", "affiliation"),
    ("party", "membership"),
    ("migration", "status"),
    ("immigration", "status"),
    ("sex", "life"),
    ("gender", "identity"),
    ("risk", "score"),
    ("threat", "score"),
)
# Frigate labels that say who someone is, or whose vehicle: never an alarm's type (faces and
# recognised names arrive as sub_label; plates as license_plate objects).
IDENTIFYING_LABELS = frozenset({"face", "license_plate", "plate", "sub_label"})
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^0-9a-z]+")


def name_words(name: str) -> tuple[str, ...]:
    """The lower-case words of a name: ``"subLabel"`` and ``"sub_label"`` → ``("sub", "label")``."""
    return tuple(w for w in _SPLIT.split(_HUMP.sub(" ", name).lower()) if w)


@functools.lru_cache(maxsize=8192)  # payload keys repeat: the hot path is a cache hit
def is_special_name(name: str) -> bool:
    """True when a name (a key, a column, a classifier value, a label) names special-category
    data: one of :data:`SPECIAL_WORDS` among its words, or one of :data:`SPECIAL_PHRASES`."""
    ws = name_words(name)
    if any(w in SPECIAL_WORDS for w in ws):
        return True
    return any(
        ws[i : i + len(phrase)] == phrase for phrase in SPECIAL_PHRASES for i in range(len(ws))
    )


def identifying_labels(labels: Iterable[str]) -> list[str]:
    """The labels (of Frigate objects) that identify a person or name special-category data,
    sorted: a face, a recognised name (``sub_label``), a plate, or a special-category name.

    The one rule for every place that maps labels to incident types: ``[intake]
    frigate_labels`` and a camera's ``labels`` in the set-up (docs/mqtt.md).
    """
    return sorted(
        label for label in labels if label.lower() in IDENTIFYING_LABELS or is_special_name(label)
    )
