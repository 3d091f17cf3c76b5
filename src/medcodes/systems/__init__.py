"""One module per code system: its code grammar, its structure, its official-file parser.

Every system module exposes the same small interface, which the rest of
medcodes uses and nothing else:

``SYSTEM``
    the system id (``icd10cm``, ``icd10pcs``, ``hcpcs``, ``cpt``, ``icd9cm``).

``plan(sources) -> list[Plan]``
    Given every official file found by :func:`medcodes.sources.scan`, say
    which releases of this system they make (ignore files that are not
    yours). Nothing is parsed yet: a :class:`Plan` carries a ``build``
    callable that parses and returns a :class:`~medcodes.model.ReleaseBuild`.
    ``build`` raises :class:`~medcodes.errors.DataError` (one line, naming the
    file) when a file is truncated, corrupt, or its counts disagree.

``readings(key) -> list[Reading]``
    Purely syntactic: the ways the normalised string ``key`` (upper case, no
    dots or spaces) can be read as a code of this system, with a canonical
    code and a plausibility score in 0..1. No store access.

``structure(code, db) -> dict``
    What the code's *shape* means (chapter and block, PCS axes, HCPCS
    section, CPT category and section). ``db`` is a
    :class:`~medcodes.store.ReleaseDB` of this system, or None when none is
    installed: answer what can be known from the grammar alone.

``enrich(record, row, db) -> None``
    Add the system's own fields to a lookup record (a dict), given the
    concept row. Used by :meth:`medcodes.Codebook.lookup`.

To add a code system: write a module with these five names, add it to
``MODULES`` below (and to ``codebook.CODE_SYSTEMS``), and give it tests on its
official files. Data-only modules (``crosswalk``: the GEMs and conversion table; ``ncci``: CMS's
NCCI edits by quarter; ``icd10cm_index`` and ``icd10pcs_index``: the official indexes;
``icd10cm_guidelines``: the Z-code sequencing lists of the Official Guidelines PDF; ``msdrg``: the IPPS
tables 5, 6I, 6J, 6K and the POA-exempt list) hold no codes of
their own and define only ``SYSTEM`` and ``plan``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

from ..model import ReleaseBuild, normalize_key
from ..sources import Source

MODULES = ("icd10cm", "icd10pcs", "hcpcs", "cpt", "icd9cm", "crosswalk", "icd10cm_index", "icd10pcs_index",
           "ncci", "icd10cm_guidelines", "msdrg")


@dataclass
class Plan:
    system: str
    release: str
    sources: list[Source]
    build: Callable[[], ReleaseBuild]


@dataclass
class Reading:
    code: str                 # canonical display form in this system
    score: float              # 0..1, how plausible this reading is by shape alone
    kind: str = "code"        # code | modifier | category | header ...
    note: str = ""            # why (or why not) this reading
    extra: dict[str, Any] = field(default_factory=dict)
    key: str = ""             # store key to look up (default: normalize_key(code))

    def __post_init__(self) -> None:
        if not self.key:
            self.key = normalize_key(self.code)


def module(system: str) -> ModuleType:
    try:
        return _loaded[system]
    except KeyError:
        pass
    if system not in MODULES:
        raise KeyError(system)
    mod = _loaded[system] = importlib.import_module(f"{__name__}.{system}")
    return mod


_loaded: dict[str, ModuleType] = {}


def all_modules() -> list[ModuleType]:
    return [module(s) for s in MODULES]
