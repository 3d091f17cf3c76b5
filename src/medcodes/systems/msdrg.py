"""msdrg: the IPPS final rule's MS-DRG tables and the POA-exempt list, as one release per fiscal year.

Files (recognised by their content with :func:`medcodes.sources.recognise`, whatever their names):

* Table 5 (``TABLE 5.-LIST OF MEDICARE SEVERITY DIAGNOSIS-RELATED GROUPS (MS-DRGS) ... FY 2026 Final
  Rule``; tab-separated, Windows-1252): MS-DRG, post-acute and special-pay flags, MDC, type, title,
  weights (before cap, 10% cap applied), geometric and arithmetic mean LOS. One concept per MS-DRG
  (kind ``drg``, key ``DRG291``).
* Table 6I (``TABLE 6I - COMPLETE MCC LIST``) and 6J (``TABLE 6J - COMPLETE CC LIST``): code, title.
* Table 6K (``TABLE 6K - COMPLETE LIST OF CC EXCLUSIONS``): Part 1 each CC/MCC with its PDX exclusion
  collection (``0002:3 codes``, the count is checked against the collection), the ``PDX collection
  NNNN`` lists, Part 2 (CC/MCC only when discharged alive).
* ``POAexemptCodesFYyy.txt`` (CDC; in ``POAexemptCodesFYyy.zip``): the codes exempt from POA reporting.

Extra tables: ``severity(code, level)`` (MCC/CC, from 6I/6J; Table 6K's own level must agree),
``cc_exclusion(code, collection)``, ``pdx_collection(collection, pdx)``, ``alive_only(code)``,
``poa_exempt(code, title)``. Keys are ICD-10-CM store keys (no dot).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from ..calendar import fiscal_year
from ..errors import DataError
from ..model import Concept, ReleaseBuild, Table
from ..sources import FileKind, Source, recognise
from . import Plan

SYSTEM = "msdrg"

_FY5 = re.compile(r"FY\s*(\d{4}) Final Rule")
_POA_HEAD = re.compile(r"^Order(\d\d)\tPOAexemptCode\t", re.I)


def _first_line(src: Source) -> str:
    lines = src.head_lines()
    return lines[0].lstrip("\ufeff") if lines else ""


def _table5(src: Source) -> str | None:
    head = src.head().decode("cp1252", "replace")
    if not re.match(r'^"?TABLE 5\.\W+LIST OF MEDICARE SEVERITY DIAGNOSIS-RELATED GROUPS', head):
        return None
    m = _FY5.search(head[:400])
    return m.group(1) if m else ""


def _titled(prefix: str) -> Callable[[Source], str | None]:
    def test(src: Source) -> str | None:
        return "" if re.match(rf"^{prefix}\b", _first_line(src)) else None
    return test


def _poa(src: Source) -> str | None:
    m = _POA_HEAD.match(_first_line(src))
    return str(2000 + int(m.group(1))) if m else None


#: The files, by content (their title rows; the POA list by its header "Order26 POAexemptCode ..."),
#: the agency's names as the fallback (Tables 6I-6K state no year: it comes from Table 5 in the same folder).
FILES = (
    FileKind("table5", _table5),
    FileKind("mcc", _titled("TABLE 6I")),
    FileKind("cc", _titled("TABLE 6J")),
    FileKind("ccx", _titled("TABLE 6K")),
    FileKind("poa", _poa, re.compile(r"^POAexemptCodesFY(?P<year>\d\d)\.txt$", re.I)),
)


def plan(sources: list[Source]) -> list[Plan]:
    """The tables of one folder (and the POA-exempt list of the same fiscal year) make one release."""
    found: dict[Path, dict[str, Source]] = defaultdict(dict)
    poa: dict[int, Source] = {}
    fy5: dict[Path, int] = {}
    for f in recognise([s for s in sources if s.name.lower().endswith(".txt")], FILES):
        if f.kind == "poa":
            # the full list and the list of additions share a header: the full list is the larger
            year = int(f.version) if len(f.version) == 4 else 2000 + int(f.version[-2:] or 0)
            if year not in poa or f.source.ref().size > poa[year].ref().size:
                poa[year] = f.source
            continue
        folder = f.source.path.parent
        found[folder].setdefault(f.kind, f.source)
        if f.kind == "table5" and f.by == "content" and f.version:
            fy5[folder] = int(f.version)
    plans = []
    for folder, kinds in sorted(found.items()):
        if "table5" not in kinds:
            continue
        if folder not in fy5:
            raise DataError(f"{kinds['table5'].display}: Table 5 title names no 'FY YYYY Final Rule'")
        fy = fy5[folder]
        srcs = [kinds[k] for k in ("table5", "mcc", "cc", "ccx") if k in kinds]
        if fy in poa:
            srcs.append(poa[fy])
        plans.append(Plan(SYSTEM, str(fy), srcs, _builder(fy, kinds, poa.get(fy))))
    return plans


def _lines(src: Source, encoding: str = "utf-8") -> list[str]:
    return list(src.text_lines(encoding))



def parse_table5(src: Source) -> list[Concept]:
    out = []
    for n, line in enumerate(_lines(src, "cp1252"), 1):      # Windows-1252 text
        cells = [c.strip().strip('"').strip() for c in line.split("\t")]
        if not cells or not re.fullmatch(r"\d{3}", cells[0]):
            continue
        if len(cells) < 10:
            raise DataError(f"{src.display}: line {n}: {len(cells)} columns, Table 5 has 10")
        try:   # "." = none (998 invalid principal diagnosis, 999 ungroupable)
            w, wcap, gm, am = (None if c in (".", "") else float(c) for c in cells[6:10])
        except ValueError as exc:
            raise DataError(f"{src.display}: line {n}: weight or LOS is not a number") from exc
        out.append(Concept(cells[0], cells[5], "drg", True, key=f"DRG{cells[0]}", attrs={
            "mdc": cells[3], "type": cells[4], "post_acute": cells[1] == "Yes", "special_pay": cells[2] == "Yes",
            "weight": w, "weight_capped": wcap, "gmlos": gm, "amlos": am}))
    if len(out) < 700:
        raise DataError(f"{src.display}: {len(out)} MS-DRGs (truncated? Table 5 lists about 770)")
    return out


def parse_list(src: Source) -> list[tuple[str, str]]:
    rows = []
    for line in _lines(src)[2:]:
        if not line.strip():
            continue
        code, _, title = line.partition("\t")
        if not code.strip():     # the table's closing "Notes:" rows
            break
        if not re.fullmatch(r"[A-Z][0-9A-Z]{2}(?:\.[0-9A-Z]{1,4})?", code.strip()):
            raise DataError(f"{src.display}: {code.strip()!r} is not an ICD-10-CM code")
        rows.append((code.strip().replace(".", ""), title.strip()))
    if not rows:
        raise DataError(f"{src.display}: no codes")
    return rows


_P1 = re.compile(r"^ ([A-Z][0-9A-Z]{2,6})\s+(CC|MCC)\s+(?:(\d{4}):([\d,]+) codes?\b|No Excl\b)")
_COLL = re.compile(r"^PDX collection (\d{4})\s*$")
_MEMBER = re.compile(r"^  ([A-Z][0-9A-Z]{2,6})\s")


def parse_6k(src: Source) -> tuple[list[tuple[str, str, str]], dict[str, list[str]], list[str]]:
    """Part 1 (code, level, collection), the collections, Part 2 codes; every Part 1 row and collection size checked."""
    part1: list[tuple[str, str, str]] = []
    sizes: dict[str, int] = {}
    colls: dict[str, list[str]] = {}
    alive: list[str] = []
    current: str | None = None
    part, part1_lines = 1, 0
    for line in _lines(src):
        if line.startswith("K Part 2"):
            part, current = 2, None
            continue
        if line.startswith("K Part 3"):
            break
        if part == 1 and current is None:
            if line.startswith(" ") and line[1:2].isalpha() and not line.startswith(" I10 Dx"):
                part1_lines += 1
            m = _P1.match(line)
            if m:
                part1.append((m.group(1), m.group(2), m.group(3) or ""))    # "" = No Excl
                if m.group(3):
                    sizes[m.group(3)] = int(m.group(4).replace(",", ""))
                continue
        m = _COLL.match(line)
        if m:
            current = m.group(1)
            colls[current] = []
            continue
        m = _MEMBER.match(line)
        if m:
            if part == 2:
                alive.append(m.group(1))
            elif current is not None:
                colls[current].append(m.group(1))
    if not part1 or len(part1) != part1_lines:
        raise DataError(f"{src.display}: Part 1 has {part1_lines} rows, {len(part1)} of them readable")
    bad = [c for c, n in sizes.items() if len(colls.get(c, ())) != n]
    if bad:
        raise DataError(f"{src.display}: PDX collection sizes disagree with Part 1 ({', '.join(bad[:3])})")
    return part1, colls, alive


def parse_poa(src: Source) -> list[tuple[str, str]]:
    rows = []
    for line in _lines(src)[1:]:
        cells = line.split("\t")
        if len(cells) >= 3 and cells[1].strip():
            rows.append((cells[1].strip().replace(".", ""), cells[2].strip()))
    if not rows:
        raise DataError(f"{src.display}: no POA-exempt codes")
    return rows


def _builder(fy: int, kinds: dict[str, Source], poa: Source | None) -> Callable[[], ReleaseBuild]:
    def build() -> ReleaseBuild:
        drgs = parse_table5(kinds["table5"])
        tables: dict[str, Table] = {}
        counts: dict[str, int] = {"drgs": len(drgs)}
        notes: list[str] = []
        sev: dict[str, str] = {}
        for kind, level in (("mcc", "MCC"), ("cc", "CC")):
            if kind in kinds:
                rows = parse_list(kinds[kind])
                counts[level.lower()] = len(rows)
                for code, _t in rows:
                    sev.setdefault(code, level)
        if "ccx" in kinds:
            part1, colls, alive = parse_6k(kinds["ccx"])
            disagree = [c for c, lvl, _x in part1 if c in sev and sev[c] != lvl]
            if disagree:
                raise DataError(f"{kinds['ccx'].display}: CC/MCC level disagrees with Tables 6I/6J for "
                                f"{', '.join(disagree[:3])}")
            for c, lvl, _x in part1:
                sev.setdefault(c, lvl)
            tables["cc_exclusion"] = Table(("code", "collection"), [(c, x) for c, _l, x in part1 if x],
                                           indexes=(("code",),))
            tables["pdx_collection"] = Table(("collection", "pdx"),
                                             [(x, p) for x, ps in colls.items() for p in ps],
                                             indexes=(("collection", "pdx"),))
            tables["alive_only"] = Table(("code",), [(c,) for c in alive])
            counts.update(cc_exclusion_codes=len(part1), pdx_collections=len(colls), alive_only=len(alive))
        else:
            notes.append("No Table 6K among the files: CC exclusions are not known.")
        tables["severity"] = Table(("code", "level"), sorted(sev.items()), indexes=(("code",),))
        if poa is not None:
            rows = parse_poa(poa)
            tables["poa_exempt"] = Table(("code", "title"), rows, indexes=(("code",),))
            counts["poa_exempt"] = len(rows)
        else:
            notes.append(f"No POA-exempt list for FY{fy} among the files: every diagnosis needs a POA indicator.")
        srcs = [kinds[k] for k in ("table5", "mcc", "cc", "ccx") if k in kinds] + ([poa] if poa else [])
        start, end = fiscal_year(fy)
        return ReleaseBuild(SYSTEM, str(fy), f"MS-DRG v{fy - 1983} (FY{fy} IPPS final rule tables)", start, end,
                            [s.ref() for s in srcs], drgs, counts=counts, tables=tables, notes=notes)

    return build
