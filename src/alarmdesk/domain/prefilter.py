"""A prefilter for long ordered lists of rules that name devices or sites.

A centre with 10,000 routing rules or silences writes most of them for one panel
(``panel-03E8``), a family of panels (``panel-03*``) or a site (``riverside school*``). Testing
each rule for each signal is linear; this index finds the few rules that can match a signal's
source id and site with dictionary lookups, and keeps every other rule as always a candidate,
so the caller still evaluates candidates in their original order and the result is the same
as a full scan (a test checks it against one).

A rule is filed under its device patterns when every one is exact or a prefix (``abc*``), else
under its site patterns on the same condition (sites compared case-folded), else it is always a
candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Prefilter"]

T = TypeVar("T")
_WILD = frozenset("*?[")


def _plain(pattern: str) -> str | None:
    """The literal prefix of an exact (``"x"``) or prefix (``"x*"``) pattern, else None."""
    body = pattern[:-1] if pattern.endswith("*") else pattern
    return None if _WILD.intersection(body) else body


@dataclass
class _Keys:
    exact: dict[str, list[int]] = field(default_factory=dict)
    prefixes: dict[int, dict[str, list[int]]] = field(default_factory=dict)  # by length

    def add(self, pattern: str, position: int) -> None:
        literal = _plain(pattern)
        assert literal is not None
        if pattern.endswith("*"):
            self.prefixes.setdefault(len(literal), {}).setdefault(literal, []).append(position)
        else:
            self.exact.setdefault(literal, []).append(position)

    def find(self, value: str, out: set[int]) -> None:
        out.update(self.exact.get(value, ()))
        for length, by_prefix in self.prefixes.items():
            if len(value) >= length:
                out.update(by_prefix.get(value[:length], ()))


class Prefilter(Generic[T]):
    """The rules that can match a signal, in their order.

    ``devices`` and ``sites`` give a rule's patterns (empty: the rule does not look at it).
    """

    def __init__(
        self,
        items: Sequence[T],
        devices: Callable[[T], Sequence[str]],
        sites: Callable[[T], Sequence[str]],
    ) -> None:
        self.items = tuple(items)
        self._devices = _Keys()
        self._sites = _Keys()
        self._always: list[int] = []
        for position, item in enumerate(self.items):
            d, s = devices(item), sites(item)
            if d and all(_plain(p) is not None for p in d):
                for p in d:
                    self._devices.add(p, position)
            elif s and all(_plain(p) is not None for p in s):
                for p in s:
                    self._sites.add(p.casefold(), position)
            else:
                self._always.append(position)

    def __len__(self) -> int:
        return len(self.items)

    def candidates(self, source_id: str, site: str | None) -> list[T]:
        found: set[int] = set(self._always)
        self._devices.find(source_id, found)
        if site:
            self._sites.find(site.casefold(), found)
        return [self.items[i] for i in sorted(found)]
