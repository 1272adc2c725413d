"""Dependencies point one way: the library never imports a front end; the front ends stand in
layers (``api`` over the library, the web page over ``api``, the command line over both) and none
imports one above it; no modules import each other in a loop (lazy imports included); and the
download module does not import the encoder module that uses it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "styletransfer"
FRONT_ENDS = {"api", "cli", "web"}


def import_statements(path: Path):
    """(absolute module, imported names) of every import in ``path``, lazy or not; ``import x.y``
    gives ("x.y", ())."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            yield ".".join([*base, *(node.module.split(".") if node.module else [])]), [a.name for a in node.names]


def imported_modules(path: Path) -> set[str]:
    """Absolute dotted names of every module ``path`` imports, lazily or not (and of every name it imports)."""
    return {name for module, names in import_statements(path) for name in (module, *(f"{module}.{n}" for n in names))}


LIBRARY = sorted(p for p in PACKAGE.rglob("*.py")
                 if p.name not in ("__init__.py", "__main__.py", "api.py")
                 and not {"cli", "web"} & set(p.relative_to(PACKAGE).parts))


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_modules_do_not_import_the_front_ends(path):
    front = {f"styletransfer.{name}" for name in FRONT_ENDS}
    bad = {m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in front)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


# the front ends, bottom up: each may import the library and the front ends below it
FRONT_END_LAYERS = ("api", "web", "cli")
def front_end_of(module: str) -> str | None:
    """The front end a dotted module name belongs to (``styletransfer.web.forms`` → ``web``), or None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "styletransfer" and parts[1] in FRONT_END_LAYERS else None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FRONT_ENDS_FILES = sorted(p for p in PACKAGE.rglob("*.py") if front_end_of(module_name(p)) is not None)


@pytest.mark.parametrize("path", FRONT_ENDS_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_front_ends_import_only_the_layers_below_them(path):
    """The web page's forms once imported the command line's parsers: an arrow back up."""
    own = FRONT_END_LAYERS.index(front_end_of(module_name(path)))
    above = {m for m in imported_modules(path)
             if front_end_of(m) is not None and FRONT_END_LAYERS.index(front_end_of(m)) > own}
    assert not above, f"{path.relative_to(PACKAGE)} imports {sorted(above)}, a front end above it"


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports (lazily or not): ``from pkg import name`` imports
    ``pkg.name`` where that is a module, else ``pkg``."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for module, names in import_statements(path):
            targets.update([f"{module}.{n}" if f"{module}.{n}" in modules else module for n in names] or [module])
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_modules_import_each_other_in_a_loop():
    graph = import_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import loop: " + " → ".join([*path[path.index(module):], module]))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_hub_does_not_import_weights():
    assert not {m for m in imported_modules(PACKAGE / "hub.py") if m.startswith("styletransfer.weights")}


def _from_modules(path: Path) -> set[str]:
    """The modules ``path`` imports from with ``from X import ...`` (X resolved), lazily or not."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - node.level + 1])
            modules.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
    return modules


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_relative_import_resolves(path):
    """Also the lazy ones inside functions, which a moved module can break without failing at import."""
    import importlib.util

    missing = sorted(m for m in _from_modules(path) if importlib.util.find_spec(m) is None)
    assert not missing, f"{path.name} imports missing modules {missing}"
