"""The README's layer picture, checked: imports point down, never up, and never in a circle.

    app, cli            service/app.py, service/cli.py: build and start everything
    api                 service/api/: views (load -> call -> render), hooks, the error table
    wiring              service/wiring.py: the app's parts, as one typed object
    use cases           sync/ exports/ imports/ signals/ report/ convert.py audit.py (and
                        discovery.py, which describes them): the only
                        places that join the store, the FHIR client and the mappings
    adapters            fhir_client/ store/ schemas/ security/ observability/ config.py ...
    pure core           mappings/

Read from the source with `ast` (no tool to install); a module counts as importing a package
when it imports the package or anything inside it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Top to bottom; a module may import its own layer and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("app", ("service.app", "service.cli", "service.gunicorn_config")),
    ("api", ("service.api",)),
    ("wiring", ("service.wiring",)),
    (
        "use cases",
        (
            "service.sync",
            "service.exports",
            "service.imports",
            "service.signals",
            "service.report",
            "service.convert",
            "service.audit",
            "service.discovery",  # what this service offers (its exports among it)
        ),
    ),
    (
        "adapters",
        (
            "service.fhir_client",
            "service.store",
            "service.schemas",
            "service.security",
            "service.observability",
            "service.config",
            "service.negotiation",
            "service.json_input",
        ),
    ),
    ("pure core", ("mappings",)),
]
USE_CASES = dict(LAYERS)["use cases"]
WEB = ("flask", "werkzeug")


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(package: str) -> list[Path]:
    base = ROOT / package.replace(".", "/")
    return sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]


@cache
def _imports(path: Path) -> frozenset[str]:
    """Every module `path` imports, dotted, relative imports resolved."""
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = (
                ".".join([*base, node.module] if node.module else base)
                if node.level
                else str(node.module)
            )
            found.add(source)
            found |= {f"{source}.{alias.name}" for alias in node.names}  # may be a submodule
    return frozenset(found)


def _within(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _wrong_imports(package: str, forbidden: set[str]) -> list[tuple[str, str]]:
    return sorted(
        (str(path.relative_to(ROOT)), name)
        for path in _sources(package)
        for name in _imports(path)
        if _within(name, forbidden)
    )


def _layer_of(name: str) -> int | None:
    for rank, (_, packages) in enumerate(LAYERS):
        if _within(name, packages):
            return rank
    return None


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        # The pure core: no I/O, no web, no database, nothing of the service.
        ("mappings", {"flask", "requests", "sqlalchemy", "marshmallow", "service", "werkzeug"}),
        # Adapters know neither the web nor the use cases above them.
        (
            "service.fhir_client",
            {"flask", "mappings", "sqlalchemy", "marshmallow", "werkzeug", *USE_CASES},
        ),
        ("service.store", {"flask", "mappings", "requests", "marshmallow", *USE_CASES}),
        ("service.security", {"flask", "mappings", "sqlalchemy", "marshmallow"}),
        # Views reach the store and the FHIR client only through the use cases.
        ("service.api", {"service.fhir_client", "service.store"}),
        # The worker process runs sync without the web framework.
        ("service.sync", {*WEB}),
        ("service.observability.metrics", {*WEB}),
        # Sync reads stored records with the plain codec; marshmallow stays at the edge.
        pytest.param(
            "service.sync", {"service.schemas", "marshmallow"}, id="service.sync-no-schemas"
        ),
    ],
)
def test_layers_point_one_way(package: str, forbidden: set[str]) -> None:
    wrong = _wrong_imports(package, forbidden)
    assert not wrong, f"{package} must not import {wrong}"


def _file_of(name: str) -> Path | None:
    base = ROOT / name.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _reached(package: str) -> set[str]:
    """Every module importing `package` runs, ours followed through (packages' __init__ too)."""
    seen: set[str] = set()
    todo = [_module_of(path) for path in _sources(package)]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for size in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            module = ".".join(parts[:size])
            if module in seen:
                continue
            seen.add(module)
            path = _file_of(module)
            if path is not None:
                todo.extend(_imports(path))
    return seen


@pytest.mark.parametrize("package", ["service.sync"])
def test_the_worker_does_not_even_indirectly_import_the_web_framework(package: str) -> None:
    # sync/deliver.py once counted pushes through a metrics module that imported Flask.
    reached = sorted(name for name in _reached(package) if _within(name, WEB))
    assert not reached, f"{package} reaches {reached}"


def _service_sources() -> Iterator[Path]:
    yield from sorted((ROOT / "service").rglob("*.py"))
    yield from sorted((ROOT / "mappings").rglob("*.py"))


def test_nothing_imports_a_layer_above_it() -> None:
    upward = []
    for path in _service_sources():
        own = _layer_of(_module_of(path))
        if own is None:
            continue
        for name in _imports(path):
            other = _layer_of(name)
            if other is not None and other < own:
                upward.append((str(path.relative_to(ROOT)), name, LAYERS[other][0]))
    assert not upward, f"imports pointing up the layers: {sorted(upward)}"


def test_every_service_module_has_a_layer() -> None:
    # A new top-level module or package must be placed in the picture (and the README's).
    unplaced = {
        _module_of(path)
        for path in _service_sources()
        if path.name != "__init__.py" or path.parent.name != "service"
    }
    unplaced = {m for m in unplaced if _layer_of(m) is None}
    assert not unplaced


def _unit(name: str) -> str | None:
    """The subpackage (or top-level module) of service a module belongs to."""
    parts = name.split(".")
    if parts[0] == "mappings":
        return "mappings"
    if parts[0] != "service" or len(parts) < 2:
        return None
    return ".".join(parts[:2])


def _unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _service_sources():
        own = _unit(_module_of(path))
        if own is None:
            continue
        targets = {_unit(name) for name in _imports(path)} - {None, own}
        graph.setdefault(own, set()).update(t for t in targets if t is not None)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> list[str] | None:
        if node in trail:
            return [*trail[trail.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            found = visit(target, [*trail, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_no_import_cycles_between_service_subpackages() -> None:
    cycle = _cycle(_unit_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def _blueprint_modules() -> set[str]:
    found = set()
    for path in _sources("service.api"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = (n for n in ast.walk(tree) if isinstance(n, ast.Call))
        if any(isinstance(c.func, ast.Name) and c.func.id == "Blueprint" for c in calls):
            found.add(_module_of(path))
    return found


def test_blueprints_do_not_import_each_other() -> None:
    # Shared helpers live in modules that are no blueprint (context, bodies, export_jobs, ...).
    blueprints = _blueprint_modules()
    assert {"service.api.sync", "service.api.patients"} <= blueprints
    crossing = sorted(
        (module, name)
        for module in blueprints
        for name in _imports(ROOT / (module.replace(".", "/") + ".py"))
        if name in blueprints - {module}
    )
    assert not crossing


def test_only_the_wiring_reads_app_extensions() -> None:
    # One typed object (service/wiring.py) instead of string-keyed lookups across the app.
    readers = set()
    for path in sorted((ROOT / "service").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "extensions":
                readers.add(str(path.relative_to(ROOT)))
    assert readers == {"service/wiring.py"}
