"""One owner for execution: only ``examples/core.py`` decides from the execute mode or ``-j``.

The package's source is read (not imported) and every condition in it is looked at:
an ``if``, ``while``, ``assert``, conditional expression, comparison, boolean operation
or comprehension filter that reads ``.execute``, ``.parallel``, ``.parallel_ok`` or
calls ``os.getpid()`` decides an execution question, and must be in the core. Passing
such a value on to the core (an argument) is not deciding.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sphinx_evaldemo"
OWNER = PACKAGE / "examples" / "core.py"
#: attributes that say whether examples run (the execute mode) or whether -j is in effect
ASKED = frozenset({"execute", "parallel", "parallel_ok"})
#: where ``os.getpid()`` asks something else than ``-j``: the child side's process groups,
#: and a store that must not reuse a connection opened before a fork
PID_ELSEWHERE = frozenset({"examples/worker", "examples/stores.py"})


def _conditions(tree: ast.AST) -> list[ast.expr]:
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If | ast.While | ast.IfExp | ast.Assert):
            found.append(node.test)
        elif isinstance(node, ast.Compare | ast.BoolOp):
            found.append(node)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            found.append(node.operand)
        elif isinstance(node, ast.comprehension):
            found.extend(node.ifs)
    return found


def _asks(tree: ast.AST, *, pid_is_other: bool = False) -> list[tuple[int, str]]:
    """``(line, what)`` for each execution question a condition in ``tree`` reads."""
    found: set[tuple[int, str]] = set()
    for condition in _conditions(tree):
        for node in ast.walk(condition):
            if isinstance(node, ast.Attribute) and node.attr in ASKED:
                found.add((node.lineno, f".{node.attr}"))
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "getpid" and not pid_is_other):
                found.add((node.lineno, "os.getpid()"))
    return sorted(found)


def _decisions(path: Path) -> list[str]:
    relative = path.relative_to(PACKAGE).as_posix()
    pid_is_other = any(relative.startswith(prefix) for prefix in PID_ELSEWHERE)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{relative}:{line}: {what}" for line, what in _asks(tree, pid_is_other=pid_is_other)]


def test_no_code_outside_the_core_decides_whether_or_where_examples_run() -> None:
    found = [
        decision for path in sorted(PACKAGE.rglob("*.py")) if path != OWNER
        for decision in _decisions(path)
    ]
    assert found == [], "ask examples/core.py instead:\n" + "\n".join(found)


def test_the_core_is_where_they_are_decided() -> None:
    """The scan sees the core's own decisions (so it cannot pass by seeing nothing)."""
    found = _decisions(OWNER)
    assert any(".execute" in line for line in found)
    assert any("os.getpid()" in line for line in found)


@pytest.mark.parametrize(
    ("source", "decides"),
    [
        ("if settings.execute == 'never':\n    pass\n", True),
        ("x = 1 if app.parallel > 1 else 0\n", True),
        ("ok = [r for r in rs if not builder.parallel_ok]\n", True),
        ("forked = os.getpid() != main\n", True),
        ("run = Execution(settings, jobs=app.parallel)\n", False),
        ("mode = settings.execute\n", False),
    ],
)
def test_what_counts_as_deciding(source: str, decides: bool) -> None:
    assert bool(_asks(ast.parse(source))) is decides
