"""The architecture holds: layers import one way (import-linter on the installed layout), no
import cycles, and no private name of the libraries symlight stands on."""

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {  # installed name -> folder in the repository (pyproject's package-dir)
    "symlight": "symlight",
    "symlight/models": "models",
    "symlight/tasks": "tasks",
    "symlight/callbacks": "callbacks",
    "symlight/configs": "configs",
}
SOURCE_DIRS = ["symlight", "models", "tasks", "callbacks"]


def installed_layout(target: Path) -> Path:
    """Copy the package into ``target`` the way a wheel lays it out: one ``symlight`` tree."""
    for installed, folder in PACKAGE_DIRS.items():
        shutil.copytree(
            ROOT / folder,
            target / installed,
            ignore=shutil.ignore_patterns("__pycache__"),
            dirs_exist_ok=True,
        )
    return target


def lint_imports(layout: Path) -> subprocess.CompletedProcess:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a dev dependency: pip install -e '.[dev]'"
    return subprocess.run(
        [lint, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=layout,
        env={"PYTHONPATH": str(layout), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.timeout(180)
def test_layers_contract_holds(tmp_path):
    result = lint_imports(installed_layout(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout


@pytest.mark.timeout(180)
def test_an_upward_import_breaks_the_contract(tmp_path):
    layout = installed_layout(tmp_path)
    rep = layout / "symlight" / "core" / "rep.py"
    # a lazy import, inside a function, counts as much as one at the top
    rep.write_text(rep.read_text() + "\n\ndef _upward():\n    import symlight.models  # noqa\n")
    result = lint_imports(layout)
    assert result.returncode != 0
    assert "symlight.core.rep -> symlight.models" in result.stdout


def own_private_names() -> set[str]:
    """Every underscore name symlight itself defines (functions, classes, attributes, fields)."""
    names: set[str] = set()
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {n for n in names if n.startswith("_")}


def sources() -> list[Path]:
    return [p for d in SOURCE_DIRS for p in sorted((ROOT / d).rglob("*.py"))]


LIBRARIES = ("lightning", "jsonargparse", "optuna", "torch", "torchmetrics", "gymnasium")
DOCUMENTED = {"_exit", "_asdict", "_replace", "_fields"}
"""Underscore names the standard library documents as public (``os._exit``, namedtuple's)."""


def library_aliases(tree: ast.AST) -> set[str]:
    """Names a module binds to the libraries themselves (``torch``, ``L``, ``nn``, ``F``...)."""
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {
                (a.asname or a.name).split(".")[0]
                for a in node.names
                if a.name.split(".")[0] in LIBRARIES
            }
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in LIBRARIES:
                aliases |= {a.asname or a.name for a in node.names}
    return aliases


def private_uses(path: Path, ours: set[str]) -> list[str]:
    """Private names of the libraries used in one file: imported, read off a library module or
    object, or read off anything when symlight itself defines no such name."""
    tree = ast.parse(path.read_text())
    aliases = library_aliases(tree)
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = [*node.module.split("."), *(a.name for a in node.names)]
            if any(p.startswith("_") and not p.startswith("__") for p in parts):
                found.append(f"{where}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Attribute):
            name = node.attr
            if not name.startswith("_") or name.startswith("__"):
                continue
            on_library = isinstance(node.value, ast.Name) and node.value.id in aliases
            if on_library or (name not in ours and name not in DOCUMENTED):
                found.append(f"{where}:{node.lineno}: .{name}")
    return found


def test_no_private_name_of_a_library_is_used():
    ours = own_private_names()
    found = [line for path in sources() for line in private_uses(path, ours)]
    assert not found, "private names of other libraries:\n" + "\n".join(found)


def test_no_class_overrides_a_private_method_of_a_library():
    ours = own_private_names()
    found = []
    for path in sources():
        relative = path.relative_to(ROOT).with_suffix("")
        parts = list(relative.parts)
        if parts[0] != "symlight":
            parts.insert(0, "symlight")
        if parts[-1] in ("__init__", "__main__"):
            continue
        module = importlib.import_module(".".join(parts))
        for cls in vars(module).values():
            if not isinstance(cls, type) or cls.__module__ != module.__name__:
                continue
            external = [b for b in cls.__mro__[1:] if b.__module__.split(".")[0] in LIBRARIES]
            for name in vars(cls):
                if name in ours and not name.startswith("__"):
                    if any(name in vars(base) for base in external):
                        found.append(f"{cls.__module__}.{cls.__name__}.{name}")
    assert not found, "overrides of private library methods:\n" + "\n".join(found)


def test_the_private_name_check_sees_a_library_private(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text(
        "import torch\n"
        "def f(trainer, a):\n"
        "    trainer._logger_connector.should_update_logs\n"
        "    return torch._standard_gamma(a)\n"
    )
    found = private_uses(source, own_private_names() | {"_standard_gamma"})
    assert [line.rsplit(" ", 1)[-1] for line in found] == ["._logger_connector", "._standard_gamma"]
