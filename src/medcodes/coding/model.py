"""What the coding assistant answers: suggested codes with their evidence, and what it left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Suggestion:
    system: str
    code: str
    title: str
    billable: bool
    score: float
    role: str                                   # principal | first-listed | secondary | procedure | supply
    spans: list[tuple[int, int]]                # character offsets in the note
    evidence: dict[str, Any] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)   # what the documentation does not say
    weight: int = field(default=0, repr=False)          # words of the note it accounts for (ranking)

    def as_dict(self) -> dict[str, Any]:
        return {"system": self.system, "code": self.code, "title": self.title, "billable": self.billable,
                "score": round(self.score, 3), "role": self.role,
                "spans": [list(s) for s in self.spans], "evidence": self.evidence, "queries": self.queries}


@dataclass
class Skipped:
    text: str
    span: tuple[int, int]
    reason: str
    would_be: str | None = None                 # the code it would have produced

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "span": list(self.span), "reason": self.reason, "would_be": self.would_be}


@dataclass
class Coding:
    setting: str
    date: str | None
    codes: list[Suggestion] = field(default_factory=list)
    not_coded: list[Skipped] = field(default_factory=list)
    releases: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"setting": self.setting, "date": self.date, "releases": self.releases,
                "codes": [c.as_dict() for c in self.codes],
                "not_coded": [s.as_dict() for s in self.not_coded]}
