"""Foundation benchmarks against simple-icd-10-cm, on this machine, in one run.

Prints each figure, its target, and its ratio to the peer:
  1. time to pull all of ../shared/data into a fresh store        (target < 60 s)
  2. cold start to first answer: `medcodes lookup E11.65` (CLI, new process)
     vs `import simple_icd_10_cm; get_description("E11.65")`    (target 10x faster, < 0.3 s)
  3. lookups per second over every ICD-10-CM code, in process    (target 2x the peer)
  4. peak memory with all systems loaded                          (target < 150 MB; peer ~190 MB)

Usage: python benchmarks/foundation.py [--shared ../shared/data] [--runs 7]
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


def run_py(code: str, env: dict[str, str]) -> str:
    return subprocess.run([PY, "-c", code], env=env, check=True, capture_output=True, text=True).stdout


def timed(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("MEDCODES_SHARED_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="medcodes-bench-")
    env = dict(os.environ, MEDCODES_HOME=home)
    # as on a user's machine, Python may cache compiled bytecode (this workplace sets
    # PYTHONDONTWRITEBYTECODE, which would make both tools recompile on every start)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    medcodes = str(Path(PY).with_name("medcodes"))

    # 1. pull
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

    # 3. lookups per second over every ICD-10-CM code
    bench = r"""
import time, simple_icd_10_cm as s
from medcodes import Codebook

def best(fn, items, rounds=5):                     # best of N rounds: this machine is noisy
    rates = []
    for _ in range(rounds):
        t = time.perf_counter(); fn(items); rates.append(len(items) / (time.perf_counter() - t))
    return max(rates)

def loop(fn):
    def run(items):
        for c in items:
            fn(c)
    return run

cb = Codebook.open()
codes = list(cb.codes("icd10cm"))
describe = cb.describer("icd10cm")                 # loads the title table once
ours = best(loop(describe), codes)
batch = best(cb.describe_many, codes)
assert sum(x is not None for x in cb.describe_many(codes)) == len(codes)
full = best(loop(lambda c: cb.lookup(c, system="icd10cm")), codes[::10], rounds=2)
known = [c for c in codes if s.is_valid_item(c)]
peer = best(loop(s.get_description), known)
print(len(codes), len(known), ours, batch, full, peer)
"""
    n, known, ours_s, batch_s, full_s, peer_s = run_py(bench, env).split()
    ours_s, batch_s, full_s, peer_s = float(ours_s), float(batch_s), float(full_s), float(peer_s)
    print(f"lookups/s over {int(n):,} ICD-10-CM codes (best of 5 rounds each): cb.describer() {ours_s:,.0f}/s vs get_description "
          f"{peer_s:,.0f}/s ({int(known):,} codes it knows): ratio {ours_s / peer_s:.2f}x  (target 2x)")
    print(f"  batch: describe_many over the same codes {batch_s:,.0f}/s: ratio {batch_s / peer_s:.2f}x")
    print(f"  full records (cb.lookup: hierarchy, children, notes, 7th character; every 10th code) {full_s:,.0f}/s: "
          f"ratio {full_s / peer_s:.2f}x to the peer's title-only call")

    # 4. peak memory
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
