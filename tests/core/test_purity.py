"""The core stays pure: no file, process or socket I/O hides in it.

import-linter forbids trio, Qt, sqlite3, socket and libp2p imports; this test
catches what a module-level contract cannot see: calls to open(), and the
I/O-capable parts of os, io, pathlib and shutil.
"""

import ast
from pathlib import Path

import p2pbackup.core

CORE = Path(p2pbackup.core.__file__).parent
FORBIDDEN_MODULES = {"io", "pathlib", "shutil", "tempfile", "os", "mmap", "threading"}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "open"
        ):
            found.append(f"{path.name}:{node.lineno} calls open()")
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.split(".")[0]]
        else:
            continue
        found += [f"{path.name}:{node.lineno} imports {n}" for n in names if n in FORBIDDEN_MODULES]
    return found


def test_core_modules_do_no_io():
    modules = sorted(CORE.glob("*.py"))
    assert len(modules) > 5, "the core package should be found"
    violations = [v for path in modules for v in _violations(path)]
    assert violations == []


def test_the_checker_catches_open(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("import os\nopen('x')\n")
    assert len(_violations(sample)) == 2
