"""Per-code facts of a release as flat rows and columnar tables: what the claim rules read about a code.

One function, :func:`classify_dx`, says what an ICD-10-CM key is in one
release (billable, header, needs a 7th character, lacks its placeholder, a code
of another code set, deleted, invalid, ICD-9-CM) and, for billable codes and
headers, the :class:`~medcodes.claims.facts.DxFacts` the rules use (sex/age,
manifestation, external cause, Excludes1/2 references...), flattened into one
row of :data:`DX_SCHEMA`. The per-claim checker calls it per code it meets
(memoised); :func:`dx_tables` runs it over every code of a release once --
at pull time (``medcodes pull``) or on first batch use -- and keeps the result
as Parquet under ``<home>/facts/`` (keyed by the release's source sha256s and
:data:`FACTS_VERSION`), so batch checking is joins against these tables.
The Excludes1/2 references are kept as two tables (prefixes, ranges) that
batch mode joins against every pair of diagnoses of a claim.

HCPCS (codes with their add/termination dates, modifiers) and ICD-10-PCS
tables are one SQL scan each (:func:`hcpcs_table`, :func:`pcs_table`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import polars as pl

from ..errors import MedcodesError
from ..model import ReleaseInfo, normalize_key
from ..store import row_attrs
from .facts import DxFacts, GuidelineRules, dx_facts

#: bump when a fact's derivation changes: cached tables are then rebuilt
FACTS_VERSION = "2"

_ICD10CM = re.compile(r"^[A-Z]\d[0-9A-Z]{1,5}$")
_CPT = re.compile(r"^(\d{5}|\d{4}[FT])$")
_DX_KINDS = ("code", "category", "header", "diagnosis")

#: one row per (release, key): the ICD-10-CM facts the rules read
DX_SCHEMA: dict[str, Any] = {
    "release": pl.String, "key": pl.String,
    "shape10": pl.Boolean,        # the key is shaped like an ICD-10-CM code
    "status": pl.String,          # ok | header | seventh | placeholder | wrong-set | deleted | not-yet | invalid | icd9
    "has_facts": pl.Boolean,      # billable code or header: the claim-level rules look at it
    "code": pl.String, "title": pl.String,
    "extra": pl.String,           # header: " (e.g. E11.0, ...)"
    "tail": pl.String,            # odd statuses: the message after the code as written (not-yet: the date added)
    "secondary_only": pl.String, "manifestation": pl.String, "supplementary": pl.String,
    "about_patient": pl.Boolean, "fsex": pl.String, "sex_source": pl.String,
}
PREFIX_SCHEMA = {"release": pl.String, "owner": pl.String, "kind": pl.Int64, "prefix": pl.String,
                 "plen": pl.Int64, "note": pl.String, "cite": pl.String}
#: a code's stated age ranges (facts.AgeLimit), one row each
LIMIT_SCHEMA = {"release": pl.String, "owner": pl.String, "n": pl.Int64, "unit": pl.String, "lo": pl.Int64,
                "hi": pl.Int64, "lseverity": pl.String, "ltext": pl.String, "lsource": pl.String}
#: the guideline statements saying a code is only a secondary diagnosis, one row each
SECONDARY_SCHEMA = {"release": pl.String, "owner": pl.String, "n": pl.Int64, "why": pl.String}
RANGE_SCHEMA = {"release": pl.String, "owner": pl.String, "kind": pl.Int64, "ord": pl.Int64, "lo": pl.String,
                "hi": pl.String, "nlo": pl.Int64, "nhi": pl.Int64, "note": pl.String, "cite": pl.String}
#: what only the per-claim checker reads (claims/factindex.py): the code's codeFirst / useAdditionalCode /
#: codeAlso notes (facts.NoteRefs, in order) and the guidelines' principal-only statement (kind "principalOnly")
NOTES_SCHEMA = {"release": pl.String, "owner": pl.String, "n": pl.Int64, "kind": pl.String, "text": pl.String,
                "origin": pl.String, "level": pl.String, "conditional": pl.Boolean}


@dataclass(slots=True)
class DxCode:
    """One key in one release: its fact row and (billable codes and headers) its DxFacts."""

    row: dict[str, Any]
    facts: DxFacts | None


def _row(release: str, key: str, status: str, facts: DxFacts | None = None, extra: str | None = None,
         tail: str | None = None) -> dict[str, Any]:
    r: dict[str, Any] = dict.fromkeys(DX_SCHEMA)
    r.update(release=release, key=key, status=status, has_facts=facts is not None, extra=extra, tail=tail,
             about_patient=False, shape10=bool(_ICD10CM.match(key)))
    if facts is not None:
        r.update(code=facts.code, title=facts.title, secondary_only=facts.secondary_only,
                 manifestation=facts.manifestation, supplementary=facts.supplementary,
                 about_patient=facts.about_patient, fsex=facts.sex, sex_source=facts.sex_source)
    return r


def classify_dx(cb: Any, info: ReleaseInfo, key: str, is_icd9: Callable[[str], bool],
                guide: GuidelineRules | None = None) -> DxCode:
    """What ``key`` is in ICD-10-CM release ``info``: a pure function of (release, key).

    Reads go to the release itself (its date is ``info.effective_from``), so the answer does not
    depend on which claim met the code first.
    """
    release = info.release
    if not _ICD10CM.match(key) and is_icd9(key):
        return DxCode(_row(release, key, "icd9"), None)
    day = info.effective_from
    db = cb.store.open("icd10cm", release)
    row = db.get(key) if key.isalnum() else None
    if row is not None and row["kind"] in _DX_KINDS:
        rec = cb.lookup(key, system="icd10cm", date=day)
        facts = dx_facts(rec, _ancestor_terms(db, rec), guide)
        if row["billable"]:
            return DxCode(_row(release, key, "ok", facts), facts)
        seventh = _seventh_character(db, key)
        if seventh is not None:
            return DxCode(_row(release, key, seventh[0], tail=seventh[1]), None)
        kids = [c["code"] for c in db.children(key)][:4]
        return DxCode(_row(release, key, "header", facts, extra=f" (e.g. {', '.join(kids)})" if kids else ""),
                      facts)
    seventh = _seventh_character(db, key)
    if seventh is not None:
        return DxCode(_row(release, key, seventh[0], tail=seventh[1]), None)
    wrong = _other_code_set(cb, key, day)
    if wrong is not None:
        return DxCode(_row(release, key, "wrong-set", tail=wrong), None)
    try:
        v = cb.validate(key, system="icd10cm", date=day)
    except MedcodesError:
        v = None
    if v is not None and v.added is not None:     # not yet valid: added by a later release
        extra = ", ".join(v.valid_then) if v.valid_then else None
        return DxCode(_row(release, key, "not-yet", extra=extra, tail=v.added.isoformat()), None)
    if v is not None and v.ended is not None:
        tail = f": ICD-10-CM deleted it (last valid {v.ended.isoformat()})"
        if v.successors:
            tail += f"; use {', '.join(v.successors[:6])}"
        return DxCode(_row(release, key, "deleted", tail=tail + "."), None)
    near = [r["code"] for r in db.neighbours(key, 2)] if key.isalnum() else []
    tail = f" is not an ICD-10-CM code in {info.label}"
    if v is not None and v.successors:
        tail += f" (it was deleted; use {', '.join(v.successors[:6])})"
    elif near:
        tail += f" (nearest codes: {', '.join(near)})"
    return DxCode(_row(release, key, "invalid", tail=tail + "."), None)


def _ancestor_terms(db: Any, rec: Any) -> list[dict[str, Any]]:
    """Inclusion terms stated at the code's category and subcategories (not inherited by lookup)."""
    out = []
    for anc in rec.ancestors:
        if anc.get("kind") in ("chapter", "block", "section"):
            continue
        row = db.get(normalize_key(anc["code"]))
        if row is None:
            continue
        for text in row_attrs(row).get("notes", {}).get("inclusionTerm", []):
            out.append({"kind": "inclusionTerm", "text": text, "from": anc["code"], "inherited": True})
    return out


def _seventh_character(db: Any, key: str) -> tuple[str, str] | None:
    """(status, message tail) for a key that needs (or has a wrong) 7th character or lacks its placeholder X."""
    if len(key) < 3 or not key.isalnum():
        return None
    if len(key) in (5, 6, 7) and key[-1].isalpha():
        cand = key[:-1].ljust(6, "X") + key[-1]
        if cand != key and db.get(cand) is not None:
            return "placeholder", f" lacks the placeholder X: the code is {_dotted(cand)}."
    base = key[:6] if len(key) == 7 else key.ljust(6, "X")
    sevens = [r for r in db.prefix(base, limit=40) if len(r["key"]) == 7 and r["billable"]]
    if not sevens:
        return None
    chars = ", ".join(sorted({r["key"][6] for r in sevens}))
    if len(key) == 7:
        return "seventh", f": {key[6]} is not a 7th character this category defines (valid: {chars})."
    if base != key:
        return "placeholder", (f" needs placeholder X up to 6 characters and a 7th character, e.g. "
                               f"{_dotted(sevens[0]['key'])} (7th characters: {chars}).")
    return "seventh", f" needs a 7th character (valid: {chars}), e.g. {_dotted(sevens[0]['key'])}."


def _dotted(key: str) -> str:
    return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


def _in_other_code_set(cb: Any, key: str, day: Any) -> bool:
    """Whether a HCPCS, CPT or ICD-10-PCS reading of ``key`` is in that system's release in effect on ``day``:
    only then can :meth:`Codebook.identify` (which also looks up successors and the like) find one."""
    from .. import systems

    for system in ("hcpcs", "cpt", "icd10pcs"):
        if not cb.releases(system):
            continue
        readings = [r for r in systems.module(system).readings(key) if r.extra.get("system", system) == system]
        if readings:
            info, _covers = cb._release_for(system, day)
            db = cb.store.open(system, info.release)
            if any(db.get(r.key) is not None for r in readings):
                return True
    return False


def _other_code_set(cb: Any, key: str, day: Any) -> str | None:
    if not _in_other_code_set(cb, key, day):
        return (" has the shape of a CPT code, not a diagnosis: diagnoses must be ICD-10-CM codes."
                if _CPT.match(key) else None)
    try:
        idents = cb.identify(key, day)
    except MedcodesError:
        return None
    for ident in idents:
        if ident.exists and ident.system in ("hcpcs", "cpt", "icd10pcs") and ident.kind != "modifier":
            return (f" is a {ident.system_name} code ({ident.title}), not a diagnosis: "
                    "list it on a service line (or as a procedure) and give the ICD-10-CM diagnosis here.")
    if _CPT.match(key):
        return " has the shape of a CPT code, not a diagnosis: diagnoses must be ICD-10-CM codes."
    return None


# ====================================================================== Excludes references as rows
def excludes_rows(release: str, owner: str, f: DxFacts) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The owner's Excludes1 (kind 1) / Excludes2 (kind 2) references: prefix rows and range rows."""
    prefixes, ranges = [], []
    for kind, idx in ((1, f.ex1), (2, f.ex2)):
        if idx is None:
            continue
        for prefix, note in idx._prefix.items():
            prefixes.append((release, owner, kind, prefix, len(prefix), note.text, note.cite()))
        for n, (lo, hi, nlo, nhi, note) in enumerate(idx._ranges):
            ranges.append((release, owner, kind, n, lo, hi, nlo, nhi, note.text, note.cite()))
    return prefixes, ranges


@dataclass(slots=True)
class DxTables:
    """A release's columnar facts: one row per code (:data:`DX_SCHEMA`), Excludes prefixes and ranges, age
    limits, secondary-only guideline statements and the notes the per-claim sequencing rules read."""

    codes: pl.DataFrame
    prefixes: pl.DataFrame
    ranges: pl.DataFrame
    limits: pl.DataFrame
    secondaries: pl.DataFrame
    notes: pl.DataFrame

    PARTS = ("codes", "prefixes", "ranges", "limits", "secondaries", "notes")

    @staticmethod
    def from_codes(codes: list[DxCode]) -> "DxTables":
        rows, prefixes, ranges, limits, secondaries, notes = [], [], [], [], [], []
        for c in codes:
            rows.append(c.row)
            f = c.facts
            if f is not None:
                release, owner = c.row["release"], c.row["key"]
                p, r = excludes_rows(release, owner, f)
                prefixes += p
                ranges += r
                limits += [(release, owner, n, x.unit, x.lo, x.hi, x.severity, x.text, x.source)
                           for n, x in enumerate(f.age_limits)]
                secondaries += [(release, owner, n, why) for n, why in enumerate(f.secondary_guideline)]
                notes += [(release, owner, n, x.kind, x.text, x.origin, x.level, x.conditional)
                          for n, x in enumerate([*f.code_first, *f.use_additional, *f.code_also])]
                if f.principal_only:
                    notes.append((release, owner, -1, "principalOnly", f.principal_only, None, None, None))
        return DxTables(pl.DataFrame(rows, schema=DX_SCHEMA, orient="row") if rows else pl.DataFrame(schema=DX_SCHEMA),
                        pl.DataFrame(prefixes, schema=PREFIX_SCHEMA, orient="row"),
                        pl.DataFrame(ranges, schema=RANGE_SCHEMA, orient="row"),
                        pl.DataFrame(limits, schema=LIMIT_SCHEMA, orient="row"),
                        pl.DataFrame(secondaries, schema=SECONDARY_SCHEMA, orient="row"),
                        pl.DataFrame(notes, schema=NOTES_SCHEMA, orient="row"))

    @staticmethod
    def concat(parts: list["DxTables"]) -> "DxTables":
        return DxTables(*(pl.concat([getattr(p, name) for p in parts], rechunk=False) for name in DxTables.PARTS))


def _digest(info: ReleaseInfo, guide: ReleaseInfo | None = None) -> str:
    """Keyed by the release's files, the guidelines release its facts read, and :data:`FACTS_VERSION`."""
    h = hashlib.sha256(f"{FACTS_VERSION}|{info.system}|{info.release}|".encode())
    h.update(json.dumps(sorted(s.get("sha256", "") for s in info.sources)).encode())
    if guide is not None:
        h.update(f"|{guide.release}|".encode())
        h.update(json.dumps(sorted(s.get("sha256", "") for s in guide.sources)).encode())
    return h.hexdigest()[:16]


def _guide_info(cb: Any, info: ReleaseInfo) -> ReleaseInfo | None:
    try:
        g, _covers = cb.release_covering("icd10cm_guidelines", info.effective_from)
    except MedcodesError:
        return None
    return g


def facts_dir(cb: Any) -> Path:
    return Path(cb.store.home) / "facts"


_lock = threading.Lock()


def dx_tables(cb: Any, info: ReleaseInfo, classify: Callable[[str], DxCode],
              progress: Callable[[str], None] | None = None) -> DxTables:
    """The release's facts tables: read from ``<home>/facts`` or compiled (every code through ``classify``).

    The caller keeps them (batch mode: one copy per Checker); nothing is cached here.
    """
    paths = _paths(cb, info)
    with _lock:
        got = _read(paths)
        if got is not None:
            return got
        if progress is not None:
            progress(f"compiling claim facts for icd10cm {info.release}")
        got = compile_dx(cb, info, classify)
        _save(got, paths)
        return got


def _paths(cb: Any, info: ReleaseInfo) -> list[Path]:
    base = facts_dir(cb) / f"icd10cm-{info.release}-{_digest(info, _guide_info(cb, info))}"
    return [Path(f"{base}.{part}.parquet") for part in DxTables.PARTS]


def _read(paths: list[Path]) -> DxTables | None:
    if not all(p.exists() for p in paths):
        return None
    try:
        got = DxTables(*(pl.read_parquet(p) for p in paths))
    except (OSError, pl.exceptions.PolarsError):
        return None
    if "shape10" not in got.codes.columns:   # tables compiled before the column existed
        got.codes = got.codes.with_columns(pl.col("key").str.contains(_ICD10CM.pattern).alias("shape10"))
    got.codes = got.codes.select(list(DX_SCHEMA))
    return got


def read_dx_tables(cb: Any, info: ReleaseInfo) -> DxTables | None:
    """The release's facts tables as ``medcodes pull`` compiled them, or None when they are not compiled
    (nothing is compiled here: the per-claim checker then classifies the codes it meets one by one)."""
    with _lock:
        return _read(_paths(cb, info))


def is_compiled(cb: Any, info: ReleaseInfo) -> bool:
    return all(p.exists() for p in _paths(cb, info))


def compile_dx(cb: Any, info: ReleaseInfo, classify: Callable[[str], DxCode]) -> DxTables:
    db = cb.store.open("icd10cm", info.release)
    keys = [r[0] for r in db.conn.execute(
        f"SELECT key FROM concept WHERE kind IN ({','.join('?' * len(_DX_KINDS))}) ORDER BY seq", _DX_KINDS)]
    return DxTables.from_codes([classify(k) for k in keys])


def _save(t: DxTables, paths: list[Path]) -> None:
    try:
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        for frame, path in zip((getattr(t, name) for name in DxTables.PARTS), paths):
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            frame.write_parquet(tmp)
            os.replace(tmp, path)
    except OSError:
        pass   # a read-only home still works: the tables are rebuilt in memory next time


# ====================================================================== HCPCS and ICD-10-PCS
HCPCS_SCHEMA = {"key": pl.String, "code": pl.String, "kind": pl.String, "billable": pl.Int64, "title": pl.String,
                "added": pl.String, "ended": pl.String, "noc_source": pl.String, "drug": pl.Boolean}
NOC_LIST = "NOC codes list"    # the NOC record's source when it does not name one


def hcpcs_noc(attrs: dict[str, Any]) -> tuple[str | None, bool]:
    """(the NOC list a code is on, or None; priced as a drug: pricing indicator 51 = Drugs, HCPCS record layout)."""
    noc = attrs.get("noc")
    source = (noc.get("source") or NOC_LIST) if isinstance(noc, dict) else (NOC_LIST if noc else None)
    return source, "51" in (attrs.get("pricing_indicator") or [])


def hcpcs_table(cb: Any, release: str) -> pl.DataFrame:
    """The HCPCS release: key, code, kind (code/modifier...), billable, title, added and termination dates,
    the NOC list it is on and whether it is priced as a drug (:func:`hcpcs_noc`, read per row in SQL)."""
    conn = cb.store.open("hcpcs", release).conn
    rows = conn.execute(
        "SELECT key, code, kind, billable, title, json_extract(attrs, '$.code_added_date'), "
        "json_extract(attrs, '$.termination_date'), "
        "CASE WHEN json_type(attrs, '$.noc') = 'object' THEN coalesce(nullif(json_extract(attrs, '$.noc.source'), ''), ?) "
        "WHEN json_extract(attrs, '$.noc') THEN ? END, "
        "EXISTS (SELECT 1 FROM json_each(attrs, '$.pricing_indicator') WHERE value = '51') "
        "FROM concept", (NOC_LIST, NOC_LIST)).fetchall()
    return (pl.DataFrame(rows, schema=HCPCS_SCHEMA, orient="row")
            .with_columns(pl.col("added").str.slice(0, 10).str.to_date(strict=False),
                          pl.col("ended").str.slice(0, 10).str.to_date(strict=False),
                          pl.lit(release).alias("release")))


def pcs_table(cb: Any, release: str) -> pl.DataFrame:
    """The ICD-10-PCS release: key, billable (complete code) and title."""
    conn = cb.store.open("icd10pcs", release).conn
    rows = conn.execute("SELECT key, billable, title FROM concept").fetchall()
    return pl.DataFrame(rows, schema={"key": pl.String, "billable": pl.Int64, "title": pl.String},
                        orient="row").with_columns(pl.lit(release).alias("release"))


def code_table(cb: Any, system: str, release: str | None) -> pl.DataFrame:
    """Any system's release as key, kind, billable, title, ended (HCPCS termination date), release."""
    schema = {"key": pl.String, "kind": pl.String, "billable": pl.Int64, "title": pl.String, "ended": pl.String}
    rows: list[Any] = []
    if cb is not None and release is not None:
        ended = "json_extract(attrs, '$.termination_date')" if system == "hcpcs" else "NULL"
        rows = cb.store.open(system, release).conn.execute(
            f"SELECT key, kind, billable, title, {ended} FROM concept").fetchall()
    return pl.DataFrame(rows, schema=schema, orient="row").with_columns(
        pl.col("ended").str.slice(0, 10).str.to_date(strict=False), pl.lit(release, pl.String).alias("release"))


def prepare(cb: Any, progress: Callable[[str], None] | None = None) -> int:
    """Compile the facts tables of every installed ICD-10-CM release not compiled yet (``medcodes pull`` calls
    this); how many were compiled."""
    from .check import checker

    ck = checker(cb)
    n = 0
    for info in cb.store.releases("icd10cm"):
        if not is_compiled(cb, info):
            ck.dx_tables(info, progress)
            n += 1
    return n
