"""Compile the search index for a set of releases and cache it on disk.

What goes in (one *field* per searchable text, each leading to one or more
codes of the release searched):

* titles, short titles and ICD-10-CM inclusion terms of every code;
* the ICD-10-CM Alphabetic Index, External Cause Index, Table of Drugs and
  Table of Neoplasms: the path of every term (``Diabetes, diabetic > type 2
  > with > hyperglycemia``), its ``see`` cross-reference followed to the
  target term's codes, the subterms of a ``see`` target reachable under the
  referring term (``Broken > bone > hip``), one field per table cell;
* the ICD-10-PCS Index: term paths (with their ``see`` text) to full codes,
  to the codes under a 4-character prefix, or to a 3-character table;
* ICD-9-CM procedure titles (``Total hip replacement``, ``Thoracentesis``,
  ``Continuous invasive mechanical ventilation for 96 consecutive hours or
  more``): the names coders and surgeons still use, each leading to the
  ICD-10-PCS codes CMS's GEMs map it to (forward and backward files pooled).

Also compiled, as meta data read at query time: the initials of the agencies'
multi-word names, the abbreviations the texts define in parentheses, the
Porter2 families of the vocabulary, the ICD-10-PCS root operations; and per
code its subtree (release order is key order) and a rank (report-only HCPCS
codes below payable ones).

Index codes are checked against the release searched: a code that exists
is kept; a code with a dash (``E11.-``, ``H93.29-``) or one that no longer
exists is redirected to the codes under it; anything else is dropped and
counted.

Texts are tokenised in bulk (batches of fields joined, one ``bytes.translate``
and ``split``, word -> token id through one dict, pairs deduplicated with
numpy) and the inverted lists are built with numpy sorts, so the whole store
compiles in seconds.

The compiled form is a handful of flat arrays stored as raw bytes
(vocabulary, postings, field tokens, field -> codes, code -> fields, code
system / chapter / billable flags / rank / subtree), the code table (for code-prefix
queries) and the display texts in chunks, in ``<home>/search/<digest>.sqlite``
where the digest covers the builder version and the sha256 of every release
file's sources.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model import ReleaseInfo, normalize_key
from ..store import file_mode
from . import structure as _structure
from . import text as _text

BUILD_VERSION = "28"

#: Field kinds and their weight in ranking (how much a full match there is worth).
KINDS = ("title", "short", "incl", "index", "alias", "eindex", "drug", "neoplasm", "pcs", "gem")
KIND_WEIGHT = array("f", [1.0, 0.85, 0.93, 0.97, 0.9, 0.9, 0.92, 0.92, 0.95, 0.9])
_KIND_IX = {k: i for i, k in enumerate(KINDS)}
KIND_LABEL = {
    "title": "title", "short": "short title", "incl": "inclusion term",
    "index": "ICD-10-CM Alphabetic Index", "alias": "ICD-10-CM Alphabetic Index (see)",
    "eindex": "ICD-10-CM External Cause Index", "drug": "ICD-10-CM Table of Drugs and Chemicals",
    "neoplasm": "ICD-10-CM Table of Neoplasms", "pcs": "ICD-10-PCS Index",
    "gem": "ICD-9-CM procedure (GEMs)",
}
SHORT_TITLES = frozenset({"hcpcs", "cpt"})
HEAD_SYSTEMS = frozenset({"icd10cm", "hcpcs", "cpt", "icd9cm"})   # a title's head names the thing   # elsewhere short titles only abbreviate the long ones
NOT_HITS = frozenset({"chapter", "block", "section", "range", "body_system"})
OPERATION_SECTIONS = frozenset("01235B")
MAX_DEFINED_USES = 100  # fields an abbreviation may appear in and still be read as its long form
MAX_EXPAND = 24          # codes a dashed / prefix index code is redirected to, at most
MAX_ALIAS = 120          # subterms of a see-target copied under the referring term
MAX_TABLE = 1000         # codes of a PCS table an index entry naming the table also leads to, at most
NOT_NAMED = 86           # (percent) a dashed code's code whose title lacks the index term's words (else 90)
MAX_GEM = 150            # ICD-10-PCS codes one ICD-9-CM procedure title may lead to (broader: too vague)


@dataclass
class Selection:
    """The releases one compiled index covers."""

    systems: dict[str, ReleaseInfo]                     # code system -> release searched
    index: list[tuple[str, ReleaseInfo]]                # (book, index release) pairs

    def digest(self) -> str:
        h = hashlib.sha256(BUILD_VERSION.encode())
        for system, info in sorted(self.systems.items()):
            h.update(f"|{system}:{info.release}:".encode())
            h.update(json.dumps(sorted(s.get("sha256", "") for s in info.sources)).encode())
        for book, info in self.index:
            h.update(f"|{book}:{info.system}:{info.release}:".encode())
            h.update(json.dumps(sorted(s.get("sha256", "") for s in info.sources)).encode())
        return h.hexdigest()[:24]


class _WordIds(dict):
    """Raw word (ASCII bytes) -> token id (-1: stop word, -2: batch separator); new stems get the next id."""

    def __init__(self) -> None:
        super().__init__()
        self.stems: dict[str, int] = {}
        self[b"\x01"] = -2

    def __missing__(self, raw: bytes) -> int:
        word = raw.decode("ascii")
        if word in _text.STOP_WORDS:
            tid = -1
        else:
            tid = self.stems.setdefault(_text.stem(word), len(self.stems))
        self[raw] = tid
        return tid


FLUSH_EVERY = 50000          # fields tokenised per batch
_SEP = " \x01 "              # between texts in a batch (a word of its own)
_SEP_ID = -2
_PAIR = 1 << 32
# ASCII bytes: letters lowered, digits kept, the separator kept, anything else a space
_BULK = bytes((c if (48 <= c <= 57 or 97 <= c <= 122 or c == 1) else c + 32 if 65 <= c <= 90 else 32)
              for c in range(256))


@dataclass
class _Pending:
    """Fields added since the last flush, before tokenising."""

    kinds: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    primary: dict[int, str] = field(default_factory=dict)
    extra: dict[int, int] = field(default_factory=dict)
    ntgt: list[int] = field(default_factory=list)
    tgt: list[int] = field(default_factory=list)
    tgt_w: list[int] = field(default_factory=list)


@dataclass
class Builder:
    """Accumulates codes and fields (as flat integer arrays), then writes the compiled file."""

    code_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    code_rows: list[tuple[str, str, str, str, int, str]] = field(default_factory=list)
    code_bill: array = field(default_factory=lambda: array("b"))
    code_rank: array = field(default_factory=lambda: array("B"))
    field_kind: array = field(default_factory=lambda: array("B"))
    field_text: list[str] = field(default_factory=list)
    field_len: array = field(default_factory=lambda: array("B"))
    tok_start: array = field(default_factory=lambda: array("I", [0]))
    toks: array = field(default_factory=lambda: array("I"))
    tgt_start: array = field(default_factory=lambda: array("I", [0]))
    tgt: array = field(default_factory=lambda: array("I"))
    tgt_w: array = field(default_factory=lambda: array("B"))
    stats: dict[str, int] = field(default_factory=dict)
    kind_counts: dict[str, int] = field(default_factory=dict)
    words: _WordIds = field(default_factory=_WordIds)
    pending: "_Pending" = field(default_factory=lambda: _Pending())

    def add_code(self, system: str, key: str, code: str, title: str, billable: bool | None, chapter: str,
                 rank: int = 100) -> int:
        """One code; ``rank`` (percent) scales its scores (a report-only HCPCS code ranks lower)."""
        cid = len(self.code_rows)
        self.code_rank.append(rank)
        self.code_ids[(system, key)] = cid
        self.code_rows.append((system, code, key, title, -1 if billable is None else int(billable), chapter))
        self.code_bill.append(-1 if billable is None else int(billable))
        return cid

    def add_field(self, kind: str, text: str, targets: list[tuple[int, int]], words: str | None = None,
                  primary: str | None = None, extra: int = 0) -> None:
        """One searchable text; ``primary`` (default: all words) is what its length is counted on,
        plus ``extra`` (a residual "Other ..." title counts one word longer).

        Fields are buffered and tokenised in bulk (:meth:`flush`); a field without a
        token or without a target is dropped.
        """
        if not targets:
            return
        if len(targets) > 1:
            seen: dict[int, int] = {}
            for cid, w in targets:
                if seen.get(cid, -1) < w:
                    seen[cid] = w
            targets = sorted(seen.items())
        p = self.pending
        p.kinds.append(_KIND_IX[kind])
        p.texts.append(text)
        p.words.append(words if words is not None else text)
        if primary is not None:
            p.primary[len(p.texts) - 1] = primary
        if extra:
            p.extra[len(p.texts) - 1] = extra
        p.ntgt.append(len(targets))
        p.tgt.extend([cid for cid, _w in targets])
        p.tgt_w.extend([min(100, w) for _cid, w in targets])
        if len(p.texts) >= FLUSH_EVERY:
            self.flush()

    def bulk_tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Unique token ids of each text: (text index, token id) pairs, sorted."""
        words = self.words
        joined = _SEP.join(t if t.isascii() else " ".join(_text.raw_tokens(t)) for t in texts)
        raw = joined.encode("ascii").translate(_BULK).split()
        ids = np.fromiter(map(words.__getitem__, raw), dtype=np.int64, count=len(raw))
        which = np.cumsum(ids == _SEP_ID)
        keep = ids >= 0
        pairs = np.sort(which[keep] * _PAIR + ids[keep])
        first = np.ones(pairs.size, dtype=bool)
        first[1:] = pairs[1:] != pairs[:-1]
        pairs = pairs[first]
        return pairs // _PAIR, pairs % _PAIR

    def flush(self) -> None:
        """Tokenise the buffered fields and append those with tokens to the flat arrays."""
        p = self.pending
        n = len(p.texts)
        if not n:
            return
        fidx, toks = self.bulk_tokens(p.words)
        count = np.bincount(fidx, minlength=n)
        length = count.copy()
        if p.primary:
            which = np.fromiter(p.primary, dtype=np.int64, count=len(p.primary))
            pidx, _ptoks = self.bulk_tokens(list(p.primary.values()))
            length[which] = np.bincount(pidx, minlength=which.size)
        for i, n_extra in p.extra.items():
            length[i] += n_extra
        kept = count > 0
        self.field_kind.extend(array("B", np.asarray(p.kinds, dtype=np.uint8)[kept].tobytes()))
        self.field_text.extend(t for t, k in zip(p.texts, kept.tolist()) if k)
        self.field_len.frombytes(np.clip(length[kept], 1, 255).astype(np.uint8).tobytes())
        self.toks.frombytes(toks.astype(np.uint32).tobytes())
        base = self.tok_start[-1]
        self.tok_start.frombytes((base + np.cumsum(count[kept])).astype(np.uint32).tobytes())
        ntgt = np.asarray(p.ntgt, dtype=np.int64)
        tkeep = np.repeat(kept, ntgt)
        self.tgt.frombytes(np.asarray(p.tgt, dtype=np.uint32)[tkeep].tobytes())
        self.tgt_w.frombytes(np.asarray(p.tgt_w, dtype=np.uint8)[tkeep].tobytes())
        base = self.tgt_start[-1]
        self.tgt_start.frombytes((base + np.cumsum(ntgt[kept])).astype(np.uint32).tobytes())
        for k, c in zip(*np.unique(np.asarray(p.kinds)[kept], return_counts=True)):
            self.kind_counts[KINDS[k]] = self.kind_counts.get(KINDS[k], 0) + int(c)
        self.pending = _Pending()

    def bump(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n


# ------------------------------------------------------------------ code systems
def add_system(b: Builder, system: str, conn: sqlite3.Connection) -> None:
    """Every row of one release: codes become hits, titles and inclusion terms fields."""
    tree = {key: (parent, kind) for key, parent, kind in conn.execute("SELECT key, parent, kind FROM concept")}
    tops: dict[str, str] = {}
    titles: dict[str, str] = {}
    n = 0
    rows = conn.execute("SELECT key, code, kind, title, short_title, billable, attrs FROM concept ORDER BY seq")
    for key, code, kind, title, short, billable, attrs in rows:
        if kind in NOT_HITS:
            continue
        title = title or ""
        cid = b.add_code(system, key, code, title, None if billable is None else bool(billable),
                         _chapter(key, tree, tops), _rank(system, attrs))
        plain = _pcs_words(key, title) if system == "icd10pcs" else None
        b.add_field("title", title, [(cid, 100)], words=plain and f"{title} {plain}",
                    primary=_primary_title(title) or (title if plain else None),
                    extra=int(system == "icd10cm" and _residual(title)))
        head = title.split(",", 1)[0]
        if system in HEAD_SYSTEMS and head != title and head.strip() and head != titles.get(tree[key][0]):
            # what the title names, before its qualifiers ("Walker, rigid (pickup), adjustable or
            # fixed height" is a walker; "Seat attachment, walker" is not); not when it is only
            # the parent's title (7th-character codes), nor for ICD-10-PCS, whose titles are axes
            b.add_field("title", head, [(cid, 96)])
        titles[key] = title
        if short and system in SHORT_TITLES and _text.tokens(short) != _text.tokens(title):
            b.add_field("short", short, [(cid, 100)])
        if attrs and "inclusionTerm" in attrs:
            notes = (json.loads(attrs).get("notes") or {})
            for term in notes.get("inclusionTerm") or ():
                b.add_field("incl", term, [(cid, 100)])
        n += 1
    b.bump(f"codes_{system}", n)


#: How a physician names an ICD-10-PCS endoscopic approach (5th character of the Medical and Surgical
#: section) and a diagnostic qualifier: matched as words of the code's title (not shown, not counted in
#: its length), so "colonoscopy with biopsy" reads the axes (the Index leads "colonoscopy" to
#: Inspection only). "Laparoscopic" is the query synonym "percutaneous endoscopic" (search/text.py).
#: Via natural or artificial opening endoscopic (8): (body system, body parts or "" for all) -> the scope.
PCS_NATURAL_SCOPE = (
    ("D", "123456789", "egd esophagogastroduodenoscopy upper endoscopy"),
    ("D", "EFGHKLMN", "colonoscopy"),
    ("D", "NP", "sigmoidoscopy proctoscopy"),
    ("B", "", "bronchoscopy"),
    ("T", "BCD", "cystoscopy"),
    ("T", "6789", "ureteroscopy"),
    ("U", "9BCD", "hysteroscopy"),
    ("C", "RSTV", "laryngoscopy"),
)
#: qualifier X, "Diagnostic", of an Excision or Extraction: the ICD-10-PCS Index's "Biopsy, see
#: Excision (Extraction) with qualifier Diagnostic" (a tissue biopsy; Drainage, Diagnostic is an aspiration)
PCS_DIAGNOSTIC = "biopsy"


def _pcs_words(key: str, title: str) -> str | None:
    """The plain words for an ICD-10-PCS code's approach and diagnostic qualifier (None: none)."""
    if len(key) != 7 or key[0] != "0":
        return None
    out = []
    if key[4] == "8":
        out.extend(words for system, parts, words in PCS_NATURAL_SCOPE
                   if key[1] == system and (not parts or key[3] in parts))
    if key[6] == "X" and key[2] in "BD" and title.endswith(", Diagnostic"):   # Excision, Extraction
        out.append(PCS_DIAGNOSTIC)
    return " ".join(out) or None


#: Words that mark a default code ("Urinary tract infection, site not specified", "Migraine,
#: unspecified"): not counted in a title's length, so the plain code a coder picks for a bare
#: term is not outranked by a more specific one with a shorter title. A residual category
#: ("Other urticaria", "Other specified anemias") counts one word more than its title: for a bare
#: term a coder picks "Urticaria, unspecified"; so does "Family history of ..." (a bare "history of"
#: is the patient's own, Z85-Z87).
RESIDUAL = ("other ", "family history")
_OTHER = re.compile(r"\bother\b", re.I)


def _residual(title: str) -> bool:
    """A residual category's title: "Other urticaria", "Pressure ulcer of other site", "Sprain of
    other ligament of right ankle" (for a bare term a coder picks the unspecified code)."""
    return title.lower().startswith(RESIDUAL) or _OTHER.search(title) is not None


DEFAULT_WORDS = frozenset({"unspecified", "specified", "site", "not", "nos", "nec", "elsewhere", "classified"})


#: HCPCS codes a coder reports for information only, not for payment: BETOS "Z2" (undefined:
#: the quality-measure G/M codes, most S codes), ranked below the codes that pay for the same words.
REPORT_ONLY_BETOS = frozenset({"Z2"})
REPORT_ONLY_RANK = 92


def _rank(system: str, attrs: str | None) -> int:
    if system != "hcpcs" or not attrs or '"betos"' not in attrs:
        return 100
    return REPORT_ONLY_RANK if json.loads(attrs).get("betos") in REPORT_ONLY_BETOS else 100


def _primary_title(title: str) -> str | None:
    words = _text.raw_tokens(title)
    kept = [w for w in words if w not in DEFAULT_WORDS]
    return " ".join(kept) if len(kept) < len(words) and kept else None


def _chapter(key: str, tree: dict[str, tuple[str | None, str]], tops: dict[str, str]) -> str:
    """The top ancestor's key (ICD-10-CM chapter), else the first character (PCS section, HCPCS letter)."""
    top = _top(key, tree, tops)
    if top != key and tree.get(top, (None, ""))[1] in ("chapter", "section"):
        return top
    return key[:1]


def _top(key: str, tree: dict[str, tuple[str | None, str]], tops: dict[str, str]) -> str:
    """The topmost ancestor of ``key`` (itself at the top), remembered for every key on the way."""
    path, seen, top = [], set(), key
    while True:
        known = tops.get(top)
        if known is not None:
            top = known
            break
        parent = tree.get(top, (None, ""))[0]
        if not parent or top in seen:
            break
        seen.add(top)
        path.append(top)
        top = parent
    for k in path:
        tops[k] = top
    return top


# ------------------------------------------------------------------ code resolution
class Resolver:
    """Maps a code as printed in an index to code ids of the release searched."""

    def __init__(self, b: Builder, system: str) -> None:
        self.b = b
        self.system = system
        self.keys = sorted(k for (s, k) in b.code_ids if s == system)

    def under(self, prefix: str) -> list[str]:
        import bisect

        i = bisect.bisect_left(self.keys, prefix)
        out = []
        while i < len(self.keys) and self.keys[i].startswith(prefix):
            out.append(self.keys[i])
            i += 1
        return out

    def resolve(self, raw: str, weight: int = 100, named: str | None = None) -> list[tuple[int, int]]:
        """Code ids (with a weight) of an index's code; a dashed code (``L03.11-``) leads to the
        billable codes below it, those whose title has the words of ``named`` (the index term,
        "lower limb") a little above the others ("Cellulitis of right axilla")."""
        dashed = raw.rstrip().endswith("-")
        key = normalize_key(raw.replace("-", ""))
        if not key:
            return []
        ids = self.b.code_ids
        out: list[tuple[int, int]] = []
        exact = ids.get((self.system, key))
        if exact is not None:
            out.append((exact, weight))
            if not dashed:
                return out
        below = [k for k in self.under(key) if k != key]
        billable = [k for k in below if self.b.code_bill[ids[(self.system, k)]] == 1] or below
        cids = [ids[(self.system, k)] for k in billable[:MAX_EXPAND]]
        want = set(_text.tokens(named)) if named and dashed and len(cids) > 1 else set()
        rows = self.b.code_rows
        has = [want <= set(_text.tokens(rows[cid][3])) for cid in cids] if want else []
        lower = any(has) and not all(has)     # none or all name it: the words say nothing here
        for i, cid in enumerate(cids):
            out.append((cid, weight * (NOT_NAMED if lower and not has[i] else 90) // 100))
        if exact is None:
            self.b.bump("index_codes_redirected" if out else "index_codes_dropped")
        return out


# ------------------------------------------------------------------ ICD-10-CM index
@dataclass
class Term:
    id: int
    book: str
    parent: int | None
    title: str
    path: str
    see: str | None
    codes: list[tuple[str, int | None, str | None, str]] = field(default_factory=list)
    children: list[int] = field(default_factory=list)
    level: int = 0
    key: str = ""
    first: str = ""
    by_key: dict[str, int] | None = None


def load_terms(conn: sqlite3.Connection, books: set[str], pcs: bool = False) -> dict[int, Term]:
    col = "use" if pcs else "see_also"
    terms: dict[int, Term] = {}
    q = f'SELECT id, book, parent, title, path, see, "{col}" FROM index_term ORDER BY id'
    for tid, book, parent, title, path, see, _extra in conn.execute(q):
        if book in books:
            terms[tid] = Term(tid, book, parent, title, path, see)
    for tid, role, col_, heading, code in conn.execute("SELECT term, role, col, heading, code FROM index_code"):
        t = terms.get(tid)
        if t is not None:
            t.codes.append((role, col_, heading, code))
    for t in terms.values():
        t.key, t.first = _key(t.title), _key(t.title.split(",")[0])
        if t.parent is not None and t.parent in terms:
            parent = terms[t.parent]
            parent.children.append(t.id)
            t.level = parent.level + 1
    return terms


def _key(s: str) -> str:
    return " ".join(_text.raw_tokens(s))


class SeeIndex:
    """Finds the term a ``see`` cross-reference names (``Fracture, femur, neck``)."""

    def __init__(self, terms: dict[int, Term], book: str) -> None:
        self.terms = terms
        self.main: dict[str, int] = {}
        self.first: dict[str, int] = {}
        self.firsts: dict[str, list[int]] = {}   # every main term of a first word ("Fracture, traumatic" ...)
        for t in terms.values():
            if t.parent is None and t.book == book:
                self.main.setdefault(t.key, t.id)
                self.first.setdefault(t.first, t.id)
                self.firsts.setdefault(t.first, []).append(t.id)

    def find(self, see: str, through_with: bool = False, home: int | None = None) -> Term | None:
        """The term ``see`` names, as deep as its parts lead; with ``through_with``, a part missing
        under a term is also looked for under its ``with`` subterm (``Diabetes, retinopathy`` is
        ``Diabetes > with > retinopathy``, ICD-10-CM convention I.A.15).

        A reference names its target by the main term's first word: "Fracture, traumatic > jaw"
        says "see Fracture, mandible", meaning "Fracture, traumatic > mandible". When the main
        term first found does not lead through every part, the other main terms of that first
        word are tried (``home``, the referring term's own main term, first) and the one leading
        deepest is taken."""
        parts = [p for p in (_key(x) for x in see.replace(" - ", ",").split(",")) if p]
        if not parts:
            return None
        start = None
        for k in range(len(parts), 0, -1):
            cand = self.main.get(" ".join(parts[:k]))
            if cand is not None:
                start, rest = cand, parts[k:]
                break
        if start is None:
            cand = self.first.get(parts[0])
            if cand is None:
                return None
            start, rest = cand, parts[1:]
        term, left = self._walk(self.terms[start], rest, through_with)
        if left:
            first = parts[0].split()[0]
            others = [i for i in self.firsts.get(first, ()) if i != start]
            if home in others:
                others.remove(home)
                others.insert(0, home)
            for other in others:
                drop = len(_key(self.terms[other].first).split())
                words = " ".join(parts).split()[drop:]
                if not words:
                    continue
                t2, left2 = self._walk(self.terms[other], self._regroup(words, parts, drop), through_with)
                if t2 is not self.terms[other] and left2 < left:
                    term, left = t2, left2
                    if not left:
                        break
        return term

    @staticmethod
    def _regroup(words: list[str], parts: list[str], drop: int) -> list[str]:
        """``parts`` without their first ``drop`` words, keeping the parts' grouping."""
        out: list[str] = []
        for p in parts:
            w = p.split()
            if drop >= len(w):
                drop -= len(w)
                continue
            out.append(" ".join(w[drop:]))
            drop = 0
        return out

    def _walk(self, term: Term, rest: list[str], through_with: bool) -> tuple[Term, int]:
        """As deep as ``rest`` leads below ``term``: the term reached and the parts left unread."""
        while rest:
            nxt = self._child(term, rest)
            if nxt is None and through_with:
                via = self._child(term, ["with"])
                nxt = self._child(via[0], rest) if via is not None else None
            if nxt is None:
                break
            term, rest = nxt
        return term, len(rest)

    def _child(self, term: Term, rest: list[str]) -> tuple[Term, list[str]] | None:
        if term.by_key is None:
            term.by_key = {}
            # weakest first (later keys win): a subterm's first word ("tarsal bone" for "tarsal"),
            # its first form without plural marks ("carpal bone(s)" for "carpal bones"), its first
            # form, its whole title
            for cid in reversed(term.children):
                c = self.terms[cid]
                if c.first:
                    term.by_key[c.first.split()[0]] = cid        # "tarsal" -> "tarsal bone"
            for cid in reversed(term.children):
                c = self.terms[cid]
                term.by_key[_plain(c.first)] = cid
                term.by_key[c.first] = cid
            for cid in reversed(term.children):
                term.by_key[self.terms[cid].key] = cid
        for k in range(min(3, len(rest)), 0, -1):
            part = " ".join(rest[:k])
            cid = term.by_key.get(part)
            if cid is None:
                cid = term.by_key.get(_plain(part))
            if cid is not None:
                return self.terms[cid], rest[k:]
        return None


def _plain(key: str) -> str:
    """An index key without plural marks: ``bone s`` (from "bone(s)") and ``bones`` -> ``bone``."""
    words = [w for w in key.split() if w != "s"]
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words)


def add_cm_index(b: Builder, terms: dict[int, Term], res: Resolver) -> None:
    see_idx = {book: SeeIndex(terms, book) for book in {t.book for t in terms.values()}}
    own: dict[int, list[tuple[int, int]]] = {}
    resolved: dict[int, list[tuple[int, int]]] = {}

    def codes_of(t: Term) -> list[tuple[int, int]]:
        got = own.get(t.id)
        if got is None:
            got = []
            for role, _col, _head, code in t.codes:
                if role in ("code", "manif", "subcat", "seecat"):
                    got.extend(res.resolve(code, 100 if role == "code" else 80,
                                           named=t.title if t.parent is not None else None))
            own[t.id] = got
        return got

    def target_codes(t: Term, depth: int = 0) -> list[tuple[int, int]]:
        got = resolved.get(t.id)
        if got is not None:
            return got
        got = codes_of(t)
        if not got and t.see and depth < 3:
            tgt = see_idx[t.book].find(t.see, through_with=True, home=_root(t, terms))
            if tgt is None:
                b.bump("see_unresolved")
            elif tgt is not t:
                got = [(c, w * 95 // 100) for c, w in target_codes(tgt, depth + 1)]
        resolved[t.id] = got
        return got

    for t in terms.values():
        kind = {"index": "index", "eindex": "eindex", "drug": "drug", "neoplasm": "neoplasm"}[t.book]
        if t.book in ("drug", "neoplasm"):
            _add_cells(b, t, res, kind)
        path = t.path + (f" (see {t.see})" if t.see else "")
        b.add_field(kind, path, target_codes(t), words=t.path, primary=_primary(t, terms))
        if t.see and t.book == "index" and t.level <= 1 and not codes_of(t):
            tgt = see_idx[t.book].find(t.see, home=_root(t, terms))
            if tgt is not None and tgt is not t and len(tgt.children) <= MAX_ALIAS:
                for cid in tgt.children[:MAX_ALIAS]:
                    c = terms[cid]
                    codes = target_codes(c)
                    if codes:
                        b.add_field("alias", f"{t.path} > {c.title} (see {t.see}, {c.title})",
                                    [(x, w * 9 // 10) for x, w in codes], words=f"{t.path} {c.title}")


def _root(t: Term, terms: dict[int, Term]) -> int:
    """The id of ``t``'s main term."""
    while t.parent is not None and t.parent in terms:
        t = terms[t.parent]
    return t.id


def _primary(t: Term, terms: dict[int, Term]) -> str:
    """An index path counted without the main term's alternative forms (``Diabetes, diabetic`` ->
    ``Diabetes``), keeping its modifiers (``Fracture, pathological``)."""
    parts = []
    while True:
        parent = terms.get(t.parent) if t.parent is not None else None
        if parent is not None:
            parts.append(t.title)
        else:
            head, *rest = t.title.split(",")
            parts.append(" ".join([head, *(r for r in rest if not _text.comma_variant(head, r))]))
        if parent is None:
            break
        t = parent
    return " ".join(reversed(parts))


def _add_cells(b: Builder, t: Term, res: Resolver, kind: str) -> None:
    for role, col, heading, code in t.codes:
        if role != "cell":
            continue
        targets = res.resolve(code)
        if targets:
            b.add_field(kind, f"{t.path} > {heading}", targets, words=f"{t.path} {heading}")


# ------------------------------------------------------------------ ICD-10-PCS index
def add_pcs_index(b: Builder, terms: dict[int, Term], res: Resolver) -> None:
    for t in terms.values():
        targets: list[tuple[int, int]] = []
        for role, _col, _head, code in t.codes:
            kind = role.split("_")[-1]
            if kind == "code":
                targets.extend(res.resolve(code))
            elif kind == "codes":
                targets.extend(res.resolve(code + "-", 95))
            elif kind == "tab":
                # "Mastectomy, see Resection, Skin and Breast 0HT": the table, and its codes, so
                # that the query's other words ("right") can pick one of them (see Engine.cross)
                targets.extend(res.resolve(code, 85))
                below = res.under(normalize_key(code))
                if len(below) <= MAX_TABLE:
                    targets.extend((res.b.code_ids[("icd10pcs", k)], 80) for k in below
                                   if res.b.code_bill[res.b.code_ids[("icd10pcs", k)]] == 1)
        if not targets:
            continue
        label = t.path + (f" (see {t.see})" if t.see else "")
        b.add_field("pcs", label, targets, words=f"{t.path} {t.see or ''}")


# ------------------------------------------------------------------ ICD-9-CM procedure titles via the GEMs
def add_gem_titles(b: Builder, gem: sqlite3.Connection, icd9: sqlite3.Connection) -> None:
    """Each ICD-9-CM procedure title, leading to the ICD-10-PCS codes of the release searched that
    the GEMs pair it with (forward i9 -> PCS and backward PCS -> i9 entries, pooled)."""
    targets: dict[str, set[str]] = {}
    for direction, i9_col, pcs_col in (("i9-i10pcs", "source", "target"), ("i10pcs-i9", "target", "source")):
        for i9, pcs in gem.execute(f"SELECT {i9_col}, {pcs_col} FROM gem WHERE direction = ? AND no_map = 0",
                                   (direction,)):
            targets.setdefault(i9, set()).add(pcs)
    ids = b.code_ids
    for key, code, title in icd9.execute("SELECT key, code, title FROM concept WHERE kind = 'procedure'"):
        pcs = targets.get(key.removeprefix("P:").replace(".", ""))
        if not pcs or len(pcs) > MAX_GEM:
            b.bump("gem_titles_skipped")
            continue
        cids = [(ids[("icd10pcs", k)], 90) for k in sorted(pcs) if ("icd10pcs", k) in ids]
        if cids:
            b.add_field("gem", f"{title} (ICD-9-CM {code})", cids, words=title)


# ------------------------------------------------------------------ compile + write
def _csr(keys: np.ndarray, values: np.ndarray, n: int) -> tuple[array, array]:
    """Group ``values`` by ``keys`` (0..n-1), each group sorted: (starts, data) as uint32 arrays."""
    order = np.lexsort((values, keys))
    starts = np.zeros(n + 1, dtype=np.uint32)
    np.cumsum(np.bincount(keys, minlength=n), out=starts[1:])
    return _arr(starts), _arr(values[order].astype(np.uint32))


def _arr(a: np.ndarray) -> array:
    out = array({np.dtype(np.uint32): "I", np.dtype(np.uint8): "B", np.dtype(np.int8): "b",
                 np.dtype(np.uint16): "H", np.dtype(np.int32): "i"}[a.dtype])
    out.frombytes(a.tobytes())
    return out


def deletion_neighbourhood(vocab: list[str]) -> tuple[array, array]:
    """Every word token (3+ characters, not a number) and its one-character deletions, as
    (crc32 of the string, token id) pairs sorted by hash: typo candidates at query time
    are found by hashing the query word's own deletions (SymSpell style)."""
    hashes: list[int] = []
    toks: list[int] = []
    for t, tok in enumerate(vocab):
        if len(tok) < 3 or tok.isdigit():
            continue
        keys = {tok} | {tok[:i] + tok[i + 1:] for i in range(len(tok))}
        hashes.extend(zlib.crc32(k.encode()) for k in keys)
        toks.extend([t] * len(keys))
    h = np.asarray(hashes, dtype=np.uint32)
    order = np.argsort(h, kind="stable")
    return _arr(h[order]), _arr(np.asarray(toks, dtype=np.uint32)[order])


def code_tree(rows: list[tuple[str, str, str, str, int, str]]) -> tuple[array, array]:
    """Per code id: one past its last descendant (the codes after it whose key it starts) and the
    nearest code above it (itself at the top). Codes are in release order, which for ICD-10-CM,
    ICD-10-PCS and HCPCS is key order, so a code's descendants are the ids right after it."""
    n = len(rows)
    end = np.full(n, n, dtype=np.uint32)
    up = np.arange(n, dtype=np.uint32)
    stack: list[tuple[str, str, int]] = []
    for i, row in enumerate(rows):
        system, key = row[0], row[2]
        while stack and not (stack[-1][0] == system and key.startswith(stack[-1][1])):
            end[stack.pop()[2]] = i
        if stack:
            up[i] = stack[-1][2]
        stack.append((system, key, i))
    return _arr(end), _arr(up)


def compile_to(b: Builder, path: Path, meta: dict[str, Any]) -> None:
    """Turn the accumulated fields into flat sorted arrays and write the cache file atomically."""
    b.flush()
    stems = sorted(b.words.stems, key=b.words.stems.__getitem__)   # by build id
    vocab = sorted(stems)
    new_id = np.empty(len(stems), dtype=np.int64)
    new_id[[b.words.stems[t] for t in vocab]] = np.arange(len(vocab))
    nf = len(b.field_text)
    tok_start = np.frombuffer(b.tok_start, dtype=np.uint32).astype(np.int64)
    field_of_tok = np.repeat(np.arange(nf, dtype=np.int64), np.diff(tok_start))
    toks = new_id[np.frombuffer(b.toks, dtype=np.uint32).astype(np.int64)]
    f_tok_start, f_toks = _csr(field_of_tok, toks, nf)              # field -> its tokens, sorted
    p_start, p_data = _csr(toks, field_of_tok, len(vocab))            # token -> its fields, sorted
    tgt_start = np.frombuffer(b.tgt_start, dtype=np.uint32).astype(np.int64)
    field_of_tgt = np.repeat(np.arange(nf, dtype=np.int64), np.diff(tgt_start))
    tgt = np.frombuffer(b.tgt, dtype=np.uint32).astype(np.int64)
    c_f_start, c_f = _csr(tgt, field_of_tgt, len(b.code_rows))      # code -> fields leading to it
    d_hash, d_tok = deletion_neighbourhood(vocab)
    systems = sorted({r[0] for r in b.code_rows})
    chapters = sorted({r[5] or "" for r in b.code_rows})
    sys_ix = {s: i for i, s in enumerate(systems)}
    ch_ix = {c: i for i, c in enumerate(chapters)}
    meta = dict(meta, code_systems=systems, chapters=chapters, chunk=CHUNK, families=_text.families(vocab))
    if "defined" in meta:
        # an abbreviation that is also a common word of the texts ("hit", "fish", "vas") keeps its own sense
        tid = {t: i for i, t in enumerate(vocab)}
        uses = np.diff(np.frombuffer(p_start, dtype=np.uint32).astype(np.int64))

        def rare(short: str) -> bool:
            t = tid.get(_text.stem(short))
            return t is None or int(uses[t]) <= MAX_DEFINED_USES

        meta["defined"] = {a: v for a, v in meta["defined"].items()
                           if len(a) >= 3 and a not in _text.STOP_WORDS and rare(a)}
    blobs = {
        "c_sys": array("B", [sys_ix[r[0]] for r in b.code_rows]),
        "c_chapter": array("H", [ch_ix[r[5] or ""] for r in b.code_rows]),
        "f_tok_start": f_tok_start, "f_toks": f_toks, "f_len": b.field_len, "f_kind": b.field_kind,
        "p_start": p_start, "p_data": p_data, "f_tgt_start": b.tgt_start, "f_tgt": b.tgt,
        "f_tgt_w": b.tgt_w, "c_f_start": c_f_start, "c_f": c_f, "c_bill": b.code_bill, "c_rank": b.code_rank,
        "d_hash": d_hash, "d_tok": d_tok,
    }
    blobs["c_end"], blobs["c_up"] = code_tree(b.code_rows)
    enc, default = _structure.code_facts(b.code_rows, np.frombuffer(blobs["c_up"].tobytes(), dtype=np.uint32))
    blobs["c_enc"], blobs["c_default"] = _arr(enc), _arr(default)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".search.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        stats = dict(b.stats, **{f"fields_{k}": n for k, n in b.kind_counts.items()})
        _write(Path(tmp), b, vocab, blobs, dict(meta, stats=stats))
        os.chmod(tmp, file_mode())  # readable by others, like the release files (mkstemp makes 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


CHUNK = 64    # display texts stored per blob row (fields, code titles)


def _chunks(texts: list[str]) -> list[tuple[int, bytes]]:
    return [(i // CHUNK, "\x1e".join(texts[i:i + CHUNK]).encode()) for i in range(0, len(texts), CHUNK)]


def _write(path: Path, b: Builder, vocab: list[str], blobs: dict[str, array], meta: dict[str, Any]) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("CREATE TABLE blob (name TEXT PRIMARY KEY, typecode TEXT, data BLOB)")
        conn.execute("CREATE TABLE code (id INTEGER PRIMARY KEY, system TEXT, code TEXT, key TEXT, "
                     "title TEXT, billable INTEGER, chapter TEXT)")
        conn.execute("CREATE TABLE field_text (chunk INTEGER PRIMARY KEY, data BLOB)")
        conn.execute("CREATE TABLE code_text (chunk INTEGER PRIMARY KEY, data BLOB)")
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        conn.executemany("INSERT INTO blob VALUES (?, ?, ?)",
                         [(n, a.typecode, a.tobytes()) for n, a in blobs.items()]
                         + [("vocab", "s", "\n".join(vocab).encode())])
        conn.executemany("INSERT INTO code VALUES (?, ?, ?, ?, ?, ?, ?)",
                         ((i, *row) for i, row in enumerate(b.code_rows)))
        conn.executemany("INSERT INTO field_text VALUES (?, ?)", _chunks(b.field_text))
        conn.executemany("INSERT INTO code_text VALUES (?, ?)",
                         _chunks([f"{r[1]}\x1f{r[3]}" for r in b.code_rows]))
        conn.execute("CREATE INDEX code_key ON code(system, key)")
        conn.commit()
    finally:
        conn.close()


def build(selection: Selection, open_db: Any, path: Path) -> None:
    """Compile ``selection`` into ``path``. ``open_db(info)`` returns a store.ReleaseDB."""
    b = Builder()
    for system, info in selection.systems.items():
        add_system(b, system, open_db(info).conn)
    cm_books = [(book, info) for book, info in selection.index if info.system == "icd10cm_index"]
    if cm_books and "icd10cm" in selection.systems:
        res = Resolver(b, "icd10cm")
        for info in {i.path: i for _, i in cm_books}.values():
            books = {bk for bk, i in cm_books if i.path == info.path}
            add_cm_index(b, load_terms(open_db(info).conn, books), res)
    pcs = [info for book, info in selection.index if info.system == "icd10pcs_index"]
    if pcs and "icd10pcs" in selection.systems:
        add_pcs_index(b, load_terms(open_db(pcs[0]).conn, {"pcs"}, pcs=True), Resolver(b, "icd10pcs"))
    gems = [info for book, info in selection.index if book == "gem"]
    if gems and "icd10pcs" in selection.systems and "icd9cm" in selection.systems:
        add_gem_titles(b, open_db(gems[0]).conn, open_db(selection.systems["icd9cm"]).conn)
    b.flush()
    named = {_KIND_IX[k] for k in ("title", "incl", "index")}
    cm = [t for t, k in zip(b.field_text, b.field_kind) if k in named]
    meta = {
        "acronyms": _text.acronyms(cm),
        "defined": _text.definitions(b.field_text),
        # the ICD-10-PCS root operations (and imaging types): the last part of a table's title, in
        # the surgical, obstetric, placement, administration, extracorporeal and imaging sections
        "operations": sorted({w for system, _c, key, title, _b, _ch in b.code_rows if system == "icd10pcs"
                              and len(key) == 3 and key[0] in OPERATION_SECTIONS
                              for w in _text.raw_tokens(title.rsplit(",", 1)[-1]) if w not in _text.STOP_WORDS}),
        "version": BUILD_VERSION,
        "systems": {s: i.release for s, i in selection.systems.items()},
        "index": [[bk, i.system, i.release] for bk, i in selection.index],
    }
    compile_to(b, path, meta)
