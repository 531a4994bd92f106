"""The reader only sequences protocol objects: every APDU goes through ``run()``.

``DocumentReader`` used to build and send READ BINARY, SELECT and GET RESPONSE
itself. Now the one ``transceive`` call in ``nfc/reader.py`` is the transport
adapter that counts round trips and completes ``61xx`` answers; everything
else reaches the card as a protocol object run by :func:`macnss_auth.nfc.protocol.run`.
"""

from __future__ import annotations

import ast
import inspect
from types import ModuleType
from typing import TypeVar

import pytest

import macnss_auth.nfc.access
import macnss_auth.nfc.pace.terminal
import macnss_auth.nfc.phone.client
import macnss_auth.nfc.reader
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.protocol import Exchange, Transport, run
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.testing import FixedRandom

from .conftest import issued

T = TypeVar("T")


def transceive_calls(module: ModuleType) -> list[str]:
    """The enclosing class (or function) of every ``.transceive(...)`` call in a module."""
    source = inspect.getsource(module)
    found: list[str] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = where
            if isinstance(child, (ast.ClassDef, ast.FunctionDef)) and where == "<module>":
                inner = child.name
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "transceive"
            ):
                found.append(where)
            visit(child, inner)

    visit(ast.parse(source), "<module>")
    return found


def test_the_reader_sends_nothing_itself() -> None:
    assert set(transceive_calls(macnss_auth.nfc.reader)) == {"_Counting"}
    assert transceive_calls(macnss_auth.nfc.access) == []


def test_the_phone_reads_files_through_the_machines() -> None:
    # The phone still relays raw steps (relay mode) and wraps the server's steps;
    # its own reads go through ReadFile and SelectApplication.
    assert set(transceive_calls(macnss_auth.nfc.phone.client)) <= {
        "PhoneCardSession",
        "ReferencePhone",
    }
    source = inspect.getsource(macnss_auth.nfc.phone.client)
    assert "0xB0" not in source  # READ BINARY
    assert "0xA4" not in source  # SELECT


def test_every_reader_apdu_comes_from_a_protocol_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count the APDUs ``run()`` drives: they are all the reader sends."""
    driven: list[str] = []

    def counting_run(protocol: Exchange[T], transport: Transport) -> T:
        class Seen:
            def transceive(self, command: bytes) -> bytes:
                driven.append(type(protocol).__name__)
                return transport.transceive(command)

        return run(protocol, Seen())

    # Opening the chip (nfc.access) and PACE inside it (run_pace) have references of
    # their own to run().
    monkeypatch.setattr(macnss_auth.nfc.reader, "run", counting_run)
    monkeypatch.setattr(macnss_auth.nfc.access, "run", counting_run)
    monkeypatch.setattr(macnss_auth.nfc.pace.terminal, "run", counting_run)
    card = MemoryTransport(VirtualCard(issued("cnie").data, random=FixedRandom(5)))
    result = DocumentReader(card, random=FixedRandom(6)).read(CAN("123456"))
    assert len(driven) == result.round_trips
    assert {"ReadFile", "SelectApplication", "PaceTerminal", "ChipAuthentication"} <= set(driven)
