"""Foundation benchmarks against simple-icd-10-cm, on this machine, in one run.

Prints each figure, its target, and its ratio to the peer:
  1. time to pull all of ../shared/data into a fresh store        (target < 60 s)
  2. cold start to first answer: `medcodes lookup E11.65` (CLI, new process)
     vs `import simple_icd_10_cm; get_description("E11.65")`    (target 10x faster, < 0.3 s)
  3. titles per second over every ICD-10-CM code, in process     (target 2x the peer)
  4. full records over all 74,719 billable FY2026 codes          (target 2x the peer)
     ours: cb.lookup(code) -> title, ancestors, children, every note of the code and
     the notes its ancestors pass down, 7th-character meaning, chapter and block;
     peer: the same content from simple-icd-10-cm's API (title, get_ancestors with
     their titles, get_children with their titles, and all ten note getters on the
     code and on every ancestor). Same code list, one fresh process per side per
     round (import + open + every record), rounds interleaved, median reported, by the
     wall clock and by CPU time. The target is the whole process (what a program that
     reads every record pays); the first pass is also shown, though the peer has loaded
     everything at import while medcodes reads the release during that pass.
     Measured under load (2 shared cores, load average 6-9, 5 rounds), this version and
     the one before it back to back, ratios by CPU time (wall): whole process 2.45x (2.51x),
     before 1.97x (2.02x); first pass 1.07x (1.26x), before 0.85x (0.89x); second pass
     2.13x (2.46x), before 2.00x (1.91x). medcodes' first pass: 71,000 records/s of CPU
     (before 57,000), the peer's 66,000 (its data was loaded at import).
  5. peak memory with all systems loaded                          (target < 150 MB; peer ~190 MB)

Usage: python benchmarks/foundation.py [--shared ../shared/data] [--runs 7] [--rounds 5] [--only records]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def run_py(code: str, env: dict[str, str], argv: list[str] = [], stdin: str | None = None) -> str:  # noqa: B006
    return subprocess.run([PY, "-c", code, *argv], env=env, check=True, capture_output=True, text=True,
                          input=stdin).stdout


def timed(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


FULL_OURS = r"""
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
from medcodes import Codebook
cb = Codebook.open()
codes = open(sys.argv[1]).read().split()
t1, c1 = time.perf_counter(), time.process_time()
for c in codes:
    cb.lookup(c, system="icd10cm")
t2, c2 = time.perf_counter(), time.process_time()
for c in codes:
    cb.lookup(c, system="icd10cm")
t3, c3 = time.perf_counter(), time.process_time()
print(t2 - t0, t2 - t1, t3 - t2, c2 - c0, c2 - c1, c3 - c2)
"""

FULL_PEER = r"""
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
import simple_icd_10_cm as s
codes = open(sys.argv[1]).read().split()
NOTES = (s.get_inclusion_term, s.get_includes, s.get_excludes1, s.get_excludes2, s.get_code_first,
         s.get_code_also, s.get_use_additional_code, s.get_notes, s.get_seven_chr_note, s.get_seven_chr_def)

def record(c):
    ancestors = s.get_ancestors(c)
    return {"title": s.get_description(c),
            "ancestors": [(a, s.get_description(a)) for a in ancestors],
            "children": [(k, s.get_description(k)) for k in s.get_children(c)],
            "notes": [(x, get(x)) for x in (c, *ancestors) for get in NOTES]}

t1, c1 = time.perf_counter(), time.process_time()
for c in codes:
    record(c)
t2, c2 = time.perf_counter(), time.process_time()
for c in codes:
    record(c)
t3, c3 = time.perf_counter(), time.process_time()
print(t2 - t0, t2 - t1, t3 - t2, c2 - c0, c2 - c1, c3 - c2)
"""


def full_records(env: dict[str, str], rounds: int) -> None:
    """Section 4: interleaved fresh processes, median of rounds."""
    listing = run_py("from medcodes import Codebook\n"              # the release cb.lookup answers from
                     "cb = Codebook.open()\n"
                     "print(cb.release_for('icd10cm').label)\n"
                     "print('\\n'.join(cb.codes('icd10cm', billable=True)))", env)
    label, _, listing = listing.partition("\n")
    codes = listing.split()
    known = run_py("import sys, simple_icd_10_cm as s\n"
                   "print(sum(s.is_valid_item(c) for c in sys.stdin.read().split()))", env, stdin=listing)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(codes))
    ours: list[list[float]] = []
    peer: list[list[float]] = []
    try:
        for _ in range(rounds):
            ours.append([float(x) for x in run_py(FULL_OURS, env, [fh.name]).split()])
            peer.append([float(x) for x in run_py(FULL_PEER, env, [fh.name]).split()])
    finally:
        os.unlink(fh.name)
    n = len(codes)
    med = [statistics.median(r[i] for r in ours) for i in range(6)]
    pmed = [statistics.median(r[i] for r in peer) for i in range(6)]
    print(f"full records: the {n:,} billable codes of {label} (simple-icd-10-cm knows {int(known):,} of them), "
          f"one fresh process per side per round, {rounds} interleaved rounds, median; records/s by the "
          f"wall clock and by the process's CPU time (the latter is steadier on a shared machine):")
    for label, i in (("whole process (start, import/open, every record once)", 0),
                     ("first pass over the codes (after import/open)", 1),
                     ("second pass in the same process (caches warm)", 2)):
        o, p = n / med[i], n / pmed[i]
        oc, pc = n / med[i + 3], n / pmed[i + 3]
        print(f"  {label}:\n    wall: medcodes {o:,.0f} records/s, simple-icd-10-cm {p:,.0f}/s: ratio {o / p:.2f}x"
              f"{'  (target 2x)' if i == 0 else ''}\n"
              f"    CPU:  medcodes {oc:,.0f} records/s, simple-icd-10-cm {pc:,.0f}/s: ratio {oc / pc:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("MEDCODES_SHARED_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the full-records comparison")
    ap.add_argument("--home", help="use this pulled store instead of pulling into a fresh one (skips section 1)")
    ap.add_argument("--only", choices=["records"], help="run only the full-records comparison")
    args = ap.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="medcodes-bench-")
    env = dict(os.environ, MEDCODES_HOME=home)
    # as on a user's machine, Python may cache compiled bytecode (this workplace sets
    # PYTHONDONTWRITEBYTECODE, which would make both tools recompile on every start)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    medcodes = str(Path(PY).with_name("medcodes"))
    if args.only == "records":
        full_records(env, args.rounds)
        return

    # 1. pull
    if not args.home:
        t = time.perf_counter()
        subprocess.run([medcodes, "pull", "--from", args.shared, "--quiet"], env=env, check=True)
        pull_s = time.perf_counter() - t
        print(f"pull all of {args.shared}: {pull_s:.1f} s  (target < 60 s: {'met' if pull_s < 60 else 'MISSED'})")

    # 2. cold start
    subprocess.run([medcodes, "lookup", "E11.65"], env=env, check=True, capture_output=True)  # warm the OS cache
    ours = timed([medcodes, "lookup", "E11.65"], env, args.runs)
    peer = timed([PY, "-c", "import simple_icd_10_cm as s; print(s.get_description('E11.65'))"], env, args.runs)
    print(f"cold start to first answer: medcodes {ours * 1000:.0f} ms, simple-icd-10-cm {peer * 1000:.0f} ms, "
          f"ratio {peer / ours:.1f}x  (target 10x and < 300 ms)")

    # 3. titles per second: the same codes on both sides, rounds interleaved, median
    bench = r"""
import statistics, time, simple_icd_10_cm as s
from medcodes import Codebook

def rate(fn, items):
    t = time.perf_counter()
    fn(items)
    return len(items) / (time.perf_counter() - t)

def loop(fn):
    def run(items):
        for c in items:
            fn(c)
    return run

cb = Codebook.open()
codes = [c for c in cb.codes("icd10cm") if s.is_valid_item(c)]   # every code both know
describe = cb.describer("icd10cm")                 # loads the title table once
rounds = {"ours": [], "batch": [], "peer": []}
for _ in range(7):                                 # interleaved: the machine's load hits all alike
    rounds["ours"].append(rate(loop(describe), codes))
    rounds["batch"].append(rate(cb.describe_many, codes))
    rounds["peer"].append(rate(loop(s.get_description), codes))
assert sum(x is not None for x in cb.describe_many(codes)) == len(codes)
print(len(codes), *(statistics.median(rounds[k]) for k in ("ours", "batch", "peer")))
"""
    n, ours_s, batch_s, peer_s = run_py(bench, env).split()
    ours_s, batch_s, peer_s = float(ours_s), float(batch_s), float(peer_s)
    print(f"titles/s over the {int(n):,} ICD-10-CM codes (headers included) both know, median of 7 interleaved rounds: "
          f"cb.describer() {ours_s:,.0f}/s vs get_description {peer_s:,.0f}/s: ratio {ours_s / peer_s:.2f}x  (target 2x)")
    print(f"  batch: describe_many over the same codes {batch_s:,.0f}/s: ratio {batch_s / peer_s:.2f}x")

    # 4. full records
    full_records(env, args.rounds)

    # 5. peak memory
    mem = r"""
import resource
from medcodes import Codebook
cb = Codebook.open()
for system in ("icd10cm", "icd10pcs", "hcpcs", "icd9cm"):   # the release in effect, per system
    cb.describer(system)
for code in ("E11.65", "0DTJ4ZZ", "E1130", "250.00"):
    cb.lookup(code)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    ours_mb = float(run_py(mem, env))
    peer_mb = float(run_py("import resource, simple_icd_10_cm as s; s.get_description('E11.65'); "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)", env))
    print(f"peak memory, each system's current release loaded (title tables + a lookup each): medcodes {ours_mb:.0f} MB, "
          f"simple-icd-10-cm (ICD-10-CM only) {peer_mb:.0f} MB, ratio {peer_mb / ours_mb:.1f}x  (target < 150 MB)")


if __name__ == "__main__":
    main()
