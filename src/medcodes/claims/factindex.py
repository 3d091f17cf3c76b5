"""One ICD-10-CM release's precompiled facts, read by code: what the per-claim checker knows about a code.

``medcodes pull`` runs :func:`~medcodes.claims.codefacts.classify_dx` over every code of each
release into Parquet tables (:class:`~medcodes.claims.codefacts.DxTables`). :class:`FactIndex`
reads them once per release into one table with a row per code (its fact row, and as lists its
Excludes references, age limits, secondary-only statements and sequencing notes; repeated texts
stored once, as categoricals) and a key -> row dictionary. :meth:`FactIndex.get` turns one row back
into the :class:`~medcodes.claims.codefacts.DxCode` ``classify_dx`` gives for that key (a few
microseconds: no store read, no note parsing beyond the cached reference parser), so a claim's
codes cost a dictionary probe and, the first time, one row read. Keys the release does not hold
(deleted, not yet valid, invalid, other code sets) are not in the tables: the checker classifies
those one by one.
"""

from __future__ import annotations

from typing import Any, Callable

import polars as pl

from .codefacts import DX_SCHEMA, DxCode, DxTables
from .facts import _CONDITION, AgeLimit, DxFacts, NoteRefs, title_conditions
from .refs import Ref, RefIndex, parse_refs

_BUCKET = {"codeFirst": "code_first", "useAdditionalCode": "use_additional", "codeAlso": "code_also"}
_NCOLS = len(DX_SCHEMA)
(_RELEASE, _HAS_FACTS, _CODE, _TITLE, _STATUS, _SECONDARY_ONLY, _MANIFESTATION, _SUPPLEMENTARY, _FSEX, _SEX_SOURCE,
 _ABOUT_PATIENT) = (list(DX_SCHEMA).index(c) for c in (
    "release", "has_facts", "code", "title", "status", "secondary_only", "manifestation", "supplementary", "fsex",
    "sex_source", "about_patient"))
_NONE: Any = ()     # an empty notes list, shared
_SEQ_KEYS = ("groups", "tags", "code_first")    # what DxFacts caches of its sequencing notes (facts.py)


class Note:
    """An Excludes note as the pair rule reads it: its text and its citation."""

    __slots__ = ("text", "_cite")

    def __init__(self, text: str, cite: str) -> None:
        self.text, self._cite = text, cite

    def cite(self) -> str:
        return self._cite


def _groups(frame: pl.DataFrame, order: str, cols: list[str]) -> tuple[pl.DataFrame, list[tuple[Any, ...]], list[str]]:
    """Each owner's rows (in ``order``) as an id of the distinct list they form, one example of each
    distinct list (codes under one category share their inherited notes: a few thousand lists per release)
    and each list's signature (the same in every release that states the same list)."""
    if frame.height == 0:
        return pl.DataFrame(schema={"key": pl.String, "gid": pl.Int64}), [], []
    text = pl.concat_str([pl.col(c).cast(pl.String).fill_null("\x00") for c in cols], separator="\x1e")
    per = (frame.sort("owner", order, maintain_order=True)
           .group_by("owner", maintain_order=True)
           .agg(text.str.join("\x1f").alias("sig"), *[pl.col(c) for c in cols]))
    per = per.with_columns(pl.col("sig").rank("dense").cast(pl.Int64).sub(1).alias("gid"))
    first = per.unique("gid", keep="first").sort("gid")
    examples = [tuple(zip(*row)) for row in first.select(cols).iter_rows()]
    return per.select(pl.col("owner").alias("key"), "gid"), examples, first.get_column("sig").to_list()


class Shared:
    """What the :class:`FactIndex` es of one checker share across releases: each distinct list of Excludes
    references, age limits, secondary-only statements or sequencing notes (by its signature) built once,
    and each code's :class:`~medcodes.claims.facts.DxFacts` when another release states the same facts for
    it (most codes are unchanged from one release to the next: the second release reuses the first's
    object, with what the checker has cached on it)."""

    __slots__ = ("lists", "facts", "seq", "plain")

    def __init__(self) -> None:
        self.lists: dict[tuple[str, str], tuple[int, Any]] = {}   # (table, signature) -> (id, the list built)
        # (a code's content id, its lists' ids) -> (its DxFacts, the fact row it was built from)
        self.facts: dict[tuple[int, ...], tuple[DxFacts, tuple[Any, ...]]] = {}
        self.seq: dict[Any, dict[str, Any]] = {}     # notes id (and title_conditions) -> sequencing groups built once
        self.plain: set[int] = set()       # notes ids whose grouping does not depend on the code's title

    def intern(self, table: str, sigs: list[str], lists: list[tuple[Any, ...]],
               build: Callable[[tuple[Any, ...]], Any]) -> tuple[list[Any], list[int]]:
        """Each distinct list of a release (its signature, its rows) as (the shared object, its id)."""
        objs, ids = [], []
        for sig, rows in zip(sigs, lists):
            got = self.lists.get((table, sig))
            if got is None:
                got = self.lists[(table, sig)] = (len(self.lists), build(rows))
            ids.append(got[0])
            objs.append(got[1])
        return objs, ids


class FactIndex:
    """A release's facts by key (:meth:`get`), from its :class:`DxTables`.

    What codes share -- their Excludes indexes, age limits, secondary-only statements and sequencing
    notes, mostly inherited from a category, block or chapter -- is built once per distinct list and
    shared (across releases too, through ``shared``); each code keeps its fact row and the ids of its
    lists, as one Python tuple read when the code is first met."""

    def __init__(self, tables: DxTables, label: str, shared: Shared | None = None,
                 classes: tuple[str, ...] = ()) -> None:
        """``classes``: fact columns whose distinct values :meth:`class_of` numbers (the checker's candidate
        rules follow them)."""
        self.label = label
        self.shared = shared = shared if shared is not None else Shared()
        wide = tables.codes.select(list(DX_SCHEMA))
        notes: dict[tuple[str, str], Note] = {}

        def note(text: str, cite: str) -> Note:
            got = notes.get((text, cite))
            if got is None:
                got = notes[(text, cite)] = Note(text, cite)
            return got

        def excludes(rows: tuple[Any, ...]) -> tuple[RefIndex | None, RefIndex | None]:
            ex: dict[int, list[tuple[Ref, Note]]] = {1: [], 2: []}
            for part, kind, lo, hi, text, cite in rows:
                ex[kind].append((Ref(lo, hi or None, ""), note(text, cite)))
            return RefIndex(ex[1]) or None, RefIndex(ex[2]) or None

        both = pl.concat([
            tables.prefixes.select("owner", pl.lit(0).alias("part"), "kind", pl.lit(0).cast(pl.Int64).alias("ord"),
                                   pl.col("prefix").alias("lo"), pl.lit("").alias("hi"), "note", "cite"),
            tables.ranges.select("owner", pl.lit(1).alias("part"), "kind", "ord", "lo", "hi", "note", "cite")])
        both = both.with_columns((pl.col("part") * 1_000_000 + pl.col("ord")).alias("o"))
        ex_ids, ex_lists, ex_sigs = _groups(both, "o", ["part", "kind", "lo", "hi", "note", "cite"])
        self._ex, self._gex = shared.intern("ex", ex_sigs, ex_lists, excludes)
        lim_ids, lim_lists, lim_sigs = _groups(tables.limits, "n", ["unit", "lo", "hi", "lseverity", "ltext",
                                                                    "lsource"])
        self._limits, self._glim = shared.intern("lim", lim_sigs, lim_lists,
                                                 lambda rows: tuple(AgeLimit(*r) for r in rows))
        sec_ids, sec_lists, sec_sigs = _groups(tables.secondaries, "n", ["why"])
        self._secondary, self._gsec = shared.intern("sec", sec_sigs, sec_lists, lambda rows: tuple(r[0] for r in rows))
        note_ids, note_lists, note_sigs = _groups(tables.notes, "n", ["kind", "text", "origin", "level",
                                                                      "conditional"])
        self._notes, self._gnotes = shared.intern("notes", note_sigs, note_lists, self._note_lists)
        # notes whose grouping does not depend on the code's title (facts.group_applies): grouped once
        for g, (a, b, c, _p) in zip(self._gnotes, self._notes):
            if not any(_CONDITION.search(n.text) for n in (*a, *b, *c)):
                shared.plain.add(g)
        for name, ids in (("ex", ex_ids), ("lim", lim_ids), ("sec", sec_ids), ("notes", note_ids)):
            wide = wide.join(ids.rename({"gid": name}), on="key", how="left", maintain_order="left")
        # each row's fact columns less the release as one integer (the cross-release sharing key of :meth:`lookup`:
        # an integer hashes in nanoseconds, a tuple of a dozen texts first read does not; a hit is verified)
        wide = wide.with_columns(pl.struct(list(DX_SCHEMA)[1:]).hash().alias("cid"))
        # one tuple per code (read far faster than a DataFrame row); a column's repeated texts (the release,
        # statuses, inherited notes' citations) one object each
        cols = []
        for s in wide.iter_columns():
            vals = s.to_list()
            if s.dtype == pl.String and s.n_unique() < len(vals) // 4:
                one: dict[Any, Any] = {}
                vals = [one.setdefault(v, v) for v in vals]
            cols.append(vals)
        self._rows = list(zip(*cols))
        self._at = {r[1]: i for i, r in enumerate(self._rows)}
        self._cols = tuple(DX_SCHEMA)
        # each row's class: the distinct values of the ``classes`` columns (a few dozen), numbered, and a row of each
        by_class: dict[tuple[Any, ...], int] = {}
        pos = [self._cols.index(c) for c in classes]
        self._class = [by_class.setdefault(tuple(r[p] for p in pos), len(by_class)) for r in self._rows]
        self.class_rows = [0] * len(by_class)
        for i, k in enumerate(self._class):
            self.class_rows[k] = i

    @staticmethod
    def _note_lists(rows: tuple[Any, ...]) -> tuple[tuple[NoteRefs, ...], tuple[NoteRefs, ...], tuple[NoteRefs, ...],
                                                   str | None]:
        out: dict[str, list[NoteRefs]] = {"codeFirst": [], "useAdditionalCode": [], "codeAlso": []}
        principal = None
        for kind, text, origin, level, cond in rows:
            if kind == "principalOnly":
                principal = text
            else:
                out[kind].append(NoteRefs(kind, text, origin, level, parse_refs(text), cond))
        return tuple(out["codeFirst"]), tuple(out["useAdditionalCode"]), tuple(out["codeAlso"]), principal

    def __len__(self) -> int:
        return len(self._at)

    def __contains__(self, key: str) -> bool:
        return key in self._at

    def get(self, key: str) -> DxCode | None:
        """What ``key`` is in the release (as :func:`~medcodes.claims.codefacts.classify_dx` says), or None
        when the release does not hold the key."""
        hit = self.lookup(key)
        return None if hit is None else DxCode(self.row(hit[0]), hit[1])

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i``'s fact row (:data:`~medcodes.claims.codefacts.DX_SCHEMA`)."""
        return dict(zip(self._cols, self._rows[i]))     # (the list ids past the fact columns are left out by zip)

    def class_of(self, i: int) -> int:
        """Row ``i``'s class (its values of the ``classes`` columns, numbered; :attr:`class_rows` has a row of each)."""
        return self._class[i]

    def lookup(self, key: str) -> tuple[int, DxFacts | None] | None:
        """(the key's row number, its DxFacts: None when it is neither a billable code nor a header), or None
        when the release does not hold the key: :meth:`get` without building the fact row."""
        i = self._at.get(key)
        if i is None:
            return None
        r = self._rows[i]
        if not r[_HAS_FACTS]:
            return i, None
        ex, lim, sec, notes, cid = r[_NCOLS:]
        g_notes = -1 if notes is None else self._gnotes[notes]
        # the same facts in another release (all but the release column, and the same lists): the same object
        same = (cid, -1 if ex is None else self._gex[ex], -1 if lim is None else self._glim[lim],
                -1 if sec is None else self._gsec[sec], g_notes)
        shared = self.shared
        got = shared.facts.get(same)
        if got is not None:
            f, other = got
            if other[1:_NCOLS] == r[1:_NCOLS]:     # (not two rows whose content hashes collide)
                return i, f
            same = None
        # the lists are shared, read-only (nothing appends to a DxFacts' notes once it is built)
        f = DxFacts(r[_CODE], key, r[_TITLE], r[_STATUS] == "ok", r[_RELEASE], self.label,
                    excludes1=_NONE, excludes2=_NONE, code_first=_NONE, use_additional=_NONE, code_also=_NONE,
                    secondary_only=r[_SECONDARY_ONLY], manifestation=r[_MANIFESTATION],
                    supplementary=r[_SUPPLEMENTARY], sex=r[_FSEX], sex_source=r[_SEX_SOURCE] or "",
                    about_patient=bool(r[_ABOUT_PATIENT]))
        if notes is not None:
            f.code_first, f.use_additional, f.code_also, f.principal_only = self._notes[notes]  # type: ignore[assignment]
            # the sequencing groups of another code with the same notes (and, when a note states a condition,
            # the same answer to it: facts.title_conditions): grouped once
            seq_key = g_notes if g_notes in shared.plain else (g_notes, title_conditions(f.title))
            seq = shared.seq.get(seq_key)
            if seq is not None:
                f._index.update(seq)
            else:
                f.group_tags()
                f.code_first_groups()
                shared.seq[seq_key] = {k: f._index[k] for k in _SEQ_KEYS}
        if lim is not None:
            f.age_limits = self._limits[lim]
        if sec is not None:
            f.secondary_guideline = self._secondary[sec]
        if ex is not None:
            f.ex1, f.ex2 = self._ex[ex]
        if same is not None:
            if len(shared.facts) > 500_000:
                shared.facts.clear()
            shared.facts[same] = (f, r)
        return i, f


def load(tables: DxTables | None, label: str, shared: Shared | None = None) -> FactIndex | None:
    return FactIndex(tables, label, shared) if tables is not None else None


__all__ = ["FactIndex", "Note", "Shared", "load"]
