# TEMPORARY placeholder until the purpose-screening module lands (same interface).
from __future__ import annotations

from collections.abc import Iterable, Mapping


class ProtectedPurposeError(ValueError):
    code = "protected_purpose"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def screen(fields: Mapping[str, str | Iterable[str]]) -> None:
    for name, value in fields.items():
        text = value if isinstance(value, str) else " ".join(value)
        for term in ("protest", "immigration", "civil disobedience", "curfew"):
            if term in text.casefold():
                raise ProtectedPurposeError(f"{name} targets {term}", name)
