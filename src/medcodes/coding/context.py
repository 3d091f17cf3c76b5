"""Sentences and ConText (negation, history, family, hypothetical, uncertainty) via medspaCy.

medspaCy's ConText rules run over a blank English spaCy pipeline: no model is downloaded.
PyRuSH, which medspaCy pulls in, logs every token of the text at DEBUG through loguru;
notes are protected health information, so that logger is switched off before anything runs.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

_lock = threading.Lock()
_nlp: "_Pipeline | None" = None


#: coders' uncertainty and negation words the default ConText rules do not all carry
_RULES = [
    ("probable", "POSSIBLE_EXISTENCE", "FORWARD"), ("probably", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("suspected", "POSSIBLE_EXISTENCE", "FORWARD"), ("suspect", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("possible", "POSSIBLE_EXISTENCE", "FORWARD"), ("likely", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("questionable", "POSSIBLE_EXISTENCE", "FORWARD"), ("presumed", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("rule out", "POSSIBLE_EXISTENCE", "FORWARD"), ("r/o", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("consistent with", "POSSIBLE_EXISTENCE", "FORWARD"), ("compatible with", "POSSIBLE_EXISTENCE", "FORWARD"),
    ("negative for", "NEGATED_EXISTENCE", "FORWARD"), ("no evidence of", "NEGATED_EXISTENCE", "FORWARD"),
    ("consider", "HYPOTHETICAL", "FORWARD"), ("evaluate for", "HYPOTHETICAL", "FORWARD"),
    ("evaluation for", "HYPOTHETICAL", "FORWARD"),
    (";", "TERMINATE", "TERMINATE"), ("due to", "TERMINATE", "TERMINATE"),   # "without hematuria due to E. coli"
]


@dataclass(frozen=True)
class Context:
    negated: bool = False
    historical: bool = False
    family: bool = False
    hypothetical: bool = False
    uncertain: bool = False


class _Pipeline:
    """The blank spaCy pipeline with the sentencizer and ConText, and the words any ConText
    rule that sets an attribute needs: a sentence holding none of them is left unmodified."""

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp
        self.sentencizer = nlp.get_pipe("sentencizer")
        self.context = nlp.get_pipe("medspacy_context")
        self.triggers = _trigger_words(self.context.rules, nlp.tokenizer)
        import numpy as np

        self.trigger_ids = None if self.triggers is None else np.array(
            sorted(nlp.vocab.strings.add(w) for w in self.triggers), dtype=np.uint64)


def _trigger_words(rules: Any, tokenizer: Any) -> frozenset[str] | None:
    """One set of lower-case words per rule, every match of the rule holding one of them (a
    literal's least common word; a pattern's least common required element); their union.
    None when a rule's matches cannot be pinned to words (a regular expression, say): then
    every sentence is read. Rules that only end or block a scope (TERMINATE, PSEUDO) need none."""
    from spacy.lang.en.stop_words import STOP_WORDS

    def cost(words: set[str]) -> int:
        return sum(1000 if w in STOP_WORDS else 1 for w in words)

    out: set[str] = set()
    for r in rules:
        if r.direction.upper() in ("TERMINATE", "PSEUDO") or r.category.upper() in ("TERMINATE", "PSEUDO"):
            continue
        if r.pattern is None:
            words = [t.lower_ for t in tokenizer(r.literal.lower()) if not t.is_space]
            if not words:
                return None
            out.add(min(words, key=lambda w: (w in STOP_WORDS, -len(w))))
            continue
        if isinstance(r.pattern, str):
            return None
        best: set[str] | None = None
        for el in r.pattern:
            if el.get("OP") in ("?", "*", "!"):
                continue
            for k in ("LOWER", "ORTH", "TEXT", "NORM"):
                v = el.get(k)
                if isinstance(v, str):
                    words = {v.lower()}
                elif isinstance(v, dict) and set(v) == {"IN"}:
                    words = {str(x).lower() for x in v["IN"]}
                else:
                    continue
                if best is None or cost(words) < cost(best):
                    best = words
        if best is None:
            return None
        out |= best
    return frozenset(out)


def pipeline() -> _Pipeline:
    global _nlp
    with _lock:
        if _nlp is None:
            try:
                from loguru import logger
                logger.disable("PyRuSH")
                logger.disable("medspacy")
            except ImportError:  # pragma: no cover - loguru comes with medspacy
                pass
            import medspacy

            from medspacy.context import ConTextRule

            nlp = medspacy.load(enable=["medspacy_context"])
            nlp.add_pipe("sentencizer", first=True)
            rules = [ConTextRule(lit, cat, direction=d) for lit, cat, d in _RULES]
            # "X ruled out." (the default rule reads "ruled out" forward only; the longer match wins)
            rules.append(ConTextRule("ruled out <end>", "NEGATED_EXISTENCE", direction="BACKWARD",
                                     pattern=[{"LOWER": "ruled"}, {"LOWER": "out"}, {"IS_PUNCT": True}]))
            # "X ruled out by CT" / "X ruled out with serial troponins": the test that excluded it follows
            rules.append(ConTextRule("ruled out by", "NEGATED_EXISTENCE", direction="BACKWARD",
                                     pattern=[{"LOWER": {"IN": ["ruled", "excluded"]}}, {"LOWER": "out", "OP": "?"},
                                              {"LOWER": {"IN": ["by", "with", "on", "after", "via"]}}]))
            nlp.get_pipe("medspacy_context").add(rules)
            _nlp = _Pipeline(nlp)
        return _nlp


@dataclass
class Parsed:
    """A note's spaCy tokens and sentences (token ranges and character spans)."""
    doc: Any
    sents: list[tuple[int, int]]          # token ranges
    bounds: list[tuple[int, int]]         # character spans
    starts: list[int] = field(default_factory=list)


def sentence_bounds(text: str) -> tuple[Parsed, list[tuple[int, int]]]:
    """The note's tokens and sentences, and each sentence's character span."""
    p = pipeline()
    doc = p.sentencizer(p.nlp.make_doc(text))
    sents = [(s.start, s.end) for s in doc.sents]
    bounds = [(s.start_char, s.end_char) for s in doc.sents]
    return Parsed(doc, sents, bounds, [a for a, _b in bounds]), bounds


def contexts(parsed: Parsed, spans: list[tuple[int, int]]) -> list[Context]:
    """ConText attributes for each character span (one per mention; overlapping spans share).

    ConText's scopes end at the sentence, so it runs only over the sentences that hold both a
    mention and a word some modifier needs, gathered into one smaller spaCy doc: the matcher
    and ConText's pairwise scope and target checks then cost what those sentences cost."""
    p = pipeline()
    doc = parsed.doc
    which = [bisect_right(parsed.starts, a) - 1 for a, _b in spans]
    wanted = sorted(set(i for i in which if i >= 0))
    if p.trigger_ids is not None and wanted:
        import numpy as np
        from spacy.attrs import LOWER

        hit = np.isin(doc.to_array(LOWER), p.trigger_ids)
        wanted = [i for i in wanted if hit[parsed.sents[i][0]:parsed.sents[i][1]].any()]
    out = [Context() for _ in spans]
    # a few sentences per spaCy doc: ConText pairs every target with every modifier of a doc
    for g in range(0, len(wanted), _GROUP):
        _run(p, parsed, wanted[g:g + _GROUP], spans, which, out)
    return out


#: sentences per ConText run (its target x modifier checks grow with the square of a doc's size;
#: each run costs a doc and a matcher call)
_GROUP = 4


def _run(p: _Pipeline, parsed: Parsed, wanted: list[int], spans: list[tuple[int, int]], which: list[int],
         out: list[Context]) -> None:
    """ConText over the sentences ``wanted`` gathered into one small doc; fills ``out`` for the
    spans that stand in them."""
    from spacy.tokens import Doc

    doc = parsed.doc
    words: list[str] = []
    spaces: list[bool] = []
    starts: list[bool] = []
    shift: dict[int, int] = {}               # sentence -> new offset minus old offset
    pos = 0
    for i in wanted:
        a, b = parsed.sents[i]
        shift[i] = pos - doc[a].idx
        for k, t in enumerate(doc[a:b]):
            words.append(t.text)
            spaces.append(bool(t.whitespace_))
            starts.append(k == 0)
            pos += len(t.text) + len(t.whitespace_)
    sub = Doc(p.nlp.vocab, words=words, spaces=spaces, sent_starts=starts)
    ents = []
    taken: set[int] = set()
    index: list[tuple[int, Any]] = []
    for n, ((a, b), i) in enumerate(zip(spans, which)):
        d = shift.get(i)
        if d is None:
            continue
        sp = sub.char_span(a + d, b + d, label="MENTION", alignment_mode="expand")
        if sp is None or any(j in taken for j in range(sp.start, sp.end)):
            index.append((n, (a + d, b + d)))     # read through the entity that overlaps it
            continue
        taken.update(range(sp.start, sp.end))
        index.append((n, sp.start))
        ents.append(sp)
    sub.ents = sorted(ents, key=lambda s: s.start)
    p.context(sub)
    by_start = {e.start: e for e in sub.ents}
    for n, ix in index:
        if isinstance(ix, tuple):
            sp = sub.char_span(ix[0], ix[1], alignment_mode="expand")
            e = next((x for x in sub.ents if sp is not None and x.start <= sp.start < x.end), None)
        else:
            e = by_start.get(ix)
        if e is None:
            continue
        u = e._                              # one Underscore object, not five
        out[n] = Context(bool(u.is_negated), bool(u.is_historical), bool(u.is_family),
                         bool(u.is_hypothetical), bool(u.is_uncertain))
