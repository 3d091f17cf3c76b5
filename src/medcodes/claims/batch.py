"""Batch mode: check a whole table of claim lines (CSV or Parquet) with vectorised Polars joins.

    >>> from medcodes.claims.batch import check_lines
    >>> findings = check_lines(cb, "claim_lines.parquet")     # a polars.DataFrame, one row per finding

The input is the CSV layout the CSV reader documents (one row per service
line, the claim columns repeated on every line of the claim; list cells
separated by ``;``), as CSV or Parquet (where list columns may also be real
lists). :func:`check_file` streams a file of any size in chunks of whole
claims and writes the findings as it goes (``medcodes check --batch IN --out
OUT``); :func:`check_lines` checks a table in memory.

The rules are the ones the per-claim checker runs, defined once in
:mod:`medcodes.claims.rules`: here each scope's rows (diagnoses, pairs of
diagnoses, procedures, lines, modifiers, pointers, claims) are built as tables
and each rule's condition and texts are evaluated as Polars expressions. What
a code is comes from the per-release columnar facts
(:mod:`medcodes.claims.codefacts`, precompiled at pull time): loaded facts
rows are numbered, found by binary search of packed integer keys in tables
sorted once and read by row gathers (from one chunk: :class:`_Rows`), so no
hash table over the facts is rebuilt per chunk; each distinct diagnosis
string is numbered once (a private categorical mapping) and its key and facts
row are kept by that number for the next chunks. The few distinct diagnosis
keys a release does not list (invalid, deleted, 7th character...) are
classified by the same function the per-claim checker uses, once per key. A
rule whose conditions on a code's facts cannot hold for a code never sees that
code's rows (a bit per rule, computed on the facts table). The NCCI MUE,
add-on code and PTP edits -- rules of a whole claim -- run as
:func:`medcodes.claims.ncci.findings` (the per-claim rule) on the claims
Polars finds may have such a finding. Rules covered: :data:`BATCH_RULES`; per
claim only: code first, use additional code, code also. Claim contents are
never logged.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import polars as pl

from .check import Checker, checker
from .codefacts import DX_SCHEMA, DxCode, DxTables, classify_dx, code_table, hcpcs_table, pcs_table
from .model import SETTINGS, Claim, ClaimFormatError, Finding, Line
from .ncci import findings as ncci_findings
from .ncci import gap_finding, mue_tail, mue_units
from .rules import BATCH_RULES, BY_SCOPE, ICD10_START, NCCI_RULES, SCOPES, Rule

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
def read_lines(path_or_frame: str | os.PathLike[str] | pl.DataFrame, where: str | None = None,
               row0: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The table as (claims, lines): one typed row per claim (its first row) and per service line.

    ``claims``: c (claim ordinal), row, claim_id, claim_type, sex, birth_date, service_date,
    diagnoses and procedures (list[str]). ``lines``: c, row, claim_id, line (0-based within the
    claim), code, modifiers, units, pointers, line_date, charge. Rows with an empty ``line_code``
    are not lines (a claim without lines is one such row). A cell the per-claim reader would
    refuse raises :class:`ClaimFormatError` naming the file, the row and the column.
    """
    if isinstance(path_or_frame, pl.DataFrame):
        df, where = path_or_frame, where or "lines table"
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
    df = df.with_columns((pl.int_range(pl.len(), dtype=pl.Int64) + row0).alias("row"),
                         _text("claim_id").fill_null("").alias("claim_id"))
    # optional text columns with nothing in any cell (often whole columns: line_date, charge, procedures) are
    # read as their empty values, not parsed cell by cell
    texts = [c for c in _BLANKABLE if df.schema[c] == pl.String]
    blank = frozenset(c for c, some in zip(texts, df.select((pl.col(c).str.len_bytes() > 0).any() for c in texts)
                                           .row(0)) if not some) if texts and df.height else frozenset()
    # the lines of a claim are usually together: then the claims are the runs of claim_id, else its first rows
    starts = (pl.col("claim_id") != pl.col("claim_id").shift()).fill_null(True)
    df = df.with_columns(starts.alias("first"))
    together = df.select(pl.col("first").sum() == pl.col("claim_id").n_unique()).item()
    if not together:
        df = df.with_columns(pl.col("claim_id").is_first_distinct().alias("first"))
    raw_claims = (df.select("row", "claim_id", "claim_type", "patient_sex", "patient_birth_date", "service_date",
                            "diagnoses", "procedures", "setting", "provider", "first")
                  .filter("first").drop("first")   # the claim columns of its first row
                  .with_row_index("c").with_columns(pl.col("c").cast(pl.Int64)))
    # claim types and sexes spelled as the checker spells them (the usual case) are taken as they are
    typed, sexed = raw_claims.select(
        *((pl.col(c).is_in(ok).fill_null(False).all() if raw_claims.schema[c] == pl.String else pl.lit(False))
          for c, ok in (("claim_type", ["professional", "institutional"]), ("patient_sex", ["F", "M", "U"])))).row(0)
    claims = raw_claims.select(
        "c", "row", "claim_id",
        (pl.col("claim_type") if typed else
         pl.coalesce(_text("claim_type").replace("", None), pl.lit("professional"))).alias("claim_type"),
        (pl.col("patient_sex") if sexed else
         pl.coalesce(_text("patient_sex").str.to_uppercase().str.slice(0, 1).replace("", None),
                     pl.lit("U"))).alias("sex"),
        _as_date(raw_claims, "patient_birth_date", blank).alias("birth_date"),
        _as_date(raw_claims, "service_date").alias("service_date"),
        _as_list(raw_claims, "diagnoses").alias("diagnoses"),
        _as_list(raw_claims, "procedures", blank=blank).alias("procedures"),
        _raw_date(raw_claims, "patient_birth_date", blank).alias("birth_date_raw"),
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
                          ((pl.col("first").cum_sum() - 1) if together else pl.lit(None)).cast(pl.Int64).alias("c"))
    raw_lines = raw_lines.filter(pl.col("code") != "")
    lines = raw_lines.select(
        "row", "claim_id", "code", "c", "described",
        _as_list(raw_lines, "modifiers", upper=True, blank=blank).alias("modifiers"),
        (pl.lit(1.0) if "units" in blank else
         pl.coalesce(_text("units").replace("", None), pl.lit("1")).cast(pl.Float64, strict=False)).alias("units"),
        _as_list(raw_lines, "diagnosis_pointers", blank=blank).cast(pl.List(pl.Int64), strict=False)
        .alias("pointers"),
        _as_date(raw_lines, "line_date", blank).alias("line_date"),
        (pl.lit(None, pl.Float64) if "charge" in blank else
         _text("charge").replace("", None).cast(pl.Float64, strict=False)).alias("charge"),
        _raw_date(raw_lines, "line_date", blank).alias("line_date_raw"),
        (pl.lit(None, pl.String) if "charge" in blank else _text("charge").replace("", None)).alias("charge_raw"),
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


_BLANKABLE = ("patient_birth_date", "procedures", "modifiers", "units", "diagnosis_pointers", "line_date", "charge")


def _raw_date(df: pl.DataFrame, col: str, blank: frozenset[str] = frozenset()) -> pl.Expr:
    """The cell as given, when it is text (to tell an empty cell from one that is not a date)."""
    if col in blank or df.schema[col] in (pl.Date, pl.Datetime) or isinstance(df.schema[col], pl.Datetime):
        return pl.lit(None, pl.String)
    return _text(col).replace("", None)


def _as_list(df: pl.DataFrame, col: str, upper: bool = False, blank: frozenset[str] = frozenset()) -> pl.Expr:
    """A ``;``-separated text cell (commas and spaces too, as the CSV reader) or a list column, as list[str]
    (``blank``: the text columns without a character in any cell)."""
    if col in blank:
        return pl.lit([], pl.List(pl.String))
    if isinstance(df.schema[col], pl.List):
        item = pl.element().cast(pl.String).str.strip_chars()
        out = pl.col(col).list.eval((item.str.to_uppercase() if upper else item)
                                    ).list.eval(pl.element().filter(pl.element() != ""))
        return out.fill_null(pl.lit([], pl.List(pl.String)))
    text = _text(col).fill_null("")
    text = text.str.to_uppercase() if upper else text
    if df.height and not df.select(pl.col(col).cast(pl.String).str.contains("[, ]").any()
                                   | pl.col(col).is_null().any() | (pl.col(col).cast(pl.String) == "").any()).item():
        # no comma, no space, no empty cell (the usual claim list "A;B"): a split on ";" gives the same lists at
        # half the CPU of the pattern (the empty items of ";;" dropped as the pattern drops them)
        return text.str.split(";").list.filter(pl.element() != "")
    return text.str.extract_all(r"[^;, ]+")


def _as_date(df: pl.DataFrame, col: str, blank: frozenset[str] = frozenset()) -> pl.Expr:
    if col in blank:
        return pl.lit(None, pl.Date)
    dtype = df.schema[col]
    if dtype == pl.Date:
        return pl.col(col)
    if isinstance(dtype, pl.Datetime):
        return pl.col(col).dt.date()
    # no cache of parsed texts: hashing every cell to look it up costs more than parsing it
    return _text(col).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False, cache=False)


def _reject(df: pl.DataFrame, where: str, checks: list[tuple[pl.Expr, str]]) -> None:
    """The first row that the per-claim reader would refuse: one line naming the file, the row and the field."""
    if not df.height or not any(df.select([cond.any() for cond, _m in checks]).row(0)):
        return
    bad = df.select([pl.col("row").filter(cond).first().alias(str(n)) for n, (cond, _m) in enumerate(checks)]).row(0)
    hits = [(row, checks[n][1]) for n, row in enumerate(bad) if row is not None]
    if hits:
        row, msg = min(hits)
        raise ClaimFormatError(f"{where}: row {row + 2}: {msg}")   # +2: the header is row 1


# ====================================================================== the code tables batch mode joins
_SHIFT = 1 << 31    # two ids as one Int64, for fast hashing
# an (owner code, prefix) pair as one Int64: owner fid * 2**40 + prefix as base 36 * 8 + its length (<= 7)
_PACK = 1 << 40
_PACK_OWNERS = 1 << 22
_PRE_SCHEMA = {"pk": pl.Int64, "kind": pl.Int64, "plen": pl.Int64, "nid": pl.Int64}


def _base36(key: pl.Expr) -> pl.Expr:
    """A key of 1-7 letters and digits as a number (null otherwise): prefixes compare as integers."""
    return (pl.when(key.str.len_bytes().is_between(1, 7))
            .then(key.str.to_integer(base=36, strict=False)).otherwise(None).cast(pl.Int64))


_POW2 = pl.Series("pow2", [1 << i for i in range(63)], dtype=pl.Int64)
_POW36 = pl.Series("pow36", [36 ** i for i in range(8)], dtype=pl.Int64)   # a base-36 key drops its last digits


_BLOOM = 61   # bits of an owner's Bloom filter of its prefix references (a prime: keys spread evenly)


def _pre_key(kv: pl.Expr, plen: pl.Expr) -> pl.Expr:
    """A prefix (as base 36, :func:`_base36`) and its length as one number: the low part of a packed key."""
    return kv * 8 + plen


def _two(key: pl.Expr) -> pl.Expr:
    """The first two characters of a key as base 36, into one of 27 bits (null if not base 36)."""
    return key.str.slice(0, 2).str.to_integer(base=36, strict=False).cast(pl.Int64) % 27


def _bit(n: pl.Expr) -> pl.Expr:
    """2 ** n as an Int64 (0 <= n < 63): a gather from a table of powers (13x faster than ``pow``)."""
    return pl.lit(_POW2).gather(n)


def _has_bit(mask: pl.Expr, n: pl.Expr) -> pl.Expr:
    return (mask & _bit(n)) != 0


def _runs(keys: pl.Series) -> pl.DataFrame:
    """The distinct values of the sorted ``keys`` (``key``), where each run starts (``lo``) and ends (``hi``)."""
    return (keys.rename("key").to_frame().with_row_index("i").group_by("key", maintain_order=True)
            .agg(pl.col("i").first().cast(pl.Int64).alias("lo"), (pl.col("i").last() + 1).cast(pl.Int64).alias("hi")))


def _sorted_matches(runs: pl.DataFrame, probe: pl.Series) -> tuple[pl.Series, pl.Series]:
    """For each probe value, the [lo, hi) positions of equal values in the sorted keys whose :func:`_runs` are
    ``runs`` (lo == hi when there is none): one binary search among the distinct keys."""
    keys = runs["key"]
    if not keys.len():
        empty = pl.Series([0] * probe.len(), dtype=pl.Int64)
        return empty, empty
    at = keys.search_sorted(probe, side="left").clip(0, keys.len() - 1)
    hit = keys.gather(at) == probe
    lo = runs["lo"].gather(at)
    return lo, pl.select(pl.when(hit).then(runs["hi"].gather(at)).otherwise(lo)).to_series()


_FID_BITS = 22    # a diagnosis fid (< _PACK_OWNERS) and its code's facts as one Int64: fid + cf * 2**_FID_BITS
_NDX = len(BY_SCOPE["dx"])   # cf: bits 0.._NDX-1 cand, then has_facts, has age ranges, has secondary-only
assert _FID_BITS + _NDX + 3 < 63


def _unpack_fc() -> list[pl.Expr]:
    """``fid``, ``cand``, ``has_facts`` and ``ls`` (1: age ranges, 2: secondary-only statements) of ``fc``."""
    cf = pl.col("fc") // (1 << _FID_BITS)
    return [(pl.col("fc") & ((1 << _FID_BITS) - 1)).alias("fid"), (cf & ((1 << _NDX) - 1)).alias("cand"),
            ((cf & (1 << _NDX)) != 0).alias("has_facts"), ((cf // (1 << (_NDX + 1))) & 3).alias("ls")]


_STRS_SCHEMA = {"raw": pl.String, "key": pl.String, "kid": pl.Int64}


def _dx_texts(strings: pl.Series, keys: pl.DataType) -> pl.DataFrame:
    """Stripped text, normalized key and its number (in the categorical ``keys``) of diagnosis strings."""
    raw = strings.str.strip_chars().rename("raw")
    key = raw.to_frame().select(_norm(pl.col("raw"), stripped=True).alias("key")).to_series()
    return pl.DataFrame([raw, key, key.cast(keys).to_physical().cast(pl.Int64).rename("kid")])


_MUE_SCHEMA = {"eid": pl.Int64, "tset": pl.String, "key": pl.String, "mue_units": pl.Float64,
               "indicator": pl.String, "mid": pl.Int64}
_MISSING = "\x00"   # a release id for "no release of the system installed"


class _Rows:
    """A table whose rows are numbered (``fid``) and read by gathers: the releases' tables as ONE chunk, and the
    few rows appended as codes are met (keys no table lists) as a second small frame of one chunk. A gather
    from a frame of several chunks is 10-20x slower for text columns, and re-chunking the whole table each
    time a row is added costs more than it saves."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.base = frame.rechunk()
        self.more = frame.clear()

    @property
    def height(self) -> int:
        return self.base.height + self.more.height

    @property
    def columns(self) -> list[str]:
        return self.base.columns

    def append(self, frame: pl.DataFrame, big: bool) -> None:
        if big:
            self.base = pl.concat([self.base, self.more, frame], how="vertical_relaxed").rechunk()
            self.more = self.base.clear()
        else:
            self.more = pl.concat([self.more, frame], how="vertical_relaxed").rechunk()

    def gather(self, idx: pl.Series, cols: list[str] | str | None = None) -> pl.DataFrame:
        """Rows ``idx`` (null gives a null row) of the columns ``cols`` (all by default)."""
        base, more = (self.base, self.more) if cols is None else (self.base.select(cols), self.more.select(cols))
        n = self.base.height
        if not more.height or not (idx >= n).any():
            return base.gather(idx)
        late = idx >= n
        at = late.arg_true()    # few: the rest are gathered from the big part, these scattered in
        a = base.gather(pl.select(pl.when(late.not_()).then(idx)).to_series())
        b = more.gather(idx.gather(at) - n)
        return pl.DataFrame([a[c].scatter(at, b[c]) for c in base.columns])

    def col(self, name: str, idx: pl.Series) -> pl.Series:
        return self.gather(idx, [name]).to_series()


class _Tables:
    """Releases by date, the precompiled ICD-10-CM facts and the HCPCS/PCS tables (one per Checker)."""

    def __init__(self, ck: Checker) -> None:
        self.ck = ck
        self.cb = ck.cb
        self._rels: dict[tuple[str, Any], tuple[Any, ...] | None] = {}
        self._rel_frames: dict[tuple[str, str], tuple[pl.Series, pl.DataFrame]] = {}
        self._dx_releases: set[str] = set()
        self._dx: tuple[_Rows, pl.DataFrame, pl.DataFrame] | None = None
        self._pre = pl.DataFrame(schema=_PRE_SCHEMA)      # Excludes prefixes sorted by their packed (owner, prefix)
        self._pre_runs = _runs(self._pre["pk"])
        self._notes = pl.DataFrame(schema={"nid": pl.Int64, "note": pl.String, "cite": pl.String})   # by nid
        self._rid: dict[str, int] = {}   # release -> its number in the packed keys
        self._ix = pl.DataFrame(schema={"ik": pl.Int64, "fid": pl.Int64})   # packed (release, key) -> fid, sorted
        self._ix_more = pl.DataFrame(schema={"release": pl.String, "key": pl.String, "fid": pl.Int64})   # the rest
        # each distinct diagnosis string met (a file's chunks share most of them) is numbered once by a private
        # categorical mapping (``ph``); by that number: its stripped text, key, key number (``kid``) and, per
        # release number, its fid (null: not looked up yet)
        run = uuid.uuid4().hex   # names no other tables' mappings share
        self._dx_cats = pl.Categorical(pl.Categories(f"medcodes-dx-strings-{run}"))
        self._dx_keys = pl.Categorical(pl.Categories(f"medcodes-dx-keys-{run}"))
        self._dx_alive = (pl.Series([], dtype=self._dx_cats), pl.Series([], dtype=self._dx_keys))   # (a mapping
        # no data uses is dropped: these keep the numbers of both for the life of the tables)
        self._dx_strs = pl.DataFrame(schema=_STRS_SCHEMA)
        self._dx_fids: list[pl.Series] = []
        # by fid: the key as a base-36 number (kv), its length (L); for Excludes pairs pmask, pbloom, rlo, rhi, om,
        # me; which age/secondary-only statements it has (ls) -- see _add
        self._kinfo = _Rows(pl.DataFrame())
        self._limits = pl.DataFrame()
        self._secondaries = pl.DataFrame()
        self._hcpcs: dict[str, pl.DataFrame] = {}
        self._pcs: dict[str, pl.DataFrame] = {}
        self._cpt: dict[tuple[str, Any], str | None] = {}
        self._codes: dict[tuple[str, str], pl.DataFrame] = {}
        self._cpt_mod: dict[tuple[str, Any], bool] = {}
        self._ncci: dict[int, tuple[Any, pl.DataFrame, pl.DataFrame]] = {}   # id(NcciEdits) -> its tables
        self.ncci_mue_rows: list[tuple[Any, Any]] = []    # (Mue, NcciEdits) by mid
        self.ncci_mue_texts: dict[tuple[Any, ...], tuple[str, str]] = {}   # (mid, setting) -> MUE tail, source

    # ---------------------------------------------------------------- releases
    def releases(self, dates: pl.Series, system: str, prefix: str = "") -> pl.DataFrame:
        """day -> release, label, covers, probe for ``system``: one row per distinct date of ``dates`` and of
        the dates asked before (a file's chunks share their dates: the table is built again only for new ones)."""
        days = dates.drop_nulls().unique()
        seen = self._rel_frames.get((system, prefix))
        if seen is not None and days.is_in(seen[0].implode()).all():
            return seen[1]
        days = days if seen is None else pl.concat([seen[0], days]).unique()
        frame = self._releases(days, system, prefix)
        self._rel_frames[system, prefix] = (days, frame)
        return frame

    def _releases(self, dates: pl.Series, system: str, prefix: str) -> pl.DataFrame:
        rows = []
        for day in dates.to_list():
            k = (system, day)
            if k not in self._rels:
                r = self.ck.rel(system, day)
                self._rels[k] = None if r is None else (r.release, r.label, r.covers, r.probe)
            got = self._rels[k]
            if got is not None:
                rows.append((day, *got))
        return pl.DataFrame(rows, orient="row", schema={
            "day": pl.Date, f"{prefix}release": pl.String, f"{prefix}label": pl.String,
            f"{prefix}covers": pl.Boolean, f"{prefix}probe": pl.Date})

    # ---------------------------------------------------------------- ICD-10-CM facts
    def dx(self, releases: list[str]) -> tuple[_Rows, pl.DataFrame, pl.DataFrame]:
        """(codes, packed Excludes prefixes, ranges) of every release asked: their precompiled tables (loaded
        once)."""
        for release in releases:
            if release not in self._dx_releases:
                self._dx_releases.add(release)
                self._rid[release] = len(self._rid)
                self._add(self.ck.dx_tables(self.cb.store.find("icd10cm", release)), indexed=True)
        return self._dx_frames()

    def dx_strings(self, diagnoses: pl.Series) -> pl.DataFrame:
        """``raw`` (stripped), ``key`` (normalized), ``kid`` (the key's number) and ``ph`` (the string's number) of
        each diagnosis string: a categorical cast and gathers; the text work is done once per distinct string."""
        ph = diagnoses.cast(self._dx_cats).to_physical().cast(pl.Int64).rename("ph")
        n = self._dx_strs.height
        if ph.len() and (ph.max() or 0) >= n:   # strings not met before (their numbers follow the others)
            new = pl.DataFrame([ph, diagnoses.rename("s")]).filter(pl.col("ph") >= n).unique("ph")
            new = pl.int_range(n, ph.max() + 1, dtype=pl.Int64, eager=True).rename("ph").to_frame().join(
                new, on="ph", how="left", maintain_order="left")
            self._dx_strs = pl.concat([self._dx_strs, _dx_texts(new["s"], self._dx_keys)]).rechunk()
            self._dx_fids = [pl.concat([f, pl.repeat(None, self._dx_strs.height - n, dtype=pl.Int64, eager=True)])
                             for f in self._dx_fids]
        got = self._dx_strs.gather(ph)
        if got["raw"].null_count():   # numbers another thread's cast took before this one met their strings
            at = got["raw"].is_null().arg_true()
            texts = _dx_texts(diagnoses.gather(at), self._dx_keys)
            self._dx_strs = pl.DataFrame([self._dx_strs[c].scatter(ph.gather(at), texts[c]) for c in _STRS_SCHEMA])
            got = self._dx_strs.gather(ph)
        return got.with_columns(ph)

    def release_ids(self, rel: pl.DataFrame) -> pl.DataFrame:
        """:meth:`releases` with each release's number (``rid``; after :meth:`dx` of its releases)."""
        return rel.with_columns(pl.col("release").replace_strict(self._rid, default=None, return_dtype=pl.Int64)
                                .alias("rid"))

    def dx_fids(self, dx: pl.DataFrame) -> pl.Series:
        """The ``fid`` of each row's (release, key) (rows with ``rid``, ``release`` and ``ph``) packed with the code's
        ``cf`` (:func:`_unpack_fc`): those met before from the cache, the others by :meth:`fids`, classifying the
        keys no table lists (:meth:`dx_missing`)."""
        rid = dx["rid"]
        n = self._dx_strs.height
        while len(self._dx_fids) < len(self._rid):
            self._dx_fids.append(pl.repeat(None, n, dtype=pl.Int64, eager=True))
        flat = pl.concat(self._dx_fids, rechunk=True) if self._dx_fids else pl.Series([], dtype=pl.Int64)
        fid = flat.gather(rid * n + dx["ph"]) if n else pl.repeat(None, dx.height, dtype=pl.Int64, eager=True)
        if not fid.null_count():
            return fid.rename("fc")
        at = fid.is_null().arg_true()     # rows met for the first time: found or classified, then remembered
        sub = dx[at]
        got = self.fids(sub)
        if got.null_count():   # keys the releases do not list: classified once each, then found
            self.dx_missing(sub.filter(got.is_null()).select("release", "key").unique())
            late = got.is_null().arg_true()
            got = got.scatter(late, self.fids(sub[late]))
        got = pl.select(pl.lit(got) | (pl.lit(self._kinfo.col("cf", got)) * (1 << _FID_BITS))).to_series()
        fid = fid.scatter(at, got)
        where, ph = rid.gather(at), sub["ph"]
        for r in where.unique().to_list():
            mine = (where == r).arg_true()
            self._dx_fids[r] = self._dx_fids[r].scatter(ph.gather(mine), got.gather(mine))
        return fid.rename("fc")

    def fids(self, dx: pl.DataFrame) -> pl.Series:
        """The ``fid`` of each row's (release, key) (null when no table lists it): a binary search in the
        sorted packed keys of the releases' tables, then a join with the few keys classified later."""
        rid = pl.col("release").replace_strict(self._rid, default=None, return_dtype=pl.Int64)
        ik = dx.select((rid * _PACK + _base36(pl.col("key")) * 8 + pl.col("key").str.len_bytes().cast(pl.Int64))
                       .fill_null(-1)).to_series()
        keys = self._ix["ik"]
        if keys.len():   # the probes in sorted order walk the table in order (a third less CPU than at random)
            order = ik.arg_sort()
            sik = ik.gather(order)
            at = keys.search_sorted(sik).clip(0, keys.len() - 1)
            got = pl.select(pl.when(keys.gather(at) == sik).then(self._ix["fid"].gather(at))).to_series()
            fid = pl.repeat(None, ik.len(), dtype=pl.Int64, eager=True).scatter(order, got)
        else:
            fid = pl.Series("fid", [None] * dx.height, pl.Int64)
        fid = fid.rename("fid")
        if self._ix_more.height and fid.null_count():   # only the rows not found are joined
            at = fid.is_null().arg_true()
            more = dx[at].select("release", "key").join(self._ix_more, on=["release", "key"], how="left",
                                                        maintain_order="left")["fid"]
            fid = fid.scatter(at, more)
        return fid

    def dx_missing(self, missing: pl.DataFrame) -> tuple[_Rows, pl.DataFrame, pl.DataFrame]:
        """Add keys no table lists (invalid, deleted, 7th character...): the same classification, once each."""
        self._add(DxTables.from_codes([self._classify(r, k) for r, k in missing.iter_rows()]))
        return self._dx_frames()

    def _classify(self, release: str, key: str) -> DxCode:
        """:meth:`Checker.dx_code` of a key the release's tables do not hold: ``classify_dx`` itself (the
        per-claim checker's index of the release would be read only to miss; it costs 30-40 MB resident)."""
        info = self.cb.store.find("icd10cm", release)
        return classify_dx(self.cb, info, key, self.ck.is_icd9, self.ck.guidelines(info.effective_from))

    def _dx_frames(self) -> tuple[_Rows, pl.DataFrame, pl.DataFrame]:
        if self._dx is None:
            empty = DxTables.from_codes([])
            self._add(empty)
        assert self._dx is not None
        return self._dx

    def _add(self, t: DxTables, indexed: bool = False) -> None:
        """Number a table's codes (``fid``), mark which rules each may fire (``cand`` bits) and which own
        Excludes references, and append it to what is loaded (shared buffers, no copy of the rest)."""
        offset = self._dx[0].height if self._dx is not None else 0   # the new codes' fids follow the loaded ones
        codes = t.codes.with_row_index("fid", offset=offset).with_columns(pl.col("fid").cast(pl.Int64))
        fid = codes.select("release", pl.col("key").alias("owner"), pl.col("fid").alias("owner_fid"))
        prefixes = t.prefixes.join(fid, on=["release", "owner"]).select(
            pl.col("owner_fid").alias("owner"), "kind", "prefix", "plen", "note", "cite")
        ranges = t.ranges.join(fid, on=["release", "owner"]).select(
            pl.col("owner_fid").alias("owner"), "kind", "ord", "lo", "hi", "nlo", "nhi", "note", "cite").sort(
            "owner", maintain_order=True)   # in owner order: an owner's ranges are one run (rlo, rhi below)
        limits = t.limits.join(fid, on=["release", "owner"]).select(
            pl.col("owner_fid").alias("fid"), "n", "unit", "lo", "hi", "lseverity", "ltext", "lsource")
        secondaries = t.secondaries.join(fid, on=["release", "owner"]).select(
            pl.col("owner_fid").alias("fid"), "n", "why")
        # per owner code, as bits: the first letters (0-9A-Z as 0-35) any of its references can match and
        # the lengths of its prefix references -- most pairs are ruled out by a gather
        span = [(o, chr(ch)) for o, lo, hi in ranges.select("owner", "lo", "hi").iter_rows()
                for ch in range(ord(lo[0]), ord(hi[0]) + 1)]
        letters = pl.concat([prefixes.select("owner", pl.col("prefix").str.slice(0, 1).alias("letter")),
                             pl.DataFrame(span, schema={"owner": pl.Int64, "letter": pl.String}, orient="row")])
        bits = (letters.select("owner", pl.col("letter").str.to_integer(base=36, strict=False).alias("b")).drop_nulls()
                .unique().group_by("owner").agg(_bit(pl.col("b")).sum().alias("lmask")))
        lens = (prefixes.filter(pl.col("plen") <= 60).select("owner", pl.col("plen").alias("b")).unique()
                .group_by("owner").agg(_bit(pl.col("b")).sum().alias("pmask")))
        # and a one-word Bloom filter of its (prefix, length) references: most prefixes of the other code that
        # pass the length mask are not the owner's, and this rules out nine in ten before the binary search
        bloom = (prefixes.select("owner", (_pre_key(_base36(pl.col("prefix")), pl.col("plen")) % _BLOOM).alias("b"))
                 .drop_nulls().unique().group_by("owner").agg(_bit(pl.col("b")).sum().alias("pbloom")))
        # and, for pairing codes, what another code must be like to match one of its references (om): bits 0-35
        # the first letters its range references span, bits 36-62 a Bloom filter of the first two characters
        # of its prefix references; a code's own first letter and first two characters set the same bits (me)
        om = (pl.concat([pl.DataFrame(span, schema={"owner": pl.Int64, "letter": pl.String}, orient="row").select(
                  "owner", pl.col("letter").str.to_integer(base=36, strict=False).cast(pl.Int64).alias("b")),
                         prefixes.filter(pl.col("plen") >= 2).select("owner",
                                                                     (36 + _two(pl.col("prefix"))).alias("b"))])
              .drop_nulls().unique().group_by("owner").agg(_bit(pl.col("b")).sum().alias("om")))
        # and where its range references are in the ranges table (one run: [rlo, rhi), after those loaded)
        run = (ranges.select("owner").with_row_index("i", offset=self._dx[2].height if self._dx is not None else 0)
               .group_by("owner", maintain_order=True)
               .agg(pl.col("i").first().cast(pl.Int64).alias("rlo"),
                    (pl.col("i").last() + 1).cast(pl.Int64).alias("rhi")))
        codes = (codes.with_columns(_cand_bits("dx").alias("cand"))
                 .join(bits, left_on="fid", right_on="owner", how="left", maintain_order="left")
                 .join(lens, left_on="fid", right_on="owner", how="left", maintain_order="left")
                 .join(bloom, left_on="fid", right_on="owner", how="left", maintain_order="left")
                 .join(run, left_on="fid", right_on="owner", how="left", maintain_order="left")
                 .join(om, left_on="fid", right_on="owner", how="left", maintain_order="left")
                 .with_columns(pl.col("lmask", "pmask", "pbloom", "rlo", "rhi", "om").fill_null(0).cast(pl.Int64))
                 .with_columns((pl.col("lmask") != 0).alias("owner")))
        kinfo = codes.select(_base36(pl.col("key")).alias("kv"),
                             pl.col("key").str.len_bytes().cast(pl.Int64).alias("L"),
                             "pmask", "pbloom", "rlo", "rhi", "om",
                             # the rules' cand bits, has_facts and which of age ranges (1) and secondary-only
                             # statements (2) the code has, as one number (cf, see _unpack_fc)
                             (pl.col("cand") | (pl.col("has_facts").fill_null(False).cast(pl.Int64) * (1 << _NDX))
                              | (pl.col("fid").is_in(limits["fid"].implode()).cast(pl.Int64) * (1 << (_NDX + 1)))
                              | (pl.col("fid").is_in(secondaries["fid"].implode()).cast(pl.Int64) * (1 << (_NDX + 2)))
                              ).alias("cf"),
                             (_bit(pl.col("key").str.slice(0, 1).str.to_integer(base=36, strict=False)).fill_null(0)
                              | _bit(36 + _two(pl.col("key"))).fill_null(0)).alias("me"))
        codes = codes.drop("pbloom", "rlo", "rhi", "om")
        # each note's text once (a note has several references): the prefixes table holds its number
        pre = pl.DataFrame(schema=_PRE_SCHEMA)
        if prefixes.height:     # (codes met later seldom have references: no join with every note loaded)
            notes = prefixes.select("note", "cite").unique()
            if self._notes.height:
                notes = notes.join(self._notes, on=["note", "cite"], how="anti", nulls_equal=True)
            notes = notes.with_row_index("nid", offset=self._notes.height).with_columns(pl.col("nid").cast(pl.Int64))
            self._notes = pl.concat([self._notes, notes])
            pre = prefixes.join(self._notes, on=["note", "cite"], nulls_equal=True).select(
                (pl.col("owner") * _PACK + _pre_key(_base36(pl.col("prefix")), pl.col("plen"))).alias("pk"),
                "kind", "plen", "nid").drop_nulls("pk")
        # (release, key) packed, for the binary search of :meth:`fids`; keys of odd shape and those classified
        # later go to a small table joined the ordinary way
        rid = pl.col("release").replace_strict(self._rid, default=None, return_dtype=pl.Int64)
        ik = codes.select("release", "key", "fid", (rid * _PACK + _base36(pl.col("key")) * 8
                                                     + pl.col("key").str.len_bytes().cast(pl.Int64)).alias("ik"))
        if not indexed:
            ik = ik.with_columns(pl.lit(None, pl.Int64).alias("ik"))
        if ik["ik"].null_count() < ik.height:
            self._ix = pl.concat([self._ix, ik.select("ik", "fid").drop_nulls("ik")]).sort("ik")
        self._ix_more = pl.concat([self._ix_more, ik.filter(pl.col("ik").is_null()).select("release", "key", "fid")])
        if self._dx is not None:
            old_codes, _old_pre, old_ranges = self._dx
            old_codes.append(codes, big=indexed)
            self._kinfo.append(kinfo, big=indexed)
            rows, kinfo = old_codes, self._kinfo
            ranges = pl.concat([old_ranges, ranges], rechunk=ranges.height > 0)   # one chunk: gathered per pair
            limits = pl.concat([self._limits, limits], rechunk=False)
            secondaries = pl.concat([self._secondaries, secondaries], rechunk=False)
        else:
            rows, kinfo = _Rows(codes), _Rows(kinfo)
        if pre.height or not self._pre.height:
            self._pre = pl.concat([self._pre, pre]).sort("pk")
            self._pre_runs = _runs(self._pre["pk"])
        if rows.height > min(_PACK_OWNERS, 1 << _FID_BITS):
            raise RuntimeError("too many diagnosis codes loaded for the packed Excludes keys")
        self._dx = (rows, self._pre, ranges)
        self._kinfo, self._limits, self._secondaries = kinfo, limits, secondaries

    # ---------------------------------------------------------------- NCCI
    def ncci_tables(self, sets: dict[int, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """For the NCCI edits ``sets`` (id -> NcciEdits): their MUE rows (eid, tset, key, mue_units, indicator,
        mid: the row of :attr:`ncci_mue_rows` holding the Mue and its edits) and the (eid, key) of codes with
        add-on code or PTP edits. Built once per set of edits."""
        mues, hards = [], []
        for eid, e in sets.items():
            got = self._ncci.get(eid)
            if got is None or got[0] is not e:   # ids of live objects: same edits
                mid0 = len(self.ncci_mue_rows)
                rows = [(s, k, m) for s, table in e.mue.items() for k, m in table.items()]
                self.ncci_mue_rows.extend((m, e) for _s, _k, m in rows)
                mue = pl.DataFrame({"eid": pl.Series([eid] * len(rows), dtype=pl.Int64),
                                    "tset": [s for s, _k, _m in rows], "key": [k for _s, k, _m in rows],
                                    "mue_units": pl.Series([m.units for _s, _k, m in rows], dtype=pl.Float64),
                                    "indicator": [m.indicator for _s, _k, m in rows],
                                    "mid": pl.int_range(mid0, mid0 + len(rows), dtype=pl.Int64, eager=True)},
                                   schema=_MUE_SCHEMA)
                ptp = e.ptp_codes() if e.ptp_codes is not None else e.ptp.keys()
                keys = sorted(set(e.aoc.keys()) | set(ptp))
                hard = pl.DataFrame({"eid": pl.Series([eid] * len(keys), dtype=pl.Int64), "key": keys},
                                    schema={"eid": pl.Int64, "key": pl.String})
                got = self._ncci[eid] = (e, mue, hard)
            mues.append(got[1])
            hards.append(got[2])
        return pl.concat(mues), pl.concat(hards)

    # ---------------------------------------------------------------- HCPCS / PCS / CPT
    def hcpcs(self, releases: list[str]) -> pl.DataFrame:
        for r in releases:
            if r not in self._hcpcs:
                self._hcpcs[r] = hcpcs_table(self.cb, r)
        frames = [self._hcpcs[r] for r in releases]
        return pl.concat(frames) if frames else hcpcs_table_schema()

    def pcs(self, releases: list[str]) -> pl.DataFrame:
        for r in releases:
            if r not in self._pcs:
                self._pcs[r] = pcs_table(self.cb, r)
        frames = [self._pcs[r] for r in releases]
        return pl.concat(frames) if frames else pl.DataFrame(schema={"key": pl.String, "billable": pl.Int64,
                                                                    "title": pl.String, "release": pl.String})

    def code_table(self, system: str, release: str) -> pl.DataFrame:
        k = (system, release)
        if k not in self._codes:
            self._codes[k] = code_table(self.cb, system, release)
        return self._codes[k]

    def cpt_reason(self, key: str, day: Any) -> str | None:
        k = (key, day)
        if k not in self._cpt:
            v = self.cb.validate(key, system="cpt", date=day)
            self._cpt[k] = v.reason if v.status == "invalid" else None   # "unknown" is not an error
        return self._cpt[k]

    def cpt_modifier(self, mod: str, day: Any) -> bool:
        k = (mod, day)
        if k not in self._cpt_mod:
            self._cpt_mod[k] = self.cb.validate(mod, system="cpt", date=day).exists
        return self._cpt_mod[k]


def hcpcs_table_schema() -> pl.DataFrame:
    return pl.DataFrame(schema={"key": pl.String, "code": pl.String, "kind": pl.String, "billable": pl.Int64,
                                "title": pl.String, "added": pl.Date, "ended": pl.Date, "noc_source": pl.String,
                                "drug": pl.Boolean, "release": pl.String})


_CAND: dict[str, pl.Expr] = {}


def _cand_bits(scope: str) -> pl.Expr:
    """Bit n set when the n-th rule of ``scope`` may fire on the code's facts (:func:`all_parts`), built once."""
    got = _CAND.get(scope)
    if got is None:
        got = _CAND[scope] = pl.sum_horizontal(
            [pl.when(all_parts(r)).then(pl.lit(1 << n, pl.Int64)).otherwise(pl.lit(0, pl.Int64))
             for n, r in enumerate(BY_SCOPE[scope])])
    return got


def all_parts(rule: Rule) -> pl.Expr:
    """The rule's conditions on the code's facts alone, as one Polars expression."""
    expr = pl.lit(True)
    for p in rule.fact_parts:
        expr = expr & p.pl()
    return expr.fill_null(False)


def _norm(expr: pl.Expr, stripped: bool = False) -> pl.Expr:
    """:func:`medcodes.model.normalize_key` as an expression (``stripped``: of text already stripped)."""
    return (expr if stripped else expr.str.strip_chars()).str.to_uppercase().str.replace_all(
        ".", "", literal=True).str.replace_all(" ", "", literal=True)


def _key(frame: pl.DataFrame, col: str, stripped: bool = False) -> pl.Expr:
    """:func:`_norm` of the text column ``col`` of ``frame``: the column itself when every cell is already a key
    (capital letters and digits only: the usual case, one scan instead of three rewrites)."""
    if not frame.select(pl.col(col).str.contains("[^0-9A-Z]").any()).item():
        return pl.col(col)
    return _norm(pl.col(col), stripped)


# ====================================================================== running the rules
_OUT = {"c": pl.Int64, "order": pl.Int64, "at": pl.Int64, "claim_id": pl.String, "line": pl.Int64,
        "rule": pl.String, "severity": pl.String, "location": pl.String, "codes": pl.String, "message": pl.String,
        "source": pl.String}
_LINE_SCOPES = ("line", "modifier", "pointer")


def _codes_expr(rule: Rule) -> pl.Expr:
    if not rule.codes:
        return pl.lit("", pl.String)
    return pl.concat_str([c.pl().cast(pl.String) for c in rule.codes], separator=";")


_EXPRS: dict[int, tuple[pl.Expr, list[pl.Expr], list[pl.Expr]]] = {}


def _rule_exprs(rule: Rule) -> tuple[pl.Expr, list[pl.Expr], list[pl.Expr]]:
    """The rule's condition and the finding's columns (before and after ``at``) as Polars expressions, built
    once per rule (building them is Python work that was a fixed cost of every chunk)."""
    got = _EXPRS.get(id(rule))
    if got is None:
        got = _EXPRS[id(rule)] = (
            rule.when.pl(), [pl.col("c").cast(pl.Int64), pl.lit(rule.order, pl.Int64).alias("order")],
            [pl.col("claim_id"),
             (pl.col("line") if rule.scope in _LINE_SCOPES else pl.lit(None)).cast(pl.Int64).alias("line"),
             pl.lit(rule.id, pl.String).alias("rule"), rule.severity.pl().cast(pl.String).alias("severity"),
             rule.location.pl().alias("location"), _codes_expr(rule).alias("codes"),
             rule.message.pl().alias("message"), rule.source.pl().cast(pl.String).alias("source")])
    return got


def _apply(rule: Rule, frame: pl.DataFrame, at: pl.Expr) -> pl.DataFrame | None:
    """The findings of one rule over a frame of its scope's rows (which carry ``c`` and ``claim_id``)."""
    if not frame.height:
        return None
    when, head, tail = _rule_exprs(rule)
    hits = frame.filter(when)
    if not hits.height:
        return None
    return hits.select(*head, at.cast(pl.Int64).alias("at"), *tail)


def _run(scope: str, frame: pl.DataFrame, at: pl.Expr, facts: pl.DataFrame | _Rows | None = None,
         on: str = "fid", skip: tuple[str, ...] = ()) -> list[pl.DataFrame]:
    """Every rule of ``scope``. With ``facts``: a rule with conditions on the code's facts only sees the rows
    whose ``cand`` bit says they may hold, and gets the fact columns it reads from the row ``on`` of ``facts``
    (``facts[on]`` is the row number)."""
    out = []
    if not frame.height:
        return out
    # each rule filters only the columns it reads (a filter copies every column it keeps)
    keep = {"c", "claim_id", *at.meta.root_names(), *(("line",) if scope in _LINE_SCOPES else ()),
            *(("cand", on) if facts is not None else ())}
    present = int(frame.select(pl.col("cand").bitwise_or()).item() or 0) if facts is not None else -1
    for n, rule in enumerate(BY_SCOPE[scope]):
        if rule.fact_parts and facts is not None and not present & (1 << n):
            continue    # no row's code allows it
        sub = frame.select([c for c in frame.columns if c in keep or c in rule.cols])
        if facts is not None:
            if rule.fact_parts:
                sub = sub.filter((pl.col("cand") & (1 << n)) != 0)
            need = [c for c in rule.cols if c in facts.columns and c not in sub.columns and c not in skip]
            if need and sub.height:   # facts[on] is the row number: a gather, not a join
                got = facts.gather(sub[on], need) if isinstance(facts, _Rows) else facts.select(need).gather(sub[on])
                sub = sub.with_columns(*got.get_columns())
        got = _apply(rule, sub, at)
        if got is not None:
            out.append(got)
    return out


# ====================================================================== entry points
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


def tables(ck: Checker) -> _Tables:
    tabs = ck._batch_tables
    if tabs is None:
        tabs = ck._batch_tables = _Tables(ck)
    return tabs


def check_table(cb: Any, path_or_frame: str | os.PathLike[str] | pl.DataFrame,
                ck: Checker | None = None) -> BatchResult:
    """:func:`check_lines`, also saying how many claims and lines were read."""
    ck = ck or checker(cb)
    claims, lines = read_lines(path_or_frame)
    return BatchResult(claims.height, lines.height, check_frames(tables(ck), claims, lines))


# ====================================================================== streaming
# rows per chunk: the fixed cost of a chunk (~400 small Polars queries, ~25 ms) over twice as many rows as 65,536
# (about a tenth less CPU per line); 262,144 and up cost more per line again (larger sorts and joins). Peak RSS at
# 10M lines (measured under load): 784 MB (196,608: 772 MB; 262,144: 776 MB), about that of loading the facts tables
CHUNK_ROWS = 131_072


def _frames(path: Path, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """The file as frames of about ``chunk_rows`` rows.

    Parquet: whole row groups at a time, decoded by Polars' own reader straight into its string views
    (a slice on row-group boundaries reads just those groups; half the CPU of decoding with Arrow and
    converting), then cut to ``chunk_rows``. A file whose row groups are much larger than a chunk is read
    with Arrow's reader, a batch at a time (``iter_batches``), as a slice inside a row group would decode
    it from its start. Not Polars' streaming engine (``collect_batches``): it decodes row groups ahead of a
    slow consumer -- 300 MB resident for a 2M-line file before the first chunk is checked. CSV: Polars'
    streaming reader."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as f:
            sizes = [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)]
            if sizes and max(sizes) > 4 * chunk_rows:
                for batch in f.iter_batches(batch_size=chunk_rows, use_threads=False):
                    frame = pl.from_arrow(batch)
                    assert isinstance(frame, pl.DataFrame)
                    yield frame
                return
        lf = pl.scan_parquet(path)
        start = 0
        while sizes:
            n = 0      # whole row groups, about one chunk
            while sizes and (n == 0 or n + sizes[0] <= chunk_rows):
                n += sizes.pop(0)
            frame = lf.slice(start, n).collect()
            start += n
            for at in range(0, frame.height, chunk_rows):
                yield frame.slice(at, chunk_rows)
        return
    lf = pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy")
    yield from lf.collect_batches(chunk_size=chunk_rows)


def total_rows(path: str | os.PathLike[str]) -> int | None:
    """Rows of a Parquet file (from its footer); None for CSV (the progress bar then counts bytes)."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            return int(pl.scan_parquet(p).select(pl.len()).collect().item())
        except (OSError, pl.exceptions.PolarsError):
            return None     # reading it will say what is wrong
    return None


def scattered_claims(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(rows of the file, how many claims have their lines in more than one run of rows -- 0: every claim's
    lines are together). A streaming pass over the claim_id column; when the ids are not in ascending order,
    a second one counting distinct ids (memory: a 64-bit hash per claim)."""
    rows, scattered, _days = _scan(path)
    return rows, scattered


def _scan(path: str | os.PathLike[str]) -> tuple[int, int, pl.Series]:
    """:func:`scattered_claims`, and the distinct claim dates of service (those that parse as dates) from
    the same pass."""
    p = Path(path)
    lf = pl.scan_parquet(p) if p.suffix.lower() in (".parquet", ".pq") else pl.scan_csv(
        p, infer_schema=False, encoding="utf8-lossy")
    ids = _text("claim_id").fill_null("")
    try:
        # the dates as given (few distinct values), parsed below; a file without them fails in read_lines
        has_days = "service_date" in lf.collect_schema().names()
        days_expr = pl.col("service_date") if has_days else pl.lit(None)
        # claim ids in ascending order (as most exports write them) are together: no set of ids is needed
        rows, runs, descents, days = lf.select(
            pl.len().alias("rows"), (ids != ids.shift()).fill_null(True).sum().alias("runs"),
            (ids < ids.shift()).fill_null(False).sum().alias("descents"),
            days_expr.unique().implode().alias("days")).collect(engine="streaming").row(0)
        distinct = runs if not descents else lf.select(ids.hash().n_unique()).collect(engine="streaming").item()
    except pl.exceptions.ColumnNotFoundError as exc:
        raise ClaimFormatError(f"{p.name}: missing column(s) claim_id") from exc
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ClaimFormatError(f"{p.name}: not a readable claim-lines table ({str(exc).splitlines()[0]})") from exc
    scattered = max(0, int(runs or 0) - int(distinct or 0)) if rows else 0
    days = pl.DataFrame({"d": days or []}).select(_as_date(pl.DataFrame({"d": days or []}), "d").drop_nulls())
    return int(rows), scattered, days.to_series().rename("day")


def whole_claims(frames: Iterable[pl.DataFrame], chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[pl.DataFrame, int]]:
    """Regroup frames of rows into (frame of whole claims of about ``chunk_rows`` rows, index of its first row).

    The rows of the last claim of a frame are held back and put before the next one, so the lines
    of one claim must be adjacent (as writers of claim lines produce them; :func:`check_file` refuses a
    file of several chunks where they are not, :func:`scattered_claims`).
    """
    carry: list[pl.DataFrame] = []
    held = 0
    row0 = 0
    for df in frames:
        if not df.height:
            continue
        if "claim_id" not in df.columns:
            raise ClaimFormatError("missing column(s) claim_id")
        carry.append(df)
        held += df.height
        while held >= chunk_rows:
            df = pl.concat(carry, how="diagonal_relaxed") if len(carry) > 1 else carry[0]
            # the claim of row chunk_rows may go on: the chunk ends where it starts (a claim longer than a
            # chunk: where it ends, when the frame holds its end)
            ids = df["claim_id"]
            q = min(chunk_rows, df.height - 1)
            cut = _claim_start(ids, q)
            if cut == 0 and q < df.height - 1:
                after = (ids.slice(q) != ids[q]).fill_null(True).arg_true()
                cut = q + int(after[0]) if after.len() else 0
            if cut == 0:      # one claim fills the frame: keep reading
                carry, held = [df], df.height
                break
            yield df.slice(0, cut), row0
            row0 += cut
            carry = [df.slice(cut)]
            held = carry[0].height
    if held:
        yield (pl.concat(carry, how="diagonal_relaxed") if len(carry) > 1 else carry[0]), row0


def _claim_start(ids: pl.Series, q: int) -> int:
    """The first row of the claim of row ``q`` (its lines are adjacent)."""
    other = (ids.slice(0, q) != ids[q]).fill_null(True).arg_true()
    return int(other[-1]) + 1 if other.len() else 0


def chunks(path: str | os.PathLike[str], chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[pl.DataFrame, int]]:
    """The file as (frame of whole claims, index of its first row), about ``chunk_rows`` rows each."""
    import pyarrow as pa   # the Parquet reader's errors (imported when a file is read, not with the module)

    p = Path(path)
    try:
        yield from whole_claims(_frames(p, chunk_rows), chunk_rows)
    except ClaimFormatError as exc:
        raise ClaimFormatError(f"{p.name}: {exc}") from exc
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as exc:
        raise ClaimFormatError(f"{p.name}: not a readable claim-lines table ({str(exc).splitlines()[0]})") from exc


class _Writer:
    """Findings written as they come: Parquet (one row group per chunk) or CSV."""

    def __init__(self, out: Path) -> None:
        self.out, self.kind = out, out.suffix.lower()
        if self.kind not in (".parquet", ".pq", ".csv"):
            raise ClaimFormatError(f"{out}: the findings file must end in .parquet or .csv")
        self._pq: Any = None
        self._fh: Any = None
        self._tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")

    def write(self, findings: pl.DataFrame) -> None:
        if self.kind == ".csv":
            if self._fh is None:
                self._fh = open(self._tmp, "wb")
                findings.write_csv(self._fh)
            else:
                findings.write_csv(self._fh, include_header=False)
            return
        import pyarrow.parquet as pq

        table = findings.to_arrow()
        if self._pq is None:   # zstd level 1: as fast as snappy, half the size; dictionaries where values repeat;
            # min/max statistics for the columns one filters on (the long texts' cost a sixth of the writing)
            self._pq = pq.ParquetWriter(str(self._tmp), table.schema, compression="zstd", compression_level=1,
                                        use_dictionary=["rule", "severity", "location", "source"],
                                        write_statistics=["claim_id", "line", "rule", "severity"])
        self._pq.write_table(table)

    def close(self, ok: bool) -> None:
        if self._pq is not None:
            self._pq.close()
        if self._fh is not None:
            self._fh.close()
        if ok:
            if not self._tmp.exists():   # no chunk at all: an empty table with the columns
                self.write(pl.DataFrame(schema=FINDINGS_SCHEMA))
                self.close(False)
            os.replace(self._tmp, self.out)
        else:
            self._tmp.unlink(missing_ok=True)


class Totals:
    """Counts over a stream of chunks: claims, lines, claims with errors, findings by severity and rule."""

    def __init__(self) -> None:
        self.claims = self.lines = self.claims_with_errors = 0
        self.by_rule: dict[tuple[str, str], int] = {}

    def add(self, claims: int, lines: int, findings: pl.DataFrame) -> None:
        self.claims += claims
        self.lines += lines
        self.claims_with_errors += findings.filter(pl.col("severity") == "error")["claim_id"].n_unique()
        for r, sev, n in findings.group_by("rule", "severity").len().iter_rows():
            self.by_rule[r, sev] = self.by_rule.get((r, sev), 0) + n

    def summary(self) -> dict[str, Any]:
        by_sev: dict[str, int] = {}
        for (_r, sev), n in self.by_rule.items():
            by_sev[sev] = by_sev.get(sev, 0) + n
        return {"claims": self.claims, "lines": self.lines, "claims_with_errors": self.claims_with_errors,
                "findings": dict(sorted(by_sev.items())),
                "rules": {f"{r} ({s})": n for (r, s), n in sorted(self.by_rule.items())}}


def check_file(cb: Any, path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
               chunk_rows: int = CHUNK_ROWS, progress: Callable[[int], None] | None = None,
               ck: Checker | None = None) -> Totals:
    """Check a claim-lines file of any size in chunks of whole claims; write the findings to ``out``.

    Memory is bounded by the chunk size (plus the code tables), not by the file: each chunk is
    read, checked and written before the next is read. ``progress(rows)`` is called after each
    chunk. Returns the :class:`Totals` (a failed run leaves no partial ``out`` file).
    """
    ck = ck or checker(cb)
    tabs = tables(ck)
    totals = Totals()
    name = Path(path).name
    rows = total_rows(path)
    if rows is None or rows >= chunk_rows:   # more than one chunk: a claim's lines must not be spread out
        rows, scattered, days = _scan(path)
        if scattered and rows >= chunk_rows:
            raise ClaimFormatError(
                f"{name}: the lines of {scattered:,} claim(s) are not next to each other; checking a file in "
                "chunks needs each claim's lines together (sort the file by claim_id)")
        _preload(tabs, days)
    writer = _Writer(Path(out)) if out is not None else None
    ok = False
    try:
        for frame, row0 in chunks(path, chunk_rows):
            height = frame.height
            claims, lines = read_lines(frame, where=name, row0=row0)
            del frame
            found = check_frames(tabs, claims, lines)
            totals.add(claims.height, lines.height, found)
            if writer is not None and found.height:
                writer.write(found)
            # this chunk's tables go now: else they live on while the next chunk is read and checked
            del claims, lines, found
            if progress is not None:
                progress(height)
        ok = True
    finally:
        if writer is not None:
            writer.close(ok)
    return totals


def _preload(tabs: _Tables, days: pl.Series) -> None:
    """Load the ICD-10-CM facts of the releases the file's dates of service need before its first chunk is
    read: loading them takes a few hundred megabytes for a moment, which would otherwise add to the first
    chunk's own (the peak memory of a run; the tables loaded and their order are the same)."""
    rel = tabs.releases(days, "icd10cm")
    if rel.height:
        tabs.dx(rel["release"].unique().to_list())


def check_frames(tabs: _Tables, claims: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """The findings of claims and lines as :func:`read_lines` returns them."""
    lines = (lines.with_columns(*claims.select("claim_type", pl.col("service_date").alias("claim_date"),
                                               pl.col("diagnoses").list.len().alias("ndx"))
                                .select(pl.all().gather(lines["c"])).get_columns())   # claims[c] is the claim's row
             .with_columns(pl.coalesce("line_date", "claim_date").alias("day")))
    parts = _diagnosis_findings(tabs, claims) + _procedure_findings(tabs, claims)
    line_parts, has_cpt = _line_findings(tabs, lines)
    parts += line_parts + _claim_findings(tabs, claims, has_cpt)
    ncci = _ncci_findings(tabs, claims, lines)
    if ncci.height:
        parts.append(ncci)
    if not parts:
        return pl.DataFrame(schema=FINDINGS_SCHEMA)
    return _in_order(parts)


def _in_order(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The findings of all rules in the per-claim checker's order: by claim, rule order, place. The order
    comes from the two key columns (claim and rule order packed in one), then only the output columns are
    gathered (sorting the whole rows gathers the keys too: twice the time)."""
    found = pl.concat(parts)
    order = found.select(pl.arg_sort_by(pl.col("c") * 16384 + pl.col("order"), "at", maintain_order=True)
                         ).to_series()
    return found.select(list(FINDINGS_SCHEMA)).select(pl.all().gather(order))


# ====================================================================== diagnoses
def _diagnosis_findings(tabs: _Tables, claims: pl.DataFrame) -> list[pl.DataFrame]:
    dx = (claims.select("c", "claim_id", "service_date", "diagnoses")
          .with_columns(pl.int_ranges(pl.col("diagnoses").list.len(), dtype=pl.Int64).alias("pos"))
          .explode("diagnoses", "pos").drop_nulls("diagnoses"))
    if not dx.height:
        return []
    dx = dx.select("c", "claim_id", "service_date", "pos", *tabs.dx_strings(dx["diagnoses"]).get_columns())
    out: list[pl.DataFrame] = []
    # the same key earlier on the claim: a duplicate (rows are in claim and position order); only claims
    # whose list has fewer distinct keys than entries can have one
    dup = _repeated(dx)
    if dup is not None:
        out += _run("dx-repeat", dx.filter(dup), pl.col("pos"))
        dx = dx.filter(~dup)
    rel = tabs.releases(dx["service_date"], "icd10cm")
    tabs.dx(rel["release"].unique().to_list())
    rel = tabs.release_ids(rel)
    dx = dx.with_columns(*rel.drop("day").gather(_day_rows(rel["day"], dx["service_date"])).get_columns())
    none = dx.filter(pl.col("release").is_null())
    if none.height:   # no ICD-10-CM release installed: each diagnosis is said to be unchecked
        out += _run("dx", none.join(claims.select("c", "claim_type", "sex"), on="c").with_columns(
            pl.lit(None, pl.Int64).alias("age"), pl.lit(None, pl.Int64).alias("days"),
            *(pl.lit(None, dtype).alias(name) for name, dtype in DX_SCHEMA.items() if name not in ("release", "key", "status", "shape10")),
            pl.lit("unchecked").alias("status"), pl.col("service_date").alias("day"),
            pl.col("key").str.contains(r"^[A-Z]\d[0-9A-Z]{1,5}$").alias("shape10")), pl.col("pos"))
        dx = dx.filter(pl.col("release").is_not_null())
    dx = dx.with_columns(tabs.dx_fids(dx)).drop("ph", "kid", "rid").with_columns(*_unpack_fc()).drop("fc")
    codes, prefixes, ranges = tabs._dx_frames()
    # a rule's conditions on the date's release alone (e.g. "no release covers the date") clear its bit too
    dx = dx.with_columns(pl.col("service_date").alias("day"))
    masks = _early_masks()
    if masks is not None:
        dx = dx.with_columns((pl.col("cand") - (pl.col("cand") & masks)).alias("cand"))
    # the one-diagnosis rules: only rows whose code's facts allow some rule get the claim's columns
    cand = dx.filter(pl.col("cand") != 0)
    cand = cand.with_columns(*claims.select("claim_type", "sex", "birth_date").select(pl.all().gather(cand["c"]))
                             .get_columns())
    cand = cand.with_columns(
        (pl.col("service_date").dt.year() - pl.col("birth_date").dt.year()
         - (_month_day("service_date") < _month_day("birth_date")).cast(pl.Int32)).cast(pl.Int64).alias("age"),
        (pl.col("service_date") - pl.col("birth_date")).dt.total_days().alias("days"))
    out += _run("dx", cand, pl.col("pos"), codes, skip=("release", "key", "cand", "has_facts", "ls"))
    facts_dx = dx.filter(pl.col("has_facts") & (pl.col("service_date") >= ICD10_START))
    out += _limit_findings(tabs, facts_dx, claims, codes)
    out += _excludes_findings(facts_dx.select("c", "pos", "fid"), tabs, claims["claim_id"])
    return out


def _limit_findings(tabs: _Tables, dx: pl.DataFrame, claims: pl.DataFrame, codes: pl.DataFrame) -> list[pl.DataFrame]:
    """A code's stated age ranges against the patient's age, and (first-listed) its secondary-only guideline
    statements: one row per range / statement, joined from the release's tables."""
    out: list[pl.DataFrame] = []
    if tabs._limits.height:   # (ls: which of the two the row's code has: most have neither)
        a = dx.filter((pl.col("ls") & 1) != 0).join(tabs._limits, on="fid")
        if a.height:   # claims[c] and codes[fid] are their rows
            a = a.with_columns(claims["birth_date"].gather(a["c"]), codes.col("code", a["fid"])).with_columns(
                pl.col("service_date").alias("day"),
                (pl.col("service_date").dt.year() - pl.col("birth_date").dt.year()
                 - (_month_day("service_date") < _month_day("birth_date")).cast(pl.Int32)).cast(pl.Int64).alias("age"),
                (pl.col("service_date") - pl.col("birth_date")).dt.total_days().alias("days"))
            out += _run("dx-age", a, pl.col("pos") * 100 + pl.col("n"))
    if tabs._secondaries.height:
        f = dx.filter((pl.col("pos") == 0) & ((pl.col("ls") & 2) != 0)).join(tabs._secondaries, on="fid")
        if f.height:
            out += _run("dx-secondary", f.with_columns(codes.col("code", f["fid"])), pl.col("n"))
    return out


_EARLY: list[pl.Expr | None] = []


def _early_masks() -> pl.Expr | None:
    """Bit n set when a condition of the n-th diagnosis rule on the date's release alone fails (built once)."""
    if not _EARLY:
        early = set(SCOPES["dx"][1]) - {"claim_type", "sex", "age", "days"}
        facts_cols = set(SCOPES["dx"][0])
        masks = []
        for n, rule in enumerate(BY_SCOPE["dx"]):
            parts = [p for p in (rule.when.parts or [rule.when])
                     if p.cols and p.cols <= early and not p.cols <= facts_cols]
            if parts:
                ok = pl.lit(True)
                for p in parts:
                    ok = ok & p.pl()
                masks.append(pl.when(ok.fill_null(False)).then(pl.lit(0, pl.Int64)).otherwise(pl.lit(1 << n, pl.Int64)))
        _EARLY.append(pl.sum_horizontal(masks) if masks else None)
    return _EARLY[0]


def _day_rows(days: pl.Series, dates: pl.Series) -> pl.Series:
    """For each of ``dates``, the row of the distinct ``days`` that holds it (null if none): a gather from a dense
    table of the days' span (a left join by date, without hashing, in the dates' order)."""
    if not days.len():
        return pl.repeat(None, dates.len(), dtype=pl.Int64, eager=True)
    d = days.cast(pl.Int32).cast(pl.Int64)
    lo, hi = d.min(), d.max()
    dense = pl.repeat(None, hi - lo + 1, dtype=pl.Int64, eager=True).scatter(
        d - lo, pl.int_range(0, days.len(), dtype=pl.Int64, eager=True))
    at = dates.cast(pl.Int32).cast(pl.Int64) - lo
    return pl.select(pl.when((at >= 0) & (at <= hi - lo)).then(pl.lit(dense).gather(at.clip(0, hi - lo)))).to_series()


def _repeated(dx: pl.DataFrame) -> pl.Series | None:
    """Rows whose key is listed earlier on the same claim, or None when no claim lists a key twice (rows are in
    claim and position order: each row against the rows 1, 2, ... places up, as far as the longest list)."""
    dup = dx.select(pl.any_horizontal(
        [(pl.col("c") == pl.col("c").shift(d)) & (pl.col("kid") == pl.col("kid").shift(d))
         for d in range(1, int(dx["pos"].max() or 0) + 1)] or [pl.lit(False)]).fill_null(False)).to_series()
    return dup if dup.any() else None


def _month_day(col: str) -> pl.Expr:
    return pl.col(col).dt.month().cast(pl.Int32) * 100 + pl.col(col).dt.day().cast(pl.Int32)


# the second code of a pair may match a reference of the first (_AB), the first one of the second (_BA)
_PLENS = pl.DataFrame({"plen": [3, 4, 5, 6, 7]}, schema={"plen": pl.Int64})   # the prefix lengths looked up
_RANGE_BITS = (1 << 36) - 1   # om/me bits 0-35: first letters; 36-62: first two characters
_AB = (pl.col("om") & pl.col("me_b")) != 0
_BA = (pl.col("om_b") & pl.col("me")) != 0


def _excludes_findings(dx: pl.DataFrame, tabs: _Tables, claim_ids: pl.Series) -> list[pl.DataFrame]:
    """Excludes1 / Excludes2 between two diagnoses of a claim, by matching their notes' references.

    Pairs are matched once per distinct (code, code): the other code's prefixes are looked up among the
    owner's Excludes prefixes (shortest first), then its ranges, in the order
    :func:`medcodes.claims.check.excludes_between` tries them. Codes are numbered (``fid``, their row in
    the facts table) and (owner, prefix) pairs packed into integers, so the lookups are gathers and binary
    searches in tables sorted once, not hash joins rebuilt per chunk.
    """
    codes, _prefixes, ranges = tabs._dx_frames()
    kinfo = tabs._kinfo
    # pairs of diagnoses of a claim (in list order): rows sorted by claim and position against the rows d
    # places down, for d = 1, 2, ... up to the longest list. Each way round, the other code must be able to
    # match one of the owner's references (om & me, see _Tables._add): that rules out about nine pairs in ten
    # before any other column is read
    sub = dx.select("c", "pos", "fid")
    if not (sub["c"] * _SHIFT + sub["pos"]).is_sorted():   # (they come in claim and position order)
        sub = sub.sort("c", "pos")
    sub = sub.with_columns(*kinfo.gather(sub["fid"], ["om", "me"]).get_columns())
    if not (sub["om"] != 0).any():   # no code owns a reference
        return []
    sub = sub.lazy()
    parts = [sub.select("c", "pos", "fid", "om", "me", *(pl.col(x).shift(-d).alias(f"{x}_b")
                                                           for x in ("c", "pos", "fid", "om", "me")))
             .filter((pl.col("c") == pl.col("c_b")) & (pl.col("fid") != pl.col("fid_b")) & (_AB | _BA))
             for d in range(1, int(dx["pos"].max() or 0) + 1)]   # positions count every entry: no claim has more
    pairs = pl.concat(pl.collect_all(parts, engine="in-memory")) if parts else pl.DataFrame()
    if not pairs.height:
        return []
    pairs = pairs.with_columns((pl.col("fid") * _SHIFT + pl.col("fid_b")).alias("pk"))
    # each way round (a pair met on several claims is matched more than once: fewer rows than a distinct); hit:
    # which of the owner's tests the other code passed -- its prefix references are looked up only for a pass
    # in the Bloom filter's bits, its ranges only for a first letter they span
    directed = pl.concat([
        pairs.filter(_AB).select("fid", "fid_b", pl.lit(0).alias("dir"), pl.col("fid").alias("owner"),
                                 pl.col("fid_b").alias("o"), (pl.col("om") & pl.col("me_b")).alias("hit")),
        pairs.filter(_BA).select("fid", "fid_b", pl.lit(1).alias("dir"), pl.col("fid_b").alias("owner"),
                                 pl.col("fid").alias("o"), (pl.col("om_b") & pl.col("me")).alias("hit")),
    ])
    pairs = pairs.select("c", "pos", "pos_b", "pk")
    rng = directed.filter((pl.col("hit") & _RANGE_BITS) != 0)
    directed = directed.filter((pl.col("hit") & ~_RANGE_BITS) != 0)
    o, w = directed["o"], directed["owner"]
    directed = directed.with_columns(*kinfo.gather(o, ["kv", "L"]).get_columns(),
                                     *kinfo.gather(w, ["pmask", "pbloom"]).get_columns())
    # prefixes of the other code (3 characters up to all of it, at most 7) of a length the owner's prefixes have
    # and in its Bloom filter, packed as the table's keys (sorted: the binary searches then walk the table in
    # order); each row against the five lengths in one query (a cross join with them)
    pkey = _pre_key(pl.col("kv") // pl.lit(_POW36).gather(pl.col("L") - pl.col("plen")), pl.col("plen"))
    pre = (directed.lazy().filter(pl.col("kv").is_not_null()).join(_PLENS.lazy(), how="cross")
           .filter((pl.col("L") >= pl.col("plen")) & _has_bit(pl.col("pmask"), pl.col("plen")))
           .with_columns(pkey.alias("pkey")).filter(_has_bit(pl.col("pbloom"), pl.col("pkey") % _BLOOM))
           .select("fid", "fid_b", "dir", "plen", (pl.col("owner") * _PACK + pl.col("pkey")).alias("pk"))
           .sort("pk").collect(engine="in-memory"))
    plo, phi = _sorted_matches(tabs._pre_runs, pre["pk"])
    pre = (pre.with_columns(plo.alias("lo"), phi.alias("hi")).filter(pl.col("hi") > pl.col("lo"))
           .with_columns(pl.int_ranges("lo", "hi", dtype=pl.Int64).alias("at")).explode("at"))
    pre = pl.concat([pre.select("fid", "fid_b", "dir", "plen"),
                     tabs._pre.select("kind", "nid").gather(pre["at"])], how="horizontal")
    pre = pre.with_columns(tabs._notes["note"].gather(pre["nid"]), tabs._notes["cite"].gather(pre["nid"]),
                           pl.lit(0).alias("is_range"), pl.col("plen").alias("rank"))
    # the owner's range references: ranges are in owner order, so its rows are one run (rlo, rhi: its facts)
    rng = rng.with_columns(*kinfo.gather(rng["owner"], ["rlo", "rhi"]).get_columns()).filter(
        pl.col("rhi") > pl.col("rlo"))
    rng = (rng.select("fid", "fid_b", "dir", codes.col("key", rng["o"]).alias("other"), "rlo", "rhi")
           .with_columns(pl.int_ranges("rlo", "rhi", dtype=pl.Int64).alias("at")).explode("at"))
    rng = pl.concat([rng.select("fid", "fid_b", "dir", "other", "at"),
                     ranges.select("lo", "hi", "nlo", "nhi").gather(rng["at"])], how="horizontal")
    rng = rng.filter((pl.col("lo") <= pl.col("other").str.slice(0, pl.col("nlo")))
                     & (pl.col("other").str.slice(0, pl.col("nhi")) <= pl.col("hi")))
    rng = pl.concat([rng.select("fid", "fid_b", "dir"), ranges.select("kind", "ord", "note", "cite").gather(rng["at"])],
                    how="horizontal").with_columns(pl.lit(1).alias("is_range"), pl.col("ord").alias("rank"))
    cols = ["fid", "fid_b", "dir", "kind", "is_range", "rank", "note", "cite"]
    best = (pl.concat([pre.select(cols), rng.select(cols)]).sort("kind", "dir", "is_range", "rank")
            .group_by("fid", "fid_b").first())
    # a facts key equal on both sides is no pair (the same code reached through two spellings)
    a, b = codes.gather(best["fid"], ["code", "key"]), codes.gather(best["fid_b"], ["code", "key"])
    best = (best.with_columns(a["code"].alias("code_a"), a["key"].alias("key_a"), b["code"].alias("code_b"),
                              b["key"].alias("key_b"))
            .filter(pl.col("key_a") != pl.col("key_b"))
            .select((pl.col("fid") * _SHIFT + pl.col("fid_b")).alias("pk"), "code_a", "code_b",
                    pl.col("kind").alias("e_kind"), pl.col("dir").alias("e_dir"), pl.col("note").alias("e_note"),
                    pl.col("cite").alias("e_cite")))
    rows = pairs.select("c", "pos", "pos_b", "pk").join(best, on="pk")
    rows = rows.with_columns(claim_ids.gather(rows["c"]).alias("claim_id"))
    return _run("dx-pair", rows, pl.col("pos") * 1000 + pl.col("pos_b"))


# ====================================================================== procedures and the claim
def _procedure_findings(tabs: _Tables, claims: pl.DataFrame) -> list[pl.DataFrame]:
    pr = claims.filter(pl.col("procedures").list.len() > 0)
    if not pr.height:
        return []
    pr = (pr.select("c", "claim_id", "service_date", "procedures")
          .with_columns(pl.int_ranges(pl.col("procedures").list.len(), dtype=pl.Int64).alias("pos"))
          .explode("procedures", "pos").rename({"procedures": "raw", "service_date": "day"})
          .with_columns(_norm(pl.col("raw")).alias("key"), pl.lit(None, pl.String).alias("system")))
    rel = tabs.releases(pr["day"], "icd10pcs")
    pr = pr.join(rel, on="day", how="left")
    tab = tabs.pcs(rel["release"].unique().to_list()).select("release", "key", "billable", pl.col("title").alias("p_title"))
    pr = pr.join(tab, on=["release", "key"], how="left").with_columns(
        pl.when(pl.col("release").is_null()).then(pl.lit("unchecked"))
        .when(pl.col("billable") == 1).then(pl.lit("ok")).when(pl.col("billable") == 0).then(pl.lit("header"))
        .otherwise(pl.lit("invalid")).alias("p_status"),
        pl.col("p_title").fill_null(""))
    return _run("procedure", pr, pl.col("pos"))


def _claim_findings(tabs: _Tables, claims: pl.DataFrame, has_cpt: pl.DataFrame) -> list[pl.DataFrame]:
    cl = claims.select("c", "claim_id", "claim_type", "procedures",
                       pl.col("procedures").list.len().alias("nproc"))
    cl = cl.join(has_cpt, on="c", how="left").with_columns(
        pl.col("has_cpt_line").fill_null(False), pl.lit(tabs.ck.cpt_installed()).alias("cpt_installed"))
    return _run("claim", cl, pl.lit(0))


# ====================================================================== lines
_SHAPE = (pl.when(pl.col("key").str.contains(r"^\d{4}F$")).then(pl.lit("cpt2"))
          .when(pl.col("key").str.contains(r"^\d{5}$") | pl.col("key").str.contains(r"^\d{4}T$")).then(pl.lit("cpt"))
          .when(pl.col("key").str.contains(r"^[A-V]\d{4}$") & pl.col("key").str.starts_with("D")).then(pl.lit("cdt"))
          .when(pl.col("key").str.contains(r"^[A-V]\d{4}$")).then(pl.lit("hcpcs"))
          .when(pl.col("key").str.contains(r"^[0-9A-HJ-NP-Z]{7}$")).then(pl.lit("pcs"))
          .otherwise(pl.lit("other")))   # check.line_shape, as an expression


def _line_findings(tabs: _Tables, lines: pl.DataFrame) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    empty = pl.DataFrame(schema={"c": pl.Int64, "has_cpt_line": pl.Boolean})
    if not lines.height:
        return [], empty
    cpt = tabs.ck.cpt_installed()
    lines = lines.with_columns(_key(lines, "code", stripped=True).alias("key"))   # read_lines strips cells
    # the releases in effect on each date (one row per distinct date), then each distinct (releases, code) gets
    # its facts once and joins back to its lines; a licensed CPT file is asked per (code, date)
    days = lines["day"].unique()   # the distinct dates, once for both systems
    hrel = tabs.releases(days, "hcpcs", prefix="h_").drop("h_probe")
    prel = tabs.releases(days, "icd10pcs", prefix="p_").select("day", "p_release")
    on_day = hrel.join(prel, on="day", how="full", coalesce=True).rename(
        {"h_release": "dh_release", "h_label": "dh_label", "h_covers": "dh_covers", "p_release": "dp_release"})
    # each distinct set of releases (few) numbered: lines carry that number (rg), not four text columns
    rcols = ["dh_release", "dh_label", "dh_covers", "dp_release"]
    groups = on_day.select(rcols).unique().with_row_index("rg").with_columns(pl.col("rg").cast(pl.Int64))
    on_day = on_day.join(groups, on=rcols, how="left", nulls_equal=True)
    # the numbers found for the lines' keys alone, then put beside the lines (a join of every column copies them)
    lines = lines.with_columns(lines.select("day").join(on_day.select("day", "rg"), on="day", how="left",
                                                        maintain_order="left")["rg"])
    ukey = ["key", "rg"] + (["day"] if cpt else [])
    keys = lines.select(ukey)
    u = keys.unique().join(groups, on="rg", how="left").with_columns(_SHAPE.alias("shape"))
    htab = tabs.hcpcs(hrel["h_release"].unique().to_list())
    codes_tab = htab.filter(pl.col("kind") != "modifier").select(
        pl.col("release").alias("dh_release"), "key", pl.col("code").alias("h_code"), pl.col("title").alias("h_title"),
        pl.col("billable").alias("h_billable"), "added", "ended", "noc_source", "drug", pl.lit(True).alias("h_found"))
    hmask = pl.col("shape") == "hcpcs"
    u = u.join(codes_tab, on=["dh_release", "key"], how="left").with_columns(
        pl.col("dh_release").alias("h_release"), pl.col("dh_label").alias("h_label"),
        pl.col("dh_covers").alias("h_covers")).with_columns(
        *(pl.when(hmask).then(pl.col(c)).alias(c) for c in
          ("h_release", "h_label", "h_covers", "h_code", "h_title", "h_billable", "added", "ended", "h_found",
           "noc_source", "drug")))
    # PCS-shaped line codes (few) are looked up in the PCS tables: a semi join of those alone
    pcs_keys = u.filter(pl.col("shape") == "pcs").select("dp_release", "key").unique()
    if pcs_keys.height:
        ptab = tabs.pcs(prel["p_release"].drop_nulls().unique().to_list()).select(
            pl.col("release").alias("dp_release"), "key")
        hits = pcs_keys.join(ptab, on=["dp_release", "key"], how="semi").with_columns(pl.lit(True).alias("p_found"))
        u = u.join(hits, on=["dp_release", "key"], how="left").with_columns(
            pl.when(pl.col("shape") == "pcs").then(pl.col("p_found")).alias("p_found"))
    else:
        u = u.with_columns(pl.lit(None, pl.Boolean).alias("p_found"))
    reasons = [(k, d, tabs.cpt_reason(k, d)) for k, d in u.filter(pl.col("shape") == "cpt").select("key", "day")
               .unique().iter_rows()] if cpt else []
    u = u.join(pl.DataFrame(reasons, orient="row", schema={"key": pl.String, "day": pl.Date, "cpt_reason": pl.String}),
               on=["key", "day"], how="left") if cpt else u.with_columns(pl.lit(None, pl.String).alias("cpt_reason"))
    u = u.with_columns(pl.lit(cpt).alias("cpt_installed"))
    u = u.with_columns(_cand_bits("line").alias("cand")).with_row_index("uid").with_columns(
        pl.col("uid").cast(pl.Int64))
    ln = lines.with_columns(keys.join(u.select(*ukey, "uid", "cand", "shape"), on=ukey, how="left", nulls_equal=True,
                                      maintain_order="left").select("uid", "cand", "shape").get_columns()
                            ).with_columns(pl.col("pointers").list.len().alias("nptr"), pl.col("modifiers").alias("mods"))
    u = u.drop(*[c for c in ukey if c != "day"], *rcols, "cand", "shape").drop("day", strict=False)
    out = _run("line", ln, pl.col("line") * 100, u, on="uid")
    has_cpt = ln.select("c", "shape").filter(pl.col("shape").is_in(["cpt", "cpt2"])).select(
        pl.col("c").unique(), pl.lit(True).alias("has_cpt_line"))
    # modifiers: their facts per distinct (day, modifier); the columns are taken before the filter copies them
    m = (ln.select("c", "claim_id", "line", "day", "modifiers", "rg").filter(pl.col("modifiers").list.len() > 0)
         .with_columns(pl.int_ranges(pl.col("modifiers").list.len(), dtype=pl.Int64).alias("k"))
         .explode("modifiers", "k").rename({"modifiers": "mod"}))
    if m.height:
        mkey = ["mod", "rg"] + (["day"] if cpt else [])
        mu = m.select(mkey).unique().join(groups, on="rg", how="left").with_columns(
                                                  pl.col("dh_release").alias("h_release"),
                                                  pl.col("dh_label").alias("h_label"),
                                                  pl.col("dh_covers").alias("h_covers"))
        mods_tab = htab.filter(pl.col("kind") == "modifier").select(
            pl.col("release").alias("h_release"), pl.col("key").alias("mod"), pl.lit(True).alias("m_ok"))
        mu = mu.join(mods_tab, on=["h_release", "mod"], how="left")
        okc = [(md, d, tabs.cpt_modifier(md, d)) for md, d in mu.filter(pl.col("mod").str.contains(r"^\d\d$"))
               .select("mod", "day").unique().iter_rows()] if cpt else []
        mu = (mu.join(pl.DataFrame(okc, orient="row", schema={"mod": pl.String, "day": pl.Date,
                                                              "cpt_mod_ok": pl.Boolean}), on=["mod", "day"],
                      how="left") if cpt else mu.with_columns(pl.lit(None, pl.Boolean).alias("cpt_mod_ok")))
        mu = mu.with_columns(pl.lit(cpt).alias("cpt_installed"))
        rules = BY_SCOPE["modifier"]
        if all(r.when.cols <= set(mu.columns) for r in rules):
            # the conditions read only what the distinct (modifier, releases) carry: the lines of those that
            # no rule holds on (nearly all) are not joined at all
            mu = mu.filter(pl.any_horizontal([_rule_exprs(r)[0].fill_null(False) for r in rules]))
        if mu.height:
            out += _run("modifier", m.join(mu, on=mkey, how="inner", nulls_equal=True),
                        pl.col("line") * 100 + 10 + pl.col("k"))
    if ln.select((pl.col("nptr") == 1).all()).item():   # one pointer on every line (the usual case): no explode
        p = ln.select("c", "claim_id", "line", "code", pl.col("pointers").list.first().alias("p"), "ndx",
                      pl.lit(0, pl.Int64).alias("k"))
    else:
        p = (ln.select("c", "claim_id", "line", "code", "pointers", "ndx").filter(pl.col("pointers").list.len() > 0)
             .with_columns(pl.int_ranges(pl.col("pointers").list.len(), dtype=pl.Int64).alias("k"))
             .explode("pointers", "k").rename({"pointers": "p"}))
    out += _run("pointer", p, pl.col("line") * 100 + 70 + pl.col("k"))
    return out, has_cpt


# ====================================================================== NCCI (a rule of the whole claim)
def _setting_checks() -> list[tuple[pl.Expr, str]]:
    """A ``setting`` cell the claim's type does not allow (as :meth:`Claim.from_dict` refuses it)."""
    out = []
    for ctype, allowed in SETTINGS.items():
        bad = (pl.col("claim_type") == ctype) & pl.col("setting").is_not_null() & ~pl.col("setting").is_in(allowed)
        out.append((bad.alias(f"setting_{ctype}"), f"setting of {ctype} claims must be one of {', '.join(allowed)}"))
    return out


_NCCI_ORDER = 10_000    # NCCI findings sort after the table rules' within a claim (rule orders are < 16,384)


def _ncci_findings(tabs: _Tables, claims: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """NCCI MUE, add-on code and PTP edits, finding for finding as :func:`medcodes.claims.ncci.findings` (the
    rule the per-claim checker runs), with the edits the Checker has for each date.

    Claims of a setting without NCCI tables are skipped. The MUE edits -- the common case -- are joins:
    each line's code against the MUE table of its edits and claim setting, indicator 1 per line, 2 and 3
    summed per (date of service, provider, code); their texts are made by the rule's own
    :func:`medcodes.claims.ncci.mue_tail` once per edit and setting, the rest as columns. A claim with a
    line whose code has add-on code or PTP edits (few) runs the rule itself. Lines on dates no installed
    quarter covers give the once-per-claim note (:func:`medcodes.claims.ncci.gap_finding`).
    """
    empty = pl.DataFrame(schema=_OUT)
    if not lines.height:
        return empty
    edits_on = tabs.ck.ncci_on
    # the claim columns check_frames has not put on the lines (claim_type, claim_date, day): claims[c] is the
    # claim's row, they are gathered, not joined
    head = claims.select("setting", pl.col("provider").alias("provider_claim")).select(pl.all().gather(lines["c"]))
    ln = pl.concat([lines.select("c", "line", "code", "modifiers", "units", "line_date", "provider", "claim_id",
                                 "claim_type"), head, lines.select(pl.col("claim_date").alias("service_date"), "day")],
                   how="horizontal")
    skip = pl.col("setting").is_in(["inpatient", "other"]).fill_null(False)
    if claims.select(skip.any()).item():
        ln = ln.filter(~skip)
    if not ln.height:
        return empty
    sets: dict[int, Any] = {}
    day_rows = []
    for day in ln["day"].unique().to_list():
        edits = edits_on(day)
        if edits is not None:
            sets.setdefault(id(edits), edits)
        day_rows.append((day, None if edits is None else id(edits)))
    days = pl.DataFrame(day_rows, schema={"day": pl.Date, "eid": pl.Int64}, orient="row")
    # each line's edits by its date: found for the date column alone (a join of every column copies them)
    ln = ln.with_columns(ln.select("day").join(days, on="day", how="left", maintain_order="left")["eid"])
    parts = []
    rule_claims = pl.DataFrame(schema={"c": pl.Int64})
    if sets:
        mue, hard = tabs.ncci_tables(sets)
        covered = ln.select("c", "claim_id", "claim_type", "setting", "line", "code", "units", "provider",
                            "provider_claim", "day", "eid").filter(pl.col("eid").is_not_null())
        covered = covered.with_columns(_key(covered, "code").alias("key"))
        # claims with a line whose code has add-on code or PTP edits: the rule itself
        rule_claims = covered.join(hard, on=["eid", "key"], how="semi").select("c").unique()
        if rule_claims.height:
            parts.append(_ncci_by_rule(ln.join(rule_claims, on="c", how="semi"), edits_on))
            covered = covered.join(rule_claims, on="c", how="anti")
        parts.append(_ncci_mue(tabs, covered, mue, ln))
    parts.append(_ncci_gaps(ln.select("c", "claim_id", "day", "eid", "line").filter(pl.col("eid").is_null())
                            .join(rule_claims, on="c", how="anti"), one_day=ln["line_date"].null_count() == ln.height))
    parts = [p for p in parts if p.height]
    return pl.concat(parts) if parts else empty


def _ncci_by_rule(ln: pl.DataFrame, edits_on: Callable[[dt.date], Any]) -> pl.DataFrame:
    """:func:`medcodes.claims.ncci.findings` on each claim of ``ln`` (sorted by claim and line)."""
    found: list[tuple[Any, ...]] = []
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
            found.append((cur, _NCCI_ORDER, pos, cid, line, f.rule, f.severity, at, ";".join(f.codes), f.message,
                          f.source))

    rows = ln.sort("c", "line").select(
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
    return pl.DataFrame(found, schema=_OUT, orient="row")


_NCCI_SETTING = (pl.when(pl.col("setting").is_null())
                 .then(pl.when(pl.col("claim_type") == "professional").then(pl.lit("practitioner"))
                       .otherwise(pl.lit("outpatient-hospital")))
                 .otherwise(pl.col("setting")))    # ncci.setting_of as an expression (inpatient, other: filtered out)
_NCCI_GAP_AT = 1 << 50    # the note about uncovered dates comes after the claim's other NCCI findings


def _ncci_mue(tabs: _Tables, covered: pl.DataFrame, mue: pl.DataFrame, ln: pl.DataFrame) -> pl.DataFrame:
    """:func:`medcodes.claims.ncci._mue` as joins, in its order: per group of lines (date of service,
    provider; in order of the group's first line), indicator 1 findings by line, then the per-date totals
    (2 and 3) in order of each code's first line. ``covered``: the lines (with ``key``) on dates some edits
    cover; ``ln``: all the lines of the claims (for the order of their groups)."""
    if not covered.height:
        return pl.DataFrame(schema=_OUT)
    hit = covered.with_columns(_NCCI_SETTING.alias("tset")).join(mue, on=["eid", "tset", "key"])
    if not hit.height:
        return pl.DataFrame(schema=_OUT)
    hit = hit.with_columns(pl.coalesce("provider", "provider_claim", pl.lit("")).alias("prov"))
    one = hit.filter(pl.col("indicator") == "1").filter(pl.col("units") > pl.col("mue_units")).select(
        "c", "claim_id", "day", "prov", pl.lit(0, pl.Int64).alias("sub"), "line", "code", "units", "mid", "tset",
        pl.lit("on one line").alias("scope"))
    tot = (hit.filter(pl.col("indicator") != "1").sort("c", "line")
           .group_by("c", "day", "prov", "key", maintain_order=True)
           .agg(pl.col("claim_id").first(), pl.col("line").first(), pl.col("code").first(),
                pl.col("units").sum(), pl.col("mue_units").first(), pl.col("mid").first(), pl.col("tset").first())
           .filter(pl.col("units") > pl.col("mue_units"))
           .select("c", "claim_id", "day", "prov", pl.lit(1, pl.Int64).alias("sub"), "line", "code", "units", "mid",
                   "tset", pl.lit("on ").add(pl.col("day").cast(pl.String)).alias("scope")))
    rows = pl.concat([one, tot])
    if not rows.height:
        return pl.DataFrame(schema=_OUT)
    # the order of a group: its first line among all the claim's lines
    groups = (ln.select("c", "day", "provider", "provider_claim", "line")
              .join(rows.select("c").unique(), on="c", how="semi")
              .select("c", "day", pl.coalesce("provider", "provider_claim", pl.lit("")).alias("prov"), "line")
              .group_by("c", "day", "prov").agg(pl.col("line").min().alias("g")))
    rows = rows.join(groups, on=["c", "day", "prov"], how="left").with_columns(pl.col("code").str.strip_chars())
    # the message is mue_head (code, units, scope: made here as columns, the units worded by the rule's
    # mue_units) + mue_tail (the edit's words and the source: once per edit and setting, across chunks)
    known = tabs.ncci_mue_texts     # (mid, setting) -> (tail, source)
    if len(known) > 200_000:
        known.clear()
    tails = []
    for key in rows.select("mid", "tset").unique().iter_rows():
        got = known.get(key)
        if got is None:
            mid, tset = key
            m, edits = tabs.ncci_mue_rows[mid]
            got = known[key] = mue_tail(m, edits, tset)
        tails.append((*key, *got))
    tail = pl.DataFrame(tails, orient="row", schema={"mid": pl.Int64, "tset": pl.String, "tail": pl.String,
                                                     "source": pl.String})
    units = rows["units"].unique()
    words = pl.DataFrame({"units": units, "words": [mue_units(u) for u in units.to_list()]},
                         schema={"units": pl.Float64, "words": pl.String})
    rows = (rows.join(tail, on=["mid", "tset"], how="left").join(words, on="units", how="left")
            .with_columns(pl.concat_str("code", pl.lit(": "), "words", pl.lit(" "), "scope", pl.lit(", "), "tail")
                          .alias("message")))
    return rows.select(
        pl.col("c").cast(pl.Int64), pl.lit(_NCCI_ORDER, pl.Int64).alias("order"),
        ((pl.col("g") * 2 + pl.col("sub")) * 1_000_000 + pl.col("line")).cast(pl.Int64).alias("at"),
        "claim_id", pl.col("line").cast(pl.Int64), pl.lit("ncci-mue").alias("rule"),
        pl.lit("error").alias("severity"),
        pl.format("lines[{}].units", pl.col("line")).alias("location"), pl.col("code").alias("codes"), "message",
        "source")


def _ncci_gaps(ln: pl.DataFrame, one_day: bool = False) -> pl.DataFrame:
    """The once-per-claim note about the dates of ``ln`` (lines on dates no installed quarter covers): one
    text per set of dates. Most claims have one date: their text is found by that date (no date as text per
    claim); the few with several by the dates joined as text. ``one_day``: no line has a date of its own (every
    line is on its claim's date): a claim's first line (line 0) gives its date, no grouping."""
    if one_day:
        one = ln.filter(pl.col("line") == 0).select("c", "claim_id", pl.col("day").alias("d0"))
        many = pl.DataFrame(schema={"c": pl.Int64, "claim_id": pl.String, "k": pl.String})
    else:
        gaps = ln.group_by("c").agg(pl.col("claim_id").first(), pl.col("day").min().alias("d0"),
                                    pl.col("day").max().alias("d1"))
        one = gaps.filter(pl.col("d0") == pl.col("d1")).select("c", "claim_id", "d0")
        many = (ln.join(gaps.filter(pl.col("d0") != pl.col("d1")).select("c"), on="c", how="semi")
                .group_by("c").agg(pl.col("claim_id").first(), pl.col("day").unique().sort().alias("days"))
                .select("c", "claim_id",
                        pl.col("days").list.eval(pl.element().cast(pl.String)).list.join(",").alias("k")))
    schema = {"rule": pl.String, "severity": pl.String, "location": pl.String, "codes": pl.String,
              "message": pl.String, "source": pl.String}

    def texts(keys: list[Any], days: Callable[[Any], tuple[dt.date, ...]], dtype: Any) -> pl.DataFrame:
        rows = [(k, *(lambda f: (f.rule, f.severity, f.location, "", f.message, f.source))(gap_finding(days(k))))
                for k in keys]
        return pl.DataFrame(rows, orient="row", schema={"k": dtype, **schema})

    parts = [one.join(texts(one["d0"].unique().to_list(), lambda d: (d,), pl.Date), left_on="d0", right_on="k",
                      how="left").drop("d0")]
    if many.height:
        parts.append(many.join(texts(many["k"].unique().to_list(),
                                     lambda k: tuple(dt.date.fromisoformat(d) for d in k.split(",")), pl.String),
                               on="k", how="left").drop("k"))
    return pl.concat(parts).select(
        pl.col("c").cast(pl.Int64), pl.lit(_NCCI_ORDER, pl.Int64).alias("order"),
        pl.lit(_NCCI_GAP_AT, pl.Int64).alias("at"), "claim_id", pl.lit(None, pl.Int64).alias("line"), "rule",
        "severity", "location", "codes", "message", "source")


def summary(findings: pl.DataFrame) -> dict[str, Any]:
    """Counts of a findings table: claims with errors, findings by severity and by rule."""
    by_sev = dict(findings.group_by("severity").len().sort("severity").iter_rows())
    by_rule = {f"{r} ({s})": n for r, s, n in findings.group_by("rule", "severity").len().sort("rule", "severity")
               .iter_rows()}
    with_errors = findings.filter(pl.col("severity") == "error")["claim_id"].n_unique()
    return {"claims_with_errors": with_errors, "findings": by_sev, "rules": by_rule}


__all__ = ["NCCI_RULES", "check_lines", "check_table", "check_file", "check_frames", "chunks", "read_lines", "summary", "Totals",
           "BatchResult", "BATCH_RULES", "FINDINGS_SCHEMA"]
