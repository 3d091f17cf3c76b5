"""Mapping codes between ICD-9-CM and ICD-10 (the GEMs) and following ICD-10-CM codes through time.

``map_code(cb, code, to=None)`` backs ``medcodes map CODE [--to ...]``: it
works out which system ``code`` belongs to (ICD-9-CM diagnosis or procedure,
ICD-10-CM, ICD-10-PCS), reads the GEM entries whose source is that code and
groups them the way the GEM documentation describes them:

* plain entries (1:1 or 1:many alternatives), each with its flags;
* combination entries, grouped by scenario and then by choice list: one
  valid translation is one target from *each* choice list of a scenario;
* "no map" entries, reported as such.

It also reports the reverse view: the entries of the opposite GEM that have
``code`` as their target (which ICD-10 codes map back to an ICD-9 code, and
vice versa). Every code carries its title from an installed release (ICD-9
from the icd9cm release, ICD-10 from the newest installed icd10cm/icd10pcs
release) and says when it is not in that release.

``successors`` / ``predecessors`` read the CDC ICD-10-CM conversion table.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import MedcodesError, NotFound, NotInstalled
from .model import SYSTEM_NAMES, normalize_key
from .store import ReleaseDB
from .systems import crosswalk as _cw
from .systems import icd9cm as _icd9

TARGET_CHOICES = ("icd10cm", "icd10pcs", "icd9cm")

_ICD10CM_RE = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")
_ICD10PCS_RE = re.compile(r"^[0-9A-HJ-NP-Z]{7}$")


# ====================================================================== results
@dataclass
class Target:
    """One code on either side of a GEM entry, with that entry's flags."""

    code: str
    system: str
    title: str | None = None
    in_release: bool | None = None      # None: no release of that system installed
    release: str | None = None          # the newest installed release of that system
    title_release: str | None = None    # where the title came from (an older one for a deleted code)
    approximate: bool = False
    no_map: bool = False
    combination: bool = False
    scenario: int = 0
    choice_list: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChoiceList:
    choice_list: int
    targets: list[Target]

    def as_dict(self) -> dict[str, Any]:
        return {"choice_list": self.choice_list, "targets": [t.as_dict() for t in self.targets]}


@dataclass
class Scenario:
    """One way to express the source: pick one target from each choice list."""

    scenario: int
    choice_lists: list[ChoiceList]

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "choice_lists": [c.as_dict() for c in self.choice_lists]}


@dataclass
class GemMap:
    """What one GEM says about the source code (``direction`` e.g. ``i9-i10cm``)."""

    direction: str
    gem: str                        # "forward" (ICD-9 -> ICD-10) or "backward" (ICD-10 -> ICD-9)
    source: Target
    target_system: str
    no_map: bool = False
    targets: list[Target] = field(default_factory=list)        # plain entries
    scenarios: list[Scenario] = field(default_factory=list)    # combination entries
    reverse: list[Target] = field(default_factory=list)        # opposite GEM entries targeting the code

    @property
    def approximate(self) -> bool:
        """True when any entry is flagged approximate."""
        entries = self.targets + [t for s in self.scenarios for c in s.choice_lists for t in c.targets]
        return any(t.approximate for t in entries)

    def as_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction, "gem": self.gem, "source": self.source.as_dict(),
            "target_system": self.target_system, "no_map": self.no_map, "approximate": self.approximate,
            "targets": [t.as_dict() for t in self.targets],
            "scenarios": [s.as_dict() for s in self.scenarios],
            "reverse": [t.as_dict() for t in self.reverse],
        }


@dataclass
class MapResult:
    query: str
    release: str                       # the GEM release used
    maps: list[GemMap]
    note: str = ""

    @property
    def found(self) -> bool:
        return bool(self.maps)

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "release": self.release, "found": self.found, "note": self.note,
                "maps": [m.as_dict() for m in self.maps]}


# ====================================================================== releases
def _newest(cb: Any, system: str, prefix: str = "") -> Any:
    infos = [i for i in cb.releases(system) if i.release.startswith(prefix)]
    if not infos:
        return None
    return max(infos, key=lambda i: (i.effective_from, i.release))


def _open(cb: Any, info: Any) -> ReleaseDB:
    store = getattr(cb, "store", None)
    if store is not None:
        return store.open(info.system, info.release)
    return cb.db(info.system, info.effective_from)


def _crosswalk_db(cb: Any, prefix: str, what: str) -> ReleaseDB:
    info = _newest(cb, _cw.SYSTEM, prefix)
    if info is None:
        raise NotInstalled(f"{what}: no release installed (run medcodes pull with the agency files)")
    return _open(cb, info)


class _Titles:
    """Titles of codes from the newest installed release of each system (opened on demand).

    A code missing from the newest release (deleted since) takes its title from
    the newest older release that has it, and is marked ``in_release=False``.
    """

    def __init__(self, cb: Any) -> None:
        self.cb = cb
        self.infos: dict[str, list[Any]] = {}

    def releases(self, system: str) -> list[Any]:
        """Installed releases of ``system``, newest first."""
        if system not in self.infos:
            try:
                infos = list(self.cb.releases(system))
            except MedcodesError:
                infos = []
            self.infos[system] = sorted(infos, key=lambda i: (i.effective_from, i.release), reverse=True)
        return self.infos[system]

    def target(self, system: str, gem_code: str, proc: bool, **flags: Any) -> Target:
        """A Target for a code as the GEM spells it (no dot)."""
        if gem_code.upper() in _cw.NO_MAP_TARGETS:
            return Target(code=gem_code, system=system, **flags)
        key, display = _store_key(system, gem_code, proc)
        infos = self.releases(system)
        if not infos:
            return Target(code=display, system=system, **flags)
        newest = infos[0].release
        for n, info in enumerate(infos):
            row = _open(self.cb, info).get(key)
            if row is not None:
                return Target(code=row["code"], system=system, title=row["title"], in_release=n == 0,
                              release=newest, title_release=info.release, **flags)
        return Target(code=display, system=system, in_release=False, release=newest, **flags)


def _store_key(system: str, gem_code: str, proc: bool) -> tuple[str, str]:
    """(store key, display code) of a code as it appears in a GEM."""
    key = normalize_key(gem_code)
    if system == "icd9cm":
        return (_icd9.proc_key(key), _icd9.display_proc(key)) if proc else (key, _icd9.display_dx(key))
    if system == "icd10cm":
        return key, _cw.icd10cm_display(key)
    return key, key


# ====================================================================== detection
def candidate_directions(code: str, to: str | None = None) -> list[tuple[str, str]]:
    """(direction, GEM source key) pairs ``code`` could be the source of, by its shape."""
    if to is not None and to not in TARGET_CHOICES:
        raise MedcodesError(f"--to {to!r}: one of {', '.join(TARGET_CHOICES)}")
    raw = code.strip().upper().replace(" ", "")
    key = normalize_key(raw.removeprefix(_icd9.PROC_PREFIX))
    out: list[tuple[str, str]] = []
    for r in _icd9.readings(raw):
        out.append(("i9-i10pcs" if r.kind == "procedure" else "i9-i10cm", key))
    if not raw.startswith(_icd9.PROC_PREFIX):
        if _ICD10CM_RE.match(key):
            out.append(("i10cm-i9", key))
        if _ICD10PCS_RE.match(key):
            out.append(("i10pcs-i9", key))
    return [(d, k) for d, k in out if to is None or _cw.DIRECTIONS[d][1] == to]


# ====================================================================== mapping
def map_code(cb: Any, code: str, to: str | None = None) -> MapResult:
    """Every GEM translation of ``code`` (see the module docstring)."""
    gem_db = _crosswalk_db(cb, "gem-", "GEMs")
    titles = _Titles(cb)
    candidates = candidate_directions(code, to)
    if not candidates:
        any_way = candidate_directions(code)
        if to and any_way:
            sources = sorted({SYSTEM_NAMES[_cw.DIRECTIONS[d][0]] for d, _k in any_way})
            raise NotFound(f"{code!r}: read as {' or '.join(sources)}, which the GEMs do not map to "
                           f"{SYSTEM_NAMES.get(to, to)}")
        raise NotFound(f"{code!r}: not an ICD-9-CM or ICD-10 code by its shape (nothing to map)")
    maps = []
    for direction, key in candidates:
        rows = _gem_rows(gem_db, direction, "source", key)
        if rows:
            maps.append(_gem_map(gem_db, titles, direction, key, rows))
    note = ""
    if not maps:
        tried = ", ".join(sorted({d for d, _k in candidates}))
        note = f"{code}: not a source code in the GEMs ({tried}) of release {gem_db.info.release}"
    return MapResult(query=code, release=gem_db.info.release, maps=maps, note=note)


def _gem_rows(db: ReleaseDB, direction: str, side: str, key: str) -> list[Any]:
    col = "source" if side == "source" else "target"
    return db.conn.execute(
        f'SELECT * FROM gem WHERE direction = ? AND "{col}" = ? ORDER BY rowid', (direction, key)
    ).fetchall()


def _flags(row: Any) -> dict[str, Any]:
    return {"approximate": bool(row["approximate"]), "no_map": bool(row["no_map"])
            or row["target"].upper() in _cw.NO_MAP_TARGETS,
            "combination": bool(row["combination"]), "scenario": int(row["scenario"]),
            "choice_list": int(row["choice_list"])}


def _gem_map(db: ReleaseDB, titles: _Titles, direction: str, key: str, rows: list[Any]) -> GemMap:
    src_sys, tgt_sys, _title = _cw.DIRECTIONS[direction]
    proc = direction.endswith("pcs") or direction.startswith("i10pcs")
    gm = GemMap(direction=direction, gem="forward" if direction.startswith("i9") else "backward",
                source=titles.target(src_sys, key, proc), target_system=tgt_sys)
    combos: dict[int, dict[int, list[Target]]] = {}
    for row in rows:
        flags = _flags(row)
        tgt = titles.target(tgt_sys, row["target"], proc, **flags)
        if flags["no_map"]:
            gm.no_map = True
            gm.targets.append(tgt)
        elif flags["combination"]:
            combos.setdefault(flags["scenario"], {}).setdefault(flags["choice_list"], []).append(tgt)
        else:
            gm.targets.append(tgt)
    gm.scenarios = [Scenario(s, [ChoiceList(c, ts) for c, ts in sorted(lists.items())])
                    for s, lists in sorted(combos.items())]
    for row in _gem_rows(db, _cw.REVERSE[direction], "target", key):
        gm.reverse.append(titles.target(tgt_sys, row["source"], proc, **_flags(row)))
    return gm


# ====================================================================== conversion table
def _conversion_db(cb: Any) -> ReleaseDB:
    return _crosswalk_db(cb, "conversion-", "ICD-10-CM conversion table")


def successors(cb: Any, code: str) -> list[tuple[str, _dt.date]]:
    """New ICD-10-CM codes whose 'previous code(s)' in the conversion table name ``code``.

    Code ranges (``H02.101-H02.106``) count when ``code`` falls inside them;
    whole-category ranges (``Codes in Categories T15-T19``) do not.
    """
    key = normalize_key(code)
    rows = _conversion_db(cb).conn.execute(
        "SELECT DISTINCT code, effective FROM conversion_link WHERE previous_key = ? AND previous_hi IS NULL "
        "UNION SELECT DISTINCT code, effective FROM conversion_link WHERE previous_hi IS NOT NULL "
        "AND length(previous_key) > 3 AND previous_key <= ? AND substr(?, 1, length(previous_hi)) <= previous_hi "
        "ORDER BY effective, code", (key, key, key)).fetchall()
    return [(r["code"], _dt.date.fromisoformat(r["effective"])) for r in rows]


def predecessors(cb: Any, code: str) -> list[tuple[str, _dt.date]]:
    """The code(s) (or ranges, ``A-B``) the conversion table says ``code`` replaced, with its effective date."""
    key = normalize_key(code)
    rows = _conversion_db(cb).conn.execute(
        "SELECT previous, effective FROM conversion_link WHERE key = ? ORDER BY rowid", (key,)).fetchall()
    seen: dict[str, _dt.date] = {}
    for r in rows:
        seen.setdefault(r["previous"], _dt.date.fromisoformat(r["effective"]))
    return list(seen.items())


def conversion_entry(cb: Any, code: str) -> dict[str, Any] | None:
    """The conversion-table row of a new code as the agency wrote it (previous text included)."""
    row = _conversion_db(cb).conn.execute(
        "SELECT * FROM conversion WHERE key = ? ORDER BY rowid", (normalize_key(code),)).fetchone()
    return dict(row) if row is not None else None


# ====================================================================== text
def render(result: MapResult) -> list[str]:
    """Plain-text lines for ``medcodes map`` (the CLI may print these as they are)."""
    if not result.maps:
        return [result.note or f"{result.query}: no GEM entry"]
    lines: list[str] = []
    for m in result.maps:
        src = m.source
        lines.append(f"{SYSTEM_NAMES[src.system]} {src.code}  {_title_text(src)}")
        lines.append(f"  {m.gem} GEM {m.direction} ({result.release}) -> {SYSTEM_NAMES[m.target_system]}")
        if m.no_map:
            lines.append("    no map: the GEM has no equivalent for this code")
        for t in m.targets:
            if not t.no_map:
                lines.append("    " + _target_line(t))
        for s in m.scenarios:
            lines.append(f"    combination, scenario {s.scenario}: one code from each choice list")
            for c in s.choice_lists:
                for t in c.targets:
                    lines.append(f"      list {c.choice_list}: " + _target_line(t))
        if m.reverse:
            lines.append(f"  mapped back to {src.code} by the {'backward' if m.gem == 'forward' else 'forward'}"
                         f" GEM from: " + ", ".join(t.code for t in m.reverse[:20])
                         + (f" ... ({len(m.reverse)} codes)" if len(m.reverse) > 20 else ""))
    return lines


def _target_line(t: Target) -> str:
    flag = " ~approximate" if t.approximate else ""
    return f"{t.code:9} {_title_text(t)}{flag}"


def _title_text(t: Target) -> str:
    title = t.title or "(title not installed)"
    if t.in_release is False:
        where = f"; title from release {t.title_release}" if t.title_release else ""
        return f"{title if t.title else ''} (not in {SYSTEM_NAMES[t.system]} release {t.release}{where})".strip()
    return title
