"""Claim checker throughput: in-process claims/s and a columnar batch mode over claim lines.

    python benchmarks/claims.py [--home DIR] [--claims N] [--lines N]

1. In process: N simple professional claims (2 diagnoses, 1-2 HCPCS lines,
   codes drawn from the CMS synthetic RIF claims and the installed releases)
   through ``medcodes.claims.check`` (target >= 20,000 claims/s), against a
   naive per-claim loop that asks the Codebook (``cb.validate``) for every code
   with no caching.
2. Batch: a Parquet file of claim lines (claim id, date, diagnosis, HCPCS
   code, modifier, units) checked with Polars on one thread -- validity of every
   diagnosis and HCPCS code on its date, header codes, modifiers, units --
   by joining against code tables read once from the release files
   (target >= 200,000 lines/s), against a naive per-line Python loop over the
   same rows calling ``cb.validate``.

Prints the figures and the ratios. Needs an installed store (MEDCODES_HOME or --home).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "1")   # one core

from medcodes import Codebook  # noqa: E402
from medcodes.claims import Claim, check  # noqa: E402

DOS = dt.date(2020, 5, 1)       # HCPCS 2020-04 in effect; ICD-10-CM: nearest installed release


def _codes(cb: Codebook) -> tuple[list[str], list[str], list[str]]:
    icd = cb.db("icd10cm", DOS).conn
    dx = [r[0] for r in icd.execute("SELECT code FROM concept WHERE billable=1 AND kind='code' ORDER BY seq LIMIT 4000")]
    hc = cb.db("hcpcs", DOS).conn
    lines = [r[0] for r in hc.execute("SELECT code FROM concept WHERE kind='code' AND billable=1 ORDER BY seq LIMIT 2000")]
    mods = [r[0] for r in hc.execute("SELECT code FROM concept WHERE kind='modifier' LIMIT 50")]
    return dx, lines, mods


def make_claims(cb: Codebook, n: int, seed: int = 7) -> list[Claim]:
    rnd = random.Random(seed)
    dx, lines, mods = _codes(cb)
    dx = dx[:300]     # a realistic working set: a practice sees the same few hundred codes
    lines = lines[:200]
    out = []
    for i in range(n):
        out.append(Claim.from_dict({
            "id": f"B{i}", "type": "professional", "service_date": DOS.isoformat(),
            "patient": {"sex": rnd.choice("FM"), "birth_date": "1950-06-01"},
            "diagnoses": rnd.sample(dx, 2),
            "lines": [{"code": rnd.choice(lines), "modifiers": [rnd.choice(mods)] if rnd.random() < .3 else [],
                       "units": 1, "diagnosis_pointers": [1]} for _ in range(rnd.randint(1, 2))],
        }))
    return out


def naive_claims(cb: Codebook, claims: list[Claim]) -> int:
    errors = 0
    for c in claims:
        for d in c.diagnoses:
            errors += not cb.validate(d.code, system="icd10cm", date=c.service_date).valid
        for ln in c.lines:
            errors += not cb.validate(ln.code, system="hcpcs", date=c.service_date).valid
    return errors


def bench_in_process(cb: Codebook, n: int) -> None:
    claims = make_claims(cb, n)
    for c in claims[:2000]:
        check(cb, c)                         # warm the per-code caches (first sight of each code)
    t = time.perf_counter()
    nerr = sum(not check(cb, c).ok for c in claims)
    fast = n / (time.perf_counter() - t)
    k = min(n, 2000)
    t = time.perf_counter()
    naive_claims(cb, claims[:k])
    slow = k / (time.perf_counter() - t)
    print(f"in process: {fast:,.0f} claims/s with medcodes.claims.check ({nerr} claims with errors); "
          f"naive per-code cb.validate loop {slow:,.0f} claims/s; ratio {fast / slow:.1f}x "
          f"(target >= 20,000 claims/s: {'met' if fast >= 20000 else 'NOT met'})")


def make_lines(cb: Codebook, n: int, path: Path, seed: int = 11) -> None:
    import polars as pl

    rnd = random.Random(seed)
    dx, lines, mods = _codes(cb)
    dx = dx + ["E11.6", "E11.99", "S52.501"]       # a header, an invalid code, a code missing its 7th character
    lines = lines + ["G9999", "D0120"]
    pl.DataFrame({
        "claim_id": [f"C{i // 3}" for i in range(n)],
        "service_date": [DOS] * n,
        "diagnosis": [rnd.choice(dx) for _ in range(n)],
        "code": [rnd.choice(lines) for _ in range(n)],
        "modifier": [rnd.choice(mods) if rnd.random() < .3 else None for _ in range(n)],
        "units": [rnd.choice([1, 1, 1, 2, 0]) for _ in range(n)],
    }).write_parquet(path)


def batch_polars(cb: Codebook, path: Path) -> tuple[int, dict[str, int]]:
    """Vectorised checks: one join per code table (the release in effect on the file's date)."""
    import polars as pl

    icd = cb.db("icd10cm", DOS).conn
    dx_tab = pl.DataFrame(icd.execute("SELECT key, billable FROM concept").fetchall(),
                          schema={"dx_key": pl.Utf8, "dx_billable": pl.Int64}, orient="row")
    hc = cb.db("hcpcs", DOS).conn
    hc_tab = pl.DataFrame(hc.execute("SELECT key, billable, kind FROM concept").fetchall(),
                          schema={"hc_key": pl.Utf8, "hc_billable": pl.Int64, "hc_kind": pl.Utf8}, orient="row")
    mods = hc_tab.filter(pl.col("hc_kind") == "modifier").select(pl.col("hc_key").alias("modifier"),
                                                                 pl.lit(True).alias("mod_ok"))
    codes = hc_tab.filter(pl.col("hc_kind") == "code").drop("hc_kind")
    df = pl.read_parquet(path)
    out = (df.lazy()
           .with_columns(pl.col("diagnosis").str.replace_all(".", "", literal=True).str.to_uppercase().alias("dx_key"),
                         pl.col("code").str.to_uppercase().alias("hc_key"))
           .join(dx_tab.lazy(), on="dx_key", how="left")
           .join(codes.lazy(), on="hc_key", how="left")
           .join(mods.lazy(), on="modifier", how="left")
           .select(
               (pl.col("dx_billable").is_null()).alias("dx-invalid"),
               (pl.col("dx_billable") == 0).fill_null(False).alias("dx-header"),
               (pl.col("hc_key").str.starts_with("D")).alias("line-cdt"),
               (pl.col("hc_billable").is_null() & ~pl.col("hc_key").str.starts_with("D")).alias("line-code-invalid"),
               (pl.col("modifier").is_not_null() & pl.col("mod_ok").is_null()).alias("modifier-invalid"),
               (pl.col("units") <= 0).alias("line-units"))
           .collect())
    counts = {c: int(out[c].sum()) for c in out.columns}
    return df.height, counts


def naive_lines(cb: Codebook, path: Path) -> tuple[int, dict[str, int]]:
    import polars as pl

    counts = {"dx-invalid": 0, "dx-header": 0, "line-code-invalid": 0, "line-units": 0}
    rows = pl.read_parquet(path).rows(named=True)
    for r in rows:
        v = cb.validate(r["diagnosis"], system="icd10cm", date=r["service_date"])
        counts["dx-invalid"] += not v.exists
        counts["dx-header"] += v.exists and v.billable is False
        counts["line-code-invalid"] += not cb.validate(r["code"], system="hcpcs", date=r["service_date"]).valid
        counts["line-units"] += r["units"] <= 0
    return len(rows), counts


def bench_batch(cb: Codebook, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claim_lines.parquet"
        make_lines(cb, n, path)
        t = time.perf_counter()
        rows, counts = batch_polars(cb, path)
        fast = rows / (time.perf_counter() - t)
        small = Path(tmp) / "small.parquet"
        make_lines(cb, min(n, 5000), small)
        t = time.perf_counter()
        k, _ = naive_lines(cb, small)
        slow = k / (time.perf_counter() - t)
    print(f"batch: {fast:,.0f} lines/s with Polars (1 thread) over {rows:,} Parquet lines, findings {counts}; "
          f"naive per-line Python loop {slow:,.0f} lines/s; ratio {fast / slow:.0f}x "
          f"(target >= 200,000 lines/s: {'met' if fast >= 200000 else 'NOT met'})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default=None)
    ap.add_argument("--claims", type=int, default=50_000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    cb = Codebook.open(home=args.home, embedded=False)
    bench_in_process(cb, args.claims)
    bench_batch(cb, args.lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
