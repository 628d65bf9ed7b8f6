"""The import-layer contract: web → console → dialogue → media, with fakes/ and simulator/ beside them.

Read from the import statements of every module (also those inside functions and ``TYPE_CHECKING``
blocks), so a lazy import cannot slip a dependency past the contract.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ALLOWED: dict[str, set[str]] = {
    "media": set(),
    "dialogue": {"media"},
    "console": {"dialogue", "media"},
    "web": {"console", "dialogue", "media", "fakes", "simulator"},
    # Test and tooling packages: anything below web, never web itself.
    "fakes": {"console", "dialogue", "media", "simulator"},
    "simulator": {"console", "dialogue", "media", "fakes"},
}
PACKAGES = set(ALLOWED)


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """Our top-level packages this module imports, with the line of each import."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found |= {(name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in PACKAGES}
    return found


def violations(package: str) -> list[str]:
    own = package
    return [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for target, line in sorted(imported_packages(path))
        if target != own and target not in ALLOWED[package]
    ]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_each_layer_imports_only_what_lies_below_it(package: str) -> None:
    assert violations(package) == []


def test_the_scan_sees_a_violation(tmp_path: Path) -> None:
    """The contract test would pass on an empty scan; this proves the scan finds imports at all depths."""
    module = tmp_path / "m.py"
    module.write_text(
        "import web.app\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from console import hub\n"
        "def f():\n    from dialogue.session import CallSession\n    import os\n",
        encoding="utf-8",
    )
    assert imported_packages(module) == {("web", 1), ("console", 4), ("dialogue", 6)}
