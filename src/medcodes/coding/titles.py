"""Official titles as a bag-of-words index: a sentence that states every word of a title.

Used for HCPCS Level II (supplies and drugs have no alphabetic index) and, for ICD-10-CM, for
codes newer than the FY2017 Alphabetic Index (COVID-19, CKD stage 3a...): a code is proposed
from its title only when the sentence states all of the title's words (IDF-weighted share
``cover``), so this adds precise codes, never loose ones.
"""

from __future__ import annotations

import math
from typing import Any

from .text import Sentence, Token, term_stems

#: title words a note need not state for the title to fit
SOFT = frozenset({"unspecified", "other", "due", "with", "classified", "elsewhere", "of", "per",
                  "and", "or", "nos", "nec", "type", "initial", "encounter", "mention", "disease", "cause",
                  "the", "in", "to", "as", "being", "not"})


class TitleIndex:
    def __init__(self, db: Any) -> None:
        self.rows: list[tuple[str, str, str, frozenset[str]]] = []
        self.postings: dict[str, list[int]] = {}
        for key, code, title in db.conn.execute(
                "SELECT key, code, title FROM concept WHERE kind = 'code' AND billable = 1"):
            stems = frozenset(term_stems(title))
            n = len(self.rows)
            self.rows.append((key, code, title, stems))
            for s in stems:
                self.postings.setdefault(s, []).append(n)
        total = max(len(self.rows), 1)
        self.idf = {s: math.log(total / len(p)) for s, p in self.postings.items()}
        self.need: list[frozenset[str]] = []
        self.weight: list[float] = []
        #: rows by their required word when they need one, else by their two rarest required
        #: words: a title can be stated in full only if those words are
        self.by_pair: dict[str, dict[str, list[int]]] = {}
        self.single: dict[str, list[int]] = {}
        for n, (_k, _c, _t, stems) in enumerate(self.rows):
            need = frozenset(s for s in stems if s not in SOFT and (len(s) > 1 or s.isdigit()))
            self.need.append(need)
            self.weight.append(sum(self.idf[s] for s in need))
            if need:
                rare = sorted(need, key=lambda s: (self.idf[s], s), reverse=True)
                if len(rare) == 1:
                    self.single.setdefault(rare[0], []).append(n)
                else:
                    self.by_pair.setdefault(rare[0], {}).setdefault(rare[1], []).append(n)

    def matches(self, sent: Sentence, cover: float, min_words: int = 2) -> list[tuple[float, int, list[Token]]]:
        """(cover, row, tokens) of titles whose IDF-weighted required words the sentence states
        at ``cover`` or more, best first."""
        pos = sent.stated
        every = sent.words       # words inside a without-phrase count for "without" titles
        if cover >= 0.999:
            cands = set()
            for s in every:
                got = self.single.get(s)
                if got:
                    cands.update(got)
                pairs = self.by_pair.get(s)
                if pairs:
                    for s2 in every:
                        got = pairs.get(s2)
                        if got:
                            cands.update(got)
        else:      # a partial match must still hold one of the title's specific words
            cands = {r for s in pos if s not in SOFT and self.idf.get(s, 0.0) >= 2.5 for r in self.postings.get(s, ())}
        out = []
        whole = cover >= 0.999
        for r in cands:
            need = self.need[r]
            bag = every if "without" in need else pos
            if whole and not need <= bag:
                continue                # a title stated in full: one subset test rules most out
            have = need & bag
            words = sum(1 for s in have if not s.isdigit())
            if words < min_words and not (words >= 1 and len(have) == len(need) >= 2):
                continue
            got = sum(self.idf[s] for s in have)
            c = got / self.weight[r] if self.weight[r] else 0.0
            if c >= cover:
                out.append((c, got, r, sorted((sent.bag[s][0] for s in have), key=lambda t: (t.start, t.stem))))
        out.sort(key=lambda x: (-round(x[0], 2) if cover >= 0.999 else -x[1], -x[1], self.rows[x[2]][0]))
        return [(c, r, toks) for c, _g, r, toks in out]
