"""Purpose screening: the one policy that decides whether a purpose is admissible.

alarmdesk responds to harm (fire, violence, theft and damage, medical emergencies, hazards,
failed equipment). It never becomes a tool to watch people for exercising their rights
(docs/architecture.md, "The line we hold"). Every incident type, routing or grouping rule, saved
search, report filter and MQTT topic mapping states a purpose; whatever defines one passes its
texts through :func:`screen` (or :func:`is_admissible`), which refuses any text that targets
assembly, protest, petitioning, speech and the press, religion or belief, ethnic or national
origin, political opinion, trade-union activity, migration status, curfews or begging.

Terms live in ``alarmdesk/data/protected_terms.tsv`` (rule, language, term; English, Spanish,
French, German, Russian, Arabic, Portuguese, Chinese simplified and traditional). Screened
text is normalised first (:func:`normalise`: NFKC, casefold, accents and zero-width or other
format characters removed) and then read in several 1:1 variants (:func:`variants`): as
written, with Cyrillic/Greek/small-capital look-alikes read as Latin letters, with Latin
look-alikes inside Cyrillic words read as Cyrillic, and with leetspeak digits and symbols read
as letters. Each variant is matched three ways: word by word (punctuation splits words),
chunk by chunk (punctuation inside a chunk removed: "pro-test", "p.r.o.t.e.s.t", "pro_test"),
and across spaced-out fragments ("p r o t e s t", "pr ot est"); Han, Kana and Hangul terms
match as substrings of the text with everything but letters and digits removed.

Purposes, not keywords: terms are chosen so that conduct and harm stay admissible ("riot",
"assault", "lightning strike", "stroke", "Union Street fire", "fire at St Mary's church",
"March storm damage", "black smoke", "graffiti"); see the comments in the data file.

A purpose can target people without naming a protected term: "Mosque attendance monitoring",
"Crowd gathering in the square". The watched-subject rule (:data:`WATCHED_SUBJECTS`, terms in
``alarmdesk/data/watched_subjects.tsv``, matched through the same normalisation and readings)
refuses a place of worship named together with a watching term (attendance, visitors,
monitoring, counting…) under ``belief.religion``, and a crowd or gathering under
``assembly.gathering``, unless the text names a harm ("crowd crush risk", "assault outside a
mosque", "fire at a church"). Protected terms are looked for first.

The module is pure: standard library only, no I/O but reading its data file once, lazily.
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import ProtectedPurposeError, UnknownCategoryError

__all__ = [
    "PROTECTED_PURPOSE",
    "RULES",
    "UNKNOWN_CATEGORY",
    "WATCHED_KINDS",
    "WATCHED_SUBJECTS",
    "Match",
    "ProtectedPurposeError",
    "UnknownCategoryError",
    "Verdict",
    "check_category",
    "find_protected",
    "is_admissible",
    "normalise",
    "screen",
    "term_counts",
    "variants",
    "watched_term_counts",
]

PROTECTED_PURPOSE = "protected_purpose"
UNKNOWN_CATEGORY = "unknown_category"

#: Rule id → what a purpose matching it targets (used in refusal messages).
RULES: Mapping[str, str] = {
    "assembly.gathering": "lawful assembly",
    "assembly.protest": "lawful assembly",
    "expression.petition": "petitioning and lawful expression",
    "expression.speech": "free speech and the press",
    "belief.religion": "religion or belief",
    "identity.ethnicity": "ethnic or national origin",
    "opinion.political": "political opinion",
    "union.activity": "trade-union activity",
    "status.migration": "migration status",
    "status.curfew": "people's status (curfew)",
    "status.poverty": "people's status (begging, poverty)",
    "special.biometric": "biometric identification of people",
    "special.sexual": "sex life or sexual orientation",
    "special.risk_score": "scoring people for risk",
}

#: The watched-subject rule (terms in ``alarmdesk/data/watched_subjects.tsv``): a purpose
#: whose subject is one of these kinds, and which names no harm, is refused under the rule
#: given. A subject kind with a second kind counts only together with a term of that kind
#: ("mosque" + "attendance"); one with None is itself what is watched ("crowd gathering").
WATCHED_SUBJECTS: Mapping[str, tuple[str, str | None]] = {
    "worship": ("belief.religion", "watching"),  # who attends a place of worship
    "crowd": ("assembly.gathering", None),  # people gathered, with no harm named
}
_HARM = "harm"  # any harm term clears the watched-subject rule
_ALLOW = "allow"  # a phrase inside which a subject or watching term is ordinary vocabulary
#: Every kind of term in watched_subjects.tsv.
WATCHED_KINDS: frozenset[str] = frozenset(
    {*WATCHED_SUBJECTS, *(w for _, w in WATCHED_SUBJECTS.values() if w), _HARM, _ALLOW}
)

_ALLOW_PREFIX = "allow."
_DATA_HEADER = ["rule", "lang", "term"]
_WATCHED_HEADER = ["kind", "lang", "term"]
_TERMS_FILE = "protected_terms.tsv"
_WATCHED_FILE = "watched_subjects.tsv"
_LANGS = frozenset({"en", "es", "fr", "de", "ru", "ar", "pt", "zh-Hans", "zh-Hant"})


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


# ---------------------------------------------------------------------------- normalising

# Hangul and Khmer fillers and vowel-inherent marks: invisible, but letters, not format chars.
_INVISIBLE = frozenset({0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0})
# Kana voicing marks are part of the letter; every other combining mark is an accent.
_KEEP_MARKS = frozenset({"\u3099", "\u309a"})
_ARABIC_FOLD = str.maketrans(
    {
        "\u0629": "\u0647",  # ta marbuta -> ha
        "\u0649": "\u064a",  # alef maksura -> ya
        "\u06cc": "\u064a",  # farsi ya -> ya
        "\u06a9": "\u0643",  # keheh -> kaf
        "\u0671": "\u0627",  # alef wasla -> alef
        "\u0640": None,  # tatweel (kashida)
    }
)


def normalise(text: str) -> str:
    """NFKC, casefolded, without accents, zero-width or other format characters, with single
    spaces. Letters of other scripts (CJK, Arabic, Cyrillic…) stay themselves; Arabic letter
    variants are folded (أ إ آ → ا, ة → ه, ى → ي) and tatweel removed."""
    s = unicodedata.normalize("NFKC", text)
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Cf" and ord(ch) not in _INVISIBLE)
    s = unicodedata.normalize("NFKD", s.casefold())
    s = "".join(ch for ch in s if ch in _KEEP_MARKS or unicodedata.category(ch) not in ("Mn", "Me"))
    s = unicodedata.normalize("NFC", s).translate(_ARABIC_FOLD)
    return " ".join(s.split())


# Cyrillic, Greek, Armenian, IPA and small-capital letters that pass for Latin ones
# (lower case: the text is casefolded first). Every mapping is one character to one.
_TO_LATIN = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "п": "n",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ь": "b", "ѕ": "s", "і": "i",
        "ј": "j", "ԁ": "d", "һ": "h", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y", "ҫ": "c",
        # Greek
        "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u",
        "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϳ": "j",
        "σ": "c",  # NFKC turns the lunate sigma ϲ, a look-alike of c, into σ
        # Armenian
        "օ": "o", "ս": "u", "զ": "q", "ց": "g", "հ": "h", "ո": "n",
        # Latin look-alikes outside ASCII: IPA, dotless i/j, small capitals
        "ɡ": "g", "ɑ": "a", "ɩ": "i", "ı": "i", "ȷ": "j", "ᴀ": "a", "ʙ": "b", "ᴄ": "c",
        "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l",
        "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u",
        "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    }
)  # fmt: skip
# Latin letters that pass for Cyrillic ones, read as Cyrillic inside Cyrillic words.
_TO_CYRILLIC = str.maketrans(
    {"a": "а", "b": "в", "c": "с", "e": "е", "h": "н", "k": "к", "m": "м", "o": "о",
     "p": "р", "t": "т", "x": "х", "y": "у"}
)  # fmt: skip
_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a",
         "$": "s", "!": "i", "|": "l", "+": "t"}  # fmt: skip
_LEET_I = str.maketrans({**_LEET, "1": "i"})
_LEET_L = str.maketrans({**_LEET, "1": "l"})
_CHUNK = re.compile(r"\S+")


def _has_cyrillic(s: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in s)


def _cyrillise(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        word = m.group()
        if _has_cyrillic(word) and any("a" <= ch <= "z" for ch in word):
            return word.translate(_TO_CYRILLIC)
        return word

    return _CHUNK.sub(one, text)


def _readings(text: str) -> dict[str, str]:
    """The 1:1 readings of an already normalised text, each distinct one once."""
    latin = text.translate(_TO_LATIN)
    out: dict[str, str] = {}
    for name, value in (
        ("original", text),
        ("latinised", latin),
        ("cyrillised", _cyrillise(text)),
        ("leet", latin.translate(_LEET_I)),
        ("leet-l", latin.translate(_LEET_L)),
    ):
        if value not in out.values():
            out[name] = value
    return out


def variants(text: str) -> dict[str, str]:
    """Every reading the screen matches against, by name: "original" (normalised),
    "latinised" (homoglyphs read as Latin), "cyrillised" (Latin look-alikes inside Cyrillic
    words read as Cyrillic), "leet" and "leet-l" (digits and symbols read as letters, 1 as i
    or as l); readings identical to an earlier one are left out. "squeezed" is the most
    decoded reading with everything but letters and digits removed (spaced-out letters
    joined); the screen matches such joins token by token rather than as one string."""
    out = _readings(normalise(text))
    last = out.get("leet") or out.get("latinised") or out["original"]
    out["squeezed"] = "".join(ch for ch in last if ch.isalnum())
    return out


# ---------------------------------------------------------------------------- the term index


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x3040 <= o <= 0x30FF  # kana
        or 0x3400 <= o <= 0x4DBF  # CJK extension A
        or 0x4E00 <= o <= 0x9FFF  # CJK unified ideographs
        or 0xAC00 <= o <= 0xD7AF  # Hangul syllables
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or 0x20000 <= o <= 0x3FFFF  # supplementary ideographs
    )


# The same ranges as _is_cjk, to test a whole text at once.
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
                  "\U00020000-\U0003ffff]")  # fmt: skip
_ARABIC = re.compile("[\u0600-\u06ff]")


def _is_arabic(s: str) -> bool:
    return _ARABIC.search(s) is not None


# Arabic proclitics written as part of the word: conjunctions, prepositions, the article.
_AR_CLITICS = ("وال", "بال", "فال", "كال", "لل", "ال", "و", "ب", "ل", "ف", "ك")

_Token = tuple[str, int, int]  # text, start, end (end exclusive) in the reading


def _words(s: str) -> list[_Token]:
    """Runs of letters and digits; anything else separates."""
    out: list[_Token] = []
    start = -1
    for i, ch in enumerate(s):
        if ch.isalnum():
            if start < 0:
                start = i
        elif start >= 0:
            out.append((s[start:i], start, i))
            start = -1
    if start >= 0:
        out.append((s[start:], start, len(s)))
    return out


@dataclass(frozen=True, slots=True)
class _Chunks:
    """Whitespace-separated chunks of a reading, punctuation inside each removed."""

    tokens: list[_Token]
    fragment: list[bool]  # a single character, or letters split by punctuation ("p.r.o")
    joints: list[tuple[int, ...]]  # where, in the joined chunk, a word after punctuation begins


def _chunks(s: str) -> _Chunks:
    out = _Chunks([], [], [])
    for m in _CHUNK.finditer(s):
        inner = [(i, ch) for i, ch in enumerate(m.group(), m.start()) if ch.isalnum()]
        if inner:
            first, last = inner[0][0], inner[-1][0] + 1
            out.tokens.append(("".join(ch for _, ch in inner), first, last))
            out.fragment.append(len(inner) == 1 or len(inner) < last - first)
            out.joints.append(
                tuple(k for k in range(1, len(inner)) if inner[k][0] != inner[k - 1][0] + 1)
            )
    return out


def _forms(token: str) -> tuple[str, ...]:
    """A token, and for Arabic also the token without each proclitic it starts with."""
    if not _is_arabic(token):
        return (token,)
    stripped = [
        token[len(c) :] for c in _AR_CLITICS if token.startswith(c) and len(token) > len(c) + 1
    ]
    return (token, *stripped)


@dataclass(frozen=True, slots=True)
class _Term:
    rule: str
    lang: str
    text: str  # normalised, as reported
    words: tuple[str, ...]  # two or more words matched in sequence; () for one word
    joined: str  # letters and digits only
    stem: bool  # the last word may begin a longer word
    cjk: bool
    inner: bool = False  # a one-word term that may end ("*brand") or, with stem, sit inside a word


@dataclass(frozen=True, slots=True)
class _Index:
    exact: Mapping[str, tuple[_Term, ...]]
    stems: Mapping[str, tuple[_Term, ...]]
    stem_lengths: tuple[int, ...]
    phrases: Mapping[str, tuple[_Term, ...]]
    cjk: tuple[_Term, ...]
    longest: int
    counts: Mapping[str, int]
    inner: tuple[_Term, ...] = ()
    inner_any: re.Pattern[str] | None = None  # finds any inner term, to skip most tokens fast


def _compile(rule: str, lang: str, raw: str) -> _Term:
    spec = raw.strip()
    exact = spec.startswith("=")
    inner = spec.startswith("*")
    star = spec.endswith("*")
    spec = spec.removeprefix("=").removeprefix("*").removesuffix("*")
    text = normalise(spec)
    words = tuple(w for w, _, _ in _words(text))
    joined = "".join(words)
    if not joined:
        raise ValueError(f"protected_terms.tsv: term {raw!r} of rule {rule} has no letters")
    cjk = any(_is_cjk(ch) for ch in text)
    if inner and (cjk or len(words) != 1):
        raise ValueError(f"{_source(rule)}: term {raw!r}: only one word may begin with '*'")
    together_only = "-" in text or "_" in text  # "sit-in" is not "sit in"
    last = joined if together_only else words[-1]
    stem = not cjk and not exact and (star or (len(last) >= 5 and not inner))
    phrase = () if together_only or cjk or len(words) < 2 else words
    return _Term(rule, lang, text, phrase, joined, stem, cjk, inner)


def _source(rule: str) -> str:
    """The data file a rule's terms come from (for error messages)."""
    return _WATCHED_FILE if rule in WATCHED_KINDS else _TERMS_FILE


def _rows(text: str, header: list[str], source: str) -> list[tuple[int, str, str, str]]:
    """The rows of a data file as (line number, rule or kind, language, term); comments and
    blank lines left out, the header and the column count checked."""
    lines = text.splitlines()
    rows = [(number, row) for number, row in enumerate(
                csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), 1)
            if row and not row[0].startswith("#")]  # fmt: skip
    if not rows or rows[0][1] != header:
        raise ValueError(f"{source}: the header must be '{'<TAB>'.join(header)}'")
    out = []
    for number, row in rows[1:]:
        if len(row) != 3:
            raise ValueError(f"{source}: row {number} has {len(row)} columns")
        rule, lang, raw = (cell.strip() for cell in row)
        if lang not in _LANGS:
            raise ValueError(f"{source}: row {number}: unknown language {lang!r}")
        out.append((number, rule, lang, raw))
    return out


def _build(rows: Iterable[tuple[str, str, str]], counted: Callable[[str], bool]) -> _Index:
    """The index of (rule, language, term) rows; ``counted`` says which rules' terms count
    towards :func:`term_counts`."""
    exact: dict[str, list[_Term]] = {}
    stems: dict[str, list[_Term]] = {}
    phrases: dict[str, list[_Term]] = {}
    cjk: list[_Term] = []
    inner: list[_Term] = []
    counts: dict[str, int] = {}
    seen: set[tuple[str, str, bool, bool]] = set()
    for rule, lang, raw in rows:
        term = _compile(rule, lang, raw)
        if counted(rule):
            counts[lang] = counts.get(lang, 0) + 1
        key = (rule, term.text, term.stem, term.inner)
        if key in seen:  # the same term listed for two languages (Chinese scripts, es/pt)
            continue
        seen.add(key)
        if term.cjk:
            cjk.append(term)
            continue
        if term.inner:
            inner.append(term)
        exact.setdefault(term.joined, []).append(term)
        if term.stem and not term.inner:
            stems.setdefault(term.joined, []).append(term)
        if term.words:
            phrases.setdefault(term.words[0], []).append(term)
    return _Index(
        exact={k: tuple(v) for k, v in exact.items()},
        stems={k: tuple(v) for k, v in stems.items()},
        stem_lengths=tuple(sorted({len(k) for k in stems})),
        phrases={k: tuple(v) for k, v in phrases.items()},
        cjk=tuple(cjk),
        longest=max(len(k) for k in exact),
        counts=counts,
        inner=tuple(inner),
        inner_any=re.compile("|".join(re.escape(t.joined) for t in inner)) if inner else None,
    )


def _parse(text: str) -> _Index:
    """The index of protected_terms.tsv (rule, lang, term)."""
    rows = []
    for number, rule, lang, raw in _rows(text, _DATA_HEADER, _TERMS_FILE):
        if rule not in RULES and not rule.startswith(_ALLOW_PREFIX):
            raise ValueError(f"{_TERMS_FILE}: row {number}: unknown rule {rule!r}")
        rows.append((rule, lang, raw))
    return _build(rows, lambda rule: not rule.startswith(_ALLOW_PREFIX))


def _parse_watched(text: str) -> _Index:
    """The index of watched_subjects.tsv (kind, lang, term)."""
    rows = []
    for number, kind, lang, raw in _rows(text, _WATCHED_HEADER, _WATCHED_FILE):
        if kind not in WATCHED_KINDS:
            raise ValueError(f"{_WATCHED_FILE}: row {number}: unknown kind {kind!r}")
        rows.append((kind, lang, raw))
    return _build(rows, lambda kind: kind != _ALLOW)


def _data(name: str) -> str:
    return (resources.files("alarmdesk") / "data" / name).read_text(encoding="utf-8")


@functools.cache
def _index() -> _Index:
    return _parse(_data(_TERMS_FILE))


@functools.cache
def _watched_index() -> _Index:
    return _parse_watched(_data(_WATCHED_FILE))


def term_counts() -> dict[str, int]:
    """How many protected terms the data file lists per language (allow phrases excluded)."""
    return dict(_index().counts)


def watched_term_counts() -> dict[str, dict[str, int]]:
    """How many terms of each kind watched_subjects.tsv lists per language."""
    out: dict[str, dict[str, int]] = {}
    for _, kind, lang, _ in _rows(_data(_WATCHED_FILE), _WATCHED_HEADER, _WATCHED_FILE):
        out.setdefault(kind, {}).setdefault(lang, 0)
        out[kind][lang] += 1
    return out


# ---------------------------------------------------------------------------- matching

_Hit = tuple[_Term, int, int]  # term, start, end in the reading


def _single(
    index: _Index, tokens: list[_Token], joints: list[tuple[int, ...]] | None = None
) -> Iterable[_Hit]:
    """Tokens that are a term, or begin with a stem. In a chunk joined across punctuation the
    rest of the word after a stem may not cross a joint: "pro_testers" is "protesters", but
    "sit_in_wait" is not a "sit-in" (and "p.r.o.t.e.s.t.e.r.s" is found by :func:`_spaced`)."""
    for number, (token, start, end) in enumerate(tokens):
        for form in _forms(token):
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


def _word_matches(term: _Term, word: str, last: bool) -> bool:
    return word == term.words[-1] or (last and term.stem and word.startswith(term.words[-1]))


def _phrases(index: _Index, tokens: list[_Token]) -> Iterable[_Hit]:
    for i, (token, start, _) in enumerate(tokens):
        for form in _forms(token):
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


def _spaced(index: _Index, tokens: list[_Token], fragment: list[bool]) -> Iterable[_Hit]:
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


def _substrings(index: _Index, reading: str) -> Iterable[_Hit]:
    if _CJK.search(reading) is None:
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
    words: list[_Token]
    chunks: _Chunks
    has_cjk: bool


def _split(readings: Mapping[str, str]) -> list[_Reading]:
    return [
        _Reading(name, text, _words(text), _chunks(text), _CJK.search(text) is not None)
        for name, text in readings.items()
    ]


def _hits(index: _Index, reading: _Reading) -> Iterable[_Hit]:
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


_Found = tuple[_Term, int, int, str, int]  # term, start, end, reading name, reading order


def _is_allow(rule: str) -> bool:
    return rule == _ALLOW or rule.startswith(_ALLOW_PREFIX)


def _scan(index: _Index, readings: list[_Reading]) -> list[_Found]:
    """Every term of an index found in every reading, less those lying wholly inside an
    allow phrase found in the same reading."""
    out: list[_Found] = []
    for order, reading in enumerate(readings):
        name = reading.name
        allowed: list[tuple[int, int]] = []
        found: list[_Hit] = []
        for hit in _hits(index, reading):
            if _is_allow(hit[0].rule):
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
    first = _first(_scan(_index(), readings))
    if first is None:
        return None
    term, start, end, name, _ = first
    return Match(term.rule, term.text, term.lang, name, start, end)


def _watched(readings: list[_Reading]) -> Match | None:
    """The watched-subject rule: a subject (with its watching term, if its kind needs one)
    and no harm named anywhere in the text, in any reading."""
    found: dict[str, list[_Found]] = {}
    for f in _scan(_watched_index(), readings):
        found.setdefault(f[0].rule, []).append(f)
    if _HARM in found:
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
    readings = _split(_readings(normalise(text)))
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
