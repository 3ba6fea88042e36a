"""The project's own rules, checked by the one test command: tooling, layering, README vs CI."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```sh\n(.+?)\n```", readme)
    test_command = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def test_ruff_lint_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_the_pure_core_and_the_fhir_client() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def _imports(package: Path) -> set[tuple[str, str]]:
    found = set()
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(ROOT)), a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(ROOT)), node.module.split(".")[0]))
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("mappings", {"flask", "requests", "sqlalchemy", "marshmallow", "service", "werkzeug"}),
        ("service/fhir_client", {"flask", "mappings", "sqlalchemy", "marshmallow", "werkzeug"}),
        ("service/store", {"flask", "mappings", "requests", "marshmallow"}),
        ("service/security", {"flask", "mappings", "sqlalchemy", "marshmallow"}),
    ],
)
def test_layers_point_one_way(package: str, forbidden: set[str]) -> None:
    wrong = {(path, name) for path, name in _imports(ROOT / package) if name in forbidden}
    assert not wrong, f"{package} must not import {sorted(wrong)}"
