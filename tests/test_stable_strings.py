"""Every exported enum's values are a snapshot: they are stable strings.

Audit records, problem details, the phone protocol, CLI output and notebooks carry
these values, so a rename of a member must not change what is written. Changing a
value is a deliberate edit of ``tests/stable_strings.json``.
"""

from __future__ import annotations

import enum
import importlib
import json
from pathlib import Path

SNAPSHOT_PATH = Path(__file__).parent / "stable_strings.json"
API = json.loads((Path(__file__).parent / "public_api.json").read_text())


def _exported_enums() -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for module_name in sorted(API):
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, enum.Enum):
                key = f"{value.__module__}.{value.__qualname__}"
                found[key] = {member.name: _plain(member.value) for member in value}
    return dict(sorted(found.items()))


def _plain(value: object) -> object:
    """The value as JSON reads it back (tuples become lists)."""
    return json.loads(json.dumps(value))


def test_exported_enum_values_match_the_snapshot() -> None:
    assert _exported_enums() == json.loads(SNAPSHOT_PATH.read_text())
