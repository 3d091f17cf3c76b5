"""The in-memory search index and its query evaluation.

Loaded from the compiled cache file (see :mod:`medcodes.search.build`):
flat arrays only, so loading is a few ``frombytes`` calls. A query is
evaluated as:

1. words -> candidate vocabulary ids per word: the exact token, any token
   the last (still being typed) word is a prefix of (one contiguous id range
   in the sorted vocabulary, found by bisect), or for an unknown word the
   tokens one edit away (delete/transpose/replace/insert);
2. the word with the fewest postings drives: its fields are checked for the
   other words (every word must be in the same field), scored, and spread to
   the codes they lead to;
3. when that finds too little, a code may also match with its words spread
   over several of its fields (``appendectomy`` in the PCS Index, ``percutaneous
   endoscopic`` in the title), at a lower score;
4. the same for each synonym variant of the query (abbreviations, lay terms),
   keeping each code's best score.

Display text (titles, index paths) stays in the cache's SQLite tables and is
read only for the page of hits returned.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from array import array
from dataclasses import dataclass
from pathlib import Path

from . import text as _text
from .build import KIND_WEIGHT

_ARRAYS = ("f_tok_start", "f_toks", "f_len", "f_kind", "p_start", "p_data", "f_tgt_start",
           "f_tgt", "f_tgt_w", "c_f_start", "c_f", "c_bill")

MAX_DRIVER = 60000   # postings scanned at most for one query variant
MAX_CROSS = 3000     # codes tried for a match spread over several fields
MAX_SCORED = 800     # matching fields scored exactly (the rest only counted)


@dataclass
class Candidate:
    """One query word resolved against the vocabulary."""

    word: str
    ids: dict[int, float]            # exact / typo token ids -> quality
    lo: int = 0                      # prefix range [lo, hi) of token ids (quality from length)
    hi: int = 0
    prefix_quality: float = 0.0
    idset: frozenset = frozenset()

    def quality(self, tok: int) -> float:
        q = self.ids.get(tok, 0.0)
        if self.lo <= tok < self.hi:
            q = max(q, self.prefix_quality)
        return q

    def hits(self, toks: array) -> bool:
        """Does a field (its sorted token ids) contain a token this word accepts?"""
        if self.hi > self.lo:
            i = bisect.bisect_left(toks, self.lo)
            if i < len(toks) and toks[i] < self.hi:
                return True
        return bool(self.ids) and not self.idset.isdisjoint(toks)

    def best(self, toks: array) -> float:
        """Quality of this word's best token in a field (0.0: not there)."""
        b = 0.0
        if self.ids:
            common = self.idset.intersection(toks)
            if common:
                b = max(self.ids[t] for t in common)
        if b < self.prefix_quality:
            i = bisect.bisect_left(toks, self.lo)
            if i < len(toks) and toks[i] < self.hi:
                b = self.prefix_quality
        return b

    def empty(self) -> bool:
        return not self.ids and self.hi <= self.lo


class Engine:
    """A compiled index loaded into memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
        blobs = {}
        vocab_bytes = b""
        for name, typecode, data in self.conn.execute("SELECT name, typecode, data FROM blob"):
            if name == "vocab":
                vocab_bytes = data
                continue
            a = array(typecode)
            a.frombytes(data)
            blobs[name] = a
        for name in _ARRAYS:
            setattr(self, name, blobs[name])
        self.vocab: list[str] = vocab_bytes.decode().split("\n") if vocab_bytes else []
        self.tok_id = {t: i for i, t in enumerate(self.vocab)}
        self.meta = {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}
        rows = self.conn.execute("SELECT system, chapter FROM code ORDER BY id").fetchall()
        self.systems = sorted({r[0] for r in rows})
        sys_ix = {s: i for i, s in enumerate(self.systems)}
        self.c_sys = array("B", [sys_ix[r[0]] for r in rows])
        chapters = sorted({r[1] or "" for r in rows})
        self.chapters = chapters
        ch_ix = {c: i for i, c in enumerate(chapters)}
        self.c_chapter = array("H", [ch_ix[r[1] or ""] for r in rows])
        self.f_static = array("f", [KIND_WEIGHT[k] * (0.55 + 0.45 / max(1, n)) for k, n in zip(self.f_kind, self.f_len)])

    def close(self) -> None:
        self.conn.close()

    # -------------------------------------------------------------- words -> tokens
    def candidate(self, word: str, is_prefix: bool) -> Candidate:
        tok = _text.stem(word)
        cand = Candidate(word, {})
        exact = self.tok_id.get(tok)
        if exact is not None:
            cand.ids[exact] = 1.0
        if word != tok and word in self.tok_id:
            cand.ids[self.tok_id[word]] = 1.0
        rare = all(self.p_start[t + 1] - self.p_start[t] < 20 for t in cand.ids)
        if is_prefix or (rare and len(word) >= 3 and not word.isdigit()):
            lo = bisect.bisect_left(self.vocab, word)
            hi = bisect.bisect_left(self.vocab, word + "\uffff")
            if hi > lo:
                cand.lo, cand.hi = lo, hi
                cand.prefix_quality = 0.75 + 0.2 * min(1.0, len(word) / 8)
        if cand.empty() and len(word) >= 4 and not word.isdigit():
            for variant in _text.edits1(word):
                v = self.tok_id.get(_text.stem(variant))
                if v is not None:
                    cand.ids[v] = 0.8
            if cand.empty() and is_prefix and len(word) >= 4:
                for variant in _text.edits1(word):
                    lo = bisect.bisect_left(self.vocab, variant)
                    if lo < len(self.vocab) and self.vocab[lo].startswith(variant):
                        hi = bisect.bisect_left(self.vocab, variant + "\uffff")
                        for t in range(lo, min(hi, lo + 50)):
                            cand.ids.setdefault(t, 0.7)
        cand.idset = frozenset(cand.ids)
        return cand

    def postings_size(self, cand: Candidate) -> int:
        p = self.p_start
        n = sum(p[t + 1] - p[t] for t in cand.ids)
        if cand.hi > cand.lo:
            n += p[cand.hi] - p[cand.lo]
        return n

    def postings(self, cand: Candidate) -> set[int]:
        p, d = self.p_start, self.p_data
        out: set[int] = set()
        for t in cand.ids:
            out.update(d[p[t]:p[t + 1]])
        if cand.hi > cand.lo:
            out.update(d[p[cand.lo]:p[cand.hi]])
        return out

    # -------------------------------------------------------------- evaluation
    def match(self, words: list[str], last_is_prefix: bool, factor: float,
              scores: dict[int, tuple[float, int]], cross: bool) -> None:
        """Score every code matching all ``words``; keep the best (score, field) per code."""
        cands = [self.candidate(w, last_is_prefix and i == len(words) - 1) for i, w in enumerate(words)]
        if not cands or any(c.empty() for c in cands):
            return
        order = sorted(range(len(cands)), key=lambda i: self.postings_size(cands[i]))
        driver = cands[order[0]]
        if self.postings_size(driver) > MAX_DRIVER:
            return
        others = [cands[i] for i in order[1:]]
        nwords = len(cands)
        fts, ftok, static = self.f_tok_start, self.f_toks, self.f_static
        tgs, tg, tgw = self.f_tgt_start, self.f_tgt, self.f_tgt_w
        fields = self.postings(driver)
        matched_set = set(fields)
        for c in others:
            matched_set = self._restrict(matched_set, c)
            if not matched_set:
                break
        partial = list(fields - matched_set) if cross else []
        if len(matched_set) > MAX_SCORED:
            # Score the shortest, best-weighted fields; the rest still count in the total.
            for f in matched_set:
                for j in range(tgs[f], tgs[f + 1]):
                    scores.setdefault(tg[j], (0.0, f))
            matched_set = set(sorted(matched_set, key=static.__getitem__, reverse=True)[:MAX_SCORED])
        matched: list[tuple[int, float]] = []
        dq = driver.best
        for f in matched_set:
            toks = ftok[fts[f]:fts[f + 1]]
            q = dq(toks)
            for c in others:
                q += c.best(toks)
            matched.append((f, q / nwords))
        for f, q in matched:
            cover = static[f] if nwords == 1 else self._cover(f, nwords)
            s = q * cover * factor
            for j in range(tgs[f], tgs[f + 1]):
                cid = tg[j]
                sc = s * tgw[j] * 0.01
                old = scores.get(cid)
                if old is None or sc > old[0]:
                    scores[cid] = (sc, f)
        if cross and nwords > 1 and partial and len(partial) <= 4000:
            self._cross(cands, partial, factor * 0.8, scores)

    def _restrict(self, fields: set[int], cand: Candidate) -> set[int]:
        """The fields of ``fields`` that also contain a token ``cand`` accepts (C-level set work)."""
        p, d = self.p_start, self.p_data
        if self.postings_size(cand) > 20 * len(fields):
            fts, ftok = self.f_tok_start, self.f_toks
            return {f for f in fields if cand.best(ftok[fts[f]:fts[f + 1]])}
        out: set[int] = set()
        for t in cand.ids:
            out |= fields.intersection(d[p[t]:p[t + 1]])
        if cand.hi > cand.lo:
            out |= fields.intersection(d[p[cand.lo]:p[cand.hi]])
        return out

    def _driver_tokens(self, driver: Candidate) -> list[tuple[int, float]]:
        toks = dict(driver.ids)
        for t in range(driver.lo, driver.hi):
            if t not in toks:
                toks[t] = driver.prefix_quality
        return list(toks.items())

    def _cover(self, f: int, nwords: int) -> float:
        return KIND_WEIGHT[self.f_kind[f]] * (0.55 + 0.45 * min(1.0, nwords / max(1, self.f_len[f])))

    def _cross(self, cands: list[Candidate], fields: list[int], factor: float,
               scores: dict[int, tuple[float, int]]) -> None:
        """Codes whose words are spread over several of their fields (all fields of a code pooled)."""
        tgs, tg = self.f_tgt_start, self.f_tgt
        seen: dict[int, int] = {}
        for f in fields:
            for j in range(tgs[f], min(tgs[f + 1], tgs[f] + 40)):
                seen.setdefault(tg[j], f)
            if len(seen) > MAX_CROSS:
                break
        cfs, cf, fts, ftok = self.c_f_start, self.c_f, self.f_tok_start, self.f_toks
        for cid, f0 in seen.items():
            if cid in scores or cfs[cid + 1] - cfs[cid] < 2:
                continue
            pool: set[int] = set()
            for f in cf[cfs[cid]:cfs[cid + 1]]:
                pool.update(ftok[fts[f]:fts[f + 1]])
            toks = array("I", sorted(pool))
            total = 0.0
            for c in cands:
                v = c.best(toks)
                if not v:
                    break
                total += v
            else:
                scores[cid] = (factor * 0.9 * total / len(cands), f0)

    # -------------------------------------------------------------- display
    def codes_info(self, ids: list[int]) -> dict[int, tuple[str, str, str, int, str]]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            f"SELECT id, system, code, title, billable, chapter FROM code WHERE id IN ({marks})", ids)
        return {r[0]: r[1:] for r in rows}

    def fields_info(self, ids: list[int]) -> dict[int, tuple[int, str]]:
        ids = [i for i in ids if i >= 0]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(f"SELECT id, kind, text FROM field WHERE id IN ({marks})", ids)
        return {r[0]: (r[1], r[2]) for r in rows}

    def prefix_codes(self, system: str, key: str, limit: int) -> tuple[list[int], int]:
        """Codes of ``system`` whose key starts with ``key``, in release order, and their count."""
        hi = key + "\uffff"
        total = self.conn.execute(
            "SELECT count(*) FROM code WHERE system = ? AND key >= ? AND key < ?", (system, key, hi)
        ).fetchone()[0]
        ids = [r[0] for r in self.conn.execute(
            "SELECT id FROM code WHERE system = ? AND key >= ? AND key < ? ORDER BY id LIMIT ?",
            (system, key, hi, limit))]
        return ids, total

    def memory_arrays(self) -> int:
        return sum(getattr(self, n).buffer_info()[1] * getattr(self, n).itemsize for n in _ARRAYS)


def load(path: Path) -> Engine:
    return Engine(path)

