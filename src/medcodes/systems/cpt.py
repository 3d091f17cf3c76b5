"""CPT (HCPCS Level I): code grammar and structure, and loading a licensee's own CPT file.

CPT is the AMA's copyrighted code set: no CPT data ships with medcodes and none
comes from the agencies' folders (``plan`` returns nothing). What is public is
its *shape*: Category I codes are 5 digits, grouped in sections by range;
Category II codes are 4 digits + ``F`` (performance measurement); Category III
codes are 4 digits + ``T`` (emerging technology); CPT modifiers are 2 digits.

A licensee can load their own file with :func:`load_csv` (``medcodes pull
--cpt FILE``): a CSV of code, descriptor[, short descriptor], header row
optional, ``#`` comment lines allowed, BOM/CRLF/quoted commas tolerated.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import os
import re
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..model import Concept, ReleaseBuild, SourceRef
from ..sources import Source
from . import Plan, Reading

SYSTEM = "cpt"

CAT1_RE = re.compile(r"^[0-9]{5}$")
CAT2_RE = re.compile(r"^[0-9]{4}F$")
CAT3_RE = re.compile(r"^[0-9]{4}T$")
MODIFIER_RE = re.compile(r"^[0-9]{2}$")

CATEGORY_TITLES = {
    "I": "Category I: procedures and services",
    "II": "Category II: performance measurement (tracking codes)",
    "III": "Category III: emerging technology (temporary codes)",
}

# Category I sections by code range (E/M comes first in the book though its numbers are highest).
SECTIONS: tuple[tuple[str, str, tuple[tuple[int, int], ...]], ...] = (
    ("EM", "Evaluation and Management", ((99202, 99499),)),
    ("ANESTHESIA", "Anesthesia", ((100, 1999),)),
    ("SURGERY", "Surgery", ((10004, 69990),)),
    ("RADIOLOGY", "Radiology", ((70010, 79999),)),
    ("PATHLAB", "Pathology and Laboratory", ((80047, 89398),)),
    ("MEDICINE", "Medicine", ((90281, 99199), (99500, 99607))),
)

YEAR_RE = re.compile(r"(?<![0-9])((?:19|20)[0-9]{2})(?![0-9])")


# --------------------------------------------------------------------------- grammar
def category(code: str) -> str | None:
    """'I', 'II' or 'III' for a CPT code's shape, else None."""
    if CAT1_RE.match(code):
        return "I"
    if CAT2_RE.match(code):
        return "II"
    if CAT3_RE.match(code):
        return "III"
    return None


def section(code: str) -> dict[str, Any] | None:
    """The Category I section whose range holds ``code`` (None outside every range)."""
    if not CAT1_RE.match(code):
        return None
    n = int(code)
    for key, title, ranges in SECTIONS:
        for lo, hi in ranges:
            if lo <= n <= hi:
                return {"key": key, "title": title, "range": f"{lo:05d}-{hi:05d}"}
    return None


def readings(key: str) -> list[Reading]:
    """5 digits: Category I; NNNNF: Category II; NNNNT: Category III; 2 digits: a CPT modifier."""
    cat = category(key)
    if cat == "I":
        sec = section(key)
        note = f"CPT Category I ({sec['title']})" if sec else "CPT Category I shape (outside the section ranges)"
        return [Reading(key, 0.9 if sec else 0.6, "code", note, {"category": "I"})]
    if cat == "II":
        return [Reading(key, 0.9, "code", "CPT Category II (performance measurement)", {"category": "II"})]
    if cat == "III":
        return [Reading(key, 0.9, "code", "CPT Category III (emerging technology)", {"category": "III"})]
    if MODIFIER_RE.match(key):
        return [Reading(key, 0.7, "modifier", "CPT modifier (2 digits)")]
    return []


def structure(code: str, db: Any) -> dict[str, Any]:
    """Category (and its title) and, for Category I, the section by range; modifiers say so."""
    key = code.strip().upper()
    if MODIFIER_RE.match(key):
        return {"kind": "modifier", "note": "CPT modifier (2 digits)"}
    cat = category(key)
    if cat is None:
        return {}
    out: dict[str, Any] = {"category": cat, "category_title": CATEGORY_TITLES[cat]}
    if cat == "I":
        sec = section(key)
        out["section"] = sec if sec else {"key": None, "title": None,
                                          "note": "outside the published Category I section ranges"}
    return out


def enrich(record: dict[str, Any], row: Any, db: Any) -> None:
    """Nothing to add: a licensee's file carries only descriptors (already the titles)."""
    return None


def plan(sources: list[Source]) -> list[Plan]:
    """CPT never comes from the agencies' folders (AMA copyright): see :func:`load_csv`."""
    return []


# --------------------------------------------------------------------------- licensee file
def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path.name}: cannot be read ({exc.strerror or exc})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _is_header(cells: list[str]) -> bool:
    first = cells[0].strip().upper() if cells else ""
    return bool(first) and not any(ch.isdigit() for ch in first)


def _default_release(path: Path) -> str:
    m = YEAR_RE.search(path.stem)
    return m.group(1) if m else "licensed"


def _year_for(release: str, path: Path) -> int | None:
    for text in (release, path.stem):
        m = YEAR_RE.search(text)
        if m:
            return int(m.group(1))
    return None


def _rows(text: str, name: str) -> list[tuple[int, str, str, str | None]]:
    """(line, code, descriptor, short descriptor) for every data row, validated."""
    out: list[tuple[int, str, str, str | None]] = []
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    first = True
    for cells in reader:
        line = reader.line_num
        if not cells or not any(c.strip() for c in cells):
            continue
        if cells[0].lstrip().startswith("#"):
            continue
        if first:
            first = False
            if _is_header(cells):
                continue
        while cells and not cells[-1].strip():
            cells.pop()
        if len(cells) < 2 or len(cells) > 3:
            raise DataError(f"{name}: line {line}: want code, descriptor[, short descriptor]; "
                            f"got {len(cells)} columns")
        code = cells[0].strip().upper()
        if category(code) is None and not MODIFIER_RE.match(code):
            raise DataError(f"{name}: line {line}: {cells[0].strip()!r} is not a CPT code "
                            "(5 digits, 4 digits + F, 4 digits + T, or a 2-digit modifier)")
        if code in seen:
            raise DataError(f"{name}: line {line}: {code} already given on line {seen[code]}")
        seen[code] = line
        desc = cells[1].strip()
        if not desc:
            raise DataError(f"{name}: line {line}: {code} has no descriptor")
        short = cells[2].strip() if len(cells) == 3 and cells[2].strip() else None
        out.append((line, code, desc, short))
    return out


def _concepts(rows: list[tuple[int, str, str, str | None]]) -> tuple[list[Concept], dict[str, int]]:
    codes: list[Concept] = []
    used_sections: set[str] = set()
    used_cats: set[str] = set()
    counts = {"category_i": 0, "category_ii": 0, "category_iii": 0, "modifiers": 0}
    for _line, code, desc, short in rows:
        if MODIFIER_RE.match(code):
            codes.append(Concept(code, desc, "modifier", None, None, short))
            counts["modifiers"] += 1
            continue
        cat = category(code)
        assert cat is not None
        counts[f"category_{cat.lower()}"] += 1
        attrs: dict[str, Any] = {"category": cat}
        parent = f"CATEGORY-{cat}"
        sec = section(code) if cat == "I" else None
        if sec:
            attrs["section"] = sec["title"]
            parent = sec["key"]
            used_sections.add(sec["key"])
        used_cats.add(cat)
        codes.append(Concept(code, desc, "code", True, parent, short, attrs))
    heads = [Concept(f"CATEGORY-{c}", CATEGORY_TITLES[c], "category", attrs={"category": c})
             for c in ("I", "II", "III") if c in used_cats or (c == "I" and used_sections)]
    for key, title, ranges in SECTIONS:
        if key in used_sections:
            span = ", ".join(f"{lo:05d}-{hi:05d}" for lo, hi in ranges)
            heads.append(Concept(key, title, "section", None, "CATEGORY-I", None,
                                 {"ranges": span}, key=key))
    counts["codes"] = counts["category_i"] + counts["category_ii"] + counts["category_iii"]
    return heads + codes, counts


def load_csv(path: str | os.PathLike[str], release: str | None = None) -> ReleaseBuild:
    """Build a CPT release from a licensee's CSV (DataError naming the file and line on a bad row)."""
    p = Path(path)
    text = _read_text(p)
    rows = _rows(text, p.name)
    if not rows:
        raise DataError(f"{p.name}: no CPT rows found")
    rel = release or _default_release(p)
    year = _year_for(rel, p)
    start = _dt.date(year, 1, 1) if year else _dt.date(_dt.date.today().year, 1, 1)
    end = _dt.date(year, 12, 31) if year else None
    concepts, counts = _concepts(rows)
    data = p.read_bytes()
    return ReleaseBuild(
        system=SYSTEM,
        release=rel,
        label=f"CPT (licensee file {p.name})",
        effective_from=start,
        effective_to=end,
        sources=[SourceRef(p.name, hashlib.sha256(data).hexdigest(), len(data))],
        concepts=concepts,
        counts=counts,
        notes=[f"{len(rows)} rows loaded from the licensee's file {p.name}; "
               "CPT is (c) American Medical Association"],
    )
