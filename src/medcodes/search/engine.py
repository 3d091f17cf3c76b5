"""The in-memory search index and its query evaluation (vectorised with numpy).

Loaded from the compiled cache file (see :mod:`medcodes.search.build`):
flat arrays stored as raw bytes and wrapped with ``numpy.frombuffer``, so
loading costs a few blob reads. A query is evaluated as:

1. words -> a :class:`Candidate` per word: groups of vocabulary ids with a
   quality each: the exact token, the tokens the last (still being typed)
   word is a prefix of (one contiguous id range in the sorted vocabulary),
   or for an unknown word the tokens one edit away, found through the
   deletion neighbourhood of the vocabulary compiled into the index
   (SymSpell style);
   candidates are cached per (word, is_prefix);
2. the word with the fewest postings drives: its fields are checked for the
   other words (every word must be in the same field) with array
   operations (sorted-postings lookups, or each field's tokens against a
   token -> quality table), scored, and spread to the codes they lead to;
3. when that finds too little, a code may also match with its words spread
   over several of its fields (``appendectomy`` in the PCS Index, ``percutaneous
   endoscopic`` in the title), at a lower score;
4. the same for each synonym variant of the query (abbreviations, lay terms),
   keeping each code's best score in a :class:`Board`.

Display text (titles, index paths) stays in the cache's SQLite tables and is
read only for the page of hits returned.
"""

from __future__ import annotations

import bisect
from array import array
import json
import sqlite3
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import text as _text
from .build import CHUNK, KIND_WEIGHT, KINDS

_ARRAYS = ("f_tok_start", "f_toks", "f_len", "f_kind", "p_start", "p_data", "f_tgt_start",
           "f_tgt", "f_tgt_w", "c_f_start", "c_f", "c_bill", "c_sys", "c_chapter", "d_hash", "d_tok",
           "c_end", "c_up", "c_rank", "c_enc", "c_default")
_DTYPES = {"I": np.uint32, "i": np.int32, "B": np.uint8, "b": np.int8, "H": np.uint16, "f": np.float32}

MAX_DRIVER = 60000   # postings scanned at most for one query variant
MAX_CROSS = 3000     # codes tried for a match spread over several fields
CROSS_PER_FIELD = 40  # codes of one partial field tried, at most
CROSS_FEW_FIELDS = 1000  # ... or, when few fields are partial, up to this many (sharing MAX_CROSS)
MAX_PARTIAL = 4000   # partial fields beyond which no cross match is tried
CACHE_WORDS = 4096   # candidates kept per engine
CACHE_CHUNKS = 2048  # chunks of display text kept per engine
READ_WHOLE_CHUNKS = 256  # chunks of a display table read one by one before it is held whole
MAX_RELATIVES = 1000  # codes below the best matches checked for a query's laterality / encounter words
RELATIVES_PER_CODE = 60
HEADER_FACTOR = 0.95  # score of a code that is not billable (a header), relative to a billable one
WHOLE_WORD_PREFIX = 0.3  # a common whole token ("flu") as the start of a longer one ("fluoroscopy")
CROSS_PLAIN = 0.8     # a cross match led to by a long field scores down to this, relative to a plain one
FAMILY_MAX_OWN = 150   # a word the texts use more often than this is read as written
FAMILY_MAX_USES = 3000  # a family form used more often than this is not added (too broad to pay)
DOMINANT_RATIO = 20    # a family form used this many times more than the query's word is read in its place (a variant)
MAX_FAMILY = 2        # other forms of a word's family read, at most (the most used)
FAMILY_QUALITY = 0.85  # a word of the query word's Porter2 family (dislocated ~ dislocation)
TWO_EDITS_MIN = 7       # a word this long, with no token one edit away, may be read two edits away
TYPO_PREFIX_USES = 5    # a word that starts tokens used in fewer fields than this is also read as a misspelling
RARE_TYPO_RATIO = 8    # a word one edit away used 8x less than another one edit away is the less likely fix
OWN_KINDS_MAX = 2      # field kinds 0-2 (title, short title, inclusion term): a code's own texts
TOKEN_PENALTY = 0.003  # per counted word of a field: of two full matches, the shorter text ranks first


@dataclass
class Candidate:
    """One query word resolved against the vocabulary: token id ranges with a quality each."""

    word: str
    groups: list[tuple[int, int, float]]          # [lo, hi) token ids, quality 0..1
    size: int = 0                                 # postings entries (with repeats across tokens)
    _fields: np.ndarray | None = field(default=None, repr=False)
    _fq: np.ndarray | None = field(default=None, repr=False)
    _lut: np.ndarray | None = field(default=None, repr=False)

    def empty(self) -> bool:
        return not self.groups


@dataclass
class Board:
    """Each code's best (score, field) over every variant and pass of one query."""

    score: np.ndarray
    field: np.ndarray
    touched: list[np.ndarray] = field(default_factory=list)
    sorted_codes: np.ndarray | None = None

    def offer(self, cids: np.ndarray, sc: np.ndarray, fld: np.ndarray) -> None:
        """Keep ``sc`` where it beats the code's score (the first of equal scores wins)."""
        if not cids.size:
            return
        better = sc > self.score[cids]
        if not better.all():
            cids, sc, fld = cids[better], sc[better], fld[better]
            if not cids.size:
                return
        np.maximum.at(self.score, cids, sc)
        won = sc == self.score[cids]
        # fancy assignment keeps the last of repeated indices: reversed, the first winner stays
        self.field[cids[won][::-1]] = fld[won][::-1]
        self.touched.append(cids)
        self.sorted_codes = None

    def codes(self) -> np.ndarray:
        """Every code with a score, sorted by id."""
        if self.sorted_codes is None:
            if not self.touched:
                self.sorted_codes = np.zeros(0, dtype=np.int64)
            else:
                a = np.sort(np.concatenate(self.touched) if len(self.touched) > 1 else self.touched[0])
                keep = np.ones(a.size, dtype=bool)
                keep[1:] = a[1:] != a[:-1]
                self.sorted_codes = a[keep]
        return self.sorted_codes

    def has(self, cids: np.ndarray) -> np.ndarray:
        return self.score[cids] >= 0

    def reset(self) -> None:
        for cids in self.touched:
            self.score[cids] = -1.0
        self.touched.clear()
        self.sorted_codes = None


def _expand(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR gather: positions of every ``[start, end)`` range, their lengths and segment offsets."""
    lens = (ends - starts).astype(np.int64)
    total = int(lens.sum())
    offs = np.zeros(lens.size, dtype=np.int64)
    if lens.size > 1:
        np.cumsum(lens[:-1], out=offs[1:])
    pos = np.arange(total, dtype=np.int64) + np.repeat(starts.astype(np.int64) - offs, lens)
    return pos, lens, offs


class Engine:
    """A compiled index loaded into memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
        vocab_bytes = b""
        for name, typecode, data in self.conn.execute("SELECT name, typecode, data FROM blob"):
            if name == "vocab":
                vocab_bytes = data
            elif name in _ARRAYS:
                setattr(self, name, np.frombuffer(data, dtype=_DTYPES[typecode]))
        self.vocab: list[str] = vocab_bytes.decode().split("\n") if vocab_bytes else []
        self.tok_id = {t: i for i, t in enumerate(self.vocab)}
        self.meta = {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}
        self.systems: list[str] = self.meta["code_systems"]
        self.chapters: list[str] = self.meta["chapters"]
        self.initials: dict[str, list[str]] = self.meta.get("acronyms", {})
        self.defined: dict[str, list[str]] = self.meta.get("defined", {})
        self.operations: frozenset[str] = frozenset(self.meta.get("operations", ()))
        self.families: dict[str, list[int]] = self.meta.get("families", {})
        self.chunk = int(self.meta.get("chunk", CHUNK))
        self.n_codes = int(self.c_bill.size)
        self.n_tokens = len(self.vocab)
        kw = np.asarray(KIND_WEIGHT, dtype=np.float64)[self.f_kind]
        kw = kw * (1.0 - TOKEN_PENALTY * np.minimum(self.f_len, 30))
        self.f_kw = kw
        self.f_lenf = np.maximum(self.f_len, 1).astype(np.float64)
        self.f_static = kw * (0.55 + 0.45 / self.f_lenf)
        self.c_nf = np.diff(self.c_f_start.astype(np.int64))
        # a coder reports billable codes: a header (E11.6, a PCS table) ranks below its codes
        self.c_pref = np.where(self.c_bill == 0, HEADER_FACTOR, 1.0) * (self.c_rank * 0.01)
        self._cands: OrderedDict[tuple[str, bool], Candidate] = OrderedDict()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._chunks: dict[tuple[str, int], list[str]] = {}
        self._chunk_reads: dict[str, int] = {}
        self._whole: dict[str, tuple[bytes, array]] = {}

    def close(self) -> None:
        self.conn.close()

    def _chapter_mask(self, attr: str, system: str, wanted: tuple[str, ...]) -> np.ndarray:
        """Code id -> is a code of ``system`` in one of the chapters ``wanted``, computed once (as ``attr``)."""
        mask = getattr(self, attr, None)
        if mask is None:
            chapters = np.zeros(len(self.chapters) + 1, dtype=bool)
            chapters[[i for i, c in enumerate(self.chapters) if c in wanted]] = True
            sys_ok = np.zeros(len(self.systems) + 1, dtype=bool)
            if system in self.systems:
                sys_ok[self.systems.index(system)] = True
            mask = sys_ok[self.c_sys] & chapters[self.c_chapter]
            setattr(self, attr, mask)
        return mask

    def temporary_mask(self) -> np.ndarray:
        """Code id -> is a HCPCS Level II C or G code (temporary procedure codes)."""
        return self._chapter_mask("_temporary", "hcpcs", ("C", "G"))

    def imaging_mask(self) -> np.ndarray:
        """Code id -> is an ICD-10-PCS imaging or nuclear medicine code (sections B and C)."""
        return self._chapter_mask("_imaging", "icd10pcs", ("B", "C"))

    #: bits of :meth:`code_classes`
    CM, PCS, HCPCS, REASON, TEMPORARY, IMAGING, STATUS = 1, 2, 4, 8, 16, 32, 64

    def code_classes(self) -> np.ndarray:
        """Code id -> bits: its system (CM, PCS, HCPCS) and the masks a query's factors use (one gather
        a query instead of one per mask), computed once."""
        cls = getattr(self, "_classes", None)
        if cls is None:
            cls = np.zeros(self.n_codes, dtype=np.uint8)
            for bit, system in ((self.CM, "icd10cm"), (self.PCS, "icd10pcs"), (self.HCPCS, "hcpcs")):
                if system in self.systems:
                    cls[self.c_sys == self.systems.index(system)] |= bit
            for bit, mask in ((self.REASON, self.reason_mask()), (self.TEMPORARY, self.temporary_mask()),
                              (self.IMAGING, self.imaging_mask()), (self.STATUS, self.status_mask())):
                cls[mask] |= bit
            self._classes = cls
        return cls

    def drug_fields(self) -> np.ndarray:
        """Field id -> 1 for a Table of Drugs and Chemicals entry, else 0 (uint8; id -1, a code found by
        its code, reads the extra last entry: 0), computed once."""
        d = getattr(self, "_drug_fields", None)
        if d is None:
            d = np.zeros(self.f_kind.size + 1, dtype=np.uint8)
            d[:-1] = self.f_kind == KINDS.index("drug")
            self._drug_fields = d
        return d

    def reason_mask(self) -> np.ndarray:
        """Code id -> is an ICD-10-CM chapter 21 code (Z00-Z99: encounters for a service, status,
        history): the reason for a procedure, not a condition."""
        return self._chapter_mask("_reason", "icd10cm", ("CHAPTER21",))

    def status_mask(self) -> np.ndarray:
        """Code id -> is an ICD-10-CM status, history or aftercare code (Z40-Z53, Z77-Z99), read once.

        These say that a procedure was done or a device is present (Z94.4 "Liver transplant
        status", Z96.41 "Presence of insulin pump"): a coder picks them only when asked so.
        """
        mask = getattr(self, "_status", None)
        if mask is None:
            mask = np.zeros(self.n_codes, dtype=bool)
            ids = [r[0] for r in self.conn.execute(
                "SELECT id FROM code WHERE system = 'icd10cm' AND ((key >= 'Z40' AND key < 'Z54') "
                "OR (key >= 'Z77' AND key < 'Z9\uffff'))")]
            if ids:
                mask[np.asarray(ids, dtype=np.int64)] = True
            self._status = mask
        return mask

    def board(self, name: str = "board") -> Board:
        """A per-thread, all-empty score board (``reset`` it after the query)."""
        b = getattr(self._local, name, None)
        if b is None:
            b = Board(np.full(self.n_codes, -1.0), np.zeros(self.n_codes, dtype=np.int64))
            setattr(self._local, name, b)
        return b

    # -------------------------------------------------------------- words -> tokens
    def candidate(self, word: str, is_prefix: bool) -> Candidate:
        key = (word, is_prefix)
        with self._lock:
            cand = self._cands.get(key)
            if cand is not None:
                self._cands.move_to_end(key)
                return cand
        cand = self._candidate(word, is_prefix)
        with self._lock:
            self._cands[key] = cand
            if len(self._cands) > CACHE_WORDS:
                self._cands.popitem(last=False)
        return cand

    def _candidate(self, word: str, is_prefix: bool) -> Candidate:
        tok = _text.stem(word)
        ids: dict[int, float] = {}
        exact = self.tok_id.get(tok)
        if exact is not None:
            ids[exact] = 1.0
        if word != tok and word in self.tok_id:
            ids[self.tok_id[word]] = 1.0
        p = self.p_start
        groups: list[tuple[int, int, float]] = []
        rare = all(int(p[t + 1]) - int(p[t]) < 20 for t in ids)
        if is_prefix or (rare and len(word) >= 3 and not word.isdigit()):
            lo = bisect.bisect_left(self.vocab, word)
            hi = bisect.bisect_left(self.vocab, word + "\uffff")
            if hi > lo:
                # a word still being typed: the longer, the surer; a word that is already a whole
                # token of the index counts half as the start of another, less when the index uses it
                # often ("flu" is rarely "fluoroscopy" being typed)
                q = 0.55 + 0.4 * min(1.0, len(word) / 8) if len(word) < 4 else 0.75 + 0.2 * min(1.0, len(word) / 8)
                groups.append((lo, hi, q * ((0.5 if rare else WHOLE_WORD_PREFIX) if ids else 1.0)))
        if not ids and len(word) >= 4 and not word.isdigit():
            # no token is this word: a misspelling, unless it starts words the texts use ("diab"); a
            # word that only starts rare tokens ("oedema": "oedematien" once) may be both
            if not groups:
                ids = self._typos(word, is_prefix)
            elif len(word) >= 5 and sum(int(p[hi]) - int(p[lo]) for lo, hi, _q in groups) < TYPO_PREFIX_USES:
                ids = self._typos(word, False)
        own = int(p[exact + 1]) - int(p[exact]) if exact is not None else 0
        if len(word) >= 4 and word.isalpha() and self.families and own < FAMILY_MAX_OWN:
            # the other forms of the word's family the texts use more than this one ("collapsed" ->
            # "collapse", "dislocated" -> "dislocation"), at a lower quality
            more = [(int(p[t + 1]) - int(p[t]), t) for t in self.families.get(_text.family(word), ()) if t not in ids]
            for n, t in sorted(more, reverse=True)[:MAX_FAMILY]:
                if own < n <= FAMILY_MAX_USES:
                    ids[t] = FAMILY_QUALITY
        if exact is not None and len(word) >= 3:
            # the other word for the same body part, when the texts use it more ("spine": "spinal stenosis",
            # "bowel": "intestine"), at the family forms' lower quality
            for other in _text.body_forms(tok):
                t = self.tok_id.get(other)
                if t is not None and t not in ids and own < int(p[t + 1]) - int(p[t]) <= FAMILY_MAX_USES:
                    ids[t] = FAMILY_QUALITY
        if len(word) >= 4 and word.isalpha() and self.families:
            # the ICD-10-PCS root operation of the word's family, however often either is used: a
            # procedure's verb or short noun reads as the operation its titles name ("kidney transplant"
            # -> "Transplantation of Right Kidney", "insert" -> "Insertion", "replace" -> "Replacement")
            for t in self.families.get(_text.family(word), ()):
                if t not in ids and t in self._operation_ids():
                    ids[t] = FAMILY_QUALITY
        groups.extend((t, t + 1, q) for t, q in ids.items())
        groups.sort(key=lambda g: g[2])            # ascending quality: later (better) ones win
        size = sum(int(p[hi]) - int(p[lo]) for lo, hi, _q in groups)
        return Candidate(word, groups, size)

    def _operation_ids(self) -> frozenset[int]:
        """Token ids of the ICD-10-PCS root operations (computed once)."""
        ids = getattr(self, "_op_ids", None)
        if ids is None:
            ids = self._op_ids = frozenset(t for op in self.operations
                                           for t in (self.tok_id.get(_text.stem(op)),) if t is not None)
        return ids

    def _typos(self, word: str, is_prefix: bool) -> dict[int, float]:
        """Tokens one edit away (quality 0.8); else, while typing, tokens starting one edit away (0.7)."""
        ids: dict[int, float] = {}
        stem = _text.stem(word)
        near = self.near(word) | (self.near(stem) if stem != word else set())
        ids_one = bool(near)
        if not near:
            # sound-alike spellings two or more edits away ("lymfoma", "nuemonia"): respell, then one edit
            for variant in _text.respellings(word):
                t = self.tok_id.get(_text.stem(variant))
                near |= {t} if t is not None else self.near(variant)
        if not near and len(word) >= 5:
            # two letters swapped and one more slip ("nuemonia": neumonia, pneumonia)
            for i in range(len(word) - 1):
                if word[i] != word[i + 1]:
                    near |= self.near(word[:i] + word[i + 1] + word[i] + word[i + 2:])
        far: set[int] = set()
        if not ids_one and len(word) >= TWO_EDITS_MIN:
            far = self.near2(stem) - near
        if near or far:
            # of several words, the ones the texts use far less often are the less likely meaning
            # ("artheritis": arthritis before arteritis; "cirosis": cirrhosis, two letters left out, before
            # pyrosis, respelled and one edit); two plain edits count below one edit or a respelling
            p = self.p_start
            uses = {t: int(p[t + 1]) - int(p[t]) for t in near | far}
            top = max(uses.values())
            for t, n in uses.items():
                common = n * RARE_TYPO_RATIO >= top
                if t in near:
                    ids[t] = 0.8 if common else (0.72 if ids_one else 0.66)
                else:
                    ids[t] = 0.72 if common else 0.66
        if not ids and is_prefix:
            for variant in _text.edits1(word):
                lo = bisect.bisect_left(self.vocab, variant)
                if lo < len(self.vocab) and self.vocab[lo].startswith(variant):
                    hi = bisect.bisect_left(self.vocab, variant + "\uffff")
                    for t in range(lo, min(hi, lo + 50)):
                        ids.setdefault(t, 0.7)
        return ids

    def near(self, word: str) -> set[int]:
        """Vocabulary tokens within one edit (delete, insert, replace, transpose) of ``word``.

        Through the vocabulary's deletion neighbourhood compiled into the index
        (crc32 of every token and of its one-character deletions -> token id):
        the tokens sharing a key with ``word`` or one of its deletions, checked.
        """
        keys = {word} | {word[:i] + word[i + 1:] for i in range(len(word))}
        h = np.fromiter((zlib.crc32(k.encode()) for k in keys), dtype=np.uint32, count=len(keys))
        lo = np.searchsorted(self.d_hash, h, "left")
        hi = np.searchsorted(self.d_hash, h, "right")
        out: set[int] = set()
        for a, b in zip(lo.tolist(), hi.tolist()):
            for t in self.d_tok[a:b].tolist():
                if _one_edit(word, self.vocab[t]):
                    out.add(t)
        return out

    def dominant_form(self, word: str) -> str | None:
        """The form of ``word``'s Porter2 family the texts use far more, when that is too common to be added
        to the word's own candidate (``fractured``, 14 fields -> ``fracture``, 28,748): read as a variant."""
        if len(word) < 4 or not word.isalpha() or not self.families:
            return None
        p = self.p_start
        t = self.tok_id.get(_text.stem(word))
        own = int(p[t + 1]) - int(p[t]) if t is not None else 0
        if own >= FAMILY_MAX_OWN:
            return None
        best = max(self.families.get(_text.family(word), ()), key=lambda x: int(p[x + 1]) - int(p[x]), default=None)
        if best is None or best == t:
            return None
        n = int(p[best + 1]) - int(p[best])
        return self.vocab[best] if n > FAMILY_MAX_USES and n >= DOMINANT_RATIO * max(own, 1) else None

    def near_words(self, word: str) -> list[str]:
        """The vocabulary tokens one edit away from ``word`` (as words)."""
        return [self.vocab[t] for t in self.near(word)]

    def near2(self, word: str) -> set[int]:
        """Vocabulary tokens two edits away (OSA distance) that share a one-deletion key with one of
        ``word``'s one- or two-character deletions (``hemmorhoids`` -> ``hemorrhoids``). Only for a long
        word no token lies within one edit of: about len(word)^2 / 2 hash probes."""
        from rapidfuzz.distance import OSA

        n = len(word)
        keys = {word[:i] + word[i + 1:] for i in range(n)}
        keys |= {k[:j] + k[j + 1:] for k in keys for j in range(n - 1)}
        # ... and its one-letter insertions, which meet a token's one-letter deletions when two letters were
        # left out ("colestrol": cholesterol)
        keys |= {word[:i] + c + word[i:] for i in range(n + 1) for c in _text._ALPHABET}
        h = np.fromiter((zlib.crc32(k.encode()) for k in keys), dtype=np.uint32, count=len(keys))
        lo = np.searchsorted(self.d_hash, h, "left")
        hi = np.searchsorted(self.d_hash, h, "right")
        cand = {t for a, b in zip(lo.tolist(), hi.tolist()) for t in self.d_tok[a:b].tolist()}
        return {t for t in cand if OSA.distance(word, self.vocab[t], score_cutoff=2) <= 2}

    def is_token(self, word: str) -> bool:
        """Is ``word`` a token of the index (in two fields at least)?"""
        t = self.tok_id.get(word)
        if t is None:
            t = self.tok_id.get(_text.stem(word))
        return t is not None and int(self.p_start[t + 1]) - int(self.p_start[t]) >= 2

    def known(self, word: str) -> bool:
        """Is ``word`` a word of the index (a token with a few fields at least)?"""
        t = self.tok_id.get(_text.stem(word))
        return t is not None and int(self.p_start[t + 1]) - int(self.p_start[t]) >= 5

    # -------------------------------------------------------------- candidate postings
    def fields_of(self, cand: Candidate) -> tuple[np.ndarray, np.ndarray]:
        """The fields holding a token of ``cand`` (sorted, unique) and the best quality in each."""
        if cand._fields is None:
            p, d = self.p_start, self.p_data
            if len(cand.groups) == 1:
                lo, hi, q = cand.groups[0]
                f = d[int(p[lo]):int(p[hi])]
                if hi - lo > 1:
                    f = np.unique(f)
                fq = np.full(f.size, q)
            else:
                parts = [d[int(p[lo]):int(p[hi])] for lo, hi, _q in cand.groups]
                quals = np.concatenate([np.full(x.size, q) for x, (_l, _h, q) in zip(parts, cand.groups)])
                allf = np.concatenate(parts)
                order = np.lexsort((quals, allf))
                allf, quals = allf[order], quals[order]
                last = np.ones(allf.size, dtype=bool)
                last[:-1] = allf[1:] != allf[:-1]
                f, fq = allf[last], quals[last]
            cand._fields, cand._fq = f, fq
        return cand._fields, cand._fq  # type: ignore[return-value]

    def lut(self, cand: Candidate) -> np.ndarray:
        """Token id -> quality of ``cand`` (0.0: not accepted)."""
        if cand._lut is None:
            lut = np.zeros(self.n_tokens + 1, dtype=np.float64)
            for lo, hi, q in cand.groups:
                lut[lo:hi] = q
            cand._lut = lut
        return cand._lut

    def cheap_postings(self, cand: Candidate, against: int) -> bool:
        """Is looking ``cand`` up in its own sorted postings cheaper than scanning ``against`` fields' tokens?"""
        if cand._fields is not None:
            return True
        single = len(cand.groups) == 1 and cand.groups[0][1] - cand.groups[0][0] == 1
        return single or cand.size <= 4 * against

    def in_fields(self, cand: Candidate, fields: np.ndarray) -> np.ndarray:
        """Best quality of ``cand`` in each of ``fields`` (0.0: absent), from its postings."""
        cf, cq = self.fields_of(cand)
        if not cf.size:
            return np.zeros(fields.size)
        if fields.size * 4 >= cf.size:
            # many fields asked: spread the word's qualities over a per-thread table of every
            # field, read them, clear them (no binary search per field)
            table = self._field_table()
            table[cf] = cq
            try:
                return table[fields]
            finally:
                table[cf] = 0.0
        pos = np.searchsorted(cf, fields)
        pos[pos >= cf.size] = cf.size - 1
        return np.where(cf[pos] == fields, cq[pos], 0.0)

    def _field_table(self) -> np.ndarray:
        """A per-thread array of zeros, one per field (callers put values in and take them out)."""
        t = getattr(self._local, "field_table", None)
        if t is None:
            t = self._local.field_table = np.zeros(self.f_kind.size)
        return t

    def field_tokens(self, fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The token ids of ``fields``, concatenated, and where each field's run starts."""
        st = self.f_tok_start
        pos, _lens, offs = _expand(st[fields], st[fields + 1])
        return self.f_toks[pos], offs

    # -------------------------------------------------------------- evaluation
    def match(self, words: list[str], last_is_prefix: bool, factor: float, board: Board,
              cross: bool = False) -> tuple[list[Candidate], np.ndarray] | None:
        """Score every code matching all ``words``; the board keeps the best (score, field) per code.

        Returns the words' candidates and the driver's *partial* fields (those lacking some
        other word), for :meth:`cross`; with ``cross`` true, runs it at once.
        """
        cands = [self.candidate(w, last_is_prefix and i == len(words) - 1) for i, w in enumerate(words)]
        if not cands or any(c.empty() for c in cands):
            return None
        order = sorted(range(len(cands)), key=lambda i: cands[i].size)
        driver = cands[order[0]]
        if driver.size > MAX_DRIVER:
            return None
        others = [cands[i] for i in order[1:]]
        nwords = len(cands)
        fields, q = self.fields_of(driver)
        if not fields.size:
            return None
        if others:
            total = q.copy()
            ok = np.ones(fields.size, dtype=bool)
            ftoks: list[tuple[np.ndarray, np.ndarray]] = []
            for c in others:
                best = self._in_each_field(c, fields, ftoks)
                ok &= best > 0
                total += best
            matched, q = fields[ok], total[ok] / nwords
            partial = fields[~ok]
            cover = self.f_kw[matched] * (0.55 + 0.45 * np.minimum(1.0, nwords / self.f_lenf[matched]))
        else:
            matched, partial = fields, fields[:0]
            cover = self.f_static[matched]
        if matched.size:
            s = q * cover * factor
            pos, lens, _offs = _expand(self.f_tgt_start[matched], self.f_tgt_start[matched + 1])
            cids = self.f_tgt[pos].astype(np.int64)
            board.offer(cids, np.repeat(s, lens) * self.f_tgt_w[pos] * 0.01 * self.c_pref[cids],
                        np.repeat(matched.astype(np.int64), lens))
        if cross:
            self.cross(cands, partial, factor, board)
        return cands, partial

    def cross(self, cands: list[Candidate], fields: np.ndarray, factor: float, board: Board) -> None:
        """Codes whose words are spread over several of their fields (all fields of a code pooled).

        ``fields`` are a :meth:`match`'s partial fields; its codes score ``0.8 * factor`` at most.
        """
        if len(cands) < 2 or not 0 < fields.size <= MAX_PARTIAL:
            return
        factor *= 0.8
        tgs = self.f_tgt_start
        starts = tgs[fields].astype(np.int64)
        # each field's first codes; a few fields (an ICD-10-PCS Index term naming a whole table,
        # "Colectomy, see Resection 0DT") share the budget, so the query's body part can pick one
        per_field = max(CROSS_PER_FIELD, min(CROSS_FEW_FIELDS, MAX_CROSS // fields.size))
        ends = np.minimum(tgs[fields + 1].astype(np.int64), starts + per_field)
        pos, lens, _offs = _expand(starts, ends)
        cids = self.f_tgt[pos].astype(np.int64)
        f0 = np.repeat(fields.astype(np.int64), lens)
        uniq, first = np.unique(cids, return_index=True)
        keep = np.sort(first)[:MAX_CROSS + CROSS_PER_FIELD]
        cids, f0 = cids[keep], f0[keep]
        ok = ~board.has(cids) & (self.c_nf[cids] >= 2)
        cids, f0 = cids[ok], f0[ok]
        if not cids.size:
            return
        cfs = self.c_f_start
        fpos, _flens, foffs = _expand(cfs[cids], cfs[cids + 1])
        total = np.zeros(cids.size)
        ok = np.ones(cids.size, dtype=bool)
        for best in self._pooled(self.c_f[fpos], foffs, cands):
            ok &= best > 0
            total += best
        if ok.any():
            # the field that led to the code says how plainly it names the rarest word ("Palpitations"
            # as a title, not "Palpitations > psychogenic")
            plain = CROSS_PLAIN + (1.0 - CROSS_PLAIN) * self.f_static[f0[ok]]
            board.offer(cids[ok], factor * 0.9 * total[ok] / len(cands) * self.c_pref[cids[ok]] * plain, f0[ok])

    def relatives(self, cids: np.ndarray, limit: int = MAX_RELATIVES) -> tuple[np.ndarray, np.ndarray]:
        """Codes below each of ``cids`` (or, for a code with none, below its parent): where the
        lateral and encounter variants of a code the words found are. Returns (relative, from)."""
        cids = cids.astype(np.int64)
        lo = cids + 1
        hi = self.c_end[cids].astype(np.int64)
        leaf = hi <= lo
        up = self.c_up[cids[leaf]].astype(np.int64)
        lo[leaf], hi[leaf] = up + 1, self.c_end[up].astype(np.int64)
        hi = np.minimum(hi, lo + RELATIVES_PER_CODE)
        keep = hi > lo
        pos, lens, _offs = _expand(lo[keep], hi[keep])
        pos, src = pos[:limit], np.repeat(cids[keep], lens)[:limit]
        return pos, src

    def any_of(self, words: tuple[str, ...]) -> Candidate:
        """One candidate accepting any of ``words`` (their exact tokens), cached."""
        key = ("\x00any", words)
        with self._lock:
            cand = self._cands.get(key)  # type: ignore[arg-type]
        if cand is None:
            ids = sorted({t for w in words for t in (self.tok_id.get(_text.stem(w)),) if t is not None})
            p = self.p_start
            cand = Candidate(" ".join(words), [(t, t + 1, 1.0) for t in ids],
                             sum(int(p[t + 1]) - int(p[t]) for t in ids))
            with self._lock:
                self._cands[key] = cand  # type: ignore[index]
        return cand

    def have_words(self, cids: np.ndarray, cands: list[Candidate], own: bool = False) -> np.ndarray:
        """Which of ``cids`` have every one of ``cands`` somewhere in their fields (pooled); with
        ``own``, in their own texts only (title, short title, inclusion terms: where ICD-10-CM
        states a side or an encounter; an Index path's "left" is "inadvertently left in operation
        wound", not the side)."""
        ok = np.ones(cids.size, dtype=bool)
        if not cids.size or not cands:
            return ok
        has_field = self.c_nf[cids] > 0
        ok &= has_field
        if not has_field.any():
            return ok
        sub_cids = cids[has_field] if not has_field.all() else cids
        cfs = self.c_f_start
        fpos, _flens, offs = _expand(cfs[sub_cids], cfs[sub_cids + 1])
        fields = self.c_f[fpos]
        keep = self.f_kind[fields] <= OWN_KINDS_MAX if own else None
        sub_ok = np.ones(sub_cids.size, dtype=bool)
        toks: list[tuple[np.ndarray, np.ndarray]] = []
        for c in cands:
            got = self._in_each_field(c, fields, toks)
            if keep is not None:
                got = np.where(keep, got, 0.0)
            sub_ok &= np.maximum.reduceat(got, offs) > 0
        ok[has_field] = sub_ok
        return ok

    def _pooled(self, cf: np.ndarray, offs: np.ndarray, cands: list[Candidate]) -> Iterator[np.ndarray]:
        """For each of ``cands``, its best quality over each code's fields pooled (0.0: absent).

        ``cf`` holds the codes' fields one code after another, ``offs`` where each code's run
        starts (no run empty). A word with few postings is looked up in them (a binary search
        per field); another is read from the fields' tokens, gathered once for all words.
        """
        toks: list[tuple[np.ndarray, np.ndarray]] = []
        for c in cands:
            yield np.maximum.reduceat(self._in_each_field(c, cf, toks), offs)

    def _in_each_field(self, c: Candidate, fields: np.ndarray,
                       toks: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Word candidate ``c``'s best score in each of ``fields``: a word with few postings by a binary
        search per field, another from the fields' tokens (gathered into ``toks`` once, for all words)."""
        if self.cheap_postings(c, fields.size):
            return self.in_fields(c, fields)
        if not toks:
            toks.append(self.field_tokens(fields))
        return np.maximum.reduceat(self.lut(c)[toks[0][0]], toks[0][1])

    # -------------------------------------------------------------- filters
    def accept(self, sys_ok: set[int], billable: bool | None,
               ch_ok: set[int] | None) -> Callable[[np.ndarray], np.ndarray]:
        """A mask function: which of the given code ids pass the system / billable / chapter filters."""
        slut = np.zeros(len(self.systems) + 1, dtype=bool)
        slut[list(sys_ok)] = True
        clut = None
        if ch_ok is not None:
            clut = np.zeros(len(self.chapters) + 1, dtype=bool)
            clut[list(ch_ok)] = True
        c_sys, c_bill, c_ch = self.c_sys, self.c_bill, self.c_chapter

        def mask(cids: np.ndarray) -> np.ndarray:
            m = slut[c_sys[cids]]
            if billable is not None:
                m &= (c_bill[cids] == 1) == billable
            if clut is not None:
                m &= clut[c_ch[cids]]
            return m

        return mask

    # -------------------------------------------------------------- display
    def _texts(self, table: str, ids: list[int]) -> list[str]:
        """Display texts of ``table`` (``field_text`` or ``code_text``).

        Read a chunk at a time at first (a one-off query reads a few chunks); a table read
        chunk by chunk :data:`READ_WHOLE_CHUNKS` times is then held whole: one bytes object
        and the offsets of its texts, so a long-lived process (the server) answers every
        page of hits without a query or a split.
        """
        whole = self._whole.get(table)
        if whole is not None:
            data, starts = whole
            return [data[starts[i]:starts[i + 1] - 1].decode() for i in ids]
        cache, size, out = self._chunks, self.chunk, []
        for i in ids:
            key = (table, i // size)
            chunk = cache.get(key)
            if chunk is None:
                self._chunk_reads[table] = reads = self._chunk_reads.get(table, 0) + 1
                if reads > READ_WHOLE_CHUNKS:
                    self._read_whole(table)
                    return self._texts(table, ids)
                row = self.conn.execute(f"SELECT data FROM {table} WHERE chunk = ?", (key[1],)).fetchone()
                chunk = row[0].decode().split("\x1e")
                if len(cache) >= CACHE_CHUNKS:
                    cache.clear()
                cache[key] = chunk
            out.append(chunk[i % size])
        return out

    def _read_whole(self, table: str) -> None:
        """Hold ``table``'s texts in memory: their bytes joined by the separator, and where each starts."""
        with self._lock:
            if table in self._whole:
                return
            data = b"\x1e".join(r[0] for r in self.conn.execute(f"SELECT data FROM {table} ORDER BY chunk"))
            sep = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0x1E)
            starts = np.empty(sep.size + 2, dtype=np.int64)
            starts[0], starts[-1] = 0, len(data) + 1
            starts[1:-1] = sep + 1
            # array('q'): indexing it is several times cheaper than a numpy array's, at 8 bytes an entry
            self._whole[table] = (data, array("q", starts.tobytes()))
            self._chunks = {k: v for k, v in self._chunks.items() if k[0] != table}

    def codes_info(self, ids: list[int]) -> dict[int, tuple[str, str, str, int, str]]:
        """code id -> (system, code, title, billable -1/0/1, chapter)."""
        if not ids:
            return {}
        arr = np.asarray(ids, dtype=np.int64)
        systems, chapters = self.systems, self.chapters
        return {i: (systems[s], *text.split("\x1f", 1), b, chapters[c])  # type: ignore[misc]
                for i, text, s, b, c in zip(ids, self._texts("code_text", ids), self.c_sys[arr].tolist(),
                                            self.c_bill[arr].tolist(), self.c_chapter[arr].tolist())}

    def fields_info(self, ids: list[int]) -> dict[int, tuple[int, str]]:
        """field id -> (kind, display text)."""
        ids = [i for i in ids if i >= 0]
        if not ids:
            return {}
        kinds = self.f_kind[np.asarray(ids, dtype=np.int64)].tolist()
        return dict(zip(ids, zip(kinds, self._texts("field_text", ids))))

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
        return sum(getattr(self, n).nbytes for n in _ARRAYS if hasattr(self, n))


def _one_edit(a: str, b: str) -> bool:
    """True when ``b`` is ``a`` with one deletion, insertion, replacement or adjacent transposition."""
    if a == b:
        return False
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1:] == b[i + 1:]:
            return True
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:]
    if la > lb:
        return a[i + 1:] == b[i:]
    return a[i:] == b[i + 1:]


def load(path: Path) -> Engine:
    return Engine(path)
