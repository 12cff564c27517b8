"""ingest's imports are at the top of its modules (docs/architecture.md, "Inside ingest"): an
import inside a function hides a dependency from the reader and from the import-linter
contract's reader alike, and was how ingest's modules imported each other in a circle. One is
allowed where a comment on the line or the line above says why (a true cycle, an optional
heavy import)."""

from __future__ import annotations

import ast
from pathlib import Path

INGEST = Path(__file__).resolve().parents[2] / "ingest"


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nested_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that are not module-level statements (nor under `if TYPE_CHECKING:`)."""
    top: set[int] = set()
    for statement in tree.body:
        blocks = [statement]
        if isinstance(statement, ast.If) and _type_checking(statement):
            blocks = statement.body
        top.update(id(node) for node in blocks if isinstance(node, ast.Import | ast.ImportFrom))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top
    ]


def _explained(lines: list[str], lineno: int) -> bool:
    here, above = lines[lineno - 1], lines[lineno - 2].strip() if lineno >= 2 else ""
    return "#" in here or above.startswith("#")


def test_no_unexplained_import_inside_a_function():
    modules = [p for p in INGEST.rglob("*.py") if "migrations" not in p.parts]
    assert len(modules) > 20  # the walk found ingest
    unexplained = []
    for path in modules:
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in _nested_imports(ast.parse(source)):
            if not _explained(lines, node.lineno):
                unexplained.append(f"{path.relative_to(INGEST.parent)}:{node.lineno}")
    assert unexplained == []


def test_the_check_sees_a_nested_import():
    tree = ast.parse("import os\n\ndef f():\n    import sys\n    return sys\n")
    assert [node.lineno for node in _nested_imports(tree)] == [4]
    assert not _explained(["def f():", "    import sys"], 2)
    assert _explained(["def f():", "    # cycle: b imports a", "    import sys"], 3)
