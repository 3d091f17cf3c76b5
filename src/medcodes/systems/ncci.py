"""CMS's National Correct Coding Initiative (NCCI) edits, installed as one release per quarter.

A data-only system module (``SYSTEM`` and ``plan``, like ``crosswalk``): the
NCCI files hold edits between codes, not codes. CMS publishes, each quarter:

* **MUE tables** (Medically Unlikely Edits), one per setting:
  ``MCR_MUE_PractitionerServices_Eff_MM-DD-YYYY.csv`` (and the same rows as
  ``.xlsx``), ``MCR_MUE_OutpatientHospitalServices_Eff_...csv`` and
  ``MCR_MUE_DMESupplierServices_Eff_...csv``. A CSV opens with the AMA notice
  in one quoted cell (Latin-1: the ``®`` sign is byte 0xAE), then the header
  ``"HCPCS/\\nCPT Code"`` (the cell breaks across lines),
  ``<Setting> Services MUE Values``, ``MUE Adjudication Indicator``,
  ``MUE Rationale``, then one code a row; the indicator cell is ``1 Line
  Edit``, ``2 Date of Service Edit: Policy`` or ``3 Date of Service Edit:
  Clinical``. Each table names its setting in its value column, which is how
  the three are told apart (and checked against the file name).
* **Add-on code edits** ``AOC_VyyyyQn-MCR.xlsx``: the AMA notice row, the
  header ``AOC_Edit_Type, Add-On_Code, AOC_DelDT, Primary_Code,
  Primary_Code_DelDT, AOC_Edit_EffDT, AOC_Edit_DelDT,
  Special_Instruction_Notes`` and one (add-on, primary) pair a row. Dates are
  Julian ``YYYYDDD`` (``2024183`` = 2024-07-01); a deletion date is the last
  day the edit (or code) is in effect. Type 1: the listed primaries are the
  only ones; type 2: no list (primary ``CCCCC``, "Contractor Defined Primary
  Codes"): the payer decides; type 3: some primaries listed, the payer may
  accept others.
* **PTP edits** (procedure-to-procedure, ``ccipra-v###r0-f#.txt``
  practitioner, ``ccioph-...`` outpatient hospital): tab-delimited text, a
  copyright preamble, a header ``Column 1``/``Column 2`` whose cells continue
  on the next rows, then one edit a row: column 1, column 2, ``*`` if in
  existence prior to 1996, effective date and deletion date (YYYYMMDD, ``*`` =
  none), modifier indicator (0/1/9) and rationale. Not in ../shared/data (too
  big); read the same way when a user has them.

``plan`` groups the files by quarter (``Eff_04-01-2026`` and ``V2026Q2`` are
2026 Q2; PTP ``v###`` versions count quarters, v322 = 2026 Q3) into the
release ``2026-q2`` in effect from the quarter's first to its last day, with
tables ``mue``, ``aoc`` and ``ptp`` (see :data:`TABLES`). CPT codes appear in
these tables as codes only: no descriptor is read or stored.

The same parsers read a user's own files (``medcodes check --ncci FILE``,
:func:`medcodes.claims.ncci.load`). A row that does not fit its layout raises
:class:`DataError` naming the file and line.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..errors import DataError
from ..model import ReleaseBuild, Table
from ..sources import Source
from . import Plan

SYSTEM = "ncci"

#: setting id -> how CMS names it in the MUE table header and file name
SETTINGS = {"practitioner": "Practitioner", "outpatient-hospital": "Outpatient Hospital",
            "dme-supplier": "DME Supplier"}
_SETTING_OF_NAME = {"practitionerservices": "practitioner", "outpatienthospitalservices": "outpatient-hospital",
                    "facilityoutpatienthospitalservices": "outpatient-hospital",
                    "dmesupplierservices": "dme-supplier"}
_SETTING_OF_HEADER = {"practitioner": "practitioner", "outpatienthospital": "outpatient-hospital",
                      "facilityoutpatienthospital": "outpatient-hospital", "dmesupplier": "dme-supplier"}
MODIFIER_INDICATORS = {"0": "not allowed", "1": "allowed", "9": "not applicable"}
#: MUE adjudication indicators as CMS words them
MAI = {"1": "Line Edit", "2": "Date of Service Edit: Policy", "3": "Date of Service Edit: Clinical"}
AOC_TYPES = {"1": "only the listed primary codes",
             "2": "primary codes defined by the payer (Medicare contractor)",
             "3": "listed primary codes, and others the payer may define"}
CONTRACTOR_DEFINED = "CCCCC"

TABLES = {
    "mue": ("setting", "code", "units", "indicator", "rationale"),
    "aoc": ("addon", "type", "addon_deleted", "primary_code", "primary_deleted", "effective", "deleted", "notes"),
    "ptp": ("setting", "column1", "column2", "prior_1996", "effective", "deleted", "modifier", "rationale"),
}

_CODE = re.compile(r"^[0-9A-Z]{5}$")
_MUE_NAME = re.compile(r"^MCR_MUE_([A-Za-z]+)_Eff_(\d\d)-(\d\d)-(\d{4})\.(csv|xlsx)$", re.I)
_AOC_NAME = re.compile(r"^AOC_V(\d{4})Q([1-4])-MCR\.xlsx$", re.I)
_PTP_NAME = re.compile(r"^cci(pra|oph)-v(\d{3})r\d+-f\d+\.(txt|csv|xlsx)$", re.I)
_ZIP_QUARTER = re.compile(r"(20\d\d)[-_ ]?q([1-4])", re.I)
#: PTP file versions count quarters: v322 is 2026 Q3 (SOURCES.md: Q3 = v322r0, Q4 = v323r0)
_PTP_V0 = (322, 2026 * 4 + 2)
_PTP_SETTING = {"pra": "practitioner", "oph": "outpatient-hospital"}


# ====================================================================== rows
@dataclass(frozen=True, slots=True)
class Mue:
    code: str
    units: int
    indicator: str      # "1", "2" or "3"
    rationale: str
    setting: str        # practitioner | outpatient-hospital | dme-supplier


@dataclass(frozen=True, slots=True)
class AocEdit:
    addon: str
    type: str                       # "1", "2" or "3"
    addon_deleted: _dt.date | None  # last day the add-on code is in effect
    primary: str                    # a code, or CCCCC (contractor defined)
    primary_deleted: _dt.date | None
    effective: _dt.date
    deleted: _dt.date | None        # last day the edit is in effect
    notes: str

    def active_on(self, day: _dt.date) -> bool:
        return (self.effective <= day and (self.deleted is None or day <= self.deleted)
                and (self.addon_deleted is None or day <= self.addon_deleted))

    def primary_on(self, day: _dt.date) -> bool:
        """The edit names a real primary code still in effect on ``day``."""
        return self.primary != CONTRACTOR_DEFINED and (self.primary_deleted is None or day <= self.primary_deleted)


@dataclass(frozen=True, slots=True)
class PtpEdit:
    column1: str
    column2: str
    prior_1996: bool
    effective: _dt.date
    deleted: _dt.date | None
    modifier_indicator: str
    rationale: str
    setting: str = "practitioner"

    def active_on(self, day: _dt.date) -> bool:
        return self.effective <= day and (self.deleted is None or day <= self.deleted)


# ====================================================================== reading
def text_of(src: Source) -> str:
    """A CSV/TXT file as text (Latin-1 when not UTF-8), or a workbook's first sheet as tab-separated text."""
    if src.name.lower().endswith(".xlsx"):
        from ..xlsx import sheet_rows

        return "\n".join("\t".join("" if v is None else str(v).replace("\t", " ").replace("\n", " ")
                                   for v in row) for row in sheet_rows(src))
    return "\n".join(src.text_lines(encoding="utf-8"))


def _rows(src: Source, text: str) -> list[list[str]]:
    delim = "\t" if src.name.lower().endswith(".xlsx") or "\t" in text[:5000] else ","
    return list(csv.reader(io.StringIO(text), delimiter=delim))


def kind_of(src: Source, text: str) -> str:
    """``mue``, ``aoc`` or ``ptp`` from the header (a user's file may have any name)."""
    head = re.sub(r"\s+", "", text[:6000]).lower()
    if "mueadjudicationindicator" in head or "muevalues" in head:
        return "mue"
    if "add-on_code" in head and "primary_code" in head:
        return "aoc"
    if "column1" in head and "column2" in head:
        return "ptp"
    raise DataError(f"{src.display}: not a NCCI file (no MUE, add-on code or PTP header row)")


def _squash(cell: str) -> str:
    return re.sub(r"[\s/_\-]+", "", cell).lower()


def julian(value: str, src: Source, line: int, what: str) -> _dt.date | None:
    """A CMS ``YYYYDDD`` date (``2024183`` = 2024-07-01); blank = none."""
    value = str(value).strip()
    if not value:
        return None
    if len(value) != 7 or not value.isdigit():
        raise DataError(f"{src.display}: line {line}: {what} {value!r} is not a YYYYDDD date")
    year, day = int(value[:4]), int(value[4:])
    last = 366 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 365
    if year < 1900 or not 1 <= day <= last:
        raise DataError(f"{src.display}: line {line}: {what} {value!r} is not a YYYYDDD date (day 1-{last})")
    return _dt.date(year, 1, 1) + _dt.timedelta(days=day - 1)


def _ymd(value: str, src: Source, line: int, what: str) -> _dt.date:
    value = value.strip()
    try:
        return _dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise DataError(f"{src.display}: line {line}: {what} {value!r} is not YYYYMMDD") from None


# ---------------------------------------------------------------------- MUE
def parse_mue(src: Source, text: str | None = None) -> list[Mue]:
    """Every row of one MUE table; the setting comes from the table's own value-column header."""
    text = text_of(src) if text is None else text
    rows = _rows(src, text)
    header = next((i for i, r in enumerate(rows[:40]) if r and _squash(r[0]) == "hcpcscptcode"), None)
    if header is None or len(rows[header]) < 3:
        raise DataError(f"{src.display}: not a NCCI MUE table (no 'HCPCS/CPT Code' header row)")
    head = [c.strip() for c in rows[header]]
    m = re.match(r"^(.*?)\s*Services\s+MUE\s+Values$", re.sub(r"\s+", " ", head[1]), re.I)
    setting = _SETTING_OF_HEADER.get(_squash(m.group(1))) if m else None
    if setting is None:
        raise DataError(f"{src.display}: MUE value column {head[1]!r} names no setting medcodes knows "
                        "(Practitioner, Outpatient Hospital, DME Supplier)")
    if _squash(head[2]) != "mueadjudicationindicator":
        raise DataError(f"{src.display}: third column is {head[2]!r}, not 'MUE Adjudication Indicator'")
    named = _MUE_NAME.match(src.name)
    if named and _SETTING_OF_NAME.get(named.group(1).lower(), setting) != setting:
        raise DataError(f"{src.display}: the file name says {named.group(1)} but the table's header says "
                        f"{head[1]!r}")
    out: list[Mue] = []
    seen: set[str] = set()
    for n, row in enumerate(rows[header + 1:], start=header + 2):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        mue = _mue_row(cells, setting, src, n)
        if mue.code in seen:
            raise DataError(f"{src.display}: line {n}: {mue.code} is listed twice")
        seen.add(mue.code)
        out.append(mue)
    if not out:
        raise DataError(f"{src.display}: no MUE rows after the header row (truncated?)")
    return out


def _mue_row(cells: list[str], setting: str, src: Source, n: int) -> Mue:
    if len(cells) < 3:
        raise DataError(f"{src.display}: line {n}: {len(cells)} fields, a MUE row has 4 (truncated?)")
    code, units, mai = cells[0].upper(), cells[1], cells[2]
    if not _CODE.match(code):
        raise DataError(f"{src.display}: line {n}: {code!r} is not a HCPCS/CPT code")
    if not units.isdigit():
        raise DataError(f"{src.display}: line {n}: MUE value {units!r} is not a whole number")
    digit = mai[:1]
    if digit not in MAI or _squash(mai[1:]) != _squash(MAI[digit]):
        raise DataError(f"{src.display}: line {n}: adjudication indicator {mai!r} is not one of "
                        + ", ".join(f"'{k} {v}'" for k, v in MAI.items()))
    return Mue(code, int(units), digit, cells[3] if len(cells) > 3 else "", setting)


# ---------------------------------------------------------------------- add-on codes
AOC_HEADER = ("AOC_Edit_Type", "Add-On_Code", "AOC_DelDT", "Primary_Code", "Primary_Code_DelDT",
              "AOC_Edit_EffDT", "AOC_Edit_DelDT", "Special_Instruction_Notes")


def parse_aoc(src: Source, text: str | None = None) -> list[AocEdit]:
    """Every (add-on, primary) edit of an AOC workbook (or the same columns as CSV/TSV)."""
    text = text_of(src) if text is None else text
    rows = _rows(src, text)
    want = [_squash(h) for h in AOC_HEADER]
    header = next((i for i, r in enumerate(rows[:40]) if [_squash(c) for c in r[:8]] == want), None)
    if header is None:
        raise DataError(f"{src.display}: not a NCCI add-on code file (no header row "
                        f"{', '.join(AOC_HEADER)})")
    out = []
    for n, row in enumerate(rows[header + 1:], start=header + 2):
        cells = [c.strip() for c in row] + [""] * (8 - len(row))
        if not any(cells):
            continue
        etype, addon, adel, prim, pdel, eff, edel, notes = cells[:8]
        if etype not in AOC_TYPES:
            raise DataError(f"{src.display}: line {n}: AOC edit type {etype!r} is not 1, 2 or 3")
        for code in (addon, prim):
            if not _CODE.match(code):
                raise DataError(f"{src.display}: line {n}: {code!r} is not a HCPCS/CPT code")
        if etype == "2" and prim != CONTRACTOR_DEFINED:
            raise DataError(f"{src.display}: line {n}: type 2 edit lists primary {prim}, not "
                            f"{CONTRACTOR_DEFINED} (contractor defined)")
        start = julian(eff, src, n, "AOC_Edit_EffDT")
        if start is None:
            raise DataError(f"{src.display}: line {n}: AOC_Edit_EffDT is empty")
        out.append(AocEdit(addon, etype, julian(adel, src, n, "AOC_DelDT"), prim, julian(pdel, src, n,
                           "Primary_Code_DelDT"), start, julian(edel, src, n, "AOC_Edit_DelDT"), notes))
    if not out:
        raise DataError(f"{src.display}: no add-on code edits after the header row (truncated?)")
    return out


# ---------------------------------------------------------------------- PTP
def parse_ptp(src: Source, text: str | None = None, setting: str | None = None) -> list[PtpEdit]:
    text = text_of(src) if text is None else text
    rows = _rows(src, text)
    header = next((i for i, r in enumerate(rows[:40])
                   if len(r) >= 2 and _squash(r[0]) == "column1" and _squash(r[1]) == "column2"), None)
    if header is None:
        raise DataError(f"{src.display}: not a NCCI PTP file (no 'Column 1', 'Column 2' header row)")
    if setting is None:
        m = _PTP_NAME.match(src.name)
        setting = _PTP_SETTING[m.group(1).lower()] if m else "practitioner"
    edits: list[PtpEdit] = []
    for n, row in enumerate(rows[header + 1:], start=header + 2):
        cells = [c.strip() for c in row]
        if not any(cells) or not cells[0]:
            continue  # the header's continuation rows (0=not allowed, *=no data ...) and blank lines
        edits.append(_ptp_row(cells, src, n, setting))
    if not edits:
        raise DataError(f"{src.display}: no edits after the header row (truncated?)")
    return edits


def _ptp_row(cells: list[str], src: Source, n: int, setting: str) -> PtpEdit:
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
    deleted = None if dele in ("", "*") else _ymd(dele, src, n, "deletion date")
    return PtpEdit(c1, c2, prior == "*", _ymd(eff, src, n, "effective date"), deleted, mod,
                   cells[6] if len(cells) > 6 else "", setting)


# ====================================================================== releases
def _quarter_start(year: int, q: int) -> _dt.date:
    return _dt.date(year, 3 * q - 2, 1)


def quarter_of(src: Source) -> tuple[int, int, str] | None:
    """(year, quarter, kind) of an official NCCI file by its name, else None."""
    m = _MUE_NAME.match(src.name)
    if m and m.group(1).lower() in _SETTING_OF_NAME:
        month, day, year = int(m.group(2)), int(m.group(3)), int(m.group(4))
        if day == 1 and month in (1, 4, 7, 10):
            return year, (month + 2) // 3, "mue"
        return None
    m = _AOC_NAME.match(src.name)
    if m:
        return int(m.group(1)), int(m.group(2)), "aoc"
    m = _PTP_NAME.match(src.name)
    if m:
        z = _ZIP_QUARTER.search(src.path.name) if src.member else None
        if z:
            return int(z.group(1)), int(z.group(2)), "ptp"
        idx = int(m.group(2)) - _PTP_V0[0] + _PTP_V0[1]
        return idx // 4, idx % 4 + 1, "ptp"
    return None


def plan(sources: list[Source]) -> list[Plan]:
    """One ``YYYY-qN`` release per quarter with NCCI files; a MUE table's CSV wins over its XLSX twin."""
    by_q: dict[tuple[int, int], list[Source]] = {}
    for src in sources:
        q = quarter_of(src)
        if q is not None:
            by_q.setdefault(q[:2], []).append(src)
    plans = []
    for (year, q), srcs in sorted(by_q.items()):
        srcs = sorted(srcs, key=lambda s: s.display)
        plans.append(Plan(SYSTEM, f"{year}-q{q}", srcs, _builder(year, q, srcs)))
    return plans


def _builder(year: int, q: int, srcs: list[Source]) -> Callable[[], ReleaseBuild]:
    def build() -> ReleaseBuild:
        return build_release(year, q, srcs)
    return build


def build_release(year: int, q: int, srcs: list[Source]) -> ReleaseBuild:
    start = _quarter_start(year, q)
    end = (_quarter_start(year + (q == 4), q % 4 + 1)) - _dt.timedelta(days=1)
    mue: dict[str, list[Mue]] = {}
    mue_from: dict[str, Source] = {}
    twins: list[tuple[Source, list[Mue]]] = []
    aoc: list[AocEdit] = []
    ptp: list[PtpEdit] = []
    notes: list[str] = []
    counts: Counter = Counter()
    for src in srcs:
        kind = quarter_of(src)[2]   # type: ignore[index]
        if kind == "mue":
            rows = parse_mue(src)
            setting = rows[0].setting
            if setting in mue:   # the CSV and XLSX forms of one table: must hold the same rows
                twins.append((src, rows))
                continue
            mue[setting], mue_from[setting] = rows, src
        elif kind == "aoc":
            if aoc:
                raise DataError(f"{src.display}: a second add-on code file for {year} Q{q}")
            aoc = parse_aoc(src)
        else:
            ptp.extend(parse_ptp(src))
    for src, rows in twins:
        setting = rows[0].setting
        if sorted(rows, key=lambda m: m.code) != sorted(mue[setting], key=lambda m: m.code):
            raise DataError(f"{src.display}: differs from {mue_from[setting].display} (same table, other form)")
        notes.append(f"{src.display}: same {len(rows)} rows as {mue_from[setting].display} (checked)")
    for setting, rows in sorted(mue.items()):
        counts[f"mue_{setting.replace('-', '_')}"] = len(rows)
        notes.append(f"MUE {SETTINGS[setting]} Services: {len(rows)} codes from {mue_from[setting].display}")
    for setting in SETTINGS:
        if setting not in mue:
            notes.append(f"no MUE {SETTINGS[setting]} Services table in this pull")
    if aoc:
        counts["aoc"] = len(aoc)
        types = Counter(e.type for e in aoc)
        for t in sorted(types):
            counts[f"aoc_type{t}"] = types[t]
        counts["aoc_addons"] = len({e.addon for e in aoc})
        notes.append(f"add-on code edits: {len(aoc)} (type 1: {types['1']}, type 2: {types['2']}, "
                     f"type 3: {types['3']}) for {counts['aoc_addons']} add-on codes; Julian dates converted")
    else:
        notes.append("no add-on code (AOC) file in this pull")
    if ptp:
        for setting, n in sorted(Counter(e.setting for e in ptp).items()):
            counts[f"ptp_{setting.replace('-', '_')}"] = n
    else:
        notes.append("no PTP edit files in this pull")
    notes.append("CPT codes appear as codes only (AMA notice rows skipped; no descriptors stored)")
    tables = {
        "mue": Table(TABLES["mue"], [(m.setting, m.code, m.units, m.indicator, m.rationale)
                                     for rows in mue.values() for m in rows], [("code",)]),
        "aoc": Table(TABLES["aoc"], [(e.addon, e.type, _iso(e.addon_deleted), e.primary, _iso(e.primary_deleted),
                                      e.effective.isoformat(), _iso(e.deleted), e.notes) for e in aoc],
                     [("addon",), ("primary_code",)]),
        "ptp": Table(TABLES["ptp"], [(e.setting, e.column1, e.column2, int(e.prior_1996), e.effective.isoformat(),
                                      _iso(e.deleted), e.modifier_indicator, e.rationale) for e in ptp],
                     [("column2",)]),
    }
    return ReleaseBuild(SYSTEM, f"{year}-q{q}", f"NCCI {year} Q{q} (Medicare)", start, end,
                        [s.ref() for s in srcs], [], dict(counts), tables, notes)


def _iso(d: _dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _day(s: str | None) -> _dt.date | None:
    return _dt.date.fromisoformat(s) if s else None


# ====================================================================== reading a release back
def mue_rows(db: Any, code: str | None = None) -> Iterable[Mue]:
    sql, args = ("SELECT * FROM mue", ()) if code is None else ("SELECT * FROM mue WHERE code = ?", (code,))
    for setting, code, units, ind, why in db.conn.execute(sql, args):
        yield Mue(code, units, ind, why, setting)


def aoc_rows(db: Any, where: str = "", args: tuple[Any, ...] = ()) -> list[AocEdit]:
    sql = "SELECT * FROM aoc" + (f" WHERE {where}" if where else "")
    return [AocEdit(a, t, _day(ad), p, _day(pd), _dt.date.fromisoformat(eff), _day(de), notes)
            for a, t, ad, p, pd, eff, de, notes in db.conn.execute(sql, args)]


def ptp_rows(db: Any, column2: str) -> list[PtpEdit]:
    return [PtpEdit(c1, c2, bool(prior), _dt.date.fromisoformat(eff), _day(de), mod, why, setting)
            for setting, c1, c2, prior, eff, de, mod, why in
            db.conn.execute("SELECT * FROM ptp WHERE column2 = ?", (column2,))]
