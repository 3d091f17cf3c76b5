"""benchmarks/search.py: latency and relevance of medcodes search vs a plain SQLite FTS5 baseline.

Workload: the relevance sets (tests/relevance/tuning.tsv: queries ranking changes
were tuned on; tests/relevance/heldout.tsv: queries no change was tuned on), top
20, warm (every query is run once before timing), scored as recall@1, recall@10
and MRR, each set on its own. The baseline is what a user would build with
SQLite: an FTS5 table over the same codes' titles (the same code table medcodes
searches), ``tokenize='porter unicode61'`` (Porter stemming), bm25 order, every
word required with the last word as a prefix, then, when that finds fewer than
20, any word (OR) to fill the page.

    python benchmarks/search.py [--home DIR] [--rounds N] [--no-build]

Without --home, the store under MEDCODES_HOME (or the user data dir) is used.
Also reported: the time (and extra memory) to compile the whole index into a
scratch file, and the time to load the cached index.
"""

from __future__ import annotations

import argparse
import re
import resource
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from medcodes import Codebook
from medcodes.search import api, search
from medcodes.search.build import build
from medcodes.search.engine import Engine
from medcodes.search.evaluate import load_cases, score

REPO = Path(__file__).resolve().parents[1]
CONTEXT = {"pcs": ["icd10pcs"], "hcpcs": ["hcpcs"]}


FTS5_SETUP = ("FTS5 over the same codes' titles, tokenize='porter unicode61', bm25; all words (last as a "
              "prefix), then any word to fill the 20")


def fts5_baseline(engine: api.Engine) -> Callable[[str, list[str] | None], list[tuple[str, str]]]:
    """An in-memory FTS5 index over titles of the same codes (no index terms, no typo tolerance)."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(title, system UNINDEXED, code UNINDEXED, "
                 "tokenize='porter unicode61')")
    conn.executemany("INSERT INTO t(title, system, code) VALUES (?, ?, ?)",
                     engine.conn.execute("SELECT title, system, code FROM code"))
    conn.commit()
    default = list(api.DEFAULT_SYSTEMS)

    def query(match: str, systems: list[str], limit: int) -> list[tuple[str, str]]:
        marks = ",".join("?" * len(systems))
        try:
            return conn.execute(f"SELECT system, code FROM t WHERE t MATCH ? AND system IN ({marks}) "
                                "ORDER BY bm25(t) LIMIT ?", [match, *systems, limit]).fetchall()
        except sqlite3.OperationalError:
            return []

    def run(q: str, systems: list[str] | None = None) -> list[tuple[str, str]]:
        words = re.findall(r"[A-Za-z0-9]+", q)
        if not words:
            return []
        systems = systems or default
        last = f'"{words[-1]}"*'
        hits = query(" ".join(f'"{w}"' for w in words[:-1]) + " " + last, systems, 20)
        if len(hits) < 20 and len(words) > 1:                  # any-word fallback fills the page
            seen = set(hits)
            more = query(" OR ".join([*(f'"{w}"' for w in words[:-1]), last]), systems, 40)
            hits += [h for h in more if h not in seen][:20 - len(hits)]
        return hits

    return run


def timed(run: Callable[[str, list[str] | None], list[tuple[str, str]]], cases, context: bool, rounds: int):
    for c in cases:                                           # warm
        run(c.query, CONTEXT.get(c.kind) if context else None)
    times = []
    for _ in range(rounds):
        for c in cases:
            t = time.perf_counter()
            run(c.query, CONTEXT.get(c.kind) if context else None)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    by = {c.query: c for c in cases}
    rel = score(cases, lambda q: run(q, CONTEXT.get(by[q].kind) if context else None))
    return statistics.median(times), times[int(len(times) * 0.95)], rel


def time_build(cb: Codebook) -> None:
    """Compile the whole index (the releases in effect today) into a scratch file, in this process."""
    sel = api._selection(cb, None)
    rss0 = _rss_mb()
    peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        t, c = time.perf_counter(), time.process_time()
        build(sel, lambda info: cb.store.open(info.system, info.release), Path(tmp) / "index.sqlite")
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    extra = f"{peak - rss0:.0f} MB above the {rss0:.0f} MB before" if peak > peak0 else "within the earlier peak"
    print(f"build: {wall:.1f} s ({cpu:.1f} s CPU), peak memory {extra}")


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-build", action="store_true", help="skip timing a full index build")
    args = ap.parse_args()
    cb = Codebook.open(home=args.home)
    if not args.no_build:
        time_build(cb)
    engine = api.engine_for(cb)
    loads = []
    for _ in range(3):
        t = time.perf_counter()
        Engine(engine.path).close()
        loads.append(time.perf_counter() - t)
    print(f"load: {engine.path.name} in {min(loads):.3f} s (best of 3), "
          f"{engine.memory_arrays() / 1e6:.1f} MB of arrays, {len(engine.vocab)} tokens")
    sets = {name: load_cases(REPO / "tests" / "relevance" / f"{name}.tsv") for name in ("tuning", "heldout")}

    def ours(q: str, systems: list[str] | None = None) -> list[tuple[str, str]]:
        return [(h.system, h.code) for h in search(cb, q, systems=systems, limit=20).hits]

    base = fts5_baseline(engine)
    print(f"baseline: {FTS5_SETUP}")
    for name, cases in sets.items():
        for context in (False, True):
            label = "with the case's system (pcs/hcpcs cases)" if context else "all systems"
            print(f"\n== {name} set: {len(cases)} queries, top 20, warm, {args.rounds} rounds, {label}")
            m1, p1, r1 = timed(ours, cases, context, args.rounds)
            m2, p2, r2 = timed(base, cases, context, args.rounds)
            print(f"medcodes  median {m1:.3f} ms  p95 {p1:.3f} ms  {r1.line()}")
            print(f"FTS5      median {m2:.3f} ms  p95 {p2:.3f} ms  {r2.line()}")
            print(f"ratios    latency medcodes/FTS5: median x{m1 / m2:.2f}  p95 x{p1 / p2:.2f};  quality "
                  f"medcodes/FTS5: recall@1 x{r1.recall1 / max(r2.recall1, 1e-9):.2f}"
                  f"  recall@10 x{r1.recall10 / max(r2.recall10, 1e-9):.2f}  MRR x{r1.mrr / max(r2.mrr, 1e-9):.2f}")
    print(f"\nmax RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    cb.close()


if __name__ == "__main__":
    main()
