"""CMS NCCI edits in their official quarterly layouts: procedure-to-procedure (PTP) pairs and MUEs.

Neither file ships with medcodes (the PTP files are hundreds of MB a quarter;
both carry AMA CPT content): users download them from CMS and point medcodes
at them (see docs/claims.md). The loaders read the files as CMS ships them:

PTP ("Column 1/Column 2 Edits", ``ccipra-v###r0-f#.txt`` practitioner,
``ccioph-...`` outpatient hospital): tab-delimited text, a copyright preamble,
a title row, a header row starting ``Column 1``/``Column 2`` whose cells continue
on the next rows (``0=not allowed``, ``*=no data`` ...), then one edit a row:
column 1, column 2, ``*`` if in existence prior to 1996, effective date
(YYYYMMDD), deletion date (YYYYMMDD, ``*`` = none), modifier indicator
(0 not allowed, 1 allowed, 9 not applicable), PTP edit rationale. The Excel
and CSV forms have the same columns and are read the same way.

MUE (``MCR_MUE_PractitionerServices_Eff_MM-DD-YYYY.csv``, outpatient hospital,
DME supplier): CSV with a quoted copyright preamble, then the header row
``HCPCS/CPT Code, <Setting> Services MUE Values, MUE Adjudication Indicator,
MUE Rationale`` and one code a row; the indicator cell is ``1 Line Edit``,
``2 Date of Service Edit: Policy`` or ``3 Date of Service Edit: Clinical``.

A row that does not fit the layout raises DataError naming the file and line.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import DataError
from ..sources import Source

_CODE = re.compile(r"^[0-9A-Z]{5}$")
MODIFIER_INDICATORS = {"0": "not allowed", "1": "allowed", "9": "not applicable"}
MAI = {"1": "Line Edit", "2": "Date of Service Edit: Policy", "3": "Date of Service Edit: Clinical"}


@dataclass(frozen=True, slots=True)
class PtpEdit:
    column1: str
    column2: str
    prior_1996: bool
    effective: _dt.date
    deleted: _dt.date | None
    modifier_indicator: str
    rationale: str

    def active_on(self, day: _dt.date) -> bool:
        return self.effective <= day and (self.deleted is None or day <= self.deleted)


@dataclass(frozen=True, slots=True)
class Mue:
    code: str
    units: int
    indicator: str      # "1", "2" or "3"
    rationale: str
    setting: str        # "Practitioner", "Outpatient Hospital", "DME Supplier"


@dataclass
class NcciEdits:
    """Loaded PTP edits (by column 2 code) and MUEs (by code), with the files they came from."""

    ptp: dict[str, list[PtpEdit]] = field(default_factory=dict)
    mue: dict[str, Mue] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add_ptp(self, edits: Iterable[PtpEdit], source: str) -> None:
        n = 0
        for e in edits:
            self.ptp.setdefault(e.column2, []).append(e)
            n += 1
        self.sources.append(source)
        self.counts[source] = n

    def add_mue(self, rows: Iterable[Mue], source: str) -> None:
        n = 0
        for m in rows:
            self.mue[m.code] = m
            n += 1
        self.sources.append(source)
        self.counts[source] = n

    def pairs(self, column1: str, column2: str, day: _dt.date) -> list[PtpEdit]:
        return [e for e in self.ptp.get(column2, ()) if e.column1 == column1 and e.active_on(day)]

    def source_name(self, kind: str) -> str:
        names = [s for s in self.sources if (kind == "ptp") == ("mue" not in s.lower())]
        return ", ".join(names) or kind


def load(paths: Iterable[str | Path]) -> NcciEdits:
    """Load every PTP and MUE file given (zips are opened; kind told by the header row)."""
    from ..sources import scan

    edits = NcciEdits()
    for p in paths:
        for src in scan(p):
            text = _text(src)
            if _is_mue(text):
                edits.add_mue(parse_mue(src, text), src.display)
            else:
                edits.add_ptp(parse_ptp(src, text), src.display)
    return edits


def _text(src: Source) -> str:
    if src.name.lower().endswith(".xlsx"):
        return _xlsx_as_tsv(src)
    return "\n".join(src.text_lines(encoding="utf-8"))


def _xlsx_as_tsv(src: Source) -> str:
    from ..xlsx import sheet_rows

    return "\n".join("\t".join("" if v is None else str(v) for v in row) for row in sheet_rows(src))


def _is_mue(text: str) -> bool:
    return "MUE Adjudication Indicator" in text[:5000] or "MUE Values" in text[:5000]


def _date(value: str, src: Source, line: int, what: str) -> _dt.date:
    value = value.strip()
    try:
        return _dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise DataError(f"{src.display}: line {line}: {what} {value!r} is not YYYYMMDD") from None


# ------------------------------------------------------------------------ PTP
def parse_ptp(src: Source, text: str | None = None) -> list[PtpEdit]:
    text = _text(src) if text is None else text
    delim = "\t" if "\t" in text[:5000] else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delim))
    header = next((i for i, r in enumerate(rows[:40])
                   if len(r) >= 2 and r[0].strip().lower().replace(" ", "") == "column1"
                   and r[1].strip().lower().replace(" ", "") == "column2"), None)
    if header is None:
        raise DataError(f"{src.display}: not a NCCI PTP file (no 'Column 1', 'Column 2' header row)")
    edits: list[PtpEdit] = []
    for n, row in enumerate(rows[header + 1:], start=header + 2):
        cells = [c.strip() for c in row]
        if not any(cells) or not cells[0]:
            continue  # the header's continuation rows (0=not allowed, *=no data ...) and blank lines
        edits.append(_ptp_row(cells, src, n))
    if not edits:
        raise DataError(f"{src.display}: no edits after the header row (truncated?)")
    return edits


def _ptp_row(cells: list[str], src: Source, n: int) -> PtpEdit:
    if len(cells) < 6:
        raise DataError(f"{src.display}: line {n}: {len(cells)} fields, a PTP edit has 7 (truncated?)")
    c1, c2, prior, eff, dele, mod = cells[:6]
    for code in (c1, c2):
        if not _CODE.match(code):
            raise DataError(f"{src.display}: line {n}: {code!r} is not a HCPCS/CPT code")
    if mod not in MODIFIER_INDICATORS:
        raise DataError(f"{src.display}: line {n}: modifier indicator {mod!r} is not 0, 1 or 9")
    if prior not in ("", "*"):
        raise DataError(f"{src.display}: line {n}: prior-1996 mark {prior!r} is not '*' or blank")
    deleted = None if dele in ("", "*") else _date(dele, src, n, "deletion date")
    return PtpEdit(c1, c2, prior == "*", _date(eff, src, n, "effective date"), deleted, mod,
                   cells[6] if len(cells) > 6 else "")


# ------------------------------------------------------------------------ MUE
_SETTING = re.compile(r"^(.*?)\s*Services MUE Values", re.I)


def parse_mue(src: Source, text: str | None = None) -> list[Mue]:
    text = _text(src) if text is None else text
    delim = "\t" if src.name.lower().endswith(".xlsx") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delim))
    header = next((i for i, r in enumerate(rows[:40]) if r and r[0].strip().startswith("HCPCS/CPT Code")), None)
    if header is None or len(rows[header]) < 3:
        raise DataError(f"{src.display}: not a NCCI MUE table (no 'HCPCS/CPT Code' header row)")
    m = _SETTING.match(rows[header][1].strip())
    setting = m.group(1) if m else rows[header][1].strip()
    out = []
    for n, row in enumerate(rows[header + 1:], start=header + 2):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        out.append(_mue_row(cells, setting, src, n))
    if not out:
        raise DataError(f"{src.display}: no MUE rows after the header row (truncated?)")
    return out


def _mue_row(cells: list[str], setting: str, src: Source, n: int) -> Mue:
    if len(cells) < 3:
        raise DataError(f"{src.display}: line {n}: {len(cells)} fields, a MUE row has 4 (truncated?)")
    code, units, mai = cells[0], cells[1], cells[2]
    if not _CODE.match(code):
        raise DataError(f"{src.display}: line {n}: {code!r} is not a HCPCS/CPT code")
    if not units.isdigit():
        raise DataError(f"{src.display}: line {n}: MUE value {units!r} is not a whole number")
    digit = mai[:1]
    if digit not in MAI:
        raise DataError(f"{src.display}: line {n}: adjudication indicator {mai!r} is not 1, 2 or 3")
    return Mue(code, int(units), digit, cells[3] if len(cells) > 3 else "", setting)
