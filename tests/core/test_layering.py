"""`desktop_chat.core` is pure Python: no Qt, no qasync; only the SDK_MODULES talk to openai."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import desktop_chat.core

CORE = Path(desktop_chat.core.__file__).parent
ROOT = CORE.parents[2]
FORBIDDEN = frozenset({"PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2", "qasync"})
SDK = "openai"
# The core modules allowed to import the SDK. The Responses API mapping (responses.py) and
# local-server discovery (discovery.py) reach it only through ChatClient, so SDK types and
# exceptions stay out of sessions, settings and the UI; a new importer must be added here.
SDK_MODULES = frozenset({"client.py"})
IMPORT_FUNCTIONS = {"import_module", "__import__", "find_spec"}


def core_files() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert CORE / "client.py" in files and len(files) >= 5
    return files


def imported_modules(source: str, filename: str = "<string>") -> set[str]:
    """Dotted names imported by the source, including `importlib.import_module("x")` and
    `__import__("x")` calls with a literal argument."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in IMPORT_FUNCTIONS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
    return found


def top_level(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def test_scanner_sees_every_import_form() -> None:
    source = """
import PySide6.QtCore
from PyQt6 import QtWidgets
import os, shiboken6 as sb
import importlib
def later():
    from qasync import QEventLoop
    importlib.import_module("PyQt5.QtGui")
    __import__("PySide2")
try:
    import openai
except ImportError:
    pass
from . import sibling
"""
    assert top_level(imported_modules(source)) == {
        "PySide6", "PyQt6", "os", "shiboken6", "importlib", "qasync", "PyQt5", "PySide2", "openai",
    }


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.name)
def test_core_module_imports_no_qt(path: Path) -> None:
    found = top_level(imported_modules(path.read_text("utf-8"), str(path)))
    assert not found & FORBIDDEN, f"{path.name} imports {sorted(found & FORBIDDEN)}"


def test_core_source_mentions_no_qt_module_by_name() -> None:
    """Catches dynamic imports the AST scan cannot resolve, e.g. a name built at run time."""
    names = "|".join(sorted(FORBIDDEN))
    pattern = re.compile(rf"""["']({names})(\.|["'])""")
    offenders = [p.name for p in core_files() if pattern.search(p.read_text("utf-8"))]
    assert offenders == []


def test_only_the_sdk_modules_import_openai() -> None:
    importers = {
        path.relative_to(CORE).as_posix()
        for path in core_files()
        if SDK in top_level(imported_modules(path.read_text("utf-8"), str(path)))
    }
    assert importers == SDK_MODULES


def core_module_names() -> list[str]:
    prefix = desktop_chat.core.__name__ + "."
    names = [info.name for info in pkgutil.walk_packages(desktop_chat.core.__path__, prefix)]
    assert f"{prefix}client" in names and f"{prefix}session" in names
    return sorted(names)


def test_importing_all_of_core_loads_no_qt() -> None:
    modules = core_module_names()
    forbidden = sorted(FORBIDDEN)
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "print(json.dumps({'loaded': loaded, 'core': sorted(m for m in sys.modules\n"
        "                  if m.startswith('desktop_chat.'))}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [], f"importing core loaded {report['loaded']}"
    assert set(modules) <= set(report["core"])
    assert not any(m.startswith("desktop_chat.ui") for m in report["core"])


# -- what core imports is what the package declares ------------------------------------------


def _dist_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return {_dist_name(re.split(r"[\s<>=!~;\[(]", spec, maxsplit=1)[0])
            for spec in project.get("dependencies", [])}


def test_core_third_party_imports_are_declared_dependencies() -> None:
    """A module core imports must be installed by `pip install desktop-chat`."""
    third_party: set[str] = set()
    for path in core_files():
        third_party |= top_level(imported_modules(path.read_text("utf-8"), str(path)))
    third_party -= set(sys.stdlib_module_names) | {"__future__", "desktop_chat"}
    providers = importlib.metadata.packages_distributions()
    declared = declared_dependencies()
    missing = {
        module: sorted(_dist_name(d) for d in providers.get(module, [module]))
        for module in sorted(third_party)
        if not {_dist_name(d) for d in providers.get(module, [module])} & declared
    }
    assert missing == {}, f"imported by core but not in [project].dependencies: {missing}"
