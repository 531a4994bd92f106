"""Playwright driving the system Chromium (Debian package ``chromium``).

``playwright install`` is never needed: the browser is ``/usr/bin/chromium``
(or ``$MACNSS_CHROMIUM``). Missing either, the browser tests skip with the
reason, or fail under ``MACNSS_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.store.services import unavailable

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    candidate = os.environ.get("MACNSS_CHROMIUM", "/usr/bin/chromium")
    return candidate if Path(candidate).is_file() else shutil.which("chromium")


@contextlib.contextmanager
def browser_page(*, locale: str = "fr-FR") -> Iterator[Any]:
    """A fresh page in a fresh profile of the system Chromium."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 (optional)
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    executable = chromium_path()
    if executable is None:
        unavailable("no Chromium at /usr/bin/chromium (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="macnss-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            locale=locale,
            viewport={"width": 720, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            context.close()
