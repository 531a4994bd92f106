from __future__ import annotations

import pytest

from macnss_auth import MalformedInput
from macnss_auth.audit.chain import ChainHead


@pytest.mark.parametrize("text", ["²:" + "0" * 64, "x:" + "0" * 64, "1:" + "g" * 64, "1", ""])
def test_bad_heads_are_malformed_input(text: str) -> None:
    with pytest.raises(MalformedInput):
        ChainHead.parse(text)


def test_a_head_round_trips() -> None:
    head = ChainHead.parse("12:" + "AB" * 32)
    assert (head.sequence, head.hash) == (12, "ab" * 32)
