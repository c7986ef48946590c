"""The layout's rules (issue 8, DESIGN.md): data moves one way, one drive loop feeds every
meter, and the register's quantum lives in one module. Read from the source tree with
the standard library's parser, so a new module is held to the same rules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "minimeter"

# Layers from the bottom up: a module may import its own layer and the ones below it.
LAYERS = {"errors": 0, "meter": 1, "sources": 2, "drive": 3, "formats": 3, "lab": 4, "live": 5, "fleet": 6, "cli": 7}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _layer(path: Path) -> str | None:
    top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    return top if top in LAYERS else None


def _imported_layers(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "minimeter" and len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1])
    return found


def test_every_module_is_in_a_layer():
    loose = [p.relative_to(PACKAGE).as_posix() for p in _modules()
             if _layer(p) is None and p.name not in ("__init__.py", "__main__.py")]
    assert loose == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_module_imports_a_higher_layer(path):
    layer = _layer(path)
    if layer is None:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    higher = sorted(other for other in _imported_layers(tree) if LAYERS[other] > LAYERS[layer])
    assert higher == [], f"{layer} imports {higher}"


def test_sources_do_not_import_the_meter():
    """Sources yield samples or cycles; they never hold or build a Meter."""
    offenders = []
    for path in (PACKAGE / "sources").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if re.search(r"minimeter\.meter\.core|import[^\n]*\bMeter\b", text):
            offenders.append(path.name)
    assert offenders == []


def test_only_the_core_and_the_drive_module_feed_a_meter():
    callers = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("meter/") or rel == "drive.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("feed", "feed_cycles"):
                callers.append(f"{rel}:{node.lineno}")
    assert callers == []


def test_the_register_quantum_lives_in_register_alone():
    shift = re.compile(r"1\s*<<\s*40|2\s*\*\*\s*40")
    offenders = [p.relative_to(PACKAGE).as_posix() for p in _modules()
                 if p.name != "register.py" and shift.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
