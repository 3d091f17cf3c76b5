"""ICD-9-CM: the CMS title files (diagnoses and volume 3 procedures), the last release v32 (FY2015).

CMS ships four plain-text files per version, ``CMS32_DESC_{LONG,SHORT}_{DX,SG}.txt``:
one valid code per line, the code without its dot, padding space(s), then the
title (latin-1 bytes, e.g. "Ménière's"). DX holds diagnoses (including V and E
codes), SG ("surgical") holds procedures. The long and short file of a kind
must list exactly the same codes in the same order; anything else is a
:class:`~medcodes.errors.DataError`.

Diagnoses and procedures share one system (FHIR uses one URI for both) but
their keys collide (diagnosis 010.1 and procedure 01.01 are both ``0101``),
so diagnoses are stored under their normalised code and procedures under
``P:`` + normalised code (``P:0101``). :func:`readings` returns the right key
for each reading.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Iterator

from ..errors import DataError
from ..model import Concept, ReleaseBuild, normalize_key
from ..calendar import fiscal_year
from ..sources import FileKind, Source, all_match, recognise, records
from . import Plan, Reading

SYSTEM = "icd9cm"

PROC_PREFIX = "P:"
REPLACED_ON = _dt.date(2015, 10, 1)
FINAL_VERSION = 32

_FILE_RE = re.compile(r"^CMS(\d+)_DESC_(LONG|SHORT)_(DX|SG)\.txt$", re.IGNORECASE)
# Record layouts: a diagnosis code in a 5-character field (title from column 7), a procedure
# code in a 4-character field (title from column 6); short titles are at most 24 characters.
# (not a GEM row "0010  A000    00000", nor an order-file record "00001 A00     0 Cholera")
_NOT_CODES = r"(?![0-9A-Z]{3,7} +(?:[01] |[0-9A-Za-z]{3,7} +[01]{5}$|[01]{5}$))"
_DX_RECORD = re.compile(rf"^[0-9VE][0-9]{{2,4}} {{1,3}}(?<=^.{{6}}){_NOT_CODES}(\S.*)$")
_SG_RECORD = re.compile(rf"^[0-9]{{3,4}} {{1,2}}(?<=^.{{5}}){_NOT_CODES}(\S.*)$")
_PATH_VERSION = re.compile(r"(?i)(?:CMS|(?<![a-z])v)(\d{2})(?!\d)")
SHORT_TITLE_MAX = 24


def _title_file(part: str, length: str) -> Any:
    pattern = _DX_RECORD if part == "DX" else _SG_RECORD

    def test(src: Source) -> str | None:
        got = all_match(pattern, records(src, 400), at_least=20)
        if got is None:
            return None
        longest = max(len(m.group(1)) for m in got)
        return "" if (longest <= SHORT_TITLE_MAX) == (length == "SHORT") else None
    return test


def _name(part: str, length: str) -> re.Pattern[str]:
    return re.compile(rf"^CMS(?P<version>\d+)_DESC_{length}_{part}\.txt$", re.IGNORECASE)


#: The four title files by record layout (code field width, title length), else by name.
FILES = tuple(FileKind(f"{part}-{length}", _title_file(part, length), _name(part, length))
              for part in ("DX", "SG") for length in ("LONG", "SHORT"))


def _version(src: Source) -> int | None:
    """CMS's version number: from the file name (CMS32_...), else its folder or zip (v32)."""
    m = _FILE_RE.match(src.name)
    if m:
        return int(m.group(1))
    for text in (src.name, src.path.name, *reversed(src.path.parent.parts)):
        m2 = _PATH_VERSION.search(text)
        if m2:
            return int(m2.group(1))
    return None
_LINE_RE = re.compile(r"^([0-9A-Z]{2,5}) +(\S.*?)\s*$")
_DX_RE = re.compile(r"^(?:\d{3,5}|V\d{2,4}|E\d{3,4})$")
_PROC_RE = re.compile(r"^\d{2,4}$")

# (first, last, title) by three-character category; V and E ranges compare as strings.
DX_CHAPTERS: tuple[tuple[str, str, str], ...] = (
    ("001", "139", "Infectious and parasitic diseases"),
    ("140", "239", "Neoplasms"),
    ("240", "279", "Endocrine, nutritional and metabolic diseases, and immunity disorders"),
    ("280", "289", "Diseases of the blood and blood-forming organs"),
    ("290", "319", "Mental disorders"),
    ("320", "389", "Diseases of the nervous system and sense organs"),
    ("390", "459", "Diseases of the circulatory system"),
    ("460", "519", "Diseases of the respiratory system"),
    ("520", "579", "Diseases of the digestive system"),
    ("580", "629", "Diseases of the genitourinary system"),
    ("630", "679", "Complications of pregnancy, childbirth, and the puerperium"),
    ("680", "709", "Diseases of the skin and subcutaneous tissue"),
    ("710", "739", "Diseases of the musculoskeletal system and connective tissue"),
    ("740", "759", "Congenital anomalies"),
    ("760", "779", "Certain conditions originating in the perinatal period"),
    ("780", "799", "Symptoms, signs, and ill-defined conditions"),
    ("800", "999", "Injury and poisoning"),
    ("V01", "V91", "Supplementary classification of factors influencing health status "
                   "and contact with health services"),
    ("E000", "E999", "Supplementary classification of external causes of injury and poisoning"),
)

# (first, last, title) by the two-digit procedure category (volume 3 chapters).
PROC_CHAPTERS: tuple[tuple[str, str, str], ...] = (
    ("00", "00", "Procedures and interventions, not elsewhere classified"),
    ("01", "05", "Operations on the nervous system"),
    ("06", "07", "Operations on the endocrine system"),
    ("08", "16", "Operations on the eye"),
    ("17", "17", "Other miscellaneous diagnostic and therapeutic procedures"),
    ("18", "20", "Operations on the ear"),
    ("21", "29", "Operations on the nose, mouth, and pharynx"),
    ("30", "34", "Operations on the respiratory system"),
    ("35", "39", "Operations on the cardiovascular system"),
    ("40", "41", "Operations on the hemic and lymphatic system"),
    ("42", "54", "Operations on the digestive system"),
    ("55", "59", "Operations on the urinary system"),
    ("60", "64", "Operations on the male genital organs"),
    ("65", "71", "Operations on the female genital organs"),
    ("72", "75", "Obstetrical procedures"),
    ("76", "84", "Operations on the musculoskeletal system"),
    ("85", "86", "Operations on the integumentary system"),
    ("87", "99", "Miscellaneous diagnostic and therapeutic procedures"),
)


# ------------------------------------------------------------------ code forms
def display_dx(key: str) -> str:
    """Diagnosis with its dot: 250.00, V45.11, E880.1 (E codes: dot after 4)."""
    cut = 4 if key.startswith("E") else 3
    return key if len(key) <= cut else f"{key[:cut]}.{key[cut:]}"


def display_proc(key: str) -> str:
    """Procedure with its dot after two digits: 81.51."""
    key = key.removeprefix(PROC_PREFIX)
    return key if len(key) <= 2 else f"{key[:2]}.{key[2:]}"


def dx_key(code: str) -> str:
    return normalize_key(code)


def proc_key(code: str) -> str:
    return PROC_PREFIX + normalize_key(code.removeprefix(PROC_PREFIX))


def display(key: str) -> str:
    """Display form of a store key (``P:`` keys are procedures)."""
    return display_proc(key) if key.startswith(PROC_PREFIX) else display_dx(key)


# ------------------------------------------------------------------ parsing
def _version_label(version: int) -> tuple[str, _dt.date, _dt.date]:
    """Label and fiscal-year dates of CMS version N (v32 = FY2015, the last one)."""
    fy = 2015 - (FINAL_VERSION - version)
    start, end = fiscal_year(fy)
    if version == FINAL_VERSION:
        return f"ICD-9-CM v{version} (final, FY{fy})", start, end
    return f"ICD-9-CM v{version} (FY{fy})", start, end


def parse_titles(src: Source) -> list[tuple[str, str]]:
    """(code, title) for every line of one title file, in file order."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(src.text_lines(), 1):
        if not line.strip():
            continue
        m = _LINE_RE.match(line)
        if not m:
            raise DataError(f"{src.display}: line {lineno} is not 'code title': {line[:40]!r}")
        code, title = m.group(1), m.group(2)
        if code in seen:
            raise DataError(f"{src.display}: line {lineno}: code {code} listed twice")
        seen.add(code)
        out.append((code, title))
    if not out:
        raise DataError(f"{src.display}: no codes (empty or truncated file)")
    return out


def _pair(long_src: Source, short_src: Source, kind: str) -> Iterator[Concept]:
    longs = parse_titles(long_src)
    shorts = parse_titles(short_src)
    if len(longs) != len(shorts):
        raise DataError(f"{short_src.display}: {len(shorts)} codes but {long_src.display} has "
                        f"{len(longs)} (truncated or mismatched file)")
    grammar = _DX_RE if kind == "diagnosis" else _PROC_RE
    for (code, title), (scode, stitle) in zip(longs, shorts):
        if code != scode:
            raise DataError(f"{short_src.display}: code {scode} where {long_src.display} has {code}")
        if not grammar.match(code):
            raise DataError(f"{long_src.display}: {code!r} is not an ICD-9-CM {kind} code")
        if kind == "diagnosis":
            yield Concept(code=display_dx(code), title=title, kind=kind, billable=True,
                          short_title=stitle, key=dx_key(code))
        else:
            yield Concept(code=display_proc(code), title=title, kind=kind, billable=True,
                          short_title=stitle, key=proc_key(code))


def _build(version: int, files: dict[tuple[str, str], Source]) -> ReleaseBuild:
    label, start, end = _version_label(version)
    concepts: list[Concept] = []
    counts: dict[str, int] = {}
    for part, kind, name in (("DX", "diagnosis", "diagnoses"), ("SG", "procedure", "procedures")):
        if (part, "LONG") not in files:
            continue
        rows = list(_pair(files[(part, "LONG")], files[(part, "SHORT")], kind))
        counts[name] = len(rows)
        concepts.extend(rows)
    sources = sorted(files.values(), key=lambda s: s.display)
    return ReleaseBuild(
        system=SYSTEM, release=f"v{version}", label=label,
        effective_from=start, effective_to=end,
        sources=[s.ref() for s in sources], concepts=concepts, counts=counts,
        notes=[f"ICD-9-CM was replaced by ICD-10-CM/PCS for services on or after {REPLACED_ON}."],
    )


def plan(sources: list[Source]) -> list[Plan]:
    """One release per CMS version number found (long and short file of a kind go together)."""
    found: dict[int, dict[tuple[str, str], Source]] = {}
    for f in recognise(sources, FILES):
        version = _version(f.source)
        if version is not None:
            part, length = f.kind.split("-")
            found.setdefault(version, {})[(part, length)] = f.source
    plans = []
    for version, files in sorted(found.items()):
        for part in ("DX", "SG"):
            have = [ls for ls in ("LONG", "SHORT") if (part, ls) in files]
            if len(have) == 1:
                missing = "SHORT" if have == ["LONG"] else "LONG"
                raise DataError(f"{files[(part, have[0])].display}: CMS{version}_DESC_{missing}_{part}.txt "
                                "is missing (long and short title files come together)")
        srcs = sorted(files.values(), key=lambda s: s.display)
        plans.append(Plan(SYSTEM, f"v{version}", srcs,
                          lambda v=version, f=dict(files): _build(v, f)))
    return plans


# ------------------------------------------------------------------ grammar
def readings(key: str) -> list[Reading]:
    """Diagnosis and/or procedure readings of ``key``.

    A normalised key has no dot, so a digits-only key of 3-4 digits reads both
    ways (``0101``: diagnosis 010.1 and procedure 01.01). When the raw string
    still has its dot, its position decides: ``250.00`` (dot after 3) is a
    diagnosis, ``81.51`` (dot after 2) a procedure, ``E880.1`` (after 4) a diagnosis.
    A ``P:`` prefix asks for the procedure reading.
    """
    raw = key.strip().upper().replace(" ", "")
    if raw.startswith(PROC_PREFIX):
        body = normalize_key(raw[len(PROC_PREFIX):])
        return [_proc_reading(body, 0.9, "procedure key")] if _PROC_RE.match(body) else []
    dot = raw.find(".")
    body = normalize_key(raw)
    if raw.count(".") > 1:
        return []
    out: list[Reading] = []
    if _DX_RE.match(body):
        cut = 4 if body.startswith("E") else 3
        if dot < 0:
            score = 0.4
            out.append(_dx_reading(body, score, "ICD-9-CM diagnosis shape"))
        elif dot == cut:
            out.append(_dx_reading(body, 0.7, f"dot after {cut} characters: a diagnosis"))
    if _PROC_RE.match(body):
        if dot < 0:
            out.append(_proc_reading(body, 0.3, "ICD-9-CM procedure shape (volume 3)"))
        elif dot == 2:
            out.append(_proc_reading(body, 0.7, "dot after 2 digits: a procedure"))
    return out


def _dx_reading(body: str, score: float, note: str) -> Reading:
    return Reading(code=display_dx(body), score=score, kind="diagnosis", note=note, key=dx_key(body))


def _proc_reading(body: str, score: float, note: str) -> Reading:
    return Reading(code=display_proc(body), score=score, kind="procedure", note=note, key=proc_key(body))


def chapter_of(key: str) -> tuple[str, str, str] | None:
    """(first, last, title) of the chapter a store key falls in."""
    if key.startswith(PROC_PREFIX):
        head = key[len(PROC_PREFIX):][:2]
        table = PROC_CHAPTERS
    else:
        head = key[:4] if key.startswith("E") else key[:3]
        table = DX_CHAPTERS
    for first, last, title in table:
        if len(first) == len(head) and _same_letter(first, head) and first <= head <= last:
            return first, last, title
    return None


def _same_letter(a: str, b: str) -> bool:
    """Both numeric, or both starting with the same letter (V, E)."""
    return a[0] == b[0] if not a[0].isdigit() else b[0].isdigit()


def structure(code: str, db: Any) -> dict[str, Any]:
    """Kind (diagnosis/procedure) and chapter, from the code's shape."""
    key = code if code.startswith(PROC_PREFIX) else None
    if key is None:
        reads = readings(code)
        if not reads:
            return {}
        if db is not None and len(reads) > 1:
            present = [r for r in reads if db.get(r.key) is not None]
            reads = present or reads
        key = reads[0].key
    kind = "procedure" if key.startswith(PROC_PREFIX) else "diagnosis"
    out: dict[str, Any] = {"kind": kind, "code": display(key)}
    chap = chapter_of(key)
    if chap:
        first, last, title = chap
        out["chapter"] = {"range": first if first == last else f"{first}-{last}", "title": title}
    return out


def enrich(record: dict[str, Any], row: Any, db: Any) -> None:
    """Add the chapter and the fact that ICD-9-CM is frozen (replaced by ICD-10 on 2015-10-01)."""
    key = row["key"]
    chap = chapter_of(key)
    if chap:
        first, last, title = chap
        record["chapter"] = {"range": first if first == last else f"{first}-{last}", "title": title}
    record["replaced_on"] = REPLACED_ON.isoformat()
    text = ("ICD-9-CM was replaced by ICD-10-CM (diagnoses) and ICD-10-PCS (inpatient procedures) "
            f"for services on or after {REPLACED_ON.isoformat()}; use the GEMs (medcodes map) to convert.")
    note = {"kind": "replaced", "text": text, "from": row["code"], "inherited": False}
    notes = record.get("notes")
    if isinstance(notes, list):
        notes.append(note)
    else:
        record["notes"] = [note]
