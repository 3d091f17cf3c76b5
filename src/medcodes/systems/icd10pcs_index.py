"""icd10pcs_index: the ICD-10-PCS Index (``icd10pcs_index_YYYY.xml``) as a release of its own.

The PCS index leads from words to tables: a term gives a full ``code``
(``10A07ZX``), the first four characters of codes (``codes``: ``0DTJ`` =
Resection of Appendix, pick approach/device/qualifier in the table), or a
three-character table (``tab``: ``0QT``). ``see`` points to another term and
usually carries its ``codes``/``tab`` inline (``Resection, Appendix
<codes>0DTJ</codes>``); ``use`` names the body-part or device key value to
use instead of the term (``Appendiceal orifice`` -> use ``Appendix``).

Stored in the release file (system ``icd10pcs_index``, release = the fiscal
year in the file name) as two extra tables:

``index_term(id, book, parent, level, title, nemod, path, see, use)``
``index_code(term, role, col, heading, code)`` with role code | codes | tab
(stated by the term), see_code | see_codes | see_tab (inside its ``see``) or
use_tab ... (inside its ``use``: ``Cardiac Lead, Pacemaker in <tab>02H</tab>``).

Counts are checked against the raw file: every ``<mainTerm>`` and ``<term>``
tag, and every ``<code>``/``<codes>``/``<tab>`` value, must have been parsed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Callable

from ..errors import DataError
from ..model import ReleaseBuild, Table
from ..calendar import fiscal_year
from ..sources import FileKind, Source, recognise, xml_kind
from . import Plan
from .icd10cm_index import clean, own_text, title_parts

SYSTEM = "icd10pcs_index"

_NAME = re.compile(r"^icd10pcs_index_(?P<year>\d{4})\.xml$", re.IGNORECASE)
#: The index file by content (root ``<ICD10PCS.index>``, ``<version>`` = fiscal year), else by name.
FILES = (FileKind("index", xml_kind("ICD10PCS.index"), _NAME),)
TERM_COLUMNS = ("id", "book", "parent", "level", "title", "nemod", "path", "see", "use")
CODE_COLUMNS = ("term", "role", "col", "heading", "code")
_VALUE_TAGS = ("code", "codes", "tab")


def parse(source: Source) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, int], str]:
    """Term rows, code rows, counts and the file's ``version``."""
    data = source.read_bytes()
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DataError(f"{source.display}: not well-formed XML ({exc})") from exc
    if root.tag != "ICD10PCS.index":
        raise DataError(f"{source.display}: root element is <{root.tag}>, expected <ICD10PCS.index>")
    terms: list[tuple[Any, ...]] = []
    codes: list[tuple[Any, ...]] = []
    counts = {"main_terms": 0, "terms": 0, "code": 0, "codes": 0, "tab": 0, "see": 0, "use": 0}

    def values(el: ET.Element, term_id: int, prefix: str) -> None:
        for tag in _VALUE_TAGS:
            for c in el.findall(tag):
                value = clean(c.text)
                if value:
                    codes.append((term_id, prefix + tag, None, None, value))
                    counts[tag] += 1

    def walk(el: ET.Element, parent: int | None, level: int, path: str) -> None:
        title, nemod = title_parts(el.find("title"))
        term_id = len(terms) + 1
        # Untitled subterms (a list of alternative `see`s) share their parent's path.
        full_path = (f"{path} > {title}" if path else title) if title else path
        see_el, use_el = el.find("see"), el.find("use")
        see, use = own_text(see_el), own_text(use_el)
        counts["see"] += bool(see)
        counts["use"] += bool(use)
        terms.append((term_id, "pcs", parent, level, title, nemod, full_path, see or None, use or None))
        values(el, term_id, "")
        if see_el is not None:
            values(see_el, term_id, "see_")
        if use_el is not None:
            values(use_el, term_id, "use_")
        for sub in el.findall("term"):
            counts["terms"] += 1
            walk(sub, term_id, level + 1, full_path)

    for letter in root.iter("letter"):
        for main in letter.findall("mainTerm"):
            counts["main_terms"] += 1
            walk(main, None, 0, "")
    _check(source, data, counts)
    return terms, codes, counts, clean(root.findtext("version"))


def _check(source: Source, data: bytes, counts: dict[str, int]) -> None:
    expected = {
        "main_terms": data.count(b"<mainTerm>"), "terms": data.count(b"<term "),
        "code": data.count(b"<code>"), "codes": data.count(b"<codes>"), "tab": data.count(b"<tab>"),
    }
    for key, raw in expected.items():
        if counts[key] != raw:
            raise DataError(f"{source.display}: parsed {counts[key]} <{key}> values but the file has {raw}")
    if counts["main_terms"] == 0:
        raise DataError(f"{source.display}: no index terms (truncated or not an index file)")


def plan(sources: list[Source]) -> list[Plan]:
    seen: dict[str, Source] = {}
    for f in recognise(sources, FILES):
        if f.year is not None:
            seen.setdefault(str(f.year), f.source)
    return [Plan(SYSTEM, fy, [src], _builder(fy, src)) for fy, src in sorted(seen.items())]


def _builder(fy: str, src: Source) -> Callable[[], ReleaseBuild]:
    def build() -> ReleaseBuild:
        terms, codes, counts, version = parse(src)
        if version and version != fy:
            raise DataError(f"{src.display}: <version> says {version} but the file name says {fy}")
        start, end = fiscal_year(int(fy))
        counts = dict(counts, rows=len(terms), code_rows=len(codes))
        return ReleaseBuild(
            system=SYSTEM, release=fy, label=f"ICD-10-PCS Index FY{fy}",
            effective_from=start, effective_to=end, sources=[src.ref()], concepts=[], counts=counts,
            tables={
                "index_term": Table(TERM_COLUMNS, terms, indexes=(("parent",),)),
                "index_code": Table(CODE_COLUMNS, codes, indexes=(("term",), ("code",))),
            },
        )

    return build
