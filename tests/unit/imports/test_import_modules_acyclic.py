"""The import package's modules import each other one way only (no cycle, lazy imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "service" / "imports"


def _imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("service.imports.")}


def test_no_module_of_service_imports_reaches_itself() -> None:
    graph = {
        f"service.imports.{path.stem}": _imports_of(path)
        for path in PACKAGE.glob("*.py")
        if path.stem != "__init__"
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, set()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cyclic = sorted(module for module in graph if reaches(module, module, set()))
    assert not cyclic, f"import cycle through {cyclic}"
    assert "service.imports.sources" not in graph["service.imports.csv_rows"]
