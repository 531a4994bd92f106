"""The public API is a snapshot: changing it is a deliberate edit of tests/public_api.json.

Every exported name must exist, and nothing may be exported twice under one module.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

SNAPSHOT = json.loads((Path(__file__).parent / "public_api.json").read_text())


@pytest.mark.parametrize("module_name", sorted(SNAPSHOT))
def test_exports_match_the_snapshot(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported))
    assert sorted(exported) == SNAPSHOT[module_name]
    for name in exported:
        assert getattr(module, name) is not None, name
