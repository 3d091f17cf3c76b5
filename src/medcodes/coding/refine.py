"""From the code an index points at to the billable code the documentation supports.

The Alphabetic Index often stops at a category or subcategory (``M17.1-``); the Tabular then
asks for laterality, encounter (7th character), type or acuity. Among the billable codes below
the index's code, the one whose title words the sentence states wins; where the sentence does
not say, the unspecified code is offered with a query naming what is missing (guideline
I.B.18 / documentation queries), never a guess at the specific one. The same scoring picks a
complete ICD-10-PCS code among a table's rows, or leaves the axes open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..model import normalize_key
from .text import Sentence, term_stems

_SOFT = frozenset({"unspecified", "specified", "other", "approach", "encounter", "code", "without", "mention",
                   "uncomplicated", "type", "due", "classified", "elsewhere", "disease", "disorder"})
_AS_TO = re.compile(r"\bas to [^,]*", re.I)   # "unspecified as to partial versus complete": no claim
_DEFAULT_FIRST = ("unspecified", "without", "closed", "initial")


@dataclass
class Refined:
    key: str
    code: str
    title: str
    billable: bool
    queries: list[str] = field(default_factory=list)
    considered: int = 1
    complete: bool = True


class Refiner:
    """Candidate codes below a prefix with their title stems, cached per release."""

    def __init__(self, db: Any, system: str) -> None:
        self.db = db
        self.system = system
        self._under: dict[str, list[tuple[str, str, str, frozenset[str]]]] = {}

    def candidates(self, prefix: str) -> list[tuple[str, str, str, frozenset[str]]]:
        got = self._under.get(prefix)
        if got is None:
            rows = self.db.prefix(prefix, limit=6000, kinds=("code",))
            got = [(r["key"], r["code"], r["title"], frozenset(term_stems(_AS_TO.sub("", r["title"]))))
                   for r in rows if r["billable"]]
            if len(self._under) > 20000:
                self._under.clear()
            self._under[prefix] = got
        return got

    def refine(self, raw: str, sent: Sentence) -> Refined | None:
        """The billable code under ``raw`` that the sentence supports best (None: not in the release)."""
        key = normalize_key(raw.replace("-", "").replace(".", ""))
        if not key:
            return None
        row = self.db.get(key)
        if row is not None and row["billable"]:
            if "unspecified" in row["title"].lower() and self.system == "icd10cm":
                # the index (an older edition, or its default) stops at an unspecified code:
                # a sibling the sentence names more exactly is the coder's choice (N18.9 -> N18.31)
                sib = self.candidates(key[:3])
                if len(sib) > 1:
                    got = self.choose(sib, sent, must=key)
                    if got.key != key:
                        return got
            return Refined(row["key"], row["code"], row["title"], True)
        prefix = key
        cands = self.candidates(prefix)
        while not cands and len(prefix) > 3:
            prefix = prefix[:-1]
            cands = self.candidates(prefix)
        if not cands:
            return None
        got = self.choose(cands, sent)
        if "unspecified" in got.title.lower() and len(prefix) > 3 and self.system == "icd10cm":
            wider = self.candidates(prefix[:-1])
            if len(wider) > len(cands):
                better = self.choose(wider, sent, must=got.key)
                if better.key != got.key:
                    return better
        return got

    def choose(self, cands: list[tuple[str, str, str, frozenset[str]]], sent: Sentence,
               must: str | None = None) -> Refined:
        """``must``: keep that code unless another scores strictly higher on stated words."""
        if len(cands) == 1:
            k, c, t, _s = cands[0]
            return Refined(k, c, t, True)
        bag = {s for s, toks in sent.bag.items() if any(not t.neg for t in toks)}
        if any(t.neg for t in sent.tokens):
            bag.add("without")
        common = frozenset.intersection(*(s for _k, _c, _t, s in cands))
        scored = []
        for k, c, t, stems in cands:
            distinct = stems - common
            matched = distinct & bag
            unmatched = distinct - bag - _SOFT
            score = 2.0 * len(matched) - 0.5 * len(unmatched) - (0.6 if "other" in distinct else 0.0)
            default = sum(1 for w in _DEFAULT_FIRST if w in distinct)
            scored.append((score, default, -len(stems), k, c, t, distinct, matched))
        scored.sort(key=lambda x: (-x[0], -x[1], -x[2], x[3]))
        best = scored[0]
        if must is not None:
            own = next(x for x in scored if x[3] == must)
            if len(best[7]) < 1 or best[0] <= own[0] + 1.0:
                best = own
        queries: list[str] = []
        if "unspecified" in best[6] or (len(scored) > 1 and scored[1][0] == best[0] and scored[1][1] == best[1]):
            words: list[str] = []
            for s in scored[1:]:
                for w in sorted(s[6] - _SOFT - best[6]):
                    if w not in words and not w.isdigit():
                        words.append(w)
            if words:
                queries.append("documentation does not specify: " + ", ".join(words[:8]))
        return Refined(best[3], best[4], best[5], True, queries, len(cands))

    def complete(self, prefix: str, sent: Sentence) -> Refined | None:
        """ICD-10-PCS: a complete code when one row of the table fits the sentence best on every
        axis it names; otherwise the prefix with the axes still open (``complete`` False)."""
        cands = self.candidates(prefix)
        if not cands:
            return None
        best = self.choose(cands, sent)
        if not best.queries:
            return best
        return Refined(prefix, prefix, best.title, False, best.queries, len(cands), complete=False)
