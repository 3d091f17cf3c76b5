"""ICD-10-PCS: the CMS order file, tables XML and definitions XML, as shipped.

One release per fiscal year ``YYYY``, built from

* ``icd10pcs_order_YYYY.txt`` (inside the CMS order-file zip): fixed width,
  order number (5), code (7), flag (1 = valid code, 0 = table header of 3
  characters), short title (60), long title;
* ``icd10pcs_tables_YYYY.xml``: one ``pcsTable`` per 3-character table, with
  axes 1-3 (section, body system, root operation) and ``pcsRow`` elements
  giving the labels each of positions 4-7 may take;
* ``icd10pcs_definitions_YYYY.xml`` (optional): per section, the definitions
  of root operations and approaches and the body part / device / substance
  keys ("includes" terms).

Expanding every ``pcsRow`` must give exactly the order file's valid codes,
and the tables must be exactly its headers; otherwise the build fails with a
:class:`~medcodes.errors.DataError` naming the file.

Concepts: sections (1 character), body systems (2), tables (3, the order
file's headers) and codes (7). The axis labels are not copied onto each of the
79k codes: the release gets a ``pcs_axis`` table (the labels of every table
and every row of it), from which :func:`structure` derives a code's seven
axes at lookup time, plus ``pcs_term`` (definitions and key terms) and
``pcs_device_agg`` (device aggregation) tables.
"""

from __future__ import annotations

import itertools
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from ..errors import DataError
from ..model import Concept, ReleaseBuild, Table
from ..calendar import fiscal_year
from ..sources import FileKind, Source, all_match, recognise, records, xml_kind
from . import Plan, Reading

SYSTEM = "icd10pcs"

#: Characters a PCS code may use: digits and letters except I and O.
ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
#: First characters of the PCS sections (0-9, B-D, F-H, X).
SECTION_CHARS = frozenset("0123456789BCDFGHX")
AXIS_COUNT = 7

_ORDER_RE = re.compile(r"^icd10pcs_order_(?P<year>\d{4})\.txt$", re.IGNORECASE)
_TABLES_RE = re.compile(r"^icd10pcs_tables_(?P<year>\d{4})\.xml$", re.IGNORECASE)
_DEFS_RE = re.compile(r"^icd10pcs_definitions_(?P<year>\d{4})\.xml$", re.IGNORECASE)
_ADDENDA_RE = re.compile(r"^order_addenda_(?P<year>\d{4})\.txt$", re.IGNORECASE)
# record layouts, to recognise the text files by content: a code is 3 (table header) or 7 characters
_ORDER_RECORD = re.compile(r"^\d{5} (?:[0-9A-HJ-NP-Z]{3}    |[0-9A-HJ-NP-Z]{7}) [01] \S")
_ADDENDA_RECORD = re.compile(r"^(?:Add|Delete|Revise(?: from| to)?):\s+[0-9A-HJ-NP-Z]{7} \S")


def _layout(pattern: re.Pattern[str], lines: int) -> Callable[[Source], str | None]:
    def test(src: Source) -> str | None:
        return "" if all_match(pattern, records(src, lines)) else None
    return test


#: The ICD-10-PCS files by content (XML root element and ``<version>``; the order and addenda
#: files' record layouts, whose fiscal year comes from the name or folder), else by name.
FILES = (
    FileKind("order", _layout(_ORDER_RECORD, 400), _ORDER_RE),
    FileKind("tables", xml_kind("ICD10PCS.tabular"), _TABLES_RE),
    FileKind("definitions", xml_kind("ICD10PCS.definitions"), _DEFS_RE),
    FileKind("addenda", _layout(_ADDENDA_RECORD, 20), _ADDENDA_RE),  # a summary follows the records
)
_ADDENDA_COUNT_RE = re.compile(r"^\s*(\d+) (codes|headers) in icd10pcs_order_(\d{4})\.txt\s*$")
_ADDENDA_ENTRY_RE = re.compile(r"^(Add|Delete):\s+([0-9A-Z]{3,7})\s")


# =========================================================================== parsed data
@dataclass(frozen=True, slots=True)
class OrderRow:
    """One record of the order file."""

    number: int
    code: str
    valid: bool
    short_title: str
    long_title: str


@dataclass(slots=True)
class Axis:
    """One axis of a table or a row: its position, title and (char, label) values."""

    pos: int
    title: str
    labels: list[tuple[str, str]]
    definition: str | None = None


@dataclass(slots=True)
class PcsRow:
    codes: int
    axes: list[Axis]  # positions 4-7

    def expand(self) -> Iterator[str]:
        for combo in itertools.product(*[[c for c, _ in a.labels] for a in self.axes]):
            yield "".join(combo)


@dataclass(slots=True)
class PcsTable:
    axes: list[Axis]  # positions 1-3, one label each
    rows: list[PcsRow]

    @property
    def key(self) -> str:
        return "".join(a.labels[0][0] for a in self.axes)

    def expand(self) -> Iterator[str]:
        prefix = self.key
        for row in self.rows:
            for tail in row.expand():
                yield prefix + tail


@dataclass(slots=True)
class Term:
    """One ``terms`` entry of the definitions XML (several titles may share it)."""

    section: str
    pos: int
    axis: str
    titles: list[str]
    definition: str | None
    explanation: str | None
    includes: list[str]


@dataclass(slots=True)
class Aggregate:
    """One device aggregation: ``device`` counts as ``parent`` in these body systems."""

    device: str
    operation: str
    body_systems: list[str]
    parent_char: str
    parent_label: str


@dataclass(slots=True)
class Definitions:
    terms: list[Term] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)


# =========================================================================== order file
def parse_order(src: Source) -> list[OrderRow]:
    """Every record of an order file, checked for layout and consecutive numbering."""
    data = src.read_bytes()
    if not data.strip():
        raise DataError(f"{src.display}: empty file")
    if not data.endswith(b"\n"):
        raise DataError(f"{src.display}: truncated (last record has no line ending)")
    text = _decode(data)
    rows: list[OrderRow] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        row = _order_record(src, lineno, line)
        if row.number != len(rows) + 1:
            raise DataError(
                f"{src.display}: line {lineno}: order number {row.number}, expected {len(rows) + 1}")
        rows.append(row)
    _check_order_grouping(src, rows)
    return rows


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text[1:] if text.startswith("\ufeff") else text


def _order_record(src: Source, lineno: int, line: str) -> OrderRow:
    where = f"{src.display}: line {lineno}"
    if len(line) < 78 or line[5] != " " or line[13] != " " or line[15] != " " or line[76] != " ":
        raise DataError(f"{where}: not an order-file record")
    number, code_field, flag = line[0:5], line[6:13], line[14]
    if not number.isdigit() or flag not in "01":
        raise DataError(f"{where}: bad order number or flag")
    valid = flag == "1"
    code = code_field.rstrip()
    want = AXIS_COUNT if valid else 3
    if len(code) != want or not set(code) <= ALPHABET:
        kind = "code" if valid else "table header"
        raise DataError(f"{where}: malformed {kind} {code_field!r}")
    short, long = line[16:76].rstrip(), line[77:].strip()
    if not short or not long:
        raise DataError(f"{where}: missing title")
    return OrderRow(int(number), code, valid, short, long)


def _check_order_grouping(src: Source, rows: list[OrderRow]) -> None:
    """Each valid code follows its own table's header; every header has codes."""
    current: str | None = None
    seen: set[str] = set()
    counts: dict[str, int] = {}
    for row in rows:
        if not row.valid:
            if row.code in seen:
                raise DataError(f"{src.display}: table header {row.code} appears twice")
            seen.add(row.code)
            current = row.code
            counts[current] = 0
        elif current is None or row.code[:3] != current:
            raise DataError(f"{src.display}: code {row.code} is not under its table header")
        else:
            counts[current] += 1
    empty = [k for k, n in counts.items() if n == 0]
    if empty:
        raise DataError(f"{src.display}: table header {empty[0]} has no codes")


# =========================================================================== order addenda
@dataclass(slots=True)
class Addenda:
    """The order addenda shipped beside the order file: its counts and changes."""

    counts: dict[tuple[str, str], int]  # (year, "codes"|"headers") -> count
    added: list[str]
    deleted: list[str]


def parse_addenda(src: Source) -> Addenda:
    """``order_addenda_YYYY.txt``: Add/Delete lines and the 'N codes in ...' summary."""
    out = Addenda({}, [], [])
    for line in _decode(src.read_bytes()).splitlines():
        m = _ADDENDA_COUNT_RE.match(line)
        if m:
            out.counts[(m.group(3), m.group(2))] = int(m.group(1))
            continue
        m = _ADDENDA_ENTRY_RE.match(line)
        if m:
            (out.added if m.group(1) == "Add" else out.deleted).append(m.group(2))
    return out


def check_addenda(order: Source, addenda_src: Source, year: str, rows: list[OrderRow]) -> Addenda:
    """The order file must have the agency's stated counts and include every addition."""
    addenda = parse_addenda(addenda_src)
    have = {"codes": sum(r.valid for r in rows), "headers": sum(not r.valid for r in rows)}
    for what, n in have.items():
        want = addenda.counts.get((year, what))
        if want is None:
            raise DataError(f"{addenda_src.display}: no count of {what} for {year}")
        if want != n:
            raise DataError(f"{order.display}: {n} {what}, {addenda_src.name} says {want}")
    present = {r.code for r in rows}
    missing = [c for c in addenda.added if c not in present]
    stale = [c for c in addenda.deleted if c in present]
    if missing or stale:
        raise DataError(f"{order.display}: disagrees with {addenda_src.name} "
                        f"(added but absent: {missing[:3]}, deleted but present: {stale[:3]})")
    return addenda


# =========================================================================== tables XML
def _xml_root(src: Source, root_tag: str, year: str) -> ET.Element:
    try:
        root = ET.fromstring(src.read_bytes())
    except ET.ParseError as exc:
        raise DataError(f"{src.display}: not well-formed XML ({exc})") from exc
    if root.tag != root_tag:
        raise DataError(f"{src.display}: root element <{root.tag}>, expected <{root_tag}>")
    version = (root.findtext("version") or "").strip()
    if version and version != year:
        raise DataError(f"{src.display}: version {version}, expected {year}")
    return root


def _axis(src: Source, el: ET.Element) -> Axis:
    try:
        pos = int(el.get("pos", ""))
    except ValueError as exc:
        raise DataError(f"{src.display}: axis without a position") from exc
    labels = [((lab.get("code") or "").strip(), _text(lab)) for lab in el.findall("label")]
    if not labels or any(len(c) != 1 or c not in ALPHABET or not t for c, t in labels):
        raise DataError(f"{src.display}: axis {pos} has a missing or malformed label")
    declared = el.get("values")
    if declared is not None and declared.strip() != str(len(labels)):
        raise DataError(f"{src.display}: axis {pos} declares {declared} values, has {len(labels)}")
    definition = el.findtext("definition")
    return Axis(pos, _text(el.find("title")), labels, definition.strip() if definition else None)


def _text(el: ET.Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def parse_tables(src: Source, year: str) -> list[PcsTable]:
    """Every ``pcsTable`` with its axes 1-3 and rows (axes 4-7), counts checked."""
    root = _xml_root(src, "ICD10PCS.tabular", year)
    tables: list[PcsTable] = []
    for tel in root.iter("pcsTable"):
        axes = sorted((_axis(src, a) for a in tel.findall("axis")), key=lambda a: a.pos)
        if [a.pos for a in axes] != [1, 2, 3] or any(len(a.labels) != 1 for a in axes):
            raise DataError(f"{src.display}: table #{len(tables) + 1} lacks single-valued axes 1-3")
        table = PcsTable(axes, [_row(src, r, axes) for r in tel.findall("pcsRow")])
        if not table.rows:
            raise DataError(f"{src.display}: table {table.key} has no rows")
        tables.append(table)
    if not tables:
        raise DataError(f"{src.display}: no pcsTable elements")
    return tables


def _row(src: Source, el: ET.Element, head: list[Axis]) -> PcsRow:
    key = "".join(a.labels[0][0] for a in head)
    axes = sorted((_axis(src, a) for a in el.findall("axis")), key=lambda a: a.pos)
    if [a.pos for a in axes] != [4, 5, 6, 7]:
        raise DataError(f"{src.display}: a row of table {key} lacks axes 4-7")
    row = PcsRow(0, axes)
    size = 1
    for a in axes:
        size *= len(a.labels)
    declared = el.get("codes")
    if declared is not None and declared.strip() != str(size):
        raise DataError(f"{src.display}: a row of table {key} declares {declared} codes, expands to {size}")
    row.codes = size
    return row


# =========================================================================== definitions XML
def parse_definitions(src: Source, year: str) -> Definitions:
    """Root operation / approach definitions, key terms and device aggregation."""
    root = _xml_root(src, "ICD10PCS.definitions", year)
    out = Definitions()
    for sec in root.findall("section"):
        code = (sec.get("code") or "").strip()
        for axis in sec.findall("axis"):
            pos_text = (axis.get("pos") or "").strip()
            if not pos_text.isdigit():
                raise DataError(f"{src.display}: an axis of section {code!r} has no position")
            pos = int(pos_text)
            axis_title = _text(axis.find("title"))
            for term in axis.findall("terms"):
                titles = [_text(t) for t in term.findall("title")]
                if not code or not pos or not titles or not all(titles):
                    raise DataError(f"{src.display}: a term of section {code!r} lacks a title")
                out.terms.append(Term(
                    code, pos, axis_title, titles,
                    _text(term.find("definition")) or None,
                    _text(term.find("explanation")) or None,
                    [_text(i) for i in term.findall("includes")],
                ))
    for agg in root.iter("aggregate"):
        parent = agg.find("parent")
        out.aggregates.append(Aggregate(
            _text(agg.find("device")), _text(agg.find("operation")),
            [_text(b) for b in agg.findall("bodySys")],
            (parent.get("value") or "").strip() if parent is not None else "",
            _text(parent),
        ))
    if not out.terms:
        raise DataError(f"{src.display}: no definitions found")
    return out


# =========================================================================== checks
def check_expansion(order_src: Source, tables_src: Source, rows: list[OrderRow],
                    tables: list[PcsTable]) -> int:
    """The tables XML must expand to exactly the order file's codes and headers."""
    headers = [r.code for r in rows if not r.valid]
    keys = [t.key for t in tables]
    if len(set(keys)) != len(keys):
        raise DataError(f"{tables_src.display}: a table appears twice")
    if set(keys) != set(headers):
        extra, missing = sorted(set(keys) - set(headers)), sorted(set(headers) - set(keys))
        raise DataError(f"{tables_src.display}: {len(keys)} tables vs {len(headers)} headers in "
                        f"{order_src.name} (only in XML: {extra[:3]}, only in order file: {missing[:3]})")
    expanded: list[str] = [c for t in tables for c in t.expand()]
    valid = {r.code for r in rows if r.valid}
    got = set(expanded)
    if len(got) != len(expanded) or got != valid:
        extra, missing = sorted(got - valid), sorted(valid - got)
        raise DataError(f"{tables_src.display}: expands to {len(expanded)} codes ({len(got)} distinct), "
                        f"{order_src.name} has {len(valid)} (only in XML: {extra[:3]}, "
                        f"only in order file: {missing[:3]})")
    return len(expanded)


# =========================================================================== plan / build
def plan(sources: Sequence[Source]) -> list[Plan]:
    """One release per fiscal year that has an order file (+ tables/definitions XML)."""
    found: dict[str, dict[str, Source]] = {}
    for f in recognise(sources, FILES):
        if f.year is not None:
            found.setdefault(str(f.year), {}).setdefault(f.kind, f.source)
    plans: list[Plan] = []
    for year in sorted(found):
        files = found[year]
        if "order" not in files:
            continue
        used = [files["order"]]
        if "addenda" in files:
            used.append(files["addenda"])
        if "tables" in files:
            used.append(files["tables"])
            if "definitions" in files:
                used.append(files["definitions"])
        plans.append(Plan(SYSTEM, year, used, _builder(year, files)))
    return plans


def _builder(year: str, files: dict[str, Source]) -> Callable[[], ReleaseBuild]:
    def build() -> ReleaseBuild:
        return build_release(year, files["order"], files.get("tables"),
                             files.get("definitions") if "tables" in files else None,
                             files.get("addenda"))
    return build


def build_release(year: str, order: Source, tables_src: Source | None = None,
                  defs_src: Source | None = None, addenda_src: Source | None = None) -> ReleaseBuild:
    """Parse and cross-check one fiscal year's files into a :class:`ReleaseBuild`."""
    rows = parse_order(order)
    counts = {
        "order_rows": len(rows),
        "codes": sum(r.valid for r in rows),
        "tables": sum(not r.valid for r in rows),
    }
    notes: list[str] = []
    tables: list[PcsTable] = []
    extra: dict[str, Table] = {}
    used = [order]
    if addenda_src is not None:
        used.append(addenda_src)
        addenda = check_addenda(order, addenda_src, year, rows)
        counts["addenda_added"], counts["addenda_deleted"] = len(addenda.added), len(addenda.deleted)
    else:
        notes.append(f"no order_addenda_{year}.txt: order-file counts not checked against CMS's")
    if tables_src is not None:
        used.append(tables_src)
        tables = parse_tables(tables_src, year)
        counts["xml_tables"] = len(tables)
        counts["xml_rows"] = sum(len(t.rows) for t in tables)
        counts["xml_codes"] = check_expansion(order, tables_src, rows, tables)
        extra["pcs_axis"] = _axis_table(tables)
    else:
        notes.append(f"no icd10pcs_tables_{year}.xml: sections, body systems and axes not available")
    if defs_src is not None:
        used.append(defs_src)
        defs = parse_definitions(defs_src, year)
        counts["definition_terms"] = sum(len(t.titles) for t in defs.terms)
        counts["device_aggregates"] = len(defs.aggregates)
        extra["pcs_term"] = _term_table(defs)
        extra["pcs_device_agg"] = _aggregate_table(defs)
    elif tables_src is not None:
        notes.append(f"no icd10pcs_definitions_{year}.xml: only the tables' root operation definitions")
    concepts = list(_concepts(rows, tables))
    counts["sections"] = sum(c.kind == "section" for c in concepts)
    counts["body_systems"] = sum(c.kind == "body_system" for c in concepts)
    start, end = fiscal_year(int(year))
    return ReleaseBuild(
        system=SYSTEM, release=year, label=f"ICD-10-PCS FY{year}",
        effective_from=start, effective_to=end,
        sources=[s.ref() for s in used], concepts=concepts,
        counts=counts, tables=extra, notes=notes,
    )


def _concepts(rows: list[OrderRow], tables: list[PcsTable]) -> Iterator[Concept]:
    """Sections and body systems (from the XML) before their first table, in file order."""
    by_key = {t.key: t for t in tables}
    emitted: set[str] = set()
    for row in rows:
        if row.valid:
            yield Concept(row.code, row.long_title, "code", True, row.code[:3], row.short_title)
            continue
        table = by_key.get(row.code)
        parent = None
        if table is not None:
            section, body = table.axes[0].labels[0], table.axes[1].labels[0]
            if section[0] not in emitted:
                emitted.add(section[0])
                yield Concept(section[0], section[1], "section",
                              attrs={"axis": table.axes[0].title})
            body_key = row.code[:2]
            if body_key not in emitted:
                emitted.add(body_key)
                yield Concept(body_key, body[1], "body_system", parent=section[0],
                              attrs={"axis": table.axes[1].title})
            parent = body_key
        attrs: dict[str, Any] = {}
        if table is not None:
            op = table.axes[2]
            attrs = {"operation": op.labels[0][1], "operation_axis": op.title}
            if op.definition:
                attrs["definition"] = op.definition
        yield Concept(row.code, row.long_title, "table", False, parent, row.short_title, attrs)


def _axis_table(tables: list[PcsTable]) -> Table:
    def rows() -> Iterator[tuple[Any, ...]]:
        for t in tables:
            for a in t.axes:
                yield (t.key, 0, a.pos, a.title, a.labels[0][0], a.labels[0][1])
            for n, r in enumerate(t.rows, 1):
                for a in r.axes:
                    for char, label in a.labels:
                        yield (t.key, n, a.pos, a.title, char, label)
    return Table(("tbl", "row", "pos", "title", "char", "label"), list(rows()), (("tbl", "row"),))


def _term_table(defs: Definitions) -> Table:
    rows = [
        (t.section, t.pos, t.axis, title, t.definition, t.explanation,
         json.dumps(t.includes, ensure_ascii=False) if t.includes else None)
        for t in defs.terms for title in t.titles
    ]
    return Table(("section", "pos", "axis", "title", "definition", "explanation", "includes"),
                 rows, (("section", "pos", "title"),))


def _aggregate_table(defs: Definitions) -> Table:
    rows = [(a.parent_label, a.parent_char, b, a.operation, a.device)
            for a in defs.aggregates for b in a.body_systems]
    return Table(("parent_label", "parent_char", "body_system", "operation", "device"),
                 rows, (("parent_label", "body_system"),))


# =========================================================================== readings
def readings(key: str) -> list[Reading]:
    """A 7-character PCS code, or a 3-character table, by shape alone."""
    if not key or not set(key) <= ALPHABET:
        return []
    first = key[0]
    if len(key) == AXIS_COUNT:
        if first.isdigit():
            return [Reading(key, 0.9, "code", "7 characters, section digit first")]
        if first in SECTION_CHARS:
            return [Reading(key, 0.7, "code", f"7 characters, section {first}")]
        return [Reading(key, 0.1, "code", f"7 characters, but {first} is no PCS section")]
    if len(key) == 3 and first in SECTION_CHARS:
        return [Reading(key, 0.6 if first.isdigit() else 0.3, "table", "3-character PCS table")]
    return []


# =========================================================================== structure
def structure(code: str, db: Any) -> dict[str, Any]:
    """The seven axes of ``code`` (fewer for a table, body system or section)."""
    chars = code.strip().upper()[:AXIS_COUNT]
    axes: list[dict[str, Any]] = [
        {"position": i, "name": None, "char": c, "label": None} for i, c in enumerate(chars, 1)
    ]
    out: dict[str, Any] = {"axes": axes}
    if db is None:
        return out
    if len(chars) < 3:
        _fill_from_concepts(axes, chars, db)
        return out
    if not db.has_table("pcs_axis"):
        return out
    labels = _table_axes(db, chars[:3])
    if not labels:
        out["in_tables"] = False
        return out
    out["table"] = chars[:3]
    row = _matching_row(labels, chars) if len(chars) == AXIS_COUNT else None
    for ax in axes:
        pos, char = ax["position"], ax["char"]
        # axes 1-3 are the table's own (row 0); 4-7 come from the code's row,
        # or from any row of the table when the combination is not a code
        found = _label(labels, pos, char, 0 if pos <= 3 else row)
        if found is not None:
            ax["name"], ax["label"] = found
        elif pos > 3:
            ax["name"] = _any_title(labels, pos)
    if len(chars) == AXIS_COUNT:
        out["row"] = row
        out["valid_combination"] = row is not None
    return out


def _fill_from_concepts(axes: list[dict[str, Any]], chars: str, db: Any) -> None:
    """Section / body system axes from their own concept rows."""
    for ax in axes:
        r = db.get(chars[: ax["position"]])
        if r is not None and r["kind"] in ("section", "body_system"):
            ax["name"] = json.loads(r["attrs"]).get("axis") if r["attrs"] else None
            ax["label"] = r["title"]


_Labels = dict[int, dict[int, tuple[str, dict[str, str]]]]  # row -> pos -> (title, char->label)


def _table_axes(db: Any, tbl: str) -> _Labels:
    out: _Labels = {}
    for r in db.conn.execute(
            'SELECT "row", pos, title, char, label FROM pcs_axis WHERE tbl = ? ORDER BY "row", pos',
            (tbl,)):
        title, values = out.setdefault(r[0], {}).setdefault(r[1], (r[2], {}))
        values[r[3]] = r[4]
    return out


def _matching_row(labels: _Labels, code: str) -> int | None:
    for n, axes in labels.items():
        if n and all(code[p - 1] in axes.get(p, ("", {}))[1] for p in range(4, AXIS_COUNT + 1)):
            return n
    return None


def _label(labels: _Labels, pos: int, char: str, row: int | None) -> tuple[str, str] | None:
    """(axis title, label) of ``char`` at ``pos`` in ``row`` (any row when None)."""
    candidates = [row] if row is not None else sorted(n for n in labels if n)
    for n in candidates:
        title, values = labels.get(n, {}).get(pos, ("", {}))
        if char in values:
            return title, values[char]
    return None


def _any_title(labels: _Labels, pos: int) -> str | None:
    for n in sorted(labels):
        if pos in labels[n]:
            return labels[n][pos][0]
    return None


# =========================================================================== enrich
def enrich(record: dict[str, Any], row: Any, db: Any) -> None:
    """Axes and definitions for a code; the rows (allowed values) for a table."""
    kind = row["kind"]
    info = structure(row["key"], db)
    record["axes"] = info["axes"]
    if kind == "code" and db is not None:
        record["definitions"] = code_definitions(info["axes"], row["key"], db)
    elif kind == "table" and db is not None:
        record["rows"] = table_rows(row["key"], db)
        attrs = json.loads(row["attrs"]) if row["attrs"] else {}
        if attrs.get("definition"):
            record["definition"] = attrs["definition"]


def table_rows(tbl: str, db: Any) -> list[dict[str, Any]]:
    """What each of positions 4-7 may take, row by row, as the tables XML lists it."""
    if not db.has_table("pcs_axis"):
        return []
    out = []
    for n, axes in sorted(_table_axes(db, tbl).items()):
        if not n:
            continue
        row_axes = [{"position": p, "name": title,
                     "values": [{"char": c, "label": lab} for c, lab in values.items()]}
                    for p, (title, values) in sorted(axes.items())]
        size = 1
        for a in row_axes:
            size *= len(a["values"])
        out.append({"row": n, "codes": size, "axes": row_axes})
    return out


def code_definitions(axes: list[dict[str, Any]], key: str, db: Any) -> list[dict[str, Any]]:
    """Definitions / key terms of positions 3-7 of a code (definitions XML, else tables XML)."""
    if len(axes) < 3:
        return []
    section, body_system = axes[0]["label"], axes[1]["label"]
    out: list[dict[str, Any]] = []
    have_terms = db.has_table("pcs_term")
    for ax in axes[2:]:
        if not ax["label"]:
            continue
        entry = _term(db, key[0], ax, section, body_system) if have_terms else None
        if ax["position"] == 6 and db.has_table("pcs_device_agg"):
            agg = _aggregates(db, ax, body_system, axes[2]["label"])
            if agg:
                entry = entry or _entry(ax, None, None, None, [])
                entry["aggregates"] = agg
        if entry is None and ax["position"] == 3:
            entry = _table_definition(db, key[:3], ax)
        if entry is not None:
            out.append(entry)
    return out


def _entry(ax: dict[str, Any], term: str | None, definition: str | None,
           explanation: str | None, includes: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"position": ax["position"], "name": ax["name"], "label": ax["label"]}
    if term and term != ax["label"]:
        entry["term"] = term
    if definition:
        entry["definition"] = definition
    if explanation:
        entry["explanation"] = explanation
    if includes:
        entry["includes"] = includes
    return entry


def _term(db: Any, section_char: str, ax: dict[str, Any], section: str | None,
          body_system: str | None) -> dict[str, Any] | None:
    label = ax["label"]
    wanted = [f"{label} in {body_system}", f"{label} in {section}", label]
    for title in wanted:
        r = db.conn.execute(
            "SELECT title, definition, explanation, includes FROM pcs_term "
            "WHERE section = ? AND pos = ? AND title = ?", (section_char, ax["position"], title)
        ).fetchone()
        if r is not None:
            return _entry(ax, r[0], r[1], r[2], json.loads(r[3]) if r[3] else [])
    return None


def _aggregates(db: Any, ax: dict[str, Any], body_system: str | None,
                operation: str | None) -> list[str]:
    rows = db.conn.execute(
        "SELECT device, operation FROM pcs_device_agg WHERE parent_label = ? AND parent_char = ? "
        "AND body_system = ? ORDER BY device", (ax["label"], ax["char"], body_system)).fetchall()
    return [d for d, op in rows if op in ("All applicable", operation)]


def _table_definition(db: Any, tbl: str, ax: dict[str, Any]) -> dict[str, Any] | None:
    r = db.get(tbl)
    if r is None or not r["attrs"]:
        return None
    definition = json.loads(r["attrs"]).get("definition")
    return _entry(ax, None, definition, None, []) if definition else None


def table_definitions(tbl: str, db: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Definition of every value a table offers at positions 3-7, ``{position: {char: entry}}``.

    Each entry is what :func:`code_definitions` gives for that value in a code (the
    definitions XML's term for the section / body system, device aggregates, else the
    tables XML's root-operation definition); values without one are left out.
    """
    labels = _table_axes(db, tbl) if db.has_table("pcs_axis") else {}
    head = labels.get(0, {})
    if not head:
        return {}
    section = next(iter(head.get(1, ("", {}))[1].values()), None)
    body_system = next(iter(head.get(2, ("", {}))[1].values()), None)
    operation = next(iter(head.get(3, ("", {}))[1].values()), None)
    have_terms = db.has_table("pcs_term")
    have_agg = db.has_table("pcs_device_agg")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for n in sorted(labels):
        for pos, (title, values) in sorted(labels[n].items()):
            if pos < 3:
                continue
            for char, label in values.items():
                if char in out.get(str(pos), {}):
                    continue
                ax = {"position": pos, "name": title, "char": char, "label": label}
                entry = _term(db, tbl[0], ax, section, body_system) if have_terms else None
                if pos == 6 and have_agg:
                    agg = _aggregates(db, ax, body_system, operation)
                    if agg:
                        entry = entry or _entry(ax, None, None, None, [])
                        entry["aggregates"] = agg
                if entry is None and pos == 3:
                    entry = _table_definition(db, tbl, ax)
                if entry is not None:
                    out.setdefault(str(pos), {})[char] = entry
    return out
