"""NCCI on one big claim: seconds for 1k / 3k / 10k lines, against the pairwise loop it replaced (issue 9 item 12).

    python benchmarks/ncci.py [--home DIR] [--sizes 1000,3000,10000]

One professional claim, every line on the same date of service (2026-05-01, inside
the installed NCCI 2026 Q2 quarter) and from one provider -- the worst case for
NCCI, where every line meets every other. Line codes are drawn from the real
practitioner MUE table (HCPCS and CPT codes, as codes only), units 1-3, a
modifier 59 or 25 on some lines. Edits: the real MUE and add-on code (AOC)
tables of the quarter, plus SYNTHETIC PTP edits (no real PTP file is in
../shared/data): 40 column-1 codes for each of 2,000 column-2 codes, drawn
from the same codes, so PTP hits happen.

Prints, per size: the NCCI rule (:func:`medcodes.claims.ncci.findings`) alone,
the pairwise loop medcodes used before (kept below as the baseline, verbatim
in what it computes: every ordered pair of lines, a PTP probe each), their
ratio, and the whole ``check()`` of the claim with the installed quarter (every rule; no PTP), cold
(a new Checker reads the quarter's tables and each code's facts from the store) and again. The
baseline is skipped above 3,000 lines unless --baseline-all (it is quadratic:
10k lines took ~44 s). Figures are wall-clock on a shared machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from typing import Any, Callable

from medcodes import Codebook
from medcodes.claims import Checker, Claim
from medcodes.claims import ncci as nc
from medcodes.model import normalize_key

DOS = dt.date(2026, 5, 1)


def edits_for(cb: Codebook, rnd: random.Random) -> tuple[nc.NcciEdits, list[str]]:
    """The installed quarter's MUE and AOC edits plus SYNTHETIC PTP edits among its codes."""
    real = Checker(cb).ncci_on(DOS)
    if real is None:
        raise SystemExit("no NCCI quarter covering 2026-05-01 is installed: medcodes pull --from ../shared/data")
    codes = sorted(real.mue["practitioner"])
    edits = nc.NcciEdits(label="NCCI 2026 Q2 + SYNTHETIC PTP", mue=real.mue, aoc=real.aoc)
    ptp = []
    for c2 in rnd.sample(codes, 2000):
        for c1 in rnd.sample(codes, 40):
            if c1 != c2:
                ptp.append(nc.PtpEdit(c1, c2, False, dt.date(2020, 1, 1), None, rnd.choice("019"), "SYNTHETIC"))
    edits.add_ptp(ptp, "synthetic-ptp")
    return edits, codes


def make_claim(codes: list[str], n: int, rnd: random.Random) -> Claim:
    lines = [{"code": rnd.choice(codes), "units": rnd.choice([1, 1, 1, 2, 3]),
              "modifiers": [rnd.choice(["59", "25"])] if rnd.random() < 0.1 else [], "diagnosis_pointers": [1]}
             for _ in range(n)]
    return Claim.from_dict({"id": f"BIG{n}", "type": "professional", "service_date": DOS.isoformat(),
                            "diagnoses": ["I10"], "lines": lines})


def pairwise_baseline(claim: Claim, edits: nc.NcciEdits) -> int:
    """The NCCI loop medcodes had before issue 9 item 12: every ordered pair of lines probes the PTP edits."""
    found = 0
    lines = claim.lines
    for a, la in enumerate(lines):
        ka = normalize_key(la.code)
        for b, lb in enumerate(lines):
            if a == b:
                continue
            kb = normalize_key(lb.code)
            day_a, day_b = la.date or claim.service_date, lb.date or claim.service_date
            if day_a != day_b:
                continue
            for e in edits.pairs(ka, kb, day_a):
                if e.modifier_indicator == "9":
                    continue
                bypass = nc.NCCI_BYPASS_MODIFIERS & (set(lb.modifiers) | set(la.modifiers))
                if e.modifier_indicator == "1" and bypass:
                    continue
                found += 1
    totals: dict[tuple[str, dt.date], float] = {}
    table = edits.mue["practitioner"]
    for ln in lines:
        m = table.get(normalize_key(ln.code))
        if m is None:
            continue
        if m.indicator == "1":
            found += ln.units > m.units
            continue
        k = (m.code, ln.date or claim.service_date)
        totals[k] = totals.get(k, 0.0) + ln.units
    return found + sum(t > table[k[0]].units for k, t in totals.items())


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--home", default=None)
    ap.add_argument("--sizes", default="1000,3000,10000")
    ap.add_argument("--baseline-all", action="store_true", help="time the quadratic baseline at every size")
    args = ap.parse_args(argv)
    cb = Codebook.open(home=args.home, embedded=False)
    rnd = random.Random(5)
    edits, codes = edits_for(cb, rnd)
    print(f"edits: {sum(len(t) for t in edits.mue.values()):,} MUE rows (3 settings), "
          f"{sum(len(v) for v in edits.aoc.values()):,} add-on code edits (NCCI 2026 Q2), "
          f"{sum(len(v) for v in edits.ptp.values()):,} SYNTHETIC PTP edits")
    for n in (int(x) for x in args.sizes.split(",")):
        claim = make_claim(codes, n, rnd)
        got: list[Any] = []
        fresh = nc.NcciEdits(label=edits.label, mue=edits.mue, aoc=edits.aoc, ptp=edits.ptp)  # cold memo
        _r, fast = _timed(lambda: nc.findings(claim, lambda _d: fresh, got.append))
        by_rule: dict[str, int] = {}
        for f in got:
            by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
        ck = Checker(cb)
        res, cold = _timed(lambda: ck.check(claim))
        _res, warm = _timed(lambda: ck.check(claim))
        line = (f"{n:>6,} lines: NCCI rule {fast:.3f} s ({n / fast:,.0f} lines/s; findings {by_rule}); "
                f"whole check() with the installed quarter (every rule) {cold:.2f} s cold (new Checker: store "
                f"reads), {warm:.3f} s again ({len(res.findings):,} findings)")
        if n <= 3000 or args.baseline_all:
            _b, slow = _timed(lambda: pairwise_baseline(claim, edits))
            line += f"; pairwise baseline {slow:.2f} s; ratio {slow / fast:,.0f}x"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
