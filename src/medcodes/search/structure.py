"""The shape of an answer page: which code of a family a coder reports, and room for other readings.

Two ICD-10-CM adjustments over the scores the words gave (:func:`reshape`), read from per-code
facts compiled into the index from the official titles and the code tree (:func:`code_facts`):

* **7th characters.** An injury's codes come in families that differ only in the
  encounter (initial, subsequent, sequela) and, for fractures, open vs closed and the
  healing (routine, delayed, nonunion, malunion). A query that does not state those words
  gets the default a coder assumes (ICD-10-CM guideline I.C.19.a: 7th character A while the
  injury is treated; a fracture not stated as open is closed and one not stated as displaced or
  not is displaced, I.C.19.c; the Index's "Fracture" is "Fracture, traumatic", a stress or
  pathological fracture is said so): the other members
  rank a little lower, so one family no longer fills the page and other readings of the words
  stay in the top 10.
* **Headers.** A category that is not billable (``K42 Umbilical hernia``, ``R11 Nausea and
  vomiting``) often matches the words best, being the shortest text. A coder reports its
  *default* billable code: the child the classification itself names unspecified
  (``R11.2 Nausea with vomiting, unspecified``), else the one "without" the complication
  (``K42.9 ... without obstruction or gangrene``), else, in an injury family, the initial
  encounter for a closed injury. That child takes the header's place, the header drops.

And, in every system, a page is not filled by one family (:func:`diversify`): beyond the first
three codes under one parent (three sides of one condition, three devices of one ICD-10-PCS
table), the next rank a little lower, so that another reading of the words reaches the top 10.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

#: per-code flags (uint8) of an ICD-10-CM 7th-character code
SUBSEQUENT, SEQUELA, OPEN, HEALING, NOT_TRAUMATIC, NONDISPLACED = 1, 2, 4, 8, 16, 32
#: query words that ask for those codes
ASKS = {
    SUBSEQUENT: frozenset({"subsequent", "healing", "delayed", "nonunion", "malunion", "union", "followup"}),
    SEQUELA: frozenset({"sequela", "sequelae", "late"}),
    OPEN: frozenset({"open", "compound"}),
    HEALING: frozenset({"delayed", "nonunion", "malunion", "union", "nonunited"}),
    # the Index's "Fracture" is "Fracture, traumatic"; a stress or pathological fracture is said so
    NOT_TRAUMATIC: frozenset({"stress", "pathological", "pathologic", "osteoporotic", "osteoporosis", "fatigue",
                              "insufficiency", "neoplastic", "metastatic", "march", "disease", "fragility",
                              "periprosthetic", "collapsed", "collapse"}),
    # "a fracture not indicated whether displaced or not displaced should be coded to displaced"
    # (guideline I.C.19.c)
    NONDISPLACED: frozenset({"nondisplaced", "undisplaced", "non"}),
}
#: a family member the query's words do not ask for, relative to the default (initial, closed, routine)
FAMILY_FACTOR = 0.9
#: the default child of a header, relative to the header's score: it takes the header's place
DEFAULT_CHILD_FACTOR = 1.0
REPLACED_HEADER_FACTOR = 0.85  # a header whose default child is on the page
HEADERS_CHECKED = 30   # best headers whose default child is put on the page
_SIDE_WORDS = frozenset({"left", "right", "bilateral", "unilateral"})
_LATER = SUBSEQUENT | SEQUELA | OPEN | HEALING   # not the initial encounter for a closed injury
#: words by which a query chooses among a header's children itself
_CHOSEN = _SIDE_WORDS | ASKS[SUBSEQUENT] | ASKS[SEQUELA] | ASKS[OPEN] | ASKS[NONDISPLACED]
#: flags & the flags not asked for -> the factor (one FAMILY_FACTOR per flag)
_FAMILY_FACTORS = np.array([FAMILY_FACTOR ** bin(i).count("1") for i in range(64)])
_UNSPECIFIED = re.compile(r"(^unspecified\b|, unspecified\b|\bof unspecified\b)", re.I)
_WITHOUT = re.compile(r"^(?:(?!\bwith\b).)*\bwithout\b", re.I)   # "without" and no "with" before it


def code_facts(rows: list[tuple[str, str, str, str, int, str]], up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per code (the index's code rows: system, code, key, title, billable, chapter; ``up`` the code
    above each): its 7th-character flags (uint8, 0: none) and, for an ICD-10-CM header, the billable
    code a coder reports for it (int32, -1: none). Compiled into the index (build.compile_to)."""
    n = len(rows)
    flags = np.zeros(n, dtype=np.uint8)
    default = np.full(n, -1, dtype=np.int32)
    cm = [i for i, r in enumerate(rows) if r[0] == "icd10cm"]
    if not cm:
        return flags, default
    for i in cm:
        key, title = rows[i][2], rows[i][3]
        if len(key) != 7:
            continue
        t = title.lower()
        if "encounter" not in t and not t.endswith("sequela"):
            continue
        f = 0
        if "subsequent encounter" in t:
            f |= SUBSEQUENT
        if t.endswith("sequela"):
            f |= SEQUELA
        if "open fracture" in t:
            f |= OPEN
        if "delayed healing" in t or "nonunion" in t or "malunion" in t:
            f |= HEALING
        if "stress fracture" in t or "pathological fracture" in t:
            f |= NOT_TRAUMATIC
        if t.startswith("nondisplaced"):
            f |= NONDISPLACED
        flags[i] = f
    ids = np.asarray(cm, dtype=np.int64)
    up = np.asarray(up, dtype=np.int64)
    bill = np.fromiter((r[4] for r in rows), dtype=np.int8, count=n)
    # each code under a header, grouped by its header (release order within a group)
    under = ids[(up[ids] != ids) & (bill[up[ids]] != 1)]
    under = under[np.argsort(up[under], kind="stable")]
    heads, first = np.unique(up[under], return_index=True)
    bounds = np.append(first, under.size).tolist()
    pick: dict[int, int] = {}
    for h, a, b in zip(heads.tolist(), bounds[:-1], bounds[1:]):
        kids = under[a:b].tolist()
        # the child saying "unspecified" most ("S83.209 Unspecified tear of unspecified meniscus, current
        # injury, unspecified knee", not "S83.200 Bucket-handle tear of unspecified meniscus, ... right knee")
        best = max((len(_UNSPECIFIED.findall(rows[k][3])), -k) for k in kids)
        choice = -best[1] if best[0] > 0 else None
        if choice is None:
            # "K42.9 Umbilical hernia without obstruction or gangrene", not "K42.0 ... with obstruction,
            # without gangrene"
            choice = next((k for k in kids if _WITHOUT.search(rows[k][3])), None)
        if choice is None:
            # an injury family: the initial encounter for a closed injury (7th character A)
            choice = next((k for k in kids if not flags[k] & _LATER and "initial encounter" in rows[k][3].lower()), None)
        if choice is not None:
            pick[h] = choice
    for h in pick:
        k, steps = pick[h], 0
        while bill[k] != 1 and k in pick and steps < 4:     # down to a billable code
            k, steps = pick[k], steps + 1
        if bill[k] == 1:
            default[h] = k
    return flags, default


def reshape(eng: Any, board: Any, words: list[str], accept: Any) -> None:
    """Adjust ``board``'s ICD-10-CM scores for the 7th-character family and headers (see the module)."""
    if "icd10cm" not in eng.systems:
        return
    cids = board.codes()
    if not cids.size:
        return
    said = set(words)
    demote = 0
    for flag, asks in ASKS.items():
        if not asks & said:
            demote |= flag
    if demote:
        flags = eng.c_enc[cids] & demote
        hit = flags != 0
        if hit.any():
            board.score[cids[hit]] *= _FAMILY_FACTORS[flags[hit]]
    if _CHOSEN & said:
        return          # the query chose a side or an encounter: the default child may not be it
    kids = eng.c_default[cids]
    has = kids >= 0
    if not has.any():
        return
    heads, kids = cids[has], kids[has].astype(np.int64)
    if heads.size > HEADERS_CHECKED:
        top = np.argpartition(-board.score[heads], HEADERS_CHECKED)[:HEADERS_CHECKED]
        heads, kids = heads[top], kids[top]
    ok = accept(kids)
    if not ok.all():
        heads, kids = heads[ok], kids[ok]
    if kids.size:
        board.offer(kids, board.score[heads] * DEFAULT_CHILD_FACTOR, board.field[heads])
        # the child takes the header's place: the header drops, leaving room for other readings
        board.score[heads] *= REPLACED_HEADER_FACTOR


#: siblings (codes under one parent) kept at their score on a page; each further one ranks lower
SIBLINGS_KEPT = 3
SIBLING_FACTOR = 0.85
DIVERSIFY_EXTRA = 30   # codes beyond the page read, so that a code below a crowded family can move up


def diversify(eng: Any, board: Any, ranked: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best of ``ranked`` (best first) when one family may not fill the page: the
    siblings of one parent after the first :data:`SIBLINGS_KEPT` score lower, so that another
    reading of the words reaches the top 10."""
    if ranked.size <= SIBLINGS_KEPT:
        return ranked[:k]
    up = eng.c_up[ranked].tolist()
    seen: dict[int, int] = {}
    factor = np.ones(ranked.size)
    for i, p in enumerate(up):
        n = seen.get(p, 0)
        seen[p] = n + 1
        if n >= SIBLINGS_KEPT:
            factor[i] = SIBLING_FACTOR
    if (factor == 1.0).all():
        return ranked[:k]
    sc = board.score[ranked] * factor
    order = np.lexsort((np.arange(ranked.size), -sc))
    return ranked[order][:k]
