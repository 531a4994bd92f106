"""The import graph points down: product code never imports the test helpers.

``macnss_auth.testing`` re-exports product pieces (the virtual card, the
issuing PKI, a capturing channel) for users' tests; the arrow must never run
the other way, or installing the library would drag test scaffolding into
every service. Checked on the source text (ast), so imports under
``TYPE_CHECKING`` and inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "macnss_auth"
TESTING = "macnss_auth.testing"


def _module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports, absolute, with ``from a import b`` also as ``a.b``."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _imports_testing(path: Path, root: Path = SRC) -> list[str]:
    return sorted(m for m in _imported(path, root) if m == TESTING or m.startswith(TESTING + "."))


def _product_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if not _module_name(p).startswith(TESTING))


def test_no_product_module_imports_the_test_helpers() -> None:
    offenders = {
        _module_name(p): found for p in _product_modules() if (found := _imports_testing(p))
    }
    assert offenders == {}


def test_the_walk_sees_the_package() -> None:
    # A walk that found nothing would pass the check above vacuously.
    names = {_module_name(p) for p in _product_modules()}
    assert {"macnss_auth", "macnss_auth.nfc.card.issuer", "macnss_auth.nfc.pki.trust"} <= names


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import macnss_auth.testing.pki\n", ["macnss_auth.testing.pki"]),
        (
            "from macnss_auth.testing.pki import TestPki\n",
            ["macnss_auth.testing.pki", "macnss_auth.testing.pki.TestPki"],
        ),
        ("from macnss_auth import testing\n", ["macnss_auth.testing"]),
        (
            "from ...testing import FixedClock\n",
            ["macnss_auth.testing", "macnss_auth.testing.FixedClock"],
        ),
        (
            (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from macnss_auth.testing.clock import FixedClock\n"
            ),
            ["macnss_auth.testing.clock", "macnss_auth.testing.clock.FixedClock"],
        ),
        ("from macnss_auth.nfc.card.issuing_pki import TestPki\n", []),
    ],
)
def test_the_walk_finds_every_form_of_import(
    tmp_path: Path, source: str, expected: list[str]
) -> None:
    # A module at macnss_auth/nfc/card/x.py, so ``...`` is macnss_auth.
    module = tmp_path / "macnss_auth" / "nfc" / "card" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text(source)
    assert _imports_testing(module, tmp_path) == expected
