"""Date of service -> release in effect, and whether a code is valid there, in memory and fast.

:class:`DateResolver` loads, once, every installed release of one system:
the sorted effective-from dates, and for every code key a bitmask of the
releases where it is a valid code (present, not structural, not billable
``False``, and for HCPCS not discontinued — the same rows :mod:`medcodes.diff`
compares). A lookup is then a dict hit for the day and a dict hit plus a bit
test for the code: well over 500,000 (code, date) pairs per second in
process (``benchmarks/dates.py``).

It also answers what the codebook needs for a code that is not valid on a
date: when it last was (:meth:`DateResolver.ended`) and from when it is
(:meth:`DateResolver.starts`).
"""

from __future__ import annotations

import bisect
import json
import sys
import datetime as _dt
from typing import Iterable, Sequence

from .diff import STRUCTURAL_KINDS, hcpcs_discontinued
from .errors import NotInstalled
from .model import ReleaseInfo
from .store import Store


_NONE: tuple[None, bool] = (None, False)

#: Row kinds that are never codes (see medcodes.diff.STRUCTURAL_KINDS).
_SKIP = tuple(sorted(STRUCTURAL_KINDS))


def valid_keys(store: Store, info: ReleaseInfo) -> frozenset[str]:
    """Keys of the valid codes of one release (the rows the diff compares, minus billable 0)."""
    db = store.open(info.system, info.release)
    marks = ",".join("?" * len(_SKIP))
    sql = (f"SELECT key, attrs FROM concept WHERE kind NOT IN ({marks}) "
           "AND (billable IS NULL OR billable != 0)")
    rows = db.conn.execute(sql, _SKIP)
    if info.system == "hcpcs":
        start = info.effective_from
        rows = ((k, a) for k, a in rows if not (a and hcpcs_discontinued(json.loads(a), start)))
    # interned: the same key string object in every release's set makes lookups cheaper
    return frozenset(sys.intern(k) for k, _a in rows)


class DateResolver:
    """Release in effect on a date, and code validity, for one system."""

    def __init__(self, store: Store, system: str, releases: Sequence[str] | None = None) -> None:
        infos = store.releases(system)
        if releases is not None:
            wanted = set(releases)
            infos = [i for i in infos if i.release in wanted]
        if not infos:
            raise NotInstalled(f"no {system} release is installed (run: medcodes pull {system})")
        if len(infos) > 62:
            infos = infos[-62:]   # keep the masks small ints; the oldest are dropped first
        self.system = system
        self.infos: list[ReleaseInfo] = infos
        self.ids: list[str] = [i.release for i in infos]
        self._starts: list[int] = [i.effective_from.toordinal() for i in infos]
        self._ends: list[int] = [
            (i.effective_to or _dt.date.max).toordinal() for i in infos]
        self.masks: dict[str, int] = {}
        self._sets: list[frozenset[str]] = []
        for bit, info in enumerate(infos):
            keys = valid_keys(store, info)
            self._sets.append(keys)
            for key in keys:
                self.masks[key] = self.masks.get(key, 0) | 1 << bit
        self._yes = [(rid, True) for rid in self.ids]
        self._no = [(rid, False) for rid in self.ids]
        self._days: dict[_dt.date, int] = {}

    # ------------------------------------------------------------------ lookups
    def index(self, day: _dt.date) -> int:
        """Position of the release in effect on ``day`` in :attr:`ids`, or -1 when none is."""
        i = self._days.get(day)
        if i is None:
            n = day.toordinal()
            i = bisect.bisect_right(self._starts, n) - 1
            if i >= 0 and n > self._ends[i]:
                i = -1
            if len(self._days) < 200_000:
                self._days[day] = i
        return i

    def release_on(self, day: _dt.date) -> ReleaseInfo | None:
        i = self.index(day)
        return self.infos[i] if i >= 0 else None

    def resolve(self, code_key: str, day: _dt.date) -> tuple[str | None, bool]:
        """(release id in effect on ``day`` or None, whether ``code_key`` is a valid code in it)."""
        i = self._days.get(day)
        if i is None:
            i = self.index(day)
        if i < 0:
            return _NONE
        return self._yes[i] if code_key in self._sets[i] else self._no[i]

    def resolve_many(self, pairs: Iterable[tuple[str, _dt.date]]) -> list[tuple[str | None, bool]]:
        """:meth:`resolve` over many pairs (the same answers, without a call per pair)."""
        days, sets, yes, no, index = self._days, self._sets, self._yes, self._no, self.index
        out = []
        append = out.append
        for key, day in pairs:
            i = days.get(day)
            if i is None:
                i = index(day)
            if i < 0:
                append(_NONE)
            else:
                append(yes[i] if key in sets[i] else no[i])
        return out

    def valid_in(self, code_key: str) -> list[str]:
        """Ids of the loaded releases where the code is valid, oldest first."""
        mask = self.masks.get(code_key, 0)
        return [rid for bit, rid in enumerate(self.ids) if mask >> bit & 1]

    def ended(self, code_key: str, day: _dt.date) -> _dt.date | None:
        """Last day the code was valid before ``day`` (None if it is valid then or never was before)."""
        i = self.index(day)
        mask = self.masks.get(code_key, 0)
        if i >= 0 and mask >> i & 1:
            return None
        n = day.toordinal()
        for bit in range(len(self.ids) - 1, -1, -1):
            if mask >> bit & 1 and self._ends[bit] < n:
                end = self.infos[bit].effective_to
                return end
        return None

    def starts(self, code_key: str, day: _dt.date) -> _dt.date | None:
        """First day after ``day`` the code is valid in a loaded release (None if none)."""
        mask = self.masks.get(code_key, 0)
        n = day.toordinal()
        for bit in range(len(self.ids)):
            if mask >> bit & 1 and self._starts[bit] > n:
                return self.infos[bit].effective_from
        return None
