"""ICD-10-CM: the code grammar, the chapter/block structure, and the parsers of NCHS/CMS files.

Files read, as the agencies ship them (zip members included):

* the CMS order file ``icd10cm_order_YYYY.txt`` (fixed width: order number,
  code without dot, billable flag, short title, long title) -- the code list,
  titles and billable flags of the October release of fiscal year YYYY;
  cross-checked against ``icd10cm_codes_YYYY.txt`` (the billable codes) when
  that file sits in the same folder/zip;
* the CDC tabular XML (``icd10cm_tabular_YYYY.xml``, or the April update
  ``icd10c[m]-tabular-April-1-YYYY.xml``): chapters, sections (blocks), the
  ``diag`` tree, every instructional note and the 7th-character rules
  (``sevenChrDef``, inherited by descendants and expanded into codes here).

Releases (see :func:`plan`): ``YYYY`` (October 1 of YYYY-1) from the order file,
enriched from a tabular XML of the same fiscal year when there is one;
``YYYY-04`` (April 1 update) from an April tabular XML alone; ``YYYY`` from a
full-year tabular XML alone when no order file of that year exists.
"""

from __future__ import annotations

import datetime as _dt
import re
import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import DataError
from ..model import Concept, ReleaseBuild, normalize_key
from ..calendar import fiscal_year
from ..sources import FileKind, Source, all_match, recognise, records, xml_kind
from ..store import row_attrs
from . import Plan, Reading

SYSTEM = "icd10cm"

# ----------------------------------------------------------------- file names
_ORDER_RE = re.compile(r"^icd10cm[_-]order[_-](?P<year>\d{4})\.txt$", re.I)
_CODES_RE = re.compile(r"^icd10cm[_-]codes[_-](?P<year>\d{4})\.txt$", re.I)
_ADDENDA_RE = re.compile(r"^icd10cm[_-]order[_-]addenda[_-](?P<year>\d{4})\.txt$", re.I)
_TABULAR_RE = re.compile(r"^icd10cm?[_-]tabular[_-](?:april-(?:1-)?)?(?P<year>\d{4})(?:-xml)?\.xml$", re.I)

#: Order-file sizes published with the release (rows, billable codes); a file
#: of a listed year that parses to other counts is truncated or not the agency's.
AGENCY_ORDER_COUNTS: dict[int, tuple[int, int]] = {
    2025: (97_584, 74_260),
    2026: (98_186, 74_719),
}

#: Note kinds of the tabular XML, in the order they are reported.
NOTE_KINDS = ("inclusionTerm", "includes", "excludes1", "excludes2", "codeFirst",
              "useAdditionalCode", "codeAlso", "notes")
#: Note kinds that apply to every code below the node where they are stated.
INHERITED_KINDS = frozenset(NOTE_KINDS) - {"inclusionTerm"}

#: The 22 chapters by code range (for :func:`structure` when no release is installed).
CHAPTERS: tuple[tuple[int, str, str, str], ...] = (
    (1, "A00", "B99", "Certain infectious and parasitic diseases"),
    (2, "C00", "D49", "Neoplasms"),
    (3, "D50", "D89", "Diseases of the blood and blood-forming organs and certain disorders involving the immune mechanism"),
    (4, "E00", "E89", "Endocrine, nutritional and metabolic diseases"),
    (5, "F01", "F99", "Mental, Behavioral and Neurodevelopmental disorders"),
    (6, "G00", "G99", "Diseases of the nervous system"),
    (7, "H00", "H59", "Diseases of the eye and adnexa"),
    (8, "H60", "H95", "Diseases of the ear and mastoid process"),
    (9, "I00", "I99", "Diseases of the circulatory system"),
    (10, "J00", "J99", "Diseases of the respiratory system"),
    (11, "K00", "K95", "Diseases of the digestive system"),
    (12, "L00", "L99", "Diseases of the skin and subcutaneous tissue"),
    (13, "M00", "M99", "Diseases of the musculoskeletal system and connective tissue"),
    (14, "N00", "N99", "Diseases of the genitourinary system"),
    (15, "O00", "O9A", "Pregnancy, childbirth and the puerperium"),
    (16, "P00", "P96", "Certain conditions originating in the perinatal period"),
    (17, "Q00", "QA0", "Congenital malformations, deformations and chromosomal abnormalities"),
    (18, "R00", "R99", "Symptoms, signs and abnormal clinical and laboratory findings, not elsewhere classified"),
    (19, "S00", "T88", "Injury, poisoning and certain other consequences of external causes"),
    (20, "V00", "Y99", "External causes of morbidity"),
    (21, "Z00", "Z99", "Factors influencing health status and contact with health services"),
    (22, "U00", "U85", "Codes for special purposes"),
)

# Letter, then (almost always) a digit, then alphanumerics; FY2025 added QA0, whose
# second character is a letter, so the grammar accepts a letter there (at a lower score).
_GRAMMAR = re.compile(r"^[A-Z][0-9A-Z][A-Z0-9][A-Z0-9]{0,4}$")
_HCPCS_SHAPE = re.compile(r"^[A-Z][0-9]{4}$")


# ================================================================= the grammar
def dotted(key: str) -> str:
    """``E1165`` -> ``E11.65``; three characters stay as they are."""
    return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


def readings(key: str) -> list[Reading]:
    """The ICD-10-CM reading of ``key`` (letter, digit, alphanumeric, up to 4 more)."""
    if not _GRAMMAR.match(key):
        return []
    score, note = 0.9, "ICD-10-CM shape"
    if len(key) == 3:
        score, note = 0.85, "ICD-10-CM category shape"
    if key[1].isalpha():
        score, note = 0.5, "ICD-10-CM shape with a letter second (rare: QA0)"
    if _HCPCS_SHAPE.match(key):
        score, note = 0.6, "ICD-10-CM shape, also the shape of a HCPCS Level II code"
    if len(key) == 7 and "X" in key[3:6] and key[6] != "X":
        note = "ICD-10-CM shape with placeholder X before a 7th character"
    kind = "category" if len(key) == 3 else "code"
    return [Reading(code=dotted(key), score=score, kind=kind, note=note)]


def _chapter_for(category: str) -> tuple[int, str, str, str] | None:
    for number, first, last, title in CHAPTERS:
        if first <= category <= last:
            return number, first, last, title
    return None


def structure(code: str, db: Any) -> dict[str, Any]:
    """Chapter (number, title, range) and block (range, title) of ``code``."""
    key = normalize_key(code)
    if db is not None:
        found = _structure_from_db(key, db)
        if found:
            return found
    ch = _chapter_for(key[:3])
    if ch is None:
        return {}
    number, first, last, title = ch
    return {"chapter": {"number": number, "title": title, "range": f"{first}-{last}"}}


def _structure_from_db(key: str, db: Any) -> dict[str, Any]:
    row = None
    for n in range(len(key), 2, -1):  # a code not in the release still has a chapter
        row = db.get(key[:n])
        if row is not None:
            break
    if row is None:
        return {}
    above = _structure_above(db, row["parent"])
    out = {k: dict(v) for k, v in above.items()}            # the caller's own copy
    if row["kind"] in ("chapter", "block"):
        out.update(_chapter_and_block([row]))
    return out


def _structure_above(db: Any, key: str | None, depth: int = 0) -> dict[str, Any]:
    """Chapter and block of ``key`` and its ancestors: the parent's (memoised) value updated
    with ``key``'s own, so walking every code reads each node once. Read-only."""
    if not key or depth > 64:                     # no tree is that deep: a damaged parent chain
        return {}

    def make() -> dict[str, Any]:
        node = db.get(key)
        if node is None:
            return {}
        own = _chapter_and_block([node])
        up = _structure_above(db, node["parent"], depth + 1)
        return {**up, **own} if own else up

    return db.memo("icd10cm.structure", key, make)


def _chapter_and_block(rows: list[Any]) -> dict[str, Any]:
    """The chapter and (innermost) block among ``rows``, top down."""
    out: dict[str, Any] = {}
    for anc in rows:
        if anc["kind"] == "chapter":
            attrs = row_attrs(anc)
            out["chapter"] = {"number": attrs.get("number"), "title": anc["title"],
                              "range": attrs.get("range")}
        elif anc["kind"] == "block":
            out["block"] = {"range": anc["code"], "title": anc["title"]}  # innermost wins
    return out


def enrich(record: dict[str, Any], row: sqlite3.Row, db: Any) -> None:
    """Add notes (own and inherited) and the 7th-character meaning (chapter and block are in structure).

    What a parent passes down is computed once per parent and release; its note
    dicts are shared between records (read-only, like :func:`row_attrs`).
    """
    above = _inherited(db, row["parent"]) if db is not None else _NOTHING
    notes = list(above.notes)
    attrs = row_attrs(row)
    for kind, texts in attrs.get("notes", {}).items():
        notes.extend({"kind": kind, "text": t, "from": row["code"], "inherited": False}
                     for t in texts)
    record["notes"] = notes
    if "seventh" in attrs:
        record["seventh_character"] = dict(attrs["seventh"])
    elif "seven_chr_def" in attrs:
        record["seven_chr_def"] = _seven(attrs, row["code"], False)
    elif above.seven is not None:
        record["seven_chr_def"] = dict(above.seven)


@dataclass(frozen=True, slots=True)
class _Inherited:
    """What a node passes down to the codes below it: the notes of itself and its
    ancestors (top down) and the nearest 7th-character rule."""

    notes: tuple[dict[str, Any], ...]
    seven: dict[str, Any] | None


_NOTHING = _Inherited((), None)


def _inherited(db: Any, key: str | None, depth: int = 0) -> _Inherited:
    """Built from the parent's own (memoised) value: each node's notes are read once."""
    if not key or depth > 64:                     # no tree is that deep: a damaged parent chain
        return _NOTHING

    def make() -> _Inherited:
        node = db.get(key)
        if node is None:
            return _NOTHING
        up = _inherited(db, node["parent"], depth + 1)
        attrs = row_attrs(node)
        own = tuple({"kind": kind, "text": t, "from": node["code"], "inherited": True}
                    for kind, texts in attrs.get("notes", {}).items() if kind in INHERITED_KINDS
                    for t in texts)
        seven = _seven(attrs, node["code"], True) if "seven_chr_def" in attrs else up.seven
        return _Inherited(up.notes + own if own else up.notes, seven)

    return db.memo("icd10cm.inherited", key, make)


def _seven(attrs: dict[str, Any], code: str, inherited: bool) -> dict[str, Any]:
    return {"chars": attrs["seven_chr_def"], "defined_at": code, "inherited": inherited,
            **({"note": attrs["seven_chr_note"]} if "seven_chr_note" in attrs else {})}


# =============================================================== order file
@dataclass(frozen=True, slots=True)
class OrderRow:
    order: int
    key: str
    billable: bool
    short_title: str
    long_title: str


_ORDER_LINE = re.compile(r"^(\d{5}) ([A-Z][0-9A-Z][A-Z0-9]{1,5}) *([01]) (.{60}) (.+)$")


def parse_order(source: Source) -> list[OrderRow]:
    """Every row of an order file; DataError naming the file on any malformed or missing row."""
    rows: list[OrderRow] = []
    lines = list(source.text_lines())
    while lines and not lines[-1].strip():
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        m = _ORDER_LINE.match(line)
        if not m or len(line) < 78 or line[13] != " ":
            raise DataError(f"{source.display}: line {lineno} is not an order-file record")
        order = int(m.group(1))
        if order != len(rows) + 1:
            raise DataError(f"{source.display}: line {lineno} has order number {order}, "
                            f"expected {len(rows) + 1} (file truncated or out of order)")
        rows.append(OrderRow(order, m.group(2), m.group(3) == "1",
                             m.group(4).rstrip(), m.group(5).rstrip()))
    if not rows:
        raise DataError(f"{source.display}: no order-file records")
    return rows


def check_order_counts(source: Source, rows: list[OrderRow], fy: int,
                       codes_file: Source | None) -> None:
    """Compare with the agency's published counts and with the billable-codes file."""
    billable = sum(r.billable for r in rows)
    expected = AGENCY_ORDER_COUNTS.get(fy)
    if expected and (len(rows), billable) != expected:
        raise DataError(f"{source.display}: {len(rows)} rows / {billable} billable, the FY{fy} "
                        f"release has {expected[0]} / {expected[1]} (truncated or altered file)")
    if codes_file is not None:
        listed = set()
        for line in codes_file.text_lines():
            if line.strip():
                listed.add(line.split(None, 1)[0])
        ours = {r.key for r in rows if r.billable}
        if listed != ours:
            raise DataError(f"{source.display}: billable codes disagree with {codes_file.display} "
                            f"({len(ours - listed)} only here, {len(listed - ours)} only there)")
    keys = {r.key for r in rows}
    if len(keys) != len(rows):
        raise DataError(f"{source.display}: duplicate codes")


# =============================================================== tabular XML
@dataclass(slots=True)
class Block:
    id: str
    code: str                 # "A00-A09" ("B10-B10" for a one-category section "B10")
    title: str
    first: str
    last: str
    chapter: int
    parent: str = ""          # key of the enclosing block or chapter
    notes: dict[str, list[str]] = field(default_factory=dict)
    has_diags: bool = False

    @property
    def key(self) -> str:
        return normalize_key(self.code)


@dataclass(slots=True)
class Chapter:
    number: int
    title: str
    range: str
    notes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return f"Chapter {self.number}"

    @property
    def key(self) -> str:
        return normalize_key(self.code)


@dataclass(slots=True)
class Diag:
    key: str
    code: str                 # as written in the XML (dotted)
    title: str
    parent: str               # key of the parent diag, or of the block for a category
    block: str                # key of the block
    notes: dict[str, list[str]] = field(default_factory=dict)
    seven_def: dict[str, str] | None = None
    seven_def_notes: list[str] = field(default_factory=list)
    seven_note: str | None = None
    children: int = 0
    placeholder: bool = False


@dataclass(slots=True)
class Tabular:
    source: Source
    version: str
    chapters: list[Chapter]
    blocks: list[Block]
    diags: dict[str, Diag]    # in file order
    order: list[tuple[str, str]] = field(default_factory=list)  # (kind, key) in file order
    #: 7th-character exceptions stated in note prose: (code prefix, 6th chars, 7th chars)
    exceptions: list[tuple[str, frozenset[str], frozenset[str]]] = field(default_factory=list)
    #: agency quirks accepted while parsing, one sentence each (recorded in the build notes)
    quirks: list[str] = field(default_factory=list)

    def seven_rule(self, key: str) -> tuple[Diag, dict[str, str]] | None:
        """The nearest node at or above ``key`` with a 7th-character definition."""
        node = self.diags.get(key)
        while node is not None:
            if node.seven_def:
                return node, node.seven_def
            node = self.diags.get(node.parent)
        return None

    def expansions(self) -> dict[str, list[tuple[str, str, Diag]]]:
        """For each leaf diag under a 7th-character rule: [(7-char key, char, defining node)]."""
        out: dict[str, list[tuple[str, str, Diag]]] = {}
        for d in self.diags.values():
            if d.children:
                continue
            rule = self.seven_rule(d.key)
            if rule is None:
                continue
            at, chars = rule
            base = d.key.ljust(6, "X")
            if len(base) != 6:
                raise DataError(f"{self.source.display}: {d.code} has a 7th-character rule "
                                f"but is already {len(d.key)} characters")
            out[d.key] = [(base + ch, ch, at) for ch in chars if not self.excepted(base, ch)]
        return out

    def excepted(self, base: str, char: str) -> bool:
        """True when a note says this 7th character does not apply to this 6-character code."""
        return any(base.startswith(prefix) and base[5] in sixth and char in seventh
                   for prefix, sixth, seventh in self.exceptions)


def _text(el: ET.Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def _notes(el: ET.Element) -> dict[str, list[str]]:
    notes: dict[str, list[str]] = {}
    for child in el:
        if child.tag in NOTE_KINDS:
            texts = [_text(n) for n in child.findall("note")]
            if texts:
                notes.setdefault(child.tag, []).extend(texts)
    return notes


_EXCEPTION = re.compile(
    r"7th characters? (?P<chars>[A-Z](?:(?:, | and | or )[A-Z])*) do(?:es)? not apply to codes in "
    r"(?:sub)?category (?P<cat>[A-Z][0-9A-Z.]+) with 6th character (?P<rest>.*)$")


def _exceptions(notes: dict[str, list[str]]) -> list[tuple[str, frozenset[str], frozenset[str]]]:
    """Parse the prose exception to a 7th-character rule, e.g. in category S06:
    '7th characters D and S do not apply to codes in category S06 with 6th character 7 - ..., or 8 - ...'."""
    found = []
    for text in notes.get("notes", []):
        m = _EXCEPTION.search(text)
        if m:
            sevenths = frozenset(re.findall(r"[A-Z]", m.group("chars")))
            sixths = frozenset(re.findall(r"(?:^|, or |, | or )([0-9A-Z]) -", m.group("rest")))
            if sixths:
                found.append((normalize_key(m.group("cat")), sixths, sevenths))
    return found


def _range_of(desc: str) -> tuple[str, str] | None:
    m = re.search(r"\(([A-Z][0-9A-Z]{2})-([A-Z][0-9A-Z]{2})\)\s*$", desc)
    return (m.group(1), m.group(2)) if m else None


def parse_tabular(source: Source) -> Tabular:
    """Parse a tabular XML; DataError naming the file when it is not well-formed or not the tabular."""
    try:
        with source.open() as fh:
            root = ET.parse(fh).getroot()
    except ET.ParseError as exc:
        raise DataError(f"{source.display}: not well-formed XML ({exc})") from exc
    if root.tag != "ICD10CM.tabular":
        raise DataError(f"{source.display}: not an ICD-10-CM tabular XML (root <{root.tag}>)")
    tab = Tabular(source, (root.findtext("version") or "").strip(), [], [], {})
    misfiled: list[tuple[str, str]] = []
    for ch_el in root.findall("chapter"):
        _parse_chapter(tab, ch_el, misfiled)
    if not tab.chapters or not tab.diags:
        raise DataError(f"{source.display}: no chapters or codes")
    for key, nested_under in misfiled:
        _refile(tab, key, nested_under)
    return tab


def _refile(tab: Tabular, key: str, nested_under: str) -> None:
    """Place a code the XML nests under a node that is not its prefix under its own
    code-prefix parent (the longest prefix that is a code of the file), and say so."""
    d = tab.diags[key]
    parent = next((key[:n] for n in range(len(key) - 1, 2, -1) if key[:n] in tab.diags), None)
    if parent is None:
        raise DataError(f"{tab.source.display}: {d.code} is nested under {dotted(nested_under)} "
                        "and no code of the file is its prefix")
    d.parent = parent
    tab.diags[parent].children += 1
    tab.quirks.append(f"{tab.source.name}: {d.code} is nested under {dotted(nested_under)} in the XML; "
                      f"filed under its code-prefix parent {dotted(parent)}.")


def _parse_chapter(tab: Tabular, ch_el: ET.Element, misfiled: list[tuple[str, str]]) -> None:
    name = _text(ch_el.find("name"))
    desc = _text(ch_el.find("desc"))
    if not name.isdigit():
        raise DataError(f"{tab.source.display}: chapter without a number ({desc[:40]!r})")
    refs = {r.get("id"): (r.get("first"), r.get("last")) for r in ch_el.iter("sectionRef")}
    rng = _range_of(desc)
    if rng is None and refs:
        firsts = [f for f, _ in refs.values() if f]
        lasts = [la for _, la in refs.values() if la]
        rng = (min(firsts), max(lasts))
    chapter = Chapter(int(name), desc, f"{rng[0]}-{rng[1]}" if rng else "", _notes(ch_el))
    tab.chapters.append(chapter)
    tab.order.append(("chapter", chapter.key))
    open_blocks: list[Block] = []   # enclosing super-blocks (sections without codes)
    for sec in ch_el.findall("section"):
        block = _section_block(tab, sec, refs, chapter)
        while open_blocks and not (open_blocks[-1].first <= block.first
                                   and block.last <= open_blocks[-1].last):
            open_blocks.pop()
        block.parent = open_blocks[-1].key if open_blocks else chapter.key
        tab.blocks.append(block)
        tab.order.append(("block", block.key))
        diags = sec.findall("diag")
        block.has_diags = bool(diags)
        for d in diags:
            _parse_diag(tab, d, block.key, block.key, misfiled)
        if not diags:
            open_blocks.append(block)


def _section_block(tab: Tabular, sec: ET.Element, refs: dict[Any, Any], chapter: Chapter) -> Block:
    sid = (sec.get("id") or "").strip()
    if not sid:
        raise DataError(f"{tab.source.display}: section without id in chapter {chapter.number}")
    first, _, last = sid.partition("-")
    first, last = refs.get(sid, (first, last or first))
    return Block(sid, f"{first}-{last}", _text(sec.find("desc")), first, last,
                 chapter.number, notes=_notes(sec))


def _parse_diag(tab: Tabular, el: ET.Element, parent: str, block: str,
                misfiled: list[tuple[str, str]]) -> None:
    code = _text(el.find("name"))
    key = normalize_key(code)
    if not _GRAMMAR.match(key):
        raise DataError(f"{tab.source.display}: bad code {code!r} under {dotted(parent)}")
    nested_under = ""
    if parent != block and not key.startswith(parent):
        # An agency quirk (FY2021: H54.512A nested under H54.511): refiled once all codes are read.
        nested_under, parent = parent, ""
        misfiled.append((key, nested_under))
    if key in tab.diags:
        raise DataError(f"{tab.source.display}: code {code} appears twice")
    d = Diag(key, code, _text(el.find("desc")), parent, block, _notes(el),
             placeholder=el.get("placeholder") == "true")
    sdef = el.find("sevenChrDef")
    if sdef is not None:
        d.seven_def = {(x.get("char") or "").strip(): _text(x) for x in sdef.findall("extension")}
        d.seven_def_notes = [_text(n) for n in sdef.findall("note")]
    if el.find("sevenChrNote") is not None:
        d.seven_note = " ".join(_text(n) for n in el.find("sevenChrNote").findall("note"))
    if d.seven_def:
        tab.exceptions.extend(_exceptions(d.notes))
    tab.diags[key] = d
    tab.order.append(("diag", key))
    if parent in tab.diags:
        tab.diags[parent].children += 1
    for child in el.findall("diag"):
        _parse_diag(tab, child, key, block, misfiled)


# ============================================================== concept rows
def _diag_attrs(d: Diag | None) -> dict[str, Any]:
    if d is None:
        return {}
    attrs: dict[str, Any] = {}
    if d.notes:
        attrs["notes"] = d.notes
    if d.seven_def:
        attrs["seven_chr_def"] = d.seven_def
    if d.seven_def_notes:
        attrs["seven_chr_def_notes"] = d.seven_def_notes
    if d.seven_note:
        attrs["seven_chr_note"] = d.seven_note
    return attrs


def _chapter_concept(ch: Chapter) -> Concept:
    attrs: dict[str, Any] = {"number": ch.number, "range": ch.range}
    if ch.notes:
        attrs["notes"] = ch.notes
    return Concept(ch.code, ch.title, "chapter", None, None, attrs=attrs)


def _block_concept(b: Block) -> Concept:
    attrs: dict[str, Any] = {"chapter": b.chapter}
    if b.id != b.code:
        attrs["id"] = b.id
    if b.notes:
        attrs["notes"] = b.notes
    return Concept(b.code, b.title, "block", None, b.parent, attrs=attrs)


def _seventh(tab: Tabular | None, key: str) -> dict[str, str] | None:
    """7th-character meaning of a 7-character code, from the nearest rule above its base."""
    if tab is None or len(key) != 7:
        return None
    base = key[:6]
    while base not in tab.diags and base.endswith("X"):
        base = base[:-1]
    rule = tab.seven_rule(base) if base in tab.diags else None
    if rule is None or key[6] not in rule[1]:
        return None
    at, chars = rule
    return {"char": key[6], "meaning": chars[key[6]], "defined_at": at.code}


def _category_block(tab: Tabular, key: str) -> str | None:
    """Block key of a 3-character category (from the tree, else by range)."""
    if key in tab.diags:
        return tab.diags[key].block
    candidates = [b for b in tab.blocks if b.has_diags and b.first <= key <= b.last]
    exact = [b for b in candidates if b.first == key]
    pick = exact or candidates
    return pick[0].key if pick else None


class _Emitter:
    """Yields chapter and block rows just before the first code filed under them."""

    def __init__(self, tab: Tabular | None) -> None:
        self.pending: list[Concept] = []
        if tab is not None:
            chapters = {c.key: c for c in tab.chapters}
            blocks = {b.key: b for b in tab.blocks}
            for kind, key in tab.order:
                if kind == "chapter":
                    self.pending.append(_chapter_concept(chapters[key]))
                elif kind == "block":
                    self.pending.append(_block_concept(blocks[key]))
        self.index = {c.key: i for i, c in enumerate(self.pending)}
        self.done = 0

    def upto(self, block_key: str | None) -> Iterator[Concept]:
        if block_key is None or block_key not in self.index:
            return
        stop = self.index[block_key] + 1
        while self.done < stop:
            yield self.pending[self.done]
            self.done += 1

    def rest(self) -> Iterator[Concept]:
        yield from self.pending[self.done:]
        self.done = len(self.pending)


def order_concepts(rows: list[OrderRow], tab: Tabular | None) -> Iterator[Concept]:
    """Concept rows of an order-file release, with chapters/blocks/notes from ``tab``."""
    keys = {r.key for r in rows}
    emit = _Emitter(tab)
    for r in rows:
        parent = next((r.key[:n] for n in range(len(r.key) - 1, 2, -1) if r.key[:n] in keys), None)
        if parent is None and tab is not None:
            parent = _category_block(tab, r.key[:3]) if len(r.key) == 3 else None
            yield from emit.upto(parent)
        kind = "category" if len(r.key) == 3 else ("code" if r.billable else "header")
        attrs = _diag_attrs(tab.diags.get(r.key)) if tab is not None else {}
        seventh = _seventh(tab, r.key)
        if seventh:
            attrs["seventh"] = seventh
        attrs["order"] = r.order
        yield Concept(dotted(r.key), r.long_title, kind, r.billable, parent,
                      short_title=r.short_title, attrs=attrs)
    yield from emit.rest()


def tabular_concepts(tab: Tabular) -> Iterator[Concept]:
    """Concept rows of an XML-only release: the tree plus the 7th-character expansions."""
    expanded = tab.expansions()
    emit = _Emitter(tab)
    for kind, key in tab.order:
        if kind != "diag":
            continue
        d = tab.diags[key]
        if len(key) == 3:
            yield from emit.upto(d.block)
        leaf = not d.children and key not in expanded
        ckind = "category" if len(key) == 3 else ("code" if leaf else "header")
        yield Concept(dotted(key), d.title, ckind, leaf, d.parent, attrs=_diag_attrs(d))
        for ext_key, ch, at in expanded.get(key, []):
            meaning = at.seven_def[ch] if at.seven_def else ""
            attrs = {"seventh": {"char": ch, "meaning": meaning, "defined_at": at.code},
                     "derived_title": True}
            yield Concept(dotted(ext_key), f"{d.title}, {meaning}", "code", True, key, attrs=attrs)
    yield from emit.rest()


def expanded_codes(tab: Tabular) -> dict[str, bool]:
    """Every code of the XML with its leaf flag, 7th-character expansions included."""
    expanded = tab.expansions()
    out: dict[str, bool] = {}
    for key, d in tab.diags.items():
        out[key] = not d.children and key not in expanded
        for ext_key, _ch, _at in expanded.get(key, []):
            out[ext_key] = True
    return out


# ================================================================== planning
def _counted(concepts: Iterator[Concept], counts: dict[str, int]) -> Iterator[Concept]:
    for c in concepts:
        counts[c.kind] = counts.get(c.kind, 0) + 1
        counts["concepts"] = counts.get("concepts", 0) + 1
        if c.billable:
            counts["billable"] = counts.get("billable", 0) + 1
        yield c


def _order_release(fy: int, srcs: list[Source], codes: Source | None, xml: Source | None,
                   xml_is_april: bool, effective_to: _dt.date) -> ReleaseBuild:
    """``srcs[0]`` is the order file; the others are recorded as sources (the order addenda
    file is recorded, not parsed)."""
    order = srcs[0]
    rows = parse_order(order)
    check_order_counts(order, rows, fy, codes)
    tab = parse_tabular(xml) if xml is not None else None
    notes: list[str] = []
    if tab is None:
        notes.append(f"No tabular XML for FY{fy}: no chapters, blocks, notes or 7th-character definitions.")
    elif xml_is_april:
        notes.append(f"Chapters, blocks, notes and 7th-character definitions come from the April 1, "
                     f"{fy} update ({xml.name}); the October {fy - 1} tabular XML was not among the files.")
    notes.extend(f"{s.name} is recorded with this release but not parsed." for s in srcs
                 if s not in (order, codes, xml))
    if tab is not None:
        notes.extend(tab.quirks)
    billable = sum(r.billable for r in rows)
    counts = {"order_rows": len(rows), "order_billable": billable, "order_headers": len(rows) - billable}
    if tab is not None:
        keys = {r.key for r in rows}
        xml_codes = expanded_codes(tab)
        counts["xml_codes_not_in_order"] = sum(1 for k in xml_codes if k not in keys)
        counts["order_codes_not_in_xml"] = sum(1 for k in keys if k not in xml_codes)
    start, _ = fiscal_year(fy)
    return ReleaseBuild(SYSTEM, str(fy), f"ICD-10-CM FY{fy} (October 1, {fy - 1})", start, effective_to,
                        [s.ref() for s in srcs], _counted(order_concepts(rows, tab), counts),
                        counts=counts, notes=notes)


def _xml_release(fy: int, xml: Source, april: bool, effective_to: _dt.date) -> ReleaseBuild:
    tab = parse_tabular(xml)
    if tab.version and tab.version != str(fy):
        raise DataError(f"{xml.display}: says version {tab.version}, file name says {fy}")
    counts: dict[str, int] = {"xml_diags": len(tab.diags),
                              "xml_expanded": sum(len(v) for v in tab.expansions().values())}
    notes = ["Code list from the tabular XML with 7th characters expanded (placeholder X to 6 "
             "characters); billable = leaf; titles of expanded codes are '<parent title>, <7th-character "
             "meaning>' (derived, the XML has no title for them); no short titles."]
    notes.extend(tab.quirks)
    if april:
        release, label, start = f"{fy}-04", f"ICD-10-CM FY{fy} April 1 update (April 1, {fy})", _dt.date(fy, 4, 1)
    else:
        release, label, start = str(fy), f"ICD-10-CM FY{fy} (October 1, {fy - 1})", fiscal_year(fy)[0]
    return ReleaseBuild(SYSTEM, release, label, start, effective_to, [xml.ref()],
                        _counted(tabular_concepts(tab), counts), counts=counts, notes=notes)


def plan(sources: list[Source]) -> list[Plan]:
    """Group order files and tabular XMLs into October (``YYYY``) and April (``YYYY-04``) releases.

    The October release of FY YYYY ends on YYYY-03-31 when the April update of the same
    fiscal year is planned from the same files, else on YYYY-09-30.
    """
    orders: dict[int, Source] = {}
    codes: dict[tuple[Path, int], Source] = {}
    addenda: dict[tuple[Path, int], Source] = {}
    octobers: dict[int, Source] = {}
    aprils: dict[int, Source] = {}
    for f in recognise(sources, FILES):
        fy = f.year
        if fy is None:
            continue
        if f.kind == "tabular":
            (aprils if is_april(f.source) else octobers).setdefault(fy, f.source)
        elif f.kind == "order":
            orders.setdefault(fy, f.source)
        else:
            (codes if f.kind == "codes" else addenda).setdefault((_folder(f.source), fy), f.source)
    plans: list[Plan] = []
    for fy in sorted(set(orders) | set(octobers)):
        end = _dt.date(fy, 3, 31) if fy in aprils else fiscal_year(fy)[1]
        plans.append(_plan_october(fy, orders.get(fy), codes, addenda, octobers.get(fy),
                                   aprils.get(fy), end))
    for fy, xml in sorted(aprils.items()):
        plans.append(Plan(SYSTEM, f"{fy}-04", [xml],
                          lambda fy=fy, xml=xml: _xml_release(fy, xml, True, fiscal_year(fy)[1])))
    return plans


# ------------------------------------------------------ recognising the files
#: An order-file record (the layout of ``parse_order``, matched loosely: a tool may trim the
#: trailing blanks of a short title).
_ORDER_RECORD = re.compile(r"^\d{5} ([A-Z][0-9A-Z][0-9A-Z]{1,5}) *[01] \S")
_CODES_RECORD = re.compile(r"^[A-Z][0-9A-Z][0-9A-Z]{1,5} +(?!.*\s[01]{5}$)\S.*[a-z]")  # not a GEM row
_ADDENDA_RECORD = re.compile(r"^(?:Add|Delete|Revise(?: from| to)?):\s+[01] [A-Z][0-9A-Z][0-9A-Z]{1,5} +\S")
_APRIL = re.compile(r"(?i)(?<![a-z])apr(?:il)?(?![a-z])")


def _sniff(pattern: re.Pattern[str], lines: int = 400) -> Callable[[Source], str | None]:
    """A content test: the first ``lines`` records all have the layout ``pattern``."""
    def test(src: Source) -> str | None:
        return "" if all_match(pattern, records(src, lines)) else None
    return test


#: The ICD-10-CM files, by content (the tabular XML's root and ``<version>``, the order,
#: codes and addenda files' record layouts), the agency's file names as the fallback.
#: Order, codes and addenda files state no fiscal year: it comes from their names or folders.
FILES = (
    FileKind("tabular", xml_kind("ICD10CM.tabular"), _TABULAR_RE),
    FileKind("order", _sniff(_ORDER_RECORD), _ORDER_RE),
    FileKind("codes", _sniff(_CODES_RECORD), _CODES_RE),
    FileKind("addenda", _sniff(_ADDENDA_RECORD, 20), _ADDENDA_RE),  # a summary follows the records
)


def is_april(src: Source) -> bool:
    """A tabular XML of the April 1 update: the agency says so in the file name (or its folder)."""
    return bool(_APRIL.search(src.name) or _APRIL.search(src.path.parent.name))


def _folder(s: Source) -> Path:
    """Where a file sits: its zip for a member, else its directory (siblings share it)."""
    return s.path if s.member else s.path.parent


def _plan_october(fy: int, order: Source | None, codes: dict[tuple[Path, int], Source],
                  addenda: dict[tuple[Path, int], Source], october: Source | None,
                  april: Source | None, end: _dt.date) -> Plan:
    if order is None:
        assert october is not None
        return Plan(SYSTEM, str(fy), [october], lambda: _xml_release(fy, october, False, end))
    code_file = codes.get((_folder(order), fy))
    addenda_file = addenda.get((_folder(order), fy))
    xml = october or april
    srcs = [s for s in (order, code_file, addenda_file, xml) if s is not None]
    return Plan(SYSTEM, str(fy), srcs,
                lambda: _order_release(fy, srcs, code_file, xml, october is None and xml is not None, end))


def embedded_source() -> Source:
    """The CDC tabular XML carried by the simple-icd-10-cm package (read as a file, API unused).

    The package directory is located with :func:`importlib.util.find_spec`, which does not
    run the package: importing ``simple_icd_10_cm`` (as ``importlib.resources.files`` on its
    ``data`` subpackage would) parses the whole classification at import time (seconds).
    """
    import importlib.util

    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("simple-icd-10-cm is not installed: no embedded ICD-10-CM tabular XML")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    found = sorted(p for p in data.glob("*tabular*.xml") if p.is_file())
    if not found:
        raise DataError(f"{data}: no *tabular*.xml file in the simple-icd-10-cm package")
    return Source(found[-1])
