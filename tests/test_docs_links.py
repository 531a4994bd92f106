"""Every internal link and anchor in README.md and docs/*.md resolves.

``mkdocs build --strict`` (tests/test_docs_site.py) checks that linked pages
exist, but it only logs a missing anchor, and it never reads README.md. Here a
link to a file must name a file of the repository (inside docs/ for a page of
the site, which publishes nothing else), and ``#anchor`` must be the id of a
heading of the target page as the site renders it: Python-Markdown's ``toc``
slugs, which mkdocs uses (``## Over PC/SC (pcscd + vpcd)`` becomes
``over-pcsc-pcscd-vpcd``, where GitHub would write ``over-pcsc-pcscd--vpcd``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import markdown  # type: ignore[import-untyped]  # mkdocs brings it; no stubs in the dev group
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HTML_LINK = re.compile(r"""\b(?:href|src)=["']([^"']+)["']""")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")

# Links that are broken today in pages this branch may not edit (each must still
# be broken: fix the page, then delete its entry).
KNOWN_BROKEN: set[tuple[str, str]] = set()


def links(page: Path) -> list[str]:
    """The link targets of ``page``, outside code blocks and code spans."""
    text = CODE_SPAN.sub("", FENCE.sub("", page.read_text()))
    return [
        *INLINE_LINK.findall(text),
        *REFERENCE.findall(text),
        *HTML_LINK.findall(text),
    ]


@cache
def anchors(page: Path) -> frozenset[str]:
    """The ids a rendered ``page`` carries: its headings' and any raw HTML ``id``."""
    html = markdown.markdown(page.read_text(), extensions=["toc", "tables", "fenced_code"])
    return frozenset(re.findall(r'\bid="([^"]+)"', html))


def problem(page: Path, target: str) -> str | None:
    """Why ``target``, linked from ``page``, does not resolve (None when it does)."""
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    if not resolved.is_relative_to(ROOT):
        return "points outside the repository"
    if page.parent == DOCS and not resolved.is_relative_to(DOCS):
        return "points outside docs/ (the site publishes only docs/)"
    if not resolved.exists():
        return "no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"no heading with id {anchor!r} in {resolved.name}"
    return None


def broken(page: Path) -> dict[str, str]:
    found = {}
    for target in links(page):
        if SCHEME.match(target):
            continue  # http:, https:, mailto: are outside this check
        why = problem(page, target)
        if why is not None:
            found[target] = why
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_internal_links_and_anchors_resolve(page: Path) -> None:
    known = {target for name, target in KNOWN_BROKEN if name == page.name}
    found = broken(page)
    assert {t: why for t, why in found.items() if t not in known} == {}
    assert known <= found.keys(), f"fixed, remove from KNOWN_BROKEN: {known - found.keys()}"


def test_every_page_has_links_to_check() -> None:
    # Guards the patterns: if they stopped matching, every page would pass vacuously.
    assert all(links(page) for page in (ROOT / "README.md", DOCS / "index.md"))


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("nowhere.md", "no such file"),
        ("stores.md#no-such-heading", "no heading with id 'no-such-heading' in stores.md"),
        ("#no-such-heading", "no heading with id 'no-such-heading' in index.md"),
        ("../README.md", "points outside docs/ (the site publishes only docs/)"),
        ("kiosk-without-hardware.md#over-pcsc-pcscd-vpcd", None),
        ("stores.md#the-backends", None),
    ],
)
def test_the_check_tells_a_broken_link(target: str, reason: str | None) -> None:
    assert problem(DOCS / "index.md", target) == reason


def test_code_is_not_read_for_links(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[real](other.md#x) and `[in a span](span.md)`\n\n"
        "```python\nprint([in a block](block.md))\n```\n\n"
        "1. A step:\n\n   ```sh\n   echo [indented](indented.md)\n   ```\n\n[ref]: ref.md\n"
    )
    assert links(page) == ["other.md#x", "ref.md"]


def test_every_guide_is_linked_from_the_index_and_the_readme_links_the_index() -> None:
    def linked(page: Path) -> set[str]:
        return {Path(target.partition("#")[0]).name for target in links(page)}

    guides = {guide.name for guide in DOCS.glob("*.md")} - {"index.md"}
    assert guides - linked(DOCS / "index.md") == set()
    assert "index.md" in linked(ROOT / "README.md")
