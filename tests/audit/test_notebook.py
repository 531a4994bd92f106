"""docs/notebooks/audit.ipynb runs top to bottom, draws its plots and reports the tampering."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "docs" / "notebooks"
SOURCE = Path(__file__).resolve().parents[2] / "src"


def test_the_audit_notebook_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(NOTEBOOKS / "audit.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    # The kernel is a child process: it must import this tree's sources, as the tests do.
    env_path = os.pathsep.join(p for p in (str(SOURCE), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", env_path)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 5  # outcomes, failure rate, lockouts, deliveries, people without NFC
    text = "".join(
        out.get("text", "") + out.get("data", {}).get("text/plain", "") for out in outputs
    )
    assert "intact: True" in text
    assert "intact: False" in text
    for kind in ("hash_mismatch", "missing", "out_of_order", "bad_signature"):
        assert kind in text
