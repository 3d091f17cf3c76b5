"""Batch mode: check a whole table of claim lines (CSV or Parquet) with vectorised Polars joins.

    >>> from medcodes.claims.batch import check_lines
    >>> findings = check_lines(cb, "claim_lines.parquet")     # a polars.DataFrame, one row per finding

The input is the CSV layout the CSV reader documents (one row per service
line, the claim columns repeated on every line of the claim; list cells
separated by ``;``), as CSV or Parquet (where list columns may also be real
lists). Nothing is read row by row in Python: the per-release code tables
(ICD-10-CM validity and billable flags, HCPCS codes with their add and
termination dates, HCPCS modifiers, ICD-10-PCS codes) are pulled from the
store once, per release in effect on each date of service, and joined against
the exploded diagnoses, lines and modifiers.

What a diagnosis code *means* (its notes, sex and age facts, Excludes1/2
references) is derived once per distinct code and release by the same
:class:`~medcodes.claims.check.Checker` the per-claim checker uses, and
turned into tables (flags, and Excludes prefixes/ranges that are matched
against every pair of diagnoses of a claim by a join). The few distinct
diagnosis codes that are not billable codes of their release (headers,
invalid, deleted, 7th character, another code set) are classified by the
Checker's own per-code rule, so both modes give the same verdict.

Rules covered (:data:`BATCH_RULES`): the validity, header, 7th character,
placeholder, code-set, duplicate, external-cause/manifestation-first,
Excludes1/Excludes2, sex and age rules on diagnoses; ICD-10-PCS validity and
PCS-on-professional; every line rule (code validity, CDT, CPT shape and
Category II charge, HCPCS add/termination dates, modifiers, LT/RT with 50,
units, diagnosis pointers); the NCCI MUE, add-on code and PTP edits of the
quarter in effect on each line's date (:func:`_ncci_findings`: the per-claim
rule of :mod:`medcodes.claims.ncci`, run on each claim's lines). Not covered
(use ``medcodes check`` per claim): code first, use additional code, code also.
Claim contents are never logged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from .check import (BILATERAL, GUIDELINES, ICD10_START, SEX_EDIT_REMOVED, Checker, _first_listed, checker,
                    hcpcs_gap_finding, noc_message, noc_source)
from .facts import DxFacts
from .model import SETTINGS, Claim, ClaimFormatError, Diagnosis, Finding, Line
from .ncci import findings as ncci_findings
from .ncci import gap_finding

#: the NCCI rules (claims/ncci.py), applied in batch mode by :func:`_ncci_findings`
NCCI_RULES = ("ncci-mue", "ncci-add-on", "ncci-ptp", "ncci-unchecked")

#: rules batch mode applies (the rest need the per-claim checker)
BATCH_RULES = (
    "dx-invalid", "dx-not-valid-on-date", "dx-header", "dx-7th-character", "dx-placeholder",
    "dx-wrong-code-set", "icd9-after-icd10", "icd10-before-icd10", "dx-release-gap", "dx-duplicate",
    "dx-external-cause-first", "dx-manifestation-first", "dx-unacceptable-principal", "dx-excludes1", "dx-excludes2",
    "dx-sex-conflict", "dx-age-conflict",
    "pcs-on-professional", "pcs-invalid", "line-code-invalid", "line-cdt", "line-cpt-category-ii-charge",
    "line-cpt-unchecked", "hcpcs-terminated", "hcpcs-not-yet-effective", "hcpcs-noc-unspecified",
    "hcpcs-release-gap", "modifier-invalid",
    "modifier-bilateral-conflict", "line-units", "line-diagnosis-pointer",
) + NCCI_RULES

FINDINGS_SCHEMA = {"claim_id": pl.String, "line": pl.Int64, "rule": pl.String, "severity": pl.String,
                   "location": pl.String, "codes": pl.String, "message": pl.String, "source": pl.String}

_DEFAULTS = {"claim_type": "professional", "patient_sex": "U", "patient_birth_date": None, "diagnoses": None,
             "procedures": None, "line_code": None, "modifiers": None, "units": None,
             "diagnosis_pointers": None, "line_date": None, "charge": None, "line_description": None, "ndc": None,
             "setting": None, "provider": None, "line_provider": None}
_LISTS = ("diagnoses", "procedures", "modifiers", "diagnosis_pointers")

_CPT_I, _CPT_II, _CPT_III = r"^\d{5}$", r"^\d{4}F$", r"^\d{4}T$"
_HCPCS, _PCS, _MOD = r"^[A-V]\d{4}$", r"^[0-9A-HJ-NP-Z]{7}$", r"^[0-9A-Z]{2}$"


# ====================================================================== reading
def read_lines(path_or_frame: str | os.PathLike[str] | pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The table as (claims, lines): one typed row per claim (its first row) and per service line.

    ``claims``: c (claim ordinal), row, claim_id, claim_type, sex, birth_date, service_date,
    diagnoses and procedures (list[str]). ``lines``: c, row, claim_id, line (0-based within the
    claim), code, modifiers, units, pointers, line_date, charge. Rows with an empty ``line_code``
    are not lines (a claim without lines is one such row). A cell the per-claim reader would
    refuse raises :class:`ClaimFormatError` naming the file, the row and the column.
    """
    if isinstance(path_or_frame, pl.DataFrame):
        df, where = path_or_frame, "lines table"
    else:
        p = Path(path_or_frame)
        where = p.name
        try:
            if p.suffix.lower() in (".parquet", ".pq"):
                df = pl.read_parquet(p)
            else:
                df = pl.read_csv(p, infer_schema=False, encoding="utf8-lossy")
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise ClaimFormatError(f"{where}: not a readable claim-lines table ({str(exc).splitlines()[0]})") from exc
    missing = {"claim_id", "service_date"} - set(df.columns)
    if missing:
        raise ClaimFormatError(f"{where}: missing column(s) {', '.join(sorted(missing))}")
    df = df.with_columns(pl.lit(v, pl.String).alias(c) for c, v in _DEFAULTS.items() if c not in df.columns)
    df = df.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
                         _text("claim_id").fill_null("").alias("claim_id"))
    # the lines of a claim are usually together: then the claims are the runs of claim_id, else its first rows
    starts = (pl.col("claim_id") != pl.col("claim_id").shift()).fill_null(True)
    together = df.select(starts.sum() == pl.col("claim_id").n_unique()).item()
    df = df.with_columns((starts if together else pl.col("claim_id").is_first_distinct()).alias("first"))
    raw_claims = (df.filter("first")   # the claim columns of its first row
                  .select("row", "claim_id", "claim_type", "patient_sex", "patient_birth_date", "service_date",
                          "diagnoses", "procedures", "setting", "provider")
                  .with_row_index("c").with_columns(pl.col("c").cast(pl.Int64)))
    claims = raw_claims.select(
        "c", "row", "claim_id",
        pl.coalesce(_text("claim_type").replace("", None), pl.lit("professional")).alias("claim_type"),
        pl.coalesce(_text("patient_sex").str.to_uppercase().str.slice(0, 1).replace("", None),
                    pl.lit("U")).alias("sex"),
        _as_date(raw_claims, "patient_birth_date").alias("birth_date"),
        _as_date(raw_claims, "service_date").alias("service_date"),
        _as_list(raw_claims, "diagnoses").alias("diagnoses"),
        _as_list(raw_claims, "procedures").alias("procedures"),
        _raw_date(raw_claims, "patient_birth_date").alias("birth_date_raw"),
        _text("setting").replace("", None).alias("setting"), _text("provider").replace("", None).alias("provider"))
    _reject(claims, where, [
        *_setting_checks(),
        (pl.col("claim_id") == "", "claim_id is empty"),
        (pl.col("service_date").is_null(), "service_date is not a date (YYYY-MM-DD)"),
        (~pl.col("claim_type").is_in(["professional", "institutional"]),
         "claim_type must be professional or institutional"),
        (~pl.col("sex").is_in(["F", "M", "U"]), "patient_sex must be F, M or U"),
        (pl.col("birth_date").is_null() & pl.col("birth_date_raw").is_not_null(), "patient_birth_date is not a date"),
    ])
    raw_lines = df.select("row", "claim_id", _text("line_code").fill_null("").alias("code"), "modifiers", "units",
                          "diagnosis_pointers", "line_date", "charge", "line_provider",
                          ((_text("line_description").fill_null("") != "") | (_text("ndc").fill_null("") != ""))
                          .alias("described"),
                          (pl.col("first").cum_sum() - 1).cast(pl.Int64).alias("c") if together else pl.lit(None))
    raw_lines = raw_lines.filter(pl.col("code") != "")
    lines = raw_lines.select(
        "row", "claim_id", "code", "c", "described",
        _as_list(raw_lines, "modifiers", upper=True).alias("modifiers"),
        pl.coalesce(_text("units").replace("", None), pl.lit("1")).cast(pl.Float64, strict=False).alias("units"),
        _as_list(raw_lines, "diagnosis_pointers").cast(pl.List(pl.Int64), strict=False).alias("pointers"),
        _as_date(raw_lines, "line_date").alias("line_date"),
        _text("charge").replace("", None).cast(pl.Float64, strict=False).alias("charge"),
        _raw_date(raw_lines, "line_date").alias("line_date_raw"),
        _text("charge").replace("", None).alias("charge_raw"),
        _text("line_provider").replace("", None).alias("provider"))
    _reject(lines, where, [
        (pl.col("line_date").is_null() & pl.col("line_date_raw").is_not_null(), "line_date is not a date"),
        (pl.col("units").is_null(), "units is not a number"),
        (pl.col("charge").is_null() & pl.col("charge_raw").is_not_null(), "charge is not a number"),
    ])
    # a pointer that is not an integer became null: more nulls than empty lists in the flattened column
    nulls = lines.select(pl.col("pointers").explode().null_count() - (pl.col("pointers").list.len() == 0).sum()).item()
    if nulls:
        _reject(lines, where, [(pl.col("pointers").list.eval(pl.element().is_null()).list.any(),
                                "diagnosis_pointers must be 1-based integers")])
    lines = lines.drop("line_date_raw", "charge_raw")
    if not together:
        lines = lines.drop("c").join(claims.select("claim_id", "c"), on="claim_id", how="left").sort("c", "row")
    lines = lines.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("i"))
    # the line's place in its claim: rows are sorted by claim, so it is the distance to the claim's first row
    first = pl.when(pl.col("c") != pl.col("c").shift()).then("i").otherwise(None).forward_fill().fill_null(0)
    lines = lines.with_columns((pl.col("i") - first).alias("line")).drop("i")
    return claims.drop("birth_date_raw"), lines


def _text(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.String).str.strip_chars()


def _raw_date(df: pl.DataFrame, col: str) -> pl.Expr:
    """The cell as given, when it is text (to tell an empty cell from one that is not a date)."""
    if df.schema[col] in (pl.Date, pl.Datetime) or isinstance(df.schema[col], pl.Datetime):
        return pl.lit(None, pl.String)
    return _text(col).replace("", None)


def _as_list(df: pl.DataFrame, col: str, upper: bool = False) -> pl.Expr:
    """A ``;``-separated text cell (commas and spaces too, as the CSV reader) or a list column, as list[str]."""
    if isinstance(df.schema[col], pl.List):
        item = pl.element().cast(pl.String).str.strip_chars()
        out = pl.col(col).list.eval((item.str.to_uppercase() if upper else item)
                                    ).list.eval(pl.element().filter(pl.element() != ""))
        return out.fill_null(pl.lit([], pl.List(pl.String)))
    text = _text(col).fill_null("")
    return (text.str.to_uppercase() if upper else text).str.extract_all(r"[^;, ]+")


def _as_date(df: pl.DataFrame, col: str) -> pl.Expr:
    dtype = df.schema[col]
    if dtype == pl.Date:
        return pl.col(col)
    if isinstance(dtype, pl.Datetime):
        return pl.col(col).dt.date()
    return _text(col).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)


def _reject(df: pl.DataFrame, where: str, checks: list[tuple[pl.Expr, str]]) -> None:
    """The first row that the per-claim reader would refuse: one line naming the file, the row and the field."""
    if not df.height or not any(df.select([cond.any() for cond, _m in checks]).row(0)):
        return
    bad = df.select([pl.col("row").filter(cond).first().alias(str(n)) for n, (cond, _m) in enumerate(checks)]).row(0)
    hits = [(row, checks[n][1]) for n, row in enumerate(bad) if row is not None]
    if hits:
        row, msg = min(hits)
        raise ClaimFormatError(f"{where}: row {row + 2}: {msg}")   # +2: the header is row 1


# ====================================================================== release tables
class _Tables:
    """The per-release code tables and per-code facts batch mode joins against (built once per Checker)."""

    def __init__(self, ck: Checker) -> None:
        self.ck = ck
        self.cb = ck.cb
        self._code_tables: dict[tuple[str, str], pl.DataFrame] = {}
        self._known: dict[tuple[str, str], dict[str, tuple[Any, ...] | None]] = {}

    def releases(self, dates: pl.Series, system: str) -> pl.DataFrame:
        """date -> release, label, covers, probe for ``system`` (one row per distinct date)."""
        rows = []
        for day in dates.drop_nulls().unique().to_list():
            r = self.ck.rel(system, day)
            if r is not None:
                rows.append((day, r.release, r.label, r.covers, r.probe))
        return pl.DataFrame(rows, schema={"day": pl.Date, "release": pl.String, "label": pl.String,
                                          "covers": pl.Boolean, "probe": pl.Date}, orient="row")

    def table(self, system: str, release: str) -> pl.DataFrame:
        """One SQL scan of the release: key, code, kind, billable, title (and HCPCS add/termination dates)."""
        ck = (system, release)
        got = self._code_tables.get(ck)
        if got is None:
            conn = self.cb.store.open(system, release).conn
            if system == "hcpcs":
                sql = ("SELECT key, code, kind, billable, title, json_extract(attrs, '$.code_added_date'), "
                       "json_extract(attrs, '$.termination_date'), json_extract(attrs, '$.noc'), "
                       "EXISTS (SELECT 1 FROM json_each(attrs, '$.pricing_indicator') WHERE value = '51') "
                       "FROM concept")
            else:
                sql = "SELECT key, code, kind, billable, title, NULL, NULL, NULL, 0 FROM concept"
            got = pl.DataFrame(conn.execute(sql).fetchall(), orient="row", infer_schema_length=None, schema={
                "key": pl.String, "code": pl.String, "kind": pl.String, "billable": pl.Int64, "title": pl.String,
                "added": pl.String, "ended": pl.String, "noc": pl.String, "drug": pl.Int64})
            got = got.with_columns(pl.col("added").str.slice(0, 10).str.to_date(strict=False),
                                   pl.col("ended").str.slice(0, 10).str.to_date(strict=False),
                                   pl.lit(release).alias("release"))
            self._code_tables[ck] = got
        return got

    def rows(self, system: str, wanted: pl.DataFrame) -> pl.DataFrame:
        """The store rows (release, key, code, kind, billable, title) of the distinct (release, key) pairs asked.

        Read by primary key and remembered per release, so a code is read from the store once.
        """
        out = []
        for (release,), part in wanted.select("release", "key").unique().drop_nulls().group_by(
                "release", maintain_order=True):
            known = self._known.setdefault((system, release), {})
            missing = [k for k in part["key"].to_list() if k not in known]
            conn = self.cb.store.open(system, release).conn
            for i in range(0, len(missing), 900):
                chunk = missing[i:i + 900]
                for k in chunk:
                    known[k] = None
                for row in conn.execute("SELECT key, code, kind, billable, title FROM concept WHERE key IN "
                                        f"({','.join('?' * len(chunk))})", chunk):
                    known[row[0]] = tuple(row)
            out.extend((release, *known[k]) for k in part["key"].to_list() if known[k] is not None)
        return pl.DataFrame(out, orient="row", schema={"release": pl.String, "key": pl.String, "code": pl.String,
                                                      "kind": pl.String, "billable": pl.Int64, "title": pl.String})

    def tables(self, system: str, releases: list[str]) -> pl.DataFrame:
        frames = [self.table(system, r) for r in releases]
        return pl.concat(frames) if frames else self.table_schema()

    @staticmethod
    def table_schema() -> pl.DataFrame:
        return pl.DataFrame(schema={"key": pl.String, "code": pl.String, "kind": pl.String, "billable": pl.Int64,
                                    "title": pl.String, "added": pl.Date, "ended": pl.Date, "noc": pl.String,
                                    "drug": pl.Int64, "release": pl.String})


def _norm(expr: pl.Expr) -> pl.Expr:
    """:func:`medcodes.model.normalize_key` as an expression."""
    return expr.str.strip_chars().str.to_uppercase().str.replace_all(".", "", literal=True).str.replace_all(
        " ", "", literal=True)


def _findings(df: pl.DataFrame | pl.LazyFrame, section: int) -> pl.DataFrame:
    """Select the finding columns (plus sort keys) from a frame that has them."""
    lf = df.lazy() if isinstance(df, pl.DataFrame) else df
    return lf.select("c", pl.lit(section, pl.Int32).alias("section"), pl.col("pos").cast(pl.Int64),
                     pl.col("sub").cast(pl.Int64), "claim_id", pl.col("line").cast(pl.Int64), "rule", "severity",
                     "location", "codes", "message", "source").collect()


def _rows(found: list[tuple[Any, ...]], section: int) -> pl.DataFrame:
    return pl.DataFrame(found, schema={"c": pl.Int64, "pos": pl.Int64, "sub": pl.Int64, "claim_id": pl.String,
                                       "line": pl.Int64, "rule": pl.String, "severity": pl.String,
                                       "location": pl.String, "codes": pl.String, "message": pl.String,
                                       "source": pl.String}, orient="row").select(
        "c", pl.lit(section, pl.Int32).alias("section"), "pos", "sub", "claim_id", "line", "rule", "severity",
        "location", "codes", "message", "source")


# ====================================================================== entry point
def check_lines(cb: Any, path_or_frame: str | os.PathLike[str] | pl.DataFrame,
                ck: Checker | None = None) -> pl.DataFrame:
    """Findings for every claim of a claim-lines table (CSV or Parquet file, or a DataFrame).

    One row per finding: ``claim_id``, ``line`` (0-based line of the claim, null for claim and
    diagnosis findings), ``rule``, ``severity``, ``location``, ``codes`` (``;``-separated),
    ``message``, ``source`` -- the same values ``check`` gives for the rules in :data:`BATCH_RULES`.
    """
    return check_table(cb, path_or_frame, ck).findings


class BatchResult:
    """What :func:`check_table` read and found: claim and line counts, and the findings table."""

    def __init__(self, claims: int, lines: int, findings: pl.DataFrame) -> None:
        self.claims, self.lines, self.findings = claims, lines, findings

    def summary(self) -> dict[str, Any]:
        return {"claims": self.claims, "lines": self.lines, **summary(self.findings)}


def check_table(cb: Any, path_or_frame: str | os.PathLike[str] | pl.DataFrame,
                ck: Checker | None = None) -> BatchResult:
    """:func:`check_lines`, also saying how many claims and lines were read."""
    ck = ck or checker(cb)
    tabs = ck._batch_tables
    if tabs is None:
        tabs = ck._batch_tables = _Tables(ck)
    claims, lines = read_lines(path_or_frame)
    return BatchResult(claims.height, lines.height, _check(tabs, claims, lines))


def _check(tabs: _Tables, claims: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    lines = (lines.join(claims.select("c", "claim_type", pl.col("service_date").alias("claim_date"),
                                      pl.col("diagnoses").list.len().alias("ndx")), on="c", how="left")
             .with_columns(pl.coalesce("line_date", "claim_date").alias("day")))
    parts = [_diagnosis_findings(tabs, claims), _procedure_findings(tabs, claims), _line_findings(tabs, lines),
             _ncci_findings(tabs, claims, lines)]
    out = pl.concat([p for p in parts if p.height], how="vertical") if any(p.height for p in parts) else None
    if out is None:
        return pl.DataFrame(schema=FINDINGS_SCHEMA)
    return out.sort("c", "section", "pos", "sub", maintain_order=True).select(list(FINDINGS_SCHEMA))


# ====================================================================== diagnoses
def _diagnosis_findings(tabs: _Tables, claims: pl.DataFrame) -> pl.DataFrame:
    """Every diagnosis rule batch mode covers. Codes are classified once per distinct (date, code)."""
    dx = (claims.select("c", "service_date", "diagnoses")
          .with_columns(pl.int_ranges(pl.col("diagnoses").list.len(), dtype=pl.Int64).alias("pos"))
          .explode("diagnoses", "pos").drop_nulls("diagnoses").rename({"diagnoses": "raw"}))
    if not dx.height:
        return _rows([], 0)
    codes, facts = _distinct_codes(tabs, dx.select("service_date", "raw").unique())
    dx = dx.join(codes.select("service_date", "raw", "uid", "kk", "kid"), on=["service_date", "raw"], how="left")
    # dx-duplicate: the same key earlier on the claim (rows are in claim and position order)
    dx = dx.with_columns(~(pl.col("c") * _SHIFT + pl.col("kk")).is_first_distinct().alias("dup"))
    cid = claims.select("c", "claim_id")
    out = [_findings(dx.filter("dup").join(cid, on="c").with_columns(
        pl.col("raw").str.strip_chars().alias("codes"), pl.lit(0).alias("sub"), pl.lit(None).alias("line"),
        pl.lit("dx-duplicate").alias("rule"), pl.lit("warning").alias("severity"),
        pl.format("diagnoses[{}]", "pos").alias("location"),
        pl.format("{} is listed twice; list each diagnosis once.", pl.col("raw").str.strip_chars()).alias("message"),
        pl.lit("ICD-10-CM Official Guidelines, Section I.B.12 (code each condition once)").alias("source")), 0)]
    dx = dx.filter(~pl.col("dup"))
    odd = codes.filter(pl.col("found").list.len() > 0).select("uid", "found").explode("found").unnest("found")
    if odd.height:
        out.append(_findings(dx.join(odd, on="uid").join(cid, on="c").with_columns(
            pl.lit(None).alias("line"), pl.format("diagnoses[{}]", "pos").alias("location")), 0))
    # the diagnoses that carry facts (billable codes and headers) go on to the claim-level rules
    dx = dx.filter(pl.col("kid").is_not_null()).select("c", "pos", "kid")
    out.append(_first_listed_findings(dx, claims, facts))
    out.append(_excludes_findings(dx, cid, facts))
    out.append(_patient_findings(dx, claims, facts))
    return pl.concat([o for o in out if o.height]) if any(o.height for o in out) else _rows([], 0)


_SHIFT = 1 << 31    # (c, kk) and (kid, kid_b) pairs as one Int64, for fast hashing

_FOUND = pl.Struct({"sub": pl.Int64, "rule": pl.String, "severity": pl.String, "codes": pl.String,
                    "message": pl.String, "source": pl.String})


class _Facts:
    """DxFacts of the distinct codes of a batch, as join tables keyed by ``kid`` (one per release and code)."""

    def __init__(self, facts: list[DxFacts]) -> None:
        self.facts = facts
        rows, prefixes, ranges, limits = [], [], [], []
        for kid, f in enumerate(facts):
            rows.append((kid, f.code, f.title, f.sex, f.sex_source, f.about_patient,
                         bool(f.secondary_only or f.manifestation or f.supplementary or f.secondary_guideline)))
            for n, lim in enumerate(f.age_limits):
                limits.append((kid, n, lim.unit, lim.lo, lim.hi, lim.severity, lim.text, lim.source))
            for kind, idx in ((1, f.ex1), (2, f.ex2)):
                if idx is None:
                    continue
                for prefix, note in idx._prefix.items():
                    prefixes.append((kid, kind, prefix, len(prefix), note.text, note.cite()))
                for n, (lo, hi, nlo, nhi, note) in enumerate(idx._ranges):
                    ranges.append((kid, kind, n, lo, hi, nlo, nhi, note.text, note.cite()))
        self.frame = pl.DataFrame(rows, orient="row", schema={
            "kid": pl.Int64, "fcode": pl.String, "title": pl.String, "fsex": pl.String, "sex_source": pl.String,
            "about_patient": pl.Boolean, "first_rules": pl.Boolean})
        self.limits = pl.DataFrame(limits, orient="row", schema={
            "kid": pl.Int64, "n": pl.Int64, "unit": pl.String, "lo": pl.Int64, "hi": pl.Int64, "lseverity": pl.String,
            "ltext": pl.String, "lsource": pl.String})
        self.prefixes = pl.DataFrame(prefixes, orient="row", schema={
            "owner": pl.Int64, "kind": pl.Int64, "prefix": pl.String, "plen": pl.Int64, "note": pl.String,
            "cite": pl.String})
        self.ranges = pl.DataFrame(ranges, orient="row", schema={
            "owner": pl.Int64, "kind": pl.Int64, "ord": pl.Int64, "lo": pl.String, "hi": pl.String, "nlo": pl.Int64,
            "nhi": pl.Int64, "note": pl.String, "cite": pl.String})
        self.owners = set(self.prefixes["owner"].to_list()) | set(self.ranges["owner"].to_list())


def _distinct_codes(tabs: _Tables, u: pl.DataFrame) -> tuple[pl.DataFrame, _Facts]:
    """Each distinct (date, code): its key (``kk``), release, the findings of the per-code rules, and ``kid``.

    Billable codes of the release in effect are found by a join with the release's table; the rest
    (headers, invalid, deleted, 7th character, other code sets, ICD-9) by the Checker's own rule.
    ``kid`` numbers the (release, code) pairs whose facts the claim-level rules use.
    """
    ck = tabs.ck
    u = u.with_row_index("uid").with_columns(pl.col("uid").cast(pl.Int64), _norm(pl.col("raw")).alias("key"))
    u = u.with_columns(pl.col("key").rank("dense").cast(pl.Int64).alias("kk"))
    rel = tabs.releases(u["service_date"], "icd10cm")
    u = u.join(rel.select(pl.col("day").alias("service_date"), "release", "covers"), on="service_date", how="left")
    valid = (tabs.rows("icd10cm", u)
             .filter((pl.col("billable") == 1) & pl.col("kind").is_in(["code", "category", "header", "diagnosis"]))
             .select("release", "key", pl.lit(True).alias("ok")))
    # a date no release covers (or before ICD-10) goes through the Checker's rule, as per claim
    u = (u.join(valid, on=["release", "key"], how="left")
         .with_columns((pl.col("ok").fill_null(False) & pl.col("covers").fill_null(False)
                        & (pl.col("service_date") >= ICD10_START)).alias("ok")).drop("covers"))
    found_col: list[list[dict[str, Any]]] = []
    fact_of: list[tuple[str, str] | None] = []
    for raw, day, release, key, ok in u.select("raw", "service_date", "release", "key", "ok").iter_rows():
        found: list[Finding] = []
        if ok:
            fact_of.append((release, key))
        else:
            state = ck._dx_rules(Claim("", "professional", day, diagnoses=[Diagnosis(raw)]), 0, found.append)
            fact_of.append((release, state.facts.key) if state is not None and state.facts is not None else None)
        found_col.append([{"sub": n, "rule": f.rule, "severity": f.severity, "codes": ";".join(f.codes),
                           "message": f.message, "source": f.source} for n, f in enumerate(found)])
    kids: dict[tuple[str, str], int] = {}
    facts: list[DxFacts] = []
    kid_col: list[int | None] = []
    for (day, fk) in zip(u["service_date"].to_list(), fact_of):
        if fk is None:
            kid_col.append(None)
            continue
        if fk not in kids:
            r = ck.rel("icd10cm", day)
            st = ck._dx_state(fk[1], fk[1], r.probe, r)   # cached per (release, key): the per-claim checker's facts
            kids[fk] = len(facts)
            facts.append(st.facts)
        kid_col.append(kids[fk])
    u = u.with_columns(pl.Series("found", found_col, dtype=pl.List(_FOUND)), pl.Series("kid", kid_col, dtype=pl.Int64))
    return u, _Facts(facts)


def _first_listed_findings(dx: pl.DataFrame, claims: pl.DataFrame, facts: _Facts) -> pl.DataFrame:
    """External cause / manifestation code as the first-listed diagnosis (built per code and claim type)."""
    kids = facts.frame.filter("first_rules")["kid"]
    first = (dx.filter((pl.col("pos") == 0) & pl.col("kid").is_in(kids.implode()))
             .join(claims.select("c", "claim_id", "claim_type"), on="c"))
    found = []
    for c, cid, kid, ctype in first.select("c", "claim_id", "kid", "claim_type").iter_rows():
        for n, f in enumerate(_first_listed(facts.facts[kid], ctype)):
            found.append((c, 0, n, cid, None, f.rule, f.severity, f.location, ";".join(f.codes), f.message, f.source))
    return _rows(found, 1)


def _excludes_findings(dx: pl.DataFrame, cid: pl.DataFrame, facts: _Facts) -> pl.DataFrame:
    """Excludes1 (error) / Excludes2 (info) between two diagnoses, by joining their notes' references.

    Pairs are matched once per distinct (code, code): the other code's prefixes are joined with the
    owner's Excludes prefixes (shortest first), then its ranges, as :meth:`RefIndex.first` does.
    """
    pairs = (dx.join(dx, on="c", suffix="_b")
             .filter((pl.col("pos") < pl.col("pos_b")) & (pl.col("kid") != pl.col("kid_b"))))
    owners = list(facts.owners)
    pairs = pairs.filter(pl.col("kid").is_in(owners) | pl.col("kid_b").is_in(owners))
    if not pairs.height:
        return _rows([], 2)
    keyf = facts.frame.select("kid", pl.col("fcode").str.replace_all(".", "", literal=True).alias("key"), "fcode")
    pairs = pairs.with_columns((pl.col("kid") * _SHIFT + pl.col("kid_b")).alias("pk"))
    uniq = pairs.select(pl.col("pk").unique()).select(
        "pk", (pl.col("pk") // _SHIFT).alias("kid"), (pl.col("pk") % _SHIFT).alias("kid_b"))
    directed = pl.concat([
        uniq.select("kid", "kid_b", pl.lit(0).alias("dir"), pl.col("kid").alias("owner"), pl.col("kid_b").alias("o")),
        uniq.select("kid", "kid_b", pl.lit(1).alias("dir"), pl.col("kid_b").alias("owner"), pl.col("kid").alias("o")),
    ]).filter(pl.col("owner").is_in(owners)).join(keyf.select(pl.col("kid").alias("o"), pl.col("key").alias("other")),
                                                  on="o")
    pre = (directed.with_columns(pl.int_ranges(3, pl.col("other").str.len_chars() + 1, dtype=pl.Int64).alias("plen"))
           .explode("plen").with_columns(pl.col("other").str.slice(0, pl.col("plen")).alias("prefix"))
           .join(facts.prefixes, on=["owner", "prefix", "plen"])
           .with_columns(pl.lit(0).alias("is_range"), pl.col("plen").alias("rank")))
    rng = (directed.join(facts.ranges, on="owner")
           .filter((pl.col("lo") <= pl.col("other").str.slice(0, pl.col("nlo")))
                   & (pl.col("other").str.slice(0, pl.col("nhi")) <= pl.col("hi")))
           .with_columns(pl.lit(1).alias("is_range"), pl.col("ord").alias("rank")))
    cols = ["kid", "kid_b", "dir", "kind", "is_range", "rank", "note", "cite"]
    best = (pl.concat([pre.select(cols), rng.select(cols)]).sort("kind", "dir", "is_range", "rank")
            .group_by("kid", "kid_b").first()
            .join(keyf.select("kid", "fcode"), on="kid")
            .join(keyf.select(pl.col("kid").alias("kid_b"), pl.col("fcode").alias("fcode_b")), on="kid_b"))
    owner = pl.when(pl.col("dir") == 0).then("fcode").otherwise("fcode_b")
    other = pl.when(pl.col("dir") == 0).then("fcode_b").otherwise("fcode")
    e1 = pl.col("kind") == 1
    best = best.select(
        (pl.col("kid") * _SHIFT + pl.col("kid_b")).alias("pk"),
        pl.when(e1).then(pl.lit("dx-excludes1")).otherwise(pl.lit("dx-excludes2")).alias("rule"),
        pl.when(e1).then(pl.lit("error")).otherwise(pl.lit("info")).alias("severity"),
        pl.concat_str("fcode", "fcode_b", separator=";").alias("codes"),
        pl.when(e1).then(pl.format("{} and {} are never coded together: {} has an Excludes1 note for {}. Keep the "
                                   "one the record supports.", owner, other, owner, "note"))
        .otherwise(pl.format("{} has an Excludes2 note for {}: {} is a different condition; coding both is fine "
                             "when the patient has both.", owner, "note", other)).alias("message"),
        pl.when(e1).then(pl.format("{}; {}, Section I.A.12.a", "cite", pl.lit(GUIDELINES)))
        .otherwise(pl.format("{}; {}, Section I.A.12.b", "cite", pl.lit(GUIDELINES))).alias("source"))
    return _findings(pairs.join(best, on="pk").join(cid, on="c").with_columns(
        (pl.col("pos") * 1000 + pl.col("pos_b")).alias("sub"), pl.lit(None).alias("line"),
        pl.format("diagnoses[{}]", "pos_b").alias("location")), 2)


def _month_day(col: str) -> pl.Expr:
    return pl.col(col).dt.month().cast(pl.Int32) * 100 + pl.col(col).dt.day().cast(pl.Int32)


def _patient_findings(dx: pl.DataFrame, claims: pl.DataFrame, facts: _Facts) -> pl.DataFrame:
    """Sex and age conflicts the classification states, against the patient's sex and age on the date.

    The same rule as :func:`medcodes.claims.check._patient`: the sex finding of
    :func:`~medcodes.claims.check.sex_finding` and one finding per violated
    :class:`~medcodes.claims.facts.AgeLimit` (the code's age limits as a table).
    """
    about = facts.frame.filter("about_patient")
    p = (dx.join(about, on="kid").join(claims.select("c", "claim_id", "sex", "birth_date", "service_date"), on="c")
         ).with_columns(
        (pl.col("service_date").dt.year() - pl.col("birth_date").dt.year()
         - (_month_day("service_date") < _month_day("birth_date")).cast(pl.Int32)
         ).cast(pl.Int64).alias("age"),
        (pl.col("service_date") - pl.col("birth_date")).dt.total_days().alias("days"),
        pl.format("diagnoses[{}]", "pos").alias("location"), pl.lit(None).alias("line"),
        pl.col("fcode").alias("codes"))
    if not p.height:
        return _rows([], 3)
    sex = _findings(p.filter(pl.col("fsex").is_not_null() & pl.col("sex").is_in(["F", "M"])
                             & (pl.col("fsex") != pl.col("sex"))).with_columns(
        (pl.col("pos") * 100).alias("sub"), pl.lit("dx-sex-conflict").alias("rule"),
        pl.lit("warning").alias("severity"),
        pl.format("{} ({}) applies to {} patients; this patient is recorded as {}. {}.", "fcode", "title",
                  pl.when(pl.col("fsex") == "F").then(pl.lit("female")).otherwise(pl.lit("male")),
                  pl.when(pl.col("sex") == "F").then(pl.lit("female")).otherwise(pl.lit("male")),
                  pl.lit(SEX_EDIT_REMOVED)).alias("message"),
        pl.format("{}; {}", "sex_source", pl.lit(SEX_EDIT_REMOVED)).alias("source")), 3)
    a = p.filter(pl.col("age").is_not_null()).join(facts.limits, on="kid")
    value = pl.when(pl.col("unit") == "y").then(pl.col("age")).otherwise(pl.col("days"))
    bad = (pl.col("lo").is_not_null() & (value < pl.col("lo"))) | (pl.col("hi").is_not_null() & (value > pl.col("hi")))
    age_text = pl.when(pl.col("age") < 1).then(pl.format("{} days old", "days")).otherwise(
        pl.format("{} years old", "age"))
    ages = _findings(a.filter(bad).with_columns(
        (pl.col("pos") * 100 + 1 + pl.col("n")).alias("sub"), pl.lit("dx-age-conflict").alias("rule"),
        pl.col("lseverity").alias("severity"), pl.format("{} {}; the patient is {}.", "fcode", "ltext", age_text
                                                          ).alias("message"),
        pl.col("lsource").alias("source")), 3)
    return pl.concat([sex, ages])


# ====================================================================== procedures
def _procedure_findings(tabs: _Tables, claims: pl.DataFrame) -> pl.DataFrame:
    with_procs = claims.filter(pl.col("procedures").list.len() > 0)
    if not with_procs.height:
        return _rows([], 4)
    out = [_findings(with_procs.filter(pl.col("claim_type") == "professional").with_columns(
        pl.lit(-1).alias("pos"), pl.lit(0).alias("sub"), pl.lit(None).alias("line"),
        pl.lit("pcs-on-professional").alias("rule"), pl.lit("error").alias("severity"),
        pl.lit("procedures").alias("location"), pl.col("procedures").list.join(";").alias("codes"),
        pl.lit("ICD-10-PCS procedure codes belong on institutional (inpatient) claims; a professional claim reports "
               "CPT/HCPCS codes on its service lines.").alias("message"),
        pl.lit("ICD-10-PCS Official Guidelines (inpatient procedures); HIPAA code sets 45 CFR 162.1002"
               ).alias("source")), 4)]
    pr = (with_procs.select("c", "claim_id", "service_date", "procedures")
          .with_columns(pl.int_ranges(pl.col("procedures").list.len()).alias("pos"))
          .explode("procedures", "pos").rename({"procedures": "raw"})
          .with_columns(pl.col("pos").cast(pl.Int64), _norm(pl.col("raw")).alias("key")))
    rel = tabs.releases(pr["service_date"], "icd10pcs")
    pr = pr.join(rel.rename({"day": "service_date"}), on="service_date")
    tab = tabs.rows("icd10pcs", pr).select("release", "key", "billable", "title")
    pr = (pr.join(tab, on=["release", "key"], how="left")
          .filter(pl.col("billable").is_null() | (pl.col("billable") == 0)))
    header = pl.col("billable") == 0
    msg = pl.when(header).then(pl.format("{} is an ICD-10-PCS table ({}), not a complete 7-character procedure code.",
                                         "raw", "title")
                               ).otherwise(pl.format("{} is not a valid ICD-10-PCS code in {}.", "raw", "label"))
    gap = pl.when(pl.col("covers")).then(pl.lit("")).otherwise(
        pl.format(" No installed ICD-10-PCS release covers {}.", pl.col("service_date").dt.to_string("%Y-%m-%d")))
    out.append(_findings(pr.with_columns(
        pl.lit(0).alias("sub"), pl.lit(None).alias("line"), pl.lit("pcs-invalid").alias("rule"),
        pl.when("covers").then(pl.lit("error")).otherwise(pl.lit("warning")).alias("severity"),
        pl.format("procedures[{}]", "pos").alias("location"), pl.col("raw").alias("codes"),
        pl.concat_str(msg, gap).alias("message"), pl.format("{} (order file)", "label").alias("source")), 4))
    return pl.concat(out)


# ====================================================================== lines
def _line_findings(tabs: _Tables, lines: pl.DataFrame) -> pl.DataFrame:
    if not lines.height:
        return _rows([], 5)
    ck = tabs.ck
    cpt = ck.cpt_installed()
    # each distinct (date, code) is classified once, then joined back to its lines
    u = lines.select("day", "code").unique().with_columns(_norm(pl.col("code")).alias("key"))
    key = pl.col("key")
    shape = (pl.when(key.str.contains(_CPT_II)).then(pl.lit("cpt2"))
             .when(key.str.contains(_CPT_I) | key.str.contains(_CPT_III)).then(pl.lit("cpt"))
             .when(key.str.contains(_HCPCS) & key.str.starts_with("D")).then(pl.lit("cdt"))
             .when(key.str.contains(_HCPCS)).then(pl.lit("hcpcs"))
             .when(key.str.contains(_PCS)).then(pl.lit("pcs"))
             .otherwise(pl.lit("other")))
    u = u.with_columns(shape.alias("shape"))
    hrel = tabs.releases(u["day"], "hcpcs").rename({"day": "day", "release": "h_release", "label": "h_label",
                                                    "covers": "h_covers", "probe": "h_probe"})
    u = u.join(hrel, on="day", how="left")
    hreleases = hrel["h_release"].unique().to_list()
    htab = tabs.tables("hcpcs", hreleases)
    codes_tab = htab.filter(pl.col("kind") != "modifier").select(
        pl.col("release").alias("h_release"), "key", pl.col("code").alias("h_code"), pl.col("title").alias("h_title"),
        pl.col("billable").alias("h_billable"), "added", "ended", "noc", "drug", pl.lit(True).alias("h_found"))
    u = u.join(codes_tab, on=["h_release", "key"], how="left")
    ln = lines.select("c", "claim_id", "claim_type", "line", "day", "code", "modifiers", "units", "pointers", "charge",
                      "ndx", "described", pl.lit(None, pl.Int64).alias("pos")).join(u, on=["day", "code"], how="left")
    out = [_line_code_findings(tabs, ln, cpt), _modifier_findings(tabs, ln, htab, cpt), _line_value_findings(ln)]
    if not cpt:   # one info per claim with a CPT-shaped line
        seen = ln.filter(pl.col("shape").is_in(["cpt", "cpt2"])).group_by("c", "claim_id").agg()
        out.append(_findings(seen.with_columns(
            pl.lit(None).alias("pos"), pl.lit(10 ** 9).alias("sub"), pl.lit(None).alias("line"),
            pl.lit("line-cpt-unchecked").alias("rule"), pl.lit("info").alias("severity"),
            pl.lit("lines").alias("location"), pl.lit("").alias("codes"),
            pl.lit("CPT codes were checked by shape only: no licensed AMA CPT file is loaded "
                   "(medcodes pull --cpt FILE).").alias("message"),
            pl.lit("CPT is AMA copyright; not distributed with medcodes").alias("source")), 5))
    return pl.concat([o for o in out if o.height]) if any(o.height for o in out) else _rows([], 5)


def _py_format(df: pl.DataFrame, col: str, spec: str) -> pl.Expr:
    """``format(value, spec)`` as Python writes it (the per-claim messages), computed once per distinct value."""
    values = [v for v in df[col].unique().to_list() if v is not None]
    return pl.col(col).replace_strict({v: format(v, spec) for v in values}, default=None, return_dtype=pl.String)


def _day_text(col: str) -> pl.Expr:
    return pl.col(col).dt.to_string("%Y-%m-%d")


def _line_code_findings(tabs: _Tables, ln: pl.DataFrame, cpt: bool) -> pl.DataFrame:
    sub = pl.col("line") * 100
    common = [pl.lit(None, pl.Int64).alias("pos")]
    where = pl.format("lines[{}].code", "line")
    out = []
    # CPT Category II with a charge
    out.append(ln.filter((pl.col("shape") == "cpt2") & pl.col("charge").is_not_null() & (pl.col("charge") > 0.01))
               .with_columns(*common, sub.alias("sub"), pl.lit("line-cpt-category-ii-charge").alias("rule"),
                             pl.lit("warning").alias("severity"),
                             pl.format("lines[{}].charge", "line").alias("location"),
                             pl.col("code").alias("codes"),
                             pl.format("{} is a CPT Category II (performance measurement) code: report it with a $0.00 "
                                       "charge (or $0.01 where a charge is required), not {}.", "code",
                                       _py_format(ln, "charge", ".2f")).alias("message"),
                             pl.lit("CMS MLN: Quality Data Codes / CPT Category II are tracking codes"
                                    ).alias("source")))
    if cpt:   # a licensed CPT file: its own validation, per distinct code and date
        rows = []
        for code, key, day in ln.filter(pl.col("shape") == "cpt").select("code", "key", "day").unique().iter_rows():
            v = tabs.cb.validate(key, system="cpt", date=day)
            if v.status == "invalid":  # "unknown" (no release covers the date) is not an error
                rows.append((code, day, v.reason))
        if rows:
            bad = pl.DataFrame(rows, schema={"code": pl.String, "day": pl.Date, "reason": pl.String}, orient="row")
            out.append(ln.join(bad, on=["code", "day"]).with_columns(
                *common, sub.alias("sub"), pl.lit("line-code-invalid").alias("rule"), pl.lit("error").alias("severity"),
                where.alias("location"), pl.col("code").alias("codes"), pl.col("reason").alias("message"),
                pl.lit("CPT (AMA)").alias("source")))
    out.append(ln.filter(pl.col("shape") == "cdt").with_columns(
        *common, sub.alias("sub"), pl.lit("line-cdt").alias("rule"), pl.lit("error").alias("severity"),
        where.alias("location"), pl.col("code").alias("codes"),
        pl.format("{} is a CDT (dental) code maintained by the ADA; it is not in the CMS HCPCS file and does not "
                  "belong on a medical claim.", "code").alias("message"),
        pl.lit("CMS HCPCS Level II: D-codes are CDT (ADA)").alias("source")))
    h = ln.filter((pl.col("shape") == "hcpcs") & pl.col("h_release").is_not_null())
    out.append(_per_value(h.filter(~pl.col("h_covers") & pl.col("h_found").is_not_null()), ("h_code", "day", "h_label"),
                          sub, lambda code, day, label: hcpcs_gap_finding("", code, day, label)))
    gap = pl.when("h_covers").then(pl.lit("")).otherwise(pl.format(
        " (no installed HCPCS release covers {}; checked against {})", _day_text("day"), "h_label"))
    out.append(h.filter(pl.col("h_found").is_null()).with_columns(
        *common, sub.alias("sub"), pl.lit("line-code-invalid").alias("rule"),
        pl.when("h_covers").then(pl.lit("error")).otherwise(pl.lit("warning")).alias("severity"),
        where.alias("location"), pl.col("code").alias("codes"),
        pl.format("{} is not in the HCPCS Level II file{}.", "code", gap).alias("message"),
        pl.col("h_label").alias("source")))
    h = h.filter(pl.col("h_found").is_not_null())
    out.append(h.filter(pl.col("added").is_not_null() & (pl.col("day") < pl.col("added"))).with_columns(
        *common, (sub + 1).alias("sub"), pl.lit("hcpcs-not-yet-effective").alias("rule"),
        pl.lit("error").alias("severity"), where.alias("location"), pl.col("h_code").alias("codes"),
        pl.format("{} was added on {}, after the date of service {}.", "h_code", _day_text("added"),
                  _day_text("day")).alias("message"),
        pl.format("{}, Code Added Date", "h_label").alias("source")))
    ended = pl.col("ended").is_not_null() & (pl.col("day") > pl.col("ended"))
    out.append(h.filter(ended).with_columns(
        *common, (sub + 2).alias("sub"), pl.lit("hcpcs-terminated").alias("rule"), pl.lit("error").alias("severity"),
        where.alias("location"), pl.col("h_code").alias("codes"),
        pl.format("{} ({}) was terminated on {}, before the date of service {}.", "h_code", "h_title",
                  _day_text("ended"), _day_text("day")).alias("message"),
        pl.format("{}, Termination Date", "h_label").alias("source")))
    out.append(h.filter(~ended & (pl.col("h_billable") == 0) & pl.col("h_covers") & pl.col("ended").is_null())
               .with_columns(*common, (sub + 2).alias("sub"), pl.lit("hcpcs-terminated").alias("rule"),
                             pl.lit("error").alias("severity"), where.alias("location"),
                             pl.col("h_code").alias("codes"),
                             pl.format("{} is discontinued in {}.", "h_code", "h_label").alias("message"),
                             pl.format("{}, Action Code", "h_label").alias("source")))
    out.append(_per_value(h.filter(pl.col("noc").is_not_null() & ~pl.col("described")),
                          ("h_code", "h_title", "drug", "noc", "h_label"), sub + 3,
                          lambda code, title, drug, noc, label: Finding(
                              "hcpcs-noc-unspecified", "warning", "", (code,), noc_message(code, title, bool(drug)),
                              noc_source(json.loads(noc), label))))
    # ICD-10-PCS shaped: a PCS code on a service line, or nothing at all
    other = ln.filter(pl.col("shape").is_in(["pcs", "other"]))
    if other.height:
        prel = tabs.releases(other["day"], "icd10pcs")
        other = other.join(prel.select("day", pl.col("release").alias("p_release")), on="day", how="left")
        ptab = tabs.rows("icd10pcs", other.select(pl.col("p_release").alias("release"), "key")).select(
            pl.col("release").alias("p_release"), "key", pl.lit(True).alias("p_found"))
        other = other.join(ptab, on=["p_release", "key"], how="left")
        is_pcs = (pl.col("shape") == "pcs") & pl.col("p_found").is_not_null()
        out.append(other.with_columns(
            *common, sub.alias("sub"),
            pl.when(is_pcs).then(pl.lit("pcs-on-professional")).otherwise(pl.lit("line-code-invalid")).alias("rule"),
            pl.lit("error").alias("severity"), where.alias("location"), pl.col("code").alias("codes"),
            pl.when(is_pcs).then(pl.format(
                "{} is an ICD-10-PCS procedure code: service lines take CPT/HCPCS codes; ICD-10-PCS goes in the "
                "institutional claim's procedure fields.", "code"))
            .otherwise(pl.format("{} is neither a CPT nor a HCPCS Level II code.", "code")).alias("message"),
            pl.when(is_pcs).then(pl.lit("HIPAA code sets 45 CFR 162.1002"))
            .otherwise(pl.lit("HCPCS (CMS) / CPT (AMA)")).alias("source")))
    return pl.concat([_findings(o, 5) for o in out if o.height]) if any(o.height for o in out) else _rows([], 5)


def _per_value(df: pl.DataFrame, cols: tuple[str, ...], sub: pl.Expr, make: Any) -> pl.DataFrame:
    """Line-code findings whose text the per-claim rule writes (``make``), computed once per distinct value."""
    if not df.height:
        return df.clear()
    made = [(*vals, *(lambda f: (f.rule, f.severity, ";".join(f.codes), f.message, f.source))(make(*vals)))
            for vals in df.select(cols).unique().iter_rows()]
    facts = pl.DataFrame(made, orient="row", schema={**{c: df.schema[c] for c in cols}, "rule": pl.String,
                                                     "severity": pl.String, "codes": pl.String,
                                                     "message": pl.String, "source": pl.String})
    return df.join(facts, on=list(cols), how="left", nulls_equal=True).with_columns(
        pl.lit(None, pl.Int64).alias("pos"), sub.alias("sub"), pl.format("lines[{}].code", "line").alias("location"))


def _modifier_findings(tabs: _Tables, ln: pl.DataFrame, htab: pl.DataFrame, cpt: bool) -> pl.DataFrame:
    with_mods = ln.filter(pl.col("modifiers").list.len() > 0).select(
        "c", "claim_id", "line", "day", "code", "modifiers", "h_release", "h_label", "h_covers")
    if not with_mods.height:
        return _rows([], 5)
    m = (with_mods.with_columns(pl.int_ranges(pl.col("modifiers").list.len()).alias("k"))
         .explode("modifiers", "k").rename({"modifiers": "mod"}).with_columns(pl.col("k").cast(pl.Int64)))
    mods_tab = htab.filter(pl.col("kind") == "modifier").select(pl.col("release").alias("h_release"),
                                                                pl.col("key").alias("mod"), pl.lit(True).alias("m_ok"))
    m = m.join(mods_tab, on=["h_release", "mod"], how="left")
    shaped = pl.col("mod").str.contains(_MOD)
    digits = pl.col("mod").str.contains(r"^\d+$")
    loc = pl.format("lines[{}].modifiers[{}]", "line", "k")
    common = [pl.lit(None, pl.Int64).alias("pos"), (pl.col("line") * 100 + 10 + pl.col("k")).alias("sub"),
              pl.lit("modifier-invalid").alias("rule"), loc.alias("location"), pl.col("mod").alias("codes")]
    out = [m.filter(~shaped).with_columns(
        *common, pl.lit("error").alias("severity"),
        pl.format("'{}' is not a modifier (modifiers are two letters or digits).", "mod").alias("message"),
        pl.lit("HCPCS/CPT modifiers").alias("source"))]
    out.append(m.filter(shaped & ~digits & pl.col("h_release").is_not_null() & pl.col("m_ok").is_null()).with_columns(
        *common, pl.when("h_covers").then(pl.lit("error")).otherwise(pl.lit("warning")).alias("severity"),
        pl.format("{} is not a HCPCS Level II modifier in {}.", "mod", "h_label").alias("message"),
        pl.format("{} (modifier records)", "h_label").alias("source")))
    if cpt:   # two-digit CPT modifiers against the licensee's file, per distinct modifier and date
        rows = [(mod, day) for mod, day in m.filter(shaped & digits).select("mod", "day").unique().iter_rows()
                if not tabs.cb.validate(mod, system="cpt", date=day).exists]
        if rows:
            bad = pl.DataFrame(rows, schema={"mod": pl.String, "day": pl.Date}, orient="row")
            out.append(m.join(bad, on=["mod", "day"]).with_columns(
                *common, pl.lit("error").alias("severity"), pl.format("{} is not a CPT modifier.", "mod")
                .alias("message"), pl.lit("CPT Appendix A (AMA)").alias("source")))
    # 50 with LT or RT on one line: reported at the first LT (else the first RT)
    side = (with_mods.filter(pl.col("modifiers").list.contains(BILATERAL))
            .with_columns(pl.when(pl.col("modifiers").list.contains("LT")).then(pl.lit("LT"))
                          .when(pl.col("modifiers").list.contains("RT")).then(pl.lit("RT")).alias("side"))
            .filter(pl.col("side").is_not_null()).drop("modifiers"))
    if side.height:
        at = (m.join(side.select("c", "line", "side"), on=["c", "line"])
              .filter(pl.col("mod") == pl.col("side")).group_by("c", "line").agg(pl.col("k").min()))
        side = side.join(at, on=["c", "line"])
        out.append(side.with_columns(
            pl.lit(None, pl.Int64).alias("pos"), (pl.col("line") * 100 + 50).alias("sub"),
            pl.lit("modifier-bilateral-conflict").alias("rule"), pl.lit("error").alias("severity"),
            pl.format("lines[{}].modifiers[{}]", "line", "k").alias("location"),
            pl.concat_str("code", pl.lit(BILATERAL), "side", separator=";").alias("codes"),
            pl.format("Modifier 50 (bilateral) already says both sides; do not add {} on the same line.", "side"
                      ).alias("message"),
            pl.lit("CPT Appendix A (modifier 50); HCPCS LT/RT modifiers").alias("source")))
    return pl.concat([_findings(o, 5) for o in out if o.height]) if any(o.height for o in out) else _rows([], 5)


def _line_value_findings(ln: pl.DataFrame) -> pl.DataFrame:
    """Units positive; diagnosis pointers inside the claim's diagnoses (or present, on professional claims)."""
    common = [pl.lit(None, pl.Int64).alias("pos"), pl.col("code").alias("codes")]
    bad_units = ln.filter(pl.col("units") <= 0)
    out = [bad_units.with_columns(
        *common, (pl.col("line") * 100 + 60).alias("sub"), pl.lit("line-units").alias("rule"),
        pl.lit("error").alias("severity"), pl.format("lines[{}].units", "line").alias("location"),
        pl.format("Units must be a positive number (got {}).", _py_format(bad_units, "units", "g")).alias("message"),
        pl.lit("837P SV104 / 837I SV205: service unit count").alias("source"))]
    p = (ln.filter(pl.col("pointers").list.len() > 0).select("c", "claim_id", "line", "code", "pointers", "ndx")
         .with_columns(pl.int_ranges(pl.col("pointers").list.len()).alias("k")).explode("pointers", "k")
         .filter((pl.col("pointers") < 1) | (pl.col("pointers") > pl.col("ndx"))))
    out.append(p.with_columns(
        *common, (pl.col("line") * 100 + 70 + pl.col("k")).alias("sub"), pl.lit("line-diagnosis-pointer").alias("rule"),
        pl.lit("error").alias("severity"), pl.format("lines[{}].diagnosis_pointers[{}]", "line", "k").alias("location"),
        pl.format("Diagnosis pointer {} points at no diagnosis (the claim lists {}).", "pointers", "ndx"
                  ).alias("message"), pl.lit("CMS-1500 item 24E / 837P SV107").alias("source")))
    out.append(ln.filter((pl.col("pointers").list.len() == 0) & (pl.col("ndx") > 0)
                         & (pl.col("claim_type") == "professional")).with_columns(
        *common, (pl.col("line") * 100 + 99).alias("sub"), pl.lit("line-diagnosis-pointer").alias("rule"),
        pl.lit("warning").alias("severity"), pl.format("lines[{}].diagnosis_pointers", "line").alias("location"),
        pl.lit("This line points at no diagnosis: link it to the diagnosis that makes the service medically "
               "necessary.").alias("message"), pl.lit("CMS-1500 item 24E / 837P SV107").alias("source")))
    return pl.concat([_findings(o, 5) for o in out if o.height]) if any(o.height for o in out) else _rows([], 5)


# ====================================================================== NCCI
def _setting_checks() -> list[tuple[pl.Expr, str]]:
    """A ``setting`` cell the claim's type does not allow (as :meth:`Claim.from_dict` refuses it)."""
    out = []
    for ctype, allowed in SETTINGS.items():
        bad = (pl.col("claim_type") == ctype) & pl.col("setting").is_not_null() & ~pl.col("setting").is_in(allowed)
        out.append((bad.alias(f"setting_{ctype}"), f"setting of {ctype} claims must be one of {', '.join(allowed)}"))
    return out


def _ncci_findings(tabs: _Tables, claims: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """NCCI MUE, add-on code and PTP edits: :func:`medcodes.claims.ncci.findings` (the rule the per-claim
    checker runs) on the lines of each claim that can have such a finding, with the edits the Checker has
    for each date -- one definition of the rule, so both modes agree finding for finding.

    Polars only narrows the work: claims of a setting without NCCI tables are skipped, and a claim none
    of whose lines (on a date a quarter covers) has a code of the edits (:meth:`NcciEdits.codes`) can
    only get the once-per-claim note about uncovered dates (:func:`medcodes.claims.ncci.gap_finding`).
    """
    if not lines.height:
        return _rows([], 6)
    edits_on = tabs.ck.ncci_on
    ln = (lines.select("c", "line", "code", "modifiers", "units", "line_date", "provider")
          .join(claims.select("c", "claim_id", "claim_type", "setting", "provider", "service_date"), on="c",
                how="left", suffix="_claim")
          .filter(~pl.col("setting").is_in(["inpatient", "other"]).fill_null(False))
          .with_columns(pl.coalesce("line_date", "service_date").alias("day"), _norm(pl.col("code")).alias("key")))
    if not ln.height:
        return _rows([], 6)
    sets: dict[int, Any] = {}
    day_rows = []
    for day in ln["day"].unique().to_list():
        edits = edits_on(day)
        if edits is not None:
            sets.setdefault(id(edits), edits)
        day_rows.append((day, None if edits is None else id(edits)))
    days = pl.DataFrame(day_rows, schema={"day": pl.Date, "eid": pl.Int64}, orient="row")
    codes = pl.DataFrame([(eid, k) for eid, e in sets.items() for k in e.codes()],
                         schema={"eid": pl.Int64, "key": pl.String}, orient="row")
    ln = ln.join(days, on="day", how="left")
    busy = ln.join(codes, on=["eid", "key"], how="semi").select("c").unique()
    found: list[tuple[Any, ...]] = []
    # the claims that may have MUE, add-on code or PTP findings: the rule itself, claim by claim
    cur: int | None = None
    buf: list[Line] = []
    head: tuple[Any, ...] = ()

    def flush() -> None:
        cid, ctype, setting, prov, sdate = head
        got: list[Finding] = []
        ncci_findings(Claim(cid, ctype, sdate, lines=buf, setting=setting, provider=prov), edits_on, got.append)
        for pos, f in enumerate(got):
            at = f.location
            line = int(at[6:at.index("]")]) if at.startswith("lines[") else None
            found.append((cur, pos, 0, cid, line, f.rule, f.severity, at, ";".join(f.codes), f.message, f.source))

    rows = ln.join(busy, on="c", how="semi").sort("c", "line").select(
        "c", "code", "modifiers", "units", "line_date", "provider", "claim_id", "claim_type", "setting",
        "provider_claim", "service_date").iter_rows()
    for c, code, mods, units, day, prov, *claim_head in rows:
        if c != cur:
            if buf:
                flush()
            cur, buf, head = c, [], tuple(claim_head)
        buf.append(Line(code, mods or [], units, [], day, None, provider=prov))
    if buf:
        flush()
    # the other claims: only the note about dates no installed quarter covers, one text per set of dates
    gaps = (ln.filter(pl.col("eid").is_null()).join(busy, on="c", how="anti")
            .group_by("c").agg(pl.col("claim_id").first(), pl.col("day").unique().sort().alias("days"))
            .with_columns(pl.col("days").list.eval(pl.element().cast(pl.String)).list.join(",").alias("k")))
    texts = [(k, *(lambda f: (f.rule, f.severity, f.location, "", f.message, f.source))(
        gap_finding(tuple(dt.date.fromisoformat(d) for d in k.split(",")))))
        for k in gaps["k"].unique().to_list()]
    text = pl.DataFrame(texts, orient="row", schema={"k": pl.String, "rule": pl.String, "severity": pl.String,
                                                     "location": pl.String, "codes": pl.String,
                                                     "message": pl.String, "source": pl.String})
    gap_rows = gaps.join(text, on="k", how="left").select(
        "c", pl.lit(6, pl.Int32).alias("section"), pl.lit(0, pl.Int64).alias("pos"), pl.lit(0, pl.Int64).alias("sub"),
        "claim_id", pl.lit(None, pl.Int64).alias("line"), "rule", "severity", "location", "codes", "message",
        "source")
    busy_rows = _rows(found, 6)
    return pl.concat([busy_rows, gap_rows]) if gap_rows.height else busy_rows


def summary(findings: pl.DataFrame) -> dict[str, Any]:
    """Counts of a findings table: claims with errors, findings by severity and by rule."""
    by_sev = dict(findings.group_by("severity").len().sort("severity").iter_rows())
    by_rule = {f"{r} ({s})": n for r, s, n in findings.group_by("rule", "severity").len().sort("rule", "severity")
               .iter_rows()}
    with_errors = findings.filter(pl.col("severity") == "error")["claim_id"].n_unique()
    return {"claims_with_errors": with_errors, "findings": by_sev, "rules": by_rule}


__all__ = ["check_lines", "check_table", "read_lines", "summary", "BatchResult", "BATCH_RULES", "FINDINGS_SCHEMA"]
