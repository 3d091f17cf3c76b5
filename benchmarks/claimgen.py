"""Realistic SYNTHETIC claim lines: the workload of every claims benchmark.

    python benchmarks/claimgen.py --lines 1000000 --out lines.parquet [--csv lines.csv] [--seed 7]

Claims look like a payer's professional/institutional lines over two fiscal years:

* diagnoses drawn Zipf-like (weight 1/rank, over a seeded shuffle) from ALL billable
  ICD-10-CM codes of the newest installed release (74,719 for FY2026), 1-4 per claim;
* line codes drawn Zipf-like from ALL HCPCS Level II codes of the newest installed
  release, 1-3 lines per claim; a modifier on about 1 line in 5 (HCPCS modifiers,
  Zipf-like), units mostly 1, diagnosis pointers into the claim's diagnoses;
* dates of service uniform over FY2025-FY2026 (2024-10-01 to 2026-09-30), so three
  ICD-10-CM releases apply (FY2025, FY2026, FY2026 April update) and codes new in
  FY2026 are invalid on FY2025 dates, as on real files;
* patients F/M with birth dates over 1930-2024; 85% professional, 15% institutional.

Written in the claim-lines CSV layout (docs/claims.md) as Parquet and/or CSV. Seeded:
the same seed, size and store give the same file. Codes come from the installed store
(MEDCODES_HOME or --home); nothing is downloaded and no real patient is involved.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

FY_START, FY_END = dt.date(2024, 10, 1), dt.date(2026, 9, 30)


def code_pools(cb: Any) -> tuple[list[str], list[str], list[str]]:
    """All billable ICD-10-CM codes, all HCPCS codes and modifiers of the newest installed releases."""
    icd = cb.store.releases("icd10cm")[-1]
    hc = cb.store.releases("hcpcs")[-1]
    dx = [r[0] for r in cb.store.open("icd10cm", icd.release).conn.execute(
        "SELECT code FROM concept WHERE billable=1 ORDER BY seq")]
    conn = cb.store.open("hcpcs", hc.release).conn
    lines = [r[0] for r in conn.execute("SELECT code FROM concept WHERE kind='code' ORDER BY seq")]
    mods = [r[0] for r in conn.execute("SELECT code FROM concept WHERE kind='modifier' ORDER BY seq")]
    return dx, lines, mods


def _zipf(rng: np.random.Generator, pool: list[str], n: int, s: float = 1.0) -> np.ndarray:
    """``n`` draws from ``pool`` with weight 1/rank**s over a seeded shuffle of the pool."""
    order = rng.permutation(len(pool))
    w = 1.0 / np.arange(1, len(pool) + 1) ** s
    cdf = np.cumsum(w / w.sum())
    idx = np.minimum(np.searchsorted(cdf, rng.random(n)), len(pool) - 1)
    return np.asarray(pool, dtype=object)[order[idx]]


def generate(cb: Any, n_lines: int, seed: int = 7) -> pl.DataFrame:
    """``n_lines`` claim lines (whole claims; the last claim may be cut) in the CSV layout."""
    rng = np.random.default_rng(seed)
    dx_pool, line_pool, mod_pool = code_pools(cb)
    n_claims = n_lines // 2 + 16
    nl = rng.integers(1, 4, n_claims)                                 # 1-3 lines
    while nl.sum() < n_lines:
        nl = np.concatenate([nl, rng.integers(1, 4, n_claims // 4 + 16)])
    n_claims = int(np.searchsorted(np.cumsum(nl), n_lines) + 1)
    nl = nl[:n_claims]
    nd = rng.integers(1, 5, n_claims)                                 # 1-4 diagnoses
    days = (FY_END - FY_START).days + 1
    dos = np.datetime64(FY_START.isoformat()) + rng.integers(0, days, n_claims).astype("timedelta64[D]")
    birth = np.datetime64("1930-01-01") + rng.integers(0, 95 * 365, n_claims).astype("timedelta64[D]")
    birth = np.minimum(birth, dos)
    dxs = _zipf(rng, dx_pool, int(n_claims * 4)).reshape(n_claims, 4)
    claims = pl.DataFrame({
        "claim_id": [f"G{seed}-{i:09d}" for i in range(n_claims)],
        "claim_type": np.where(rng.random(n_claims) < 0.85, "professional", "institutional"),
        "patient_sex": np.where(rng.random(n_claims) < 0.55, "F", "M"),
        "patient_birth_date": birth.astype(str),
        "service_date": dos.astype(str),
        "nd": nd, "nl": nl,
        **{f"d{k}": dxs[:, k] for k in range(4)},
    }).with_columns(
        pl.concat_list([pl.when(pl.col("nd") > k).then(pl.col(f"d{k}")) for k in range(4)])
        .list.drop_nulls().list.join(";").alias("diagnoses"),
        pl.lit("").alias("procedures"))
    lines = claims.select(pl.exclude([f"d{k}" for k in range(4)])).with_columns(
        pl.int_ranges(pl.col("nl")).alias("ln")).explode("ln").head(n_lines)
    n = lines.height
    has_mod = rng.random(n) < 0.2
    mods = np.where(has_mod, _zipf(rng, mod_pool, n), "")
    ptr = (rng.integers(0, 1 << 30, n) % lines["nd"].to_numpy()) + 1
    units = rng.choice(np.array(["1", "1", "1", "1", "2", "3"]), n)
    return lines.with_columns(
        pl.Series("line_code", _zipf(rng, line_pool, n), dtype=pl.String),
        pl.Series("modifiers", mods, dtype=pl.String),
        pl.Series("units", units, dtype=pl.String),
        pl.Series("diagnosis_pointers", ptr.astype(str), dtype=pl.String),
        pl.lit("").alias("line_date"), pl.lit("").alias("charge"),
    ).select("claim_id", "claim_type", "patient_sex", "patient_birth_date", "service_date", "diagnoses",
             "procedures", "line_code", "modifiers", "units", "diagnosis_pointers", "line_date", "charge")


def write(cb: Any, n_lines: int, parquet: Path | None = None, csv: Path | None = None, seed: int = 7,
          chunk: int = 1_000_000) -> None:
    """Write ``n_lines`` lines, generated in chunks of whole claims (bounded memory), as Parquet and/or CSV."""
    import pyarrow.parquet as pq

    writer = None
    done, part = 0, 0
    csv_fh = open(csv, "wb") if csv else None
    try:
        while done < n_lines:
            k = min(chunk, n_lines - done)
            df = generate(cb, k, seed=seed * 1000 + part)
            if parquet:
                table = df.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(str(parquet), table.schema)
                writer.write_table(table, row_group_size=128 * 1024)
            if csv_fh:
                df.write_csv(csv_fh, include_header=part == 0)
            done += df.height
            part += 1
    finally:
        if writer is not None:
            writer.close()
        if csv_fh:
            csv_fh.close()


def main(argv: list[str] | None = None) -> int:
    from medcodes import Codebook

    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, help="Parquet file to write")
    ap.add_argument("--csv", type=Path, help="CSV file to write")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--home", default=None)
    args = ap.parse_args(argv)
    if not args.out and not args.csv:
        ap.error("give --out FILE.parquet and/or --csv FILE.csv")
    cb = Codebook.open(home=args.home, embedded=False)
    write(cb, args.lines, args.out, args.csv, args.seed)
    print(f"wrote {args.lines:,} synthetic claim lines to {', '.join(str(p) for p in (args.out, args.csv) if p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
