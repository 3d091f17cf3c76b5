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
from typing import Any

from . import text as _text
from .build import KIND_WEIGHT

_ARRAYS = ("f_tok_start", "f_toks", "f_len", "f_kind", "p_start", "p_data", "f_tgt_start",
           "f_tgt", "f_tgt_w", "c_f_start", "c_f", "c_bill")

MAX_DRIVER = 60000   # postings scanned at most for one query variant


@dataclass
class Candidate:
    """One query word resolved against the vocabulary."""

    word: str
    ids: dict[int, float]            # exact / typo token ids -> quality
    lo: int = 0                      # prefix range [lo, hi) of token ids (quality from length)
    hi: int = 0
    prefix_quality: float = 0.0

    def quality(self, tok: int) -> float:
        q = self.ids.get(tok, 0.0)
        if self.lo <= tok < self.hi:
            q = max(q, self.prefix_quality)
        return q

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
        if is_prefix and len(word) >= 1:
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
        fields = self.postings(driver)
        nwords = len(cands)
        fts, ftok = self.f_tok_start, self.f_toks
        kinds, flen = self.f_kind, self.f_len
        tgs, tg, tgw = self.f_tgt_start, self.f_tgt, self.f_tgt_w
        partial: list[int] = []
        for f in fields:
            toks = ftok[fts[f]:fts[f + 1]]
            q = max(driver.quality(t) for t in toks)
            ok = True
            for c in others:
                best = 0.0
                for t in toks:
                    v = c.quality(t)
                    if v > best:
                        best = v
                if best == 0.0:
                    ok = False
                    break
                q += best
            if not ok:
                partial.append(f)
                continue
            cover = min(1.0, nwords / max(1, flen[f]))
            s = KIND_WEIGHT[kinds[f]] * (q / nwords) * (0.55 + 0.45 * cover) * factor
            for j in range(tgs[f], tgs[f + 1]):
                cid = tg[j]
                sc = s * tgw[j] / 100.0
                old = scores.get(cid)
                if old is None or sc > old[0]:
                    scores[cid] = (sc, f)
        if cross and nwords > 1 and partial and len(partial) <= 20000:
            self._cross(cands, partial, factor * 0.8, scores)

    def _cross(self, cands: list[Candidate], fields: list[int], factor: float,
               scores: dict[int, tuple[float, int]]) -> None:
        """Codes whose words are spread over several of their fields."""
        tgs, tg = self.f_tgt_start, self.f_tgt
        seen: set[int] = set()
        for f in fields:
            for j in range(tgs[f], min(tgs[f + 1], tgs[f] + 40)):
                seen.add(tg[j])
        cfs, cf, fts, ftok = self.c_f_start, self.c_f, self.f_tok_start, self.f_toks
        for cid in seen:
            if cid in scores:
                continue
            total, best_f, best_n = 0.0, -1, 0
            ok = True
            fids = cf[cfs[cid]:cfs[cid + 1]]
            for c in cands:
                best = 0.0
                for f in fids:
                    for t in ftok[fts[f]:fts[f + 1]]:
                        v = c.quality(t)
                        if v > best:
                            best = v
                if best == 0.0:
                    ok = False
                    break
                total += best
            if not ok:
                continue
            for f in fids:
                n = sum(1 for c in cands if any(c.quality(t) for t in ftok[fts[f]:fts[f + 1]]))
                if n > best_n:
                    best_n, best_f = n, f
            scores[cid] = (factor * 0.9 * total / len(cands), best_f)

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


_ = Any
