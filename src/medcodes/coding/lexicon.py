"""The official indexes, shaped for reading a note the way a coder reads the books.

A coder finds the main term of a condition in the Alphabetic Index, runs down its subterms
as far as the documentation supports (the ``with`` subterms presume the link, ICD-10-CM
convention I.A.15), follows ``see`` references, and uses the Table of Neoplasms (site x
behaviour) and the Table of Drugs and Chemicals (substance x intent). Procedures are found in
the ICD-10-PCS Index. :class:`Lexicon` holds those books, loaded once from the installed
index releases (the same releases search uses), and walks them against a sentence.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..search.build import SeeIndex, Term, load_terms
from .text import Sentence, Token, term_forms, term_stems

#: main terms too broad to code from alone: they need at least one matched subterm
GENERIC = frozenset({
    "disease", "disorder", "syndrome", "condition", "problem", "complaint", "finding", "history",
    "status", "type", "encounter", "examination", "visit", "follow", "admission", "patient",
    "presence", "use", "abnormal", "infection", "pain", "injury", "complication", "observation",
    "screening", "test", "care", "counseling", "therapy", "treatment", "procedure", "aftercare",
    "failure", "disturbance", "anomaly", "change", "defect", "deficiency", "lesion", "mass",
    "dependence", "abuse", "effect", "reaction", "insufficiency", "obstruction", "acute",
    "chronic", "left", "right", "stage", "old", "long", "term", "time", "day", "week", "hour",
    "mother", "father", "family", "give", "given", "supply", "per", "unit", "dose", "mg",
    "injection", "without", "with", "not", "no", "eye", "ear", "knee", "hip", "back", "hand",
    "leg", "arm", "foot", "skin", "blood", "heart", "lung", "kidney", "liver", "bone", "joint",
})


@dataclass
class Path:
    """A walk down one main term: the terms matched, the tokens they used, the codes found."""
    book: str
    terms: list[Term]
    used: list[Token]
    codes: list[str]
    see: str | None = None
    direct: int = 0          # subterms matched under the main term itself (before any see)

    @property
    def label(self) -> str:
        return ", ".join(_title(t) for t in self.terms)

    @property
    def weight(self) -> int:
        return len({t.stem for t in self.used})


def _title(t: Term) -> str:
    return t.title.split(",")[0] if t.level == 0 else t.title


@dataclass
class Book:
    name: str
    terms: dict[int, Term]
    stems: dict[int, tuple[str, ...]] = field(default_factory=dict)
    forms: dict[int, list[tuple[str, ...]]] = field(default_factory=dict)
    nemod: dict[int, tuple[str, ...]] = field(default_factory=dict)
    kids: dict[int, tuple[list[int], dict[str, list[int]]]] = field(default_factory=dict)
    kinfo: dict[int, tuple[int, Any]] = field(default_factory=dict)
    mains: dict[str, list[tuple[tuple[str, ...], int]]] = field(default_factory=dict)
    see: SeeIndex | None = None


class Lexicon:
    """The ICD-10-CM Alphabetic Index (+ External Cause Index, Neoplasm and Drug tables) and
    the ICD-10-PCS Index, as trees of stemmed terms."""

    def __init__(self, books: dict[str, Book]) -> None:
        self.books = books
        self._see_cache: dict[tuple[str, str], Term | None] = {}

    @classmethod
    def load(cls, conns: dict[str, sqlite3.Connection]) -> "Lexicon":
        """``conns``: book name -> connection of the index release that has it."""
        books: dict[str, Book] = {}
        for name, conn in conns.items():
            terms = load_terms(conn, {name}, pcs=(name == "pcs"))
            book = Book(name, terms)
            for t in terms.values():
                forms = term_forms(t.title, main=(t.level == 0)) if name != "pcs" else ([term_stems(t.title)] if t.title else [])
                book.forms[t.id] = forms
                book.stems[t.id] = forms[0] if forms else ()
                if t.level == 0:
                    for fs in forms:
                        book.mains.setdefault(fs[0], []).append((fs, t.id))
            if name != "pcs":
                for tid, nemod in conn.execute("SELECT id, nemod FROM index_term WHERE book = ? AND nemod != ''", (name,)):
                    if tid in terms:
                        book.nemod[tid] = term_stems(nemod)
            book.see = SeeIndex(terms, name)
            books[name] = book
        return cls(books)

    # ------------------------------------------------------------------ main terms
    def mains_in(self, book: str, sent: Sentence) -> Iterator[tuple[Term, list[Token]]]:
        """Main terms of ``book`` whose words all stand in the sentence, close together."""
        b = self.books.get(book)
        if b is None:
            return
        seen: set[int] = set()
        for tok in sent.tokens:
            for stems, tid in b.mains.get(tok.stem, ()):
                if tid in seen:
                    continue
                toks = [tok]
                ok = True
                for s in stems[1:]:
                    near = [t for t in sent.bag.get(s, ()) if abs(t.pos - tok.pos) <= len(stems) + 1]
                    if not near:
                        ok = False
                        break
                    toks.append(near[0])
                if ok:
                    seen.add(tid)
                    yield b.terms[tid], toks

    # ------------------------------------------------------------------ walking
    def walk(self, book: str, start: Term, used: list[Token], sent: Sentence, depth: int = 0) -> Path:
        """Run down from ``start`` taking, at each level, the subterm with most of its words
        in the sentence (``with`` subterms presumed linked; ``without`` ones need the words
        inside a without-phrase)."""
        b = self.books[book]
        best = self._down(b, start, sent, list(used), neg=bool(used) and all(t.neg for t in used))
        terms = [start] + [b.terms[tid] for tid, _toks in best]
        toks = list(used) + [t for _tid, ts in best for t in ts]
        for t in terms:   # nonessential modifiers the sentence states are part of what was coded
            toks.extend(sent.find(tuple(s for s in b.nemod.get(t.id, ()) if s in sent.bag)))
        codes: list[str] = []
        for t in reversed(terms):
            codes = [code for role, _c, _h, code in t.codes if role in ("code", "subcat", "codes", "see_codes", "see_tab", "tab")]
            if codes or t.see:      # a see reference at the deepest level wins over an ancestor's code
                break
        path = Path(book, terms, toks, codes, direct=len(best))
        if not codes and depth < 2:
            last = terms[-1]
            see = last.see or (start.see if last is start else None)
            if see and b.see is not None:
                target = self._see(b, see)
                if target is not None and target is not last:
                    sub = self.walk(book, target, [], sent, depth + 1)
                    path = Path(book, terms + sub.terms, toks + sub.used, sub.codes, see=see, direct=len(best))
        return path

    def _see(self, b: Book, see: str) -> Term | None:
        """The term a ``see`` reference names, looked up once per reference."""
        key = (b.name, see)
        try:
            return self._see_cache[key]
        except KeyError:
            got = self._see_cache[key] = b.see.find(see)
            return got

    def _down(self, b: Book, term: Term, sent: Sentence, used: list[Token] | None = None,
              neg: bool = False) -> list[tuple[int, list[Token]]]:
        """``neg``: the main term stands in a negated phrase; its subterms are read there too."""
        used = used or []
        best: list[tuple[int, list[Token]]] = []
        best_w = 0
        always, by_stem = self._kids(b, term)
        if not always and not by_stem:
            return best
        maybe = set(always)
        if len(by_stem) < len(sent.bag):
            bag = sent.bag
            for st, cids in by_stem.items():
                if st in bag:
                    maybe.update(cids)
        else:
            for st in sent.bag:
                got = by_stem.get(st)
                if got:
                    maybe.update(got)
        stated, negated = (sent.negated if neg else sent.stated), sent.negated
        kinfo = b.kinfo
        for cid in sorted(maybe):
            kind, info = kinfo[cid]
            if kind == _WITH:
                rest = self._down(b, b.terms[cid], sent, used, neg)
                w = sum(len(ts) for _i, ts in rest)
                if w > best_w:
                    best, best_w = [(cid, [])] + rest, w
                continue
            if kind == _NUMBERS:
                lo, hi = info
                if any(lo <= x <= hi + 0.0999 for x in sent.numbers):
                    rest = self._down(b, b.terms[cid], sent)
                    w = 2 + sum(len(ts) for _i, ts in rest)
                    if w > best_w:
                        best, best_w = [(cid, [])] + rest, w
                continue
            for head, tail, need, short in info:
                if not stated.issuperset(head) or (tail and not negated.issuperset(tail)):
                    continue
                toks = sent.find(need)
                if short and not _near(toks, used, sent):
                    continue
                rest = self._down(b, b.terms[cid], sent, used + toks, neg)
                w = len(need) + sum(len(ts) for _i, ts in rest)
                if w > best_w:
                    best, best_w = [(cid, toks)] + rest, w
        return best

    def _kids(self, b: Book, term: Term) -> tuple[list[int], dict[str, list[int]]]:
        """A term's subterms indexed by a word each form needs (only those a sentence can
        reach are tried); ``with`` groups and number ranges are always tried. Each subterm's
        forms are split once into the words stated outside and inside a without-phrase."""
        got = b.kids.get(term.id)
        if got is None:
            always: list[int] = []
            by_stem: dict[str, list[int]] = {}
            for cid in term.children:
                forms = b.forms.get(cid, ())
                if not forms:
                    continue
                rng = _RANGE.match(b.terms[cid].title)
                if forms[0] == ("with",) or rng:
                    always.append(cid)
                    b.kinfo[cid] = (_WITH, None) if forms[0] == ("with",) else (
                        _NUMBERS, (float(rng.group(1)), float(rng.group(2))))
                    continue
                split = []
                for stems in forms:
                    if stems[0] == "with":
                        stems = stems[1:]
                    cut = stems.index("without") if "without" in stems else len(stems)
                    need = stems[:cut] + stems[cut + 1:]
                    if need:
                        split.append((stems[:cut], stems[cut + 1:], need,
                                      any(x.isdigit() or len(x) <= 2 for x in need)))
                b.kinfo[cid] = (_FORMS, split)
                for f in forms:
                    key = next((x for x in f if x not in ("with", "without")), None)
                    if key is None:
                        always.append(cid)
                    else:
                        by_stem.setdefault(key, []).append(cid)
            got = b.kids[term.id] = (always, by_stem)
        return got

    def cells(self, book: str, term: Term) -> dict[str, str]:
        """A table row's cells: column heading -> code (Neoplasm and Drug tables)."""
        return {heading: code for role, _c, heading, code in term.codes if role == "cell" and heading}



_WITH, _NUMBERS, _FORMS = 0, 1, 2
_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$")


def _near(toks: list[Token], used: list[Token], sent: Sentence) -> bool:
    """Numbers and short words (``stage 2``, ``type 1``) count only beside a word already used."""
    if not used:
        return True
    short = [t for t in toks if t.stem.isdigit() or len(t.stem) <= 2]
    anchors = [t.pos for t in used] + [t.pos for t in toks if t not in short]
    return all(any(abs(t.pos - a) <= 2 for a in anchors) for t in short)
