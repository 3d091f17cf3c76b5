"""HCPCS Level II: the CMS alpha-numeric file (ANWEB), its quarterly Excel updates, and code grammar.

Official inputs (as CMS ships them):

* the annual fixed-width file, e.g. ``HCPC2020_ANWEB_w_disclaimer.txt`` inside
  ``2020-Alpha-Numeric-HCPCS-File.zip`` or ``HCPC2019_CONTR_ANWEB.txt``: 320-byte
  records laid out per ``HCPCS2019_recordlayout.txt``. Record id (position 11):
  3 = first line of a code (detail fields in 92-275...), 4 = continuation of its
  long description, 7 = first line of a modifier, 8 = modifier continuation.
  Files may open with disclaimer lines, use CRLF, and are Windows-1252 text.
  Continuation records carry only positions 1-91 (the 2020 file ships them
  trimmed to 91 bytes; the 2019 file pads them to 320, one to 316).
* the quarterly updates ``HCPC2020_{APR,JUL,OCT}_ANWEB.xlsx`` (sheet ``A``, one
  row per code or modifier, the same fields as named columns, possibly after
  disclaimer rows).
* the quarterly zips since 2021, e.g. ``january-2026-alpha-numeric-hcpcs-file.zip``:
  ``HCPC2026_JAN_ANWEB_01122026.txt`` (read with that zip's own
  ``HCPC2026_recordlayout.txt``; a field the layout adds is kept) and the files
  shipped with it, which go into the same release (:mod:`.hcpcs_files`): the
  ``.xlsx`` form (cross-checked record by record, differences noted), the
  corrections (applied, and recorded on each corrected code), the transaction
  report (its action codes checked against the file's), the NOC codes (marked)
  and the processing notes (their text, for lookups).

Each release becomes one section row per first letter, one row per code and
one per modifier; every field of the record layout is kept in ``attrs``
(empty ones omitted, dates as ISO strings).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import DataError
from ..model import Concept, ReleaseBuild, SYSTEM_NAMES, Table
from ..calendar import hcpcs_quarter
from ..sources import Source
from ..store import row_attrs
from . import Plan, Reading

SYSTEM = "hcpcs"

RECORD_LENGTH = 320
DESCRIPTION_END = 91  # a continuation record needs positions 1-91 only

MONTHS = {"JAN": 1, "APR": 4, "JUL": 7, "OCT": 10}
MONTH_NAMES = {1: "January", 4: "April", 7: "July", 10: "October"}

CODE_RE = re.compile(r"^[A-V][0-9]{4}$")
MODIFIER_RE = re.compile(r"^(?:[A-Z]{2}|[A-Z][0-9]|[0-9][A-Z])$")

# HCPCS Level II sections by first letter (CMS's names for the code ranges).
SECTIONS: dict[str, str] = {
    "A": "Transportation Services Including Ambulance, Medical and Surgical Supplies, "
         "Administrative, Miscellaneous and Experimental",
    "B": "Enteral and Parenteral Therapy",
    "C": "Outpatient PPS (Temporary Hospital Outpatient Prospective Payment System Codes)",
    "D": "Dental Procedures (CDT, American Dental Association)",
    "E": "Durable Medical Equipment",
    "G": "Procedures/Professional Services (Temporary)",
    "H": "Alcohol and Drug Abuse Treatment Services (Medicaid)",
    "J": "Drugs Administered Other Than Oral Method, Chemotherapy Drugs",
    "K": "Temporary Codes (DME MACs)",
    "L": "Orthotic and Prosthetic Procedures, Devices",
    "M": "Medical Services",
    "P": "Pathology and Laboratory Services",
    "Q": "Temporary Codes",
    "R": "Diagnostic Radiology Services",
    "S": "Temporary National Codes (Non-Medicare)",
    "T": "National Codes Established for State Medicaid Agencies",
    "U": "Coronavirus Diagnostic Laboratory Tests (added 2020)",
    "V": "Vision, Hearing and Speech-Language Pathology Services",
}

# Finer ranges inside a letter: (letter, low, high, title).
SUBSECTIONS: tuple[tuple[str, int, int, str], ...] = (
    ("A", 0, 999, "Transportation Services Including Ambulance"),
    ("A", 4000, 8999, "Medical and Surgical Supplies"),
    ("A", 9000, 9999, "Administrative, Miscellaneous and Experimental"),
    ("J", 0, 8999, "Drugs Administered Other Than Oral Method"),
    ("J", 9000, 9999, "Chemotherapy Drugs"),
    ("V", 0, 2999, "Vision Services"),
    ("V", 5000, 5299, "Hearing Services"),
    ("V", 5300, 5399, "Speech-Language Pathology Services"),
)


# --------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Field:
    """One field of the HCPCS contractor record (1-based, inclusive positions)."""

    name: str          # attrs key
    label: str         # the layout's field name
    start: int
    end: int
    occurs: int = 1    # repeated fields (OCCURS MAX) sit side by side
    excel: str = ""    # column header in the Excel form (numbered 1..occurs when repeated)
    kind: str = "text"  # text | date | int

    @property
    def width(self) -> int:
        return self.end - self.start + 1


FIELDS: tuple[Field, ...] = (
    Field("pricing_indicator", "HCPCS Pricing Indicator Code", 120, 121, 4, "PRICE"),
    Field("multiple_pricing_indicator", "HCPCS Multiple Pricing Indicator Code", 128, 128, 1, "MULT_PI"),
    Field("coverage_issues_manual", "HCPCS Coverage Issues Manual Reference Section Number",
          129, 134, 3, "CIM"),
    Field("carriers_manual", "HCPCS Medicare Carriers Manual Reference Section Number",
          147, 154, 3, "MCM"),
    Field("statute", "HCPCS Statute Number", 171, 180, 1, "STATUTE"),
    Field("lab_certification", "HCPCS Lab Certification Code", 181, 183, 8, "LABCERT"),
    Field("cross_reference", "HCPCS Cross Reference Code", 205, 209, 5, "XREF"),
    Field("coverage", "HCPCS Coverage Code", 230, 230, 1, "COV"),
    Field("asc_payment_group", "HCPCS ASC Payment Group Code", 231, 232, 1, "ASC_GRP"),
    Field("asc_effective_date", "HCPCS ASC Payment Group Effective Date", 233, 240, 1, "ASC_DT", "date"),
    Field("mog_payment_group", "HCPCS MOG Payment Group Code", 241, 243, 1, "OPPS"),
    Field("mog_payment_policy_indicator", "HCPCS MOG Payment Policy Indicator", 244, 244, 1, "OPPS_PI"),
    Field("mog_effective_date", "HCPCS MOG Effective Date", 245, 252, 1, "OPPS_DT", "date"),
    Field("processing_note", "HCPCS Processing Note Number", 253, 256, 1, "PROCNOTE"),
    Field("betos", "HCPCS Berenson-Eggers Type Of Service Code", 257, 259, 1, "BETOS"),
    Field("type_of_service", "HCPCS Type Of Service Code", 261, 261, 5, "TOS"),
    Field("anesthesia_base_units", "HCPCS Anesthesia Base Unit Quantity", 266, 268, 1, "ANEST_BU", "int"),
    Field("code_added_date", "HCPCS Code Added Date", 269, 276, 1, "ADD DT", "date"),
    Field("action_effective_date", "HCPCS Action Effective Date", 277, 284, 1, "ACT EFF DT", "date"),
    Field("termination_date", "HCPCS Termination Date", 285, 292, 1, "TERM DT", "date"),
    Field("action_code", "HCPCS Action Code", 293, 293, 1, "ACTION CD"),
)

# Short labels for lookups (``enrich``).
LABELS: dict[str, str] = {
    "pricing_indicator": "Pricing indicator",
    "multiple_pricing_indicator": "Multiple pricing indicator",
    "coverage_issues_manual": "Coverage Issues Manual reference",
    "carriers_manual": "Medicare Carriers Manual reference",
    "statute": "Statute",
    "lab_certification": "Lab certification",
    "cross_reference": "Cross reference",
    "coverage": "Coverage",
    "asc_payment_group": "ASC payment group",
    "asc_effective_date": "ASC payment group effective date",
    "mog_payment_group": "MOG payment group",
    "mog_payment_policy_indicator": "MOG payment policy indicator",
    "mog_effective_date": "MOG effective date",
    "processing_note": "Processing note",
    "betos": "BETOS",
    "type_of_service": "Type of service",
    "anesthesia_base_units": "Anesthesia base units",
    "code_added_date": "Code added",
    "action_effective_date": "Action effective",
    "termination_date": "Terminated",
    "action_code": "Action code",
}

# --------------------------------------------------------------------------- record layout file
LAYOUT_RE = re.compile(r"^HCPCS?(\d{4})_recordlayout\.txt$", re.I)   # HCPCS2019_..., HCPC2026_...
_FIELD_HEAD = re.compile(r"^\s+\d+\.\s+(\S.*?)\s*$")
_FIELD_POS = re.compile(r"^\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+\w+)?\s*$")
_TABLE_HEAD = re.compile(r"^ (\w+_TB)\s+\S")
_CODE_LINE = re.compile(r"^(\s*)(\S{1,3})\s+=\s+(\S.*)$")
_OCCURS = re.compile(r"OCCURS MIN:\s*\d+\s+OCCURS MAX:\s*(\d+)")
_APPENDIX_FIELDS = {"BETOS_TB": "betos", "CMS_TYPE_SRVC_TB": "type_of_service"}

# Layout fields read outside FIELDS (the key, sequence, record id and descriptions) or padding.
_BASE_LABELS = frozenset({
    "Healthcare Common Procedure Coding System Code", "HCPCS Code Redefinition Group", "FILLER",
    "HCPCS Modifier Code", "HCPCS Sequence Number", "HCPCS Record Identification Code",
    "HCPCS Long Description", "HCPCS Short Description"})


@dataclass
class Layout:
    """What the official layout file says: field positions by name and code meanings by field.

    ``extra`` holds the fields this layout names that :data:`FIELDS` does not know (a field
    CMS adds in a later year): they are read at the layout's positions and kept in ``attrs``.
    """

    positions: dict[str, tuple[int, int]]
    meanings: dict[str, dict[str, str]]
    record_length: int = RECORD_LENGTH
    extra: tuple[Field, ...] = ()

    @property
    def fields(self) -> tuple[Field, ...]:
        return FIELDS + self.extra


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", re.sub(r"^HCPCS\s+", "", label, flags=re.I).lower()).strip("_")


def parse_layout(src: Source) -> Layout:  # noqa: C901 - one pass over a report-style text
    """Read HCPCS<YYYY>_recordlayout.txt: field positions, each field's CODES list and the appendix tables."""
    lines = [ln.expandtabs(8).rstrip() for ln in src.text_lines(encoding="cp1252")]
    by_label = {f.label: f.name for f in FIELDS}
    positions: dict[str, tuple[int, int]] = {}
    occurs: dict[str, int] = {}
    order: list[str] = []
    label: str | None = None      # the field being described (for its OCCURS line)
    meanings: dict[str, dict[str, str]] = {}
    field: str | None = None       # attrs name of the field whose codes are being read
    in_codes = False
    entry: tuple[str, str, int] | None = None  # (field, code, indent) being continued
    for i, line in enumerate(lines):
        head = _FIELD_HEAD.match(line)
        table = _TABLE_HEAD.match(line)
        if head and i + 1 < len(lines) and _FIELD_POS.match(lines[i + 1]):
            label = re.sub(r"\s{2,}.*$", "", head.group(1))
            pos = _FIELD_POS.match(lines[i + 1])
            assert pos is not None
            if label not in positions:
                order.append(label)
            positions.setdefault(label, (int(pos.group(2)), int(pos.group(3))))
            field, in_codes, entry = by_label.get(label) or _slug(label), False, None
            continue
        occ = _OCCURS.search(line)
        if occ and label is not None:
            occurs.setdefault(label, int(occ.group(1)))
            continue
        if table:
            field, in_codes, entry = _APPENDIX_FIELDS.get(table.group(1)), True, None
            continue
        if field is None:
            continue
        if line.strip().startswith("CODES") and line.strip().endswith(":"):
            in_codes, entry = True, None
            continue
        if not in_codes or not line.strip():
            continue
        m = _CODE_LINE.match(line)
        if m:
            indent, code, text = len(m.group(1)), m.group(2), m.group(3).strip()
            meanings.setdefault(field, {}).setdefault(code, text)
            entry = (field, code, indent)
        elif entry and len(line) - len(line.lstrip()) > entry[2] and not set(line.strip()) <= {"-"}:
            f, code, _ = entry
            meanings[f][code] = f"{meanings[f][code]} {line.strip()}"
    missing = [f.label for f in FIELDS if f.label not in positions]
    if missing:
        raise DataError(f"{src.display}: not a HCPCS record layout (no {missing[0]})")
    for f in FIELDS:
        if positions[f.label] != (f.start, f.end):
            beg, end = positions[f.label]
            raise DataError(f"{src.display}: {f.label} is at {beg}-{end}, "
                            f"this parser reads it at {f.start}-{f.end}")
    rec = _RECORD_LEN.search("\n".join(lines[:40]))
    length = int(rec.group(1)) if rec else RECORD_LENGTH
    extra = []
    for name in order:
        if name in by_label or name in _BASE_LABELS or name.upper().startswith("FILLER"):
            continue
        beg, end = positions[name]
        n = occurs.get(name, 1)
        if end + (n - 1) * (end - beg + 1) > length:
            raise DataError(f"{src.display}: {name} at {beg}-{end} (x{n}) lies outside the {length}-byte record")
        extra.append(Field(_slug(name), name, beg, end, n, kind="date" if "date" in name.lower() else "text"))
    return Layout(positions, meanings, length, tuple(extra))


_RECORD_LEN = re.compile(r"HCPCS Contractor Record.*\n\s+(\d+)\s+1\s+\1\s+REC")


MEANING_TABLE = "hcpcs_code_meaning"


def meaning_table(layout: Layout) -> Table:
    """The layout's code lists as a release table: (field, code, meaning)."""
    rows = [(field, code, text) for field, codes in layout.meanings.items() for code, text in codes.items()]
    return Table(("field", "code", "meaning"), rows, (("field", "code"),))


# --------------------------------------------------------------------------- parsed rows
@dataclass
class Entry:
    """One code or modifier with its long description joined and its fields decoded."""

    code: str
    is_modifier: bool
    long_description: str
    short_description: str
    fields: dict[str, Any]
    line: int  # where it starts in the file (1-based), for messages


def _date(raw: str, src: Source, line: int, name: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return _dt.datetime.strptime(raw, "%Y%m%d").date().isoformat()
    except ValueError:
        raise DataError(f"{src.display}: line {line}: bad {name} {raw!r} (want YYYYMMDD)") from None


def _value(f: Field, raw: str, src: Source, line: int) -> Any:
    raw = raw.strip()
    if not raw:
        return None
    if f.kind == "date":
        return _date(raw, src, line, f.name)
    if f.kind == "int":
        if not raw.isdigit():
            raise DataError(f"{src.display}: line {line}: bad {f.name} {raw!r}")
        return int(raw)
    return raw


def _collect(f: Field, values: list[Any]) -> Any:
    """A repeated field becomes a list of its non-empty occurrences; a single one its value."""
    if f.occurs == 1:
        return values[0]
    kept = [v for v in values if v is not None]
    return kept or None


def _fixed_fields(rec: str, src: Source, line: int, fields: tuple[Field, ...] = FIELDS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        vals = []
        for i in range(f.occurs):
            a = f.start - 1 + i * f.width
            vals.append(_value(f, rec[a:a + f.width], src, line))
        v = _collect(f, vals)
        if v is not None:
            out[f.name] = v
    return out


# --------------------------------------------------------------------------- fixed-width file
def _record_key(rec: str) -> tuple[str, bool]:
    """(code or modifier, is_modifier) of a record: the code is 1-5, a modifier 4-5 after 3 blanks."""
    rid = rec[10]
    if rid in "78":
        return rec[3:5], True
    return rec[0:5], False


def _looks_like_record(line: str) -> bool:
    return len(line) >= DESCRIPTION_END and line[10:11] in ("3", "4", "7", "8") and line[5:10].isdigit()


def parse_fixed(src: Source, quirks: list[str] | None = None, fields: tuple[Field, ...] = FIELDS) -> list[Entry]:
    """Parse an ANWEB fixed-width file; raise DataError on any structural fault.

    A record longer than the layout whose extra bytes are all blank (January 2026: G9871 is
    546 bytes) is read as its first 320 bytes, and the quirk is appended to ``quirks``.
    ``fields`` are the detail fields to read (the layout's, see :attr:`Layout.fields`).
    """
    data = src.read_bytes()
    text = data.decode("cp1252", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    else:
        raise DataError(f"{src.display}: truncated (last record has no line end)")
    blank_tail = 0
    while lines and not lines[-1].strip():
        lines.pop()
        blank_tail += 1
    if blank_tail and quirks is not None:
        quirks.append(f"{src.name}: ends with {blank_tail} blank line(s) after the last record; ignored.")
    entries: list[Entry] = []
    started = False
    last_seq = 0
    for no, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if len(line) > RECORD_LENGTH and not line[RECORD_LENGTH:].strip():
            if quirks is not None and _looks_like_record(line):
                quirks.append(f"{src.name}: line {no} ({line[:5].strip()}) is {len(line)} bytes, "
                              f"blank after byte {RECORD_LENGTH}; read as a {RECORD_LENGTH}-byte record.")
            line = line[:RECORD_LENGTH]
        if not started:
            if not _looks_like_record(line):
                continue  # the disclaimer lines CMS puts in front of the records
            started = True
        if not line.strip():
            raise DataError(f"{src.display}: line {no}: blank line among the records")
        if not _looks_like_record(line):
            raise DataError(f"{src.display}: line {no}: not a HCPCS record ({len(line)} bytes)")
        rid = line[10]
        seq = int(line[5:10])
        code, is_mod = _record_key(line)
        if rid in "37":
            if len(line) != RECORD_LENGTH:
                raise DataError(f"{src.display}: line {no}: record is {len(line)} bytes, want {RECORD_LENGTH}")
            _check_code(code, is_mod, src, no)
            entries.append(Entry(code, is_mod, line[11:91].strip(), line[91:119].strip(),
                                 _fixed_fields(line, src, no, fields), no))
            last_seq = seq
            continue
        # continuation: must follow its own first line, in sequence, carrying text only
        if len(line) > RECORD_LENGTH:
            raise DataError(f"{src.display}: line {no}: record is {len(line)} bytes, want at most {RECORD_LENGTH}")
        parent = entries[-1] if entries else None
        if parent is None or parent.code != code or parent.is_modifier != (rid == "8") or seq <= last_seq:
            raise DataError(f"{src.display}: line {no}: continuation of {code.strip()} "
                            "does not follow its first record")
        if line[DESCRIPTION_END:].strip():
            raise DataError(f"{src.display}: line {no}: continuation record carries detail fields")
        parent.long_description = _join(parent.long_description, line[11:91].strip())
        last_seq = seq
    if not entries:
        raise DataError(f"{src.display}: no HCPCS records found")
    return entries


def _join(head: str, more: str) -> str:
    return f"{head} {more}".strip() if more else head


def _check_code(code: str, is_mod: bool, src: Source, line: int) -> None:
    ok = MODIFIER_RE.match(code) if is_mod else CODE_RE.match(code)
    if not ok:
        what = "modifier" if is_mod else "code"
        raise DataError(f"{src.display}: line {line}: bad HCPCS {what} {code!r}")


# --------------------------------------------------------------------------- Excel updates
HEADER_FIRST = "HCPC"


def parse_excel(src: Source) -> list[Entry]:
    """Parse an ANWEB .xlsx (sheet 'A', else the first sheet): rows after the header row, one per code.

    A long description that does not fit one cell goes on in a record-id 4 (or 8) row.
    """
    from ..xlsx import sheet_names, sheet_rows

    names = sheet_names(src)
    return _excel_entries(sheet_rows(src, "A" if "A" in names else names[0]), src)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _excel_entries(rows: list[tuple[Any, ...]], src: Source) -> list[Entry]:
    head_at = next((i for i, r in enumerate(rows) if r and _cell(r[0]).strip() == HEADER_FIRST), None)
    if head_at is None:
        raise DataError(f"{src.display}: no header row starting with {HEADER_FIRST!r}")
    cols = {(_cell(h).strip()): i for i, h in enumerate(rows[head_at]) if h is not None}
    needed = ["HCPC", "RECID", "LONG DESCRIPTION", "SHORT DESCRIPTION"]
    for f in FIELDS:
        needed += [f.excel] if f.occurs == 1 else [f"{f.excel}{i}" for i in range(1, f.occurs + 1)]
    missing = [c for c in needed if c not in cols]
    if missing:
        raise DataError(f"{src.display}: header row lacks columns {', '.join(missing)}")
    entries: list[Entry] = []
    for no, row in enumerate(rows[head_at + 1:], head_at + 2):
        if not any(_cell(v).strip() for v in row):
            continue  # trailing empty rows
        get = lambda name: _cell(row[cols[name]]) if cols[name] < len(row) else ""  # noqa: E731
        rid = get("RECID").strip()
        if rid not in ("3", "4", "7", "8"):
            raise DataError(f"{src.display}: row {no}: record id {rid!r}, want 3, 4, 7 or 8")
        is_mod = rid in ("7", "8")
        code = get("HCPC").strip()
        if rid in ("4", "8"):  # a description too long for one cell goes on in the next row
            parent = entries[-1] if entries else None
            if parent is None or parent.code != code or parent.is_modifier != is_mod:
                raise DataError(f"{src.display}: row {no}: continuation of {code} "
                                "does not follow its first row")
            parent.long_description = _join(parent.long_description, get("LONG DESCRIPTION").strip())
            continue
        _check_code(code, is_mod, src, no)
        fields: dict[str, Any] = {}
        for f in FIELDS:
            names = [f.excel] if f.occurs == 1 else [f"{f.excel}{i}" for i in range(1, f.occurs + 1)]
            v = _collect(f, [_value(f, get(n), src, no) for n in names])
            if v is not None:
                fields[f.name] = v
        entries.append(Entry(code, is_mod, get("LONG DESCRIPTION").strip(),
                             get("SHORT DESCRIPTION").strip(), fields, no))
    if not entries:
        raise DataError(f"{src.display}: no rows after the header row")
    return entries


# --------------------------------------------------------------------------- concepts
def _terminated(fields: dict[str, Any], effective_from: _dt.date) -> bool:
    """Discontinued in this file: action code D, or a termination date before the release starts."""
    if fields.get("action_code") == "D":
        return True
    term = fields.get("termination_date")
    return term is not None and _dt.date.fromisoformat(term) < effective_from


def concepts(entries: list[Entry], effective_from: _dt.date, src: Source) -> tuple[list[Concept], dict[str, int]]:
    """Section rows (letters present) then codes then modifiers, with the counts measured."""
    seen: set[tuple[str, bool]] = set()
    codes: list[Concept] = []
    mods: list[Concept] = []
    letters: list[str] = []
    terminated = 0
    for e in entries:
        if (e.code, e.is_modifier) in seen:
            raise DataError(f"{src.display}: line {e.line}: {e.code} appears twice")
        seen.add((e.code, e.is_modifier))
        if not e.long_description:
            raise DataError(f"{src.display}: line {e.line}: {e.code} has no long description")
        attrs = dict(e.fields)
        if e.is_modifier:
            mods.append(Concept(e.code, e.long_description, "modifier", None, None,
                                e.short_description or None, attrs))
            continue
        letter = e.code[0]
        if letter not in letters:
            letters.append(letter)
        billable = not _terminated(attrs, effective_from)
        if not billable:
            terminated += 1
            attrs["status"] = "discontinued"
        codes.append(Concept(e.code, e.long_description, "code", billable, letter,
                             e.short_description or None, attrs))
    sections = [Concept(l, SECTIONS.get(l, f"HCPCS Level II {l} codes"), "section",
                        attrs={"letter": l}) for l in sorted(letters)]
    counts = {"sections": len(sections), "codes": len(codes), "modifiers": len(mods),
              "discontinued": terminated}
    return sections + codes + mods, counts


# --------------------------------------------------------------------------- plan
ANNUAL_RE = re.compile(r"^HCPC(\d{4})_(?:CONTR_)?ANWEB(?:_w_disclaimer)?\.(txt|xlsx)$", re.I)
# HCPC2020_APR_ANWEB.xlsx, HCPC2026_JAN_ANWEB_01122026.txt (a re-issue's date), HCPC2026_OCT_ANWEB_v2.txt
QUARTER_RE = re.compile(r"^HCPC(\d{4})_(JAN|APR|JUL|OCT)_ANWEB(?:_(?:v\d+|\d{8}))*\.(txt|xlsx)$", re.I)


_MONTH_WORD = re.compile(r"(?i)(?<![a-z])(jan|apr|jul|oct)(?:[a-z]*)(?![a-z])")
_LAYOUT_TITLE = re.compile(rb"HCPCS Contractor Record - (\d{4})")


def is_anweb(src: Source) -> bool:
    """The file has the ANWEB record layout: after any disclaimer lines, fixed-width records
    with a 5-digit sequence number at 6-10 and the record id (3, 4, 7, 8) at 11."""
    lines = [line.rstrip("\r") for line in src.head_lines()]
    for i, line in enumerate(lines):
        if _looks_like_record(line):
            following = [x for x in lines[i:i + 50] if x.strip()]
            return len(following) >= 10 and all(_looks_like_record(x) for x in following)
    return False


def layout_year(src: Source) -> int | None:
    """The year of a record-layout file, by name or by its title ("HCPCS Contractor Record - 2026")."""
    m = LAYOUT_RE.match(src.name)
    if m:
        return int(m.group(1))
    if src.name.lower().endswith(".txt"):
        t = _LAYOUT_TITLE.search(src.head()[:8192])
        if t:
            return int(t.group(1))
    return None


def _release_of(src: Source) -> tuple[int, int, str] | None:
    """(year, month, extension) of a file that is a HCPCS Level II release, else None.

    By the agency's file name; a fixed-width file under another name is recognised by its
    record layout, its year and quarter taken from its name or folders (January if none says).
    """
    r = _release_by_name(src)
    if r is not None or src.name.lower().endswith((".xlsx", ".xls")):
        return r
    if not is_anweb(src):
        return None
    years = src.years()
    if not years:
        return None
    month = 1
    for text in (src.name, src.member or "", src.path.name, src.path.parent.name):
        w = _MONTH_WORD.search(text)
        if w:
            month = MONTHS[w.group(1).upper()]
            break
    return years[0], month, "txt"


def _release_by_name(src: Source) -> tuple[int, int, str] | None:
    m = ANNUAL_RE.match(src.name)
    if m:
        return int(m.group(1)), 1, m.group(2).lower()
    m = QUARTER_RE.match(src.name)
    if m:
        return int(m.group(1)), MONTHS[m.group(2).upper()], m.group(3).lower()
    return None


def _container(src: Source) -> Any:
    """The zip a member came from, or the folder of a loose file: companions must share it."""
    return src.path if src.member else src.path.parent


def plan(sources: list[Source]) -> list[Plan]:
    """One plan per (year, quarter) found; the fixed-width text wins over the Excel form.

    The files shipped next to the ANWEB file (same zip or folder, same year and quarter) go
    into the same release: the other form (.xlsx, cross-checked), the corrections, the
    transaction report, the NOC codes and the processing notes (:mod:`.hcpcs_files`).
    """
    from . import hcpcs_files

    forms: dict[tuple[int, int], list[tuple[Source, str]]] = {}
    companions: list[tuple[Source, tuple[str, int, int | None]]] = []
    for src in sources:
        r = _release_of(src)
        if r is not None:
            forms.setdefault((r[0], r[1]), []).append((src, r[2]))
            continue
        c = hcpcs_files.companion(src)
        if c is not None:
            companions.append((src, c))
    layouts = sorted(((y, src) for src in sources if (y := layout_year(src)) is not None),
                     key=lambda pair: (pair[0], pair[1].display))
    starts = sorted(forms)
    plans = []
    for i, (year, month) in enumerate(starts):
        start, _quarter_end = hcpcs_quarter(year, month)
        end = _dt.date(year, 12, 31)  # until replaced, at most to the year's end
        if i + 1 < len(starts):
            ny, nm = starts[i + 1]
            end = min(end, _dt.date(ny, nm, 1) - _dt.timedelta(days=1))
        have = sorted(forms[(year, month)], key=lambda f: (f[1] != "txt", f[0].display))
        src = have[0][0]
        extra: dict[str, Source] = {}
        other = [f for f, ext in have[1:] if ext != have[0][1] and _container(f) == _container(src)]
        if have[0][1] == "txt" and other:
            extra["xlsx"] = other[0]
        for csrc, (kind, cy, cm) in companions:
            if cy == year and cm in (month, None) and _container(csrc) == _container(src) and kind not in extra:
                extra[kind] = csrc
        layout = _layout_for(year, layouts, src)
        plans.append(Plan(SYSTEM, f"{year}-{month:02d}",
                          [src] + ([layout] if layout else []) + [extra[k] for k in sorted(extra)],
                          _builder(src, layout, year, month, start, end, extra)))
    return plans


def _layout_for(year: int, layouts: list[tuple[int, Source]], src: Source) -> Source | None:
    """The release's own layout (same zip or folder, same year), else the newest one not newer
    than the release (else the oldest there is)."""
    if not layouts:
        return None
    own = [s for y, s in layouts if y == year and _container(s) == _container(src)]
    if own:
        return own[0]
    fitting = [s for y, s in layouts if y <= year]
    return fitting[-1] if fitting else layouts[0][1]


def _builder(src: Source, layout: Source | None, year: int, month: int,
             start: _dt.date, end: _dt.date, extra: dict[str, Source]) -> Callable[[], ReleaseBuild]:
    def build() -> ReleaseBuild:
        return build_release(src, year, month, start, end, layout, extra)
    return build


NOTE_TABLE = "hcpcs_processing_note"
NOC_TABLE = "hcpcs_noc"
CORRECTION_TABLE = "hcpcs_correction"
ACTION_KEY_TABLE = "hcpcs_action_key"
FIELD_TABLE = "hcpcs_layout_field"


def build_release(src: Source, year: int, month: int, start: _dt.date, end: _dt.date | None,
                  layout: Source | None = None, extra: dict[str, Source] | None = None) -> ReleaseBuild:
    """Parse one HCPCS file, its record layout and the files shipped with it into a release."""
    extra = extra or {}
    tables: dict[str, Table] = {}
    fields = FIELDS
    if layout is not None:
        lay = parse_layout(layout)
        tables[MEANING_TABLE] = meaning_table(lay)
        fields = lay.fields
        tables[FIELD_TABLE] = Table(("name", "label", "start", "end", "occurs"),
                                    [(f.name, f.label, f.start, f.end, f.occurs) for f in fields], (("name",),))
    fixed = not src.name.lower().endswith((".xlsx", ".xls"))
    quirks: list[str] = []
    entries = parse_fixed(src, quirks, fields) if fixed else parse_excel(src)
    notes: list[str] = []
    counts_extra: dict[str, int] = {}
    notes += _companions(entries, extra, tables, counts_extra)
    rows, counts = concepts(entries, start, src)
    if counts["codes"] == 0 or counts["modifiers"] == 0:
        raise DataError(f"{src.display}: {counts['codes']} codes and {counts['modifiers']} modifiers: "
                        "not a complete HCPCS file")
    counts.update(counts_extra)
    head = [f"{counts['codes']} codes and {counts['modifiers']} modifiers parsed from {src.display}"]
    if layout is not None:
        head.append(f"record layout: {layout.display}")
    if counts["discontinued"]:
        head.append(f"{counts['discontinued']} codes are discontinued in this file (kept, billable false)")
    used = [layout] if layout else []
    return ReleaseBuild(
        system=SYSTEM,
        release=f"{year}-{month:02d}",
        label=f"{SYSTEM_NAMES[SYSTEM]} {year} {MONTH_NAMES[month]}",
        effective_from=start,
        effective_to=end,
        sources=[s.ref() for s in [src] + used + [extra[k] for k in sorted(extra)]],
        concepts=rows,
        counts=counts,
        tables=tables,
        notes=head + quirks + notes,
    )


def _companions(entries: list[Entry], extra: dict[str, Source], tables: dict[str, Table],
                counts: dict[str, int]) -> list[str]:
    """Read the files shipped with the ANWEB file into ``entries`` and ``tables``; the notes they give."""
    from . import hcpcs_files as hf

    notes: list[str] = []
    by_key = {(e.code, e.is_modifier): e for e in entries}
    if "xlsx" in extra:  # the same release as a workbook: must agree with the .txt, record by record
        other = {(e.code, e.is_modifier): e for e in parse_excel(extra["xlsx"])}
        diffs = hf.compare_forms(by_key, other)
        counts["xlsx_records"] = len(other)
        counts["xlsx_differences"] = sum(len(v) for v in diffs.values())
        if not diffs:
            notes.append(f"{extra['xlsx'].name} agrees with the .txt on all {len(other):,} records")
        for what, codes in sorted(diffs.items()):
            notes.append(f"{extra['xlsx'].name} differs from the .txt in {what} for {len(codes)} record(s) "
                         f"(e.g. {', '.join(codes[:5])}); the .txt is used")
    if "report" in extra:  # the action code of every code and modifier
        rep = hf.parse_transaction_report(extra["report"])
        tables[ACTION_KEY_TABLE] = Table(("code", "meaning"), sorted(rep.key.items()), (("code",),))
        bad = hf.report_mismatches(rep, {k: e.fields.get("action_code") for k, e in by_key.items()})
        counts["report_action_mismatches"] = len(bad["different"])
        name = extra["report"].name
        if bad["different"]:
            notes.append(f"{name}: action codes differ from the ANWEB file for {len(bad['different'])} "
                         f"code(s): {', '.join(bad['different'][:8])}")
        else:
            notes.append(f"{name}: the action code of every code and modifier in both files agrees "
                         f"({len(rep.actions()) - len(bad['not_in_anweb']):,} records)")
        if bad["not_in_anweb"]:
            notes.append(f"{name}: lists {len(bad['not_in_anweb'])} code(s) the ANWEB file does not carry: "
                         f"{', '.join(sorted(bad['not_in_anweb'])[:10])}")
        if bad["not_in_report"]:
            notes.append(f"{name}: does not list {', '.join(bad['not_in_report'][:10])}")
        if bad["sheets_disagree"]:
            notes.append(f"{name}: its two sheets give different action codes for "
                         f"{', '.join(bad['sheets_disagree'][:10])}")
        for key, codes in bad.items():
            if key.startswith("missing_from:") and codes:
                notes.append(f"{name}: sheet {key.split(':', 1)[1]!r} omits {', '.join(codes[:10])} "
                             "(listed on the other sheet)")
    if "corrections" in extra:  # a re-issue's corrections: the release reflects them
        corrections = hf.parse_corrections(extra["corrections"])
        notes += hf.apply_corrections(by_key, corrections, extra["corrections"])
        counts["corrections"] = len(corrections)
        tables[CORRECTION_TABLE] = Table(
            ("code", "modifier", "action", "effective", "details", "source"),
            [(c.code, int(c.modifier), c.action, c.effective, json.dumps(c.values) if c.values else None,
              extra["corrections"].name) for c in corrections], (("code",),))
    if "noc" in extra:  # not otherwise classified codes
        noc = hf.parse_noc(extra["noc"])
        tables[NOC_TABLE] = Table(("code", "title", "added", "terminated"),
                                  [(n.code, n.title, n.added, n.terminated) for n in noc], (("code",),))
        missing = [n.code for n in noc if (n.code, False) not in by_key]
        for n in noc:
            e = by_key.get((n.code, False))
            if e is not None:
                e.fields["noc"] = {k: v for k, v in (("added", n.added), ("terminated", n.terminated),
                                                     ("source", extra["noc"].name)) if v}
        counts["noc_codes"] = len(noc)
        notes.append(f"{extra['noc'].name}: {len(noc)} NOC codes"
                     + (f"; not in the ANWEB file: {', '.join(missing[:10])}" if missing else ""))
    if "notes" in extra:  # processing notes by number
        text = hf.parse_processing_notes(extra["notes"])
        tables[NOTE_TABLE] = Table(("number", "text"), sorted(text.items()), (("number",),))
        used = {e.fields["processing_note"] for e in entries if e.fields.get("processing_note", "0000").strip("0")}
        unknown = sorted(used - set(text))
        counts["processing_notes"] = len(text)
        notes.append(f"{extra['notes'].name}: {len(text)} processing notes"
                     + (f"; referred to but not in the file: {', '.join(unknown)}" if unknown else ""))
    return notes


# --------------------------------------------------------------------------- grammar
def readings(key: str) -> list[Reading]:
    """A letter A-V and 4 digits is a Level II code (D = CDT); 2 characters with a letter, a modifier."""
    out: list[Reading] = []
    if CODE_RE.match(key):
        if key[0] == "D":
            out.append(Reading(key, 0.6, "code", "CDT (ADA), not in the CMS file",
                               {"system": "cdt", "section": _section(key)}))
        else:
            out.append(Reading(key, 0.95, "code", "HCPCS Level II: letter A-V + 4 digits",
                               {"section": _section(key)}))
    elif MODIFIER_RE.match(key):
        out.append(Reading(key, 0.7, "modifier", "HCPCS Level II modifier (2 characters)"))
    return out


def _section(code: str) -> dict[str, Any]:
    letter = code[0]
    sec: dict[str, Any] = {"letter": letter, "title": SECTIONS.get(letter, "")}
    if code[1:].isdigit():
        n = int(code[1:])
        for l, lo, hi, title in SUBSECTIONS:
            if l == letter and lo <= n <= hi:
                sec["range"] = {"from": f"{letter}{lo:04d}", "to": f"{letter}{hi:04d}", "title": title}
                break
    return sec


def structure(code: str, db: Any) -> dict[str, Any]:
    """Level II, its section by letter (and range where CMS splits a letter); modifiers say so."""
    key = code.strip().upper()
    if MODIFIER_RE.match(key):
        return {"level": "II", "kind": "modifier", "section": {"letter": None, "title": "Modifiers"}}
    if not CODE_RE.match(key):
        return {}
    out: dict[str, Any] = {"level": "II", "section": _section(key)}
    if key[0] == "D":
        out["maintainer"] = "ADA"
        out["note"] = "CDT (ADA), not in the CMS file"
    return out


def enrich(record: dict[str, Any], row: Any, db: Any) -> None:
    """Add the layout's fields with human labels, the code's status with its dates, and what the
    files shipped with the release say of it: processing note text, NOC status, corrections."""
    attrs = row_attrs(row)
    meanings = _meanings(db)
    fields: dict[str, Any] = {}
    for f in FIELDS + _extra_fields(db):
        if f.name in attrs:
            fields[LABELS.get(f.name, f.label)] = _explain(attrs[f.name], meanings.get(f.name, {}))
    record["fields"] = fields
    status: dict[str, Any] = {"state": "terminated" if attrs.get("status") == "discontinued" else "active"}
    for name in ("code_added_date", "action_effective_date", "termination_date"):
        if name in attrs:
            status[name.replace("_date", "")] = attrs[name]
    if "action_code" in attrs:
        status["action_code"] = attrs["action_code"]
    if attrs.get("corrections"):
        status["corrected"] = True
    record["status"] = status
    number = str(attrs.get("processing_note") or "")
    if number.strip("0"):
        text = _note_text(db, number)
        record["processing_notes"] = [{"number": number, "text": text} if text else
                                      {"number": number, "text": None,
                                       "note": "the release has no processing-notes file with this number"}]
    if attrs.get("noc"):
        record["noc"] = {"noc": True, **attrs["noc"],
                         "meaning": "not otherwise classified: the payer asks for a description of the item "
                                    "or service (for a drug, its NDC, name, strength and quantity)"}
    if attrs.get("corrections"):
        record["corrections"] = [dict(c) for c in attrs["corrections"]]
    record["notes"] = _notes(record)


def _notes(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The same facts as notes (kind, text): what every front end lists under a code."""
    out: list[dict[str, Any]] = []
    for n in record.get("processing_notes", []):
        out.append({"kind": f"processing note {n['number']}", "text": n["text"] or n.get("note", "")})
    noc = record.get("noc")
    if noc:
        dates = ", ".join(f"{k} {noc[k]}" for k in ("added", "terminated") if noc.get(k))
        out.append({"kind": "NOC", "text": f"Not otherwise classified ({noc.get('source', 'NOC list')}"
                    + (f"; {dates}" if dates else "") + f"): {noc['meaning'].split(': ', 1)[1]}"})
    for c in record.get("corrections", []):
        when = f" effective {c['effective']}" if c.get("effective") else ""
        values = "; ".join(f"{k} {v}" for k, v in (c.get("values") or {}).items())
        how = "already in the ANWEB file" if c.get("in_anweb") else "applied by medcodes"
        out.append({"kind": "corrected", "text": f"CMS correction: {c['action']}{when}"
                    + (f" ({values})" if values else "") + f" [{c['source']}; {how}]"})
    return out


def _extra_fields(db: Any) -> tuple[Field, ...]:
    """Fields the release's own record layout has beyond :data:`FIELDS` (none for 2019-2026)."""
    if db is None or not db.has_table(FIELD_TABLE):
        return ()
    known = {f.name for f in FIELDS}
    return tuple(Field(n, label, start, end, occurs) for n, label, start, end, occurs in db.conn.execute(
        f'SELECT name, label, start, "end", occurs FROM "{FIELD_TABLE}"') if n not in known)


def _note_text(db: Any, number: str) -> str | None:
    if db is None or not db.has_table(NOTE_TABLE):
        return None
    row = db.conn.execute(f'SELECT text FROM "{NOTE_TABLE}" WHERE number = ?', (number,)).fetchone()
    return row[0] if row else None


def _meanings(db: Any) -> dict[str, dict[str, str]]:
    """Code meanings from the release's copy of the record layout's code lists (empty without one)."""
    if db is None or not db.has_table(MEANING_TABLE):
        return {}
    out: dict[str, dict[str, str]] = {}
    for field, code, text in db.conn.execute(f'SELECT field, code, meaning FROM "{MEANING_TABLE}"'):
        out.setdefault(field, {})[code] = text
    return out


def _explain(value: Any, meanings: dict[str, str]) -> Any:
    """'D1D' -> 'D1D (Wheelchairs)' when the layout gives a meaning; lists item by item."""
    if isinstance(value, list):
        return [_explain(v, meanings) for v in value]
    text = meanings.get(str(value))
    return f"{value} ({text})" if text else value
