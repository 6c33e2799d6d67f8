"""The protected-term tables of purpose screening: the terms, how they are loaded and
indexed, and how a text is normalised and read so that terms and texts compare alike.

Terms live in ``alarmdesk/data/protected_terms.tsv`` (rule, language, term; English, Spanish,
French, German, Russian, Arabic, Portuguese, Chinese simplified and traditional). Screened
text is normalised first (:func:`normalise`: NFKC, casefold, accents and zero-width or other
format characters removed) and then read in several 1:1 variants (:func:`variants`): as
written, with Cyrillic/Greek/small-capital look-alikes read as Latin letters, with Latin
look-alikes inside Cyrillic words read as Cyrillic, and with leetspeak digits and symbols read
as letters. How the readings are matched against the index built here is
:mod:`alarmdesk.domain.purpose.screening`.

Purposes, not keywords: terms are chosen so that conduct and harm stay admissible ("riot",
"assault", "lightning strike", "stroke", "Union Street fire", "fire at St Mary's church",
"March storm damage", "black smoke", "graffiti"); see the comments in the data file.

The terms of the watched-subject rule (:data:`WATCHED_SUBJECTS`) are in
``alarmdesk/data/watched_subjects.tsv`` (kind, language, term), indexed the same way.

Pure: standard library only, no I/O but reading the two data files once, lazily.
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

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
    "special.genetic": "people's genetic data",
    "special.health": "people's health data beyond an incident's medical need",
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
HARM = "harm"  # any harm term clears the watched-subject rule
_ALLOW = "allow"  # a phrase inside which a subject or watching term is ordinary vocabulary
#: Every kind of term in watched_subjects.tsv.
WATCHED_KINDS: frozenset[str] = frozenset(
    {*WATCHED_SUBJECTS, *(w for _, w in WATCHED_SUBJECTS.values() if w), HARM, _ALLOW}
)

_ALLOW_PREFIX = "allow."
_DATA_HEADER = ["rule", "lang", "term"]
_WATCHED_HEADER = ["kind", "lang", "term"]
_TERMS_FILE = "protected_terms.tsv"
_WATCHED_FILE = "watched_subjects.tsv"
_LANGS = frozenset({"en", "es", "fr", "de", "ru", "ar", "pt", "zh-Hans", "zh-Hant"})


def is_allow(rule: str) -> bool:
    """Whether a rule or kind names allow phrases (ordinary vocabulary), not terms."""
    return rule == _ALLOW or rule.startswith(_ALLOW_PREFIX)


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


def readings_of(text: str) -> dict[str, str]:
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
    out = readings_of(normalise(text))
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
CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
                  "\U00020000-\U0003ffff]")  # fmt: skip
_ARABIC = re.compile("[\u0600-\u06ff]")


def _is_arabic(s: str) -> bool:
    return _ARABIC.search(s) is not None


# Arabic proclitics written as part of the word: conjunctions, prepositions, the article.
_AR_CLITICS = ("وال", "بال", "فال", "كال", "لل", "ال", "و", "ب", "ل", "ف", "ك")

Token = tuple[str, int, int]  # text, start, end (end exclusive) in the reading


def words_of(s: str) -> list[Token]:
    """Runs of letters and digits; anything else separates."""
    out: list[Token] = []
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
class Chunks:
    """Whitespace-separated chunks of a reading, punctuation inside each removed."""

    tokens: list[Token]
    fragment: list[bool]  # a single character, or letters split by punctuation ("p.r.o")
    joints: list[tuple[int, ...]]  # where, in the joined chunk, a word after punctuation begins


def chunks_of(s: str) -> Chunks:
    out = Chunks([], [], [])
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


def forms_of(token: str) -> tuple[str, ...]:
    """A token, and for Arabic also the token without each proclitic it starts with."""
    if not _is_arabic(token):
        return (token,)
    stripped = [
        token[len(c) :] for c in _AR_CLITICS if token.startswith(c) and len(token) > len(c) + 1
    ]
    return (token, *stripped)


@dataclass(frozen=True, slots=True)
class Term:
    rule: str
    lang: str
    text: str  # normalised, as reported
    words: tuple[str, ...]  # two or more words matched in sequence; () for one word
    joined: str  # letters and digits only
    stem: bool  # the last word may begin a longer word
    cjk: bool
    inner: bool = False  # a one-word term that may end ("*brand") or, with stem, sit inside a word


@dataclass(frozen=True, slots=True)
class TermIndex:
    exact: Mapping[str, tuple[Term, ...]]
    stems: Mapping[str, tuple[Term, ...]]
    stem_lengths: tuple[int, ...]
    phrases: Mapping[str, tuple[Term, ...]]
    cjk: tuple[Term, ...]
    longest: int
    counts: Mapping[str, int]
    inner: tuple[Term, ...] = ()
    inner_any: re.Pattern[str] | None = None  # finds any inner term, to skip most tokens fast


def _compile(rule: str, lang: str, raw: str) -> Term:
    spec = raw.strip()
    exact = spec.startswith("=")
    inner = spec.startswith("*")
    star = spec.endswith("*")
    spec = spec.removeprefix("=").removeprefix("*").removesuffix("*")
    text = normalise(spec)
    words = tuple(w for w, _, _ in words_of(text))
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
    return Term(rule, lang, text, phrase, joined, stem, cjk, inner)


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


def _build(rows: Iterable[tuple[str, str, str]], counted: Callable[[str], bool]) -> TermIndex:
    """The index of (rule, language, term) rows; ``counted`` says which rules' terms count
    towards :func:`term_counts`."""
    exact: dict[str, list[Term]] = {}
    stems: dict[str, list[Term]] = {}
    phrases: dict[str, list[Term]] = {}
    cjk: list[Term] = []
    inner: list[Term] = []
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
    return TermIndex(
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


def _parse(text: str) -> TermIndex:
    """The index of protected_terms.tsv (rule, lang, term)."""
    rows = []
    for number, rule, lang, raw in _rows(text, _DATA_HEADER, _TERMS_FILE):
        if rule not in RULES and not rule.startswith(_ALLOW_PREFIX):
            raise ValueError(f"{_TERMS_FILE}: row {number}: unknown rule {rule!r}")
        rows.append((rule, lang, raw))
    return _build(rows, lambda rule: not rule.startswith(_ALLOW_PREFIX))


def _parse_watched(text: str) -> TermIndex:
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
def protected_index() -> TermIndex:
    return _parse(_data(_TERMS_FILE))


@functools.cache
def watched_index() -> TermIndex:
    return _parse_watched(_data(_WATCHED_FILE))


def term_counts() -> dict[str, int]:
    """How many protected terms the data file lists per language (allow phrases excluded)."""
    return dict(protected_index().counts)


def watched_term_counts() -> dict[str, dict[str, int]]:
    """How many terms of each kind watched_subjects.tsv lists per language."""
    out: dict[str, dict[str, int]] = {}
    for _, kind, lang, _ in _rows(_data(_WATCHED_FILE), _WATCHED_HEADER, _WATCHED_FILE):
        out.setdefault(kind, {}).setdefault(lang, 0)
        out[kind][lang] += 1
    return out
