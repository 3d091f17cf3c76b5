"""The claim model: a claim, its diagnoses, ICD-10-PCS procedures and service lines, and check findings.

Every reader (JSON, CSV, FHIR R4 ``Claim``, CMS CCW RIF) produces :class:`Claim`
objects; :func:`medcodes.claims.check` turns one into a :class:`CheckResult`
holding :class:`Finding` rows. ``Claim.from_dict`` / ``as_dict`` are the
documented JSON form (``schemas/claim.schema.json``).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import MedcodesError, shown
from ..model import normalize_key

_KEYS: dict[str, str] = {}


def code_key(code: str) -> str:
    """normalize_key, remembered per raw code string (a stream of claims repeats the same codes)."""
    k = _KEYS.get(code)
    if k is None:
        if len(_KEYS) > 200_000:
            _KEYS.clear()
        k = _KEYS[code] = normalize_key(code)
    return k

CLAIM_TYPES = ("professional", "institutional")
#: where the services were given, for the NCCI tables (default: practitioner for professional claims,
#: outpatient-hospital for institutional ones)
SETTINGS = {"professional": ("practitioner", "dme-supplier"),
            "institutional": ("outpatient-hospital", "inpatient", "other")}
SEXES = ("F", "M", "U")
SEVERITIES = ("error", "warning", "info")


class ClaimFormatError(MedcodesError, ValueError):
    """A claim document that does not follow the claim format (one line, names the field)."""


def parse_date(value: Any, where: str) -> _dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise ClaimFormatError(f"{where}: {shown(value)} is not a date (YYYY-MM-DD)") from exc


@dataclass(slots=True)
class Patient:
    sex: str = "U"
    birth_date: _dt.date | None = None

    def age_on(self, day: _dt.date) -> int | None:
        """Age in completed years on ``day`` (None when the birth date is unknown)."""
        if self.birth_date is None:
            return None
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))

    def age_days_on(self, day: _dt.date) -> int | None:
        return None if self.birth_date is None else (day - self.birth_date).days


@dataclass(slots=True)
class Diagnosis:
    code: str
    poa: str | None = None
    system: str | None = None       # "icd10cm" (default) or "icd9cm" when the claim says so


@dataclass(slots=True)
class Procedure:
    code: str
    date: _dt.date | None = None
    system: str | None = None       # "icd10pcs" (default) or "icd9cm"


@dataclass(slots=True)
class Line:
    code: str
    modifiers: list[str] = field(default_factory=list)
    units: float = 1
    diagnosis_pointers: list[int] = field(default_factory=list)
    date: _dt.date | None = None
    charge: float | None = None
    description: str | None = None  # narrative for the line (NOC codes: what was supplied or done)
    ndc: str | None = None          # National Drug Code of a drug billed on the line
    provider: str | None = None     # rendering provider (NPI) when it differs from the claim's


@dataclass(slots=True)
class Claim:
    id: str
    type: str
    service_date: _dt.date
    patient: Patient = field(default_factory=Patient)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    procedures: list[Procedure] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    source: str = ""                # where it was read from (file name and claim id), never contents
    setting: str | None = None      # practitioner | dme-supplier | outpatient-hospital | inpatient | other
    provider: str | None = None     # billing/rendering provider (NPI): NCCI edits apply per provider

    @property
    def inpatient(self) -> bool:
        """An inpatient hospital claim (the MCE, POA indicators): institutional with setting "inpatient"."""
        return self.type == "institutional" and self.setting == "inpatient"

    @property
    def reports_poa(self) -> bool:
        """POA indicators are required on inpatient claims."""
        return self.inpatient

    # ------------------------------------------------------------------ JSON form
    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "claim") -> "Claim":
        if not isinstance(data, dict):
            raise ClaimFormatError(f"{where}: a claim must be a JSON object")
        cid = str(data.get("id") or "")
        if not cid:
            raise ClaimFormatError(f"{where}: 'id' is required")
        where = f"{where} {cid if cid.isprintable() and len(cid) <= 60 else shown(cid)}"
        ctype = data.get("type", "professional")
        if not isinstance(ctype, str) or ctype not in CLAIM_TYPES:
            raise ClaimFormatError(f"{where}: 'type' must be professional or institutional, not {shown(ctype)}")
        sdate = parse_date(data.get("service_date"), f"{where}: service_date")
        if sdate is None:
            raise ClaimFormatError(f"{where}: 'service_date' is required")
        pat = data.get("patient") or {}
        if not isinstance(pat, dict):
            raise ClaimFormatError(f"{where}: 'patient' must be an object with sex and birth_date")
        sex = str(pat.get("sex") or "U").upper()[:1]
        if sex not in SEXES:
            raise ClaimFormatError(f"{where}: patient.sex must be F, M or U, not {shown(pat.get('sex'))}")
        patient = Patient(sex, parse_date(pat.get("birth_date"), f"{where}: patient.birth_date"))
        dxs = [_dx(d, f"{where}: diagnoses[{i}]") for i, d in enumerate(data.get("diagnoses") or [])]
        procs = [_proc(p, f"{where}: procedures[{i}]") for i, p in enumerate(data.get("procedures") or [])]
        lines = [_line(x, f"{where}: lines[{i}]") for i, x in enumerate(data.get("lines") or [])]
        setting = data.get("setting") or None
        if setting is not None and setting not in SETTINGS[ctype]:
            raise ClaimFormatError(f"{where}: 'setting' of {ctype} claims is one of "
                                   f"{', '.join(SETTINGS[ctype])}, not {setting!r}")
        provider = data.get("provider")
        return cls(cid, ctype, sdate, patient, dxs, procs, lines, source=str(data.get("source") or ""),
                   setting=setting, provider=str(provider) if provider not in (None, "") else None)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "type": self.type,
            "patient": {"sex": self.patient.sex,
                        "birth_date": _iso(self.patient.birth_date)},
            "service_date": self.service_date.isoformat(),
            "diagnoses": [_drop_none({"code": d.code, "poa": d.poa, "system": d.system}) for d in self.diagnoses],
            "procedures": [_drop_none({"code": p.code, "date": _iso(p.date), "system": p.system})
                           for p in self.procedures],
            "lines": [_drop_none({"code": ln.code, "modifiers": list(ln.modifiers), "units": ln.units,
                                  "diagnosis_pointers": list(ln.diagnosis_pointers),
                                  "date": _iso(ln.date), "charge": ln.charge, "description": ln.description,
                                  "ndc": ln.ndc, "provider": ln.provider}) for ln in self.lines],
        }
        if self.setting is not None:
            out["setting"] = self.setting
        if self.provider is not None:
            out["provider"] = self.provider
        if out["patient"]["birth_date"] is None:
            del out["patient"]["birth_date"]
        if self.setting is not None:
            out["setting"] = self.setting
        return out


def _iso(d: _dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _dx(d: Any, where: str) -> Diagnosis:
    if isinstance(d, str):
        return Diagnosis(d)
    if not isinstance(d, dict) or not d.get("code"):
        raise ClaimFormatError(f"{where}: needs a 'code'")
    return Diagnosis(str(d["code"]), d.get("poa"), d.get("system"))


def _proc(p: Any, where: str) -> Procedure:
    if isinstance(p, str):
        return Procedure(p)
    if not isinstance(p, dict) or not p.get("code"):
        raise ClaimFormatError(f"{where}: needs a 'code'")
    return Procedure(str(p["code"]), parse_date(p.get("date"), f"{where}.date"), p.get("system"))


def _number(value: Any) -> float | None:
    """A finite number from a JSON/CSV value, else None (NaN and infinities are not quantities)."""
    if isinstance(value, bool):
        return None
    try:
        got = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return got if math.isfinite(got) else None


def _line(x: Any, where: str) -> Line:
    if not isinstance(x, dict) or not x.get("code"):
        raise ClaimFormatError(f"{where}: needs a 'code'")
    raw_units = x.get("units", 1)
    units = _number(raw_units)
    if units is None:
        raise ClaimFormatError(f"{where}.units: {shown(raw_units)} is not a number")
    ptrs = x.get("diagnosis_pointers") or []
    try:
        if not isinstance(ptrs, list):
            raise TypeError
        ptrs = [int(p) for p in ptrs]
    except (TypeError, ValueError, OverflowError) as exc:
        raise ClaimFormatError(f"{where}.diagnosis_pointers: must be 1-based integers") from exc
    raw_charge = x.get("charge")
    charge = None if raw_charge is None or raw_charge == "" else _number(raw_charge)
    if charge is None and raw_charge not in (None, ""):
        raise ClaimFormatError(f"{where}.charge: {shown(raw_charge)} is not a number")
    mods = [str(m).strip().upper() for m in (x.get("modifiers") or []) if str(m).strip()]
    desc, ndc = (str(x.get(k) or "").strip() or None for k in ("description", "ndc"))
    prov = x.get("provider")
    return Line(str(x["code"]), mods, units, ptrs, parse_date(x.get("date"), f"{where}.date"), charge, desc, ndc,
                str(prov) if prov not in (None, "") else None)


# ---------------------------------------------------------------------- findings
@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: str
    location: str
    codes: tuple[str, ...]
    message: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "location": self.location,
                "codes": list(self.codes), "message": self.message, "source": self.source}


@dataclass(slots=True)
class CheckResult:
    claim_id: str
    findings: list[Finding] = field(default_factory=list)
    releases: dict[str, str] = field(default_factory=dict)   # system -> release used

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def rules(self) -> set[str]:
        return {f.rule for f in self.findings}

    def as_dict(self) -> dict[str, Any]:
        return {"claim": self.claim_id, "ok": self.ok, "releases": dict(self.releases),
                "findings": [f.as_dict() for f in self.findings]}
