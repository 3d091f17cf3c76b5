"""The other files of a CMS HCPCS Level II quarterly zip, read next to the ANWEB file.

Since 2021 CMS ships each quarter as one zip (e.g. ``january-2026-alpha-numeric-hcpcs-file.zip``):

* ``HCPC2026_JAN_ANWEB_01122026.xlsx``: the ANWEB records as a workbook; it must agree with
  the fixed-width ``.txt`` (:func:`compare_forms` lists where it does not).
* ``HCPC2026_JAN_ANWEB_Corrections_01122026.xlsx``: corrections made in a re-issue
  (``HCPCS/MOD Code``, ``Action``, ``Effective Date``, then the revised fields):
  :func:`parse_corrections`, applied by :func:`apply_corrections`.
* ``HCPC2026_JAN_ANWEB_Transaction Report_12292025.xlsx``: the action code of every code and
  modifier (sheets ``Changes by HCPC``, ``Changes by Action Code``, ``Action Code Key``):
  :func:`parse_transaction_report`, checked against the ANWEB file by :func:`report_mismatches`.
* ``NOC codes_JAN2026.xlsx``: the "not otherwise classified" codes with add and term dates
  (:func:`parse_noc`).
* ``proc_notes_JAN2026.txt`` (``proc_notes_2020.txt`` in the older annual zips): the
  processing notes by number (:func:`parse_processing_notes`).

Every parser checks the headers it relies on and raises :class:`DataError` naming the file.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import DataError
from ..sources import Source

MONTHS = {"JAN": 1, "APR": 4, "JUL": 7, "OCT": 10}

CORRECTIONS_RE = re.compile(r"^HCPC(\d{4})_(JAN|APR|JUL|OCT)_ANWEB_Corrections(?:_\w+)?\.xlsx$", re.I)
REPORT_RE = re.compile(r"^HCPC(\d{4})_(JAN|APR|JUL|OCT)_ANWEB_Transaction[ _]Report(?:_\w+)?\.xlsx$", re.I)
NOC_RE = re.compile(r"^NOC[ _]codes_(JAN|APR|JUL|OCT)(\d{4})\.xlsx$", re.I)
NOTES_RE = re.compile(r"^proc_notes_(JAN|APR|JUL|OCT)?(\d{4})\.txt$", re.I)


def companion(src: Source) -> tuple[str, int, int | None] | None:
    """(kind, year, month or None) of a companion file: corrections, report, noc or notes."""
    name = src.name
    if m := CORRECTIONS_RE.match(name):
        return "corrections", int(m.group(1)), MONTHS[m.group(2).upper()]
    if m := REPORT_RE.match(name):
        return "report", int(m.group(1)), MONTHS[m.group(2).upper()]
    if m := NOC_RE.match(name):
        return "noc", int(m.group(2)), MONTHS[m.group(1).upper()]
    if m := NOTES_RE.match(name):
        return "notes", int(m.group(2)), MONTHS[m.group(1).upper()] if m.group(1) else None
    return None


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _key(raw: Any) -> tuple[str, bool]:
    """('A4295', False) for a code, ('LT', True) for a modifier (written '   LT' in the workbooks)."""
    text = _text(raw).upper()
    return text, len(text) == 2


def _date(v: Any, src: Source, where: str) -> str | None:
    """An ISO date from an Excel date cell, a YYYYMMDD number or M/D/YYYY text."""
    if v is None or v == "":
        return None
    if isinstance(v, _dt.datetime):
        return v.date().isoformat()
    if isinstance(v, _dt.date):
        return v.isoformat()
    text = _text(v)
    for fmt in ("%Y%m%d", "%m/%d/%Y", "%Y-%m-%d"):
        try:
            return _dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    raise DataError(f"{src.display}: {where}: {text!r} is not a date")


def _header(rows: list[tuple[Any, ...]], first: str, src: Source) -> tuple[int, dict[str, int]]:
    """Row index and column positions of the header row whose first cell is ``first``."""
    for i, row in enumerate(rows[:30]):
        if row and _text(row[0]).upper() == first.upper():
            return i, {_text(h).upper(): j for j, h in enumerate(row) if _text(h)}
    raise DataError(f"{src.display}: no header row starting with {first!r}")


def _need(cols: dict[str, int], names: Iterable[str], src: Source, sheet: str = "") -> None:
    missing = [n for n in names if n.upper() not in cols]
    if missing:
        where = f" sheet {sheet!r}" if sheet else ""
        raise DataError(f"{src.display}:{where} header lacks {', '.join(missing)}")


# --------------------------------------------------------------------------- corrections
@dataclass
class Correction:
    """One row of the Corrections workbook."""

    code: str
    modifier: bool
    action: str               # as CMS wrote it: "Terminate", "Revise TOS", "Do not terminate" ...
    effective: str | None     # ISO date
    values: dict[str, str]    # the revised columns that are filled (Short Description, TOS ...)
    row: int


CORRECTION_COLUMNS = ("HCPCS/MOD Code", "Action", "Effective Date")


def parse_corrections(src: Source) -> list[Correction]:
    from ..xlsx import sheet_rows

    rows = sheet_rows(src)
    at, cols = _header(rows, "HCPCS/MOD Code", src)
    _need(cols, CORRECTION_COLUMNS, src)
    names = [_text(h) for h in rows[at]]
    out: list[Correction] = []
    for no, row in enumerate(rows[at + 1:], at + 2):
        if not any(_text(v) for v in row):
            continue
        cell = lambda name: row[cols[name.upper()]] if cols[name.upper()] < len(row) else None  # noqa: E731
        code, mod = _key(cell("HCPCS/MOD Code"))
        action = _text(cell("Action"))
        if not code or not action:
            raise DataError(f"{src.display}: row {no}: a correction needs a code and an action")
        values = {names[j]: _text(v) for j, v in enumerate(row)
                  if j < len(names) and names[j] and names[j] not in CORRECTION_COLUMNS and _text(v)}
        out.append(Correction(code, mod, action, _date(cell("Effective Date"), src, f"row {no}"), values, no))
    return out


_SHOULD_BE = re.compile(r"\badd date s/b (\d{1,2}/\d{1,2}/\d{4})", re.I)


def apply_corrections(entries: dict[tuple[str, bool], Any], corrections: list[Correction],
                      src: Source) -> list[str]:
    """Make the release reflect each correction; return notes saying which were already in the ANWEB file.

    Every corrected entry gets ``fields['corrections']``: what CMS corrected, when, from which
    file, and whether the ANWEB file already carried it (``in_anweb``) or medcodes applied it.
    """
    notes: list[str] = []
    applied: list[str] = []
    unread: list[str] = []
    absent: list[str] = []
    for c in corrections:
        e = entries.get((c.code, c.modifier))
        if e is None:   # nothing to correct in this release: say so, install the rest
            absent.append(c.code)
            continue
        changes = _correction_changes(c, e.fields)
        if changes is None:
            unread.append(f"{c.code} ({c.action})")
            changes = {}
        before = {k: e.fields.get(k) for k in changes}
        in_anweb = all(before[k] == v for k, v in changes.items())
        for k, v in changes.items():
            if v is None:
                e.fields.pop(k, None)
            else:
                e.fields[k] = v
        if not in_anweb:
            applied.append(c.code)
        record = {"action": c.action, "effective": c.effective, "source": src.name,
                  "in_anweb": in_anweb}
        if c.values:
            record["values"] = dict(c.values)
        e.fields.setdefault("corrections", []).append(record)
    notes.append(f"{src.name}: {len(corrections)} correction(s) "
                 f"({', '.join(c.code for c in corrections)}); "
                 + (f"applied by medcodes: {', '.join(applied)}" if applied else "all already in the ANWEB file"))
    if unread:
        notes.append(f"{src.name}: recorded but not interpreted: {', '.join(unread)}")
    if absent:
        notes.append(f"{src.name}: corrects codes the ANWEB file does not carry (ignored): {', '.join(absent)}")
    return notes


def _correction_changes(c: Correction, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The ANWEB fields a correction sets (None: an action medcodes cannot interpret)."""
    act = c.action.lower()
    out: dict[str, Any] = {}
    eff = _dt.date.fromisoformat(c.effective) if c.effective else None
    if act.startswith("terminate"):
        if eff is None:
            return None
        out["termination_date"] = (eff - _dt.timedelta(days=1)).isoformat()
        out["action_code"] = "D"
    elif act in ("do not terminate", "not terminated", "reinstate"):
        out["termination_date"] = None
        if fields.get("action_code") == "D":
            out["action_code"] = "N"
    elif "xref" in act and "removed" in act:
        out["cross_reference"] = None
    elif m := _SHOULD_BE.search(c.action):
        out["code_added_date"] = _dt.datetime.strptime(m.group(1), "%m/%d/%Y").date().isoformat()
    for column, name in (("TOS", "type_of_service"), ("Pricing", "pricing_indicator")):
        if column in c.values:
            out[name] = [x.strip() for x in c.values[column].split(",") if x.strip()]
    for column, name in (("BETOS", "betos"), ("Coverage", "coverage")):
        if column in c.values:
            out[name] = c.values[column]
    if not out and not act.startswith("revise"):
        return None
    return out


# --------------------------------------------------------------------------- transaction report
REPORT_SHEETS = ("Changes by HCPC", "Changes by Action Code", "Action Code Key")


@dataclass
class TransactionReport:
    """The action code (a letter of the key) of every code and modifier, by sheet."""

    source: str
    key: dict[str, str]                                    # letter -> meaning
    sheets: dict[str, dict[tuple[str, bool], str]]         # sheet -> (code, modifier) -> letter
    titles: dict[tuple[str, bool], tuple[str, str]] = field(default_factory=dict)  # long, short
    clashes: list[str] = field(default_factory=list)       # codes the two sheets give different codes

    def actions(self) -> dict[tuple[str, bool], str]:
        """Every code of either sheet with its action letter (the last sheet's where they disagree)."""
        out: dict[tuple[str, bool], str] = {}
        for rows in self.sheets.values():
            out.update(rows)
        return out


def parse_transaction_report(src: Source) -> TransactionReport:
    from ..xlsx import sheet_rows

    key_rows = sheet_rows(src, "Action Code Key")
    key: dict[str, str] = {}
    for row in key_rows:
        letter, meaning = (_text(row[0]) if row else ""), (_text(row[1]) if len(row) > 1 else "")
        if len(letter) == 1 and letter.isalpha() and meaning:
            key[letter.upper()] = meaning
    if not key:
        raise DataError(f"{src.display}: sheet 'Action Code Key' lists no action codes")
    by_meaning = {m.lower(): letter for letter, m in key.items()}
    sheets: dict[str, dict[tuple[str, bool], str]] = {}
    titles: dict[tuple[str, bool], tuple[str, str]] = {}
    for sheet in REPORT_SHEETS[:2]:
        rows = sheet_rows(src, sheet)
        at, cols = _header(rows, "HCPC", src)
        _need(cols, ("HCPC", "ACTION CD", "SHORT DESCRIPTION", "LONG DESCRIPTION"), src, sheet)
        got: dict[tuple[str, bool], str] = {}
        for no, row in enumerate(rows[at + 1:], at + 2):
            if not any(_text(v) for v in row):
                continue
            k = _key(row[cols["HCPC"]])
            said = _text(row[cols["ACTION CD"]])
            letter = by_meaning.get(said.lower()) or (said.upper() if said.upper() in key else None)
            if letter is None:
                raise DataError(f"{src.display}: sheet {sheet!r} row {no}: action {said!r} "
                                "is not in the Action Code Key")
            if k in got and got[k] != letter:
                raise DataError(f"{src.display}: sheet {sheet!r} lists {k[0]} twice")
            got[k] = letter
            titles.setdefault(k, (_text(row[cols["LONG DESCRIPTION"]]), _text(row[cols["SHORT DESCRIPTION"]])))
        sheets[sheet] = got
    a, b = sheets[REPORT_SHEETS[0]], sheets[REPORT_SHEETS[1]]
    clash = sorted(k[0] for k in a.keys() & b.keys() if a[k] != b[k])
    return TransactionReport(src.name, key, sheets, titles, clash)


def report_mismatches(report: TransactionReport, actions: dict[tuple[str, bool], str | None]) -> dict[str, list[str]]:
    """Where the ANWEB action codes (``actions``) and the report differ, by kind of difference."""
    listed = report.actions()
    out: dict[str, list[str]] = {"different": [], "not_in_anweb": [], "not_in_report": []}
    for k, letter in listed.items():
        if k not in actions:
            out["not_in_anweb"].append(k[0])
        elif (actions[k] or "") != letter:
            out["different"].append(f"{k[0]} ({actions[k]} vs {letter})")
    out["not_in_report"] = [k[0] for k in actions if k not in listed]
    out["sheets_disagree"] = list(report.clashes)
    for sheet, rows in report.sheets.items():
        out[f"missing_from:{sheet}"] = sorted(k[0] for k in listed if k not in rows and k in actions)
    return out


# --------------------------------------------------------------------------- NOC codes
@dataclass(frozen=True)
class NocCode:
    code: str
    title: str
    added: str | None
    terminated: str | None


def parse_noc(src: Source) -> list[NocCode]:
    from ..xlsx import sheet_rows

    rows = sheet_rows(src)
    at, cols = _header(rows, "HCPCS", src)
    _need(cols, ("HCPCS", "LONG DESCRIPTION", "ADD DATE", "TERM DATE"), src)
    out: list[NocCode] = []
    seen: set[str] = set()
    for no, row in enumerate(rows[at + 1:], at + 2):
        code = _text(row[cols["HCPCS"]]).upper() if cols["HCPCS"] < len(row) else ""
        if not code:
            continue
        if not re.match(r"^[A-V][0-9]{4}$", code):
            raise DataError(f"{src.display}: row {no}: {code!r} is not a HCPCS Level II code")
        get = lambda name: row[cols[name]] if cols[name] < len(row) else None  # noqa: E731
        if code in seen:
            # a description too long for one cell goes on in the next row, under the same code, undated
            if out[-1].code == code and not _text(get("ADD DATE")) and not _text(get("TERM DATE")):
                last = out[-1]
                out[-1] = NocCode(code, f"{last.title} {_text(get('LONG DESCRIPTION'))}".strip(),
                                  last.added, last.terminated)
                continue
            raise DataError(f"{src.display}: row {no}: {code} listed twice")
        seen.add(code)
        out.append(NocCode(code, _text(get("LONG DESCRIPTION")), _date(get("ADD DATE"), src, f"row {no}"),
                           _date(get("TERM DATE"), src, f"row {no}")))
    if not out:
        raise DataError(f"{src.display}: no NOC codes after the header row")
    return out


# --------------------------------------------------------------------------- processing notes
_NOTE_START = re.compile(r"^(\d{4})\s*--\s*(.*)$")


def parse_processing_notes(src: Source) -> dict[str, str]:
    """Note number ('0088') -> its text, continuation lines joined, the right-hand '*' frame dropped."""
    notes: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in src.text_lines(encoding="cp1252"):
        text = line.strip().rstrip("*").strip()
        if not text or set(text) <= {"_", "-"} or text.upper() == "PROCESSING NOTES":
            continue
        m = _NOTE_START.match(text)
        if m:
            if m.group(1) in notes:
                raise DataError(f"{src.display}: note {m.group(1)} appears twice")
            current = notes[m.group(1)] = [m.group(2)]
        elif current is not None:
            current.append(text)
        else:
            raise DataError(f"{src.display}: text before the first numbered note: {text[:40]!r}")
    if not notes:
        raise DataError(f"{src.display}: no processing notes (NNNN--text)")
    return {n: re.sub(r"\s+", " ", " ".join(parts)).strip() for n, parts in notes.items()}


# --------------------------------------------------------------------------- the two forms of ANWEB
def compare_forms(txt: dict[tuple[str, bool], Any], xlsx: dict[tuple[str, bool], Any]) -> dict[str, list[str]]:
    """Differences between the .txt and .xlsx forms of one ANWEB release, by field: 'field' -> codes.

    Titles are compared with runs of spaces collapsed (the fixed-width form wraps long
    descriptions at 80 characters).
    """
    out: dict[str, list[str]] = {}

    def note(what: str, code: str) -> None:
        out.setdefault(what, []).append(code)

    for k in txt.keys() - xlsx.keys():
        note("only_in_txt", k[0])
    for k in xlsx.keys() - txt.keys():
        note("only_in_xlsx", k[0])
    for k, a in txt.items():
        b = xlsx.get(k)
        if b is None:
            continue
        if _squash(a.long_description) != _squash(b.long_description):
            note("long_description", k[0])
        if _squash(a.short_description) != _squash(b.short_description):
            note("short_description", k[0])
        for name in sorted(set(a.fields) | set(b.fields)):
            if a.fields.get(name) != b.fields.get(name):
                note(name, k[0])
    return out


def _squash(text: str) -> str:
    return " ".join(text.split())
