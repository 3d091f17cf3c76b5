"""benchmarks/code.py: the coding assistant (``cb.code``) against the note set, and its speed.

Quality: tests/coding/notes.jsonl (262 notes written for this repo with the codes a coder would
accept), scored with recall@1, recall@5, precision@5 and the share of must-not-code mentions
that were coded. Baseline in the same run: ``cb.search`` over each sentence of the note, its
best hit per sentence (what a user of the search box would do).

Speed, warm (the books loaded once):
- latency of a 300-word note (notes of the set joined, seeded, until 300 words), p50 and p95;
- a batch of N notes (default 10,000; each a visit of 1-6 notes of the set, seeded), notes/s,
  in one process and with one worker process per core (forked after warming).

    python benchmarks/code.py [--home DIR] [--batch N] [--date 2026-05-01]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import time
from pathlib import Path

from medcodes import Codebook
from medcodes.coding.evaluate import load, score

REPO = Path(__file__).resolve().parents[1]
NOTES = REPO / "tests" / "coding" / "notes.jsonl"


def search_baseline(cb: Codebook, date: str):
    def suggest(note) -> list[str]:
        got: list[str] = []
        for sent in note.text.replace(";", ".").split("."):
            if sent.strip():
                for h in cb.search(sent, limit=1, date=date).hits:
                    if h.code not in got:
                        got.append(h.code)
        return got
    return suggest


def visits(notes, n: int, seed: int, min_words: int = 0) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        setting = rnd.choice(["outpatient", "inpatient"])
        k = rnd.randint(1, 6)
        while len(parts) < k or sum(len(p.split()) for p in parts) < min_words:
            parts.append(rnd.choice(notes).text)
        out.append((" ".join(parts), setting))
    return out


_CB: Codebook | None = None
_DATE = ""


def _work(chunk: list[tuple[str, str]]) -> int:
    for text, setting in chunk:
        _CB.code(text, setting=setting, date=_DATE)
    return len(chunk)


def main() -> None:
    global _CB, _DATE
    ap = argparse.ArgumentParser()
    ap.add_argument("--home")
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--date", default="2026-05-01")
    args = ap.parse_args()
    cb = Codebook.open(args.home)
    _CB, _DATE = cb, args.date
    notes = load(NOTES)

    t = time.perf_counter()
    cb.code("warm up: type 2 diabetes", date=args.date)
    print(f"load (medspaCy pipeline + index books + title indexes): {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    ours = score(notes, lambda n: [c.code for c in cb.code(n.text, setting=n.setting, date=args.date).codes])
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    base = score(notes, search_baseline(cb, args.date))
    t_base = time.perf_counter() - t
    print(f"\nnote set: {len(notes)} notes, {ours.slots} expected codes, {ours.must_not} must-not-code mentions")
    print(f"{'':22}{'recall@1':>9}{'recall@5':>9}{'prec@5':>8}{'must-not coded':>16}{'notes/s':>9}")
    for name, s, el in (("cb.code", ours, t_ours), ("cb.search/sentence", base, t_base)):
        print(f"{name:22}{s.recall1:9.3f}{s.recall5:9.3f}{s.precision5:8.3f}"
              f"{s.must_not_coded:>9}/{s.must_not} ({s.must_not_rate:.1%}){len(notes) / el:9.0f}")
    print(f"recall@5 ratio to the baseline: {ours.recall5 / max(base.recall5, 1e-9):.2f}x "
          f"(+{ours.recall5 - base.recall5:.3f})")

    long = visits(notes, 200, seed=7, min_words=300)
    lat, cpu = [], []
    for text, setting in long:
        t, c = time.perf_counter(), time.process_time()
        cb.code(text, setting=setting, date=args.date)
        lat.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    words = statistics.mean(len(x[0].split()) for x in long)
    lat.sort()
    cpu.sort()
    print(f"\n300-word notes (mean {words:.0f} words), warm, 200 notes: p50 {statistics.median(lat):.1f} ms, "
          f"p95 {lat[int(len(lat) * 0.95)]:.1f} ms (target p50 < 20 ms: {statistics.median(lat) / 20:.2f}x of it); "
          f"CPU time p50 {statistics.median(cpu):.1f} ms, p95 {cpu[int(len(cpu) * 0.95)]:.1f} ms "
          f"(load average {os.getloadavg()[0]:.1f})")

    batch = visits(notes, args.batch, seed=11)
    words = statistics.mean(len(x[0].split()) for x in batch)
    t = time.perf_counter()
    _work(batch)
    one = len(batch) / (time.perf_counter() - t)
    jobs = os.cpu_count() or 1
    chunks = [batch[i::jobs] for i in range(jobs)]
    t = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        done = sum(pool.map(_work, chunks))
    many = done / (time.perf_counter() - t)
    print(f"batch of {len(batch):,} notes (mean {words:.0f} words): {one:,.0f} notes/s in one process, "
          f"{many:,.0f} notes/s with {jobs} processes (target 200 notes/s: {many / 200:.2f}x)")


if __name__ == "__main__":
    main()
