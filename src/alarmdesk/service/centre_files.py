"""Reading and writing a centre's set-up files (YAML), with the line of every item.

A set-up is one YAML file or a folder of them (``*.yaml``/``*.yml``, read in name order); each
file is a mapping of kinds (``desks``, ``stations``, ``units``, ``panels``, ``cameras``,
``sensors``) to lists of items, so a centre may keep one file per kind, per site or per
building. Every error names the file and line it comes from. Duplicate keys in a mapping are
refused (plain YAML keeps the last one silently), and numeric mapping keys such as panel zone
numbers are read as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml

from alarmdesk.domain.centre import KINDS, Centre, CentreFile
from alarmdesk.domain.centre_plan import redact, specs_of
from alarmdesk.domain.errors import SetupError
from alarmdesk.domain.signal import duplicate_key
from alarmdesk.files import check_output_folder, output_target, write_file

__all__ = ["Located", "dump", "load", "loads", "refuse_duplicate_keys", "schema", "write"]

SUFFIXES = (".yaml", ".yml")


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it


class _Loader(_Base):  # type: ignore[misc]
    """Safe YAML (libyaml's parser when present), refusing duplicate keys and reading scalar
    keys as text."""


def _twice(mapping: Mapping[Any, Any], key: Any) -> str | None:
    """Why ``key`` may not join ``mapping``: it is there already (plain YAML and JSON keep the
    last of two silently). The one rule of a set-up's files and of an item sent alone."""
    return f"duplicate key {key!r}" if key in mapping else None


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, int | float) and not isinstance(key, bool):
            key = key_node.value  # "015" stays "015", not 15
        if problem := _twice(out, key):
            raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


def refuse_duplicate_keys(body: bytes, label: str) -> None:
    """Refuses a JSON text (an item sent alone, ``PUT /api/v1/setup/{kind}/{id}``) with a key
    given twice in an object, as a set-up file is. A text that is not JSON passes: the
    decoder says what is wrong with it.

    Raises:
        SetupError: ``invalid_value``, naming the key, at ``label``.
    """
    key = duplicate_key(body)
    if key is not None:
        raise SetupError(f"duplicate key {key!r}", code="invalid_value", where=label)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


class _Dumper(yaml.SafeDumper):
    """Block style for items, flow style for lists of plain values (coordinates, labels)."""


def _list(dumper: _Dumper, data: list[Any]) -> yaml.Node:
    flat = not any(isinstance(x, dict) for x in _walk(data))
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


def _walk(data: list[Any]) -> Iterator[Any]:
    for x in data:
        if isinstance(x, list):
            yield from _walk(x)
        else:
            yield x


_Dumper.add_representer(list, _list)


@dataclass
class _Item:
    file: str
    line: int
    fields: dict[str, int] = field(default_factory=dict)


@dataclass
class Located:
    """A set-up read from files, and where each of its items came from."""

    centre: Centre
    files: list[str]
    _items: dict[str, list[_Item]] = field(default_factory=dict)

    def where(self, kind: str, index: int, fname: str | None = None) -> str:
        """``file:line`` of item ``index`` of ``kind`` (of its field ``fname`` if known)."""
        items = self._items.get(kind, [])
        if not 0 <= index < len(items):
            return ""
        item = items[index]
        return f"{item.file}:{item.fields.get(fname or '', item.line)}"

    def where_id(self, kind: str, item_id: str) -> str:
        for index, item in enumerate(self.centre.items(kind)):
            if (item.device_id if kind == "panels" else item.id) == item_id:
                return self.where(kind, index)
        return ""


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        if not found:
            raise SetupError(f"{path}: no *.yaml or *.yml file", code="invalid_value")
        return found
    if not path.exists():
        raise SetupError(f"{path}: no such file or folder", code="not_found")
    return [path]


_PATH = re.compile(r"\$\.(\w+)\[(\d+)\](?:\.(\w+))?")


def _read(path: Path, label: str) -> tuple[CentreFile, dict[str, list[_Item]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SetupError(f"{label}: not UTF-8 ({exc.reason})", code="invalid_value") from None
    return _parse(text, label)


def loads(text: str, label: str = "request") -> Located:
    """A set-up given as one YAML (or JSON) text, e.g. an HTTP request's body."""
    one, items = _parse(text, label)
    return Located(Centre.of([one]), [label], items)


def _parse(text: str, label: str) -> tuple[CentreFile, dict[str, list[_Item]]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()  # one parse: the nodes give the lines...
        data = loader.construct_document(node) if node is not None else None  # ...and the data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        problem = getattr(exc, "problem", None) or str(exc)
        raise SetupError(f"not valid YAML: {problem}", code="invalid_value", where=where) from None
    finally:
        loader.dispose()
    items: dict[str, list[_Item]] = {k: [] for k in KINDS}
    if data is None:
        return CentreFile(), items
    if not isinstance(node, yaml.MappingNode):
        raise SetupError(
            f"a set-up file is a mapping of {', '.join(KINDS)}", code="invalid_value", where=label
        )
    for key_node, value_node in node.value:
        kind = key_node.value
        if kind in items and isinstance(value_node, yaml.SequenceNode):
            for item_node in value_node.value:
                item = _Item(label, item_node.start_mark.line + 1)
                if isinstance(item_node, yaml.MappingNode):
                    for k, _ in item_node.value:
                        item.fields[str(k.value)] = k.start_mark.line + 1
                items[kind].append(item)
    try:
        return msgspec.convert(data, CentreFile), items
    except msgspec.ValidationError as exc:
        message = str(exc)
        if "got `int`" in message or "got `float`" in message:
            message += (
                " (quote it: YAML reads a text of digits, like an account or key, as a number)"
            )
        m = _PATH.search(message)
        where, fname = label, None
        if m:
            kind, index, fname = m.group(1), int(m.group(2)), m.group(3)
            if kind in items and index < len(items[kind]):
                it = items[kind][index]
                where = f"{label}:{it.fields.get(fname or '', it.line)}"
        raise SetupError(message, code="invalid_value", where=where, field=fname) from None


def load(path: Path | str) -> Located:
    """Reads a set-up file or folder.

    Raises:
        SetupError: a file that is not valid YAML or does not match the schema, with
            ``file:line``. (The rules across items are :func:`alarmdesk.domain.centre.check`.)
    """
    root = Path(path)
    files: list[str] = []
    read_items: dict[str, list[_Item]] = {k: [] for k in KINDS}
    parsed: list[CentreFile] = []
    for p in _files(root):
        label = str(p)
        one, items = _read(p, label)
        parsed.append(one)
        files.append(label)
        for kind in KINDS:
            read_items[kind] += items[kind]
    return Located(Centre.of(parsed), files, read_items)


def dump(records: dict[str, dict[str, dict[str, Any]]], *, include_secrets: bool) -> dict[str, str]:
    """The stored set-up as YAML texts, one per kind (``desks.yaml``…), kinds with items only."""
    if not include_secrets:
        records = {k: {i: redact(r) for i, r in v.items()} for k, v in records.items()}
    whole = msgspec.to_builtins(specs_of(records))
    texts: dict[str, str] = {}
    for kind in KINDS:
        if whole.get(kind):
            texts[f"{kind}.yaml"] = yaml.dump(
                {kind: whole[kind]}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
            )
    return texts


def write(folder: Path, texts: dict[str, str]) -> list[Path]:
    """Writes the exported files into ``folder`` (created if needed), each as every output
    file is written (:func:`alarmdesk.files.write_file`); none is written if one of them
    cannot be (:class:`~alarmdesk.files.OutputPathError`)."""
    check_output_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    targets = [folder / name for name in texts]
    for target in targets:
        output_target(target)
    for target, text in zip(targets, texts.values(), strict=True):
        write_file(target, text)
    return targets


def schema() -> dict[str, Any]:
    """The JSON Schema of a set-up file, for editors (``alarmdesk config schema``)."""
    body = msgspec.json.schema(CentreFile)
    body["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    body["title"] = "alarmdesk centre set-up"
    return body
