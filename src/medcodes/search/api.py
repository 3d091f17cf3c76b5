"""``search(codebook, query, ...)``: the public entry point, its result types and caching.

The compiled index covers every installed code system (the release in effect
on the date asked, today by default) and the official index releases that go
with them; it is built by :func:`prepare` (at the end of a pull) or on first
use into ``<home>/search/<digest>.sqlite`` and kept loaded for the life of
the process. Filters (systems, billable, chapter)
and paging are applied at query time, so one compiled index answers all.

Bad input never raises: an empty, punctuation-only or over-long query gives
an empty result whose ``error`` says why.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import MedcodesError
from ..model import ReleaseInfo, normalize_key
from . import lexicon as _lexicon
from . import structure as _structure
from . import text as _text
from .build import KIND_LABEL, KINDS, Selection, build
from .engine import Board, Engine

#: Code systems searched when ``systems`` is not given (ICD-9-CM is retired: ask for it by name).
DEFAULT_SYSTEMS = ("icd10cm", "icd10pcs", "hcpcs", "cpt")
ALL_SYSTEMS = ("icd10cm", "icd10pcs", "hcpcs", "cpt", "icd9cm")
MAX_QUERY = 500
DOTTED = ("icd10cm", "icd9cm")   # systems whose codes are written with a dot
MAX_LIMIT = 1000
GOOD_SCORE = 0.55     # a hit this good counts towards "enough found" (else words spread over fields, then all but one)
MAX_QUALIFY = 5000   # best codes checked for a query's laterality / encounter words
TEMPORARY_FACTOR = 0.7  # a HCPCS C or G code for a query naming a procedure
PROCEDURE_DX_FACTOR = 0.85  # an ICD-10-CM "Encounter for" / status code (chapter 21) for a query that names a procedure
PROCEDURE_CONDITION_FACTOR = 0.7  # any other ICD-10-CM code (a condition) for a query naming a procedure or supply
SUPPLY_PCS_FACTOR = 0.85  # an ICD-10-PCS code for a query naming a supply, drug dose or equipment, not a procedure
NEUTRAL_FACTOR = 0.7  # a code without laterality (encounter) for a query that states one
#: ... a code without a 7th character for a query stating the encounter ("bee sting initial
#: encounter" is an injury or poisoning, not a condition the Index also reaches by those words)
ENCOUNTER_NEUTRAL_FACTOR = 0.5
MAX_NEUTRAL = 300     # best codes lacking the query's laterality / encounter words checked for having no such axis
RELATIVES_OF = 20     # best codes lacking the query's laterality / encounter words whose relatives are tried
RELATIVE_FACTOR = 0.95  # a code reached below (beside) a matched code, relative to that code's score
BILATERAL_SIDES_FACTOR = 0.9  # a right or left code for a query saying "bilateral" (no bilateral code found)
UNILATERAL_FACTOR = 0.95  # a "unilateral" code for a query that names the side (left / right)
QUALIFIED_FIELD_FACTOR = 1.0  # one field holding every word, the laterality / encounter words too
DOMINANT_FACTOR = 0.95  # the query with a rare word form read as the form its family uses far more ("fractured")
IMAGING_FACTOR = 0.8  # an ICD-10-PCS imaging / nuclear medicine code for a query naming no study
DRUG_TABLE_FACTOR = 0.85  # a code found through the Table of Drugs for a query naming no poisoning
WITHOUT_FACTOR = 0.95  # a code found by a query's words but those negated ("ct head" for "ct head without contrast")
NEGATED_FACTOR = 0.6  # ... that names the negated word ("CT Scan of Head using Other Contrast")
_NEGATIONS = frozenset({"without", "no", "non"})
_LEVEL = re.compile(r"^(?:[ctls]\d{1,2}|x\d)$")   # a spinal level (l4, c5, t12, s1) or a count (x3)
STATUS_FACTOR = 0.8  # a status / history / aftercare Z code for a query that does not ask for one
#: words that ask for a status, history or aftercare code (the words of those Z codes' titles)
STATUS_WORDS = frozenset({
    "status", "history", "hx", "presence", "present", "absence", "absent", "acquired", "amputee", "dependence",
    "dependent", "long", "term", "use", "user", "allergy", "allergic", "family", "personal", "encounter",
    "aftercare", "fitting", "adjustment", "removal", "remove", "change", "changing", "care", "followup",
    "follow", "after", "following", "post", "postop", "noncompliance", "noncompliant", "risk", "exposure",
    "therapy", "therapeutic", "contraception", "contraceptive", "sterilization",
    "resistance", "resistant", "carrier", "bmi", "body", "mass", "index", "awaiting", "retained", "foreign",
    "problem", "problems", "lack", "inadequate", "underdosing", "unavailability", "observation", "supervision",
    "preparatory", "prophylactic", "convalescence", "rehabilitation", "palliative"})
_ENCOUNTER_WORDS = frozenset({"initial", "subsequent", "sequela", "encounter"})
_ONE_SIDE = frozenset({"left", "right"})  # the side words a "unilateral" code stands for
_CODE_QUERY = re.compile(r"^[A-Za-z0-9]{1,8}(\.[A-Za-z0-9]{0,5})?-?$")

_engines: dict[str, Engine] = {}
_by_sig: dict[Any, Engine] = {}
#: (store id, store generation, date) -> (store, engine): a request's engine without building
#: its signature (the generation changes whenever that store installs a release)
_by_store: dict[Any, tuple[Any, Engine]] = {}
_lock = threading.Lock()


@dataclass
class Hit:
    system: str
    code: str
    title: str
    billable: bool | None
    score: float
    matched: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"system": self.system, "code": self.code, "title": self.title,
                "billable": self.billable, "score": round(self.score, 4), "matched": list(self.matched)}


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    total: int
    truncated: bool
    offset: int = 0
    limit: int = 20
    error: str | None = None
    notes: list[str] = field(default_factory=list)   # e.g. no installed release covers the date

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "total": self.total, "truncated": self.truncated,
                               "offset": self.offset, "limit": self.limit,
                               "hits": [h.as_dict() for h in self.hits]}
        if self.error:
            out["error"] = self.error
        if self.notes:
            out["notes"] = list(self.notes)
        return out


# ------------------------------------------------------------------ engine cache
def _selection(cb: Any, date: _dt.date | None) -> Selection:
    systems: dict[str, ReleaseInfo] = {}
    for system in ALL_SYSTEMS:
        try:
            if cb.releases(system):
                systems[system] = cb.release_for(system, date)
        except MedcodesError:
            continue
    index: list[tuple[str, ReleaseInfo]] = []
    day = date or _dt.date.today()
    for system, books in (("icd10cm_index", ("index", "eindex", "drug", "neoplasm")), ("icd10pcs_index", ("pcs",))):
        infos = cb.store.releases(system)
        for book in books:
            having = [i for i in infos if _has_book(cb, i, book)]
            if not having:
                continue
            usable = [i for i in having if i.effective_from <= day] or having
            index.append((book, max(usable, key=lambda i: (i.effective_from, i.release))))
    gems = [i for i in cb.store.releases("crosswalk") if "i9-i10pcs" in i.counts]
    if gems:   # ICD-9-CM procedure titles lead to ICD-10-PCS codes through CMS's GEMs
        index.append(("gem", max(gems, key=lambda i: (i.effective_from, i.release))))
    return Selection(systems, index)


def _has_book(cb: Any, info: ReleaseInfo, book: str) -> bool:
    if info.system == "icd10pcs_index":
        return book == "pcs"
    return any(k.startswith(f"{book}_") for k in info.counts)


def _home(cb: Any) -> Path:
    store = getattr(cb, "store", None)
    if store is not None and getattr(store, "home", None) is not None:
        return Path(store.home)
    return Path(cb.home)


def engine_for(cb: Any, date: _dt.date | None = None) -> Engine:
    """The loaded engine for the releases in effect on ``date``, building the cache if needed."""
    store = cb.store
    quick = (id(store), getattr(store, "generation", None), date)
    eng = _by_store.get(quick)
    if eng is not None and eng[0] is store:   # the same store object, no release installed since
        return eng[1]
    sig = (_home(cb), date, tuple((i.system, i.release, i.path) for i in store.releases()))
    eng = _by_sig.get(sig)
    if eng is not None:
        _remember(quick, store, eng)
        return eng
    sel = _selection(cb, date)
    digest = sel.digest()
    path = _home(cb) / "search" / f"{digest}.sqlite"
    key = str(path)
    with _lock:
        eng = _engines.get(key)
        if eng is None:
            if not path.exists():
                _build(cb, sel, path, date)
            eng = Engine(path)
            _engines[key] = eng
        _by_sig[sig] = eng
    _remember(quick, store, eng)
    return eng


def _remember(quick: tuple[Any, ...], store: Any, eng: Engine) -> None:
    if quick[1] is not None:
        if len(_by_store) >= 64:
            _by_store.clear()
        _by_store[quick] = (store, eng)


def _build(cb: Any, sel: Selection, path: Path, date: _dt.date | None) -> None:
    """Compile in a child process (the build peaks at ~0.4 GB that a long-lived process should not keep)."""
    import subprocess
    import sys

    home = getattr(getattr(cb, "store", None), "home", None)
    if home is not None and type(cb).__name__ == "Codebook":
        args = [str(home), date.isoformat() if date else None, str(path)]
        code = f"from medcodes.search.api import _child_build; _child_build(*{args!r})"
        done = subprocess.run([sys.executable, "-c", code], check=False)
        if done.returncode == 0 and path.exists():
            return
    build(sel, lambda info: cb.store.open(info.system, info.release), path)


def _child_build(home: str, date: str | None, path: str) -> None:
    from ..codebook import Codebook

    cb = Codebook.open(home=home)
    try:
        day = _dt.date.fromisoformat(date) if date else None
        build(_selection(cb, day), lambda info: cb.store.open(info.system, info.release), Path(path))
    finally:
        cb.close()


def prepared(cb: Any, date: _dt.date | None = None) -> bool:
    """True when the index for the releases in effect is already compiled (nothing to do)."""
    return (_home(cb) / "search" / f"{_selection(cb, date).digest()}.sqlite").exists()


def prepare(cb: Any, date: _dt.date | None = None, prune: bool = True) -> Path:
    """Build (if needed) and load the index; returns the cache file. Call it at the end of a pull.

    With ``prune``, cache files of other selections under ``<home>/search`` (left by
    earlier pulls or other dates of service) are removed; they are rebuilt on demand.
    """
    path = engine_for(cb, date).path
    if prune:
        with _lock:
            live = {Path(k).name for k in _engines}
        for old in path.parent.glob("*.sqlite"):
            if old.name != path.name and old.name not in live:
                old.unlink(missing_ok=True)
    return path


def clear_cache() -> None:
    with _lock:
        for eng in _engines.values():
            eng.close()
        _engines.clear()
        _by_sig.clear()
        _by_store.clear()


# ------------------------------------------------------------------ search
def search(cb: Any, query: Any, systems: Iterable[str] | str | None = None, billable: bool | None = None,
           limit: int = 20, offset: int = 0, date: _dt.date | str | None = None,
           chapter: str | None = None) -> SearchResult:
    """Ranked search over titles, inclusion terms, the official indexes and code prefixes."""
    limit = max(0, min(int(limit or 0), MAX_LIMIT))
    offset = max(0, int(offset or 0))
    text = query if isinstance(query, str) else ("" if query is None else str(query))
    empty = SearchResult(text, [], 0, False, offset, limit)
    if len(text) > MAX_QUERY:
        empty.error = f"query too long ({len(text)} characters; at most {MAX_QUERY})"
        return empty
    words = _text.raw_tokens(text)
    if not words:
        empty.error = "empty query (no letters or digits)"
        return empty
    day = _dt.date.fromisoformat(date) if isinstance(date, str) else date
    wanted = _systems(systems)
    if isinstance(wanted, str):
        empty.error = wanted
        return empty
    eng = engine_for(cb, day)
    sys_ok = {i for i, s in enumerate(eng.systems) if s in wanted}
    ch_ok = _chapters(eng, chapter)

    accept = eng.accept(sys_ok, billable, ch_ok)
    board = eng.board()
    try:
        # a code prefix ("E11.", "0DT") lists codes; a word that is also a known abbreviation
        # ("dm2", "t2dm", "o2") is searched as words too, and its meaning ranks first
        synonym = _text.is_synonym(words)
        if not _code_query(eng, text, wanted, board, 0.5 if synonym else 1.0) or synonym:
            _text_query(eng, text, words, accept, offset + limit, board, wanted)
            _structure.reshape(eng, board, words, accept)
        cids = board.codes()
        cids = cids[accept(cids)]
        total = int(cids.size)
        page = _structure.diversify(eng, board, _top(board, cids, offset + limit + _structure.DIVERSIFY_EXTRA),
                                    offset + limit)[offset:]
        info = eng.codes_info(page.tolist())
        found = list(zip(board.score[page].tolist(), page.tolist(), board.field[page].tolist()))
    finally:
        board.reset()
    res = SearchResult(text, _hits(eng, found, info), total, total > offset + limit, offset, limit)
    if day is not None:
        res.notes = _gaps(cb, wanted, day)
    return res


def _gaps(cb: Any, wanted: set[str], day: _dt.date) -> list[str]:
    """One line per system searched whose installed releases do not cover ``day``."""
    out = []
    for system in sorted(wanted):
        try:
            if not cb.releases(system):
                continue
            info, covers = cb.release_covering(system, day)
        except MedcodesError:
            continue
        if not covers:
            out.append(cb.gap_note(system, day, info))
    return out


def _top(board: Board, cids: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best of ``cids``: score descending, then code id (release order)."""
    if k <= 0 or not cids.size:
        return cids[:0]
    sc = board.score[cids]
    if cids.size > 4 * k:
        kth = np.partition(sc, cids.size - k)[cids.size - k]
        keep = sc >= kth
        cids, sc = cids[keep], sc[keep]
    return cids[np.lexsort((cids, -sc))][:k]


def _systems(systems: Iterable[str] | str | None) -> set[str] | str:
    if systems is None:
        return set(DEFAULT_SYSTEMS)
    names = {systems} if isinstance(systems, str) else set(systems)
    names = {n.strip().lower().replace("-", "") for n in names if n and n.strip()}
    unknown = names - set(ALL_SYSTEMS)
    if unknown:
        return f"unknown system {sorted(unknown)[0]!r} (one of {', '.join(ALL_SYSTEMS)})"
    return names or set(DEFAULT_SYSTEMS)


def _chapters(eng: Engine, chapter: str | None) -> set[int] | None:
    """Chapter ids matching ``chapter`` (``19``, ``Chapter 19``, a chapter key), or None: no filter."""
    if not chapter:
        return None
    want = normalize_key(chapter)
    want = want.removeprefix("CHAPTER").lstrip("0") or want
    return {i for i, c in enumerate(eng.chapters)
            if (normalize_key(c).removeprefix("CHAPTER").lstrip("0") or normalize_key(c)) == want}


def _code_query(eng: Engine, text: str, wanted: set[str], board: Board, factor: float = 1.0) -> bool:
    """``E11.``, ``0DT``, ``E1165``: the codes under that prefix, in release order."""
    raw = text.strip()
    if not _CODE_QUERY.match(raw) or not any(ch.isdigit() for ch in raw):
        return False
    key = normalize_key(raw.rstrip("-"))
    found = False
    for system in eng.systems:
        if system not in wanted or ("." in raw and system not in DOTTED):
            continue
        ids, _total = eng.prefix_codes(system, key, 5000)
        if not ids:
            continue
        found = True
        arr = np.asarray(ids, dtype=np.int64)
        sc = np.full(arr.size, 0.9)
        if eng.codes_info([ids[0]])[ids[0]][1].replace(".", "") == key:
            sc[0] = 1.0
        board.offer(arr, sc * factor, np.full(arr.size, -1, dtype=np.int64))
    return found


def _text_query(eng: Engine, text: str, words: list[str], accept: Any, need: int, board: Board,
                wanted: set[str]) -> None:
    words = _lexicon.shorthand(words)     # "s/p", "n/v", "rt", "lt" spelled out before stop words go
    words = [_text.american(w, eng.is_token) for w in words]   # "tumour", "anaemia": the texts' spelling
    words = ["bilateral" if w == "both" else w for w in words]  # "oa both knees": a side, read as one
    words = _text.numerals(words)         # "type ii", "stage three": the digit the titles write
    words = _text.lexicon_spelling(words, eng.is_token, eng.near_words)   # "hart attack", "gall stones"
    content = [w for w in words if w not in _text.STOP_WORDS] or words
    content = _known(eng, content, text[-1:].isalnum())
    _words_query(eng, text, content, accept, need, board)
    _without(eng, text, content, accept, need, board)
    read = _text._replace_all(content)
    procedure = _text.names_procedure(read, eng.operations)
    if procedure and "icd10pcs" in wanted and len(content) >= 2:
        # "total", "radical", "elective": ICD-10-PCS says them with the root operation (Resection), never
        # as a word of a title; the other words are also searched ("total thyroidectomy" ->
        # "thyroidectomy" -> "Resection of Thyroid Gland"), a little lower than a literal match
        # (and a spinal level or count, "l4", "c5", "x3": PCS titles say "Lumbar Vertebral Joint",
        # "2 or more", never the level)
        rest = [w for w in content if w not in _text.PROCEDURE_MODIFIERS and not _LEVEL.match(w)]
        if rest and len(rest) < len(content):
            if _text.PARTIAL_WORDS.intersection(content):
                # "partial mastectomy": the -ectomy's Resection reads as Excision
                rest = ["excision" if w == "resection" else w for w in _text._replace_all(rest)]
            _pcs_also(eng, text, content, rest, accept, need, board)
        # an endoscopy named with what was done through it ("bronchoscopy with biopsy"): the scope gives
        # the body part and approach, the other word the root operation (Excision, not Inspection)
        scoped = _scoped(content, eng.operations)
        if scoped:
            _pcs_also(eng, text, content, scoped, accept, need, board)
    # what the query names (a procedure, a supply, a study, a poisoning, a status) sets a score factor
    # for each class of code (_factor_table)
    supply = not procedure and _text.names_supply(read)
    cids = board.codes()
    if not cids.size:
        return
    both = procedure and "hcpcs" in wanted and "icd10pcs" in wanted
    drug = "hcpcs" in wanted and not _text.POISONING_WORDS.intersection(read)
    table = _factor_table(procedure, supply, both, both and not _text.names_supply(read),
                          "icd10pcs" in wanted and not _text.names_imaging(read),
                          not STATUS_WORDS.intersection(content), drug)
    if table is None:
        return
    key = eng.code_classes()[cids]
    if drug:    # bit 128: the code's best field is a Table of Drugs entry
        key = key | (eng.drug_fields()[board.field[cids]] << 7)
    board.score[cids] *= table[key]


_TABLES: dict[tuple[bool, ...], np.ndarray | None] = {}


def _factor_table(procedure: bool, supply: bool, temporary: bool, hcpcs_supply: bool, imaging: bool,
                  status: bool, drug: bool) -> np.ndarray | None:
    """A query's score factor for each class of code (Engine.code_classes bits, 128: found through the
    Table of Drugs), or None when all are 1; one table per combination of the query's readings, built once.
    """
    flags = (procedure, supply, temporary, hcpcs_supply, imaging, status, drug)
    if flags in _TABLES:
        return _TABLES[flags]
    E = Engine
    k = np.arange(256)
    cm, pcs, hc = (k & E.CM) > 0, (k & E.PCS) > 0, (k & E.HCPCS) > 0
    table = np.ones(256)
    # a query naming a procedure ("liver transplant", "thyroidectomy") ranks the procedure codes
    # above the diagnoses that mention one ("Liver transplant status", "Postprocedural hypothyroidism")
    # (or a supply, drug dose or equipment: "ceftriaxone injection", "wheelchair cushion") ranks
    # them above conditions; an "Encounter for" code (chapter 21) names the procedure's reason
    if procedure or supply:
        table[cm] = np.where((k[cm] & E.REASON) > 0, PROCEDURE_DX_FACTOR, PROCEDURE_CONDITION_FACTOR)
        if supply:
            table[pcs] = SUPPLY_PCS_FACTOR
    if temporary:
        # HCPCS Level II temporary C (outpatient prospective payment) and G codes name a
        # procedure for one payer's rules; the procedure's own code ranks first (when the
        # search covers ICD-10-PCS: a HCPCS-only search has no such code to prefer)
        temp = (k & E.TEMPORARY) > 0
        table[temp] = TEMPORARY_FACTOR
        if hcpcs_supply:
            # ... and the HCPCS supply, drug or equipment a procedure uses ("External ambulatory
            # infusion pump, insulin" for "insulin pump insertion") ranks below the procedure
            table[hc & ~temp] = SUPPLY_PCS_FACTOR
    # an imaging or nuclear medicine study of a body part or device ("Ultrasonography of Kidney
    # Transplant") ranks below the procedure itself unless the query names a study
    if imaging:
        table[(k & E.IMAGING) > 0] *= IMAGING_FACTOR
    # a status / history / aftercare Z code ("Liver transplant status", "Presence of insulin pump")
    # ranks below the procedure, device or condition unless the query asks for one
    if status:
        table[(k & E.STATUS) > 0] *= STATUS_FACTOR
    # a drug named alone ("ceftriaxone") is the drug a HCPCS code supplies before the poisoning,
    # adverse effect and underdosing codes the Table of Drugs and Chemicals lists for it, unless
    # the query asks for one of those
    if drug:
        table[(k & 128) > 0] *= DRUG_TABLE_FACTOR
    out = table if (table != 1.0).any() else None
    _TABLES[flags] = out
    return out


def _scoped(content: list[str], operations: frozenset[str]) -> list[str] | None:
    """``content`` with its endoscopy word read as body part and approach words, when another word
    names what was done (a root operation, a procedure word or suffix), else None."""
    at = [i for i, w in enumerate(content) if w in _lexicon.SCOPES]
    if len(at) != 1:
        return None
    others = [w for i, w in enumerate(content) if i != at[0] and w != "with"]
    if not _text.names_procedure(_text._replace_all(others), operations):
        return None
    return [*_lexicon.SCOPES[content[at[0]]], *others]


def _pcs_also(eng: Engine, text: str, content: list[str], words: list[str], accept: Any, need: int,
              board: Board) -> None:
    """Search ``words`` (another reading of a procedure query's ``content``) for ICD-10-PCS codes,
    a little lower than a literal match."""
    tmp = eng.board("pcs_also")
    try:
        _words_query(eng, text if content[-1] == words[-1] else text + " ", words, accept, need, tmp)
        cids = tmp.codes()
        cids = cids[eng.c_sys[cids] == eng.systems.index("icd10pcs")]
        board.offer(cids, tmp.score[cids] * WITHOUT_FACTOR, tmp.field[cids])
    finally:
        tmp.reset()


def _without(eng: Engine, text: str, content: list[str], accept: Any, need: int, board: Board) -> None:
    """``without`` / ``no`` / ``w/o`` + a word a code's texts do not negate ("ct head without contrast":
    ICD-10-PCS titles name the contrast used, never its absence): the other words are also searched
    (a little lower than a literal match), and the codes naming the negated word rank below; only
    when the words as written found too little."""
    if len(content) < 3 or _NEGATIONS.isdisjoint(content):
        return
    neg = [i for i, w in enumerate(content[:-1]) if w in _NEGATIONS and content[i + 1] not in _NEGATIONS]
    if not neg:
        return
    cids = board.codes()
    if np.count_nonzero((board.score[cids] >= GOOD_SCORE) & accept(cids)) >= min(need, 3):
        return                            # the texts say it that way ("Type 2 diabetes without complications")
    drop = {j for i in neg for j in (i, i + 1)}
    rest = [w for j, w in enumerate(content) if j not in drop]
    if not rest:
        return
    tmp = eng.board("without")
    try:
        _words_query(eng, text if content[-1] == rest[-1] else text + " ", rest, accept, need, tmp)
        cids = tmp.codes()
        if cids.size > MAX_NEUTRAL:
            cids = np.sort(cids[np.argpartition(-tmp.score[cids], MAX_NEUTRAL)[:MAX_NEUTRAL]])
        named = np.zeros(cids.size, dtype=bool)
        for i in neg:
            named |= eng.have_words(cids, [eng.candidate(content[i + 1], False)])
        # a code stating the negation itself ("without complications") keeps its literal match
        named &= ~eng.have_words(cids, [eng.any_of(("without", "no", "not"))])
        board.offer(cids, tmp.score[cids] * np.where(named, NEGATED_FACTOR, WITHOUT_FACTOR), tmp.field[cids])
    finally:
        tmp.reset()


def _known(eng: Engine, content: list[str], last_is_prefix: bool) -> list[str]:
    """The query's words less those that can match nothing: no word of the index, none it starts, none a
    slip away, no reading (abbreviation, lay phrase, initials, two words run together) ("afib with rvr":
    every code would need "rvr"); a "with" /
    "without" they leave at the end goes too. Every word is kept when none would be left."""
    if len(content) < 2:
        return content
    keep = []
    last = len(content) - 1
    for i, w in enumerate(content):
        if (len(w) < 2 or w.isdigit() or not eng.candidate(w, last_is_prefix and i == last).empty()
                or _text._synonyms(w)
                or any(_text._synonyms(" ".join(content[j:j + n])) for n in (2, 3)
                       for j in range(max(0, i - n + 1), min(i, last - n + 1) + 1))
                or len(_text.synonym_variants([w], eng.initials, eng.known, eng.defined, eng.is_token)) > 1):
            keep.append(w)
    if len(keep) == len(content):
        return content
    while len(keep) > 1 and keep[-1] in _DANGLING:
        keep.pop()
    return keep or content


_DANGLING = frozenset({"with", "without", "w", "wo"})
_BOTH = ("bilateral", "both")


def _words_query(eng: Engine, text: str, content: list[str], accept: Any, need: int, board: Board) -> None:
    # the last word may be still being typed ("diab"), unless the whole query is an abbreviation or lay
    # phrase of the tables ("urti", "hypona": not "urticaria", "hyponasality" being typed)
    last_is_prefix = text[-1:].isalnum() and not (len(content) <= 4 and _text.is_synonym(content))
    quals = _text.qualifiers(content)
    core = [w for w in content if w not in quals]
    if not quals or not core:
        _match_words(eng, content, last_is_prefix, accept, need, board)
        return
    # laterality and encounter words ("left", "initial", "sequela") choose among the codes the
    # other words find: the index never states them (they are the 6th/7th characters), so they
    # are required somewhere in a code's texts but add nothing to how well a text matches
    tmp = eng.board("qualified")
    try:
        _match_words(eng, core, last_is_prefix and content[-1] == core[-1], accept, need, tmp)
        cids = tmp.codes()
        if cids.size > MAX_QUALIFY:
            cids = np.sort(cids[np.argpartition(-tmp.score[cids], MAX_QUALIFY)[:MAX_QUALIFY]])
        # "Blindness, both eyes": a title saying "both" states the bilateral code
        qc = [eng.any_of(_BOTH) if q == "bilateral" else eng.candidate(q, False) for q in quals]
        ok = eng.have_words(cids, qc, own=True)
        board.offer(cids[ok], tmp.score[cids[ok]], tmp.field[cids[ok]])
        if any(q in _ONE_SIDE for q in quals) and (~ok).any():
            # "right inguinal hernia": K40.90 says "unilateral", the side ICD-10-CM codes for it
            one = [eng.any_of((q, "unilateral")) if q in _ONE_SIDE else c for q, c in zip(quals, qc)]
            lack = cids[~ok]
            lack = lack[eng.c_bill[lack] == 1]       # a header's codes below state the side
            if lack.size > MAX_NEUTRAL:
                lack = np.sort(lack[np.argpartition(-tmp.score[lack], MAX_NEUTRAL)[:MAX_NEUTRAL]])
            uni = eng.have_words(lack, one, own=True)
            # ... and states no other side ("Unilateral primary osteoarthritis, left knee" is not right)
            other = tuple(w for w in ("left", "right", "bilateral") if w not in quals)
            uni[uni] = ~eng.have_words(lack[uni], [eng.any_of(other)], own=True)
            ok[np.isin(cids, lack[uni], assume_unique=True)] = True
            board.offer(lack[uni], tmp.score[lack[uni]] * UNILATERAL_FACTOR, tmp.field[lack[uni]])
        # "bilateral" where the classification has no bilateral code: "assign separate codes for both
        # the left and right side" (guideline I.B.13), so the right and left codes the words found
        both = None
        if "bilateral" in quals and (~ok).any():
            both = [eng.any_of(("right", "left")) if q == "bilateral" else c for q, c in zip(quals, qc)]
            lack = cids[~ok]
            if lack.size > MAX_NEUTRAL:
                lack = np.sort(lack[np.argpartition(-tmp.score[lack], MAX_NEUTRAL)[:MAX_NEUTRAL]])
            two = eng.have_words(lack, both, own=True)
            board.offer(lack[two], tmp.score[lack[two]] * BILATERAL_SIDES_FACTOR, tmp.field[lack[two]])
        # the lateral / encounter codes below the best ICD-10-CM codes that do not state it ("Varix,
        # leg" is I83.90, unspecified side: "left" picks I83.92 below the same parent); in ICD-10-PCS
        # the side is the body part, whose codes the index's tables already lead to
        if (~ok).any():
            lack = cids[~ok]
            lack = lack[eng.c_sys[lack] == eng.systems.index("icd10cm")] if "icd10cm" in eng.systems else lack[:0]
            best = lack[np.argsort(-tmp.score[lack], kind="stable")[:RELATIVES_OF]]
            rel, src = eng.relatives(best)
            billable = eng.c_bill[rel] == 1
            rel, src = rel[billable], src[billable]
            if rel.size:
                good = eng.have_words(rel, qc, own=True)
                if both is not None:
                    # no bilateral code below: the right and the left ones (guideline I.B.13)
                    two = ~good & eng.have_words(rel, both, own=True)
                    board.offer(rel[two], tmp.score[src[two]] * RELATIVE_FACTOR * BILATERAL_SIDES_FACTOR
                                * eng.c_pref[rel[two]], tmp.field[src[two]])
                rel, src = rel[good], src[good]
                # of the codes below one code, those the words found themselves first ("Cellulitis,
                # lower limb" -> L03.11-: "Cellulitis of right lower limb" before "... right axilla")
                # (a code the same field led to, with its own weight there, breaks the tie)
                own = np.where(tmp.field[rel] == tmp.field[src],
                               np.clip(tmp.score[rel] / np.maximum(tmp.score[src], 1e-9), 0.0, 1.0), 0.0)
                board.offer(rel, tmp.score[src] * RELATIVE_FACTOR * eng.c_pref[rel] * (1.0 + 0.01 * own),
                            tmp.field[src])
        # a code the qualifier cannot apply to (no laterality at all: "Plantar fascial fibromatosis"
        # for "plantar fasciitis left") stays, below the codes that state it
        rest = cids[~ok]
        if rest.size > MAX_NEUTRAL:
            rest = rest[np.argpartition(-tmp.score[rest], MAX_NEUTRAL)[:MAX_NEUTRAL]]
        if rest.size:
            neutral = np.ones(rest.size, dtype=bool)
            for group in {_text.QUALIFIER_GROUPS[q] for q in quals}:
                neutral &= ~eng.have_words(rest, [eng.any_of(group)], own=True)
            rest = rest[neutral]
            factor = ENCOUNTER_NEUTRAL_FACTOR if _ENCOUNTER_WORDS.intersection(quals) else NEUTRAL_FACTOR
            board.offer(rest, tmp.score[rest] * factor, tmp.field[rest])
        # a field stating the qualifier with the other words (the Index's "Hernia, inguinal,
        # bilateral" -> K40.20) ranks its code above one found by the other words alone
        # (ICD-10-CM only: in ICD-10-PCS the side is the body part, "Left Hip Muscle" is no hip joint)
        # (sides only: the encounter words are never an Index entry's, and reading them costs)
        if "icd10cm" in eng.systems and not _ENCOUNTER_WORDS.intersection(quals):
            tmp.reset()
            eng.match(content, last_is_prefix, QUALIFIED_FIELD_FACTOR, tmp)
            full = tmp.codes()
            full = full[eng.c_sys[full] == eng.systems.index("icd10cm")]
            board.offer(full, tmp.score[full], tmp.field[full])
    finally:
        tmp.reset()


def _match_words(eng: Engine, content: list[str], last_is_prefix: bool, accept: Any, need: int,
                 board: Board) -> None:
    variants = _text.synonym_variants(content, eng.initials, eng.known, eng.defined, eng.is_token)
    forms = [eng.dominant_form(w) for w in content]
    if any(forms):
        # a rare form of a word whose family the texts write otherwise ("fractured wrist": fracture)
        dominant = [f or w for f, w in zip(forms, content)]
        if all(v != dominant for v, _f in variants):
            variants.insert(1, (dominant, DOMINANT_FACTOR))
    if len(variants) > 1 and _text.is_synonym(content) and all(_text.stem(w) not in eng.tok_id for w in content):
        # the whole query is an abbreviation the texts never write ("urti", "lgib"): its readings, not
        # the longer words it happens to start ("urticaria")
        variants = variants[1:]
    partials = [eng.match(vwords, last_is_prefix, factor, board) for vwords, factor in variants]
    cids = board.codes()
    good = int(np.count_nonzero((board.score[cids] >= GOOD_SCORE) & accept(cids)))
    if good < min(need, 3):
        for (_vwords, factor), got in zip(variants[:3], partials):
            if got is not None:
                eng.cross(got[0], got[1], factor, board)
        cids = board.codes()
        good = int(np.count_nonzero((board.score[cids] >= GOOD_SCORE) & accept(cids)))
    if good < min(need, 3) and 2 <= len(variants[0][0]) <= 8:
        _relax(eng, variants[:2], last_is_prefix, board)
        if not board.codes().size and len(variants[0][0]) >= 4:
            # still nothing ("catheter associated urinary tract infection"): all words but two
            _relax(eng, variants[:1], last_is_prefix, board, drop=2)


def _relax(eng: Engine, variants: list[tuple[list[str], float]], last_is_prefix: bool, board: Board,
           drop: int = 1) -> None:
    """Few codes have every word: accept codes that have all words but ``drop``, at a lower score."""
    for vwords, factor in variants:
        last = len(vwords) - 1
        for gone in itertools.combinations(range(len(vwords)), drop):
            rest = [w for i, w in enumerate(vwords) if i not in gone]
            eng.match(rest, last_is_prefix and last not in gone, factor * (0.6 if drop == 1 else 0.45), board)


def _hits(eng: Engine, page: list[tuple[float, int, int]], codes: dict[int, Any]) -> list[Hit]:
    fields = eng.fields_info([f for _s, _c, f in page])
    hits = []
    for score, cid, f in page:
        system, code, title, bill, _ch = codes[cid]
        if f < 0:
            why = ["code"]
        else:
            kind, ftext = fields[f]
            label = KIND_LABEL[KINDS[kind]]
            why = [label if kind in (0, 1) else f"{label}: {ftext}"]
        hits.append(Hit(system, code, title, None if bill < 0 else bool(bill), min(1.0, score), why))
    return hits
