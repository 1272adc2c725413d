"""Dependencies point one way: the library never imports the file-level front end (``api``) or
the command line, and the download module does not import the encoder module that uses it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "styletransfer"
FRONT_ENDS = {"api", "cli", "web"}


def imported_modules(path: Path) -> set[str]:
    """Absolute dotted names of every module ``path`` imports, lazily or not."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


LIBRARY = sorted(p for p in PACKAGE.rglob("*.py")
                 if p.name not in ("__init__.py", "__main__.py", "api.py")
                 and not {"cli", "web"} & set(p.relative_to(PACKAGE).parts))


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_modules_do_not_import_the_front_ends(path):
    front = {f"styletransfer.{name}" for name in FRONT_ENDS}
    bad = {m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in front)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


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
