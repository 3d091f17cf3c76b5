"""Claim checker throughput: in-process claims/s and batch mode lines/s, each against a naive Python loop.

    python benchmarks/claims.py [--home DIR] [--claims N] [--lines N]

1. In process: N simple professional claims (1-3 ICD-10-CM diagnoses, 1-3 lines
   with a HCPCS code, sometimes a modifier, units, a diagnosis pointer; codes
   from a working set of the installed releases) through
   ``medcodes.claims.check`` (target >= 20,000 claims/s). The caches are warmed
   on a separate set of claims over the same codes, so the timed claims are
   unseen combinations of seen codes. Against a naive per-claim loop over the
   same claims that asks the Codebook (``cb.validate``) for every code, with a
   per-code memo (what a user would write).
2. Batch: a Parquet file of N claim lines in the documented CSV layout (one row
   per service line, claim columns repeated) through
   ``medcodes.claims.batch.check_lines`` with Polars on one thread
   (POLARS_MAX_THREADS=1; target >= 200,000 lines/s), warm (tables and code
   facts already read by a first small file) and cold (a new Checker). Against
   a naive per-line Python loop over the same file's rows calling ``cb.validate``
   with a per-code memo.

3. NCCI on: the same kinds of claims dated 2026-05-01, inside the installed NCCI
   2026 Q2 quarter, with line codes from the HCPCS codes of the practitioner MUE
   table (add-on codes among them, sometimes without their primary; units 1-3),
   per claim and in batch mode, each against the same run with NCCI off (a
   Checker given an empty set of edits).

Prints wall-clock figures (what the target is judged on), CPU-time figures (the
same run, less the other processes sharing the machine) and the ratios to the
naive loop measured in the same run. Needs an installed store (MEDCODES_HOME or --home).
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
from typing import Any, Callable

os.environ.setdefault("POLARS_MAX_THREADS", "1")   # one core

import polars as pl  # noqa: E402

from medcodes import Codebook  # noqa: E402
from medcodes.claims import Claim, check  # noqa: E402
from medcodes.claims.batch import check_lines  # noqa: E402
from medcodes.claims.check import Checker  # noqa: E402
from medcodes.claims.ncci import NcciEdits  # noqa: E402
from medcodes.claims.readers import CSV_COLUMNS  # noqa: E402

DOS = dt.date(2020, 5, 1)       # HCPCS 2020-04 in effect; ICD-10-CM: nearest installed release


def _codes(cb: Codebook) -> tuple[list[str], list[str], list[str]]:
    """A working set: a practice sees the same few hundred codes (every 10th billable code, in order)."""
    icd = cb.db("icd10cm", DOS).conn
    dx = [r[0] for r in icd.execute("SELECT code FROM concept WHERE billable=1 ORDER BY seq LIMIT 4000")][::10]
    hc = cb.db("hcpcs", DOS).conn
    lines = [r[0] for r in hc.execute("SELECT code FROM concept WHERE kind='code' AND billable=1 ORDER BY seq "
                                      "LIMIT 2000")][::10]
    mods = [r[0] for r in hc.execute("SELECT code FROM concept WHERE kind='modifier' ORDER BY seq LIMIT 50")]
    return dx, lines, mods


def _simple_claim(rnd: random.Random, i: int, dx: list[str], lines: list[str], mods: list[str]) -> dict[str, Any]:
    nd = rnd.randint(1, 3)
    return {"id": f"B{i}", "type": "professional", "service_date": DOS.isoformat(),
            "patient": {"sex": rnd.choice("FM"), "birth_date": "1950-06-01"},
            "diagnoses": rnd.sample(dx, nd),
            "lines": [{"code": rnd.choice(lines), "modifiers": [rnd.choice(mods)] if rnd.random() < .3 else [],
                       "units": rnd.choice([1, 1, 1, 2]), "diagnosis_pointers": [rnd.randint(1, nd)]}
                      for _ in range(rnd.randint(1, 3))]}


def make_claims(cb: Codebook, n: int, seed: int = 7) -> list[Claim]:
    rnd = random.Random(seed)
    dx, lines, mods = _codes(cb)
    return [Claim.from_dict(_simple_claim(rnd, i, dx, lines, mods)) for i in range(n)]


def naive_claims(cb: Codebook, claims: list[Claim]) -> int:
    """The naive loop a user would write: cb.validate per code, memoised per (system, code, date)."""
    errors = 0
    memo: dict[tuple[str, str, Any], bool] = {}

    def valid(code: str, system: str, day: Any) -> bool:
        k = (system, code, day)
        if k not in memo:
            memo[k] = cb.validate(code, system=system, date=day).valid
        return memo[k]

    for c in claims:
        for d in c.diagnoses:
            errors += not valid(d.code, "icd10cm", c.service_date)
        for ln in c.lines:
            errors += not valid(ln.code, "hcpcs", c.service_date)
    return errors


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """fn(), wall seconds, CPU seconds."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def bench_in_process(cb: Codebook, n: int) -> None:
    for c in make_claims(cb, 3000, seed=1):
        check(cb, c)                         # warm the per-code caches (first sight of each code)
    claims = make_claims(cb, n)
    nerr, wall, cpu = _timed(lambda: sum(not check(cb, c).ok for c in claims))
    k = min(n, 2000)
    _e, nwall, _c = _timed(lambda: naive_claims(cb, claims[:k]))
    fast, slow = n / wall, k / nwall
    print(f"in process: {fast:,.0f} claims/s wall ({n / cpu:,.0f}/s CPU) with medcodes.claims.check over {n:,} "
          f"simple claims ({nerr} with errors); naive loop (cb.validate memoised per code, the first {k:,} of the "
          f"same claims) {slow:,.0f} claims/s; "
          f"ratio {fast / slow:.1f}x (target >= 20,000 claims/s: {'met' if fast >= 20000 else 'NOT met'})")


def make_lines(cb: Codebook, n: int, path: Path, seed: int = 11) -> None:
    """A claim-lines table (CSV layout, claim columns repeated) of ``n`` lines, 1-3 lines per claim."""
    rnd = random.Random(seed)
    dx, lines, mods = _codes(cb)
    dx = dx + ["E11.6", "E11.99", "S52.501"]       # a header, an invalid code, a code missing its 7th character
    lines = lines + ["G9999", "D0120"]
    rows: list[list[Any]] = []
    i = 0
    while len(rows) < n:
        c = _simple_claim(rnd, i, dx, lines, mods)
        i += 1
        head = [c["id"], "professional", c["patient"]["sex"], c["patient"]["birth_date"], DOS.isoformat(),
                ";".join(c["diagnoses"]), ""]
        for ln in c["lines"]:
            rows.append(head + [ln["code"], ";".join(ln["modifiers"]), rnd.choice([1, 1, 1, 2, 0]),
                                ";".join(map(str, ln["diagnosis_pointers"])), "", None])
    df = pl.DataFrame(rows[:n], schema=list(CSV_COLUMNS), orient="row", infer_schema_length=None)
    df.with_columns(pl.col("units").cast(pl.String), pl.col("charge").cast(pl.String)).write_parquet(path)


def naive_lines(cb: Codebook, path: Path, limit: int) -> int:
    """The per-line Python loop over the first ``limit`` rows: every diagnosis and line code through
    cb.validate, memoised per (system, code, date), units checked."""
    found = 0
    memo: dict[tuple[str, str, str], bool] = {}

    def valid(code: str, system: str, day: str) -> bool:
        k = (system, code, day)
        if k not in memo:
            memo[k] = cb.validate(code, system=system, date=dt.date.fromisoformat(day)).valid
        return memo[k]

    for r in pl.read_parquet(path).head(limit).iter_rows(named=True):
        for d in (r["diagnoses"] or "").split(";"):
            found += not valid(d, "icd10cm", r["service_date"])
        found += not valid(r["line_code"], "hcpcs", r["service_date"])
        found += float(r["units"]) <= 0
    return found


def bench_batch(cb: Codebook, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claim_lines.parquet"
        make_lines(cb, n, path)
        small = Path(tmp) / "small.parquet"
        make_lines(cb, 5000, small, seed=3)
        cold, cwall, _c = _timed(lambda: check_lines(cb, small, Checker(cb)))        # a new Checker: all cold
        check_lines(cb, small)                      # warm: release tables and code facts read once
        found, wall, cpu = _timed(lambda: check_lines(cb, path))
        k = min(n, 50_000)                          # the same rows, the first k of them
        _f, nwall, _c = _timed(lambda: naive_lines(cb, path, k))
    fast, slow = n / wall, k / nwall
    by_rule = dict(found.group_by("rule").len().sort("rule").iter_rows())
    print(f"batch: {fast:,.0f} lines/s wall ({n / cpu:,.0f}/s CPU) with medcodes.claims.batch.check_lines "
          f"(Polars, 1 thread) over {n:,} Parquet claim lines, {found.height:,} findings {by_rule}; "
          f"cold start (new Checker, 5,000 lines) {cwall:.2f}s; naive per-line Python loop (cb.validate "
          f"memoised per code, first {k:,} lines of the same file) {slow:,.0f} lines/s; "
          f"ratio {fast / slow:.0f}x (target >= 200,000 lines/s: {'met' if fast >= 200000 else 'NOT met'})")


NCCI_DOS = dt.date(2026, 5, 1)   # NCCI 2026 Q2 and HCPCS 2026 in effect


def _ncci_claims(cb: Codebook, n: int, seed: int) -> list[dict[str, Any]]:
    """Claims whose line codes are HCPCS codes of the practitioner MUE table valid on NCCI_DOS."""
    ck = Checker(cb)
    edits = ck.ncci_on(NCCI_DOS)
    if edits is None:
        raise SystemExit("no NCCI quarter covering 2026-05-01 is installed: medcodes pull --from ../shared/data")
    hc = cb.db("hcpcs", NCCI_DOS).conn
    valid = {r[0] for r in hc.execute("SELECT code FROM concept WHERE kind='code' AND billable=1")}
    codes = sorted(c for c in edits.mue["practitioner"] if c in valid)
    addons = sorted(c for c in edits.aoc if c in valid)
    rnd = random.Random(seed)
    dx, _lines, mods = _codes(cb)
    out = []
    for i in range(n):
        c = _simple_claim(rnd, i, dx, codes, mods)
        c["service_date"] = NCCI_DOS.isoformat()
        for ln in c["lines"]:
            ln["units"] = rnd.choice([1, 1, 1, 2, 3])
        if rnd.random() < 0.1:
            c["lines"].append({"code": rnd.choice(addons), "units": 1, "diagnosis_pointers": [1]})
        out.append(c)
    return out


def bench_ncci(cb: Codebook, n_claims: int, n_lines: int) -> None:
    off = NcciEdits(label="no edits (NCCI off)")
    claims = [Claim.from_dict(c) for c in _ncci_claims(cb, n_claims, seed=5)]
    on_ck, off_ck = Checker(cb), Checker(cb, off)
    for c in claims[:3000]:
        on_ck.check(c)
        off_ck.check(c)
    (found, wall, cpu) = _timed(lambda: sum(sum(f.rule.startswith("ncci-") for f in on_ck.check(c).findings)
                                            for c in claims))
    _x, owall, _c = _timed(lambda: [off_ck.check(c) for c in claims])
    print(f"NCCI on, in process: {n_claims / wall:,.0f} claims/s wall ({n_claims / cpu:,.0f}/s CPU) over "
          f"{n_claims:,} claims dated {NCCI_DOS} ({found:,} NCCI findings); NCCI off (empty edits) "
          f"{n_claims / owall:,.0f} claims/s; ratio on/off {owall / wall:.2f}")
    rows: list[list[Any]] = []
    for c in _ncci_claims(cb, max(1, n_lines // 2), seed=9):
        head = [c["id"], "professional", c["patient"]["sex"], c["patient"]["birth_date"], c["service_date"],
                ";".join(c["diagnoses"]), ""]
        for ln in c["lines"]:
            rows.append(head + [ln["code"], ";".join(ln.get("modifiers", [])), str(ln["units"]),
                                ";".join(map(str, ln["diagnosis_pointers"])), "", None])
        if len(rows) >= n_lines:
            break
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ncci_lines.parquet"
        pl.DataFrame(rows[:n_lines], schema=list(CSV_COLUMNS), orient="row",
                     infer_schema_length=None).with_columns(pl.col("charge").cast(pl.String)).write_parquet(path)
        check_lines(cb, path, on_ck)
        check_lines(cb, path, off_ck)          # warm both
        got, bwall, bcpu = _timed(lambda: check_lines(cb, path, on_ck))
        _g, bowall, _c = _timed(lambda: check_lines(cb, path, off_ck))
    nf = got.filter(pl.col("rule").str.starts_with("ncci-")).height
    m = min(n_lines, len(rows))
    print(f"NCCI on, batch: {m / bwall:,.0f} lines/s wall ({m / bcpu:,.0f}/s CPU) over {m:,} claim lines "
          f"({nf:,} NCCI findings); NCCI off (empty edits) {m / bowall:,.0f} lines/s; ratio on/off "
          f"{bowall / bwall:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--home", default=None)
    ap.add_argument("--claims", type=int, default=50_000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    cb = Codebook.open(home=args.home, embedded=False)
    bench_in_process(cb, args.claims)
    bench_batch(cb, args.lines)
    bench_ncci(cb, args.claims, args.lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
