"""The claim checker: one test per rule, each with a claim that triggers it and a near-identical clean one.

Codes are real codes of the official files in ../shared/data; what the rules
know about them (notes, headers, 7th characters, dates) comes from those files
through the Codebook. Claims are hand-written and synthetic.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from medcodes.claims import Claim, check, load_ncci
from medcodes.claims.model import Line

FIX = Path(__file__).parent / "fixtures" / "claims"
DOS = "2026-01-15"   # FY2026 ICD-10-CM / ICD-10-PCS are installed for this date


@pytest.fixture(scope="module")
def edits() -> Any:
    # SYNTHETIC PTP edits in the official layout: ../shared/data has no PTP files (too big to keep);
    # MUE and add-on code edits are tested on the real CMS files in tests/test_ncci.py
    return load_ncci([FIX / "ptp_synthetic_ccipra-v000r0-f1.txt"])


def claim(dx: list[Any] | None = None, lines: list[dict[str, Any]] | None = None, **kw: Any) -> Claim:
    data: dict[str, Any] = {
        "id": "SYN", "type": "professional", "service_date": DOS,
        "patient": {"sex": "F", "birth_date": "1960-04-02"},
        "diagnoses": dx if dx is not None else ["I10"],
        "lines": lines if lines is not None else [],
    }
    data.update(kw)
    return Claim.from_dict(copy.deepcopy(data))


def rules(book: Any, c: Claim, edits: Any = None) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in check(book, c, edits).findings:
        out.setdefault(f.rule, []).append(f)
    return out


def line(code: str = "G0444", **kw: Any) -> dict[str, Any]:
    return {"code": code, "units": 1, "diagnosis_pointers": [1], **kw}


# ----------------------------------------------------------------------- validity
def test_dx_invalid(book: Any) -> None:
    bad = rules(book, claim(["E11.99"]))
    assert bad["dx-invalid"][0].severity == "error" and bad["dx-invalid"][0].location == "diagnoses[0]"
    assert "dx-invalid" not in rules(book, claim(["E11.9"]))


def test_dx_not_valid_on_date(book: Any) -> None:
    # S30.1XXA is in the FY2025 order file and not in FY2026's
    bad = rules(book, claim(["S30.1XXA"]))
    assert "2025-09-30" in bad["dx-not-valid-on-date"][0].message
    # valid then: no error or warning (the April 2025 tabular's notes may add info findings)
    assert not {r for r, fs in rules(book, claim(["S30.1XXA"], service_date="2025-06-01")).items()
                if any(f.severity != "info" for f in fs)}


def test_dx_header(book: Any) -> None:
    f = rules(book, claim(["E11.6"]))["dx-header"][0]
    assert f.severity == "error" and "E11.6" in f.codes
    assert "dx-header" not in rules(book, claim(["E11.65"]))


def test_dx_7th_character_and_placeholder(book: Any) -> None:
    assert "dx-7th-character" in rules(book, claim(["S52.501"]))
    assert "dx-7th-character" in rules(book, claim(["S52.501Z"]))
    assert "dx-placeholder" in rules(book, claim(["S01.00A"]))
    clean = rules(book, claim(["S52.501A", "S01.00XA"]))
    assert not {"dx-7th-character", "dx-placeholder", "dx-invalid"} & set(clean)


def test_dx_wrong_code_set(book: Any) -> None:
    f = rules(book, claim(["G0444"]))["dx-wrong-code-set"][0]
    assert "HCPCS" in f.message
    assert "dx-wrong-code-set" not in rules(book, claim(["G47.9"]))


def test_icd9_after_icd10(book: Any) -> None:
    assert "icd9-after-icd10" in rules(book, claim([{"code": "250.00", "system": "icd9cm"}]))
    assert "icd9-after-icd10" in rules(book, claim(["25000"]))
    assert "icd9-after-icd10" not in rules(book, claim([{"code": "250.00", "system": "icd9cm"}],
                                                       service_date="2015-09-30"))


def test_release_gap_is_reported_not_guessed(book: Any) -> None:
    got = rules(book, claim(["E11.99"], service_date="2015-12-01"))   # no FY2016 release installed
    assert got["dx-release-gap"][0].severity == "info"
    assert got["dx-invalid"][0].severity == "warning"


# ----------------------------------------------------------------------- sequencing
def test_external_cause_never_first(book: Any) -> None:
    f = rules(book, claim(["W19.XXXA", "S72.001A"]))["dx-external-cause-first"][0]
    assert "Chapter 20" in f.source
    assert "dx-external-cause-first" not in rules(book, claim(["S72.001A", "W19.XXXA"]))


def test_manifestation_never_principal(book: Any) -> None:
    f = rules(book, claim(["G63", "E11.40"], type="institutional"))["dx-manifestation-first"][0]
    assert "in diseases classified elsewhere" in f.source
    assert "dx-manifestation-first" not in rules(book, claim(["E11.40", "G63"], type="institutional"))


def test_code_first(book: Any) -> None:
    f = rules(book, claim(["N18.1", "E11.22"]))["dx-code-first"][0]
    assert f.codes == ("N18.1", "E11.22") and "N18" in f.source
    assert "dx-code-first" not in rules(book, claim(["E11.22", "N18.1"]))


def test_use_additional_code(book: Any) -> None:
    f = rules(book, claim(["N39.0"]))["dx-use-additional-code"][0]
    assert f.severity == "warning" and "B95-B97" in f.message
    clean = rules(book, claim(["N39.0", "B96.20"])).get("dx-use-additional-code", [])
    assert not [x for x in clean if x.codes == ("N39.0",)]


def test_code_also(book: Any) -> None:
    assert "dx-code-also" in rules(book, claim(["I25.10"]))
    assert "dx-code-also" not in rules(book, claim(["I25.10", "I10"]))


# ----------------------------------------------------------------------- excludes
def test_excludes1(book: Any) -> None:
    f = rules(book, claim(["E11.9", "E10.9"]))["dx-excludes1"][0]
    assert f.severity == "error" and set(f.codes) == {"E11.9", "E10.9"} and "excludes1" in f.source
    assert "dx-excludes1" not in rules(book, claim(["E11.9", "I10"]))


def test_excludes2_is_info(book: Any) -> None:
    f = rules(book, claim(["R51.9", "G43.909"]))["dx-excludes2"][0]
    assert f.severity == "info"
    assert "dx-excludes2" not in rules(book, claim(["R51.9", "I10"]))


def test_duplicate_diagnosis(book: Any) -> None:
    assert "dx-duplicate" in rules(book, claim(["I10", "I10"]))
    assert "dx-duplicate" not in rules(book, claim(["I10", "E11.9"]))


# ----------------------------------------------------------------------- patient
def test_pregnancy_code_on_male_patient(book: Any) -> None:
    f = rules(book, claim(["O03.9"], patient={"sex": "M", "birth_date": "1990-01-01"}))["dx-sex-conflict"][0]
    assert "MATERNAL RECORDS" in f.source
    assert "dx-sex-conflict" not in rules(book, claim(["O03.9"], patient={"sex": "F", "birth_date": "1990-01-01"}))


def test_sex_stated_by_the_classification(book: Any) -> None:
    f = rules(book, claim(["C61"], patient={"sex": "F"}))["dx-sex-conflict"][0]
    assert "male genital organs" in f.source
    assert "dx-sex-conflict" not in rules(book, claim(["C61"], patient={"sex": "M"}))


def test_newborn_and_perinatal_codes_vs_age(book: Any) -> None:
    adult = {"sex": "M", "birth_date": "1980-01-01"}
    newborn = {"sex": "M", "birth_date": "2026-01-14"}
    f = rules(book, claim(["Z38.00"], patient=adult))["dx-age-conflict"][0]
    assert f.severity == "error" and "newborn" in f.message
    assert "dx-age-conflict" not in rules(book, claim(["Z38.00"], patient=newborn))
    assert rules(book, claim(["P29.2"], patient=adult))["dx-age-conflict"][0].severity == "warning"
    assert "dx-age-conflict" not in rules(book, claim(["P29.2"], patient=newborn))
    assert "dx-age-conflict" in rules(book, claim(["O03.9"], patient={"sex": "F", "birth_date": "2026-01-10"}))


def test_age_stated_in_a_note(book: Any) -> None:
    # O09.52- inclusion term: "Pregnancy for a female 35 years and older at expected date of delivery"
    young = rules(book, claim(["O09.521"], patient={"sex": "F", "birth_date": "2004-01-01"}))
    assert "35 years" in young["dx-age-conflict"][0].source
    assert "dx-age-conflict" not in rules(book, claim(["O09.521"], patient={"sex": "F", "birth_date": "1988-01-01"}))


# ----------------------------------------------------------------------- procedures
def test_pcs_on_professional_claim_and_line(book: Any) -> None:
    assert "pcs-on-professional" in rules(book, claim(procedures=["0DTJ4ZZ"]))
    assert "pcs-on-professional" not in rules(book, claim(procedures=["0DTJ4ZZ"], type="institutional"))
    assert "pcs-on-professional" in rules(book, claim(lines=[line("0DTJ4ZZ")]))


def test_pcs_invalid(book: Any) -> None:
    assert "pcs-invalid" in rules(book, claim(procedures=["0DTJ4Z9"], type="institutional"))
    assert "pcs-invalid" in rules(book, claim(procedures=["0DT"], type="institutional"))
    assert "pcs-invalid" not in rules(book, claim(procedures=["0DTJ4ZZ"], type="institutional"))


# ----------------------------------------------------------------------- lines
LINE_DOS = "2020-05-01"   # HCPCS 2020 April release in effect


def test_line_code_missing(book: Any) -> None:
    c = claim(lines=[line()], service_date=LINE_DOS)
    assert "line-code-missing" not in rules(book, c)
    c.lines.append(Line(""))      # as a CCW RIF carrier line without HCPCS_CD
    assert "line-code-missing" in rules(book, c)


def test_line_code_invalid(book: Any) -> None:
    assert "line-code-invalid" in rules(book, claim(lines=[line("G9999")], service_date=LINE_DOS))
    assert "line-code-invalid" in rules(book, claim(lines=[line("ABC")], service_date=LINE_DOS))
    assert "line-code-invalid" not in rules(book, claim(lines=[line("G0444")], service_date=LINE_DOS))


def test_cdt_code_on_medical_claim(book: Any) -> None:
    assert "line-cdt" in rules(book, claim(lines=[line("D0120")], service_date=LINE_DOS))
    assert "line-cdt" not in rules(book, claim(lines=[line("G0444")], service_date=LINE_DOS))


def test_cpt_category_ii_with_charge(book: Any) -> None:
    got = rules(book, claim(lines=[line("3074F", charge=25.0)]))
    assert "line-cpt-category-ii-charge" in got
    assert got["line-cpt-unchecked"][0].severity == "info"
    assert "line-cpt-category-ii-charge" not in rules(book, claim(lines=[line("3074F", charge=0.0)]))


def test_hcpcs_terminated_and_not_yet_effective(book: Any) -> None:
    # G9572: added 2016-01-01, terminated 2016-12-31 (HCPCS 2019 file); G0299 added 2015-11-02
    f = rules(book, claim(lines=[line("G9572")], service_date="2019-06-01"))["hcpcs-terminated"][0]
    assert "2016-12-31" in f.message and "Termination Date" in f.source
    assert "hcpcs-terminated" not in rules(book, claim(lines=[line("G9572")], service_date="2016-06-01"))
    assert "hcpcs-not-yet-effective" in rules(book, claim(lines=[line("G0299")], service_date="2015-01-25"))
    assert "hcpcs-not-yet-effective" not in rules(book, claim(lines=[line("G0299")], service_date="2016-02-01"))


def test_modifiers_exist(book: Any) -> None:
    f = rules(book, claim(lines=[line(modifiers=["Z9"])], service_date=LINE_DOS))["modifier-invalid"][0]
    assert f.location == "lines[0].modifiers[0]"
    assert "modifier-invalid" not in rules(book, claim(lines=[line(modifiers=["LT", "59"])], service_date=LINE_DOS))


def test_bilateral_with_side_modifier(book: Any) -> None:
    f = rules(book, claim(lines=[line(modifiers=["50", "LT"])], service_date=LINE_DOS))["modifier-bilateral-conflict"]
    assert f[0].location == "lines[0].modifiers[1]"
    assert "modifier-bilateral-conflict" not in rules(book, claim(lines=[line(modifiers=["50"])], service_date=LINE_DOS))


def test_units_positive(book: Any) -> None:
    assert "line-units" in rules(book, claim(lines=[line(units=0)], service_date=LINE_DOS))
    assert "line-units" not in rules(book, claim(lines=[line(units=1)], service_date=LINE_DOS))


def test_diagnosis_pointers(book: Any) -> None:
    f = rules(book, claim(lines=[line(diagnosis_pointers=[2])], service_date=LINE_DOS))["line-diagnosis-pointer"][0]
    assert f.severity == "error" and f.location == "lines[0].diagnosis_pointers[0]"
    assert "line-diagnosis-pointer" not in rules(book, claim(lines=[line(diagnosis_pointers=[1])], service_date=LINE_DOS))


# ----------------------------------------------------------------------- NCCI PTP (SYNTHETIC edits, official layout)
def test_ncci_ptp(book: Any, edits: Any) -> None:
    two = [line("G0402"), line("G0444")]
    f = rules(book, claim(lines=two, service_date=LINE_DOS), edits)["ncci-ptp"][0]
    assert f.codes == ("G0402", "G0444") and f.location == "lines[1]"
    # modifier indicator 0: a modifier does not help; indicator 1: 59 bypasses
    assert "ncci-ptp" in rules(book, claim(lines=[line("G0402"), line("G0444", modifiers=["59"])],
                                           service_date=LINE_DOS), edits)
    assert "ncci-ptp" in rules(book, claim(lines=[line("G0438"), line("G0444")], service_date=LINE_DOS), edits)
    assert "ncci-ptp" not in rules(book, claim(lines=[line("G0438"), line("G0444", modifiers=["59"])],
                                               service_date=LINE_DOS), edits)
    assert "ncci-ptp" not in rules(book, claim(lines=[line("G0439"), line("G0444")], service_date=LINE_DOS), edits)
    assert "ncci-ptp" not in rules(book, claim(lines=two, service_date=LINE_DOS))   # edits not loaded


# ----------------------------------------------------------------------- whole files
def test_fixture_files(book: Any) -> None:
    from medcodes.claims import read_path

    clean, bad = (check(book, c) for c in read_path(FIX / "claims_synthetic.json"))
    assert clean.ok and not clean.warnings
    assert {"dx-excludes1", "dx-sex-conflict", "modifier-bilateral-conflict", "line-units",
            "line-diagnosis-pointer"} <= bad.rules()
    fhir = check(book, read_path(FIX / "claim_synthetic_fhir.json")[0])
    assert fhir.ok
    csv1, csv2 = (check(book, c) for c in read_path(FIX / "claims_synthetic.csv"))
    assert csv1.ok and csv2.ok
    json.dumps(bad.as_dict())


def test_cli_check_exit_status(book: Any) -> None:
    from click.testing import CliRunner

    from medcodes.claims import check_command

    runner = CliRunner()
    home = str(Path(book.store.home))
    ok = runner.invoke(check_command, [str(FIX / "claim_synthetic_fhir.json"), "--home", home])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(check_command, [str(FIX / "claims_synthetic.json"), "--json", "--home", home])
    assert bad.exit_code == 1
    out = json.loads(bad.output)
    assert [r["claim"] for r in out] == ["SYN-CLEAN-1", "SYN-ERR-1"] and out[0]["ok"] and not out[1]["ok"]
    assert {"rule", "severity", "location", "codes", "message", "source"} == set(out[1]["findings"][0])


def test_demo_rif_summary_counts(book: Any, shared_data: Path) -> None:
    from medcodes.claims.cli import rif_summary

    s = rif_summary(book, shared_data / "claims" / "cms-bfd-rif-synthea")
    assert s["claims"] == 89
    assert sum(f["claims"] for f in s["files"].values()) == 89
    r = s["rules"]
    assert r["line-code-missing (error)"] == 209        # carrier lines without HCPCS_CD
    assert r["hcpcs-terminated (error)"] == 5            # G9572 (2x), G0154 ... by the HCPCS termination dates
    assert r["hcpcs-not-yet-effective (error)"] == 4     # G0299 on 2015-01-25, before its add date
    assert r["dx-excludes1 (error)"] == 18
    assert r["dx-header (error)"] == 15
    assert r["dx-placeholder (error)"] == 7              # e.g. X58 in FY2017: needs X58.XXX + 7th character
    # Synthea codes its 2015 claims in ICD-10-CM: before 2015-10-01 that is an error (ICD-9-CM then)
    assert r["icd10-before-icd10 (error)"] == 115
    # every diagnosis / HCPCS code on a date no installed release covers says so (never a silent "ok");
    # 8 of the 89 claims fall in FY2021 (its tabular XML is installed)
    assert r["dx-release-gap (info)"] == 634
    # (HCPCS: lines dated before 2019 or in 2021-2025, whose code the nearest release has)
    assert r["hcpcs-release-gap (info)"] == 92
    # issue 11: O03.9 on a 73-79 year old (MCE maternity ages 9-64) and B97.89 as the first-listed diagnosis
    # (4 more claims with errors); Z72.0 (POA-exempt) reported with Y on inpatient claims; one code-first
    # finding per instruction
    assert r["dx-age-conflict (error)"] == 9
    assert r["dx-unacceptable-principal (error)"] == 5
    assert r["dx-poa (info)"] == 14
    assert s["claims_with_errors"] == 78
    # the claims with service lines in an NCCI setting (carrier, DME, outpatient; not inpatient), all dated
    # before the one installed NCCI quarter (2026 Q2): said once per claim
    assert r["ncci-unchecked (info)"] == 57
    assert s["findings"] == {"error": 387, "info": 1009 + 57, "warning": 140}
