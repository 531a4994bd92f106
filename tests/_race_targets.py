"""Targets of the race_processes tests (a module that spawned children can import)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["KeywordOnlyError", "after_start", "before_start"]


class KeywordOnlyError(Exception):
    """Pickles, but does not unpickle (pickle calls ``cls(*args)``)."""

    def __init__(self, *, code: int) -> None:
        super().__init__(f"code {code}")


def after_start(behaviour: str, together: Any, start: Callable[[], None]) -> object:
    """Start, meet every other process at ``together``, then behave as told."""
    start()
    together.wait(60)  # only processes that run at the same time get past
    if behaviour == "raise":
        raise ValueError(behaviour)
    if behaviour == "raise-keyword-only":
        raise KeywordOnlyError(code=7)
    if behaviour == "die":
        os._exit(3)
    if behaviour == "unpicklable":
        return threading.Lock()
    return (behaviour, os.getpid())


def before_start(behaviour: str, start: Callable[[], None]) -> object:
    """Fail before ``start()`` (``"raise"``), skip it (``"skip"``), or start and return."""
    if behaviour == "raise":
        raise KeyError(behaviour)
    if behaviour == "skip":
        return None
    start()
    return behaviour
