"""Where the console's templates and static files are, and their versioned URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent.parent
TEMPLATES: Final = HERE / "templates"
STATIC: Final = HERE / "static"


def _asset_version() -> str:
    h = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file() and "vendor" not in path.parts:
            h.update(path.relative_to(STATIC).as_posix().encode())
            h.update(path.read_bytes())
    manifest = STATIC / "vendor" / "MANIFEST.json"
    if manifest.is_file():
        h.update(manifest.read_bytes())
    return h.hexdigest()[:12]


ASSET_VERSION: Final = _asset_version()


def static_url(path: str) -> str:
    return f"/static/{path}?v={ASSET_VERSION}"
