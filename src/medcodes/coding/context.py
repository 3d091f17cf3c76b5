"""Sentences and ConText (negation, history, family, hypothetical, uncertainty) via medspaCy.

medspaCy's ConText rules run over a blank English spaCy pipeline: no model is downloaded.
PyRuSH, which medspaCy pulls in, logs every token of the text at DEBUG through loguru;
notes are protected health information, so that logger is switched off before anything runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

_lock = threading.Lock()
_nlp: Any = None


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
    (";", "TERMINATE", "TERMINATE"),
]


@dataclass(frozen=True)
class Context:
    negated: bool = False
    historical: bool = False
    family: bool = False
    hypothetical: bool = False
    uncertain: bool = False


def pipeline() -> Any:
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
            nlp.get_pipe("medspacy_context").add(rules)
            _nlp = nlp
        return _nlp


def sentence_bounds(text: str) -> tuple[Any, list[tuple[int, int]]]:
    """The spaCy doc (tokens + sentences) and each sentence's character span."""
    nlp = pipeline()
    doc = nlp.make_doc(text)
    doc = nlp.get_pipe("sentencizer")(doc)
    return doc, [(s.start_char, s.end_char) for s in doc.sents]


def contexts(doc: Any, spans: list[tuple[int, int]]) -> list[Context]:
    """ConText attributes for each character span (one per mention; overlapping spans share)."""
    nlp = pipeline()
    ents = []
    taken: set[int] = set()
    index: list[int | None] = []
    for a, b in spans:
        sp = doc.char_span(a, b, label="MENTION", alignment_mode="expand")
        if sp is None or any(i in taken for i in range(sp.start, sp.end)):
            index.append(None)
            continue
        taken.update(range(sp.start, sp.end))
        index.append(len(ents))
        ents.append(sp)
    doc.ents = sorted(ents, key=lambda s: s.start)
    nlp.get_pipe("medspacy_context")(doc)
    by_start = {e.start: e for e in doc.ents}
    out: list[Context] = []
    for (a, b), i in zip(spans, index):
        if i is None:
            sp = doc.char_span(a, b, alignment_mode="expand")
            e = next((x for x in doc.ents if sp is not None and x.start <= sp.start < x.end), None)
        else:
            e = by_start.get(ents[i].start)
        if e is None:
            out.append(Context())
            continue
        u = e._                              # one Underscore object, not five
        out.append(Context(bool(u.is_negated), bool(u.is_historical), bool(u.is_family),
                           bool(u.is_hypothetical), bool(u.is_uncertain)))
    return out
