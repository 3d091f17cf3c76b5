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

import polars as pl

from .codefacts import DX_SCHEMA, DxCode, DxTables
from .facts import AgeLimit, DxFacts, NoteRefs
from .refs import Ref, RefIndex, parse_refs

_BUCKET = {"codeFirst": "code_first", "useAdditionalCode": "use_additional", "codeAlso": "code_also"}
_NCOLS = len(DX_SCHEMA)


class Note:
    """An Excludes note as the pair rule reads it: its text and its citation."""

    __slots__ = ("text", "_cite")

    def __init__(self, text: str, cite: str) -> None:
        self.text, self._cite = text, cite

    def cite(self) -> str:
        return self._cite


def _lists(frame: pl.DataFrame, order: str, cols: list[str], prefix: str) -> pl.DataFrame:
    """One row per owner, each column a list in ``order``; texts as categoricals (stored once)."""
    return (frame.sort("owner", order, maintain_order=True)
            .with_columns(pl.col(c).cast(pl.Categorical) for c in cols if frame.schema[c] == pl.String)
            .group_by("owner", maintain_order=True)
            .agg(pl.col(c).alias(f"{prefix}{c}") for c in cols)
            .rename({"owner": "key"}))


class FactIndex:
    """A release's facts by key (:meth:`get`), from its :class:`DxTables`."""

    def __init__(self, tables: DxTables, label: str) -> None:
        self.label = label
        wide = tables.codes.select(list(DX_SCHEMA))
        parts = [
            _lists(tables.prefixes, "kind", ["kind", "prefix", "note", "cite"], "p_"),
            _lists(tables.ranges, "ord", ["kind", "lo", "hi", "note", "cite"], "r_"),
            _lists(tables.limits, "n", ["unit", "lo", "hi", "lseverity", "ltext", "lsource"], "l_"),
            _lists(tables.secondaries, "n", ["why"], "s_"),
            _lists(tables.notes, "n", ["kind", "text", "origin", "level", "conditional"], "n_"),
        ]
        for p in parts:
            wide = wide.join(p, on="key", how="left", maintain_order="left")
        self._frame = wide.with_columns(pl.col(c).cast(pl.Categorical) for c in (
            "release", "status", "extra", "secondary_only", "manifestation", "supplementary", "fsex", "sex_source"))
        self._row = self._frame.row
        self._at = {k: i for i, k in enumerate(self._frame.get_column("key").to_list())}
        self._cols = tuple(DX_SCHEMA)

    def __len__(self) -> int:
        return len(self._at)

    def __contains__(self, key: str) -> bool:
        return key in self._at

    def get(self, key: str) -> DxCode | None:
        """What ``key`` is in the release (as :func:`~medcodes.claims.codefacts.classify_dx` says), or None
        when the release does not hold the key."""
        i = self._at.get(key)
        if i is None:
            return None
        r = self._row(i)
        row = dict(zip(self._cols, r[:_NCOLS]))
        if not row["has_facts"]:
            return DxCode(row, None)
        (p_kind, p_prefix, p_note, p_cite, r_kind, r_lo, r_hi, r_note, r_cite, l_unit, l_lo, l_hi, l_sev,
         l_text, l_src, s_why, n_kind, n_text, n_origin, n_level, n_cond) = r[_NCOLS:]
        f = DxFacts(row["code"], key, row["title"], row["status"] == "ok", row["release"], self.label,
                    secondary_only=row["secondary_only"], manifestation=row["manifestation"],
                    supplementary=row["supplementary"], sex=row["fsex"], sex_source=row["sex_source"] or "",
                    about_patient=bool(row["about_patient"]))
        if n_kind:
            for kind, text, origin, level, cond in zip(n_kind, n_text, n_origin, n_level, n_cond):
                if kind == "principalOnly":
                    f.principal_only = text
                else:
                    getattr(f, _BUCKET[kind]).append(NoteRefs(kind, text, origin, level, parse_refs(text), cond))
        if l_unit:
            f.age_limits = tuple(map(AgeLimit, l_unit, l_lo, l_hi, l_sev, l_text, l_src))
        if s_why:
            f.secondary_guideline = tuple(s_why)
        if p_kind or r_kind:
            ex: dict[int, list[tuple[Ref, Note]]] = {1: [], 2: []}
            notes: dict[tuple[str, str], Note] = {}
            for kind, prefix, text, cite in zip(p_kind or (), p_prefix or (), p_note or (), p_cite or ()):
                note = notes.get((text, cite)) or notes.setdefault((text, cite), Note(text, cite))
                ex[kind].append((Ref(prefix, None, ""), note))
            for kind, lo, hi, text, cite in zip(r_kind or (), r_lo or (), r_hi or (), r_note or (), r_cite or ()):
                note = notes.get((text, cite)) or notes.setdefault((text, cite), Note(text, cite))
                ex[kind].append((Ref(lo, hi, ""), note))
            f.ex1 = RefIndex(ex[1]) or None
            f.ex2 = RefIndex(ex[2]) or None
        return DxCode(row, f)


def load(tables: DxTables | None, label: str) -> FactIndex | None:
    return FactIndex(tables, label) if tables is not None else None


__all__ = ["FactIndex", "Note", "load"]
