"""The intake package's import graph: the shared types at the bottom, no hidden cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import alarmdesk.intake

INTAKE = Path(alarmdesk.intake.__file__).parent
# intake/dc09/ is the receiver's own package; these are the modules around it.
MODULES = sorted(p for p in INTAKE.glob("*.py"))


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_intake_module_hides_an_import_inside_a_function() -> None:
    hidden = []
    for path in MODULES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        hidden.append(f"{path.name}:{inner.lineno} in {node.name}")
    assert hidden == []


def test_the_mqtt_adapter_takes_its_settings_from_the_types_module_not_the_service() -> None:
    imports = imported_modules(ast.parse((INTAKE / "mqtt.py").read_text()))
    assert "alarmdesk.intake.service" not in imports
    assert "alarmdesk.intake.types" in imports


def test_the_types_module_imports_no_other_intake_module() -> None:
    imports = imported_modules(ast.parse((INTAKE / "types.py").read_text()))
    assert [m for m in imports if m.startswith("alarmdesk.intake")] == []
