"""The note set (tests/coding/notes.jsonl) and its scores, shared by the regression test and
``benchmarks/code.py``.

- recall@k: of the codes a note supports (each a slot of acceptable alternatives), the share
  found among the first k suggestions;
- precision@5: of the first five suggestions, the share a coder would accept for the note;
- must-not rate: of the mentions that must not be coded (negated, family history, ruled out...),
  the share for which a code under the mention's prefix was suggested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..model import normalize_key


@dataclass(frozen=True)
class Note:
    id: str
    setting: str
    text: str
    codes: tuple[tuple[str, ...], ...]
    not_coded: tuple[tuple[str, str, str], ...]     # (mention text, code prefix, reason)


def load(path: str | Path) -> list[Note]:
    notes = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            notes.append(Note(d["id"], d["setting"], d["text"],
                              tuple(tuple(normalize_key(c) for c in slot) for slot in d["codes"]),
                              tuple((x["text"], normalize_key(x["prefix"]), x["reason"]) for x in d["not_coded"])))
    return notes


@dataclass
class Scores:
    notes: int
    slots: int
    recall1: float
    recall5: float
    precision5: float
    must_not: int
    must_not_coded: int
    misses: list[tuple[str, list[str], list[str]]] = field(default_factory=list)

    @property
    def must_not_rate(self) -> float:
        return self.must_not_coded / self.must_not if self.must_not else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"notes": self.notes, "expected_codes": self.slots, "recall@1": round(self.recall1, 3),
                "recall@5": round(self.recall5, 3), "precision@5": round(self.precision5, 3),
                "must_not_mentions": self.must_not, "must_not_coded": self.must_not_coded,
                "must_not_rate": round(self.must_not_rate, 3)}


def score(notes: list[Note], suggest: Callable[[Note], list[str]]) -> Scores:
    """``suggest(note)`` returns codes best first."""
    slots = hit1 = hit5 = 0
    p_num = p_den = 0
    mn = mn_bad = 0
    misses = []
    for note in notes:
        got = [normalize_key(c) for c in suggest(note)]
        top5 = got[:5]
        accepted = {c for slot in note.codes for c in slot}
        missed = []
        for slot in note.codes:
            slots += 1
            if got[:1] and got[0] in slot:
                hit1 += 1
            if any(c in slot for c in top5):
                hit5 += 1
            else:
                missed.append("/".join(slot))
        p_num += sum(1 for c in top5 if c in accepted)
        p_den += len(top5)
        for _text, prefix, _reason in note.not_coded:
            mn += 1
            if any(c.startswith(prefix) for c in got):
                mn_bad += 1
                missed.append(f"!{prefix}")
        if missed:
            misses.append((note.id, missed, got[:6]))
    # recall@1: the first suggestion is the note's first expected code's slot, or any slot
    return Scores(len(notes), slots, hit1 / max(len(notes), 1), hit5 / max(slots, 1),
                  p_num / max(p_den, 1), mn, mn_bad, misses)
