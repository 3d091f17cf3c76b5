"""icd10cm_index: the ICD-10-CM index files as releases of their own.

NCHS ships four index XML files beside the tabular list (schema
``icd10cm_index.xsd`` / ``icd10cm_drug_neoplasm.xsd``, unchanged for years):

* ``index``    the Alphabetic Index to Diseases and Injuries
* ``eindex``   the External Cause of Injuries Index
* ``drug``     the Table of Drugs and Chemicals (substance x intent columns)
* ``neoplasm`` the Table of Neoplasms (site x behaviour columns)

Each is a tree ``letter > mainTerm > term(level=1..n)``; a term has a
``title`` (with an optional ``nemod``: nonessential modifiers in
parentheses), and optionally ``see`` / ``seeAlso`` cross-references,
``code``, ``manif`` (the manifestation code shown in brackets), ``seecat`` /
``subcat`` (a category or subcategory to consult) and ``cell`` elements
(one code per table column, ``--`` for none).

A release (``2017`` for ``icd10cm_*_2017.xml``, ``2026-04`` for
``icd10cm-*-April-1-2026-XML.xml``) holds whichever of the four books were
found for it, in two extra tables of the release file:

``index_term(id, book, parent, level, title, nemod, path, see, see_also)``
    every main term and subterm; ``path`` is the titles from the main term
    down, joined with `` > ``.
``index_code(term, role, col, heading, code)``
    every code a term states, as printed (``E11.9``, ``H93.29-``);
    ``role`` is code | manif | seecat | subcat | cell; ``col``/``heading``
    name the table column for the drug and neoplasm tables.

The concept table stays empty: these releases say where codes are, not what
they are. Counts are checked against the raw file (every ``<mainTerm>``,
``<term>`` and ``<cell>`` tag must have been parsed).

The XML walker here is shared with :mod:`medcodes.systems.icd10pcs_index`.
"""

from __future__ import annotations

import datetime as _dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import DataError
from ..model import ReleaseBuild, Table
from ..calendar import fiscal_year
from ..sources import Source, xml_kind
from . import Plan

SYSTEM = "icd10cm_index"

BOOKS = ("index", "eindex", "drug", "neoplasm")

_NAME = re.compile(
    r"^icd10cm[_-](index|eindex|drug|neoplasm)[_-](?:(\d{4})|([A-Za-z]+)-1-(\d{4})-XML)\.xml$",
    re.IGNORECASE,
)
_MONTHS = {"january": 1, "april": 4, "july": 7, "october": 10}

TERM_COLUMNS = ("id", "book", "parent", "level", "title", "nemod", "path", "see", "see_also")
CODE_COLUMNS = ("term", "role", "col", "heading", "code")
_CODE_ROLES = ("code", "manif", "seecat", "subcat")


# ---------------------------------------------------------------------- parsing
@dataclass
class ParsedIndex:
    """The rows of one index file, and what was counted while parsing it."""

    terms: list[tuple[Any, ...]] = field(default_factory=list)
    codes: list[tuple[Any, ...]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    version: str = ""


def clean(text: str | None) -> str:
    """Collapse runs of white space (the files have stray double spaces)."""
    return " ".join((text or "").split())


def title_parts(el: ET.Element | None) -> tuple[str, str]:
    """(title, nemod) of a ``title`` element: nemod is the parenthesised part."""
    if el is None:
        return "", ""
    main = [el.text or ""]
    nemod = []
    for child in el:
        if child.tag == "nemod":
            nemod.append(child.text or "")
        else:
            main.append(child.text or "")
        main.append(child.tail or "")
    return clean("".join(main)), clean(" ".join(nemod))


def own_text(el: ET.Element | None) -> str:
    """An element's text without its children's text (a PCS ``see`` holds ``<codes>``)."""
    if el is None:
        return ""
    return clean("".join([el.text or ""] + [c.tail or "" for c in el]))


def _diff_title(el: ET.Element) -> ET.Element | None:
    """Addenda files put the title in ``diff``; use its new/unchanged text."""
    diff = el.find("diff")
    if diff is None:
        return None
    fake = ET.Element("title")
    fake.text = "".join(
        (c.text or "") for c in diff if c.tag in ("new", "unc")
    ) or (diff.text or "")
    return fake


def parse_index_xml(
    source: Source,
    book: str,
    root_tag: str,
    extra: Callable[[ET.Element, int, list[tuple[Any, ...]], dict[str, int]], None] | None = None,
    start_id: int = 1,
) -> ParsedIndex:
    """Walk one index XML file into term and code rows (ids from ``start_id``)."""
    data = source.read_bytes()
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DataError(f"{source.display}: not well-formed XML ({exc})") from exc
    if root.tag != root_tag:
        raise DataError(f"{source.display}: root element is <{root.tag}>, expected <{root_tag}>")
    out = ParsedIndex(version=clean(root.findtext("version")))
    counts = {"main_terms": 0, "terms": 0, "codes": 0, "cells": 0, "see": 0, "see_also": 0}
    headings = {int(h.get("col", "0")): clean(h.text) for h in root.iter("head")}
    next_id = start_id

    def walk(el: ET.Element, parent: int | None, level: int, path: str) -> None:
        nonlocal next_id
        title, nemod = title_parts(el.find("title") if el.find("title") is not None else _diff_title(el))
        term_id = next_id
        next_id += 1
        full_path = f"{path} > {title}" if path else title
        see = own_text(el.find("see"))
        see_also = clean(el.findtext("seeAlso"))
        if see:
            counts["see"] += 1
        if see_also:
            counts["see_also"] += 1
        out.terms.append((term_id, book, parent, level, title, nemod, full_path, see or None, see_also or None))
        for role in _CODE_ROLES:
            for c in el.findall(role):
                code = clean(c.text)
                if code:
                    out.codes.append((term_id, role, None, None, code))
                    counts["codes"] += 1
        for cell in el.findall("cell"):
            counts["cells"] += 1
            code = clean("".join(cell.itertext()))
            col = int(cell.get("col", "0"))
            if code and code.strip("-"):
                out.codes.append((term_id, "cell", col, headings.get(col), code))
        if extra is not None:
            extra(el, term_id, out.codes, counts)
        for sub in el.findall("term"):
            counts["terms"] += 1
            walk(sub, term_id, level + 1, full_path)

    for letter in root.iter("letter"):
        for main in letter.findall("mainTerm"):
            counts["main_terms"] += 1
            walk(main, None, 0, "")
    _check_counts(source, data, counts)
    out.counts = counts
    return out


def _check_counts(source: Source, data: bytes, counts: dict[str, int]) -> None:
    """Every tag in the raw file must have been parsed (guards against a lost subtree)."""
    for key, tag in (("main_terms", b"<mainTerm>"), ("terms", b"<term "), ("cells", b"<cell ")):
        raw = data.count(tag)
        if raw != counts[key]:
            raise DataError(
                f"{source.display}: parsed {counts[key]} {tag.decode()} elements but the file has {raw}"
            )
    if counts["main_terms"] == 0:
        raise DataError(f"{source.display}: no index terms (truncated or not an index file)")


# ---------------------------------------------------------------------- release plan
_IS_INDEX = xml_kind("ICD10CM.index")
_BOOK_HEAD = re.compile(rb'<head col="1">\s*(Substance|Neoplasm)', re.I)
_APRIL = re.compile(r"(?i)(?<![a-z])apr(?:il)?(?![a-z])")


def _release_by_content(src: Source) -> tuple[str, str, _dt.date, _dt.date] | None:
    """(book, release, effective_from, effective_to) from the file itself: root element
    ``<ICD10CM.index>``, ``<version>`` = fiscal year, the book from its column headings or
    title; an April 1 update says so in its file (or folder) name."""
    version = _IS_INDEX(src)
    if not version or not version.isdigit():
        return None
    head = src.head()
    m = _BOOK_HEAD.search(head)
    if m:
        book = "drug" if m.group(1).lower() == b"substance" else "neoplasm"
    elif b"EXTERNAL CAUSE" in head[:4096].upper():
        book = "eindex"
    else:
        book = "index"
    fy = int(version)
    start, end = fiscal_year(fy)
    if _APRIL.search(src.name) or _APRIL.search(src.path.parent.name):
        return book, f"{fy}-04", _dt.date(fy, 4, 1), end
    return book, str(fy), start, end


def _release_of(name: str) -> tuple[str, str, _dt.date, _dt.date] | None:
    """(book, release, effective_from, effective_to) for an index file name."""
    m = _NAME.match(name)
    if not m:
        return None
    book, fy, month, year = m.group(1).lower(), m.group(2), m.group(3), m.group(4)
    if fy:
        start, end = fiscal_year(int(fy))
        return book, fy, start, end
    mon = _MONTHS.get(month.lower())
    if mon is None:
        return None
    y = int(year)
    start = _dt.date(y, mon, 1)
    fy_num = y + 1 if mon >= 10 else y
    release = str(fy_num) if mon == 10 else f"{y}-{mon:02d}"
    return book, release, start, fiscal_year(fy_num)[1]


def plan(sources: list[Source]) -> list[Plan]:
    groups: dict[str, dict[str, Source]] = {}
    dates: dict[str, tuple[_dt.date, _dt.date]] = {}
    for src in sources:
        found = _release_by_content(src) or _release_of(src.name)
        if found is None:
            continue
        book, release, start, end = found
        groups.setdefault(release, {}).setdefault(book, src)
        dates[release] = (start, end)
    plans = []
    for release, books in sorted(groups.items()):
        start, end = dates[release]
        ordered = [books[b] for b in BOOKS if b in books]
        plans.append(Plan(SYSTEM, release, ordered, _builder(release, books, start, end)))
    return plans


def _builder(release: str, books: dict[str, Source], start: _dt.date, end: _dt.date) -> Callable[[], ReleaseBuild]:
    def build() -> ReleaseBuild:
        terms: list[tuple[Any, ...]] = []
        codes: list[tuple[Any, ...]] = []
        counts: dict[str, int] = {}
        for book in BOOKS:
            src = books.get(book)
            if src is None:
                continue
            parsed = parse_index_xml(src, book, "ICD10CM.index", start_id=len(terms) + 1)
            terms.extend(parsed.terms)
            codes.extend(parsed.codes)
            for k, v in parsed.counts.items():
                counts[f"{book}_{k}"] = v
        counts["terms"] = len(terms)
        counts["codes"] = len(codes)
        label = f"ICD-10-CM index files {release} ({', '.join(b for b in BOOKS if b in books)})"
        return ReleaseBuild(
            system=SYSTEM, release=release, label=label, effective_from=start, effective_to=end,
            sources=[books[b].ref() for b in BOOKS if b in books], concepts=[], counts=counts,
            tables=_tables(terms, codes),
        )

    return build


def _tables(terms: list[tuple[Any, ...]], codes: list[tuple[Any, ...]]) -> dict[str, Table]:
    return {
        "index_term": Table(TERM_COLUMNS, terms, indexes=(("book", "parent"),)),
        "index_code": Table(CODE_COLUMNS, codes, indexes=(("term",), ("code",))),
    }
