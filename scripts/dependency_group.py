"""Prints the requirements of a PEP 735 dependency group of pyproject.toml, one per word.

pip < 25.1 cannot read ``[dependency-groups]`` itself; this keeps pyproject.toml the one
place where they are written.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def resolve(groups: dict[str, list[object]], name: str) -> list[str]:
    out: list[str] = []
    for item in groups[name]:
        if isinstance(item, dict):
            out += resolve(groups, item["include-group"])
        else:
            out.append(str(item))
    return out


if __name__ == "__main__":
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    # Unquoted on purpose: `$(...)` output is split into words but never parsed for `>`.
    print(" ".join(resolve(pyproject["dependency-groups"], sys.argv[1])))
