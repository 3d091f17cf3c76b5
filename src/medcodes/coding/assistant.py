"""Code a clinical note: find the terms in the official indexes, check the Tabular, apply the
guidelines, and keep the evidence for every code.

Steps, as a coder works:

1. Sentences and words (:mod:`.text`), ConText for each mention (:mod:`.context`).
2. Diagnoses: main terms of the Alphabetic Index found in a sentence, walked down their
   subterms (:mod:`.lexicon`); ``see`` references followed; the Table of Neoplasms for
   cancers (site x behaviour), the Table of Drugs and Chemicals for poisonings, adverse
   effects and underdosing (substance x intent), the External Cause Index for injuries.
3. The Tabular: the billable code below the index's code that the sentence supports
   (:mod:`.refine`): laterality, 7th character, type; queries where it does not say.
4. Guidelines (FY2026 ICD-10-CM Official Guidelines): negated, family-history, historical and
   hypothetical mentions are not coded as current conditions; uncertain diagnoses are coded
   as established for inpatients (Section II.H) and not for outpatients (Section IV.H);
   symptoms integral to a coded diagnosis are not coded (I.B.5); a mention folded into a
   combination code is not coded again (I.B.9); Excludes1 pairs are never suggested together
   (I.A.12.a).
5. Procedures (inpatient) through the ICD-10-PCS Index and tables; supplies and drugs through
   HCPCS Level II titles. CPT is known only by its structure: nothing here invents a CPT code.

Nothing here logs or stores the note.
"""

from __future__ import annotations

import datetime as _dt
import gc
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import MedcodesError
from ..model import normalize_key
from . import context as _context
from .companions import KINDS, Companions
from .lexicon import GENERIC, Lexicon, Path
from .model import Coding, Skipped, Suggestion
from .refine import Refined, Refiner
from .text import Sentence, Token, sentences, term_stems
from .titles import TitleIndex

MAX_CHARS = 100_000
SETTINGS = ("outpatient", "inpatient")
#: main terms whose mention is itself about history, status or an encounter: ConText does not apply
_ABOUT = frozenset({"history", "status", "screening", "encounter", "examination", "long", "observation",
                    "vaccination", "immunization", "admission", "aftercare", "follow", "counseling",
                    "allergy", "removal", "test", "family", "personal", "old"})
_SUPPLY_WORDS = frozenset({"supplied", "supply", "dispensed", "dispense", "given", "administered",
                           "injection", "injected", "mg", "ml", "strip", "box", "pair", "wheelchair",
                           "crutch", "walker", "cane", "oxygen", "concentrator", "dressing", "catheter",
                           "infusion", "unit", "vial"})
_DRUG_WORDS = frozenset({"poisoning", "overdose", "poison", "toxic", "adverse", "intoxication", "toxicity"})
_NEOPLASM_WORDS = frozenset({"cancer", "carcinoma", "malignant", "malignancy", "neoplasm", "tumor", "adenocarcinoma",
                             "metastasis", "metastatic", "metastases"})
_SIDES = frozenset({"left", "right", "bilateral"})
#: title words that are not a body site (laterality is read beside a site word of the code's title)
_NOT_SITE = frozenset({"unspecified", "other", "primary", "secondary", "unilateral", "initial", "subsequent",
                       "encounter", "sequela", "with", "without", "part", "of", "stage", "mild", "moderate",
                       "severe", "acute", "chronic", "ligament"})
_CODE_REF = re.compile(r"\b([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)(-?)")


@dataclass
class Mention:
    sent: int
    system: str
    path: Path | None
    raw: list[str]
    span: tuple[int, int]
    used: set[tuple[int, int]]      # character spans of the words the code accounts for
    label: str
    book: str
    about: bool = False
    refined: Refined | None = None
    ctx: _context.Context = field(default_factory=_context.Context)
    order: int = 0
    lateral: tuple[int, int] | None = None     # where the laterality came from, when another sentence

    @property
    def full(self) -> tuple[int, int]:
        """The stretch of the note the code accounts for (main term to last subterm word)."""
        return (min(a for a, _b in self.used), max(b for _a, b in self.used)) if self.used else self.span

    @property
    def depth(self) -> tuple[int, int]:
        """Ties between equal readings: a direct entry before one reached through a ``see``, then deeper."""
        if self.path is None:
            return (1, 2)
        return (0 if self.path.see else 1, len(self.path.terms))


class Coder:
    """Loaded books and releases for one date; reused across notes (thread-safe reads)."""

    def __init__(self, cb: Any, infos: dict[str, Any], books: dict[str, Any]) -> None:
        """``cb``: a Codebook of the coder's own; ``infos``: the code-system releases to code
        with; ``books``: index book -> the index release that has it."""
        self.cb = cb
        self.releases = {s: i.release for s, i in infos.items()}
        refs = {s: Refiner(cb.store.open(i.system, i.release), s) for s, i in infos.items()}
        self.cm, self.pcs, self.hcpcs = refs.get("icd10cm"), refs.get("icd10pcs"), refs.get("hcpcs")
        self.companions = Companions(self.cm) if self.cm is not None else None
        self.lex = Lexicon.load({b: cb.store.open(i.system, i.release).conn for b, i in books.items()})
        self._title_index: dict[str, TitleIndex] = {}
        self._notes_cache: dict[str, list[dict[str, str]]] = {}
        self._excl_cache: dict[str, tuple[tuple[str, str], ...]] = {}
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Load what the first note would otherwise load: the title indexes and the ConText pipeline."""
        if self.cm is not None:
            self._titles("icd10cm")
        if self.hcpcs is not None:
            self._titles("hcpcs")
        _context.pipeline()

    # ------------------------------------------------------------------ entry point
    def code(self, text: str, setting: str = "outpatient", systems: Iterable[str] | None = None,
             date: _dt.date | None = None) -> Coding:
        if setting not in SETTINGS:
            raise MedcodesError(f"setting {setting!r}: use outpatient or inpatient")
        if not isinstance(text, str):
            raise MedcodesError("the note must be text")
        if len(text) > MAX_CHARS:
            raise MedcodesError(f"the note is {len(text):,} characters; at most {MAX_CHARS:,} are read")
        if "\x00" in text or (not "".join(text.split()).isprintable()
                               and sum(not (c.isprintable() or c.isspace()) for c in text) > len(text) // 10):
            raise MedcodesError("the note is not text (binary content)")
        wanted = set(systems) if systems else {"icd10cm", "icd10pcs", "hcpcs"}
        out = Coding(setting, date.isoformat() if date else None, releases=dict(self.releases))
        if not text.strip() or self.cm is None:
            return out
        doc, bounds = _context.sentence_bounds(text)
        sents = sentences(text, bounds)
        mentions: list[Mention] = []
        for i, sent in enumerate(sents):
            if "icd10cm" in wanted:
                mentions.extend(self._diagnoses(i, sent))
                mentions.extend(self._by_title(i, sent))
            if "icd10pcs" in wanted and self.pcs is not None and setting == "inpatient":
                mentions.extend(self._procedures(i, sent))
            if "hcpcs" in wanted and self.hcpcs is not None:
                mentions.extend(self._supplies(i, sent))
        for n, m in enumerate(mentions):
            m.order = n
        spans = sorted({m.span for m in mentions}, key=lambda x: (x[1] - x[0], x[0]))   # narrow spans claim words first
        ctxs = dict(zip(spans, _context.contexts(doc, spans))) if spans else {}
        for m in mentions:
            m.ctx = ctxs[m.span]
        self._decide(text, sents, mentions, setting, out, date)
        return out

    # ------------------------------------------------------------------ diagnoses
    def _diagnoses(self, i: int, sent: Sentence) -> list[Mention]:
        found: list[Mention] = []
        for book in ("index", "eindex"):
            if book == "eindex" and not any(c[:1] in "STst" for m in found for c in m.raw):
                continue              # external causes are read only beside an injury or poisoning
            stems = self.lex.books[book].stems
            for term, toks in self.lex.mains_in(book, sent):
                main = stems.get(term.id, ())
                if not main or len(main[0]) <= 2:
                    continue
                path = self.lex.walk(book, term, toks, sent)
                if main[0] in GENERIC and not path.direct and len(main) == 1:
                    continue
                raw = list(path.codes)
                if not raw:
                    continue
                span = (min(t.start for t in toks), max(t.end for t in toks))
                found.append(Mention(i, "icd10cm", path, raw, span, _offsets(path.used),
                                     path.label, book, about=bool(main) and main[0] in _ABOUT))
        found.extend(self._drugs(i, sent))
        found.extend(self._neoplasms(i, sent))
        return found

    def _neoplasms(self, i: int, sent: Sentence) -> list[Mention]:
        if sent.words.isdisjoint(_NEOPLASM_WORDS) and not any(s.startswith("metasta") for s in sent.bag):
            return []
        trig = [t for t in sent.tokens if t.stem in _NEOPLASM_WORDS or t.stem.startswith("metasta")]
        out = []
        for code, label, part in self._neoplasm(sent):
            toks = part.tokens          # the phrase read for this site and behaviour
            here = [t for t in trig if t in toks] or trig
            span = (min(t.start for t in here), max(t.end for t in here))    # ConText reads around the trigger
            out.append(Mention(i, "icd10cm", None, [code], span, _offsets(toks),
                               f"Table of Neoplasms: {label}", "neoplasm"))
        return out

    def _neoplasm(self, sent: Sentence) -> list[tuple[str, str, Sentence]]:
        """Primary site x 'Malignant Primary'; sites after 'metastasis to' x 'Malignant Secondary'."""
        b = self.lex.books.get("neoplasm")
        root = next((t for t in b.terms.values() if t.level == 0), None) if b is not None else None
        if root is None:
            return []
        cut = next((t.pos for t in sent.tokens if t.stem.startswith("metasta") or t.stem == "secondary"), None)
        parts = [(sent, "Malignant Primary")] if cut is None else [
            (_subset(sent, lambda t: t.pos < cut), "Malignant Primary"),
            (_subset(sent, lambda t: t.pos > cut), "Malignant Secondary")]
        if sent.has(("benign",)):
            parts = [(sent, "Benign")]
        elif sent.has(("situ",)):
            parts = [(sent, "Ca in situ")]
        codes: list[tuple[str, str, Sentence]] = []
        for part, column in parts:
            rest = self.lex._down(b, root, part)
            node = b.terms[rest[-1][0]] if rest else None
            while node is not None and not self.lex.cells("neoplasm", node):
                node = b.terms.get(node.parent) if node.parent is not None else None
            if node is not None:
                code = self.lex.cells("neoplasm", node).get(column)
                if code:
                    codes.append((code, " > ".join(b.terms[n].title for n, _t in rest) + f" > {column}", part))
        return codes

    def _drugs(self, i: int, sent: Sentence) -> list[Mention]:
        """Poisoning / adverse effect / underdosing: the substance's row, the intent's column."""
        bag = sent.bag
        if sent.words.isdisjoint(_DRUG_WORDS) and not any(s.startswith("underdos") for s in bag):
            return []
        if "adverse" in bag:
            column = "Adverse effect"
        elif any(s.startswith("underdos") for s in bag):
            column = "Underdosing"
        elif "self" in bag and "harm" in bag or "suicide" in bag:
            column = "Poisoning Intentional self-harm"
        elif "assault" in bag:
            column = "Poisoning Assault"
        elif "undetermined" in bag:
            column = "Poisoning Undetermined"
        else:
            column = "Poisoning Accidental (unintentional)"
        b = self.lex.books.get("drug")
        if b is None:
            return []
        best = None
        for term, toks in self.lex.mains_in("drug", sent):
            rest = self.lex._down(b, term, sent)
            node = b.terms[rest[-1][0]] if rest else term
            cells = self.lex.cells("drug", node) or self.lex.cells("drug", term)
            code = cells.get(column)
            w = len(toks) + sum(len(ts) for _n, ts in rest)
            if code and (best is None or w > best[0]):
                used = toks + [t for _n, ts in rest for t in ts]
                best = (w, code, used, f"Table of Drugs and Chemicals: {term.title}"
                        + "".join(f", {b.terms[n].title}" for n, _ts in rest) + f" > {column}")
        if best is None:
            return []
        _w, code, used, label = best
        used = used + [t for t in sent.tokens if t.stem in _DRUG_WORDS or t.stem.startswith("underdos")]
        span = (min(t.start for t in used), max(t.end for t in used))
        return [Mention(i, "icd10cm", None, [code], span, _offsets(used),
                        label, "drug")]

    # ------------------------------------------------------------------ procedures and supplies
    def _procedures(self, i: int, sent: Sentence) -> list[Mention]:
        found = []
        b = self.lex.books.get("pcs")
        if b is None:
            return found
        for term, toks in self.lex.mains_in("pcs", sent):
            rest = self.lex._down(b, term, sent)
            node = b.terms[rest[-1][0]] if rest else term
            alts = [node] + [b.terms[c] for c in node.children if not b.stems.get(c)]
            raw: list[str] = []
            for t in alts:
                for role, _c, _h, code in t.codes:
                    if role.endswith(("code", "codes", "tab")):
                        raw.append(code)
            if not raw:
                continue
            if len(raw) > 1:
                partial = "partial" in sent.bag
                raw.sort(key=lambda c: (c[2:3] != ("B" if partial else "T")))
            used = toks + [t for _n, ts in rest for t in ts]
            span = (min(t.start for t in toks), max(t.end for t in toks))
            label = " > ".join([term.title] + [b.terms[n].title for n, _ts in rest])
            found.append(Mention(i, "icd10pcs", None, raw[:2], span, _offsets(used), label, "pcs"))
        return found

    def _supplies(self, i: int, sent: Sentence) -> list[Mention]:
        if sent.words.isdisjoint(_SUPPLY_WORDS):
            return []
        got = self._titles("hcpcs").matches(sent, cover=0.55)
        if not got:
            return []
        _c, r, toks = got[0]
        key, code, title, stems = self._titles("hcpcs").rows[r]
        span = (min(t.start for t in toks), max(t.end for t in toks))
        return [Mention(i, "hcpcs", None, [code], span, _offsets(toks),
                        f"HCPCS Level II title: {title}", "hcpcs")]

    def _by_title(self, i: int, sent: Sentence) -> list[Mention]:
        """ICD-10-CM codes whose whole title the sentence states (codes newer than the index)."""
        out: list[Mention] = []
        idx = self._titles("icd10cm")
        taken: list[frozenset[str]] = []
        for _c, r, toks in idx.matches(sent, cover=0.999)[:6]:
            key, code, title, stems = idx.rows[r]
            if any(stems <= t for t in taken):
                continue
            taken.append(stems)
            head = max((t for t in toks if not t.neg), key=lambda t: idx.idf.get(t.stem, 0.0), default=toks[0])
            span = (head.start, head.end)           # ConText reads around the title's rarest word
            out.append(Mention(i, "icd10cm", None, [code], span, _offsets(toks),
                               f"Tabular title: {title}", "title"))
        return out

    def _titles(self, system: str) -> TitleIndex:
        with self._lock:
            idx = self._title_index.get(system)
            if idx is None:
                ref = self.cm if system == "icd10cm" else self.hcpcs
                idx = self._title_index[system] = TitleIndex(ref.db)
            return idx

    # ------------------------------------------------------------------ guidelines
    def _decide(self, text: str, sents: list[Sentence], mentions: list[Mention], setting: str, out: Coding,
                date: _dt.date | None) -> None:
        inpatient = setting == "inpatient"
        unresolved = object()
        memo: dict[int, Any] = {}
        sides = _sides(sents)

        def res(m: Mention) -> Refined | None:
            got = memo.get(id(m), unresolved)
            if got is unresolved:
                got = self._resolve(m, sents[m.sent])
                if (got is not None and m.system == "icd10cm" and sides
                        and (got.queries or "unspecified" in got.title.lower())):
                    got = self._lateral(m, got, sents, sides) or got
                memo[id(m)] = m.refined = got
            return got

        # a mention whose words all went into another's (combination) code is not coded again;
        # only the mentions no other one covers are resolved against the Tabular
        by_sent: dict[int, list[Mention]] = {}
        for m in mentions:
            by_sent.setdefault(m.sent, []).append(m)
        final: list[Mention] = []
        for m in mentions:
            host = None
            if m.book != "eindex":
                host = next((o for o in by_sent[m.sent] if o is not m and o.system == m.system and o.book != "eindex"
                             and (m.used < o.used or (m.used == o.used and (o.depth, -o.order) > (m.depth, -m.order)))
                             # a negated/historical phrase covers only what is itself not coded
                             and (self._context_reason(o, inpatient) is None or self._context_reason(m, inpatient) is not None)
                             and res(o) is not None), None)
            if host is None:
                if res(m) is not None:
                    final.append(m)
                continue
            if m.system != "icd10cm" or _overlap(m.span, host.span) or res(m) is None or m.refined.code == host.refined.code:
                continue              # a fragment of the same phrase: nothing to report
            if self._context_reason(host, inpatient) is None:
                out.not_coded.append(Skipped(text[m.span[0]:m.span[1]], m.span,
                                             f"part of combination code {host.refined.code} (guideline I.B.9)",
                                             m.refined.code))
        kept: list[Mention] = []
        for m in final:
            why = self._context_reason(m, inpatient)
            if why:
                out.not_coded.append(Skipped(text[m.full[0]:m.full[1]], m.full, why, m.refined.code))
                if m.ctx.family and not m.ctx.negated:
                    fam = self._family_history(m, sents[m.sent])
                    if fam is not None:
                        kept.append(fam)
                continue
            kept.append(m)
        final = kept
        # external causes only beside an injury or poisoning of the same sentence
        injured = {m.sent for m in final if m.refined.key[:1] in ("S", "T")}
        final = [m for m in final if m.book != "eindex" or m.sent in injured]
        # symptoms integral to a definitive diagnosis in the same sentence
        definitive = {m.sent for m in final if m.system == "icd10cm" and m.refined.key[:1] not in ("R", "Z", "V", "W", "X", "Y")}
        chosen: list[Mention] = []
        for m in final:
            # R00-R64 are signs and symptoms; R65 (SIRS, severe sepsis) and later are coded in addition
            if m.system == "icd10cm" and m.refined.key[:1] == "R" and m.refined.key[:3] < "R65" and m.sent in definitive:
                host = next(o for o in final if o.sent == m.sent and o.refined.key[:1] not in ("R", "Z", "V", "W", "X", "Y"))
                out.not_coded.append(Skipped(text[m.span[0]:m.span[1]], m.span,
                                             f"symptom integral to {host.refined.code} (guideline I.B.5)", m.refined.code))
                continue
            chosen.append(m)
        self._suggest(text, sents, chosen, inpatient, out, date)
        unique: list[Skipped] = []
        for sk in sorted(out.not_coded, key=lambda x: (x.span[0], -(x.span[1] - x.span[0]))):
            if any(sk.would_be == c.code for c in out.codes):
                continue
            if any(u.reason == sk.reason and (u.would_be == sk.would_be or _overlap(u.span, sk.span)) for u in unique):
                continue
            unique.append(sk)
        out.not_coded = unique

    def _lateral(self, m: Mention, r: Refined, sents: list[Sentence],
                 every_side: list[tuple[int, Token, frozenset[str]]]) -> Refined | None:
        """Laterality the code needs and its sentence lacks, from the nearest mention of the same
        body site elsewhere in the note ("Osteoarthritis of the knee. Right knee aches." -> M17.11)."""
        sent = sents[m.sent]
        if not sent.words.isdisjoint(_SIDES):
            return None
        sides = [x for x in every_side if x[0] != m.sent]
        if not sides:
            return None
        asked = {w for q in r.queries for w in term_stems(q.split(":", 1)[-1])}
        site = (frozenset(term_stems(r.title)) | asked | {t.stem for t in (m.path.used if m.path else ())}) - _SIDES - _NOT_SITE
        for _j, side, near in sorted(sides, key=lambda x: (abs(x[0] - m.sent), x[0], x[1].start)):
            if near.isdisjoint(site):
                continue
            aug = Sentence(sent.start, sent.end, sent.tokens + [Token(side.stem, side.start, side.end, 0,
                                                                      synthetic=True)])
            for t in aug.tokens:
                aug.bag.setdefault(t.stem, []).append(t)
            got = self._resolve(m, aug)
            if got is not None and got.code != r.code and side.stem in term_stems(got.title):
                m.lateral = (side.start, side.end)
                return got
        return None

    def _family_history(self, m: Mention, sent: Sentence) -> Mention | None:
        """A relative's condition is coded as the patient's family history: History, family (of), ..."""
        b = self.lex.books.get("index")
        hist = next((b.terms[tid] for _st, tid in b.mains.get("history", ()) if b.terms[tid].level == 0), None) if b else None
        fam = next((b.terms[c] for c in hist.children if b.stems.get(c) == ("family",)), None) if hist else None
        if fam is None:
            return None
        rest = self.lex._down(b, fam, sent)
        node = b.terms[rest[-1][0]] if rest else None
        codes = [code for role, _c, _h, code in node.codes if role == "code"] if node is not None else []
        if not codes:
            return None
        used = [t for _n, ts in rest for t in ts]
        fm = Mention(m.sent, "icd10cm", None, codes, m.span, _offsets(used) | m.used,
                     "History, family (of), " + ", ".join(b.terms[n].title for n, _t in rest), "index",
                     about=True, order=m.order)
        fm.refined = self._resolve(fm, sent)
        return fm if fm.refined is not None else None

    def _context_reason(self, m: Mention, inpatient: bool) -> str | None:
        if m.about or m.system != "icd10cm":
            return None
        c = m.ctx
        if c.negated:
            return "negated"
        if m.path is not None and m.path.used and all(t.neg for t in m.path.used[:1]):
            return "negated"
        if c.family:
            return "family history (not the patient's condition)"
        if c.historical:
            return "history of (not a current condition)"
        if c.hypothetical:
            return "hypothetical"
        if c.uncertain and not inpatient:
            return "uncertain diagnosis in the outpatient setting: code the signs and symptoms (guideline IV.H)"
        return None

    def _resolve(self, m: Mention, sent: Sentence) -> Refined | None:
        ref = {"icd10cm": self.cm, "icd10pcs": self.pcs, "hcpcs": self.hcpcs}[m.system]
        if ref is None:
            return None
        for raw in m.raw:
            if m.system == "icd10pcs":
                key = normalize_key(raw)
                got = ref.refine(raw, sent) if len(key) == 7 else ref.complete(key, sent)
            else:
                got = ref.refine(raw, sent)
            if got is not None:
                return got
        return None

    def _suggest(self, text: str, sents: list[Sentence], chosen: list[Mention], inpatient: bool, out: Coding,
                 date: _dt.date | None) -> None:
        by_code: dict[tuple[str, str], Suggestion] = {}
        where: dict[str, int] = {}
        order = sorted(chosen, key=lambda m: ({"icd10cm": 0, "icd10pcs": 1, "hcpcs": 2}[m.system], m.sent,
                                              m.book == "eindex", m.full[0], -len(m.used)))
        for m in order:
            r = m.refined
            k = (m.system, r.code)
            s = by_code.get(k)
            if s is not None:
                if m.full not in s.spans:
                    s.spans.append(m.full)
                if s.evidence.get("book") == "title" and m.book != "title":
                    s.evidence["title_match"] = s.evidence["index"]
                    s.evidence["index"], s.evidence["book"] = m.label, m.book
                s.weight = max(s.weight, len(m.used))
                continue
            evidence: dict[str, Any] = {"index": m.label, "book": m.book}
            if m.system == "icd10cm" and m.ctx.uncertain and inpatient:
                evidence["guideline"] = "uncertain diagnosis coded as established (inpatient, Section II.H)"
            if r.considered > 1:
                evidence["tabular"] = f"chosen among {r.considered} billable codes below {m.raw[0]}"
            if m.lateral is not None:
                a, b = m.lateral
                evidence["laterality"] = (f"{text[a:b]!r} taken from the nearest mention of the same site "
                                          f"(characters {a}-{b}); this sentence does not state the side")
            notes = self._notes(m.system, r.code, date)
            if notes:
                evidence["notes"] = notes
            role = {"icd10pcs": "procedure", "hcpcs": "supply"}.get(m.system, "secondary")
            s = Suggestion(m.system, r.code, r.title, r.billable and r.complete, 0.0, role, [m.full],
                           evidence, list(r.queries))
            s.weight = len(m.used)
            by_code[k] = s
            where[r.code] = m.sent
        codes = list(by_code.values())
        if self.companions is not None:
            codes = self._companions(codes, sents, where, out, date)
        self._excludes1(codes, out, text)
        first = next((s for s in codes if s.system == "icd10cm"), None)
        if first is not None:
            first.role = "principal" if inpatient else "first-listed"
        n = len(codes)
        for rank, s in enumerate(codes):
            s.score = round(1.0 - rank / (n + 1), 3) * (0.8 if s.queries else 1.0)
        out.codes = codes

    def _companions(self, codes: list[Suggestion], sents: list[Sentence], where: dict[str, int], out: Coding,
                    date: _dt.date | None) -> list[Suggestion]:
        """Codes a chosen code's ``use additional code`` / ``code first`` / ``code also`` notes name
        and the note states (guidelines I.A.12-13, I.B.7), each placed after the code that calls for it."""
        have = {c.code for c in codes}
        cats = {c.code[:3] for c in codes if c.system == "icd10cm"}
        blocked = [s.span for s in out.not_coded
                   if not s.reason.startswith(("symptom integral", "part of combination", "Excludes1"))]
        result: list[Suggestion] = []
        where_said: dict[str, list[int]] = {}
        for i, sent in enumerate(sents):
            for w in sent.stated:
                where_said.setdefault(w, []).append(i)
        for host in codes:
            result.append(host)
            if host.system != "icd10cm":
                continue
            at = where.get(host.code, 0)
            for note in host.evidence.get("notes", ()):
                if note["kind"] not in KINDS:
                    continue
                got = self.companions.find(note["text"], host.title, sents, where_said, blocked, at)
                if got is None or got[0].code in have or (got[0].code[:3] in cats and "unspecified" in got[0].title.lower()):
                    continue              # coded already, or its category is (the note's own reading wins)
                r, toks = got
                have.add(r.code)
                cats.add(r.code[:3])
                kind = {"useAdditionalCode": "use additional code", "codeFirst": "code first",
                        "codeAlso": "code also"}[note["kind"]]
                evidence: dict[str, Any] = {
                    "index": f"{kind} ({note['from']}): {note['text']}", "book": "tabular", "companion_of": host.code,
                    "guideline": "instructional note of the Tabular (I.A.12-13, I.B.7), supported by the note"}
                notes = self._notes("icd10cm", r.code, date)
                if notes:
                    evidence["notes"] = notes
                s = Suggestion("icd10cm", r.code, r.title, r.billable and r.complete, 0.0, "secondary",
                               [(toks[0].start, toks[-1].end)], evidence, list(r.queries))
                s.weight = len(toks)
                result.append(s)
        return result

    def _notes(self, system: str, code: str, date: _dt.date | None) -> list[dict[str, str]]:
        """The Tabular notes that bear on a code (its own and inherited), cached per code."""
        if system != "icd10cm":
            return []
        got = self._notes_cache.get(code)
        if got is None:
            try:
                rec = self.cb.lookup(code, system="icd10cm", date=date)
            except MedcodesError:
                return []
            keep = ("excludes1", "codeFirst", "useAdditionalCode", "codeAlso")
            got = [{"kind": n["kind"], "text": n["text"], "from": n["from"]} for n in rec.notes if n["kind"] in keep]
            if len(self._notes_cache) > 50_000:
                self._notes_cache.clear()
                self._excl_cache.clear()
            self._notes_cache[code] = got
        return [dict(n) for n in got]

    def _excluded(self, code: str) -> tuple[tuple[str, str], ...]:
        """(code prefix, dash) of every code an Excludes1 note of ``code`` (or its ancestors) names."""
        got = self._excl_cache.get(code)
        if got is None:
            got = tuple((normalize_key(c), dash) for n in self._notes_cache.get(code, ()) if n["kind"] == "excludes1"
                        for c, dash in _CODE_REF.findall(n["text"]))
            self._excl_cache[code] = got
        return got

    def _excludes1(self, codes: list[Suggestion], out: Coding, text: str) -> None:
        """Drop the later of two codes an Excludes1 note says are never coded together."""
        drop: set[int] = set()
        keys = [normalize_key(c.code) if c.system == "icd10cm" else "" for c in codes]
        by_cat: dict[str, list[int]] = {}
        for j, k in enumerate(keys):
            if k:
                by_cat.setdefault(k[:3], []).append(j)
        # the pairs one of whose Excludes1 notes names the other (a note names codes of 3+ characters)
        pairs: set[tuple[int, int]] = set()
        for i, c in enumerate(codes):
            if not keys[i]:
                continue
            for k, dash in self._excluded(c.code):
                for j in by_cat.get(k[:3], ()):
                    bk = keys[j]
                    if j != i and bk.startswith(k) and (bk == k or dash or len(k) < 7):
                        pairs.add((min(i, j), max(i, j)))
        for i, j in sorted(pairs):
            if i in drop or j in drop:
                continue
            a, b = codes[i], codes[j]
            loser, winner, lose = (b, a, j) if b.weight <= a.weight else (a, b, i)
            drop.add(lose)
            span = loser.spans[0]
            out.not_coded.append(Skipped(text[span[0]:span[1]], span,
                                         f"Excludes1 with {winner.code} (guideline I.A.12.a)", loser.code))
        for j in sorted(drop, reverse=True):
            del codes[j]


def _sides(sents: list[Sentence]) -> list[tuple[int, Token, frozenset[str]]]:
    """Each stated side (left, right, bilateral) of the note with the words beside it."""
    out = []
    for j, sent in enumerate(sents):
        if sent.words.isdisjoint(_SIDES):
            continue
        for side in sent.tokens:
            if side.stem in _SIDES and not side.neg:
                out.append((j, side, frozenset(t.stem for t in sent.tokens
                                               if t is not side and abs(t.pos - side.pos) <= 2)))
    return out


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _offsets(toks: Iterable[Token]) -> set[tuple[int, int]]:
    return {(t.start, t.end) for t in toks}


def _subset(sent: Sentence, keep: Any) -> Sentence:
    out = Sentence(sent.start, sent.end, [t for t in sent.tokens if keep(t)])
    for t in out.tokens:
        out.bag.setdefault(t.stem, []).append(t)
    return out


_coders: dict[tuple[Any, ...], Coder] = {}
_coders_lock = threading.Lock()


def _signature(cb: Any, date: _dt.date | None) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]:
    """The releases a coder for ``date`` reads: (cache key, code-system releases, index books)."""
    from ..search.api import _selection

    sel = _selection(cb, date)
    infos = {s: i for s, i in sel.systems.items() if s in ("icd10cm", "icd10pcs", "hcpcs")}
    books = {b: i for b, i in sel.index if b in ("index", "eindex", "drug", "neoplasm", "pcs")}
    sig = (str(cb.store.home), tuple(sorted((s, i.release, str(i.path)) for s, i in infos.items())),
           tuple(sorted((b, i.release) for b, i in books.items())))
    return sig, infos, books


def loaded(cb: Any, date: Any = None) -> bool:
    """Whether the coder for the releases in effect on ``date`` is already loaded (no loading)."""
    from ..codebook import _as_date

    return _signature(cb, _as_date(date))[0] in _coders


def coder(cb: Any, date: _dt.date | None) -> Coder:
    """The loaded coder for the releases in effect on ``date``: built once per store and set of
    releases (the books take a few hundred MB), then shared by every Codebook and thread."""
    from ..codebook import Codebook

    sig, infos, books = _signature(cb, date)
    with _coders_lock:
        got = _coders.get(sig)
        if got is None:
            if len(_coders) >= 4:
                _coders.pop(next(iter(_coders)))
            got = _coders[sig] = Coder(Codebook.open(sig[0]), infos, books)
            got.warm()
            # the books are about a million long-lived objects: a full garbage collection walking
            # them costs ~0.5 s, every few hundred notes. Collect once now, then leave everything
            # alive at this point out of later collections (freed as usual when unreferenced).
            gc.collect()
            gc.freeze()
        return got


def prepare(cb: Any, date: Any = None) -> None:
    """Load the coder for ``date`` now (index books, title indexes, ConText): a server calls this
    at start, so the first note does not wait for it."""
    from ..codebook import _as_date

    coder(cb, _as_date(date))


def code(cb: Any, text: str, setting: str = "outpatient", date: Any = None,
         systems: Iterable[str] | None = None) -> Coding:
    from ..codebook import _as_date

    day = _as_date(date)
    if setting not in SETTINGS:
        raise MedcodesError(f"setting {setting!r}: use outpatient or inpatient")
    return coder(cb, day).code(text, setting, systems, day)
