"""The package's layout keeps its promises: no import cycle, short modules, one owner per decision."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sphinx_evaldemo"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_at_load(path: Path, known: set[str]) -> set[str]:
    """Modules of the package that importing ``path`` imports (not lazy, not TYPE_CHECKING)."""
    name = _name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
        submodules = {f"{target}.{alias.name}" for alias in node.names} & known
        found |= submodules or {target}
    return (found & known) - {name}


def test_no_import_cycle() -> None:
    known = {_name(path) for path in MODULES}
    graph = {_name(path): _imports_at_load(path, known) for path in MODULES}
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        if module in stack:
            pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(module):], module]))
        if module in done:
            return
        for other in sorted(graph[module]):
            visit(other, [*stack, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert len(done) == len(graph) > 20


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_short_and_says_its_job(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring and docstring.strip(), "every module opens with a line saying its job"


def test_extension_module_only_registers() -> None:
    text = (PACKAGE / "extension.py").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 110
    assert "import torch" not in text and "Runner" not in text


def test_execute_setting_is_read_in_one_module() -> None:
    readers = {
        str(path.relative_to(PACKAGE)) for path in MODULES
        if re.search(r"\.execute\b", path.read_text(encoding="utf-8"))
    }
    assert readers == {"examples/core.py"}


@pytest.mark.parametrize("name", ["core.py", "execution.py"])
def test_the_core_knows_only_the_executor_interface(name: str) -> None:
    """A new executor plugs in without touching the core: it names none of them (it
    knows the settings, such as ``evaldemo_executor = "dask"``, not the classes)."""
    text = (PACKAGE / "examples" / name).read_text(encoding="utf-8").lower()
    for named in ("localexecutor", "daskexecutor", "executors.local", "executors.dask"):
        assert named not in text


def test_features_live_in_their_own_folders() -> None:
    top = {path.name for path in PACKAGE.glob("*.py")}
    assert top <= {"__init__.py", "extension.py", "config.py", "reference.py", "__main__.py"}
    for feature in ("examples", "articles"):
        assert (PACKAGE / feature / "__init__.py").is_file()
    for path in (PACKAGE / "articles").rglob("*.py"):
        assert "examples" not in {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) and n.module}
