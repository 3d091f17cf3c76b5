"""medcodes: an offline engine for US medical billing codes.

    >>> from medcodes import Codebook
    >>> cb = Codebook.open()
    >>> cb.lookup("E11.65").title
    'Type 2 diabetes mellitus with hyperglycemia'

Importing this package loads nothing: releases are opened on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Codebook", "Identification", "Record", "Validation",
           "MedcodesError", "DataError", "NotFound", "NotInstalled", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .codebook import Codebook, Identification, Record, Validation
    from .errors import DataError, MedcodesError, NotFound, NotInstalled

_LAZY = {
    "Codebook": "codebook", "Identification": "codebook", "Record": "codebook", "Validation": "codebook",
    "MedcodesError": "errors", "DataError": "errors", "NotFound": "errors", "NotInstalled": "errors",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'medcodes' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
