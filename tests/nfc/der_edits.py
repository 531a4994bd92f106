"""Structure-aware DER edits for fuzzing: the DER is rebuilt around each edit.

Byte edits break the first length they touch; these keep every enclosing length
right, so a 2 KB INTEGER, an OID arc of 700 bits or 150 nested SEQUENCEs reach
the reader of the field they replace. OCTET and BIT STRINGs that hold DER (a
CMS's content, the key in a certificate) are descended into too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from hypothesis import strategies as st

from macnss_auth.errors import MalformedInput
from macnss_auth.nfc.tlv import encode_tlv, parse_all

__all__ = ["encode", "reencoded", "tree"]

Node = tuple[int, "list[Node] | bytes", bool]  # (tag, children or value, encapsulated)


def tree(data: bytes, depth: int = 0) -> list[Node]:
    """The TLV tree of ``data``.

    Raises:
        MalformedInput: ``data`` is not a sequence of TLVs.
    """
    nodes: list[Node] = []
    for item in parse_all(data):
        if item.constructed and depth < 12:
            with contextlib.suppress(MalformedInput):
                nodes.append((item.tag, tree(item.value, depth + 1), False))
                continue
        if item.tag == 0x04 or (item.tag == 0x03 and item.value[:1] == b"\x00"):
            # OCTET/BIT STRINGs that hold DER (a CMS's content, a key in a certificate).
            inner = item.value[1:] if item.tag == 0x03 else item.value
            with contextlib.suppress(MalformedInput):
                if inner[:1] == b"\x30":
                    nodes.append((item.tag, tree(inner, depth + 1), True))
                    continue
        nodes.append((item.tag, item.value, False))
    return nodes


def encode(nodes: list[Node]) -> bytes:
    """The DER of ``nodes``, every length computed again."""
    out = b""
    for tag, body, encapsulated in nodes:
        if isinstance(body, bytes):
            out += encode_tlv(tag, body)
        else:
            inner = encode(body)
            if encapsulated and tag == 0x03:
                inner = b"\x00" + inner  # the BIT STRING's unused-bits octet
            out += encode_tlv(tag, inner)
    return out


def _paths(nodes: list[Node], prefix: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], int]]:
    """Every node's path and tag."""
    found = []
    for index, (tag, body, _) in enumerate(nodes):
        found.append(((*prefix, index), tag))
        if not isinstance(body, bytes):
            found += _paths(body, (*prefix, index))
    return found


_HUGE_INTEGERS = [b"\x01" + bytes(2100), b"\x80" + bytes(2100), b"", b"\x00\x00\x01", b"\xff"]
_ODD_OIDS = [
    b"\x2a" + b"\xff" * 100 + b"\x01",
    b"\x2a" + b"\xff" * 2100 + b"\x01",
    b"",
    b"\x80\x01",
    b"\x2a\x86",
]


def _edit(nodes: list[Node], path: tuple[int, ...], how: str, pick: int) -> list[Node]:
    if len(path) > 1:
        tag, body, encapsulated = nodes[path[0]]
        assert not isinstance(body, bytes)
        edited = list(nodes)
        edited[path[0]] = (tag, _edit(body, path[1:], how, pick), encapsulated)
        return edited
    index = path[0]
    tag, body, encapsulated = nodes[index]
    edited = list(nodes)
    if how == "value" and tag == 0x02:
        edited[index] = (tag, _HUGE_INTEGERS[pick % len(_HUGE_INTEGERS)], False)
    elif how == "value" and tag == 0x06:
        edited[index] = (tag, _ODD_OIDS[pick % len(_ODD_OIDS)], False)
    elif how == "value":
        edited[index] = (tag, b"", False)
    elif how == "deep":
        node: Node = nodes[index]
        for _ in range(150):
            node = (0x30, [node], False)
        edited[index] = node
    elif how == "twice":
        edited.insert(index, nodes[index])
    else:
        del edited[index]
    return edited


@st.composite
def reencoded(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """One of ``seeds`` with one or two structural edits."""
    seed = draw(st.sampled_from(seeds))
    try:
        nodes = tree(seed)
    except MalformedInput:
        return seed
    for _ in range(draw(st.integers(1, 2))):
        paths = _paths(nodes)
        scalars = [path for path, tag in paths if tag in (0x02, 0x06)]
        favour_scalars = draw(st.booleans())
        if scalars and favour_scalars:
            # INTEGERs and OIDs are where numbers are read: give them half of the edits.
            path, how = draw(st.sampled_from(scalars)), "value"
        elif paths:
            path = draw(st.sampled_from([path for path, _ in paths]))
            how = draw(st.sampled_from(["value", "deep", "twice", "drop"]))
        else:
            break
        nodes = _edit(nodes, path, how, draw(st.integers(0, 10)))
    return encode(nodes)
