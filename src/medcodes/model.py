"""Plain data types shared by the parsers, the store and the codebook.

Parsers (``medcodes.systems.*``) produce :class:`ReleaseBuild` objects full of
:class:`Concept` rows; the store writes them into one SQLite file per release;
the codebook reads them back as :class:`ReleaseInfo` and row dictionaries.
"""

from __future__ import annotations

import datetime as _dt
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

SYSTEMS = ("icd10cm", "icd10pcs", "hcpcs", "cpt", "icd9cm")

MAINTAINERS = {
    "icd10cm": "NCHS/CDC - National Center for Health Statistics",
    "icd10pcs": "CMS - Centers for Medicare & Medicaid Services",
    "hcpcs": "CMS - Centers for Medicare & Medicaid Services",
    "cpt": "AMA - American Medical Association",
    "icd9cm": "NCHS/CDC and CMS - frozen; replaced by ICD-10 on 2015-10-01",
    "cdt": "ADA - American Dental Association",
}

SYSTEM_NAMES = {
    "icd10cm": "ICD-10-CM",
    "icd10pcs": "ICD-10-PCS",
    "hcpcs": "HCPCS Level II",
    "cpt": "CPT (HCPCS Level I)",
    "icd9cm": "ICD-9-CM",
    "cdt": "CDT (ADA dental, HCPCS D codes)",
    "gem": "General Equivalence Mappings (ICD-9-CM <-> ICD-10)",
    "ncci": "NCCI edits (CMS National Correct Coding Initiative)",
}


def normalize_key(raw: str) -> str:
    """The store's lookup key: upper case, no dots or spaces; full-width and other compatibility
    characters folded to ASCII first (NFKC: ``E１１．６５`` -> ``E1165``)."""
    if raw.isascii():
        return raw.strip().upper().replace(".", "").replace(" ", "")
    key = unicodedata.normalize("NFKC", raw).strip().upper().replace(".", "").replace(" ", "")
    return unicodedata.normalize("NFKC", key)  # (removing a space can join a combining mark)


def fold(raw: str) -> str:
    """A code as typed, with full-width and other compatibility characters folded (NFKC)."""
    return raw if raw.isascii() else unicodedata.normalize("NFKC", raw)


@dataclass(slots=True)
class Concept:
    """One row of a code system: a code, a header, a chapter, a modifier...

    ``code`` is the canonical display form (``E11.65``, ``0DTJ4ZZ``, ``E1130``).
    ``key`` defaults to :func:`normalize_key` of it and is what lookups use.
    ``parent`` is the *key* of the parent row (or None at the top).
    ``attrs`` holds the system's own fields (notes, axes, pricing...) as JSON.
    """

    code: str
    title: str
    kind: str
    billable: bool | None = None
    parent: str | None = None
    short_title: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            self.key = normalize_key(self.code)


@dataclass(slots=True)
class Table:
    """An extra table a parser wants in the release file (GEM rows, index terms...)."""

    columns: Sequence[str]
    rows: Iterable[Sequence[Any]]
    indexes: Sequence[Sequence[str]] = ()


@dataclass(slots=True)
class SourceRef:
    """An official file a release was built from (a zip member is ``zip!member``)."""

    name: str
    sha256: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size}


@dataclass(slots=True)
class ReleaseBuild:
    """Everything a parser hands the store for one release of one system."""

    system: str
    release: str
    label: str
    effective_from: _dt.date
    effective_to: _dt.date | None
    sources: list[SourceRef]
    concepts: Iterable[Concept]
    counts: dict[str, int] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """An installed release, as ``medcodes releases`` lists it."""

    system: str
    release: str
    label: str
    effective_from: _dt.date
    effective_to: _dt.date | None
    sources: tuple[dict[str, Any], ...]
    counts: dict[str, int]
    notes: tuple[str, ...]
    path: str

    def covers(self, day: _dt.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "release": self.release,
            "label": self.label,
            "effective_from": self.effective_from.isoformat(),
            "effective_to": self.effective_to.isoformat() if self.effective_to else None,
            "sources": list(self.sources),
            "counts": dict(self.counts),
            "notes": list(self.notes),
        }
