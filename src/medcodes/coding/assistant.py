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
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import MedcodesError
from ..model import normalize_key
from . import context as _context
from .lexicon import GENERIC, Lexicon, Path, open_books
from .model import Coding, Skipped, Suggestion
from .refine import Refined, Refiner
from .text import Sentence, Token, sentences
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
_CODE_REF = re.compile(r"\b([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)(-?)")
_INTENT = (("self", "harm"), ("suicide",), ("assault",), ("undetermined",), ("adverse",), ("underdos",),
           ("underdose",), ("underdosing",))


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

    @property
    def depth(self) -> int:
        """How far down the index the mention went (ties between equal readings go deeper)."""
        return len(self.path.terms) if self.path is not None else 2


class Coder:
    """Loaded books and releases for one date; reused across notes (thread-safe reads)."""

    def __init__(self, cb: Any, date: _dt.date | None) -> None:
        self.cb = cb
        self.date = date
        self.releases: dict[str, str] = {}
        self.cm = self._refiner("icd10cm")
        self.pcs = self._refiner("icd10pcs")
        self.hcpcs = self._refiner("hcpcs")
        self.lex = Lexicon.load(open_books(cb, date))
        self._title_index: dict[str, TitleIndex] = {}
        self._lock = threading.Lock()

    def _refiner(self, system: str) -> Refiner | None:
        try:
            info = self.cb.release_for(system, self.date)
        except MedcodesError:
            return None
        self.releases[system] = info.release
        return Refiner(self.cb.store.open(info.system, info.release), system)

    # ------------------------------------------------------------------ entry point
    def code(self, text: str, setting: str = "outpatient", systems: Iterable[str] | None = None) -> Coding:
        if setting not in SETTINGS:
            raise MedcodesError(f"setting {setting!r}: use outpatient or inpatient")
        if not isinstance(text, str):
            raise MedcodesError("the note must be text")
        if len(text) > MAX_CHARS:
            raise MedcodesError(f"the note is {len(text):,} characters; at most {MAX_CHARS:,} are read")
        if "\x00" in text or (text and sum(not (c.isprintable() or c.isspace()) for c in text) > len(text) // 10):
            raise MedcodesError("the note is not text (binary content)")
        wanted = set(systems) if systems else {"icd10cm", "icd10pcs", "hcpcs"}
        out = Coding(setting, self.date.isoformat() if self.date else None, releases=dict(self.releases))
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
        ctxs = _context.contexts(doc, [m.span for m in mentions]) if mentions else []
        for m, c in zip(mentions, ctxs):
            m.ctx = c
        self._decide(text, sents, mentions, setting, out)
        return out

    # ------------------------------------------------------------------ diagnoses
    def _diagnoses(self, i: int, sent: Sentence) -> list[Mention]:
        found: list[Mention] = []
        for book in ("index", "eindex"):
            for term, toks in self.lex.mains_in(book, sent):
                path = self.lex.walk(book, term, toks, sent)
                main = self.lex.books[book].stems.get(term.id, ())
                if not main or len(main[0]) <= 2 or (main[0] in GENERIC and not path.direct and len(main) == 1):
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
        trig = [t for t in sent.tokens if t.stem in _NEOPLASM_WORDS or t.stem.startswith("metasta")]
        if not trig:
            return []
        codes, used = self._neoplasm(sent)
        if not codes:
            return []
        toks = trig + used
        span = (min(t.start for t in trig), max(t.end for t in trig))
        return [Mention(i, "icd10cm", None, [c], span, _offsets(toks),
                        f"Table of Neoplasms: {label}", "neoplasm") for c, label in codes]

    def _neoplasm(self, sent: Sentence) -> tuple[list[tuple[str, str]], list[Token]]:
        """Primary site x 'Malignant Primary'; sites after 'metastasis to' x 'Malignant Secondary'."""
        b = self.lex.books.get("neoplasm")
        root = next((t for t in b.terms.values() if t.level == 0), None) if b is not None else None
        if root is None:
            return [], []
        cut = next((t.pos for t in sent.tokens if t.stem.startswith("metasta") or t.stem == "secondary"), None)
        parts = [(sent, "Malignant Primary")] if cut is None else [
            (_subset(sent, lambda t: t.pos < cut), "Malignant Primary"),
            (_subset(sent, lambda t: t.pos > cut), "Malignant Secondary")]
        if sent.has(("benign",)):
            parts = [(sent, "Benign")]
        elif sent.has(("situ",)):
            parts = [(sent, "Ca in situ")]
        codes: list[tuple[str, str]] = []
        used: list[Token] = []
        for part, column in parts:
            rest = self.lex._down(b, root, part)
            node = b.terms[rest[-1][0]] if rest else None
            while node is not None and not self.lex.cells("neoplasm", node):
                node = b.terms.get(node.parent) if node.parent is not None else None
            if node is not None:
                code = self.lex.cells("neoplasm", node).get(column)
                if code:
                    codes.append((code, " > ".join(b.terms[n].title for n, _t in rest) + f" > {column}"))
                    used.extend(t for _n, ts in rest for t in ts)
        return codes, used

    def _drugs(self, i: int, sent: Sentence) -> list[Mention]:
        """Poisoning / adverse effect / underdosing: the substance's row, the intent's column."""
        bag = sent.bag
        if not any(s in bag for s in _DRUG_WORDS) and not any(s.startswith("underdos") for s in bag):
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
        if not any(s in sent.bag for s in _SUPPLY_WORDS):
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
            span = (min(t.start for t in toks), max(t.end for t in toks))
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
    def _decide(self, text: str, sents: list[Sentence], mentions: list[Mention], setting: str, out: Coding) -> None:
        inpatient = setting == "inpatient"
        kept: list[Mention] = []
        for m in mentions:
            why = self._context_reason(m, inpatient)
            m.refined = self._resolve(m, sents[m.sent])
            if m.refined is None:
                continue
            if why:
                out.not_coded.append(Skipped(text[m.span[0]:m.span[1]], m.span, why, m.refined.code))
                continue
            kept.append(m)
        # a mention whose words all went into another's combination code is not coded again
        final: list[Mention] = []
        for m in kept:
            host = next((o for o in kept if o is not m and o.system == m.system and o.sent == m.sent
                         and o.book != "eindex" and (m.used < o.used or (m.used == o.used and (o.depth, -o.order) > (m.depth, -m.order)))
                         and o.refined.code != m.refined.code), None)
            if host is not None and m.system == "icd10cm" and m.book != "eindex":
                if _overlap(m.span, host.span):
                    continue          # a fragment of the same phrase: nothing to report
                out.not_coded.append(Skipped(text[m.span[0]:m.span[1]], m.span,
                                             f"part of combination code {host.refined.code} (guideline I.B.9)",
                                             m.refined.code))
                continue
            final.append(m)
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
        self._suggest(text, chosen, inpatient, out)
        seen: set[tuple[str | None, str]] = set()
        unique = []
        for sk in sorted(out.not_coded, key=lambda x: x.span):
            if (sk.would_be, sk.reason) not in seen and not any(
                    sk.would_be == c.code for c in out.codes):
                seen.add((sk.would_be, sk.reason))
                unique.append(sk)
        out.not_coded = unique

    def _context_reason(self, m: Mention, inpatient: bool) -> str | None:
        if m.about or m.system != "icd10cm":
            return None
        c = m.ctx
        if c.negated:
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

    def _suggest(self, text: str, chosen: list[Mention], inpatient: bool, out: Coding) -> None:
        by_code: dict[tuple[str, str], Suggestion] = {}
        order = sorted(chosen, key=lambda m: ({"icd10cm": 0, "icd10pcs": 1, "hcpcs": 2}[m.system], m.sent,
                                              m.book == "eindex", -len(m.used), m.order))
        for m in order:
            r = m.refined
            k = (m.system, r.code)
            s = by_code.get(k)
            if s is not None:
                if m.span not in s.spans:
                    s.spans.append(m.span)
                continue
            evidence: dict[str, Any] = {"index": m.label, "book": m.book}
            if m.system == "icd10cm" and m.ctx.uncertain and inpatient:
                evidence["guideline"] = "uncertain diagnosis coded as established (inpatient, Section II.H)"
            if r.considered > 1:
                evidence["tabular"] = f"chosen among {r.considered} billable codes below {m.raw[0]}"
            notes = self._notes(m.system, r.code)
            if notes:
                evidence["notes"] = notes
            role = {"icd10pcs": "procedure", "hcpcs": "supply"}.get(m.system, "secondary")
            s = Suggestion(m.system, r.code, r.title, r.billable and r.complete, 0.0, role, [m.span],
                           evidence, list(r.queries))
            s.weight = len(m.used)
            by_code[k] = s
        codes = list(by_code.values())
        self._excludes1(codes, out, text)
        first = next((s for s in codes if s.system == "icd10cm"), None)
        if first is not None:
            first.role = "principal" if inpatient else "first-listed"
        n = len(codes)
        for rank, s in enumerate(codes):
            s.score = round(1.0 - rank / (n + 1), 3) * (0.8 if s.queries else 1.0)
        out.codes = codes

    def _notes(self, system: str, code: str) -> list[dict[str, str]]:
        if system != "icd10cm":
            return []
        try:
            rec = self.cb.lookup(code, system="icd10cm", date=self.date)
        except MedcodesError:
            return []
        keep = ("excludes1", "codeFirst", "useAdditionalCode", "codeAlso")
        return [{"kind": n["kind"], "text": n["text"], "from": n["from"]} for n in rec.notes if n["kind"] in keep][:12]

    def _excludes1(self, codes: list[Suggestion], out: Coding, text: str) -> None:
        """Drop the later of two codes an Excludes1 note says are never coded together."""
        drop: set[int] = set()
        refs = [[(normalize_key(c), dash) for n in x.evidence.get("notes", []) if n["kind"] == "excludes1"
                 for c, dash in _CODE_REF.findall(n["text"])] for x in codes]

        def excludes(i: int, j: int) -> bool:
            bk = normalize_key(codes[j].code)
            return any(bk == k or (dash or len(k) < 7) and bk.startswith(k) for k, dash in refs[i])

        for i, a in enumerate(codes):
            for j, b in enumerate(codes):
                if j <= i or i in drop or j in drop or a.system != "icd10cm" or b.system != "icd10cm":
                    continue
                if excludes(i, j) or excludes(j, i):
                    loser, winner = (b, a) if b.weight <= a.weight else (a, b)
                    drop.add(codes.index(loser))
                    span = loser.spans[0]
                    out.not_coded.append(Skipped(text[span[0]:span[1]], span,
                                                 f"Excludes1 with {winner.code} (guideline I.A.12.a)", loser.code))
        for j in sorted(drop, reverse=True):
            del codes[j]


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


def coder(cb: Any, date: _dt.date | None) -> Coder:
    """The loaded coder for this codebook's releases on ``date`` (built once, then shared)."""
    sig = (id(cb), date, tuple((i.system, i.release, i.path) for i in cb.store.releases()))
    with _coders_lock:
        got = _coders.get(sig)
        if got is None:
            if len(_coders) > 8:
                _coders.clear()
            got = _coders[sig] = Coder(cb, date)
        return got


def code(cb: Any, text: str, setting: str = "outpatient", date: Any = None,
         systems: Iterable[str] | None = None) -> Coding:
    from ..codebook import _as_date

    return coder(cb, _as_date(date)).code(text, setting, systems)
