"""Dependencies point inward: the shared core imports nothing from the packages built on it.

`arrears/` (settings, topics, the embedded broker, the report, the pure rules) is what
`producers/`, `streams/` and `consumers/` share, so it must not import them — except the CLI and
the bench, which sit on top of everything. The pure rules (`arrears/domain/`) import only the
standard library and each other.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTER = {"streams", "producers", "consumers"}
ON_TOP = {ROOT / "arrears" / "cli.py", ROOT / "arrears" / "bench"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _on_top(path: Path) -> bool:
    return any(path == top or top in path.parents for top in ON_TOP)


def test_the_shared_core_imports_nothing_from_the_outer_packages() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "arrears").rglob("*.py")) if not _on_top(path)
        for module in sorted(imported_modules(path)) if module.split(".")[0] in OUTER
    ]
    assert not offenders, "arrears/ must not depend on the packages built on it:\n" + "\n".join(offenders)


def test_the_pure_rules_import_only_the_standard_library() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "arrears" / "domain").rglob("*.py"))
        for module in sorted(imported_modules(path))
        if module.split(".")[0] not in sys.stdlib_module_names and module != "__future__"
    ]
    assert not offenders, "\n".join(offenders)


def _relative_imports(path: Path) -> set[str]:
    """The sibling modules a file imports with ``from .x import ...`` (function-level ones included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module] if node.module else [alias.name for alias in node.names])
    return found


def test_the_web_layer_depends_on_the_app_and_not_the_other_way_round() -> None:
    streams = ROOT / "streams"
    web = {"web", "ops_page", "access", "audit", "service", "workbench_api"}
    below_the_web = [p for p in streams.glob("*.py") if p.stem not in web | {"cli"}]
    offenders = [f"streams/{p.name} imports .{m}" for p in sorted(below_the_web)
                 for m in sorted(_relative_imports(p)) if m.split(".")[0] in web]
    assert not offenders, "the app and the processor must not import the web layer:\n" + "\n".join(offenders)
