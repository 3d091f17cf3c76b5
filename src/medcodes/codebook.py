"""The one facade: identify, lookup, validate, describe (and search/check/diff as they land).

Everything the CLI, the HTTP server and library users ask goes through a
:class:`Codebook`. It holds a :class:`~medcodes.store.Store` and opens release
files lazily: creating a Codebook reads nothing but the store's directory.

Release choice: every call takes an optional date of service. The release of
a system *in effect* on that date answers; without a date, the release in
effect today, or the newest installed one when none covers today.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
import time as _time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from . import systems as _systems
from .errors import MedcodesError, NotFound, NotInstalled, shown
from .model import MAINTAINERS, SYSTEM_NAMES, ReleaseInfo, fold, normalize_key
from .store import ReleaseDB, Store, parse_attrs, row_attrs

#: Systems a raw code is tried against by identify, in tie-break order.
CODE_SYSTEMS = ("hcpcs", "icd10cm", "icd10pcs", "cpt", "icd9cm")

#: Systems whose codes are written with a dot (E11.65, 250.00): a dot rules the others out.
DOTTED_SYSTEMS = ("icd10cm", "icd9cm")

#: Row kinds that are codes one can put on a claim (vs chapters, blocks, sections...).
CODE_KINDS = frozenset({"code", "category", "header", "modifier", "table", "diagnosis", "procedure"})


@dataclass
class Identification:
    """One plausible reading of a raw string as a code."""

    system: str
    code: str
    exists: bool
    status: str                    # valid | header | deleted | not-found | not-installed
    kind: str
    maintainer: str
    score: float
    title: str | None = None
    billable: bool | None = None
    release: str | None = None
    structure: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    ended: str | None = None       # last day it was valid, when it was deleted
    successors: list[str] = field(default_factory=list)
    coverage_note: str | None = None   # set when no installed release covers the date asked
    key: str = field(default="", repr=False)  # the store key (internal)

    @property
    def system_name(self) -> str:
        return SYSTEM_NAMES.get(self.system, self.system)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["key"]
        d["system_name"] = self.system_name
        return d


@dataclass(slots=True)
class Record:
    """Everything known about one code in one release.

    ``attrs`` is the caller's own; the dicts inside ``ancestors`` and ``notes`` may be
    shared with other records of the same release (copy one before changing it).
    """

    system: str
    code: str
    title: str
    billable: bool | None
    kind: str
    release: str
    release_label: str
    maintainer: str
    short_title: str | None = None
    effective_from: str | None = None
    effective_to: str | None = None
    release_covers_date: bool = True
    coverage_note: str | None = None   # set when no installed release covers the date asked
    ancestors: list[dict[str, Any]] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)
    structure: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # added by the system module

    @property
    def notes(self) -> list[dict[str, Any]]:
        return list(self.details.get("notes", []))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        details = d.pop("details")
        d["system_name"] = SYSTEM_NAMES.get(self.system, self.system)
        for k, v in details.items():
            d.setdefault(k, v)
        return d


@dataclass
class Validation:
    """Is a code valid (and billable) on a date of service?"""

    code: str
    system: str | None
    valid: bool
    exists: bool
    billable: bool | None
    release: str | None
    reason: str
    ended: _dt.date | None = None
    successors: list[str] = field(default_factory=list)
    added: _dt.date | None = None                          # not yet valid: the date a later release added it
    valid_then: list[str] = field(default_factory=list)    # ... and the code(s) valid on the date instead
    #: valid | invalid | unknown (no installed release covers the date of service: never "valid")
    status: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            self.status = "valid" if self.valid else "invalid"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ended"] = self.ended.isoformat() if self.ended else None
        d["added"] = self.added.isoformat() if self.added else None
        return d


def _brief(row: sqlite3.Row) -> dict[str, Any]:
    b = row["billable"]
    return {"code": row["code"], "title": row["title"], "kind": row["kind"],
            "billable": None if b is None else bool(b)}


def _briefs(db: ReleaseDB, key: str | None, depth: int = 0) -> tuple[dict[str, Any], ...]:
    """The briefs of ``key`` and its ancestors, top down: built from the parent's own (memoised)
    tuple, so each node's brief is made once per release and shared (read-only dicts)."""
    if not key or depth > 64:                      # no tree is that deep: a damaged parent chain
        return ()

    def make() -> tuple[dict[str, Any], ...]:
        node = db.get(key)
        if node is None:
            return ()
        return _briefs(db, node["parent"], depth + 1) + (_brief(node),)

    return db.memo("briefs", key, make)


#: No code of any system is longer (ICD-10-PCS: 7; ICD-10-CM with its dot: 8).
MAX_CODE_LENGTH = 16
#: ICD-10-CM/PCS replaced ICD-9-CM for services from this date (HIPAA final rule, 45 CFR 162.1002).
ICD10_START = _dt.date(2015, 10, 1)


def _own(value: Any) -> Any:
    """A deep copy of parsed JSON (dicts, lists, scalars): twice as fast as parsing it again."""
    t = type(value)
    if t is dict:
        return {k: _own(v) for k, v in value.items()}
    if t is list:
        return [_own(v) for v in value]
    return value


def _as_date(date: _dt.date | str | None) -> _dt.date | None:
    if date is None or isinstance(date, _dt.date):
        return date
    try:
        return _dt.date.fromisoformat(date)
    except (ValueError, TypeError):
        raise MedcodesError(f"{shown(date)}: not a date (use YYYY-MM-DD)") from None


def _wrong_era(system: str, day: _dt.date | None) -> str | None:
    """Why a code of ``system`` cannot be valid on ``day`` (the ICD-9 / ICD-10 switch), or None."""
    if day is None:
        return None
    if system == "icd9cm" and day >= ICD10_START:
        return (f"ICD-9-CM was replaced by ICD-10-CM/PCS on {ICD10_START.isoformat()}: not valid on "
                f"{day.isoformat()}")
    if system in ("icd10cm", "icd10pcs") and day < ICD10_START:
        return (f"{SYSTEM_NAMES.get(system, system)} applies to services from {ICD10_START.isoformat()} "
                f"(ICD-9-CM before): not valid on {day.isoformat()}")
    return None


class Codebook:
    """Answers questions about codes from the releases installed in a store."""

    def __init__(self, store: Store, embedded: bool = True) -> None:
        self.store = store
        self.embedded = embedded
        self._chosen: dict[tuple[Any, ...], tuple[ReleaseInfo, bool]] = {}
        self._today_date, self._today_until = _dt.date.today(), 0.0
        self._describers: dict[tuple[str, str, int], tuple[dict[str, str], Callable[[str], str | None]]] = {}

    @classmethod
    def open(cls, home: Any = None, embedded: bool = True) -> "Codebook":
        """Open the store under ``home`` (default ``MEDCODES_HOME`` or the user data dir).

        With ``embedded`` (the default), a store with no ICD-10-CM release gets
        the official CDC tabular XML that ships inside simple-icd-10-cm,
        compiled once on first use.
        """
        return cls(Store(home), embedded=embedded)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Codebook":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- releases
    def releases(self, system: str | None = None) -> list[ReleaseInfo]:
        if self.embedded and system in (None, "icd10cm"):
            self._ensure_embedded()
        return self.store.releases(system)

    def _ensure_embedded(self) -> None:
        if self.store.releases("icd10cm"):
            return
        from .systems import icd10cm

        source = icd10cm.embedded_source()
        plans = icd10cm.plan([source])
        with self.store.transaction() as txn:
            for p in plans:
                txn.stage(p.build())

    def release_for(self, system: str, date: _dt.date | str | None = None) -> ReleaseInfo:
        """The release of ``system`` in effect on ``date`` (today by default).

        When no installed release covers the date, the one nearest to it in time
        (see :meth:`release_covering` to know whether it covers the date).
        """
        info, _covers = self._release_for(system, _as_date(date))
        return info

    def release_covering(self, system: str, date: _dt.date | str | None = None) -> tuple[ReleaseInfo, bool]:
        """Like :meth:`release_for`, plus whether that release really covers the date."""
        return self._release_for(system, _as_date(date))

    def _today(self) -> _dt.date:
        """Today's date, asked of the clock at most once a second (lookups in bulk ask per code)."""
        now = _time.monotonic()
        if now >= self._today_until:
            self._today_date, self._today_until = _dt.date.today(), now + 1.0
        return self._today_date

    def _release_for(self, system: str, date: _dt.date | None) -> tuple[ReleaseInfo, bool]:
        day = date or self._today()
        ck = (system, day, date is None, self.store.generation)
        hit = self._chosen.get(ck)
        if hit is None:
            hit = self._choose_release(system, date)
            if len(self._chosen) > 4096:
                self._chosen.clear()
            self._chosen[ck] = hit
        return hit

    def _choose_release(self, system: str, date: _dt.date | None) -> tuple[ReleaseInfo, bool]:
        infos = self.releases(system)
        if not infos:
            hint = "medcodes pull --cpt FILE (a licensed AMA file)" if system == "cpt" else "medcodes pull"
            raise NotInstalled(f"{SYSTEM_NAMES.get(system, system)}: no release installed (run {hint})")
        day = date or _dt.date.today()
        covering = [i for i in infos if i.covers(day)]
        if covering:
            return max(covering, key=lambda i: (i.effective_from, i.release)), True
        if date is None:  # nothing covers today: the newest installed release answers
            return max(infos, key=lambda i: (i.effective_from, i.release)), True

        def distance(i: ReleaseInfo) -> int:
            if day < i.effective_from:
                return (i.effective_from - day).days
            return (day - (i.effective_to or i.effective_from)).days

        # no installed release covers that date of service: the one nearest to it in time
        return min(infos, key=lambda i: (distance(i), -i.effective_from.toordinal())), False

    def db(self, system: str, date: _dt.date | str | None = None) -> ReleaseDB:
        info = self.release_for(system, date)
        return self.store.open(system, info.release)

    def _installed(self, system: str) -> bool:
        return bool(self.releases(system))

    # ---------------------------------------------------------------- identify
    def identify(self, raw: str, date: _dt.date | str | None = None) -> list[Identification]:
        """Every plausible reading of ``raw``, most likely first."""
        day = _as_date(date)
        if not isinstance(raw, str):
            raise MedcodesError(f"{shown(raw)}: not a code (expected a string)")
        cleaned = fold(raw).strip().upper().replace(" ", "")
        key = normalize_key(cleaned)
        if not key or not key.isascii() or not key.isalnum() or len(key) > MAX_CODE_LENGTH:
            raise MedcodesError(f"{shown(raw)}: not a code (expected letters and digits, with an optional dot)")
        out: list[Identification] = []
        dotted = "." in cleaned  # only ICD-9-CM and ICD-10-CM codes are written with a dot
        for system in CODE_SYSTEMS:
            if dotted and system not in DOTTED_SYSTEMS:
                continue
            mod = _systems.module(system)
            for reading in mod.readings(key):
                out.append(self._identify_one(mod, system, reading, day, cleaned))
        rank = {"valid": 3, "header": 2.5, "deleted": 2, "not-installed": 1, "not-found": 0}
        out.sort(key=lambda i: (rank.get(i.status, 0) + i.score), reverse=True)
        return out

    def _identify_one(self, mod: Any, system: str, reading: Any, day: _dt.date | None,
                      cleaned: str) -> Identification:
        sys_id = reading.extra.get("system", system)
        maintainer = reading.extra.get("maintainer") or MAINTAINERS.get(sys_id, "")
        score = reading.score
        dot = cleaned.find(".")
        if dot >= 0:
            # the dot says how the code was written: E11.30 (ICD-10-CM) vs E113.0 (ICD-9-CM E code),
            # 250.00 (ICD-9-CM diagnosis) vs 25.00 (procedure)
            score += 0.3 if reading.code.find(".") == dot else -0.5
        ident = Identification(system=sys_id, code=reading.code, exists=False, status="not-installed",
                               kind=reading.kind, maintainer=maintainer, score=score, note=reading.note,
                               key=reading.key)
        if sys_id != system or not self._installed(system):
            ident.structure = mod.structure(reading.code, None)
            return ident
        info, covers = self._release_for(system, day)
        db = self.store.open(system, info.release)
        row = db.get(reading.key)
        ident.structure = mod.structure(reading.code, db)
        ident.release = info.release
        if not covers and day is not None:
            ident.coverage_note = self.gap_note(system, day, info)
        if row is not None:
            ident.exists = True
            ident.code = row["code"]
            ident.title = row["title"]
            ident.kind = row["kind"]
            ident.billable = None if row["billable"] is None else bool(row["billable"])
            ident.status = "valid" if ident.billable is not False else "header"
            if row["kind"] == "modifier":
                ident.status = "valid"
            attrs = row_attrs(row)
            if attrs.get("status") == "discontinued":  # HCPCS: still listed, but terminated
                ident.status = "deleted"
                ident.ended = attrs.get("termination_date") or attrs.get("action_effective_date")
            return ident
        ident.status = "not-found"
        ended, successors, title = self._ended(system, reading.key, info)
        if ended is not None:
            ident.status = "deleted"
            ident.ended = ended.isoformat()
            ident.title = title
            ident.successors = successors
        elif successors:
            ident.successors = successors
        return ident

    def _ended(self, system: str, key: str, current: ReleaseInfo) -> tuple[_dt.date | None, list[str], str | None]:
        """When a code absent from ``current`` was last valid, and what replaced it.

        The agency's conversion table (when installed) gives the date its successors took
        effect; otherwise the day before the first installed release without it.
        """
        last = None
        title = None
        for info in self.store.releases(system):
            if info.effective_from >= current.effective_from:
                continue
            row = self.store.open(system, info.release).get(key)
            if row is not None:
                last, title = info, row["title"]
        successors = self._successors(system, key)
        ended = None
        if successors:
            ended = min(eff for _c, eff in successors) - _dt.timedelta(days=1)
        elif last is not None:
            nxt = [i for i in self.store.releases(system) if i.effective_from > last.effective_from]
            ended = (min(nxt, key=lambda i: i.effective_from).effective_from - _dt.timedelta(days=1)
                     if nxt else last.effective_to)
        return ended, [c for c, _eff in successors], title

    def _added(self, system: str, key: str, current: ReleaseInfo) -> tuple[_dt.date, str] | None:
        """(effective date, label) of the first later release holding ``key``, when no earlier one holds it:
        the code is not deleted but not yet valid (Z40.89 on 2025-06-15: added 2025-10-01)."""
        later = sorted((i for i in self.store.releases(system) if i.effective_from > current.effective_from),
                       key=lambda i: i.effective_from)
        first = next((i for i in later if self.store.open(system, i.release).get(key) is not None), None)
        if first is None:
            return None
        if any(self.store.open(system, i.release).get(key) is not None for i in self.store.releases(system)
               if i.effective_from < current.effective_from):
            return None
        return first.effective_from, first.label

    def _valid_then(self, system: str, key: str, current: ReleaseInfo) -> list[str]:
        """The code of ``current`` that a not-yet-valid ``key`` falls under: its nearest existing parent (Z40.8 for
        Z40.89 in FY2025)."""
        db = self.store.open(system, current.release)
        for n in range(len(key) - 1, 2, -1):
            row = db.get(key[:n])
            if row is not None:
                return [row["code"]]
        return []

    def _successors(self, system: str, key: str) -> list[tuple[str, _dt.date]]:
        if system != "icd10cm" or not self.store.releases("crosswalk"):
            return []
        from . import mapping

        try:
            return mapping.successors(self, key)
        except MedcodesError:
            return []

    # ---------------------------------------------------------------- lookup
    def lookup(self, code: str, system: str | None = None, date: _dt.date | str | None = None,
               ncci: bool = True) -> Record:
        """The whole record of a code; raises :class:`NotFound` with the nearest codes.

        HCPCS/CPT records carry ``ncci`` (see :meth:`ncci`) when an NCCI quarter is installed
        (``ncci=False`` skips it: the claim checker reads NCCI edits its own way)."""
        day = _as_date(date)
        row = None
        if system in CODE_SYSTEMS and isinstance(code, str) and len(code) <= MAX_CODE_LENGTH:
            # fast path: the code as written is in the release
            info, covers = self._release_for(system, day)
            db = self.store.open(system, info.release)
            key = normalize_key(code)
            row = db.get(key) if key.isalnum() else None
        if row is None:
            system, key = self._resolve(code, system, day)
            info, covers = self._release_for(system, day)
            db = self.store.open(system, info.release)
            row = db.get(key)
            if row is None:
                raise self._not_found(code, system, key, db, day=None if covers else day)
        mod = _systems.module(system)
        # one unpacking (the column order of the concept table) instead of a lookup by name each
        _key, rcode, kind, title, short_title, billable, parent, _seq, raw_attrs = row
        # the ancestors' briefs are shared by every code under the same parent (read-only dicts)
        ancestors = _briefs(db, parent) if parent else ()
        rec = Record(
            system=system, code=rcode, title=title, short_title=short_title,
            billable=None if billable is None else bool(billable), kind=kind,
            release=info.release, release_label=info.label, maintainer=MAINTAINERS.get(system, ""),
            effective_from=info.effective_from.isoformat(),
            effective_to=info.effective_to.isoformat() if info.effective_to else None,
            release_covers_date=covers,
            ancestors=list(ancestors),
            children=[_brief(c) for c in db.children(key)],
            attrs=_own(parse_attrs(raw_attrs)),  # the caller's own copy of the (cached) parse
        )
        rec.structure = mod.structure(rec.code, db)
        mod.enrich(rec.details, row, db)
        if not covers and day is not None:
            rec.coverage_note = self.gap_note(system, day, info)
            rec.details["notes"] = [{"kind": "release", "text": rec.coverage_note}] + list(
                rec.details.get("notes", []))
        if ncci and system in ("hcpcs", "cpt"):
            facts = self.ncci(rec.code, day)
            if facts is not None:
                rec.details["ncci"] = facts
        return rec

    def gap_note(self, system: str, day: _dt.date, info: ReleaseInfo) -> str:
        """'No installed HCPCS Level II release covers 2023-05-01; ...': the one line every answer for a
        date no installed release covers carries (never the nearest release's data silently)."""
        to = info.effective_to.isoformat() if info.effective_to else "open"
        return (f"No installed {SYSTEM_NAMES.get(system, system)} release covers {day.isoformat()}; "
                f"this answer is from {info.release} ({info.effective_from.isoformat()} .. {to}), the nearest "
                "installed release: pull the release in effect on that date for a definite answer.")

    # ---------------------------------------------------------------- NCCI
    def ncci(self, code: str, date: _dt.date | str | None = None) -> dict[str, Any] | None:
        """What the NCCI quarter in effect says about a HCPCS/CPT code: its MUE in each setting, its
        add-on code edit (type and primary codes) and the add-on codes it is a primary for.

        None when no NCCI release is installed or the code is in none of its tables. Codes only:
        the NCCI files carry no descriptors, and none are added here.
        """
        from .systems import ncci as _ncci

        day = _as_date(date)
        try:
            info, covers = self._release_for("ncci", day)
        except NotInstalled:
            return None
        asked = day or _dt.date.today()
        covers = info.covers(asked)
        probe = asked if covers else min(max(asked, info.effective_from), info.effective_to or asked)
        db = self.store.open("ncci", info.release)
        key = normalize_key(code)
        mue = {m.setting: {"units": m.units, "indicator": m.indicator, "adjudication": _ncci.MAI[m.indicator],
                           "rationale": m.rationale}
               for m in _ncci.mue_rows(db, key)}
        aoc_db = db   # a quarter without an add-on code file: the newest earlier one (CMS posts it on change)
        if not info.counts.get("aoc"):
            earlier = [i for i in self.store.releases("ncci")
                       if i.effective_from < info.effective_from and i.counts.get("aoc")]
            if earlier:
                aoc_db = self.store.open("ncci", max(earlier, key=lambda i: i.effective_from).release)
        edits = [e for e in _ncci.aoc_rows(aoc_db, "addon = ?", (key,)) if e.active_on(probe)]
        add_on = None
        if edits:
            types = {e.type for e in edits}
            kind = "2" if "2" in types else "3" if "3" in types else "1"
            add_on = {"type": kind, "meaning": _ncci.AOC_TYPES[kind],
                      "primaries": sorted({e.primary for e in edits if e.primary_on(probe)}),
                      "notes": sorted({e.notes for e in edits if e.notes}),
                      "effective": min(e.effective for e in edits).isoformat(),
                      "from_release": aoc_db.info.release}
        primary_of = sorted({e.addon for e in _ncci.aoc_rows(aoc_db, "primary_code = ?", (key,))
                             if e.active_on(probe) and e.primary_on(probe)})
        if not mue and add_on is None and not primary_of:
            return None
        return {"release": info.release, "label": info.label, "release_covers_date": covers,
                "asked": asked.isoformat(), "date": probe.isoformat(), "mue": mue, "add_on": add_on, "primary_for": primary_of}

    def _resolve(self, code: str, system: str | None, day: _dt.date | None) -> tuple[str, str]:
        """Which system and store key ``code`` means."""
        if system is not None:
            if system not in CODE_SYSTEMS:
                raise MedcodesError(f"{system!r}: unknown system (one of {', '.join(CODE_SYSTEMS)})")
            mod = _systems.module(system)
            key = normalize_key(code)
            info, _ = self._release_for(system, day)  # raises NotInstalled with the pull hint
            db = self.store.open(system, info.release)
            if db.get(key) is not None and key.isalnum():
                return system, key                     # the code as written is in the release
            readings = mod.readings(key) if key.isalnum() else []
            if not readings:
                if db.get(key) is not None:  # a chapter, block or section row ("Chapter 4", "E08-E13")
                    return system, key
                raise NotFound(f"{shown(code)}: not a {SYSTEM_NAMES.get(system, system)} code by its shape")
            for r in readings:
                if db.get(r.key) is not None:
                    return system, r.key
            return system, readings[0].key
        idents = self.identify(code, day)
        for ident in idents:
            if ident.exists:
                return ident.system, ident.key
        if not idents:
            raise NotFound(f"{shown(code)}: not a code of any system medcodes knows "
                           "(ICD-10-CM, ICD-10-PCS, HCPCS Level II, CPT, ICD-9-CM)")
        top = idents[0]  # nothing exists: answer for the most plausible reading
        if top.status == "not-installed":
            hint = "medcodes pull --cpt FILE, with a licensed AMA file" if top.system == "cpt" else "medcodes pull"
            if top.system == "cdt":
                hint = "CDT is the ADA's; medcodes has no CDT data"
            err = NotFound(f"{shown(code)}: looks like {top.system_name} {top.code}, but no {top.system_name} "
                           f"release is installed ({hint})")
            err.system = top.system
            raise err
        info, covers = self._release_for(top.system, day)
        raise self._not_found(code, top.system, top.key, self.store.open(top.system, info.release), top,
                              day=None if covers else day)

    def _not_found(self, raw: str, system: str, key: str, db: ReleaseDB,
                   ident: Identification | None = None, day: _dt.date | None = None) -> NotFound:
        """A one-line NotFound: deleted (when, and what replaced it) or the nearest codes."""
        name = SYSTEM_NAMES.get(system, system)
        code = ident.code if ident is not None else raw
        ended, successors, _title = self._ended(system, key, db.info)
        if ended is not None:
            msg = f"{shown(raw)}: {name} {code} is not valid in release {db.info.release} (last valid {ended.isoformat()})"
        else:
            msg = f"{shown(raw)}: not in {name} release {db.info.release}"
        if successors:
            msg += f"; replaced by {', '.join(successors[:12])}"
            err = NotFound(msg, successors)
        else:
            near = [r["code"] for r in db.neighbours(key, 2)]
            if near:
                msg += f"; nearest: {', '.join(near)}"
            err = NotFound(msg, near)
        if day is not None:   # the release asked is the nearest one, not one in effect on the date
            err.args = (f"{err.args[0]} (no installed {name} release covers {day.isoformat()}; "
                        f"checked against {db.info.release})",)
        err.system, err.ended = system, ended
        return err

    # ---------------------------------------------------------------- validate
    def validate(self, code: str, system: str | None = None, date: _dt.date | str | None = None) -> Validation:
        """Is ``code`` valid (and billable) on ``date``?

        ``status`` is ``valid``, ``invalid`` (with the reason: malformed, not in the release,
        deleted, a header) or ``unknown``: no installed release of the system covers the date
        (the reason says which releases there are). A bad ``date`` raises MedcodesError; a bad
        code never does, so a list of codes gets one answer each.
        """
        day = _as_date(date)
        try:
            system_, key = self._resolve(code, system, day)
        except NotFound as exc:
            ended = exc.ended
            v = Validation(code=code, system=exc.system or system, valid=False, exists=False, billable=None,
                           release=None, reason=str(exc), ended=ended,
                           successors=exc.suggestions if ended else [])
            gap = self._gap(v.system, day) if v.system else None
            if gap is not None:
                v.status, v.reason = "unknown", f"{gap}; {v.reason}"
            return v
        except NotInstalled as exc:
            return Validation(code, system, False, False, None, None, str(exc), status="unknown")
        except MedcodesError as exc:  # not a code at all
            return Validation(code if len(code) <= MAX_CODE_LENGTH * 4 else shown(code), system,
                              False, False, None, None, str(exc))
        wrong_era = _wrong_era(system_, day)
        if wrong_era is not None:  # a definite no, whatever is installed (check says the same)
            info, _ = self._release_for(system_, day)
            row = self.store.open(system_, info.release).get(key)
            shown_code = row["code"] if row is not None else code
            return Validation(shown_code, system_, False, row is not None, None, info.release,
                              f"{shown_code}: {wrong_era}")
        gap = self._gap(system_, day)
        if gap is not None:
            info, _ = self._release_for(system_, day)
            row = self.store.open(system_, info.release).get(key)
            there = ("it is in" if row is not None else "it is not in") + f" the nearest, {info.release}"
            return Validation(row["code"] if row is not None else code, system_, False, row is not None,
                              None if row is None or row["billable"] is None else bool(row["billable"]),
                              info.release, f"{gap} ({there})", status="unknown")
        info, covers = self._release_for(system_, day)
        row = self.store.open(system_, info.release).get(key)
        when = f" on {day.isoformat()}" if day else ""
        if row is None:
            added = self._added(system_, key, info)
            if added is not None:
                then = self._valid_then(system_, key, info)
                reason = (f"{code}: not yet valid{when}: {SYSTEM_NAMES[system_]} added it on "
                          f"{added[0].isoformat()} ({added[1]})")
                if then:
                    reason += f"; the code in {SYSTEM_NAMES[system_]} release {info.release} is {', '.join(then)}"
                return Validation(code, system_, False, False, None, info.release, reason, None, [], added[0], then)
            ended, successors, _t = self._ended(system_, key, info)
            reason = f"{code}: not in {SYSTEM_NAMES[system_]} release {info.release}{when}"
            if not covers and day is not None:
                reason += f" (no installed release covers {day.isoformat()}; checked against {info.release})"
            if ended:
                reason += f" (last valid {ended.isoformat()})"
            if successors:
                reason += f"; replaced by {', '.join(successors[:12])}"
            return Validation(code, system_, False, False, None, info.release, reason, ended, successors)
        billable = None if row["billable"] is None else bool(row["billable"])
        valid = billable is not False
        reason = "valid" if valid else f"{row['code']}: a header, not billable: use a more specific code"
        attrs = row_attrs(row)
        last: _dt.date | None = None
        if attrs.get("status") == "discontinued":   # HCPCS: still listed, but terminated
            valid = False
            ended = attrs.get("termination_date")
            last = _dt.date.fromisoformat(ended) if ended else None
            reason = f"{row['code']}: terminated in {SYSTEM_NAMES[system_]} release {info.release}" + (
                f" (last valid {ended})" if ended else "")
        if not covers and day is not None:
            reason += f" (no installed release covers {day.isoformat()}; checked against {info.release})"
        return Validation(row["code"], system_, valid, True, billable, info.release, reason, last)

    def _gap(self, system: str, day: _dt.date | None) -> str | None:
        """Why no answer can be given for ``system`` on ``day`` (no installed release covers it), or None."""
        if day is None or system not in CODE_SYSTEMS:
            return None
        try:
            info, covers = self._release_for(system, day)
        except MedcodesError:
            return None
        if covers:
            return None
        spans: list[list[Any]] = []   # the installed releases' dates, contiguous ones merged (HCPCS: 2 spans)
        for i in sorted(self.releases(system), key=lambda i: i.effective_from):
            if spans and spans[-1][1] is not None and i.effective_from <= spans[-1][1] + _dt.timedelta(days=1):
                spans[-1][1] = None if i.effective_to is None else max(spans[-1][1], i.effective_to)
            elif spans and spans[-1][1] is None:
                continue
            else:
                spans.append([i.effective_from, i.effective_to])
        span = ", ".join(f"{a.isoformat()} .. {b.isoformat() if b else 'open'}" for a, b in spans)
        name = SYSTEM_NAMES.get(system, system)
        return f"no installed {name} release covers {day.isoformat()} (installed: {span})"

    # ---------------------------------------------------------------- describe
    def describe(self, code: str, system: str = "icd10cm", date: _dt.date | str | None = None) -> str | None:
        """Title only, or None: the fast path for bulk work (see also :meth:`describer`)."""
        return self.describer(system, date)(code)

    def describer(self, system: str = "icd10cm", date: _dt.date | str | None = None) -> Callable[[str], str | None]:
        """A function code -> title (or None) over the release in effect, for tight loops.

        Its table (loaded once per release, then shared) holds each code under its display
        form (``E11.65``) and its key (``E1165``): a code written canonically costs one
        dict lookup, any other spelling (``e11.65``) one more after normalising.
        """
        return self._title_table(system, date)[1]

    def describe_many(self, codes: Iterable[str], system: str = "icd10cm",
                      date: _dt.date | str | None = None) -> list[str | None]:
        """Titles for many codes at once (None where unknown)."""
        table, describe = self._title_table(system, date)
        codes = codes if isinstance(codes, list) else list(codes)
        out = list(map(table.get, codes))  # canonical spellings, in one C-level pass
        if None in out:                     # then the other spellings, one by one
            out = [t if t is not None else describe(c) for t, c in zip(out, codes)]
        return out

    def _title_table(self, system: str, date: _dt.date | str | None) -> tuple[dict[str, str], Callable[[str], str | None]]:
        info = self.release_for(system, date)
        cache_key = (system, info.release, self.store.generation)
        hit = self._describers.get(cache_key)
        if hit is None:
            conn = self.store.open(system, info.release).conn
            table = dict(conn.execute("SELECT key, title FROM concept"))
            table.update(conn.execute("SELECT code, title FROM concept"))

            def describe(code: str, get: Callable[[str], str | None] = table.get) -> str | None:
                # titles are never empty, so `or` falls through only for an unknown spelling
                return get(code) or get(code.strip().replace(".", "").upper())

            hit = self._describers[cache_key] = (table, describe)
        return hit

    # ---------------------------------------------------------------- the other questions
    def search(self, query: str, systems: Iterable[str] | str | None = None, billable: bool | None = None,
               limit: int = 20, offset: int = 0, date: _dt.date | str | None = None,
               chapter: str | None = None) -> Any:
        """Ranked, typo-tolerant search (see :mod:`medcodes.search`)."""
        from .search import search

        return search(self, query, systems=systems, billable=billable, limit=limit, offset=offset,
                      date=_as_date(date), chapter=chapter)

    def code(self, text: str, setting: str = "outpatient", date: _dt.date | str | None = None,
             systems: Iterable[str] | None = None) -> Any:
        """Suggest codes for a clinical note, with evidence (see :mod:`medcodes.coding`)."""
        from .coding.assistant import code

        return code(self, text, setting=setting, date=date, systems=systems)

    def check(self, claim: Any, edits: Any = None) -> Any:
        """Check one claim (a :class:`medcodes.claims.Claim` or its JSON dict)."""
        from .claims import Claim, check

        if isinstance(claim, dict):
            claim = Claim.from_dict(claim)
        return check(self, claim, edits)

    def group(self, claim: Any, what_if: bool = True) -> dict[str, Any]:
        """MS-DRG grouping of an inpatient claim (a Claim or its JSON dict): see :mod:`medcodes.claims.grouping`."""
        from .claims import Claim
        from .claims.grouping import group

        if isinstance(claim, dict):
            claim = Claim.from_dict(claim)
        return group(self, claim, what_if=what_if)

    def check_lines(self, path_or_frame: Any) -> Any:
        """Batch mode: findings (a Polars DataFrame) for a CSV/Parquet table of claim lines."""
        from .claims.batch import check_lines

        return check_lines(self, path_or_frame)

    def diff(self, system: str, from_release: str | None, to_release: str) -> Any:
        """What changed between two installed releases (see :mod:`medcodes.diff`); for HCPCS, with
        the release before ``to_release`` not installed (or None), what ``to_release``'s action codes say."""
        from .diff import diff

        return diff(self, system, from_release, to_release)

    def history(self, code: str, system: str | None = None) -> tuple[str, list[Any]]:
        """(system, steps): the code in every installed release of its system."""
        from .diff import history

        if system is None:
            idents = self.identify(code)
            known = [i for i in idents if i.exists or i.status == "deleted"] or idents
            if not known:
                raise NotFound(f"{shown(code)}: not a code of any system medcodes knows")
            system, key = known[0].system, known[0].key
        else:
            key = normalize_key(code)
        return system, history(self, system, key)

    def map(self, code: str, to: str | None = None) -> Any:
        """ICD-9-CM <-> ICD-10 through the GEMs (see :mod:`medcodes.mapping`)."""
        from .mapping import map_code

        return map_code(self, code, to)

    def codes(self, system: str, date: _dt.date | str | None = None,
              billable: bool | None = None) -> Iterable[str]:
        """Every code of the release in effect (no chapters, blocks or sections), in the release's order."""
        conn = self.db(system, date).conn
        kinds = ",".join(f"'{k}'" for k in sorted(CODE_KINDS))
        sql = f"SELECT code FROM concept WHERE kind IN ({kinds})"
        if billable is not None:
            sql += f" AND billable = {int(billable)}"
        for (c,) in conn.execute(sql + " ORDER BY seq"):
            yield c
