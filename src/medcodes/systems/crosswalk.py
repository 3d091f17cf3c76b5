"""Crosswalks between code sets: the General Equivalence Mappings (GEMs) and the ICD-10-CM conversion table.

GEMs (CMS and CDC/NCHS; the 2018 files are the last ones published) come as
four plain-text files, one mapping entry per line: source code, target code,
then five flag digits — approximate, no map, combination, scenario, choice
list. No-map entries carry ``NoDx`` / ``NoPCS`` as the target.

=================  ====================================  ===============
direction          file                                  agency package
=================  ====================================  ===============
``i9-i10cm``       ``2018_I9gem.txt`` (forward, dx)      Dxgem_2018.zip
``i10cm-i9``       ``2018_I10gem.txt`` (backward, dx)    Dxgem_2018.zip
``i9-i10pcs``      ``gem_i9pcs.txt`` (forward, proc)     PCS GEMs zip
``i10pcs-i9``      ``gem_pcsi9.txt`` (backward, proc)    PCS GEMs zip
=================  ====================================  ===============

They make the release ``gem-YYYY`` with a ``gem`` table. The CDC
``ICD-10-CM-CONVERSION-TABLE-FYyyyy.xlsx`` (each code added since FY2016,
the date it took effect and the code(s) it replaced) makes the release
``conversion-yyyy`` with a ``conversion`` table and a ``conversion_link``
table (one row per previous code or code range named in the text).
"""

from __future__ import annotations

import datetime as _dt
import re
from functools import lru_cache
from typing import Any, Iterator, NamedTuple

from ..errors import DataError
from ..model import Concept, ReleaseBuild, Table, normalize_key
from ..calendar import fiscal_year
from ..sources import Source, all_match, records
from . import Plan

SYSTEM = "crosswalk"

NO_MAP_TARGETS = {"NODX", "NOPCS", "NOI9"}

DIRECTIONS: dict[str, tuple[str, str, str]] = {
    # direction: (source system, target system, title)
    "i9-i10cm": ("icd9cm", "icd10cm", "ICD-9-CM diagnoses to ICD-10-CM (forward GEM)"),
    "i10cm-i9": ("icd10cm", "icd9cm", "ICD-10-CM to ICD-9-CM diagnoses (backward GEM)"),
    "i9-i10pcs": ("icd9cm", "icd10pcs", "ICD-9-CM procedures to ICD-10-PCS (forward GEM)"),
    "i10pcs-i9": ("icd10pcs", "icd9cm", "ICD-10-PCS to ICD-9-CM procedures (backward GEM)"),
}
REVERSE = {"i9-i10cm": "i10cm-i9", "i10cm-i9": "i9-i10cm",
           "i9-i10pcs": "i10pcs-i9", "i10pcs-i9": "i9-i10pcs"}

GEM_COLUMNS = ("direction", "source", "target", "approximate", "no_map", "combination",
               "scenario", "choice_list")
FINAL_GEM_YEAR = 2018

_DX_GEM_RE = re.compile(r"^(\d{4})_I(9|10)gem\.txt$", re.IGNORECASE)
_PCS_GEM_RE = re.compile(r"^gem_(i9pcs|pcsi9)\.txt$", re.IGNORECASE)
_CONV_RE = re.compile(r"^ICD-10-CM[-_ ]CONVERSION[-_ ]TABLE[-_ ]FY(\d{4})\.xlsx$", re.IGNORECASE)
_GEM_LINE_RE = re.compile(r"^([0-9A-Z]{3,7})\s+([0-9A-Za-z]{3,7})\s+([01]{3}\d\d)\s*$")
_YEAR_RE = re.compile(r"(?<!\d)(20[1-9]\d)(?!\d)")


# ============================================================== GEM files
class GemRow(NamedTuple):
    """One GEM entry, in the column order of the ``gem`` table."""

    direction: str
    source: str
    target: str
    approximate: int
    no_map: int
    combination: int
    scenario: int
    choice_list: int


def parse_gem_line(line: str, direction: str, where: str) -> GemRow:
    """One GEM entry; ``where`` (file and line) goes into the DataError message.

    Targets are kept as shipped except for case: the agency file has ``v5889``
    once (2018_I10gem.txt), stored as ``V5889``; the no-map placeholders
    ``NoDx``, ``NoPCS``, ``NoI9`` keep their spelling.
    """
    row = _parse_line(line, direction)
    if row is None:
        raise DataError(f"{where}: not 'source target flags': {line[:40]!r}")
    return row


def _parse_line(line: str, direction: str) -> GemRow | None:
    m = _GEM_LINE_RE.match(line)
    if not m:
        return None
    src, tgt, flags = m.groups()
    if tgt.upper() not in NO_MAP_TARGETS:
        tgt = tgt.upper()
    return GemRow(direction, src, tgt, *_flag_digits(flags))


@lru_cache(maxsize=None)
def _flag_digits(flags: str) -> tuple[int, ...]:
    return tuple(int(ch) for ch in flags)


def oddities(row: GemRow) -> list[str]:
    """Flag combinations the GEM documentation rules out but the agency files do contain."""
    out = []
    if bool(row.no_map) != (row.target.upper() in NO_MAP_TARGETS):
        out.append("no-map flag vs target")
    if not row.combination and (row.scenario or row.choice_list):
        out.append("scenario/choice without combination flag")
    if row.combination and not (row.scenario and row.choice_list):
        out.append("combination without scenario/choice")
    return out


def parse_gem(src: Source, direction: str) -> list[GemRow]:
    """Every entry of one GEM file; any line that does not parse is a DataError."""
    data = src.read_bytes()
    if not data.strip():
        raise DataError(f"{src.display}: empty file")
    if not data.endswith(b"\n"):
        raise DataError(f"{src.display}: last line has no line ending (truncated file)")
    rows: list[GemRow] = []
    for lineno, line in enumerate(data.decode("ascii", errors="replace").splitlines(), 1):
        row = _parse_line(line, direction)
        if row is None:
            what = "is blank" if not line.strip() else f"is not 'source target flags': {line[:40]!r}"
            raise DataError(f"{src.display} line {lineno} {what}")
        rows.append(row)
    return rows


def _gem_by_content(src: Source) -> str | None:
    """The direction of a GEM file told by its records ("source target flags"), else None.

    ICD-10-CM codes start with a letter, ICD-10-PCS codes have 7 characters, ICD-9-CM
    diagnoses and procedures are digits (or V/E): the source column says which GEM it is,
    the target column (PCS or CM) for the two from ICD-9-CM.
    """
    got = all_match(_GEM_LINE_RE, records(src, 200), at_least=5)
    if got is None:
        return None
    sources = [m.group(1) for m in got]
    targets = [m.group(2) for m in got if not m.group(2).startswith("No")]
    if all(c[0].isalpha() for c in sources):  # (an ICD-9-CM GEM, sorted, opens with digits)
        return "i10cm-i9"
    if all(len(c) == 7 for c in sources):
        return "i10pcs-i9"
    if targets and all(len(c) == 7 for c in targets):
        return "i9-i10pcs"
    return "i9-i10cm"


def _gem_direction(src: Source) -> tuple[str, int | None] | None:
    """(direction, year or None) when ``src`` is a GEM file, by its records, else by its name."""
    direction = _gem_by_content(src)
    if direction is not None:
        m = _DX_GEM_RE.match(src.name)
        years = [int(m.group(1))] if m else src.years()
        return direction, (years[0] if years else None)
    m = _DX_GEM_RE.match(src.name)
    if m:
        return ("i9-i10cm" if m.group(2) == "9" else "i10cm-i9"), int(m.group(1))
    m = _PCS_GEM_RE.match(src.name)
    if m:
        year = _YEAR_RE.findall(src.display)  # e.g. 2018-icd-10-pcs-...zip!gem_i9pcs.txt
        return ("i9-i10pcs" if m.group(1).lower() == "i9pcs" else "i10pcs-i9"), \
            (int(year[-1]) if year else None)
    return None


def _gem_label(year: int) -> str:
    return f"GEMs {year} (final)" if year == FINAL_GEM_YEAR else f"GEMs {year}"


def _build_gems(year: int, files: dict[str, Source]) -> ReleaseBuild:
    rows: list[GemRow] = []
    counts: dict[str, int] = {}
    concepts: list[Concept] = []
    notes: list[str] = []
    for direction in DIRECTIONS:
        src = files.get(direction)
        if src is None:
            continue
        got = parse_gem(src, direction)
        counts[direction] = len(got)
        counts[f"{direction} sources"] = len({r.source for r in got})
        counts[f"{direction} no-map"] = sum(r.no_map for r in got)
        odd = [(r, why) for r in got for why in oddities(r)]
        if odd:
            counts[f"{direction} odd flags"] = len(odd)
            notes.append(f"{src.display}: {len(odd)} entries with flags that disagree (kept as shipped): "
                         + "; ".join(f"{r.source}->{r.target} {why}" for r, why in odd[:10])
                         + (" ..." if len(odd) > 10 else ""))
        rows.extend(got)
        concepts.append(Concept(code=direction, title=f"{DIRECTIONS[direction][2]}: {src.name}",
                                kind="gem", attrs={"file": src.display, "entries": len(got)}))
    missing = [d for d in DIRECTIONS if d not in files]
    start, end = fiscal_year(year)
    sources = [files[d] for d in DIRECTIONS if d in files]
    return ReleaseBuild(
        system=SYSTEM, release=f"gem-{year}", label=_gem_label(year),
        effective_from=start, effective_to=end,
        sources=[s.ref() for s in sources], concepts=concepts, counts=counts,
        tables={"gem": Table(GEM_COLUMNS, rows,
                             indexes=(("direction", "source"), ("direction", "target")))},
        notes=notes + [f"GEM file for {d} not found in this pull" for d in missing],
    )


def _gem_plans(sources: list[Source]) -> list[Plan]:
    by_year: dict[int, dict[str, Source]] = {}
    undated: list[tuple[str, Source]] = []
    for src in sources:
        hit = _gem_direction(src)
        if hit is None:
            continue
        direction, year = hit
        if year is None:
            undated.append((direction, src))
        else:
            by_year.setdefault(year, {})[direction] = src
    for direction, src in undated:
        # PCS GEM names carry no year: join the diagnosis GEMs of the pull, else the final (2018) GEMs
        year = max(by_year) if by_year else FINAL_GEM_YEAR
        by_year.setdefault(year, {})[direction] = src
    return [Plan(SYSTEM, f"gem-{year}", [files[d] for d in DIRECTIONS if d in files],
                 lambda y=year, f=dict(files): _build_gems(y, f))
            for year, files in sorted(by_year.items())]


# ============================================================== conversion table
CONVERSION_COLUMNS = ("code", "key", "effective", "effective_text", "previous")
LINK_COLUMNS = ("key", "code", "effective", "previous_key", "previous_hi", "previous")

_HEADER = ("current code assignment", "effective", "previous code(s) assignment")
_CODE_TOKEN = r"[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?"
_PREV_RE = re.compile(rf"({_CODE_TOKEN})(?:\.-)?(?:\s*-\s*({_CODE_TOKEN}))?")


def icd10cm_display(code: str) -> str:
    """E119 -> E11.9 (codes of the conversion table mostly carry the dot already)."""
    key = normalize_key(code)
    return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


def _effective(value: Any, where: str) -> tuple[_dt.date, str]:
    """The table's Effective column: a year (= October 1 of that year) or an exact date."""
    if isinstance(value, _dt.datetime):
        return value.date(), value.date().isoformat()
    if isinstance(value, _dt.date):
        return value, value.isoformat()
    text = str(value).strip() if value is not None else ""
    if re.fullmatch(r"\d{4}", text):
        return _dt.date(int(text), 10, 1), text
    raise DataError(f"{where}: effective date {value!r} is neither a year nor a date")


def previous_links(text: str) -> list[tuple[str, str | None]]:
    """The codes and ranges a 'Previous Code(s) Assignment' text names: (low key, high key or None).

    'C50.919, C50.929' -> two codes; 'H02.101-H02.106; H02.109' -> a range and a
    code; 'Codes in Categories T15-T19' -> a range of categories; 'None' -> nothing.
    """
    out = []
    for m in _PREV_RE.finditer(text.upper()):
        lo = normalize_key(m.group(1))
        hi = normalize_key(m.group(2)) if m.group(2) else None
        out.append((lo, hi))
    return out


def _conversion_rows(src: Source) -> Iterator[tuple[int, list[Any]]]:
    """(spreadsheet row number, [code, effective, previous]) for each row under the header."""
    from ..xlsx import sheet_rows

    rows = sheet_rows(src)
    header_at = _find_header(rows, src)
    for i, row in enumerate(rows[header_at + 1:], header_at + 2):
        cells = (list(row) + [None, None, None])[:3]
        if all(c is None or str(c).strip() == "" for c in cells):
            continue
        yield i, cells


def _find_header(rows: list[tuple[Any, ...]], src: Source) -> int:
    for i, row in enumerate(rows[:20]):
        names = tuple(str(c).strip().lower() if c is not None else "" for c in row[:3])
        if names == _HEADER:
            return i
    raise DataError(f"{src.display}: header row 'Current code assignment | Effective | "
                    "Previous Code(s) Assignment' not found")


def _build_conversion(fy: int, src: Source) -> ReleaseBuild:
    table: list[tuple[Any, ...]] = []
    links: list[tuple[Any, ...]] = []
    seen: set[tuple[str, str, str]] = set()
    repeated = 0
    for rowno, (code, eff, prev) in _conversion_rows(src):
        where = f"{src.display} row {rowno}"
        if code is None or prev is None or not str(code).strip():
            raise DataError(f"{where}: incomplete row ({code!r}, {eff!r}, {prev!r})")
        key = normalize_key(str(code))
        if not key.isalnum():
            raise DataError(f"{where}: {code!r} is not a code")
        day, eff_text = _effective(eff, where)
        display = icd10cm_display(key)
        prev_text = " ".join(str(prev).split())
        if (key, eff_text, prev_text) in seen:
            repeated += 1  # the FY2026 table lists O44.20..O44.33 twice, identically
            continue
        seen.add((key, eff_text, prev_text))
        table.append((display, key, day.isoformat(), eff_text, prev_text))
        for lo, hi in previous_links(prev_text):
            links.append((key, display, day.isoformat(), lo, hi,
                          icd10cm_display(lo) + (f"-{icd10cm_display(hi)}" if hi else "")))
    if not table:
        raise DataError(f"{src.display}: no rows under the header (truncated file)")
    start, end = fiscal_year(fy)
    return ReleaseBuild(
        system=SYSTEM, release=f"conversion-{fy}", label=f"ICD-10-CM conversion table FY{fy}",
        effective_from=start, effective_to=end, sources=[src.ref()],
        concepts=[Concept(code="conversion", kind="conversion", title=f"ICD-10-CM conversion table FY{fy}: "
                          "new codes since FY2016 and the codes they replaced", attrs={"file": src.display})],
        counts={"codes": len(table), "links": len(links),
                "without previous": sum(1 for r in table if r[4].upper() == "NONE"),
                "repeated rows": repeated},
        tables={"conversion": Table(CONVERSION_COLUMNS, table, indexes=(("key",),)),
                "conversion_link": Table(LINK_COLUMNS, links, indexes=(("previous_key",), ("key",)))},
    )


def _conversion_plans(sources: list[Source]) -> list[Plan]:
    plans = []
    for src in sources:
        m = _CONV_RE.match(src.name)
        if m:
            fy = int(m.group(1))
            plans.append(Plan(SYSTEM, f"conversion-{fy}", [src],
                              lambda fy=fy, s=src: _build_conversion(fy, s)))
    return plans


# ============================================================== interface
def plan(sources: list[Source]) -> list[Plan]:
    """A ``gem-YYYY`` release per GEM year found and a ``conversion-YYYY`` per conversion table."""
    return _gem_plans(sources) + _conversion_plans(sources)
