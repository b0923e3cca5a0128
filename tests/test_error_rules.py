"""No code decides by an error's words: the day a message is reworded, such a test of
its text silently goes the other way. A case of its own gets a class or a code."""

import ast
from pathlib import Path

import p2pbackup

PACKAGE = Path(p2pbackup.__file__).parent


def _text_of_caught(node: ast.AST, caught: set[str]) -> bool:
    """``exc.message``, ``exc.args`` or ``str(exc)`` for a name an ``except`` bound."""
    if isinstance(node, ast.Attribute) and node.attr in {"message", "args", "strerror"}:
        return isinstance(node.value, ast.Name) and node.value.id in caught
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        and node.func.id in {"str", "repr"} and len(node.args) == 1
        and isinstance(node.args[0], ast.Name) and node.args[0].id in caught
    )  # fmt: skip


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    caught = {n.name for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler) and n.name}
    found = []
    for node in ast.walk(tree):
        compared = isinstance(node, ast.Compare) and any(
            isinstance(op, ast.In | ast.NotIn | ast.Eq | ast.NotEq) for op in node.ops
        )
        if compared and any(_text_of_caught(s, caught) for s in [node.left, *node.comparators]):
            found.append(f"{path.name}:{node.lineno} compares an error's text")
        if (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"startswith", "endswith", "find", "index", "count"}
            and _text_of_caught(node.func.value, caught)
        ):  # fmt: skip
            found.append(f"{path.name}:{node.lineno} searches an error's text")
    return found


def test_nothing_decides_by_an_errors_message():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50, "the package should be found"
    assert [v for path in modules for v in _violations(path)] == []


def test_the_rule_sees_a_test_of_text(tmp_path):
    path = tmp_path / "sample.py"
    path.write_text(
        "try:\n    pass\nexcept Exception as exc:\n"
        "    if 'unknown here' in str(exc) or exc.message.startswith('No'):\n        pass\n"
    )
    assert _violations(path) == [
        "sample.py:4 compares an error's text", "sample.py:4 searches an error's text"
    ]
