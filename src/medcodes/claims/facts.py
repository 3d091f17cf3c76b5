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
from functools import lru_cache
from typing import Any

from .refs import Ref, RefIndex, parse_refs

# --- how the Tabular List words the facts the rules use ------------------------------------
_MATERNAL = re.compile(r"\bonly on (?:the )?maternal records?\b|\bmaternal records only\b|\bon the mother'?s record\b",
                       re.I)
_NOT_MATERNAL = re.compile(r"\bnot (?:to be used|for use) on the mother'?s record", re.I)
_NEWBORN_ONLY = re.compile(r"\bfor use on newborn records only\b", re.I)
_BIRTH_RECORD = re.compile(r"\binitial (?:birth )?record of a newborn\b|\binitial birth record only\b", re.I)
_SECONDARY = re.compile(r"\bused secondary to a code from another chapter\b", re.I)
# "in diseases classified elsewhere" and its variants ("in other/bacterial/chronic diseases", "in conditions",
# "due to diseases classified elsewhere"), and "due to underlying condition" (E08)
_MANIFESTATION = re.compile(r"\b(?:in|due to) (?:[\w-]+ ){0,4}(?:diseases?|conditions?|disorders?) classified "
                            r"elsewhere\b|\bdue to underlying (?:condition|disease)\b", re.I)
_SUPPLEMENTARY = re.compile(r"\bfor use as supplementary or additional codes\b", re.I)
# ages stated by a word of the title; the ranges are the MCE's definitions of those age groups
_NEWBORN_DAYS = re.compile(r"\bnewborn under (\d+) days old\b|\bnewborn (\d+) to (\d+) days old\b", re.I)
_NEWBORN = re.compile(r"\bnewborns?\b|\bneonatal\b", re.I)
# not "juvenile" (M08, M91, M92: diseases so named at any age), not "parent-child" (a relationship)
_CHILD = re.compile(r"(?<!-)\b(?:child|children|childhood|infant|pediatric)\b", re.I)
_ADULT = re.compile(r"\badults?\b(?!\s+type)|\badult-onset\b", re.I)     # not "Polycystic kidney, adult type"
_NOT_AGE = re.compile(r"\bnot (?:of |in )?(?:the )?(?:newborns?|adults?|child(?:ren)?)\b", re.I)
# titles about someone's past or about another person: "Personal history of adult neglect", "perpetrator"
_NOT_THE_PATIENT_NOW = re.compile(r"\b(?:personal|family) history\b|\bperpetrator\b", re.I)
_PAREN = re.compile(r"\([^()]*\)")
MCE = "CMS Medicare Code Editor (MCE) v43 definitions"
MATERNITY_AGES = (9, 64)     # MCE v43: maternity diagnoses apply to ages 9-64
PEDIATRIC_AGES = (0, 17)     # MCE v43: pediatric diagnoses 0-17
ADULT_AGES = (15, 124)       # MCE v43: adult diagnoses 15-124
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


@dataclass(frozen=True, slots=True)
class AgeLimit:
    """An age range a code is stated for: ``unit`` "y" (completed years) or "d" (days); None = open end."""

    unit: str
    lo: int | None
    hi: int | None
    severity: str
    text: str             # what the code is stated for ("is a maternal (pregnancy) code (ages 9-64)")
    source: str

    def violated(self, years: int, days: int) -> bool:
        v = years if self.unit == "y" else days
        return (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi)


def age_text(years: int, days: int) -> str:
    """How a finding states the patient's age (days under one year)."""
    return f"{days} days old" if years < 1 else f"{years} years old"


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
    age_word: str | None = None            # "newborn" / "pediatric" / "adult" when a title says so
    age_word_source: str = ""
    newborn_days: tuple[int, int] | None = None   # "newborn under 8 days old", "newborn 8 to 28 days old"
    supplementary: str | None = None       # note: for use as supplementary or additional codes (B95-B97)
    secondary_guideline: tuple[str, ...] = ()   # guideline statements: only a secondary diagnosis
    principal_only: str | None = None      # guideline list: only principal/first-listed
    age_limits: tuple[AgeLimit, ...] = ()
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
                for group in note_groups(notes):
                    if group_applies(self, group):
                        got.append((rule, kind, group, RefIndex([(r, n) for n in group for r in n.refs])))
            self._index["groups"] = got
        return got

    def code_first_groups(self) -> list[tuple[list[NoteRefs], tuple[Ref, ...], bool]]:
        """Each code-first instruction (notes stated together at one node) that applies to this code:
        (its notes, every code or range it names, conditional: "any", "if applicable")."""
        got = self._index.get("code_first")
        if got is None:
            got = self._index["code_first"] = [
                (g, tuple(r for n in g for r in n.refs), any(n.conditional for n in g))
                for g in note_groups(self.code_first) if group_applies(self, g)]
        return got

    def group_tags(self) -> tuple[tuple[int, tuple[str, str, str], RefIndex], ...]:
        """(n, (rule, origin, text), index) of each of :meth:`groups`: what the sequencing rule loops over."""
        got = self._index.get("tags")
        if got is None:
            got = self._index["tags"] = tuple((n, (rule, group[0].origin, group[0].text), idx)
                                              for n, (rule, _k, group, idx) in enumerate(self.groups()))
        return got


class GuidelineRules:
    """The code-specific sequencing rules of the Official Guidelines (system ``icd10cm_guidelines``)."""

    def __init__(self, rows: list[tuple[str, str, str, str, str]], label: str) -> None:
        self.label = label
        self.principal = [(ref, tuple(x for x in exc.split(",") if x), text)
                          for kind, ref, exc, _p, text in rows if kind == "principal_only"]
        self.secondary = [(ref, text) for kind, ref, _e, phrase, text in rows if kind == "secondary_only" and ref]
        self.phrases = [(re.compile(rf"\b{re.escape(phrase)}\b", re.I), text)
                        for kind, _r, _e, phrase, text in rows if kind == "secondary_only" and phrase]
        self._hits: dict[str, frozenset[int]] = {}

    def apply(self, f: DxFacts, titles: list[str]) -> None:
        cite = f"{self.label}"
        for ref, exc, text in self.principal:
            if f.key.startswith(ref) and not any(f.key.startswith(x) for x in exc):
                f.principal_only = f"{cite}: {text}"
                break
        found = [f"{cite}: \"{text}\"" for ref, text in self.secondary if f.key.startswith(ref)]
        hits = set()
        for t in titles:
            got = self._hits.get(t)
            if got is None:   # titles are shared by a category's codes: each is searched once
                if len(self._hits) > 200_000:
                    self._hits.clear()
                got = self._hits[t] = frozenset(n for n, (rx, _text) in enumerate(self.phrases) if rx.search(t))
            hits |= got
        found += [f"{cite}: \"{text}\"" for n, (_rx, text) in enumerate(self.phrases) if n in hits]
        f.secondary_guideline = tuple(dict.fromkeys(found))


def dx_facts(rec: Any, ancestor_terms: list[dict[str, Any]] = (),  # type: ignore[assignment]
             guide: GuidelineRules | None = None) -> DxFacts:
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
    if guide is not None and not f.secondary_only:
        guide.apply(f, [rec.title] + [a["title"] for a in rec.ancestors if a.get("kind") not in ("chapter", "block")])
    f.age_limits = _age_limits(f)
    f.about_patient = bool(f.sex or f.age_limits)
    f.ex1 = f.index("excludes1") or None
    f.ex2 = f.index("excludes2") or None
    return f


_CONDITION = re.compile(r"\bfor (adverse effects?|poisonings?|underdosing)\b", re.I)


def note_groups(notes: list[NoteRefs]) -> list[list[NoteRefs]]:
    """The notes of one kind stated together at one node: one instruction (its first line the lead-in,
    "such as:", the others its alternatives), kept only when some line names a code."""
    by_origin: dict[str, list[NoteRefs]] = {}
    for n in notes:
        by_origin.setdefault(n.origin, []).append(n)
    return [g for g in by_origin.values() if any(n.refs for n in g)]


#: the conditions a note can state (:data:`_CONDITION`), as the word a code's title must contain
CONDITION_STEMS = ("adverse effect", "poisoning", "underdosing")


def group_applies(f: DxFacts, group: list[NoteRefs]) -> bool:
    """False when the instruction's own condition excludes the code (T36-T50: "for adverse effects")."""
    m = _CONDITION.search(group[0].text)
    if m is None:
        return True
    stem = m.group(1).lower().rstrip("s")
    return stem in f.title.lower()


def title_conditions(title: str) -> tuple[bool, ...]:
    """Which of :data:`CONDITION_STEMS` a title contains: all :func:`group_applies` reads of a code (two codes
    with the same notes and the same answer here have the same sequencing groups)."""
    t = title.lower()
    return tuple(s in t for s in CONDITION_STEMS)


@lru_cache(maxsize=65536)
def _note_flags(text: str) -> tuple[bool, ...]:
    """The patterns a note's text matches (a category's notes are read again for each of its codes)."""
    m = _PERINATAL_SPAN.search(text)
    return (bool(_IF_APPLICABLE.search(text)), bool(_SECONDARY.search(text)), bool(_SUPPLEMENTARY.search(text)),
            bool(_MATERNAL.search(text)) and not _NOT_MATERNAL.search(text), bool(_NEWBORN_ONLY.search(text)),
            bool(_BIRTH_RECORD.search(text)), int(m.group(1)) if m else None)


def _take_note(f: DxFacts, note: dict[str, Any], level: str) -> None:
    kind, text, origin = note.get("kind", ""), note.get("text", ""), note.get("from", "")
    if_applicable, secondary, supplementary, maternal, newborn_only, birth_record, perinatal = _note_flags(text)
    nr = NoteRefs(kind, text, origin, level, parse_refs(text), if_applicable)
    bucket = {"excludes1": f.excludes1, "excludes2": f.excludes2, "codeFirst": f.code_first,
              "useAdditionalCode": f.use_additional, "codeAlso": f.code_also}.get(kind)
    if bucket is not None:
        bucket.append(nr)
        return
    if kind not in _SELF_KINDS:
        return
    cite = nr.cite()
    if secondary:
        f.secondary_only = f.secondary_only or cite
    if supplementary:
        f.supplementary = f.supplementary or cite
    if maternal:
        f.maternal = f.maternal or cite
    if newborn_only:
        f.newborn_only = f.newborn_only or cite
    if birth_record:
        f.birth_record = f.birth_record or cite
    if perinatal is not None and kind == "includes":
        f.perinatal_days = perinatal
    if not note.get("inherited") or kind == "inclusionTerm":
        # an age in parentheses qualifies one wording of an inclusion term (R40.224 "Irritable cries
        # (< 2 years of age)": the coma-scale response for infants), it does not limit the code
        _age_facts(f, _ages(text, kind == "inclusionTerm"), cite)


@lru_cache(maxsize=65536)
def _ages(text: str, drop_parens: bool) -> tuple[tuple[int, int] | None, int | None, int | None]:
    """(stated age range, upper bound, lower bound) a note's text gives."""
    if drop_parens:
        text = _PAREN.sub("", text)
    m = _AGE_RANGE.search(text)
    if m:
        return (int(m.group(1)), int(m.group(2))), None, None
    hi = _AGE_MAX.search(text)
    lo = _AGE_MIN.search(text)
    return None, int(hi.group(1) or hi.group(2)) - 1 if hi else None, int(lo.group(1)) if lo else None


def _age_facts(f: DxFacts, ages: tuple[tuple[int, int] | None, int | None, int | None], cite: str) -> None:
    span, hi, lo = ages
    if span is not None:
        f.age_min, f.age_max, f.age_source = span[0], span[1], cite
        return
    if hi is not None:
        f.age_max, f.age_source = hi, cite
    if lo is not None:
        f.age_min, f.age_source = lo, cite


def _title_facts(f: DxFacts, rec: Any) -> None:
    titles = [(rec.code, rec.title)] + [(a["code"], a["title"]) for a in reversed(rec.ancestors)
                                        if a.get("kind") not in ("chapter",)]
    for code, title in titles:
        if f.manifestation is None and _title_marks(title)[0]:
            f.manifestation = f"ICD-10-CM Tabular List title of {code}: \"{title}\""
    if f.secondary_only:   # external-cause titles describe other people (perpetrators, partners...)
        return
    # ages by the words of the code's own and its categories' titles (not blocks: "Disorders of adult
    # personality and behavior (F60-F69)" names the block's topic, not an age group)
    blocks = {a["code"] for a in rec.ancestors if a.get("kind") == "block"}
    _age_word(f, [(c, t) for c, t in titles if c not in blocks])
    for code, title in titles:
        _m, female, male = _title_marks(title)
        if female != male:
            f.sex = "F" if female else "M"
            f.sex_source = f"ICD-10-CM Tabular List title of {code}: \"{title}\""
            return
    if f.maternal:
        f.sex, f.sex_source = "F", f.maternal


def _age_word(f: DxFacts, titles: list[tuple[str, str]]) -> None:
    """Newborn / pediatric / adult as a title words it (the code's own title first, then its ancestors')."""
    if f.newborn_only:      # the perinatal chapter's own rule applies
        return
    for code, title in titles:
        said = _title_age(title)
        if said is None:
            continue
        if said[0] == "stop":
            return
        src = f"ICD-10-CM Tabular List title of {code}: \"{title}\""
        if said[0] == "days":
            f.newborn_days = said[1]
            f.age_word, f.age_word_source = "newborn", src
        else:
            f.age_word, f.age_word_source = said[1], src
        return


@lru_cache(maxsize=65536)
def _title_marks(title: str) -> tuple[bool, bool, bool]:
    """(a manifestation title, says female, says male): titles are shared by a category's codes."""
    return bool(_MANIFESTATION.search(title)), bool(_FEMALE.search(title)), bool(_MALE.search(title))


@lru_cache(maxsize=65536)
def _title_age(title: str) -> tuple[Any, ...] | None:
    """What a title says of the patient's age: ("stop",) -- not about the patient now, or both adult and child --,
    ("days", (lo, hi)) for newborns of stated days, ("word", adult | newborn | pediatric), or None."""
    if _NOT_THE_PATIENT_NOW.search(title):
        return ("stop",)
    title = _NOT_AGE.sub("", title)
    m = _NEWBORN_DAYS.search(title)
    if m:
        return ("days", (0, int(m.group(1)) - 1) if m.group(1) else (int(m.group(2)), int(m.group(3))))
    adult, child = bool(_ADULT.search(title)), bool(_CHILD.search(title) or _NEWBORN.search(title))
    if adult != child:
        return ("word", "adult" if adult else ("newborn" if _NEWBORN.search(title) and not _CHILD.search(title)
                                               else "pediatric"))
    if adult and child:
        return ("stop",)
    return None


def _age_limits(f: DxFacts) -> tuple[AgeLimit, ...]:
    """Every age range the classification states for the code, as limits the patient rule checks."""
    out: list[AgeLimit] = []
    if f.maternal:
        lo, hi = MATERNITY_AGES
        out.append(AgeLimit("y", lo, hi, "error", f"is a maternal (pregnancy) code (maternity ages {lo}-{hi})",
                            f"{f.maternal}; {MCE} (maternity age range {lo}-{hi})"))
    if f.birth_record:
        out.append(AgeLimit("d", None, 28, "error", "is for the newborn's initial birth record only",
                            f.birth_record))
    elif f.newborn_only and f.perinatal_days:
        out.append(AgeLimit("d", None, f.perinatal_days, "warning",
                            f"is a perinatal code (origin before birth through the first {f.perinatal_days} days): "
                            "confirm the condition originated in the perinatal period",
                            f"{f.newborn_only}; ICD-10-CM Official Guidelines for Coding and Reporting FY2026, "
                            "Section I.C.16.a"))
    if f.newborn_days is not None:
        lo, hi = f.newborn_days
        out.append(AgeLimit("d", lo, hi, "warning", f"is stated for newborns {lo}-{hi} days old",
                            f.age_word_source))
    elif f.age_word == "newborn" and not (f.birth_record or f.newborn_only):
        out.append(AgeLimit("y", None, 0, "warning", "is stated for newborns (age 0)",
                            f"{f.age_word_source}; {MCE} (newborn age 0)"))
    elif f.age_word == "pediatric":
        lo, hi = PEDIATRIC_AGES
        out.append(AgeLimit("y", lo, hi, "warning", f"is stated for children (pediatric ages {lo}-{hi})",
                            f"{f.age_word_source}; {MCE} (pediatric age range {lo}-{hi})"))
    elif f.age_word == "adult":
        lo, hi = ADULT_AGES
        out.append(AgeLimit("y", lo, hi, "warning", f"is stated for adults (adult ages {lo}-{hi})",
                            f"{f.age_word_source}; {MCE} (adult age range {lo}-{hi})"))
    if f.age_max is not None:
        out.append(AgeLimit("y", None, f.age_max, "warning", f"is stated for patients up to {f.age_max} years",
                            f.age_source))
    if f.age_min is not None:
        out.append(AgeLimit("y", f.age_min - 1, None, "warning",
                            f"is stated for patients {f.age_min} years and older", f.age_source))
    return tuple(out)
