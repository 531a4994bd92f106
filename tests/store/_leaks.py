"""What an error would show in a log: for tests that no secret is in it."""

from __future__ import annotations

import traceback


def everything_said(error: BaseException) -> str:
    """The message and repr of ``error`` and of every exception a traceback would print with it."""
    said = []
    current: BaseException | None = error
    while current is not None:
        said += [*traceback.format_exception_only(current), repr(current)]
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__suppress_context__:
            current = None
        else:
            current = current.__context__
    return "".join(said)
