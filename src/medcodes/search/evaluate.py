"""The relevance sets (tests/relevance/tuning.tsv, heldout.tsv) and their scores: recall@1, recall@10, MRR.

Shared by the regression tests and ``benchmarks/search.py``. A query's
accepted codes are plain codes (``E11.65``) or prefixes with ``*``
(``S72.0*`` accepts any code under S72.0), in the system its kind implies
(``pcs`` -> ICD-10-PCS, ``hcpcs`` -> HCPCS Level II, ``code`` -> any, every
other kind -> ICD-10-CM), so HCPCS ``L0120`` never counts for ICD-10-CM ``L01.20``;
``icd10cm:O82`` names another system for one code.

The tuning set may be looked at query by query; the held-out set is scored
only (see its header): no ranking change is tuned on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..model import normalize_key


#: The system a case's codes belong to, by kind (``code`` cases may name any system).
KIND_SYSTEM = {"pcs": "icd10pcs", "hcpcs": "hcpcs", "code": None}


@dataclass(frozen=True)
class Case:
    query: str
    kind: str
    accepted: tuple[str, ...]

    @property
    def system(self) -> str | None:
        return KIND_SYSTEM.get(self.kind, "icd10cm")

    def accepts(self, code: str, system: str | None = None) -> bool:
        key = normalize_key(code)
        for a in self.accepted:
            want, a = a.split(":", 1) if ":" in a else (self.system, a)   # "icd10cm:O82" names its system
            if system is not None and want is not None and system != want:
                continue
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


def score(cases: Iterable[Case], run: Callable[[str], list[tuple[str, str]]]) -> Scores:
    """``run(query)`` returns the ranked hits as (system, code) pairs (top 20 or so)."""
    n = r1 = r10 = 0
    rr = 0.0
    misses = []
    for case in cases:
        n += 1
        hits = run(case.query)
        codes = [c for _s, c in hits]
        rank = next((i for i, (s, c) in enumerate(hits) if case.accepts(c, s)), None)
        if rank is None:
            misses.append((case.query, codes[:3]))
            continue
        r1 += rank == 0
        r10 += rank < 10
        rr += 1.0 / (rank + 1)
    return Scores(n, r1 / max(1, n), r10 / max(1, n), rr / max(1, n), misses)
