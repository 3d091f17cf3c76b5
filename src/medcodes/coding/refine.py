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
#: a sibling search wider than this (S72 has ~1,800 codes) costs more than it finds
_WIDEST = 400
_CONNECTIVE = frozenset({"with"})
_DEFAULT_FIRST = ("unspecified", "without", "closed", "initial", "uncomplicated")


@dataclass
class Refined:
    key: str
    code: str
    title: str
    billable: bool
    queries: list[str] = field(default_factory=list)
    considered: int = 1
    complete: bool = True
    unstated: tuple[str, ...] = ()      # words of the chosen title that set it apart and the note does not say


@dataclass
class _Prepared:
    rows: list[tuple[int, bool, int, str, str, str, frozenset[str]]]
    inv: dict[str, list[int]]
    rest: list[int]
    index: dict[str, int]
    static: list[tuple[Any, ...]]      # each row scored with no word of its own stated


class Refiner:
    """Candidate codes below a prefix with their title stems, cached per release."""

    def __init__(self, db: Any, system: str) -> None:
        self.db = db
        self.system = system
        self._under: dict[str, list[tuple[str, str, str, frozenset[str]]]] = {}
        self._prep: dict[int, _Prepared] = {}

    def candidates(self, prefix: str) -> list[tuple[str, str, str, frozenset[str]]]:
        got = self._under.get(prefix)
        if got is None:
            rows = self.db.prefix(prefix, limit=6000, kinds=("code",))
            got = [(r["key"], r["code"], r["title"], frozenset(term_stems(_AS_TO.sub("", r["title"]))))
                   for r in rows if r["billable"]]
            if len(self._under) > 20000:
                self._under.clear()
                self._prep.clear()      # keyed by the lists' ids
            self._under[prefix] = got
        return got

    def _prepared(self, cands: list[tuple[str, str, str, frozenset[str]]]) -> "_Prepared":
        """Per candidate list: each title's words beyond those all share, an index from those
        words to the titles, and the titles in the order they rank when no word is stated."""
        got = self._prep.get(id(cands))
        if got is None or len(got.rows) != len(cands):
            common = frozenset.intersection(*(s for _k, _c, _t, s in cands))
            rows = []
            inv: dict[str, list[int]] = {}
            for i, (k, c, t, stems) in enumerate(cands):
                distinct = stems - common
                for w in distinct:
                    inv.setdefault(w, []).append(i)
                rows.append((sum(1 for w in distinct if w not in _SOFT), "other" in distinct,
                             sum(1 for w in _DEFAULT_FIRST if w in distinct), k, c, t, distinct))
            rest = sorted(range(len(rows)), key=lambda i: (0.5 * rows[i][0] + (0.6 if rows[i][1] else 0.0),
                                                           -rows[i][2], len(rows[i][5]), rows[i][3]))
            static = [(-(2.0 * 0 - 0.5 * n_hard - (0.6 if other else 0.0)), -default, len(t), k, c, t, distinct, frozenset())
                      for n_hard, other, default, k, c, t, distinct in rows]
            got = _Prepared(rows, inv, rest, {r[3]: i for i, r in enumerate(rows)}, static)
            if len(self._prep) > 20000:
                self._prep.clear()
            self._prep[id(cands)] = got
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
                if 1 < len(sib) <= _WIDEST:
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
            if len(cands) < len(wider) <= _WIDEST:
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
        bag = sent.stated | {"without"} if sent.any_neg else sent.stated
        # "with" alone says nothing about which title: "admitted with MI" must not pick the
        # one I21 title that has a "with" (I21.B); the words after it are the evidence
        bag = bag - _CONNECTIVE
        prep = self._prepared(cands)
        rows, inv, static = prep.rows, prep.inv, prep.static
        touched: set[int] = set()
        for w in bag:
            got = inv.get(w)
            if got:
                touched.update(got)
        # each entry sorts best first as it stands: (-score, -default, len(title), key, ...)
        scored = []
        for i in touched:
            n_hard, other, default, k, c, t, distinct = rows[i]
            matched = distinct & bag
            hard_unmatched = n_hard - sum(1 for w in matched if w not in _SOFT)
            score = 2.0 * len(matched) - 0.5 * hard_unmatched - (0.6 if other else 0.0)
            scored.append((-score, -default, len(t), k, c, t, distinct, matched))
        # titles sharing no stated word score what they lose (precomputed, best first): a few suffice
        n = 0
        for i in prep.rest:
            if i not in touched:
                scored.append(static[i])
                n += 1
                if n == 40:
                    break
        if must is not None and not any(x[3] == must for x in scored):
            scored.append(static[prep.index[must]])
        scored.sort()
        best = scored[0]
        if must is not None:
            own = next(x for x in scored if x[3] == must)
            if len(best[7]) < 1 or -best[0] <= -own[0] + 1.0:
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
        unstated = tuple(sorted(best[6] - best[7] - _SOFT))
        return Refined(best[3], best[4], best[5], True, queries, len(cands), unstated=unstated)

    def complete(self, prefix: str, sent: Sentence) -> Refined | None:
        """ICD-10-PCS: a complete code when one row of the table fits the sentence best on every
        axis it names; otherwise the prefix with the axes still open (``complete`` False)."""
        cands = self.candidates(prefix)
        if not cands:
            return None
        best = self.choose(cands, sent)
        if not best.queries and not best.unstated:
            return best
        others = sorted({w for _k, _c, _t, st in cands for w in st} - {w for w in term_stems(best.title)} - _SOFT)
        open_ = list(best.unstated) + [w for w in others if not w.isdigit()][:8]
        query = "documentation does not state: " + ", ".join(open_[:10])
        return Refined(prefix, prefix, f"ICD-10-PCS table row {prefix}: axes still open", False,
                       [query], len(cands), complete=False)
