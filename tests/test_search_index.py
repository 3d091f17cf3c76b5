"""The ICD-10-CM and ICD-10-PCS index parsers, on the official files (no store needed)."""

from __future__ import annotations

import zipfile

import pytest

from medcodes.errors import DataError
from medcodes.sources import Source, scan
from medcodes.systems import icd10cm_index, icd10pcs_index


@pytest.fixture(scope="module")
def cm_sources(shared_data):
    return scan(shared_data / "icd10cm")


def test_cm_index_releases_planned(cm_sources):
    plans = {p.release: p for p in icd10cm_index.plan(cm_sources)}
    assert set(plans) == {"2017", "2026-04"}
    assert {s.name for s in plans["2017"].sources} == {
        "icd10cm_index_2017.xml", "icd10cm_eindex_2017.xml", "icd10cm_drug_2017.xml", "icd10cm_neoplasm_2017.xml"}
    assert {s.name for s in plans["2026-04"].sources} == {
        "icd10cm-eindex-April-1-2026-XML.xml", "icd10cm-drug-April-1-2026-XML.xml",
        "icd10cm-neoplasm-April-1-2026-XML.xml"}


def test_alphabetic_index_2017_counts_match_the_file(shared_data):
    src = Source(shared_data / "icd10cm/2017/ICD10CM_FY2017_Full_XML.zip", "icd10cm_index_2017.xml")
    raw = src.read_bytes()
    parsed = icd10cm_index.parse_index_xml(src, "index", "ICD10CM.index")
    assert parsed.version == "2017"
    assert parsed.counts["main_terms"] == raw.count(b"<mainTerm>") == 7973
    assert parsed.counts["terms"] == raw.count(b"<term ") == 69226
    assert parsed.counts["see"] == raw.count(b"<see>")
    terms = {t[0]: t for t in parsed.terms}
    codes = {}
    for term, role, _col, _head, code in parsed.codes:
        codes.setdefault(terms[term][6], []).append((role, code))
    assert codes["Diabetes, diabetic > type 2 > with > hyperglycemia"] == [("code", "E11.65")]
    assert codes["Aarskog's syndrome"] == [("code", "Q87.1")]
    hives = next(t for t in parsed.terms if t[6] == "Hives")
    assert hives[5] == "(bold)" and hives[7] == "Urticaria"
    assert ("manif", "I43") in codes["Amyloid heart"]


def test_drug_table_2026_cells(shared_data):
    src = Source(shared_data / "icd10cm/2026-apr/icd10cm-drug-April-1-2026-XML.xml")
    parsed = icd10cm_index.parse_index_xml(src, "drug", "ICD10CM.index")
    assert parsed.version == "2026"
    assert parsed.counts["cells"] == src.read_bytes().count(b"<cell ")
    term = next(t for t in parsed.terms if t[6] == "1-propanol")
    cells = [(c[2], c[3], c[4]) for c in parsed.codes if c[0] == term[0]]
    assert (2, "Poisoning Accidental (unintentional)", "T51.3X1") in cells  # 2026 heading, as printed
    assert all(code != "--" for _c, _h, code in cells)


def test_truncated_index_is_a_data_error(shared_data, tmp_path):
    data = (shared_data / "icd10cm/2026-apr/icd10cm-eindex-April-1-2026-XML.xml").read_bytes()
    bad = tmp_path / "icd10cm-eindex-April-1-2026-XML.xml"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="icd10cm-eindex-April-1-2026-XML.xml"):
        icd10cm_index.parse_index_xml(Source(bad), "eindex", "ICD10CM.index")


def test_pcs_index_2025_counts_and_see_codes(shared_data):
    src = Source(shared_data / "icd10pcs/2025/icd10pcs_index_2025.xml")
    raw = src.read_bytes()
    terms, codes, counts, version = icd10pcs_index.parse(src)
    assert version == "2025"
    assert counts["main_terms"] == raw.count(b"<mainTerm>") == 3215
    assert counts["terms"] == raw.count(b"<term ") == 21269
    assert (counts["code"], counts["codes"], counts["tab"]) == (2794, 12152, 1415)
    appx = {t[0] for t in terms if t[6] == "Appendectomy"}
    assert {(c[1], c[4]) for c in codes if c[0] in appx} == {("see_codes", "0DBJ"), ("see_codes", "0DTJ")}
    plans = icd10pcs_index.plan(scan(shared_data / "icd10pcs"))
    assert [(p.system, p.release) for p in plans] == [("icd10pcs_index", "2025")]


def test_pcs_index_wrong_root_is_a_data_error(tmp_path):
    # synthetic two-line file, not an agency file
    bad = tmp_path / "icd10pcs_index_2030.xml"
    bad.write_text("<?xml version='1.0'?><ICD10CM.index><version>2030</version></ICD10CM.index>")
    with pytest.raises(DataError, match="icd10pcs_index_2030.xml"):
        icd10pcs_index.parse(Source(bad))


def test_zip_member_names_are_recognised(shared_data):
    with zipfile.ZipFile(shared_data / "icd10cm/2017/ICD10CM_FY2017_Full_XML.zip") as zf:
        names = [n for n in zf.namelist() if icd10cm_index._release_of(n)]
    assert sorted(names) == ["icd10cm_drug_2017.xml", "icd10cm_eindex_2017.xml",
                             "icd10cm_index_2017.xml", "icd10cm_neoplasm_2017.xml"]
