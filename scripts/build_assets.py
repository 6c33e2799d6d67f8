"""Build the console's browser assets: npm packages → src/alarmdesk/web/static/vendor/.

    python scripts/build_assets.py          # npm ci (pinned by package-lock.json), then copy
    python scripts/build_assets.py --check  # only verify the committed vendor/ against the lock

The console loads no file from a CDN. Its third-party browser files come from the npm
packages pinned in package.json / package-lock.json (repository root). This script installs
exactly the locked versions with ``npm ci`` into build/npm/ (git-ignored, outside the source
tree), copies the distribution files the console uses, and every package's licence, into
src/alarmdesk/web/static/vendor/, and writes vendor/MANIFEST.json (package, version,
licence, files with their SHA-256). The output is committed, so a fresh machine runs the
console (``make run``, ``make test``) without node or npm; run this script again only to
change a version. ``--check`` verifies that MANIFEST.json names the locked versions and that
every listed file is present with its recorded hash.

Stdlib only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VENDOR = REPO_ROOT / "src" / "alarmdesk" / "web" / "static" / "vendor"
BUILD = REPO_ROOT / "build" / "npm"

# package → [(file in the package, path under vendor/<package>/)]
FILES: dict[str, list[tuple[str, str]]] = {
    "htmx.org": [("dist/htmx.min.js", "htmx.min.js")],
    "htmx-ext-sse": [("dist/sse.min.js", "sse.min.js")],
    "leaflet": [
        ("dist/leaflet.js", "leaflet.js"),
        ("dist/leaflet.css", "leaflet.css"),
        ("dist/images/layers.png", "images/layers.png"),
        ("dist/images/layers-2x.png", "images/layers-2x.png"),
        ("dist/images/marker-icon.png", "images/marker-icon.png"),
        ("dist/images/marker-icon-2x.png", "images/marker-icon-2x.png"),
        ("dist/images/marker-shadow.png", "images/marker-shadow.png"),
    ],
    "leaflet.markercluster": [
        ("dist/leaflet.markercluster.js", "leaflet.markercluster.js"),
        ("dist/MarkerCluster.css", "MarkerCluster.css"),
        ("dist/MarkerCluster.Default.css", "MarkerCluster.Default.css"),
    ],
    # raster PMTiles archives (pmtiles.leafletRasterLayer)
    "pmtiles": [("dist/pmtiles.js", "pmtiles.js")],
    # vector PMTiles archives; this bundle contains the packages listed in BUNDLED
    "protomaps-leaflet": [("dist/protomaps-leaflet.js", "protomaps-leaflet.js")],
    # the supervisors' KPI charts (web/static/js/kpi.js)
    "chart.js": [("dist/chart.umd.min.js", "chart.umd.min.js")],
    "topojson-client": [("dist/topojson-client.min.js", "topojson-client.min.js")],
    # Natural Earth 1:50m country outlines (public domain), as TopoJSON
    "world-atlas": [("countries-50m.json", "countries-50m.json")],
}
# Packages whose code is inside a file above (their licences travel with it).
BUNDLED = {
    "chart.js": ["@kurkle/color"],
    "protomaps-leaflet": [
        "@mapbox/point-geometry",
        "@mapbox/vector-tile",
        "@protomaps/basemaps",
        "color2k",
        "pbf",
        "pmtiles",
        "potpack",
        "quickselect",
        "rbush",
        "resolve-protobuf-schema",
        "protocol-buffers-schema",
    ],
}
LICENSE_NAMES = ("license", "licence", "copying")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def locked_versions() -> dict[str, str]:
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text("utf-8"))
    out = {}
    for key, meta in lock["packages"].items():
        if key.startswith("node_modules/"):
            out[key.removeprefix("node_modules/")] = meta["version"]
    return out


def licence_text(pkg_dir: Path) -> tuple[str, str]:
    """(declared licence, licence text) of an installed package."""
    meta = json.loads((pkg_dir / "package.json").read_text("utf-8"))
    declared = meta.get("license") or "UNKNOWN"
    if isinstance(declared, dict):
        declared = declared.get("type", "UNKNOWN")
    files = sorted(
        p for p in pkg_dir.iterdir() if p.is_file() and p.name.lower().startswith(LICENSE_NAMES)
    )
    if files:
        text = "\n\n".join(p.read_text("utf-8") for p in files)
        if declared == "UNKNOWN":  # no "license" field: name it by the file's first line
            declared = text.strip().splitlines()[0].strip()
        return declared, text
    author = meta.get("author")
    if isinstance(author, dict):
        author = author.get("name")
    return declared, (
        f"{meta['name']} {meta['version']} ships no licence file in its npm package.\n"
        f"Its package.json declares the licence: {declared}"
        + (f"\nAuthor: {author}" if author else "")
        + (f"\nRepository: {json.dumps(meta.get('repository'))}" if meta.get("repository") else "")
        + "\n"
    )


def npm_ci() -> Path:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is not installed (Debian: apt-get install npm)")
    BUILD.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(REPO_ROOT / name, BUILD / name)
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=BUILD, check=True
    )
    return BUILD / "node_modules"


def build() -> None:
    modules = npm_ci()
    versions = locked_versions()
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    manifest: dict[str, dict[str, object]] = {}
    for pkg, files in FILES.items():
        src = modules / pkg
        dest = VENDOR / pkg
        copied = {}
        for inner, target in files:
            out = dest / target
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / inner, out)
            copied[target] = sha256(out)
        declared, text = licence_text(src)
        (dest / "LICENSE").write_text(text, "utf-8")
        bundled = {}
        for dep in BUNDLED.get(pkg, []):
            nested = f"{pkg}/node_modules/{dep}"  # a version of its own, when it needs one
            key = nested if nested in versions else dep
            dep_declared, dep_text = licence_text(modules / key)
            name = "LICENSE." + dep.replace("/", "__").lstrip("@")
            (dest / name).write_text(dep_text, "utf-8")
            bundled[dep] = {"version": versions[key], "license": dep_declared, "file": name}
        manifest[pkg] = {
            "version": versions[pkg],
            "license": declared,
            "files": copied,
            "bundled": bundled,
        }
    (VENDOR / "MANIFEST.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8"
    )
    print(
        f"copied {sum(len(f) for f in FILES.values())} files of {len(FILES)} packages to {VENDOR}"
    )


def check() -> list[str]:
    """Problems with the committed vendor/ (empty: it matches the lock)."""
    problems = []
    manifest_path = VENDOR / "MANIFEST.json"
    if not manifest_path.is_file():
        return [f"{manifest_path} is missing: run scripts/build_assets.py"]
    manifest = json.loads(manifest_path.read_text("utf-8"))
    versions = locked_versions()
    for pkg in FILES:
        entry = manifest.get(pkg)
        if entry is None:
            problems.append(f"{pkg}: not in MANIFEST.json")
            continue
        if entry["version"] != versions.get(pkg):
            problems.append(f"{pkg}: vendor has {entry['version']}, lock has {versions.get(pkg)}")
        if not (VENDOR / pkg / "LICENSE").is_file():
            problems.append(f"{pkg}: LICENSE missing")
        for target, digest in entry["files"].items():
            path = VENDOR / pkg / target
            if not path.is_file():
                problems.append(f"{pkg}: {target} missing")
            elif sha256(path) != digest:
                problems.append(f"{pkg}: {target} differs from the built file")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify vendor/ against the lock")
    args = parser.parse_args()
    if args.check:
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        sys.exit(1 if problems else 0)
    build()


if __name__ == "__main__":
    main()
