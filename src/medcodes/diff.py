"""What changed between two installed releases of a system, and a code's history across releases.

:func:`diff` compares the code rows of two releases (read from the store:
``concept`` table) and reports codes added, deleted, long title revised,
short title revised and billable status changed, with counts, as a
JSON-able dict or CSV rows.

Which rows count as codes: everything except structural rows (chapters,
blocks, sections, body systems), so that ICD-10-CM and ICD-10-PCS compare
exactly the rows of the CMS order files (codes *and* headers, which the
order addenda also list). For HCPCS a code discontinued in a file (action
code D or a termination date before the release starts) counts as absent,
as the HCPCS action codes treat it.

The agencies' own change lists are parsed here too, to prove the diff:
:func:`parse_order_addenda` (ICD-10-CM ``icd10cm_order_addenda_YYYY.txt``
and ICD-10-PCS ``order_addenda_YYYY.txt``) and :func:`parse_hcpcs_actions`
(the action code of every record of a HCPCS fixed-width ANWEB file). For a HCPCS
release whose predecessor is not installed, :func:`action_diff` lists the changes
that release's own action codes state (checked at install against CMS's
Transaction Report when the zip has one).
:func:`agency_entries` turns a :class:`Diff` into the order addenda's own
terms (a flag change is a Delete plus an Add there).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple, Protocol

from .errors import DataError, MedcodesError, NotInstalled
from .model import normalize_key
from .sources import Source
from .store import ReleaseDB, Store, StoreError

#: Row kinds that structure a code set but are not codes (never in a diff).
STRUCTURAL_KINDS = frozenset({"chapter", "block", "section", "body_system", "gem", "conversion"})


class DiffError(MedcodesError):
    """A diff or history that cannot be made (release not installed...)."""


class DiffReleaseMissing(DiffError, NotInstalled):
    """A diff naming a release that is not installed (HTTP 404)."""


class _HasStore(Protocol):
    store: Store


# ============================================================================ rows
class Entry(NamedTuple):
    """One code row of a release, as the diff compares it."""

    key: str
    code: str
    kind: str
    title: str
    short_title: str | None
    billable: bool | None
    derived_title: bool = False      # title made up by the parser (not the agency's): not compared

    def as_dict(self) -> dict[str, Any]:
        d = self._asdict()
        del d["derived_title"]
        return d


class Revision(NamedTuple):
    """One field of one code that differs between the two releases."""

    key: str
    code: str
    kind: str
    field: str          # title | short_title | billable
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def _store_of(cb_or_store: Store | _HasStore) -> Store:
    return cb_or_store if isinstance(cb_or_store, Store) else cb_or_store.store


def _open(store: Store, system: str, release: str) -> ReleaseDB:
    try:
        return store.open(system, release)
    except StoreError as exc:
        have = ", ".join(i.release for i in store.releases(system)) or "none"
        raise DiffError(f"{system} {release} is not installed (installed: {have})") from exc


def hcpcs_discontinued(attrs: dict[str, Any], start: _dt.date) -> bool:
    if attrs.get("status") == "discontinued" or attrs.get("action_code") == "D":
        return True
    term = attrs.get("termination_date")
    return bool(term) and str(term) < start.isoformat()


def code_rows(db: ReleaseDB) -> dict[str, Entry]:
    """The rows of a release that the diff compares, by store key."""
    system, start = db.info.system, db.info.effective_from
    out: dict[str, Entry] = {}
    sql = "SELECT key, code, kind, title, short_title, billable, attrs FROM concept ORDER BY seq"
    for key, code, kind, title, short, billable, raw in db.conn.execute(sql):
        if kind in STRUCTURAL_KINDS:
            continue
        attrs = json.loads(raw) if raw and ("derived_title" in raw or system == "hcpcs") else {}
        if system == "hcpcs" and hcpcs_discontinued(attrs, start):
            continue
        out[key] = Entry(key, code, kind, title, short, None if billable is None else bool(billable),
                         bool(attrs.get("derived_title")))
    return out


# ============================================================================ diff
@dataclass
class Diff:
    """Two releases of one system compared."""

    system: str
    from_release: str
    to_release: str
    added: list[Entry] = field(default_factory=list)
    deleted: list[Entry] = field(default_factory=list)
    title_revised: list[Revision] = field(default_factory=list)
    short_title_revised: list[Revision] = field(default_factory=list)
    billable_changed: list[Revision] = field(default_factory=list)
    from_count: int = 0
    to_count: int = 0
    #: billable flag (in the newer release) of every row with a revised title
    revised_billable: dict[str, bool | None] = field(default_factory=dict, repr=False)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "from_codes": self.from_count, "to_codes": self.to_count,
            "added": len(self.added), "deleted": len(self.deleted),
            "title_revised": len(self.title_revised), "short_title_revised": len(self.short_title_revised),
            "billable_changed": len(self.billable_changed),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system, "from": self.from_release, "to": self.to_release,
            "counts": self.counts,
            "added": [e.as_dict() for e in self.added],
            "deleted": [e.as_dict() for e in self.deleted],
            "title_revised": [r.as_dict() for r in self.title_revised],
            "short_title_revised": [r.as_dict() for r in self.short_title_revised],
            "billable_changed": [r.as_dict() for r in self.billable_changed],
        }

    CSV_HEADER = ("change", "code", "kind", "field", "before", "after")

    def csv_rows(self) -> Iterator[tuple[str, ...]]:
        """Header, then one row per change (``csv.writer(...).writerows(d.csv_rows())``)."""
        yield self.CSV_HEADER
        for e in self.added:
            yield ("added", e.code, e.kind, "title", "", e.title)
        for e in self.deleted:
            yield ("deleted", e.code, e.kind, "title", e.title, "")
        for name, revs in (("title_revised", self.title_revised),
                           ("short_title_revised", self.short_title_revised),
                           ("billable_changed", self.billable_changed)):
            for r in revs:
                yield (name, r.code, r.kind, r.field, _cell(r.before), _cell(r.after))


def _billable_word(v: bool | None) -> str:
    """How a code's billable flag reads in a history: 'billable', 'header (not billable)'."""
    return {True: "billable", False: "header (not billable)", None: "billable status unknown"}[v]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def diff(cb_or_store: Store | _HasStore, system: str, from_release: str | None,
         to_release: str) -> "Diff | ActionDiff":
    """Compare two installed releases of ``system`` (a Codebook or a Store).

    HCPCS: when ``from_release`` is not installed (or None) and is the release before
    ``to_release``, the changes are the ones ``to_release`` states itself: the action code of
    every code and modifier (:func:`action_diff`).
    """
    store = _store_of(cb_or_store)
    if system == "hcpcs" and (from_release is None or store.find(system, from_release) is None):
        new_db = _open(store, system, to_release)
        before = previous_hcpcs_release(to_release)
        if from_release is None or from_release == before:
            return action_diff(new_db, before)
        have = ", ".join(i.release for i in store.releases(system)) or "none"
        raise DiffReleaseMissing(f"{system} {from_release} is not installed (installed: {have}); without it, only the "
                        f"changes {to_release} states against {before} can be shown: medcodes diff hcpcs {to_release}")
    if from_release is None:
        raise DiffError(f"{system}: name the release to compare {to_release} with")
    old = code_rows(_open(store, system, from_release))
    new = code_rows(_open(store, system, to_release))
    return compare(system, from_release, to_release, old, new)


# ============================================================================ HCPCS: the release's own action codes
def previous_hcpcs_release(release: str) -> str:
    """The HCPCS quarter before ``release`` ('2026-01' -> '2025-10')."""
    try:
        year, month = (int(x) for x in release.split("-"))
    except ValueError:
        raise DiffError(f"hcpcs {release!r}: not a HCPCS release id (YYYY-MM)") from None
    return f"{year - 1}-10" if month <= 1 else f"{year}-{month - 3:02d}"


@dataclass
class ActionDiff:
    """What one HCPCS release says changed since the quarter before, by its action codes.

    CMS gives every code and modifier an action code (A add, C long description change,
    D discontinued, P payment change ...; the meanings are the release's Transaction Report
    "Action Code Key", else its record layout). No earlier release needs to be installed.
    """

    system: str
    from_release: str
    to_release: str
    key: dict[str, str]
    changes: dict[str, list[Entry]]      # action code -> codes and modifiers with it (N: unchanged)
    source: str

    @property
    def counts(self) -> dict[str, int]:
        return {self.key.get(a, a): len(v) for a, v in sorted(self.changes.items())}

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system, "from": self.from_release, "to": self.to_release, "from_installed": False,
            "source": self.source, "action_codes": dict(sorted(self.key.items())),
            "counts": self.counts,
            "changes": {a: [e.as_dict() for e in v] for a, v in sorted(self.changes.items()) if a != "N"},
        }

    CSV_HEADER = ("action_code", "action", "code", "kind", "title")

    def csv_rows(self) -> Iterator[tuple[str, ...]]:
        yield self.CSV_HEADER
        for a, entries in sorted(self.changes.items()):
            if a == "N":
                continue
            for e in entries:
                yield (a, self.key.get(a, a), e.code, e.kind, e.title)


def action_diff(db: ReleaseDB, before: str) -> ActionDiff:
    """The changes a HCPCS release states against ``before`` (its action codes), from its own rows."""
    key: dict[str, str] = {}
    if db.has_table("hcpcs_action_key"):
        key = dict(db.conn.execute('SELECT code, meaning FROM "hcpcs_action_key"'))
    elif db.has_table("hcpcs_code_meaning"):
        key = dict(db.conn.execute("SELECT code, meaning FROM \"hcpcs_code_meaning\" WHERE field = 'action_code'"))
    changes: dict[str, list[Entry]] = {}
    sql = "SELECT key, code, kind, title, short_title, billable, attrs FROM concept ORDER BY seq"
    for k, code, kind, title, short, billable, raw in db.conn.execute(sql):
        if kind in STRUCTURAL_KINDS:
            continue
        action = (json.loads(raw) if raw else {}).get("action_code")
        if not action:
            continue
        changes.setdefault(action, []).append(
            Entry(k, code, kind, title, short, None if billable is None else bool(billable)))
    if not changes:
        raise DiffError(f"hcpcs {db.info.release}: its records carry no action codes")
    src = next((s["name"] for s in db.info.sources if "Transaction" in s["name"]), None)
    checked = ""
    if src and "report_action_mismatches" in db.info.counts:
        checked = (f" (checked against {src.rsplit('!', 1)[-1]} at install: "
                   f"{db.info.counts['report_action_mismatches']} mismatches)")
    source = f"the action codes of {db.info.sources[0]['name']}{checked}; {before} is not installed"
    return ActionDiff("hcpcs", before, db.info.release, key, changes, source)


def compare(system: str, from_release: str, to_release: str,
            old: dict[str, Entry], new: dict[str, Entry]) -> Diff:
    """The diff of two row sets (both in their release's own order)."""
    d = Diff(system, from_release, to_release, from_count=len(old), to_count=len(new))
    d.added = [e for k, e in new.items() if k not in old]
    d.deleted = [e for k, e in old.items() if k not in new]
    for key, b in new.items():
        a = old.get(key)
        if a is None:
            continue
        if a.title != b.title and not (a.derived_title or b.derived_title):
            d.title_revised.append(Revision(key, b.code, b.kind, "title", a.title, b.title))
        if a.short_title != b.short_title and a.short_title is not None and b.short_title is not None:
            d.short_title_revised.append(Revision(key, b.code, b.kind, "short_title", a.short_title, b.short_title))
        if a.billable != b.billable:
            d.billable_changed.append(Revision(key, b.code, b.kind, "billable", a.billable, b.billable))
    for r in d.title_revised + d.short_title_revised:
        d.revised_billable[r.key] = new[r.key].billable
    return d


# ============================================================================ the agencies' change lists
class AddendaEntry(NamedTuple):
    """One line (or Revise from/to pair) of an order addenda file."""

    action: str            # Add | Delete | Revise
    flag: str              # "1" code / "0" header (PCS: by code length)
    key: str
    short_title: str
    title: str
    revised: str = ""      # Revise only: both | long | short


@dataclass
class Addenda:
    """An order addenda file: its entries and its own summary counts."""

    source: str
    entries: list[AddendaEntry]
    summary: dict[str, dict[str, int]]    # "headers"/"codes" -> additions, deletions, revisions, both, long, short
    totals: dict[str, int] = field(default_factory=dict)   # "icd10cm_order_2025.txt:codes" -> 74260

    def counts(self) -> dict[str, dict[str, int]]:
        """The entries counted the way the summary counts them."""
        out: dict[str, dict[str, int]] = {}
        for group, flag in (("headers", "0"), ("codes", "1")):
            es = [e for e in self.entries if e.flag == flag]
            revs = [e for e in es if e.action == "Revise"]
            out[group] = {
                "additions": sum(e.action == "Add" for e in es),
                "deletions": sum(e.action == "Delete" for e in es),
                "revisions": len(revs),
                "both": sum(e.revised == "both" for e in revs),
                "long": sum(e.revised == "long" for e in revs),
                "short": sum(e.revised == "short" for e in revs),
            }
        return out


_SUMMARY_RE = re.compile(r"^\s*(\d+)\s+(.*?)\s*$")
_SUMMARY_NAMES = {
    "additions": "additions", "deletions": "deletions", "revisions": "revisions",
    "revisions to both long and short titles": "both", "revisions to long title only": "long",
    "revisions to short title only": "short",
}


def parse_order_addenda(src: Source) -> Addenda:
    """ICD-10-CM ``icd10cm_order_addenda_YYYY.txt`` or ICD-10-PCS ``order_addenda_YYYY.txt``.

    Records: the action in columns 1-13 (``Add:``, ``Delete:``, ``Revise from:``,
    ``Revise to:``); ICD-10-CM then has the order file's flag and a space; then
    the code (7), a space, the short title (60), a space, the long title.
    Then a summary per group (Headers, Codes) that must match the records.
    """
    entries: list[AddendaEntry] = []
    summary: dict[str, dict[str, int]] = {}
    files: dict[str, int] = {}
    group: str | None = None
    pending: tuple[int, AddendaEntry] | None = None
    for no, line in enumerate(src.text_lines(encoding="latin-1"), 1):
        if line[:13].strip().endswith(":"):
            entry = _addenda_record(src, no, line)
            if entry.action == "Revise from":
                pending = (no, entry)
                continue
            if entry.action == "Revise to":
                if pending is None or pending[1].key != entry.key:
                    raise DataError(f"{src.display}: line {no}: 'Revise to' without its 'Revise from'")
                entries.append(_revision(pending[1], entry))
                pending = None
                continue
            entries.append(entry)
        elif line.strip() in ("Headers", "Codes"):
            group = line.strip().lower()
            summary[group] = {}
        elif group:
            _summary_line(line, summary[group], files)
    if pending is not None:
        raise DataError(f"{src.display}: line {pending[0]}: 'Revise from' without 'Revise to'")
    addenda = Addenda(src.display, entries, summary, files)
    _check_summary(src, addenda)
    return addenda


def _summary_line(line: str, counts: dict[str, int], files: dict[str, int]) -> None:
    """``  143 additions`` / ``  23324 headers in icd10cm_order_2025.txt`` (the file's own totals)."""
    m = _SUMMARY_RE.match(line)
    if m is None:
        return
    n, text = int(m.group(1)), m.group(2)
    if text in _SUMMARY_NAMES:
        counts[_SUMMARY_NAMES[text]] = n
    elif " in " in text:
        what, _, fname = text.partition(" in ")
        if what in ("headers", "codes"):
            files[f"{fname}:{what}"] = n


def _addenda_record(src: Source, no: int, line: str) -> AddendaEntry:
    action = line[:13].strip().rstrip(":")
    if action not in ("Add", "Delete", "Revise from", "Revise to"):
        raise DataError(f"{src.display}: line {no}: unknown action {action!r}")
    rest = line[13:]
    if rest[:1] in ("0", "1") and rest[1:2] == " ":      # ICD-10-CM: the flag comes first
        flag, rest = rest[0], rest[2:]
        code = rest[:7].strip()
    else:                                                 # ICD-10-PCS: 7-char code, 3-char table header
        code = rest[:7].strip()
        flag = "1" if len(code) == 7 else "0"
    short, title = rest[8:68].rstrip(), rest[69:].strip()
    if not code or not title or (len(rest) > 7 and rest[7] != " "):
        raise DataError(f"{src.display}: line {no}: not an addenda record")
    return AddendaEntry(action, flag, normalize_key(code), short, title)


def _revision(before: AddendaEntry, after: AddendaEntry) -> AddendaEntry:
    long_changed, short_changed = before.title != after.title, before.short_title != after.short_title
    which = "both" if long_changed and short_changed else ("long" if long_changed else "short")
    return AddendaEntry("Revise", after.flag, after.key, after.short_title, after.title, which)


def _check_summary(src: Source, addenda: Addenda) -> None:
    have = addenda.counts()
    for group in ("headers", "codes"):
        said = addenda.summary.get(group, {})
        if not said:
            raise DataError(f"{src.display}: no summary counts for {group}")
        got = {k: have[group][k] for k in said}
        if got != said:
            raise DataError(f"{src.display}: {group} records {got} disagree with the file's summary {said}")


def agency_entries(d: Diff) -> set[tuple[str, str, str, str]]:
    """The diff in the order addenda's terms: (action, flag, key, revised).

    A billable (flag) change is a Delete under the old flag plus an Add under
    the new one; a revision is a title change of a row whose flag did not change.
    """
    out: set[tuple[str, str, str, str]] = set()
    flag = lambda b: "1" if b else "0"  # noqa: E731
    for e in d.added:
        out.add(("Add", flag(e.billable), e.key, ""))
    for e in d.deleted:
        out.add(("Delete", flag(e.billable), e.key, ""))
    changed = {r.key: r for r in d.billable_changed}
    for r in changed.values():
        out.add(("Delete", flag(r.before), r.key, ""))
        out.add(("Add", flag(r.after), r.key, ""))
    longs = {r.key for r in d.title_revised}
    shorts = {r.key: r for r in d.short_title_revised}
    for key in (longs | set(shorts)) - set(changed):
        kind = "both" if key in longs and key in shorts else ("long" if key in longs else "short")
        out.add(("Revise", flag(d.revised_billable[key]), key, kind))
    return out


def addenda_entries(a: Addenda) -> set[tuple[str, str, str, str]]:
    return {(e.action, e.flag, e.key, e.revised) for e in a.entries}


# ----------------------------------------------------------------------------- HCPCS action codes
class HcpcsAction(NamedTuple):
    """The action fields of one HCPCS record (a code, or a modifier)."""

    code: str
    modifier: bool
    action: str              # A add, C long description, D discontinue, N none, P payment, S short ...
    added: str               # code added date YYYYMMDD
    action_effective: str
    terminated: str


def parse_hcpcs_actions(src: Source) -> dict[tuple[str, bool], HcpcsAction]:
    """Action code of every first record (id 3 code, 7 modifier) of a fixed-width ANWEB file."""
    out: dict[tuple[str, bool], HcpcsAction] = {}
    for no, line in enumerate(src.text_lines(encoding="latin-1"), 1):
        if len(line) < 11 or line[10] not in "3478" or not line[5:10].isdigit():
            continue   # disclaimer lines
        if line[10] in "48":
            continue   # continuation of a long description
        if len(line) < 293:
            raise DataError(f"{src.display}: line {no}: record of {len(line)} bytes, expected 320")
        modifier = line[10] == "7"
        code = line[3:5] if modifier else line[0:5].strip()
        out[(code, modifier)] = HcpcsAction(code, modifier, line[292], line[268:276].strip(),
                                            line[276:284].strip(), line[284:292].strip())
    if not out:
        raise DataError(f"{src.display}: no HCPCS records")
    return out


# ============================================================================ history
@dataclass
class HistoryStep:
    """A code in one release, and what changed since the previous installed release."""

    release: str
    effective_from: _dt.date
    effective_to: _dt.date | None
    present: bool
    title: str | None = None
    short_title: str | None = None
    billable: bool | None = None
    kind: str | None = None
    changes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "release": self.release, "effective_from": self.effective_from.isoformat(),
            "effective_to": self.effective_to.isoformat() if self.effective_to else None,
            "present": self.present, "title": self.title, "short_title": self.short_title,
            "billable": self.billable, "kind": self.kind, "changes": list(self.changes),
        }


def history(cb_or_store: Store | _HasStore, system: str, code: str) -> list[HistoryStep]:
    """Every installed release of ``system``, oldest first, with the code's row in each.

    Releases where the code is absent are listed (``present=False``) only between
    or after releases where it appears, so additions and deletions show.
    """
    store = _store_of(cb_or_store)
    key = normalize_key(code)
    steps: list[HistoryStep] = []
    prev: Entry | None = None
    seen = False
    for info in store.releases(system):
        row = _entry(store.open(system, info.release), key)
        if row is None and not seen:
            continue
        seen = True
        step = HistoryStep(info.release, info.effective_from, info.effective_to, row is not None)
        if row is not None:
            step.title, step.short_title, step.billable, step.kind = row.title, row.short_title, row.billable, row.kind
        step.changes = _changes(prev, row, first=len(steps) == 0)
        steps.append(step)
        prev = row
    return steps


def _entry(db: ReleaseDB, key: str) -> Entry | None:
    r = db.get(key)
    if r is None or r["kind"] in STRUCTURAL_KINDS:
        return None
    attrs = json.loads(r["attrs"]) if r["attrs"] else {}
    if db.info.system == "hcpcs" and hcpcs_discontinued(attrs, db.info.effective_from):
        return None
    b = r["billable"]
    return Entry(r["key"], r["code"], r["kind"], r["title"], r["short_title"],
                 None if b is None else bool(b), bool(attrs.get("derived_title")))


def _changes(prev: Entry | None, row: Entry | None, first: bool) -> list[str]:
    if first:
        return ["first installed release with this code"]
    if prev is None and row is None:
        return []
    if prev is None:
        return ["added"]
    if row is None:
        return ["deleted"]
    out = []
    if prev.title != row.title and not (prev.derived_title or row.derived_title):
        out.append(f"title revised (was: {prev.title})")
    if prev.short_title != row.short_title and prev.short_title is not None and row.short_title is not None:
        out.append(f"short title revised (was: {prev.short_title})")
    if prev.billable != row.billable:
        out.append(f"{_billable_word(prev.billable)} -> {_billable_word(row.billable)}")
    return out
