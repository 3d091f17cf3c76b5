"""``Use additional code`` / ``code first`` / ``code also`` companions the note supports.

The Tabular's instructional notes name the codes that go with a code (guideline I.A.12-13,
I.B.7): ``E11.22`` "use additional code to identify stage of chronic kidney disease
(N18.1-N18.6)", ``E11`` "... control using: insulin (Z79.4)", ``N39.0`` "use additional code
(B95-B97) to identify infectious agent". A companion is proposed only when a sentence of the
note states it, outside any negated, historical or family-history phrase: the words the note
item describes it with (``insulin``), or the title words of the category it points into
(``Nicotine dependence``), or two or more words that set one of its codes apart (``E. coli``);
the billable code is then chosen among those the note item names the way :mod:`.refine`
chooses any code.
"""

from __future__ import annotations

import re
from typing import Any

from ..model import normalize_key
from .refine import _SOFT, Refined, Refiner
from ..search.text import QUALIFIERS
from .text import Sentence, Token, term_stems

_QUALIFIERS = frozenset(QUALIFIERS)

KINDS = ("useAdditionalCode", "codeFirst", "codeAlso")
_CODE = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_REF = re.compile(rf"\b({_CODE})(?:-?\s*-\s*({_CODE}))?-?")
#: words of a note item that say how to code, not what the note must state
_FILLER = frozenset(term_stems(
    "code codes identify to using use additional if applicable such as any associated specify when specified "
    "where presence status type of for the underlying condition conditions known also with"))
#: a companion pointing into more codes than this is too broad to choose from a sentence
_WIDEST = 400


class Companions:
    def __init__(self, refiner: Refiner) -> None:
        self.ref = refiner
        self._cands: dict[tuple[str, str | None], list[Any]] = {}
        self._items: dict[str, list[tuple[tuple[str, ...], list[tuple[str, str | None]]]]] = {}
        self._own: dict[str, frozenset[str]] = {}

    def items(self, text: str) -> list[tuple[tuple[str, ...], list[tuple[str, str | None]]]]:
        """A note item's description stems and the code references (prefix, or range) it names."""
        got = self._items.get(text)
        if got is None:
            desc = tuple(s for s in term_stems(_REF.sub(" ", text)) if s not in _FILLER)
            refs = [(normalize_key(a), normalize_key(b) if b else None) for a, b in _REF.findall(text)]
            got = self._items[text] = [(desc, refs)] if refs else []
        return got

    def candidates(self, lo: str, hi: str | None) -> list[Any]:
        key = (lo, hi)
        got = self._cands.get(key)
        if got is None:
            if hi is None:
                got = self.ref.candidates(lo)
            else:
                n = 0
                while n < min(len(lo), len(hi)) and lo[n] == hi[n]:
                    n += 1
                got = [] if n < 2 else [c for c in self.ref.candidates(lo[:n])
                                        if c[0][:len(lo)] >= lo and c[0][:len(hi)] <= hi]
            self._cands[key] = got
        return got

    def words(self, lo: str, hi: str | None) -> tuple[frozenset[str], tuple[str, ...]]:
        """Words that set the referenced codes apart from each other, and the words of their
        category's title (cached per reference)."""
        key = ("w", lo, hi)
        got = self._cands.get(key)
        if got is None:
            cands = self.candidates(lo, hi)
            common = frozenset.intersection(*(st for _k, _c, _t, st in cands)) if cands else frozenset()
            vocab = frozenset(w for _k, _c, _t, st in cands for w in st - common if w not in _SOFT)
            cat = self.ref.db.get(lo[:3])
            cat_need = tuple(s for s in term_stems(cat["title"]) if s not in _SOFT) if cat is not None else ()
            got = self._cands[key] = (vocab, cat_need)       # type: ignore[assignment]
        return got                                           # type: ignore[return-value]

    def find(self, item_text: str, host_title: str, sents: list[Sentence], where: dict[str, list[int]],
             blocked: list[tuple[int, int]], at: int) -> tuple[Refined, list[Token]] | None:
        """The companion code the note supports for one note item (sentences tried in ``order``;
        ``where``: each word the note states -> its sentences). Words of the host code's own title do not count:
        they are what the host already codes."""
        own = self._own.get(host_title)
        if own is None:
            own = self._own[host_title] = frozenset(term_stems(host_title)) | _QUALIFIERS
        stated = where.keys()
        for desc, refs in self.items(item_text):
            if desc and own.issuperset(desc):
                desc = ()
            said_desc = bool(desc) and stated >= set(desc)
            for lo, hi in refs:
                cands = self.candidates(lo, hi)
                if not cands or len(cands) > _WIDEST:
                    continue
                vocab, cat_need = self.words(lo, hi)
                if own.issuperset(cat_need):
                    cat_need = ()
                said_cat = bool(cat_need) and stated >= set(cat_need)
                apart = vocab - own
                if not said_desc and (len(cands) == 1 or (not said_cat and len(apart & stated) < 2)):
                    continue            # nothing in the whole note could support it: no sentence is read
                near: set[int] = set()
                for w in (apart | set(desc) | set(cat_need)) & stated:
                    near.update(where[w])
                maybe = []
                for i in near:
                    sent = sents[i]
                    here = apart & sent.stated
                    if len(cands) > 1 and not here:
                        continue
                    if not (bool(desc) and sent.stated.issuperset(desc)) and (len(cands) == 1 or (
                            not (cat_need and sent.stated.issuperset(cat_need)) and len(here) < 2)):
                        continue
                    maybe.append(i)
                for i in sorted(maybe, key=lambda i: (abs(i - at), i)):   # the host's sentence, then the nearest
                    got = self._support(cands, desc, cat_need, sents[i], blocked, own)
                    if got is not None:
                        return got
        return None

    def _support(self, cands: list[Any], desc: tuple[str, ...], cat_need: tuple[str, ...], sent: Sentence,
                 blocked: list[tuple[int, int]], own: frozenset[str]) -> tuple[Refined, list[Token]] | None:
        stated = sent.stated
        said_desc = bool(desc) and stated.issuperset(desc)
        if len(cands) == 1:
            if not said_desc:
                return None
            k, c, t, _s = cands[0]
            got, words = Refined(k, c, t, True), set(desc)
        else:
            said_cat = bool(cat_need) and not own.issuperset(cat_need) and stated.issuperset(cat_need)
            got = self.ref.choose(cands, sent)
            common = frozenset.intersection(*(s for _k, _c, _t, s in cands))
            title = next(s for k, _c, _t, s in cands if k == got.key)
            matched = {w for w in (title - common) & stated if w not in _SOFT and w not in own}
            if not matched or not (said_desc or said_cat or len(matched) >= 2):
                return None
            words = matched | (set(desc) if said_desc else set()) | (set(cat_need) if said_cat else set())
        toks = [t for w in sorted(words) for t in sent.bag.get(w, ()) if not t.neg][:len(words) * 2]
        if not toks or any(a < t.end and t.start < b for t in toks for a, b in blocked):
            return None
        return got, sorted(toks, key=lambda t: t.start)
