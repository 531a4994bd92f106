"""The OpenAPI document is a snapshot: an API change is a deliberate edit of openapi.json.

Regenerate with ``MACNSS_UPDATE_SNAPSHOTS=1 pytest tests/web/test_openapi.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi.testclient import TestClient

from .helpers import build

SNAPSHOT = Path(__file__).parent / "openapi.json"


def test_the_openapi_document_matches_the_snapshot() -> None:
    response = TestClient(build().app).get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    document["info"].pop("version")  # the package version changes with every release
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("MACNSS_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), "API changed: regenerate tests/web/openapi.json"


def test_every_route_documents_its_problems() -> None:
    document = TestClient(build().app).get("/openapi.json").json()
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            responses = operation["responses"]
            assert "application/problem+json" in responses["422"]["content"], path
            assert "429" in responses, path
