"""The console's own JavaScript never turns data into markup: no HTML sinks except with a
constant string, tooltips and icons get DOM nodes. A lint over web/static/js (vendor code is
pinned by package-lock.json and not ours to edit)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import alarmdesk.web

JS = sorted((Path(alarmdesk.web.__file__).parent / "static" / "js").glob("*.js"))
# A sink and what it is given: every match must be given a constant (a quoted string without
# interpolation) — or, for Leaflet's content setters, a DOM node built by h() / textNode().
HTML_SINKS = re.compile(
    r"\.(?:innerHTML|outerHTML)\s*\+?=\s*(?P<value>[^;\n]*)"
    r"|\.insertAdjacentHTML\s*\((?P<adjacent>[^)\n]*)"
    r"|document\.write(?:ln)?\s*\((?P<write>[^)\n]*)"
    r"|\.html\s*\((?P<jq>[^)\n]*)"
    r"|\bsrcdoc\b\s*=\s*(?P<srcdoc>[^;\n]*)"
    r"|createContextualFragment\s*\((?P<fragment>[^)\n]*)"
    r"|DOMParser\b(?P<parser>)"
)
NODE_SINKS = re.compile(
    r"\.(?:bindTooltip|bindPopup|setTooltipContent|setPopupContent|setContent)\s*\(\s*(?P<arg>[^\n]*)"
    r"|\bhtml\s*:\s*(?P<html>[^\n]*)"
)
CODE_SINKS = re.compile(
    r"\beval\s*\(|\bnew\s+Function\s*\(|\bset(?:Timeout|Interval)\s*\(\s*[\"'`]"
    r"|\.setAttribute\s*\(\s*[\"']on|\.on[a-z]+\s*=\s*[\"'`]"
)
CONSTANT = re.compile(r"""^\s*(?:"[^"\\]*"|'[^'\\]*'|`[^`$\\]*`)\s*\)?\s*,?\s*$""")


def sinks(text: str) -> list[str]:
    """Every place in ``text`` where data could become markup or code."""
    bad = []
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("//", 1)[0] if not line.lstrip().startswith("*") else ""
        for m in HTML_SINKS.finditer(code):
            value = next((v for v in m.groupdict().values() if v is not None), "")
            if m.group("parser") is not None or not CONSTANT.match(value):
                bad.append(f"{n}: {line.strip()}")
        for m in NODE_SINKS.finditer(code):
            value = m.group("arg") if m.group("arg") is not None else m.group("html")
            if not re.match(r"\s*(?:textNode|h)\s*\(", value):
                bad.append(f"{n}: {line.strip()}")
        if CODE_SINKS.search(code):
            bad.append(f"{n}: {line.strip()}")
    return bad


def test_there_is_javascript_to_check() -> None:
    assert {p.name for p in JS} >= {"lib.js", "queue.js", "map.js", "incident.js"}


@pytest.mark.parametrize("path", JS, ids=lambda p: p.name)
def test_the_console_scripts_never_write_data_as_html(path: Path) -> None:
    assert sinks(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "line",
    [
        "el.innerHTML = `<b>${name}</b>`;",
        "el.innerHTML = name;",
        "el.outerHTML += '<i>' + x;",
        'el.insertAdjacentHTML("beforeend", row);',
        "document.write(x);",
        "$(el).html(name);",
        "marker.bindTooltip(label(inc));",
        "marker.bindPopup(`#${inc.id}`);",
        "L.divIcon({ html: `<span>${n}</span>` });",
        "eval(code);",
        "setTimeout('go()', 10);",
        "new DOMParser().parseFromString(s, 'text/html');",
        "el.setAttribute('onclick', x);",
    ],
)
def test_the_lint_finds_each_sink(line: str) -> None:
    assert sinks(line), line


@pytest.mark.parametrize(
    "line",
    [
        'el.innerHTML = "";',
        "marker.bindTooltip(textNode(label(inc)));",
        "L.divIcon({ html: h('span', {}, String(n)) });",
        "el.textContent = name;",
        "// el.innerHTML = x; in a comment",
    ],
)
def test_the_lint_allows_constants_and_nodes(line: str) -> None:
    assert sinks(line) == []


def test_the_console_has_no_sql_and_no_store() -> None:
    """Web pages read through the service layer (service/console_queries.py)."""
    package = Path(alarmdesk.web.__file__).parent / "console"
    for path in package.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import) (alarmdesk\.store|sqlalchemy)\b", text, re.M), path


def test_every_template_escapes_what_it_is_given() -> None:
    from alarmdesk.web.console.render import environment

    payload = '"><img src=x onerror=alert(1)>{{7*7}}'
    for name in environment.list_templates(extensions=["html"]):
        assert callable(environment.autoescape) and environment.autoescape(name), name
    out = environment.from_string("<p title='{{ x }}'>{{ x }}</p>").render(x=payload)
    assert "<img" not in out and "&lt;img" in out and "{{7*7}}" in out and "49" not in out


def test_htmx_evaluates_nothing_and_injects_no_styles() -> None:
    base = (Path(alarmdesk.web.__file__).parent / "templates" / "base.html").read_text()
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', base)
    assert config
    settings = json.loads(config.group(1))
    assert settings["allowEval"] is False and settings["includeIndicatorStyles"] is False
