"""The incident-type taxonomy: code → name, harm category, priority, procedure.

The default taxonomy is APCO ANS 2.103.1's common incident types, less those defined by
lawful activity or status rather than by harm, plus a few local equipment types
(``data/taxonomy.tsv``, with the exclusions and their reasons in
``data/taxonomy_excluded.tsv``). Whether a type may exist at all is decided in one place,
:func:`check_admissible`, which every path that defines a type calls.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources

import msgspec

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.purpose import screen

UNCLASSIFIED = "UNCLASS"


class IncidentType(msgspec.Struct, frozen=True):
    code: str
    name: str
    category: HarmCategory
    priority: int  # 1 (immediate threat to life) … 5 (administrative)
    definition: str = ""
    sop: tuple[str, ...] = ()  # standard operating procedure, one step per item
    origin: str = "apco"  # apco | local | custom
    purpose: str = ""  # custom types: what harm it responds to, in words
    legal_basis: str = ""  # custom types: the law or mandate that allows it


def check_admissible(t: IncidentType) -> IncidentType:
    """Raises unless the type may exist; returns it unchanged.

    Raises:
        ProtectedPurposeError: its name, definition or procedure targets people exercising
            rights (code ``protected_purpose``).
        ValueError: priority outside 1–5.
    """
    if not 1 <= t.priority <= 5:
        raise ValueError(f"{t.code}: priority must be 1–5, not {t.priority}")
    screen(
        {
            "code": t.code,
            "name": t.name,
            "definition": t.definition,
            "purpose": t.purpose,
            "legal_basis": t.legal_basis,
            "sop": t.sop,
        },
        category=t.category,
    )
    return t


class Taxonomy:
    """An immutable lookup of incident types; unknown codes resolve to UNCLASSIFIED."""

    def __init__(self, types: Iterable[IncidentType]) -> None:
        self._types: dict[str, IncidentType] = {}
        for t in types:
            self._types[t.code.upper()] = check_admissible(t)
        if UNCLASSIFIED not in self._types:
            raise ValueError(f"a taxonomy must define {UNCLASSIFIED}, the type of unknown codes")

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.upper() in self._types

    def __iter__(self) -> Iterator[IncidentType]:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def get(self, code: str) -> IncidentType | None:
        return self._types.get(code.upper())

    def resolve(self, code: str) -> IncidentType:
        """The type of a code; UNCLASSIFIED when the code is unknown (never an error)."""
        return self._types.get(code.upper()) or self._types[UNCLASSIFIED]


def parse_tsv(text: str) -> list[IncidentType]:
    rows: Iterator[Mapping[str, str]] = csv.DictReader(io.StringIO(text), delimiter="\t")
    return [
        IncidentType(
            code=row["code"].strip().upper(),
            name=row["name"].strip(),
            category=HarmCategory(row["category"].strip()),
            priority=int(row["priority"]),
            definition=(row.get("definition") or "").strip(),
            sop=tuple(s.strip() for s in (row.get("sop") or "").split("|") if s.strip()),
            origin="local" if row["code"].strip().upper().startswith(("EQ", "UNCLASS")) else "apco",
        )
        for row in rows
    ]


def default_types() -> list[IncidentType]:
    """The default taxonomy shipped with the package."""
    text = (resources.files("alarmdesk") / "data" / "taxonomy.tsv").read_text("utf-8")
    return parse_tsv(text)
