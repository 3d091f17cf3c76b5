"""icd10cm_guidelines: the sequencing rules the ICD-10-CM Official Guidelines state about specific codes.

Read from the guidelines PDF as CMS/NCHS publish it (``ICD-10-CM-October-2025-Guidelines.pdf``,
"ICD-10-CM Official Guidelines for Coding and Reporting FY 2026"), with pypdf. Stored as a
release of its own (system ``icd10cm_guidelines``, release = the fiscal year the PDF names) with
one extra table ``guideline_rule(kind, ref, except_refs, phrase, text)``:

* ``principal_only``: the list "Z Codes That May Only be Principal/First-Listed Diagnosis"
  (Section I.C.21.c.15 in FY2026), one row per code/category with its "Except:" codes;
* ``secondary_only``: codes the text says are only secondary: "category Z37 ... It is always a
  secondary code", "Z33.1 ... This code is a secondary code only", "category Z3A ... may be assigned
  to provide additional information", and the things named in "The BMI, coma scale, NIHSS, blood
  alcohol level codes ... should only be reported as secondary diagnoses" (``phrase``: matched
  against code titles by the claim checker).

The build fails (DataError naming the file) when the principal-only list is not found.
"""

from __future__ import annotations

import io
import re
from typing import Any, Callable

from ..calendar import fiscal_year
from ..errors import DataError
from ..model import ReleaseBuild, Table
from ..sources import Source
from . import Plan

SYSTEM = "icd10cm_guidelines"
COLUMNS = ("kind", "ref", "except_refs", "phrase", "text")

_NAME = re.compile(r"^ICD-10-CM.*Guidelines.*\.pdf$", re.I)
_FY = re.compile(r"Official Guidelines for Coding and Reporting\s+FY\s*(\d{4})")
_NOISE = re.compile(r"^\s*(?:ICD-10-CM Official Guidelines for Coding and Reporting|FY \d{4}|Page \d+ of \d+)\s*$")
_CODE = r"Z\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?-?"
_ENTRY = re.compile(rf"^({_CODE})\s+(.*)$")
_EXCEPT = re.compile(rf"^Except:\s*((?:{_CODE}(?:,\s*|\s+|$))+)")
_PRINCIPAL_HEAD = re.compile(r"^\d+\)\s*Z Codes That May Only be Principal/First-Listed Diagnosis", re.I)
_NEXT_HEAD = re.compile(r"^\d+\)\s+\S")


def text_of(source: Source) -> str:
    try:
        import pypdf
    except ImportError as exc:   # pragma: no cover - a declared dependency
        raise DataError(f"{source.display}: reading the guidelines PDF needs pypdf (pip install pypdf)") from exc
    try:
        reader = pypdf.PdfReader(io.BytesIO(source.read_bytes()))
        pages = [p.extract_text() or "" for p in reader.pages]
    except Exception as exc:  # pypdf raises many types for a damaged file
        raise DataError(f"{source.display}: not a readable PDF ({str(exc).splitlines()[0] if str(exc) else exc})") from exc
    lines = [ln.rstrip() for page in pages for ln in page.splitlines() if not _NOISE.match(ln)]
    return "\n".join(ln for ln in lines if ln.strip())


def _key(code: str) -> str:
    return code.replace(".", "").replace("-", "")


def parse(text: str, where: str) -> list[tuple[Any, ...]]:
    """The rules of the guidelines text (see the module docstring)."""
    rows: list[tuple[Any, ...]] = []
    lines = text.splitlines()
    start = next((n for n, ln in enumerate(lines) if _PRINCIPAL_HEAD.match(ln.strip())), None)
    if start is None:
        raise DataError(f"{where}: no 'Z Codes That May Only be Principal/First-Listed Diagnosis' list")
    head = lines[start].strip()
    entries: list[list[Any]] = []
    for ln in lines[start + 1:]:
        s = ln.strip()
        if _NEXT_HEAD.match(s):
            break
        m = _ENTRY.match(s)
        if m:
            entries.append([_key(m.group(1)), [], f"{m.group(1)} {m.group(2)}"])
            continue
        m = _EXCEPT.match(s)
        if m and entries:
            entries[-1][1].extend(_key(c) for c in re.findall(_CODE, m.group(1)))
    if not entries:
        raise DataError(f"{where}: the principal/first-listed Z code list is empty")
    for ref, exc, label in entries:
        rows.append(("principal_only", ref, ",".join(exc), "", f"{head}: {label}"))
    flat = re.sub(r"\s+", " ", text)
    for m in re.finditer(rf"[^.]*\bcategory ({_CODE})\b[^.]*\.\s*It is always a secondary code\.", flat):
        rows.append(("secondary_only", _key(m.group(1)), "", "", m.group(0).strip()))
    for m in re.finditer(rf"(?m)^({_CODE}) [^\n]*\n\s*(This code is a secondary code only[^.]*\.?)", text):
        rows.append(("secondary_only", _key(m.group(1)), "", "",
                     m.group(1) + ": " + re.sub(r"\s+", " ", m.group(2)).strip()))
    for m in re.finditer(rf"[^.]*\bcategory ({_CODE}),[^.]*?provide additional information[^.]*\.", flat):
        rows.append(("secondary_only", _key(m.group(1)), "", "", m.group(0).strip()))
    for m in re.finditer(r"The ([^.]*?) should only be reported as secondary diagnoses\.", flat):
        for part in re.split(r",\s*|\s+and\s+", m.group(1)):
            phrase = re.sub(r"^codes? for\s+|\s+codes?$", "", part.strip(), flags=re.I).strip()
            if phrase:
                rows.append(("secondary_only", "", "", phrase, m.group(0).strip()))
    return rows


def plan(sources: list[Source]) -> list[Plan]:
    found = [s for s in sources if _NAME.match(s.name)]
    plans = []
    for src in found:
        m = re.search(r"(October|April)-(\d{4})", src.name)
        # the October YYYY guidelines are those of fiscal year YYYY+1
        fy = str(int(m.group(2)) + 1) if m and m.group(1).lower() == "october" else (m.group(2) if m else "")
        if fy:
            plans.append(Plan(SYSTEM, fy, [src], _builder(fy, src)))
    return plans


def _builder(fy: str, src: Source) -> Callable[[], ReleaseBuild]:
    def build() -> ReleaseBuild:
        text = text_of(src)
        m = _FY.search(text)
        if m and m.group(1) != fy:
            raise DataError(f"{src.display}: says FY {m.group(1)}, the file name says FY{fy}")
        rows = parse(text, src.display)
        start, end = fiscal_year(int(fy))
        counts = {"principal_only": sum(r[0] == "principal_only" for r in rows),
                  "secondary_only": sum(r[0] == "secondary_only" for r in rows)}
        return ReleaseBuild(SYSTEM, fy, f"ICD-10-CM Official Guidelines for Coding and Reporting FY{fy}", start,
                            end, [src.ref()], [], counts=counts,
                            tables={"guideline_rule": Table(COLUMNS, rows)})

    return build
