"""Words of a clinical note with their character offsets, grouped by sentence.

The same folding and light stemming as search (:mod:`medcodes.search.text`), so index terms
and note words meet as the same tokens; here every token also keeps where it stands in the
note, so each suggested code can point at the text it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..search.text import STOP_WORDS, SYNONYMS, fold, stem
from ..search.text import comma_variant as _variant   # shared with search's index paths

_WORD = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
#: words that end the reach of a preceding "without"/"no" inside a sentence
_SCOPE_BREAK = frozenset({"with", "and", "but", "due", "secondary"})
_NEG_WORDS = frozenset({"without", "no", "not", "negative", "denies", "denied"})
#: kept as tokens although search drops them: they select index subterms
_KEEP = frozenset({"with", "without", "not", "no", "other"})

# Note-side words -> the official index's words (words to words, never to codes). Search's
# table covers coders' abbreviations; this adds how notes name drug classes and encounters.
NOTE_WORDS: dict[str, tuple[str, ...]] = {
    "metformin": ("long term oral hypoglycemic",), "glipizide": ("long term oral hypoglycemic",),
    "glyburide": ("long term oral hypoglycemic",), "glimepiride": ("long term oral hypoglycemic",),
    "sitagliptin": ("long term oral hypoglycemic",), "pioglitazone": ("long term oral hypoglycemic",),
    "empagliflozin": ("long term oral hypoglycemic",), "warfarin": ("long term anticoagulants",),
    "apixaban": ("long term anticoagulants",), "rivaroxaban": ("long term anticoagulants",),
    "anticoagulant": ("anticoagulants",), "clopidogrel": ("long term antiplatelet",),
    "more than": ("greater than",), "over": ("greater than",),
    "status post": ("status",), "s p": ("status",),
    "e coli": ("escherichia coli",), "uti": ("urinary tract infection",),
    "ibs": ("irritable bowel syndrome",), "gerd": ("gastro esophageal reflux disease",),
    "rsv": ("respiratory syncytial virus",), "nafld": ("nonalcoholic fatty liver disease",),
    "kidney stone": ("calculus kidney",), "hives": ("urticaria",),
    "flu": ("influenza",), "stomach flu": ("gastroenteritis",),
    "cva": ("infarction cerebral",), "stroke": ("infarction cerebral",),
    "heart attack": ("infarction myocardium",), "diabetes": ("diabetes mellitus",),
    "low back pain": ("pain low back",), "neck pain": ("cervicalgia",),
    "hot flashes": ("flushing menopausal",), "sore throat": ("pharyngitis",),
    "nosebleed": ("epistaxis",), "bite": ("bite",),
    "exam": ("examination",), "physical": ("examination",), "checkup": ("examination",),
    "well child": ("examination child",), "both": ("bilateral",), "bilateral": ("bilateral",),
    "age related": ("senile",), "bmi": ("body mass index adult",), "leg": ("lower limb",),
    "smoker": ("dependence nicotine cigarette",), "uncomplicated": ("uncomplicated",),
    "covid": ("covid 19 coronavirus disease 2019",), "colon": ("large intestine colon",),
    "distal": ("lower end distal",), "femoral": ("femur femoral",), "preeclampsia": ("pre eclampsia",),
    "gestation": ("gestation pregnancy",), "liveborn": ("live birth",), "sigmoid": ("sigmoid colon",),
    "mammogram": ("mammogram",), "pap": ("papanicolaou",),
    "hemodialysis": ("renal dialysis",), "dialysis": ("renal dialysis",),
}


@dataclass(slots=True)
class Token:
    stem: str
    start: int           # character offsets in the note
    end: int
    pos: int             # position among the sentence's tokens (synonyms share their source's)
    neg: bool = False    # inside the reach of "without"/"no" in the same sentence
    synthetic: bool = False


@dataclass
class Sentence:
    start: int
    end: int
    tokens: list[Token] = field(default_factory=list)
    bag: dict[str, list[Token]] = field(default_factory=dict)
    numbers: list[float] = field(default_factory=list)
    _stated: frozenset[str] | None = field(default=None, repr=False)
    _negs: bool | None = field(default=None, repr=False)
    _words: frozenset[str] | None = field(default=None, repr=False)
    _negated: frozenset[str] | None = field(default=None, repr=False)

    @property
    def words(self) -> frozenset[str]:
        """Every stem of the sentence (computed once)."""
        got = self._words
        if got is None:
            got = self._words = frozenset(self.bag)
        return got

    @property
    def stated(self) -> frozenset[str]:
        """Stems with at least one token outside a without-phrase (computed once)."""
        got = self._stated
        if got is None:
            got = self._stated = frozenset(s for s, toks in self.bag.items() if any(not t.neg for t in toks))
        return got

    @property
    def negated(self) -> frozenset[str]:
        """Stems with at least one token inside a without-phrase (computed once)."""
        got = self._negated
        if got is None:
            got = self._negated = frozenset(s for s, toks in self.bag.items() if any(t.neg for t in toks))
        return got

    @property
    def any_neg(self) -> bool:
        """Some token stands inside a without-/no-phrase."""
        got = self._negs
        if got is None:
            got = self._negs = any(t.neg for t in self.tokens)
        return got

    def has(self, stems: tuple[str, ...], neg: bool | None = False) -> bool:
        """All ``stems`` are in the sentence (``neg``: False = outside a without-phrase,
        True = inside one, None = either)."""
        for s in stems:
            toks = self.bag.get(s)
            if not toks or (neg is not None and not any(t.neg == neg for t in toks)):
                return False
        return True

    def find(self, stems: tuple[str, ...]) -> list[Token]:
        return [self.bag[s][0] for s in stems if s in self.bag]


def term_stems(text: str) -> tuple[str, ...]:
    """The stems an index term needs: folded, no parenthesised words, no NEC/NOS, no stop words."""
    text = re.sub(r"\([^)]*\)", " ", text)
    out = []
    for w in _WORD.findall(fold(text).replace("'s", "")):
        for part in w.split("-"):
            if part in ("nec", "nos") or (part in STOP_WORDS and part not in _KEEP):
                continue
            out.append(stem(part))
    return tuple(out)


def term_forms(title: str, main: bool = False) -> list[tuple[str, ...]]:
    """The ways a term can be stated: comma variants of the head word are alternatives (``Infarct,
    infarction``), other comma parts are required (``Bridge, myocardial``), ``X or Y`` is either."""
    text = re.sub(r"\([^)]*\)", " ", title)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        return []
    heads, extra = [parts[0]], []
    for p in parts[1:]:
        (heads if _variant(parts[0], p) else extra).append(p)
    more = term_stems(" ".join(extra)) if extra else ()
    forms: list[tuple[str, ...]] = []
    for h in heads:
        alts = h.split(" or ")
        if main or len(alts) != 2 or any(" " in a.strip() for a in alts):
            alts = [h]
        for alt in alts:
            st = term_stems(alt) + more
            if st and st not in forms:
                forms.append(st)
    return forms


def sentences(note: str, bounds: list[tuple[int, int]]) -> list[Sentence]:
    """Tokenise each sentence span of ``note`` (offsets from the sentence splitter)."""
    return [_sentence(note, a, b) for a, b in bounds]


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
#: first words of the note-word and synonym phrases: only these can start a replacement
_FIRST = frozenset(k.split()[0] for k in (*NOTE_WORDS, *SYNONYMS) if k.split())
_STEMS: dict[str, str] = {}


def _stem(w: str) -> str:
    got = _STEMS.get(w)
    if got is None:
        got = stem(w)
        if len(_STEMS) < 100_000:
            _STEMS[w] = got
    return got


def _sentence(note: str, a: int, b: int) -> Sentence:
    sent = Sentence(a, b)
    sent.numbers = [float(x) for x in _NUMBER.findall(note, a, b)]
    words: list[tuple[str, int, int]] = []
    for m in _WORD.finditer(note, a, b):
        raw = m.group().lower()               # the pattern matches ASCII letters and digits only
        off = m.start()
        if "-" not in raw:
            words.append((raw, off, off + len(raw)))
            continue
        for p in raw.split("-"):
            words.append((p, off, off + len(p)))
            off += len(p) + 1
    neg = False
    pos = 0
    prev_end = a
    tokens = sent.tokens
    for w, s, e in words:
        if s - prev_end > 1 or (s > prev_end and note[prev_end] != " "):
            gap = note[prev_end:s]
            if "," in gap or ";" in gap or ":" in gap:
                neg = False          # a comma or semicolon ends the reach of "without"/"no"
        prev_end = e
        if w in _NEG_WORDS:
            neg = True
        elif w in _SCOPE_BREAK:
            neg = False
        if w in STOP_WORDS and w not in _KEEP:
            continue
        tokens.append(Token(_stem(w), s, e, pos, neg and w not in _NEG_WORDS))
        pos += 1
    _add_synonyms(sent, words)
    bag = sent.bag
    for t in tokens:
        got = bag.get(t.stem)
        if got is None:
            bag[t.stem] = [t]
        else:
            got.append(t)
    return sent


def _add_synonyms(sent: Sentence, words: list[tuple[str, int, int]]) -> None:
    """Synthetic tokens for abbreviations and lay words, at the offsets of the words they replace."""
    plain = [w for w, _s, _e in words]
    starts = [i for i, w in enumerate(plain) if w in _FIRST]
    if not starts:
        return
    by_start = {t.start: t for t in sent.tokens}
    extra: list[Token] = []
    for size in (3, 2, 1):
        for i in starts:
            if i + size > len(plain):
                continue
            key = plain[i] if size == 1 else " ".join(plain[i:i + size])
            repl = NOTE_WORDS.get(key) or SYNONYMS.get(key)
            if not repl:
                continue
            s, e = words[i][1], words[i + size - 1][2]
            anchor = by_start.get(s)
            pos = anchor.pos if anchor else 0
            neg = anchor.neg if anchor else False
            for w in repl[0].split():
                if w in STOP_WORDS and w not in _KEEP:
                    continue
                extra.append(Token(_stem(w), s, e, pos, neg, synthetic=True))
    sent.tokens.extend(extra)
