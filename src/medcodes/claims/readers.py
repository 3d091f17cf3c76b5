"""Reading claims: the documented JSON form, CSV (one row per service line), FHIR R4 ``Claim``, CMS CCW RIF.

:func:`read_path` picks the reader from the file: ``.json`` holding claims or a
FHIR ``Claim``/``Bundle``, ``.csv`` with the medcodes columns, or a CCW RIF
claim file (pipe-delimited, header with ``CLM_ID``) -- in which case the
``beneficiary_*.csv`` next to it gives each patient's sex and birth date.
A RIF directory is read whole by :func:`read_rif_dir`, which checks the claim
counts against the export's own ``export_summary.csv`` when it is there.
Readers never log claim contents; errors name the file and the field only.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import DataError, MedcodesError, clip, shown
from ..sources import Source
from .model import Claim, ClaimFormatError, Diagnosis, Line, Patient, Procedure

# ---------------------------------------------------------------------- JSON
def read_json(path: str | Path, validate: bool = True) -> list[Claim]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClaimFormatError(f"{p.name}: not readable JSON ({str(exc).splitlines()[0]})") from exc
    except RecursionError:
        raise ClaimFormatError(f"{p.name}: JSON nested too deeply (a claim is at most {MAX_DEPTH} levels)") from None
    return claims_from_json(data, p.name, validate)


#: How deeply a claim document may nest (a FHIR Bundle of Claims needs about 10 levels).
MAX_DEPTH = 64


def check_depth(data: Any, where: str, limit: int = MAX_DEPTH) -> None:
    """ClaimFormatError when ``data`` nests deeper than ``limit`` (checked without recursion)."""
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise ClaimFormatError(f"{where}: JSON nested too deeply (a claim is at most {limit} levels)")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))


def claims_from_json(data: Any, where: str = "claims", validate: bool = True) -> list[Claim]:
    """Claims from parsed JSON: one claim, a list, ``{"claims": [...]}``, or a FHIR Claim/Bundle."""
    check_depth(data, where)
    if isinstance(data, dict) and "resourceType" in data:
        if data["resourceType"] in ("Claim", "Bundle"):
            return claims_from_fhir(data, where)
        raise ClaimFormatError(f"{where}: expected a FHIR Claim or a Bundle of Claims, "
                               f"not a {clip(str(data['resourceType']), 40)} resource")
    items = data.get("claims") if isinstance(data, dict) and "claims" in data else data
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise ClaimFormatError(f"{where}: expected a claim, a list of claims or {{\"claims\": [...]}}")
    if validate:
        _schema_check(items, where)
    return [Claim.from_dict(c, where) for c in items]


def _schema_check(items: list[Any], where: str) -> None:
    try:
        import jsonschema
    except ImportError:  # optional: Claim.from_dict still checks every field it uses
        return
    validator = jsonschema.Draft202012Validator(schema())
    for i, item in enumerate(items):
        err = next(iter(sorted(validator.iter_errors(item), key=lambda e: list(e.path))), None)
        if err is not None:
            loc = "/".join(str(x) for x in err.absolute_path) or "(claim)"
            raise ClaimFormatError(f"{where}: claim {i + 1} at {loc}: {err.message}")


def schema() -> dict[str, Any]:
    """The JSON Schema of the claim format (shipped as medcodes/schemas/claim.schema.json)."""
    path = Path(__file__).resolve().parent.parent / "schemas" / "claim.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------- CSV
CSV_COLUMNS = ("claim_id", "claim_type", "patient_sex", "patient_birth_date", "service_date",
               "diagnoses", "procedures", "line_code", "modifiers", "units",
               "diagnosis_pointers", "line_date", "charge")
#: optional: a line's narrative (what a NOC code stands for) and the NDC of a drug billed on it
CSV_OPTIONAL_COLUMNS = ("line_description", "ndc")
#: optional, for the NCCI edits: the claim's setting and provider (tables and grouping), a line's own provider
CSV_NCCI_COLUMNS = ("setting", "provider", "line_provider")


def read_csv(path: str | Path) -> list[Claim]:
    """One row per service line; the claim columns repeat on every line of the claim.

    ``diagnoses``, ``procedures``, ``modifiers`` and ``diagnosis_pointers`` are
    lists separated by ``;`` (or spaces). A claim without lines is one row with
    an empty ``line_code``.
    """
    p = Path(path)
    with open(p, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"claim_id", "service_date"} - set(reader.fieldnames or ())
        if missing:
            raise ClaimFormatError(f"{p.name}: missing column(s) {', '.join(sorted(missing))}")
        return claims_from_rows(reader, p.name)


def _split(value: str | None) -> list[str]:
    return [x for x in (value or "").replace(",", ";").replace(" ", ";").split(";") if x]


def claims_from_rows(rows: Iterable[dict[str, str]], where: str) -> list[Claim]:
    grouped: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(rows, start=2):
        cid = (row.get("claim_id") or "").strip()
        if not cid:
            raise ClaimFormatError(f"{where}: row {n}: claim_id is empty")
        claim = grouped.get(cid)
        if claim is None:
            claim = grouped[cid] = {
                "id": cid, "type": (row.get("claim_type") or "professional").strip(),
                "patient": {"sex": (row.get("patient_sex") or "U").strip() or "U",
                            "birth_date": (row.get("patient_birth_date") or "").strip() or None},
                "service_date": (row.get("service_date") or "").strip(),
                "diagnoses": _split(row.get("diagnoses")),
                "procedures": _split(row.get("procedures")),
                "lines": [],
                "setting": (row.get("setting") or "").strip() or None,
                "provider": (row.get("provider") or "").strip() or None,
            }
        code = (row.get("line_code") or "").strip()
        if code:
            claim["lines"].append({
                "code": code, "modifiers": _split(row.get("modifiers")),
                "units": (row.get("units") or "1").strip() or "1",
                "diagnosis_pointers": _split(row.get("diagnosis_pointers")),
                "date": (row.get("line_date") or "").strip() or None,
                "charge": (row.get("charge") or "").strip() or None,
                "description": (row.get("line_description") or "").strip() or None,
                "ndc": (row.get("ndc") or "").strip() or None,
                "provider": (row.get("line_provider") or "").strip() or None,
            })
    return [Claim.from_dict(c, where) for c in grouped.values()]


# ---------------------------------------------------------------------- FHIR R4
ICD10CM_URIS = {"http://hl7.org/fhir/sid/icd-10-cm"}
ICD9CM_URIS = {"http://hl7.org/fhir/sid/icd-9-cm"}
PCS_URIS = {"http://www.cms.gov/Medicare/Coding/ICD10", "https://www.cms.gov/Medicare/Coding/ICD10"}
LINE_URIS = {"http://www.ama-assn.org/go/cpt", "https://www.ama-assn.org/go/cpt",
             "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
             "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"}
NDC_URIS = {"http://hl7.org/fhir/sid/ndc"}
_FHIR_SEX = {"female": "F", "male": "M"}


def claims_from_fhir(data: dict[str, Any], where: str = "fhir") -> list[Claim]:
    """FHIR R4 ``Claim`` resources (alone, or in a ``Bundle`` with their ``Patient``)."""
    resources: list[dict[str, Any]]
    contained = [r for r in _as_list(data.get("contained")) if isinstance(r, dict)]
    if data.get("resourceType") == "Bundle":
        resources = [e.get("resource") for e in _as_list(data.get("entry"))
                     if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    else:
        resources = [data] + contained
    patients = {f"Patient/{r.get('id')}": r for r in resources if r.get("resourceType") == "Patient"}
    patients.update({f"#{r.get('id')}": r for r in contained if r.get("resourceType") == "Patient"})
    out = []
    for i, res in enumerate(resources):
        if res.get("resourceType") == "Claim":
            at = f"{where} entry[{i}]" if data.get("resourceType") == "Bundle" else where
            _fhir_validate(res, at)
            try:
                out.append(_fhir_claim(res, patients, at))
            except (AttributeError, TypeError, ValueError, KeyError, OverflowError) as exc:
                if isinstance(exc, MedcodesError):
                    raise
                # a shape the FHIR validation let through but this reader cannot follow
                raise ClaimFormatError(f"{at} Claim/{shown(res.get('id'))}: unexpected structure "
                                       f"({type(exc).__name__})") from None
    if not out:
        found = Counter(str(r.get("resourceType")) for r in resources if isinstance(r, dict))
        have = ", ".join(f"{clip(k, 40)} x{n}" for k, n in found.most_common(5)) or "no entries"
        raise ClaimFormatError(f"{where}: expected FHIR Claim resources in the Bundle, found {have}")
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _fhir_validate(res: dict[str, Any], where: str) -> None:
    try:  # fhir.resources (R4B models; the Claim resource is the same as R4's) validates when installed
        from fhir.resources.R4B.claim import Claim as FhirClaim
    except ImportError:
        return
    try:
        FhirClaim.model_validate({k: v for k, v in res.items() if k != "contained"})
    except Exception as exc:  # pydantic.ValidationError: each error's field and message, on one line
        raise ClaimFormatError(f"{where}: not a valid FHIR Claim ({_validation_errors(exc)})") from exc


def _validation_errors(exc: Exception, limit: int = 8) -> str:
    """'5 validation errors for Claim: created: Field required; ...' from a pydantic error."""
    errors = getattr(exc, "errors", None)
    try:
        items = errors() if callable(errors) else []
    except Exception:  # noqa: BLE001 - any other exception: its first line
        items = []
    if not items:
        return (str(exc).splitlines() or [type(exc).__name__])[0]
    head = (str(exc).splitlines() or [""])[0]
    parts = []
    for e in items[:limit]:
        loc = ".".join(str(x) if str(x).isprintable() else shown(x) for x in e.get("loc", ())) or "(resource)"
        parts.append(f"{loc[:80]}: {e.get('msg', '')}")
    more = f"; ... {len(items) - limit} more" if len(items) > limit else ""
    return clip(f"{head}: {'; '.join(parts)}{more}", 600)


def _coding(cc: dict[str, Any] | None, systems: set[str]) -> dict[str, Any] | None:
    for c in (cc or {}).get("coding") or []:
        if c.get("system") in systems:
            return c
    return None


def _fhir_claim(res: dict[str, Any], patients: dict[str, dict[str, Any]], where: str) -> Claim:
    cid = str(res.get("id") or "")
    loc = f"{where} Claim/{cid}"
    ctype = next((c.get("code") for c in (res.get("type") or {}).get("coding") or []), "professional")
    setting = {"inpatient": "inpatient", "outpatient": "outpatient-hospital"}.get(ctype)
    ctype = "institutional" if ctype in ("institutional", "inpatient", "outpatient") else "professional"
    prov = res.get("provider") if isinstance(res.get("provider"), dict) else {}
    ident = prov.get("identifier") if isinstance(prov.get("identifier"), dict) else {}
    provider = ident.get("value") or prov.get("reference")
    provider = provider if isinstance(provider, str) else None
    pref = (res.get("patient") or {}).get("reference", "")
    pres = patients.get(pref) or {}
    patient = {"sex": _FHIR_SEX.get(pres.get("gender", ""), "U"), "birth_date": pres.get("birthDate")}
    dx_pos: dict[int, int] = {}
    dxs = []
    for d in sorted(res.get("diagnosis") or [], key=lambda d: d.get("sequence", 0)):
        cc = d.get("diagnosisCodeableConcept")
        coding = _coding(cc, ICD10CM_URIS) or _coding(cc, ICD9CM_URIS)
        if coding is None:
            raise ClaimFormatError(f"{loc}: diagnosis {d.get('sequence')} has no ICD-10-CM coding")
        dx_pos[int(d.get("sequence", len(dxs) + 1))] = len(dxs) + 1
        poa = next((c.get("code") for c in (d.get("onAdmission") or {}).get("coding") or []), None)
        system = "icd9cm" if coding.get("system") in ICD9CM_URIS else None
        dxs.append({"code": coding.get("code"), "poa": poa, **({"system": system} if system else {})})
    procs = []
    for pr in res.get("procedure") or []:
        coding = _coding(pr.get("procedureCodeableConcept"), PCS_URIS)
        if coding is None:
            raise ClaimFormatError(f"{loc}: procedure {pr.get('sequence')} has no ICD-10-PCS coding")
        procs.append({"code": coding.get("code"), "date": (pr.get("date") or "")[:10] or None})
    lines = []
    for item in res.get("item") or []:
        coding = _coding(item.get("productOrService"), LINE_URIS)
        if coding is None:
            raise ClaimFormatError(f"{loc}: item {item.get('sequence')} has no CPT or HCPCS coding")
        mods = [c.get("code") for m in item.get("modifier") or [] for c in (m.get("coding") or [])[:1]]
        ptrs = [dx_pos.get(int(s), int(s)) for s in item.get("diagnosisSequence") or []]
        charge = (item.get("net") or item.get("unitPrice") or {}).get("value")
        # a NOC item's narrative: productOrService.text; a drug's NDC: a detail coded in the NDC system
        ndc = next((c.get("code") for d in item.get("detail") or []
                    for c in (d.get("productOrService") or {}).get("coding") or [] if c.get("system") in NDC_URIS), None)
        lines.append({"code": coding.get("code"), "modifiers": mods,
                      "units": (item.get("quantity") or {}).get("value", 1),
                      "diagnosis_pointers": ptrs, "date": item.get("servicedDate"), "charge": charge,
                      "description": (item.get("productOrService") or {}).get("text"), "ndc": ndc})
    period = res.get("billablePeriod") or {}
    sdate = (period.get("start") or "")[:10] or next((x["date"] for x in lines if x.get("date")), None)
    return Claim.from_dict({"id": cid, "type": ctype, "patient": patient, "service_date": sdate,
                            "diagnoses": dxs, "procedures": procs, "lines": lines, "setting": setting,
                            "provider": provider}, where)


# ---------------------------------------------------------------------- CMS CCW RIF
RIF_TYPES = {  # file stem -> claim type
    "carrier": "professional", "dme": "professional",
    "inpatient": "institutional", "outpatient": "institutional", "hha": "institutional",
    "hospice": "institutional", "snf": "institutional",
}
RIF_SETTINGS = {  # file stem -> claim setting (which NCCI tables apply)
    "carrier": "practitioner", "dme": "dme-supplier", "outpatient": "outpatient-hospital",
    "inpatient": "inpatient", "hha": "other", "hospice": "other", "snf": "other",
}
_RIF_SUMMARY_COLUMN = {"carrier": "CARRIER_CLAIMS", "dme": "DME_CLAIMS", "hha": "HHA_CLAIMS",
                       "hospice": "HOSPICE_CLAIMS", "inpatient": "INPATIENT_CLAIMS",
                       "outpatient": "OUTPATIENT_CLAIMS", "snf": "SNF_CLAIMS"}
_RIF_SEX = {"1": "M", "2": "F", "0": "U"}  # CCW BENE_SEX_IDENT_CD


@dataclass
class RifStats:
    """What was read from one RIF claim file (for checking against the export's counts)."""

    file: str
    rows: int = 0
    claims: int = 0
    lines: int = 0
    lines_without_code: int = 0
    per_bene: Counter = field(default_factory=Counter)


def rif_date(value: str, where: str) -> _dt.date | None:
    value = value.strip()
    if not value:
        return None
    for fmt in ("%d-%b-%Y", "%Y-%m-%d", "%Y%m%d"):
        try:
            return _dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise DataError(f"{where}: {value!r} is not a RIF date")


def _rif_rows(src: Source) -> tuple[list[str], Iterator[list[str]]]:
    text = "\n".join(src.text_lines())
    reader = csv.reader(io.StringIO(text), delimiter="|", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if not header or "CLM_ID" not in header:
        raise DataError(f"{src.display}: not a CCW RIF claim file (no CLM_ID header)")
    return header, reader


def read_beneficiaries(path: str | Path) -> dict[str, Patient]:
    src = Source(Path(path))
    text = "\n".join(src.text_lines())
    reader = csv.reader(io.StringIO(text), delimiter="|", quoting=csv.QUOTE_NONE)
    header = next(reader, None) or []
    need = {"BENE_ID", "BENE_BIRTH_DT", "BENE_SEX_IDENT_CD"}
    if not need <= set(header):
        raise DataError(f"{src.display}: not a CCW beneficiary file (needs {', '.join(sorted(need))})")
    ix = {c: header.index(c) for c in need}
    out = {}
    for n, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise DataError(f"{src.display}: row {n} has {len(row)} fields, the header {len(header)} (truncated?)")
        out[row[ix["BENE_ID"]]] = Patient(_RIF_SEX.get(row[ix["BENE_SEX_IDENT_CD"]].strip(), "U"),
                                          rif_date(row[ix["BENE_BIRTH_DT"]], f"{src.display} row {n}"))
    return out


def read_rif(path: str | Path, patients: dict[str, Patient] | None = None,
             stats: RifStats | None = None) -> list[Claim]:
    """Every claim of one RIF claim file: line rows grouped by CLM_ID, in file order."""
    src = Source(Path(path))
    stem = src.path.stem.split("_")[0].lower()
    ctype = RIF_TYPES.get(stem, "institutional" if "REV_CNTR" in src.path.read_text()[:20000] else "professional")
    if patients is None:
        patients = _sibling_beneficiaries(src.path)
    header, rows = _rif_rows(src)
    col = {c: i for i, c in enumerate(header)}
    stats = stats if stats is not None else RifStats(src.display)
    groups: dict[str, list[list[str]]] = {}
    for n, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataError(f"{src.display}: row {n} has {len(row)} fields, the header {len(header)} (truncated?)")
        stats.rows += 1
        groups.setdefault(row[col["CLM_ID"]], []).append(row)
    claims = []
    for cid, crow in groups.items():
        claim = _rif_claim(cid, crow, col, ctype, patients, src.display, stats, RIF_SETTINGS.get(stem))
        stats.claims += 1
        stats.per_bene[crow[0][col["BENE_ID"]]] += 1
        claims.append(claim)
    return claims


def _sibling_beneficiaries(path: Path) -> dict[str, Patient]:
    out: dict[str, Patient] = {}
    for b in sorted(path.parent.glob("beneficiary*.csv")):
        out.update(read_beneficiaries(b))
    return out


def _numbered(col: dict[str, int], stem: str) -> list[int]:
    n, out = 1, []
    while f"{stem}{n}" in col:
        out.append(n)
        n += 1
    return out


def _rif_claim(cid: str, rows: list[list[str]], col: dict[str, int], ctype: str,
               patients: dict[str, Patient], where: str, stats: RifStats, setting: str | None = None) -> Claim:
    first = rows[0]

    def get(name: str, row: list[str] = first) -> str:
        i = col.get(name)
        return row[i].strip() if i is not None else ""

    loc = f"{where} claim {cid}"
    sdate = rif_date(get("CLM_FROM_DT"), loc)
    if sdate is None:
        raise DataError(f"{loc}: CLM_FROM_DT is empty")
    dxs: list[Diagnosis] = []
    seen: set[str] = set()

    def add_dx(code: str, version: str, poa: str | None) -> None:
        if code and code not in seen:  # the RIF repeats the principal among ICD_DGNS_CDn
            seen.add(code)
            dxs.append(Diagnosis(code, poa or None, "icd9cm" if version == "9" else None))
        elif code and poa and dxs and dxs[0].code == code and dxs[0].poa is None:
            dxs[0].poa = poa           # ... with its POA indicator (CLM_POA_IND_SW1)

    add_dx(get("PRNCPAL_DGNS_CD"), get("PRNCPAL_DGNS_VRSN_CD"), None)
    for n in _numbered(col, "ICD_DGNS_CD"):
        add_dx(get(f"ICD_DGNS_CD{n}"), get(f"ICD_DGNS_VRSN_CD{n}"), get(f"CLM_POA_IND_SW{n}"))
    add_dx(get("FST_DGNS_E_CD"), get("FST_DGNS_E_VRSN_CD"), None)
    for n in _numbered(col, "ICD_DGNS_E_CD"):
        add_dx(get(f"ICD_DGNS_E_CD{n}"), get(f"ICD_DGNS_E_VRSN_CD{n}"), get(f"CLM_E_POA_IND_SW{n}"))
    procs = []
    for n in _numbered(col, "ICD_PRCDR_CD"):
        code = get(f"ICD_PRCDR_CD{n}")
        if code:
            procs.append(Procedure(code, rif_date(get(f"PRCDR_DT{n}"), loc),
                                   "icd9cm" if get(f"ICD_PRCDR_VRSN_CD{n}") == "9" else None))
    lines = [ln for row in rows if (ln := _rif_line(row, get, dxs, ctype, loc, stats)) is not None]
    patient = patients.get(get("BENE_ID"), Patient())
    provider = get("CARR_CLM_BLG_NPI_NUM") or get("PRVDR_NUM") or get("ORG_NPI_NUM") or None
    return Claim(cid, ctype, sdate, Patient(patient.sex, patient.birth_date), dxs, procs, lines,
                 source=f"{where} CLM_ID {cid}", setting=setting, provider=provider)


def _num(value: str, default: float | None) -> float | None:
    try:
        return float(value) if value else default
    except ValueError:
        return default


def _rif_line(row: list[str], get: Any, dxs: list[Diagnosis], ctype: str, loc: str,
              stats: RifStats) -> Line | None:
    code = get("HCPCS_CD", row)
    if not code:
        if ctype == "professional":   # a carrier/DME line must carry a HCPCS/CPT code
            stats.lines_without_code += 1
            stats.lines += 1
            return Line("", [], _num(get("LINE_SRVC_CNT", row), 1) or 0, [],
                        rif_date(get("LINE_1ST_EXPNS_DT", row), loc), _num(get("LINE_SBMTD_CHRG_AMT", row), None))
        return None                   # institutional revenue-centre line without HCPCS (room, board...)
    stats.lines += 1
    mods = [m for m in (get(f"HCPCS_{k}_MDFR_CD", row) for k in ("1ST", "2ND", "3RD", "4TH")) if m]
    units = _num(get("LINE_SRVC_CNT", row) or get("REV_CNTR_UNIT_CNT", row), 1)
    date = rif_date(get("LINE_1ST_EXPNS_DT", row) or get("REV_CNTR_DT", row), loc)
    charge = _num(get("LINE_SBMTD_CHRG_AMT", row) or get("REV_CNTR_TOT_CHRG_AMT", row), None)
    ptrs = []
    line_dx = get("LINE_ICD_DGNS_CD", row)
    if line_dx:
        keys = [d.code for d in dxs]
        if line_dx not in keys:
            dxs.append(Diagnosis(line_dx, None, "icd9cm" if get("LINE_ICD_DGNS_VRSN_CD", row) == "9" else None))
            keys.append(line_dx)
        ptrs.append(keys.index(line_dx) + 1)
    return Line(code, mods, units if units is not None else 1, ptrs, date, charge,
                ndc=get("LINE_NDC_CD", row) or get("REV_CNTR_IDE_NDC_UPC_NUM", row) or None,
                provider=get("PRF_PHYSN_NPI", row) or None)


@dataclass
class RifRead:
    claims: list[Claim]
    stats: list[RifStats]


def read_rif_dir(root: str | Path) -> RifRead:
    """Every claim of every RIF claim file in ``root``; counts checked against export_summary.csv."""
    base = Path(root)
    patients = _sibling_beneficiaries(base / "x")
    claims: list[Claim] = []
    all_stats = []
    for stem in RIF_TYPES:
        path = base / f"{stem}.csv"
        if not path.exists():
            continue
        st = RifStats(path.name)
        claims.extend(read_rif(path, patients, st))
        all_stats.append(st)
    if not all_stats:
        raise DataError(f"{base}: no CCW RIF claim files (carrier.csv, inpatient.csv, ...)")
    summary = base / "export_summary.csv"
    if summary.exists():
        _check_summary(Source(summary), all_stats)
    return RifRead(claims, all_stats)


def _check_summary(src: Source, stats: list[RifStats]) -> None:
    reader = csv.DictReader(io.StringIO("\n".join(src.text_lines())))
    by_file = {s.file.split(".")[0]: s for s in stats}
    for row in reader:
        bene = row.get("BENE_ID", "")
        for stem, column in _RIF_SUMMARY_COLUMN.items():
            if stem not in by_file or column not in row:
                continue
            want = int(row[column] or 0)
            got = by_file[stem].per_bene.get(bene, 0)
            if want != got:
                raise DataError(f"{src.display}: {stem}.csv has {got} claims for beneficiary {bene}, "
                                f"the export summary says {want}")


# ---------------------------------------------------------------------- any file
def sniff(path: Path) -> str:
    if path.suffix.lower() == ".json":
        return "json"
    head = path.open("r", encoding="utf-8-sig", errors="replace").readline()
    if "|" in head and "CLM_ID" in head:
        return "rif"
    if "BENE_ID" in head and "|" in head:
        return "beneficiary"
    return "csv"


def read_path(path: str | Path) -> list[Claim]:
    """Claims in one file, whatever its form (JSON, FHIR JSON, CSV, RIF)."""
    p = Path(path)
    try:
        return _read_path(p)
    except UnicodeDecodeError as exc:
        raise ClaimFormatError(f"{shown(p.name)}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise ClaimFormatError(f"{shown(p.name)}: not a readable CSV file ({str(exc).splitlines()[0]})") from None


def _read_path(p: Path) -> list[Claim]:
    if p.is_dir():
        return read_rif_dir(p).claims
    kind = sniff(p)
    if kind == "json":
        return read_json(p)
    if kind == "rif":
        return read_rif(p)
    if kind == "beneficiary":
        return []
    return read_csv(p)
