"""HCPCS Level II January 2026 as users see it: lookup, validate, identify, search, diff, claims, dates.

Over the store pulled from ../shared/data (the `cb` fixture). Values asserted are the agency's own,
read off january-2026-alpha-numeric-hcpcs-file.zip (see tests/test_hcpcs.py for the file-level tests).
Claims here are SYNTHETIC.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner

from medcodes.claims import Claim, check
from medcodes.errors import NotFound
from medcodes.sources import Source

ZIP = "hcpcs/2026-jan/january-2026-alpha-numeric-hcpcs-file.zip"
GAP = "No installed HCPCS Level II release covers"


def _claim(code: str, day: str = "2026-02-02", **line: Any) -> Claim:
    return Claim.from_dict({"id": "SYN-HC26", "type": "professional", "service_date": day,
                            "patient": {"sex": "F", "birth_date": "1960-04-02"}, "diagnoses": ["I10"],
                            "lines": [{"code": code, "units": 1, "diagnosis_pointers": [1], **line}]})


def _rules(cb: Any, c: Claim) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in check(cb, c).findings:
        out.setdefault(f.rule, []).append(f)
    return out


# ------------------------------------------------------------------ the current release
def test_2026_dates_use_the_january_2026_release(cb):
    for day in ("2026-01-01", "2026-06-30", "2026-12-31"):
        info, covers = cb.release_covering("hcpcs", day)
        assert (info.release, covers) == ("2026-01", True)
    assert cb.release_covering("hcpcs", "2020-05-01")[0].release == "2020-04"


def test_new_2026_codes_are_seen(cb):
    for code, title in (("A4295", "Intermittent urinary catheter; straight tip, hydrophilic coating, each"),
                        ("A4296", "Intermittent urinary catheter; coude (curved) tip, hydrophilic coating, each"),
                        ("A4297", "Intermittent urinary catheter; hydrophilic coating, with insertion supplies")):
        top = cb.identify(code, "2026-03-01")[0]
        assert (top.system, top.status, top.release, top.title) == ("hcpcs", "valid", "2026-01", title)
        assert cb.validate(code, date="2026-03-01").valid
        assert cb.lookup(code).release == "2026-01"            # today (2026) uses it too
    hits = [h.code for h in cb.search("hydrophilic catheter", systems=["hcpcs"]).hits]
    assert {"A4295", "A4296", "A4297"} <= set(hits[:5])


def test_lookup_says_s0189_was_corrected_and_terminated(cb):
    rec = cb.lookup("S0189", date="2026-03-01")
    d = rec.as_dict()
    assert rec.release == "2026-01" and rec.billable is False
    assert d["status"]["state"] == "terminated" and d["status"]["termination"] == "2025-12-31"
    assert d["status"]["corrected"] is True
    (corr,) = d["corrections"]
    assert (corr["action"], corr["effective"], corr["source"]) == (
        "Terminate", "2026-01-01", "HCPC2026_JAN_ANWEB_Corrections_01122026.xlsx")
    assert any(n["kind"] == "corrected" and "Terminate effective 2026-01-01" in n["text"] for n in rec.notes)
    v = cb.validate("S0189", date="2026-03-01")
    assert not v.valid and "terminated" in v.reason and v.ended.isoformat() == "2025-12-31"
    out = CliRunner().invoke(_main(), ["--home", str(cb.store.home), "lookup", "S0189"])
    assert "corrected yes" in out.output and "billable no (terminated, last valid 2025-12-31)" in out.output


def test_j1572_is_active_and_j2516_tos_revised(cb):
    j = cb.lookup("J1572", date="2026-03-01").as_dict()
    assert j["billable"] is True and j["status"]["state"] == "active" and "termination" not in j["status"]
    assert j["corrections"][0]["action"] == "Do not terminate"
    assert cb.validate("J1572", date="2026-03-01").valid
    t = cb.lookup("J2516", date="2026-03-01").as_dict()
    assert t["corrections"][0]["values"] == {"TOS": "1,P"}
    assert t["attrs"]["type_of_service"] == ["1", "P"]


def test_lookup_shows_processing_note_text_and_noc(cb):
    s = cb.lookup("S0189", date="2026-03-01").as_dict()
    assert s["processing_notes"] == [{"number": "0088", "text": '"S" CODES ARE UNIQUE TEMPORARY CODES '
                                      'ESTABLISHED BY BCBSA AND HIAA FOR PRIVATE PAYOR USE. THEY ARE NOT VALID '
                                      'NOR PAYABLE BY MEDICARE.'}]
    j = cb.lookup("J3490", date="2026-03-01").as_dict()    # Unclassified drugs: a NOC code
    assert j["noc"]["noc"] is True and j["noc"]["source"] == "NOC codes_JAN2026.xlsx"
    assert any(n["kind"] == "NOC" for n in j["notes"])
    assert "noc" not in cb.lookup("A4295").as_dict()


# ------------------------------------------------------------------ dates with no installed release
def test_2021_to_2025_say_no_release_covers_them(cb):
    for day in ("2021-01-01", "2023-05-01", "2025-12-31"):
        rec = cb.lookup("E1130", system="hcpcs", date=day)
        assert rec.release_covers_date is False and rec.coverage_note.startswith(f"{GAP} {day}")
        assert rec.as_dict()["coverage_note"] == rec.coverage_note and rec.notes[0]["kind"] == "release"
        v = cb.validate("E1130", system="hcpcs", date=day)
        assert v.status == "unknown" and not v.valid
        assert v.reason.startswith(f"no installed HCPCS Level II release covers {day} "
                                   "(installed: 2019-01-01 .. 2020-12-31, 2026-01-01 .. 2026-12-31)")
        ident = next(i for i in cb.identify("E1130", day) if i.system == "hcpcs")
        assert ident.coverage_note.startswith(f"{GAP} {day}")
    # a code the nearest release does not have: the not-found answer says so too
    assert "no installed HCPCS Level II release covers 2023-05-01" in cb.validate("A4295", date="2023-05-01").reason
    assert "no installed HCPCS Level II release covers 2023-05-01" in cb.validate("A4295", "hcpcs", "2023-05-01").reason
    with pytest.raises(NotFound, match="no installed HCPCS Level II release covers 2023-05-01"):
        cb.lookup("A4295", system="hcpcs", date="2023-05-01")
    res = cb.search("wheelchair", systems=["hcpcs"], date="2023-05-01")
    assert res.notes and res.notes[0].startswith(f"{GAP} 2023-05-01")
    assert cb.lookup("E1130", system="hcpcs", date="2026-02-01").coverage_note is None
    assert cb.lookup("E1130", system="hcpcs", date="2020-11-01").coverage_note is None
    assert not cb.search("wheelchair", systems=["hcpcs"], date="2026-06-01").notes   # same releases as today


def test_claim_lines_in_the_gap_say_so(cb):
    gap = _rules(cb, _claim("E1130", "2023-05-01"))["hcpcs-release-gap"]
    assert gap[0].severity == "info" and gap[0].message.startswith(f"{GAP} 2023-05-01")
    assert "hcpcs-release-gap" not in _rules(cb, _claim("E1130", "2026-02-02"))


# ------------------------------------------------------------------ NOC codes on claims
def test_noc_line_without_description_or_ndc_is_warned(cb):
    drug = _rules(cb, _claim("J3490"))["hcpcs-noc-unspecified"][0]
    assert drug.severity == "warning" and drug.location == "lines[0].code"
    assert "NDC" in drug.message and "the payer will ask for" in drug.message
    assert drug.source.startswith("NOC codes_JAN2026.xlsx")
    supply = _rules(cb, _claim("A4335"))["hcpcs-noc-unspecified"][0]   # Incontinence supply; miscellaneous
    assert "description of the item" in supply.message and "NDC" not in supply.message
    # the same lines with what the payer asks for: no warning
    assert "hcpcs-noc-unspecified" not in _rules(cb, _claim("J3490", ndc="00000000000"))
    assert "hcpcs-noc-unspecified" not in _rules(cb, _claim("A4335", description="synthetic supply"))
    assert "hcpcs-noc-unspecified" not in _rules(cb, _claim("A4295"))   # not a NOC code


# ------------------------------------------------------------------ diff without the predecessor
def _main() -> Any:
    from medcodes.cli import main

    return main


def test_diff_shows_the_release_action_codes(cb, shared_data):
    from python_calamine import CalamineWorkbook

    d = cb.diff("hcpcs", None, "2026-01")
    assert (d.from_release, d.to_release) == ("2025-10", "2026-01")
    assert [e.code for e in d.changes["A"]][:3] == ["A4295", "A4296", "A4297"]
    # the counts are the Transaction Report's, less the 6 CDT codes it also lists
    src = Source(shared_data / ZIP, "HCPC2026_JAN_ANWEB_Transaction Report_12292025.xlsx")
    wb = CalamineWorkbook.from_filelike(io.BytesIO(src.read_bytes()))
    rows = wb.get_sheet_by_name("Changes by Action Code").to_python()[1:]
    want = Counter(r[1].lower() for r in rows if not r[0].startswith("D"))
    got = {k.lower(): v for k, v in d.counts.items()}
    assert got == dict(want)
    assert got["add"] == 160 and got["discontinued"] == 95
    out = CliRunner().invoke(_main(), ["--home", str(cb.store.home), "diff", "hcpcs", "2025-10", "2026-01", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["from_installed"] is False and doc["counts"]["Add"] == 160
    bad = CliRunner().invoke(_main(), ["--home", str(cb.store.home), "diff", "hcpcs", "2024-01", "2026-01"])
    assert bad.exit_code == 2 and "2024-01 is not installed" in bad.output


def test_line_description_and_ndc_in_every_claim_reader(cb, tmp_path):
    """JSON (schema-checked), CSV and FHIR R4 carry a line's description and NDC to the NOC rule."""
    from medcodes.claims.readers import claims_from_json, read_csv

    base = {"id": "SYN-R", "type": "professional", "service_date": "2026-02-02", "diagnoses": ["I10"]}
    (j,) = claims_from_json({**base, "lines": [{"code": "J3490", "units": 1, "diagnosis_pointers": [1],
                                                "ndc": "00000000000", "description": "synthetic drug 1 mg"}]})
    assert (j.lines[0].ndc, j.lines[0].description) == ("00000000000", "synthetic drug 1 mg")
    assert "hcpcs-noc-unspecified" not in _rules(cb, j)
    csv_file = tmp_path / "lines_synthetic.csv"
    csv_file.write_text("claim_id,service_date,diagnoses,line_code,units,diagnosis_pointers,line_description,ndc\n"
                        "A,2026-02-02,I10,J3490,1,1,,\nB,2026-02-02,I10,J3490,1,1,synthetic drug 1 mg,\n")
    a, b = read_csv(csv_file)
    assert "hcpcs-noc-unspecified" in _rules(cb, a) and "hcpcs-noc-unspecified" not in _rules(cb, b)
    fhir = {"resourceType": "Claim", "id": "SYN-F", "status": "active", "use": "claim",
            "type": {"coding": [{"code": "professional"}]}, "patient": {"reference": "Patient/p"},
            "created": "2026-02-02", "provider": {"display": "synthetic"}, "priority": {"coding": [{"code": "normal"}]},
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "synthetic"}}],
            "billablePeriod": {"start": "2026-02-02"},
            "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]}}],
            "item": [{"sequence": 1, "diagnosisSequence": [1], "productOrService": {
                "coding": [{"system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": "J3490"}]},
                "detail": [{"sequence": 1, "productOrService": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "00000000000"}]}}]}]}
    (f,) = claims_from_json(fhir)
    assert f.lines[0].ndc == "00000000000" and "hcpcs-noc-unspecified" not in _rules(cb, f)
