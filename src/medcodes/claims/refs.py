"""Code references inside ICD-10-CM note texts, resolved to something a code can be matched against.

Notes name codes the way the Tabular List prints them: ``E11.65``, ``E10.-``,
``S82.5-``, ``Z3A``, ranges ``O00-O9A`` and lists ``(O10-O11, O13-O16)``.
:func:`parse_refs` turns a note into :class:`Ref` objects; ``Ref.matches(key)``
says whether a store key (``E1165``) falls under it: a code or a dash means
"this code and everything below it", a range compares category by category.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# a code as printed in a note: letter, digit, alphanumeric, optional dot + up to 4, optional ".-"/"-" tail
_CODE = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?(?:\.?-)?"
_TOKEN = re.compile(rf"(?<![A-Za-z0-9])({_CODE})(?:\s*-\s*({_CODE}))?(?![A-Za-z0-9])")


@dataclass(frozen=True, slots=True)
class Ref:
    lo: str           # store key (no dot, no dash)
    hi: str | None    # end of a range (store key) or None
    text: str         # as printed

    def matches(self, key: str) -> bool:
        if self.hi is None:
            return key.startswith(self.lo)
        return self.lo <= key[: len(self.lo)] and key[: len(self.hi)] <= self.hi


def _key(code: str) -> str:
    return code.replace(".", "").replace("-", "").strip()


@lru_cache(maxsize=65536)
def parse_refs(text: str) -> tuple[Ref, ...]:
    """Every code or range a note text names, in order."""
    refs = []
    for m in _TOKEN.finditer(text):
        lo, hi = m.group(1), m.group(2)
        if hi and not lo.endswith("-"):
            refs.append(Ref(_key(lo), _key(hi), m.group(0)))
        else:
            refs.append(Ref(_key(lo), None, lo))
            if hi:
                refs.append(Ref(_key(hi), None, hi))
    return tuple(refs)


def any_match(refs: tuple[Ref, ...], key: str) -> Ref | None:
    for r in refs:
        if r.matches(key):
            return r
    return None


class RefIndex:
    """Many notes' references, indexed so ``first(key)`` is a few dictionary probes.

    Codes and dashes ("E10.-", "N18.1") are prefixes looked up by the prefix
    lengths that occur among them (shortest first); ranges ("O00-O9A") are
    compared in turn (there are few).
    """

    __slots__ = ("_prefix", "_lengths", "_ranges", "_letters")

    def __init__(self, items: "list[tuple[Ref, object]]") -> None:
        self._prefix: dict[str, object] = {}
        self._ranges: list[tuple[str, str, int, int, object]] = []
        for ref, payload in items:
            if ref.hi is None:
                self._prefix.setdefault(ref.lo, payload)
            else:
                self._ranges.append((ref.lo, ref.hi, len(ref.lo), len(ref.hi), payload))
        self._lengths = tuple(sorted({len(k) for k in self._prefix}))
        # first characters any reference can match: most keys are rejected by one set probe
        letters = {k[0] for k in self._prefix}
        for lo, hi, _nlo, _nhi, _p in self._ranges:
            letters.update(chr(c) for c in range(ord(lo[0]), ord(hi[0]) + 1))
        self._letters = frozenset(letters)

    def __bool__(self) -> bool:
        return bool(self._prefix or self._ranges)

    def first(self, key: str) -> object | None:
        """The payload of the first reference matching ``key`` (shortest prefix, then ranges)."""
        if key[:1] not in self._letters:
            return None
        get = self._prefix.get
        for n in self._lengths:
            hit = get(key[:n])
            if hit is not None:
                return hit
        for lo, hi, nlo, nhi, payload in self._ranges:
            if lo <= key[:nlo] and key[:nhi] <= hi:
                return payload
        return None
