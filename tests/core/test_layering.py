"""The layers hold: the import-linter contracts in pyproject.toml (core imports no Qt or qasync,
nothing in core imports the UI, only core/llm imports openai, core's packages depend downwards),
and at run time importing all of core loads no Qt. Also: what core imports is declared."""

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

import desktop_chat.core

CORE = Path(desktop_chat.core.__file__).parent
ROOT = CORE.parents[2]
FORBIDDEN = frozenset({"PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2", "qasync"})


def core_files() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert CORE / "llm" / "client.py" in files and len(files) >= 5
    return files


def test_layer_contracts_hold() -> None:
    """`lint-imports` (import-linter) checks the contracts in pyproject.toml."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and " KEPT" in result.stdout


def imported_modules(source: str, filename: str = "<string>") -> set[str]:
    """Top-level names imported by the source (for the declared-dependency check)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def core_module_names() -> list[str]:
    prefix = desktop_chat.core.__name__ + "."
    names = [info.name for info in pkgutil.walk_packages(desktop_chat.core.__path__, prefix)]
    assert f"{prefix}llm.client" in names and f"{prefix}chat.session" in names
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
        third_party |= imported_modules(path.read_text("utf-8"), str(path))
    third_party -= set(sys.stdlib_module_names) | {"__future__", "desktop_chat"}
    providers = importlib.metadata.packages_distributions()
    declared = declared_dependencies()
    missing = {
        module: sorted(_dist_name(d) for d in providers.get(module, [module]))
        for module in sorted(third_party)
        if not {_dist_name(d) for d in providers.get(module, [module])} & declared
    }
    assert missing == {}, f"imported by core but not in [project].dependencies: {missing}"
