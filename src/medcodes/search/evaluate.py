"""The relevance set (tests/relevance/queries.tsv) and its scores: recall@1, recall@10, MRR.

Shared by the regression test and ``benchmarks/search.py``. A query's
accepted codes are plain codes (``E11.65``) or prefixes with ``*``
(``S72.0*`` accepts any code under S72.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..model import normalize_key


@dataclass(frozen=True)
class Case:
    query: str
    kind: str
    accepted: tuple[str, ...]

    def accepts(self, code: str) -> bool:
        key = normalize_key(code)
        for a in self.accepted:
            if a.endswith("*"):
                if key.startswith(normalize_key(a[:-1])):
                    return True
            elif key == normalize_key(a):
                return True
        return False


@dataclass
class Scores:
    n: int
    recall1: float
    recall10: float
    mrr: float
    misses: list[tuple[str, list[str]]]

    def line(self) -> str:
        return f"recall@1 {self.recall1:.3f}  recall@10 {self.recall10:.3f}  MRR {self.mrr:.3f}  (n={self.n})"


def load_cases(path: str | Path) -> list[Case]:
    cases = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        query, kind, codes = line.split("\t")[:3]
        cases.append(Case(query, kind, tuple(codes.split())))
    return cases


def score(cases: Iterable[Case], run: Callable[[str], list[str]]) -> Scores:
    """``run(query)`` returns the ranked codes (top 20 or so)."""
    n = r1 = r10 = 0
    rr = 0.0
    misses = []
    for case in cases:
        n += 1
        codes = run(case.query)
        rank = next((i for i, c in enumerate(codes) if case.accepts(c)), None)
        if rank is None:
            misses.append((case.query, codes[:3]))
            continue
        r1 += rank == 0
        r10 += rank < 10
        rr += 1.0 / (rank + 1)
    return Scores(n, r1 / max(1, n), r10 / max(1, n), rr / max(1, n), misses)
