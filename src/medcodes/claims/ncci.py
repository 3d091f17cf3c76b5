"""NCCI edits on a claim: MUE by setting, add-on code edits and PTP pairs, by each line's date of service.

The edits come from the NCCI release (quarter) installed in the store that
covers each line's date of service (``medcodes pull`` installs them; see
:mod:`medcodes.systems.ncci` for the files), or from a user's own files given
to ``medcodes check --ncci FILE`` / :func:`load` (those replace the installed
quarters for that run and apply on every date; PTP rows carry their own dates).

:func:`findings` is the rule, written once: the per-claim checker
(:mod:`medcodes.claims.check`) and batch mode (:mod:`medcodes.claims.batch`)
both call it. It is linear in the claim's lines: lines are grouped by (date of
service, provider) once, and each line costs a few dictionary probes (its
code's MUE, its add-on edits, its PTP column-2 edits, each memoised per code
and date) -- never a loop over pairs of lines.

Which table applies (:func:`setting_of`): the practitioner tables for
professional claims, the outpatient hospital tables for institutional
outpatient claims, the DME supplier MUE table for DME supplier claims
(``"setting": "dme-supplier"``; CCW RIF ``dme`` files); inpatient and other
institutional claims have no NCCI MUE/PTP tables. Units add up per the MUE
adjudication indicator: 1 per line, 2 and 3 per date of service across the
lines of one provider.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..systems.ncci import (AOC_TYPES, CONTRACTOR_DEFINED, MAI, MODIFIER_INDICATORS, SETTINGS, AocEdit, Mue,
                            PtpEdit, kind_of, parse_aoc, parse_mue, parse_ptp, text_of)
from .model import Claim, Finding, code_key

__all__ = ["NcciEdits", "load", "from_release", "findings", "setting_of", "Mue", "AocEdit", "PtpEdit",
           "MODIFIER_INDICATORS", "MAI", "NCCI_BYPASS_MODIFIERS"]

# NCCI Policy Manual for Medicare Services, Chapter I, section E: the modifiers that may bypass a
# PTP edit with modifier indicator 1 (a rule of the NCCI manual, not a code list of ours).
NCCI_BYPASS_MODIFIERS = frozenset(
    "24 25 27 57 58 59 78 79 91 XE XS XP XU E1 E2 E3 E4 FA F1 F2 F3 F4 F5 F6 F7 F8 F9 "
    "LT RT LC LD LM RC RI TA T1 T2 T3 T4 T5 T6 T7 T8 T9 GG".split())

#: claim setting -> the NCCI tables that apply (None: no MUE/PTP/AOC edits for that setting)
_TABLE_OF_SETTING = {"practitioner": "practitioner", "outpatient-hospital": "outpatient-hospital",
                     "dme-supplier": "dme-supplier", "inpatient": None, "other": None}
_MAI_WORDS = {"1": "line edit", "2": "date of service edit, policy", "3": "date of service edit, clinical"}


@dataclass
class NcciEdits:
    """One set of NCCI edits: an installed quarter, or a user's own files (``release`` None).

    ``mue`` is setting -> code -> :class:`Mue`; ``aoc`` add-on code -> its edits; PTP edits
    by column 2 code come from ``ptp`` (a user's files) or, for an installed quarter, from
    its SQLite table on first use of each code (a quarter's PTP files hold millions of rows).
    """

    label: str
    release: str | None = None
    mue: dict[str, dict[str, Mue]] = field(default_factory=dict)
    aoc: dict[str, list[AocEdit]] = field(default_factory=dict)
    ptp: dict[str, list[PtpEdit]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    ptp_reader: Callable[[str], list[PtpEdit]] | None = None
    _addon: dict[tuple[str, _dt.date], tuple[str, frozenset[str], tuple[str, ...]] | None] = \
        field(default_factory=dict, repr=False)
    _pairs: dict[tuple[str, str, _dt.date], dict[str, PtpEdit]] = field(default_factory=dict, repr=False)
    _ptp_settings: set[str] | None = field(default=None, repr=False)
    _codes: frozenset[str] | None = field(default=None, repr=False)
    ptp_codes: Callable[[], Iterable[str]] | None = field(default=None, repr=False)
    aoc_source: str | None = None   # where the add-on code edits came from, when not from this quarter

    # ------------------------------------------------------------------ building (a user's files)
    def add_ptp(self, edits: Iterable[PtpEdit], source: str) -> None:
        n = 0
        for e in edits:
            self.ptp.setdefault(e.column2, []).append(e)
            n += 1
        self.sources.append(source)
        self.counts[source] = n

    def add_mue(self, rows: Iterable[Mue], source: str) -> None:
        n = 0
        for m in rows:
            self.mue.setdefault(m.setting, {})[m.code] = m
            n += 1
        self.sources.append(source)
        self.counts[source] = n

    def add_aoc(self, rows: Iterable[AocEdit], source: str) -> None:
        n = 0
        for e in rows:
            self.aoc.setdefault(e.addon, []).append(e)
            n += 1
        self.sources.append(source)
        self.counts[source] = n

    # ------------------------------------------------------------------ questions
    def ptp_edits(self, column2: str) -> list[PtpEdit]:
        got = self.ptp.get(column2)
        if got is None:
            got = self.ptp_reader(column2) if self.ptp_reader is not None else []
            if self.ptp_reader is not None:
                if len(self.ptp) > 200_000:
                    self.ptp.clear()
                self.ptp[column2] = got
        return got

    def pairs(self, column1: str, column2: str, day: _dt.date) -> list[PtpEdit]:
        return [e for e in self.ptp_edits(column2) if e.column1 == column1 and e.active_on(day)]

    def column1_of(self, column2: str, setting: str, day: _dt.date) -> dict[str, PtpEdit]:
        """Column 1 code -> the PTP edit in effect on ``day`` for this column 2 code (memoised)."""
        ck = (column2, setting, day)
        got = self._pairs.get(ck)
        if got is None:
            got = {}
            for e in self.ptp_edits(column2):
                if (e.setting == setting or setting == "*") and e.active_on(day):
                    got.setdefault(e.column1, e)
            if len(self._pairs) > 200_000:
                self._pairs.clear()
            self._pairs[ck] = got
        return got

    def addon(self, code: str, day: _dt.date) -> tuple[str, frozenset[str], tuple[str, ...]] | None:
        """(type, primary codes in effect, special instruction notes) of an add-on code on ``day``, or None.

        When the edits in effect mix types (a code moving from type 1 to 3, say), the most lenient
        one answers: 2 (payer decides) over 3 (listed and others) over 1 (only those listed).
        """
        ck = (code, day)
        if ck in self._addon:
            return self._addon[ck]
        active = [e for e in self.aoc.get(code, ()) if e.active_on(day)]
        got = None
        if active:
            types = {e.type for e in active}
            kind = "2" if "2" in types else "3" if "3" in types else "1"
            if any(e.primary == CONTRACTOR_DEFINED for e in active) and kind == "1":
                kind = "3"
            prims = frozenset(e.primary for e in active if e.primary_on(day))
            notes = tuple(sorted({e.notes for e in active if e.notes and e.primary == CONTRACTOR_DEFINED}
                                 | {f"{e.primary}: {e.notes}" for e in active
                                    if e.notes and e.primary != CONTRACTOR_DEFINED and e.primary_on(day)}))
            got = (kind, prims, notes)
        if len(self._addon) > 200_000:
            self._addon.clear()
        self._addon[ck] = got
        return got

    def has_ptp(self) -> bool:
        return bool(self.ptp) or self.ptp_reader is not None

    def codes(self) -> frozenset[str]:
        """Every code a finding can be about: MUE codes (any setting), add-on codes, PTP column 2 codes.
        A claim none of whose lines has one of these gets no MUE, add-on or PTP finding."""
        if self._codes is None:
            ptp = self.ptp_codes() if self.ptp_codes is not None else self.ptp.keys()
            self._codes = frozenset().union(*(t.keys() for t in self.mue.values()), self.aoc.keys(), ptp)
        return self._codes

    def source_name(self, kind: str) -> str:
        if kind == "aoc" and self.aoc_source:
            return self.aoc_source
        if self.release is not None:
            return self.label
        names = [s for s in self.sources if (kind == "ptp") == ("mue" not in s.lower() and "aoc" not in s.lower())]
        return ", ".join(names) or kind


# ====================================================================== sources of edits
def load(paths: Iterable[str | Path]) -> NcciEdits:
    """A user's own NCCI files (MUE, add-on code, PTP; zips are opened; kind told by the header row)."""
    from ..sources import scan

    edits = NcciEdits(label="NCCI files given with --ncci")
    for p in paths:
        for src in scan(p):
            text = text_of(src)
            kind = kind_of(src, text)
            if kind == "mue":
                edits.add_mue(parse_mue(src, text), src.display)
            elif kind == "aoc":
                edits.add_aoc(parse_aoc(src, text), src.display)
            else:
                edits.add_ptp(parse_ptp(src, text), src.display)
    edits.label = "NCCI files " + ", ".join(edits.sources)
    return edits


def from_release(db: Any) -> NcciEdits:
    """The edits of one installed NCCI quarter (a :class:`~medcodes.store.ReleaseDB`): MUE and add-on
    code edits read whole (tens of thousands of rows), PTP edits by column 2 code when first asked."""
    from ..systems import ncci as _sys

    info = db.info
    edits = NcciEdits(label=info.label, release=info.release, counts=dict(info.counts),
                      sources=[s["name"] for s in info.sources])
    for m in _sys.mue_rows(db):
        edits.mue.setdefault(m.setting, {})[m.code] = m
    for e in _sys.aoc_rows(db):
        edits.aoc.setdefault(e.addon, []).append(e)
    if any(k.startswith("ptp_") for k in info.counts):
        edits.ptp_reader = lambda code: _sys.ptp_rows(db, code)
        edits.ptp_codes = lambda: [r[0] for r in db.conn.execute("SELECT DISTINCT column2 FROM ptp")]
    return edits


def from_store(store: Any, info: Any) -> NcciEdits:
    """The edits of the installed quarter ``info``. CMS publishes an add-on code file only when the edits
    change: a quarter installed without one takes the add-on code edits of the newest earlier installed
    quarter that has them (their rows carry their own effective and deletion dates)."""
    from ..systems import ncci as _sys

    edits = from_release(store.open("ncci", info.release))
    if not edits.aoc:
        earlier = [i for i in store.releases("ncci") if i.effective_from < info.effective_from and i.counts.get("aoc")]
        if earlier:
            prev = max(earlier, key=lambda i: i.effective_from)
            for e in _sys.aoc_rows(store.open("ncci", prev.release)):
                edits.aoc.setdefault(e.addon, []).append(e)
            edits.aoc_source = f"{prev.label}: the newest add-on code file installed ({info.label} has none)"
    return edits


# ====================================================================== the rule
def setting_of(claim: Claim) -> str | None:
    """The NCCI table set for a claim: practitioner, outpatient-hospital, dme-supplier, or None."""
    s = claim.setting
    if s is None:
        return "practitioner" if claim.type == "professional" else "outpatient-hospital"
    return _TABLE_OF_SETTING.get(s)


def findings(claim: Claim, edits_on: Callable[[_dt.date], NcciEdits | None],
             add: Callable[[Finding], None]) -> None:
    """Add the NCCI findings of ``claim``; ``edits_on(day)`` gives the edits in effect on a date (or None)."""
    lines = claim.lines
    setting = setting_of(claim) if lines else None
    if setting is None:
        return
    sdate, sprov = claim.service_date, claim.provider or ""
    groups: dict[tuple[_dt.date, str], list[int]]
    if any(ln.date is not None or ln.provider for ln in lines):   # lines of several dates or providers
        groups = {}
        for j, ln in enumerate(lines):
            k = (ln.date or sdate, ln.provider or sprov)
            g = groups.get(k)
            if g is None:
                groups[k] = [j]
            else:
                g.append(j)
    else:
        groups = {(sdate, sprov): list(range(len(lines)))}
    keys = [_key(ln.code) for ln in lines]
    gaps: list[_dt.date] = []
    for (day, _prov), idx in groups.items():
        edits = edits_on(day)
        if edits is None:
            if day not in gaps:
                gaps.append(day)
            continue
        if edits.mue:
            _mue(claim, edits, setting, day, idx, keys, add)
        if setting != "dme-supplier":
            aoc, ptp = edits.aoc, edits.has_ptp()
            if (aoc and any(keys[j] in aoc for j in idx)) or ptp:
                present = Counter(keys[j] for j in idx)
                if aoc:
                    _aoc(claim, edits, day, idx, keys, present, add)
                if ptp:
                    _ptp(claim, edits, setting, day, idx, keys, present, add)
    if gaps:
        add(gap_finding(tuple(sorted(gaps))))


_key = code_key     # normalize_key, remembered per raw code string


@functools.lru_cache(maxsize=4096)
def gap_finding(days: tuple[_dt.date, ...]) -> Finding:
    """The once-per-claim note that no installed NCCI quarter covers these dates of service."""
    shown = ", ".join(d.isoformat() for d in days[:5]) + (f" and {len(days) - 5} more" if len(days) > 5 else "")
    return Finding("ncci-unchecked", "info", "lines", (),
                   f"No installed NCCI quarter covers {shown}: MUE, add-on code and PTP edits were not applied "
                   "to those lines (medcodes pull installs the quarter; medcodes releases lists what is installed).",
                   "CMS NCCI edits are published by quarter")


def _mue(claim: Claim, edits: NcciEdits, setting: str, day: _dt.date, idx: list[int], keys: list[str],
         add: Callable[[Finding], None]) -> None:
    table = edits.mue.get(setting)
    if not table:
        return
    lines = claim.lines
    totals: dict[str, list[Any]] = {}
    for j in idx:
        m = table.get(keys[j])
        if m is None:
            continue
        units = lines[j].units
        if m.indicator == "1":
            if units > m.units:
                add(_mue_finding(j, lines[j].code.strip(), units, m, edits, "on one line", setting))
            continue
        t = totals.get(keys[j])
        if t is None:
            totals[keys[j]] = [units, j]
        else:
            t[0] += units
    for key, (total, j) in totals.items():
        m = table[key]
        if total > m.units:
            add(_mue_finding(j, lines[j].code.strip(), total, m, edits, f"on {day.isoformat()}", setting))


_MUE_TEXT: dict[tuple[Any, ...], tuple[str, str]] = {}


def _mue_finding(j: int, code: str, units: float, m: Mue, edits: NcciEdits, scope: str, setting: str) -> Finding:
    ck = (code, units, m.units, m.indicator, m.rationale, scope, setting, edits.label)
    got = _MUE_TEXT.get(ck)
    if got is None:
        if len(_MUE_TEXT) > 50_000:
            _MUE_TEXT.clear()
        got = _MUE_TEXT[ck] = _mue_text(code, units, m, edits, scope, setting)
    return Finding("ncci-mue", "error", f"lines[{j}].units", (code,), got[0], got[1])


mue_finding = _mue_finding    # the MUE finding of a line (batch mode makes its texts from its parts)


def _mue_text(code: str, units: float, m: Mue, edits: NcciEdits, scope: str, setting: str) -> tuple[str, str]:
    msg, source = mue_tail(m, edits, setting)
    return mue_head(code, units, scope) + msg, source


def mue_head(code: str, units: float, scope: str) -> str:
    """The start of a MUE finding's message: the line's code, its units and where they add up."""
    return f"{code}: {mue_units(units)} {scope}, "


def mue_units(units: float) -> str:
    """Units as a MUE finding's message words them."""
    return f"{units:g} unit{'' if units == 1 else 's'}"


def mue_tail(m: Mue, edits: NcciEdits, setting: str) -> tuple[str, str]:
    """The rest of a MUE finding's message (after :func:`mue_head`; the edit's own words) and its source."""
    msg = f"MUE {m.units} ({_MAI_WORDS[m.indicator]}: {m.rationale or 'no rationale given'})"
    if m.units == 0:
        msg += f". A MUE of 0: not reported in the {SETTINGS[setting]} Services setting"
        dme = edits.mue.get("dme-supplier", {}).get(m.code)
        if setting == "practitioner" and dme is not None and dme.units > 0:
            msg += f" (the DME Supplier Services MUE is {dme.units}: a DME supplier bills it)"
    if m.indicator == "1":
        msg += ". Units above the MUE on one line are denied; report the service on separate lines only " \
               "where CMS instructions allow."
    elif m.indicator == "2":
        msg += ". Indicator 2 is an absolute limit per date of service (policy): units above it are not paid, " \
               "even on appeal."
    else:
        msg += ". Indicator 3 is a clinical limit per date of service: units above it may be paid on appeal with " \
               "documentation."
    return msg, (f"NCCI MUE, {SETTINGS[setting]} Services table ({edits.source_name('mue')}), "
                 f"adjudication indicator {m.indicator} {MAI[m.indicator]}")


def _aoc(claim: Claim, edits: NcciEdits, day: _dt.date, idx: list[int], keys: list[str], present: Counter,
         add: Callable[[Finding], None]) -> None:
    lines = claim.lines
    for j in idx:
        key = keys[j]
        got = edits.addon(key, day)
        if got is None:
            continue
        kind, prims, notes = got
        if not prims and kind != "2":   # every listed primary deleted before the date: nothing to check against
            continue
        if len(prims) <= len(present):
            ok = any(present.get(p, 0) > (p == key) for p in prims)
        else:
            ok = any(n > (p == key) for p, n in present.items() if p in prims)
        if ok:
            continue
        code = lines[j].code.strip()
        others = len(idx) > 1
        src = f"NCCI add-on code edits, type {kind} ({AOC_TYPES[kind]}); {edits.source_name('aoc')}"
        tail = f" Notes: {'; '.join(notes[:3])}." if notes else ""
        if kind == "2":
            if others:
                add(Finding("ncci-add-on", "info", f"lines[{j}]", (code,),
                            f"{code} is an add-on code whose primary codes the payer (Medicare contractor) "
                            f"decides (type 2): check with the payer that a primary procedure on {day.isoformat()} "
                            f"qualifies.{tail}", src))
            else:
                add(Finding("ncci-add-on", "warning", f"lines[{j}]", (code,),
                            f"{code} is an add-on code billed with no other service on {day.isoformat()} by the "
                            "same provider; it is paid only with a primary procedure, which the payer (Medicare "
                            f"contractor) decides (type 2).{tail}", src))
            continue
        listed = sorted(prims)
        shown = ", ".join(listed[:10]) + (f" and {len(listed) - 10} more" if len(listed) > 10 else "")
        if kind == "3":
            add(Finding("ncci-add-on", "warning", f"lines[{j}]", (code,),
                        f"{code} is an add-on code and none of its listed primary codes ({shown}) is on the claim "
                        f"for {day.isoformat()} and the same provider; the payer may accept other primaries "
                        f"(type 3).{tail}", src))
        else:
            add(Finding("ncci-add-on", "error", f"lines[{j}]", (code,),
                        f"{code} is an add-on code without its primary code: report it with {shown} "
                        f"(same date of service, same provider) or not at all.{tail}", src))


def _ptp(claim: Claim, edits: NcciEdits, setting: str, day: _dt.date, idx: list[int], keys: list[str],
         present: Counter, add: Callable[[Finding], None]) -> None:
    lines = claim.lines
    bypass_of = [bool(NCCI_BYPASS_MODIFIERS.intersection(lines[j].modifiers)) for j in idx]
    plain: Counter | None = None      # codes on lines without a bypass modifier (built when first needed)
    ptp_setting = setting if edits.release is not None or _has_setting(edits, setting) else "*"
    for n, j in enumerate(idx):
        kb = keys[j]
        c1s = edits.column1_of(kb, ptp_setting, day)
        if not c1s:
            continue
        if len(c1s) <= len(present):
            hits = [(c1, e) for c1, e in c1s.items() if present.get(c1, 0) > (c1 == kb)]
        else:
            hits = [(c1, c1s[c1]) for c1, cnt in present.items() if c1 in c1s and cnt > (c1 == kb)]
        for c1, e in hits:
            mi = e.modifier_indicator
            if mi == "9":
                continue
            if mi == "1":
                if bypass_of[n]:
                    continue
                if plain is None:
                    plain = Counter(keys[i] for i, b in zip(idx, bypass_of) if not b)
                if plain.get(c1, 0) - (c1 == kb) <= 0:   # every column 1 line carries a bypass modifier
                    continue
            how = ("no modifier allows it" if mi == "0" else
                   "unless a NCCI-associated modifier (e.g. 59, XE, XS, XP, XU) documents a distinct service")
            add(Finding("ncci-ptp", "error", f"lines[{j}]", (e.column1, e.column2),
                        f"{e.column2} is not paid with {e.column1} on the same day ({how}; modifier indicator "
                        f"{mi} = {MODIFIER_INDICATORS[mi]}). Rationale: {e.rationale}.",
                        f"NCCI PTP edits ({edits.source_name('ptp')}), effective {e.effective.isoformat()}"))


def _has_setting(edits: NcciEdits, setting: str) -> bool:
    """A user's PTP files apply by their setting when they name one for this claim's setting, else to all."""
    if edits._ptp_settings is None:
        edits._ptp_settings = {e.setting for es in edits.ptp.values() for e in es}
    return setting in edits._ptp_settings
