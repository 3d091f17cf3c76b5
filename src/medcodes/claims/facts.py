"""What the classification itself says about one code, derived once per (release, code) and cached.

Everything a claim rule needs about an ICD-10-CM code comes from its lookup
record (``cb.lookup``): its own and inherited notes (excludes1/2, codeFirst,
useAdditionalCode, codeAlso, chapter notes), its title and its ancestors'
titles. Nothing here is a list of codes: the sex, age, newborn, maternal,
"secondary only" and manifestation facts are read from those texts, and each
fact keeps the note it came from so a finding can cite it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .refs import Ref, RefIndex, parse_refs

# --- how the Tabular List words the facts the rules use ------------------------------------
_MATERNAL = re.compile(r"\bonly on maternal records\b|\bmaternal records only\b|\bon the mother'?s record\b", re.I)
_NOT_MATERNAL = re.compile(r"\bnot (?:to be used|for use) on the mother'?s record", re.I)
_NEWBORN_ONLY = re.compile(r"\bfor use on newborn records only\b", re.I)
_BIRTH_RECORD = re.compile(r"\binitial (?:birth )?record of a newborn\b|\binitial birth record only\b", re.I)
_SECONDARY = re.compile(r"\bused secondary to a code from another chapter\b", re.I)
_MANIFESTATION = re.compile(r"\bin diseases classified elsewhere\b", re.I)
_FEMALE = re.compile(r"\bfemales?\b", re.I)
_MALE = re.compile(r"\bmales?\b", re.I)
_AGE_MAX = re.compile(r"\b(?:less than|under|younger than)\s+(\d+)\s+years?\b|<\s*(\d+)\s+years?\b", re.I)
_AGE_MIN = re.compile(r"\b(\d+)\s+years?\s+(?:and|or)\s+(?:older|over)\b", re.I)
_AGE_RANGE = re.compile(r"\((\d+)\s*-\s*(\d+)\s+years? of age\)", re.I)
_IF_APPLICABLE = re.compile(r"\bif applicable\b|\bif known\b|\bany\b", re.I)
_PERINATAL_SPAN = re.compile(r"first (\d+) days after birth", re.I)

#: note kinds whose texts describe the code itself (not other codes)
_SELF_KINDS = ("inclusionTerm", "includes", "notes")


@dataclass(frozen=True, slots=True)
class NoteRefs:
    kind: str
    text: str
    origin: str           # the code (or "Chapter 15", "O00-O08") where the note is stated
    level: str            # kind of the node stating it: chapter, block, category, code...
    refs: tuple[Ref, ...]
    conditional: bool     # "if applicable", "if known", "any"

    def cite(self) -> str:
        return f"ICD-10-CM Tabular List, {self.kind} note at {self.origin}: \"{self.text}\""


@dataclass(slots=True)
class DxFacts:
    """One ICD-10-CM code as the claim rules see it."""

    code: str
    key: str
    title: str
    billable: bool
    release: str
    release_label: str
    chapter: str = ""
    excludes1: list[NoteRefs] = field(default_factory=list)
    excludes2: list[NoteRefs] = field(default_factory=list)
    code_first: list[NoteRefs] = field(default_factory=list)
    use_additional: list[NoteRefs] = field(default_factory=list)
    code_also: list[NoteRefs] = field(default_factory=list)
    secondary_only: str | None = None      # the note saying it is used secondary to another chapter
    manifestation: str | None = None       # the title saying "in diseases classified elsewhere"
    maternal: str | None = None            # note: maternal records only
    newborn_only: str | None = None        # note: newborn records only (perinatal chapter)
    perinatal_days: int | None = None      # "first 28 days after birth"
    birth_record: str | None = None        # note: initial birth record of a newborn only
    sex: str | None = None                 # "F" / "M" when the title (or an ancestor's) says so
    sex_source: str = ""
    age_min: int | None = None
    age_max: int | None = None
    age_source: str = ""
    about_patient: bool = False            # any sex/age fact above: the patient rules look at this code
    ex1: RefIndex | None = None            # index("excludes1") when it has references, else None
    ex2: RefIndex | None = None            # index("excludes2") likewise
    _index: dict[str, Any] = field(default_factory=dict, repr=False)

    def index(self, kind: str) -> RefIndex:
        """Excludes1 / Excludes2 (chapter and block notes left out) references, indexed once."""
        idx = self._index.get(kind)
        if idx is None:
            notes = self.excludes1 if kind == "excludes1" else [
                n for n in self.excludes2 if n.level not in ("chapter", "block")]
            idx = self._index[kind] = RefIndex([(r, n) for n in notes for r in n.refs])
        return idx

    def groups(self) -> list[tuple[str, str, list[NoteRefs], RefIndex]]:
        """use-additional-code / code-also notes stated together at one node, each group indexed once."""
        got = self._index.get("groups")
        if got is None:
            got = []
            for rule, kind, notes in (("dx-use-additional-code", "use additional code", self.use_additional),
                                      ("dx-code-also", "code also", self.code_also)):
                by_origin: dict[str, list[NoteRefs]] = {}
                for n in notes:
                    if n.refs:
                        by_origin.setdefault(n.origin, []).append(n)
                for group in by_origin.values():
                    got.append((rule, kind, group, RefIndex([(r, n) for n in group for r in n.refs])))
            self._index["groups"] = got
        return got

    def group_tags(self) -> tuple[tuple[int, tuple[str, str, str], RefIndex], ...]:
        """(n, (rule, origin, text), index) of each of :meth:`groups`: what the sequencing rule loops over."""
        got = self._index.get("tags")
        if got is None:
            got = self._index["tags"] = tuple((n, (rule, group[0].origin, group[0].text), idx)
                                              for n, (rule, _k, group, idx) in enumerate(self.groups()))
        return got


def dx_facts(rec: Any, ancestor_terms: list[dict[str, Any]] = ()) -> DxFacts:  # type: ignore[assignment]
    """Derive :class:`DxFacts` from a ``cb.lookup`` record of an ICD-10-CM code.

    ``ancestor_terms`` are the inclusion terms stated at the code's category and
    subcategories (the lookup record only inherits the other note kinds); they
    describe the code too (e.g. O09.5 "Pregnancy for a female 35 years and older").
    """
    chapter = next((a["title"] for a in rec.ancestors if a.get("kind") == "chapter"), "")
    f = DxFacts(rec.code, rec.code.replace(".", ""), rec.title, bool(rec.billable), rec.release,
                rec.release_label, chapter)
    levels = {a["code"]: a.get("kind", "") for a in rec.ancestors}
    levels[rec.code] = rec.kind
    for note in [*rec.notes, *ancestor_terms]:
        _take_note(f, note, levels.get(note.get("from", ""), ""))
    _title_facts(f, rec)
    f.about_patient = bool(f.sex or f.maternal or f.birth_record or f.newborn_only
                           or f.age_min is not None or f.age_max is not None)
    f.ex1 = f.index("excludes1") or None
    f.ex2 = f.index("excludes2") or None
    return f


def _take_note(f: DxFacts, note: dict[str, Any], level: str) -> None:
    kind, text, origin = note.get("kind", ""), note.get("text", ""), note.get("from", "")
    nr = NoteRefs(kind, text, origin, level, parse_refs(text), bool(_IF_APPLICABLE.search(text)))
    bucket = {"excludes1": f.excludes1, "excludes2": f.excludes2, "codeFirst": f.code_first,
              "useAdditionalCode": f.use_additional, "codeAlso": f.code_also}.get(kind)
    if bucket is not None:
        bucket.append(nr)
        return
    if kind not in _SELF_KINDS:
        return
    cite = nr.cite()
    if _SECONDARY.search(text):
        f.secondary_only = f.secondary_only or cite
    if _MATERNAL.search(text) and not _NOT_MATERNAL.search(text):
        f.maternal = f.maternal or cite
    if _NEWBORN_ONLY.search(text):
        f.newborn_only = f.newborn_only or cite
    if _BIRTH_RECORD.search(text):
        f.birth_record = f.birth_record or cite
    m = _PERINATAL_SPAN.search(text)
    if m and kind == "includes":
        f.perinatal_days = int(m.group(1))
    if not note.get("inherited") or kind == "inclusionTerm":
        _age_facts(f, text, cite)


def _age_facts(f: DxFacts, text: str, cite: str) -> None:
    m = _AGE_RANGE.search(text)
    if m:
        f.age_min, f.age_max, f.age_source = int(m.group(1)), int(m.group(2)), cite
        return
    m = _AGE_MAX.search(text)
    if m:
        f.age_max, f.age_source = int(m.group(1) or m.group(2)) - 1, cite
    m = _AGE_MIN.search(text)
    if m:
        f.age_min, f.age_source = int(m.group(1)), cite


def _title_facts(f: DxFacts, rec: Any) -> None:
    titles = [(rec.code, rec.title)] + [(a["code"], a["title"]) for a in reversed(rec.ancestors)
                                        if a.get("kind") not in ("chapter",)]
    for code, title in titles:
        if f.manifestation is None and _MANIFESTATION.search(title):
            f.manifestation = f"ICD-10-CM Tabular List title of {code}: \"{title}\""
    if f.secondary_only:   # external-cause titles describe other people (perpetrators, partners...)
        return
    for code, title in titles:
        female, male = bool(_FEMALE.search(title)), bool(_MALE.search(title))
        if female != male:
            f.sex = "F" if female else "M"
            f.sex_source = f"ICD-10-CM Tabular List title of {code}: \"{title}\""
            return
    if f.maternal:
        f.sex, f.sex_source = "F", f.maternal
