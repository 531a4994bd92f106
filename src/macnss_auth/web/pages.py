"""The login page (filled in below)."""

from __future__ import annotations

from fastapi import APIRouter

from macnss_auth.web.runtime import Runtime

__all__ = ["page_router"]


def page_router(runtime: Runtime) -> APIRouter:
    """The HTML routes."""
    del runtime
    return APIRouter(include_in_schema=False)
