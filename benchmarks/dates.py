"""Benchmark: resolve 100,000 (code, date of service) pairs across three installed releases of one system.

For every pair: the release in effect on that date, and whether the code is
a valid code there (:class:`medcodes.dates.DateResolver`). Target: at least
500,000 pairs per second in process.

    python benchmarks/dates.py                       # uses MEDCODES_HOME (or the user data dir)
    python benchmarks/dates.py --from ../shared/data # pulls the system into a temp home first
    python benchmarks/dates.py --system hcpcs --releases 2020-01,2020-04,2020-07

The pairs mix codes from every chosen release (so some are deleted or not yet
valid on their date), some made-up keys, and dates spread over the releases'
span plus a little before and after it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import random
import sys
import tempfile
import time
from pathlib import Path

from medcodes.dates import DateResolver
from medcodes.releases import pull_from_dir
from medcodes.store import Store

TARGET = 500_000


def make_pairs(resolver: DateResolver, n: int, seed: int = 7) -> list[tuple[str, _dt.date]]:
    rng = random.Random(seed)
    keys = sorted(resolver.masks)
    keys += [k[:-1] + "Q" for k in rng.sample(keys, min(len(keys), 2_000))]   # mostly not codes
    first = resolver.infos[0].effective_from.toordinal() - 30
    last = (resolver.infos[-1].effective_to or resolver.infos[-1].effective_from).toordinal() + 30
    days = [_dt.date.fromordinal(d) for d in range(first, last + 1)]
    return [(rng.choice(keys), rng.choice(days)) for _ in range(n)]


def run(resolver: DateResolver, pairs: list[tuple[str, _dt.date]], repeat: int = 5) -> tuple[float, float]:
    """Pairs per second (best of ``repeat``): one resolve() call per pair, and resolve_many()."""
    single = batch = float("inf")
    resolve = resolver.resolve
    for _ in range(repeat):
        t0 = time.perf_counter()
        for key, day in pairs:
            resolve(key, day)
        t1 = time.perf_counter()
        resolver.resolve_many(pairs)
        t2 = time.perf_counter()
        single, batch = min(single, t1 - t0), min(batch, t2 - t1)
    return len(pairs) / single, len(pairs) / batch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--system", default="icd10cm")
    ap.add_argument("--releases", help="comma-separated release ids (default: the newest three)")
    ap.add_argument("--from", dest="source", help="pull the system from this folder into a temp home first")
    ap.add_argument("--pairs", type=int, default=100_000)
    args = ap.parse_args(argv)

    tmp = None
    if args.source:
        tmp = tempfile.TemporaryDirectory(prefix="medcodes-bench-")
        store = Store(Path(tmp.name))
        pull_from_dir(store, args.source, systems={args.system})
    else:
        store = Store()
    ids = args.releases.split(",") if args.releases else [i.release for i in store.releases(args.system)][-3:]
    if len(ids) < 3:
        print(f"need three installed {args.system} releases, found {ids}", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    resolver = DateResolver(store, args.system, ids)
    load = time.perf_counter() - t0
    pairs = make_pairs(resolver, args.pairs)
    single, batch = run(resolver, pairs)
    hits = sum(v for _r, v in resolver.resolve_many(pairs))
    print(f"{args.system} releases {', '.join(resolver.ids)}: {len(resolver.masks):,} keys, loaded in {load:.2f}s")
    print(f"{len(pairs):,} (code, date) pairs, {hits:,} valid:")
    print(f"  resolve_many(): {batch:>12,.0f} pairs/s ({'meets' if batch >= TARGET else 'MISSES'} "
          f"the {TARGET:,}/s target)")
    print(f"  resolve() call per pair: {single:>12,.0f} pairs/s")
    store.close()
    if tmp is not None:
        tmp.cleanup()
    return 0 if batch >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
