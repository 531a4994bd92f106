"""The examples in docs/stores.md run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "stores.md"


def _blocks() -> list[str]:
    """The page's Python blocks, but those marked ``<!-- not-run: ... -->`` (tests/test_docs.py)."""
    found = re.findall(
        r"(<!-- not-run: [^>]+-->\s*)?```python\n(.*?)```",
        DOC.read_text(encoding="utf-8"),
        re.DOTALL,
    )
    return [code for marker, code in found if not marker]


def test_a_store_of_your_own_runs_the_contract_from_macnss_auth_testing(tmp_path: Path) -> None:
    (example,) = [b for b in _blocks() if "StoreContract" in b]
    module = tmp_path / "test_my_store.py"
    module.write_text(example, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b\d{2,} passed\b", done.stdout), done.stdout


def test_the_stores_guide_example_runs() -> None:
    (guide,) = [
        b
        for b in _blocks()
        if "StoreContract" not in b and "in_store" not in b and "reseal" not in b
    ]
    done = subprocess.run(
        [sys.executable, "-c", guide], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def _run_the_block_with(marker: str) -> subprocess.CompletedProcess[str]:
    """Run the one guide block containing ``marker`` in a fresh interpreter; it must succeed."""
    (example,) = [b for b in _blocks() if marker in b]
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


def test_the_combined_layout_example_runs() -> None:
    done = _run_the_block_with("in_store")
    # enroll and confirm: two records in the store's own file, chain intact.
    assert done.stdout == "2 records, chain intact\n"


def test_the_rotation_example_runs() -> None:
    done = _run_the_block_with("reseal")
    assert done.stdout == "no key 'k2' in the keyring to open this secret\nrotated\n"
