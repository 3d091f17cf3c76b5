"""The HTTP service over medcodes: REST JSON, FHIR R4 terminology operations and the web page.

``create_app(home)`` returns the ASGI app; ``medcodes serve`` runs it under uvicorn.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(home: Any = None, settings: Any = None) -> Any:
    from .app import create_app as _create

    return _create(home, settings)
