"""No data model holds special-category data (GDPR Art. 9, LED Art. 10): the check.

Names (tables, columns, properties, enum values, parameters) are split into words
("faceEmbedding", "face_embedding" → "face embedding") and screened two ways: as text, by
the same policy as every purpose (``domain/purpose/``: multilingual, normalised against
obfuscation), and word by word against the vocabulary below (:func:`is_special`): short
identifiers such as ``race`` or ``religion`` that are too ambiguous to refuse in free text
but have no business being the name of a field. Health is not on the list: a medical
incident needs it.

The check runs over the SQLAlchemy metadata and the generated OpenAPI document in the test
suite, and :func:`check_field_name` is the one function any future custom-field feature must
call before a field exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from alarmdesk.domain.errors import SpecialCategoryError
from alarmdesk.domain.purpose import find_protected, is_special_name, name_words, normalise

# Rules of domain/purpose/ that name special-category data (not every protected purpose:
# "petition" is a purpose, not a kind of personal data).
SPECIAL_RULES = frozenset(
    {
        "identity.ethnicity",
        "belief.religion",
        "opinion.political",
        "union.activity",
        "special.biometric",
        "special.sexual",
        "special.risk_score",
        "special.genetic",
        "special.health",
    }
)

# The vocabulary of names (one word each, and phrases of consecutive words) is the purpose
# policy's (``domain/purpose/``): the set-up's camera labels are held to it too.
words = name_words
is_special = is_special_name  # the schema check here and intake minimisation both ask it


def check_field_name(name: str, where: str = "field") -> None:
    """Raises SpecialCategoryError when a name (of a field, column, property…) is one."""
    # Normalised first (NFKC, case, accents, zero-width characters), keeping camelCase humps.
    plain = normalise(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name))
    if is_special(plain):
        raise SpecialCategoryError(where, name, "a special-category word")
    check_text(" ".join(words(plain)) or plain, where, name)


def check_text(text: str, where: str, name: str | None = None) -> None:
    match = find_protected(text)
    if match is not None and match.rule in SPECIAL_RULES:
        raise SpecialCategoryError(where, name or text, f"rule {match.rule}, '{match.term}'")


def _problems(items: Iterable[tuple[str, str, bool]]) -> list[str]:
    out = []
    for where, value, is_name in items:
        try:
            (check_field_name if is_name else check_text)(value, where)
        except SpecialCategoryError as exc:
            out.append(str(exc))
    return out


def scan_metadata(metadata: Any) -> list[str]:
    """Every table, column and comment of a SQLAlchemy MetaData."""

    def items() -> Iterator[tuple[str, str, bool]]:
        for table in metadata.sorted_tables:
            yield "table", table.name, True
            for col in table.columns:
                yield "column", f"{table.name}.{col.name}", True
                if col.comment:
                    yield "comment", col.comment, False

    return _problems(items())


def scan_openapi(doc: Mapping[str, Any]) -> list[str]:
    """Every path, parameter, schema, property, enum value and description of an OpenAPI
    document."""

    def walk(node: Any, path: str) -> Iterator[tuple[str, str, bool]]:
        if isinstance(node, Mapping):
            for key, value in node.items():
                here = f"{path}/{key}"
                if path.endswith("/properties") or path.endswith("/schemas"):
                    yield "property", str(key), True
                if key == "name" and isinstance(value, str):
                    yield "parameter", value, True
                elif key in ("description", "summary", "title") and isinstance(value, str):
                    yield "description", value, False
                elif key == "enum" and isinstance(value, list):
                    for v in value:
                        if isinstance(v, str):
                            yield "enum value", v, True
                yield from walk(value, here)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}/{i}")

    items = list(walk(doc, ""))
    items += [("path", p, True) for p in doc.get("paths", {})]
    return _problems(items)
