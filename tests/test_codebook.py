"""identify / lookup / validate through the Codebook, on releases pulled from ../shared/data."""

from __future__ import annotations

import pytest

from medcodes import NotFound


def first(cb, raw):
    return cb.identify(raw)[0]


# ---------------------------------------------------------------- identify: the examples
def test_identify_e1130_is_a_hcpcs_wheelchair_not_icd10cm(cb):
    readings = cb.identify("e1130")
    top = readings[0]
    assert (top.system, top.code, top.exists, top.status) == ("hcpcs", "E1130", True, "valid")
    assert "wheelchair" in top.title.lower()
    assert top.maintainer.startswith("CMS")
    assert top.structure["section"]["letter"] == "E"
    icd = [r for r in readings if r.system == "icd10cm"]
    assert icd and icd[0].code == "E11.30" and not icd[0].exists  # E11.30 does not exist


def test_identify_a0021_ambulance(cb):
    top = first(cb, "A0021")
    assert (top.system, top.code, top.exists) == ("hcpcs", "A0021", True)
    assert "ambulance" in top.title.lower()


def test_identify_cpt_category_i_ii_iii_by_structure(cb):
    e_m = first(cb, "99213")
    assert (e_m.system, e_m.code) == ("cpt", "99213")
    assert e_m.maintainer.startswith("AMA")
    assert e_m.structure["category"] == "I"
    assert "Evaluation and Management" in str(e_m.structure["section"])
    cat2 = first(cb, "0001F")
    assert (cat2.system, cat2.structure["category"]) == ("cpt", "II")
    cat3 = first(cb, "0042T")
    assert (cat3.system, cat3.structure["category"]) == ("cpt", "III")


def test_identify_pcs_axes(cb):
    top = first(cb, "0DTJ4ZZ")
    assert (top.system, top.exists, top.billable) == ("icd10pcs", True, True)
    assert top.maintainer.startswith("CMS")


def test_identify_icd10cm_with_7th_character(cb):
    top = first(cb, "s72001a")
    assert (top.system, top.code, top.exists, top.billable) == ("icd10cm", "S72.001A", True, True)
    assert top.maintainer.startswith("NCHS")
    assert top.structure["chapter"]["number"] == 19


def test_identify_modifiers(cb):
    lt = first(cb, "LT")
    assert (lt.system, lt.kind, lt.exists) == ("hcpcs", "modifier", True)
    assert "left side" in lt.title.lower()
    m25 = first(cb, "25")
    assert m25.system == "cpt" and m25.kind == "modifier"


def test_identify_icd9(cb):
    top = first(cb, "250.00")
    assert (top.system, top.code, top.exists) == ("icd9cm", "250.00", True)
    assert "diabetes" in top.title.lower()


def test_identify_dental_d_code_is_cdt(cb):
    top = first(cb, "D0120")
    assert top.system == "cdt"
    assert "ADA" in top.maintainer


def test_identify_t814xxa_deleted_and_split(cb):
    readings = cb.identify("T81.4XXA")
    top = readings[0]
    assert (top.system, top.code, top.exists) == ("icd10cm", "T81.4XXA", False)
    assert "T81.40XA" in top.successors and "T81.49XA" in top.successors


def test_identify_rejects_garbage(cb):
    from medcodes import MedcodesError

    with pytest.raises(MedcodesError):
        cb.identify("!!")


# ---------------------------------------------------------------- lookup
def test_lookup_e1165_whole_record(cb):
    rec = cb.lookup("E11.65")
    assert rec.system == "icd10cm"
    assert rec.title == "Type 2 diabetes mellitus with hyperglycemia"
    assert rec.billable is True
    assert [a["code"] for a in rec.ancestors][-3:] == ["E08-E13", "E11", "E11.6"]
    d = rec.as_dict()
    for key in ("system", "code", "title", "billable", "release"):
        assert key in d


def test_lookup_header_has_children(cb):
    rec = cb.lookup("E11")
    assert rec.billable is False
    assert "E11.65" not in [c["code"] for c in rec.children]  # grandchild, not child
    assert "E11.6" in [c["code"] for c in rec.children]


def test_lookup_unknown_code_suggests_nearest(cb):
    with pytest.raises(NotFound) as err:
        cb.lookup("E11.30")
    assert "E11.30" in str(err.value) and err.value.suggestions


def test_validate_header_is_not_billable(cb):
    v = cb.validate("E11")
    assert v.exists and not v.valid and v.billable is False
    ok = cb.validate("E11.65")
    assert ok.valid and ok.billable


def test_date_of_service_picks_release(cb):
    # B88.0 was a billable code in FY2025 and became a header in FY2026 (icd10cm_order_addenda_2026.txt)
    old = cb.validate("B88.0", system="icd10cm", date="2025-01-15")
    new = cb.validate("B88.0", system="icd10cm", date="2025-10-15")
    assert old.release == "2025" and old.valid
    assert new.release.startswith("2026") and not new.valid
    assert cb.lookup("B88.01", date="2025-10-15").billable is True
    with pytest.raises(NotFound):
        cb.lookup("B88.01", system="icd10cm", date="2025-01-15")


def test_describe_fast_path(cb):
    assert cb.describe("E1165") == "Type 2 diabetes mellitus with hyperglycemia"
    assert cb.describe("e11.65") == cb.describe("E11.65")
    assert cb.describe("ZZZ") is None
    describe = cb.describer("hcpcs")
    assert describe("E1130") == cb.lookup("E1130").title
    assert cb.describe_many(["E11.65", "e1165", "nope"]) == [cb.describe("E11.65")] * 2 + [None]


def test_code_deleted_on_a_date_reports_end_and_successors(cb):
    # S30.1XXA is in the FY2025 order file and deleted in FY2026 (icd10cm_order_addenda_2026.txt);
    # the FY2026 conversion table names S30.11XA-S30.13XA as the codes that replaced it.
    before = cb.validate("S30.1XXA", date="2025-09-30")
    assert before.valid and before.release == "2025-04"  # the April 1, 2025 update, in effect to 2025-09-30
    after = cb.validate("S30.1XXA", date="2025-10-01")
    assert not after.valid and after.system == "icd10cm"
    assert after.ended.isoformat() == "2025-09-30"
    assert after.successors == ["S30.11XA", "S30.12XA", "S30.13XA"]
    ident = cb.identify("S30.1XXA", date="2025-10-01")[0]
    assert (ident.status, ident.ended) == ("deleted", "2025-09-30")
    with pytest.raises(NotFound) as err:
        cb.lookup("S30.1XXA", system="icd10cm", date="2025-10-01")
    assert "last valid 2025-09-30" in str(err.value) and "S30.11XA" in str(err.value)


def test_dot_position_decides_between_icd9_and_icd10(cb):
    assert first(cb, "E880.1").system == "icd9cm"      # ICD-9-CM E code: dot after 4
    assert first(cb, "E88.01").system == "icd10cm"     # ICD-10-CM: dot after 3
    assert first(cb, "81.51").code == "81.51"          # ICD-9-CM procedure: dot after 2
    with pytest.raises(NotFound) as err:
        cb.lookup("E11.30")
    assert "ICD-10-CM" in str(err.value)


def test_release_nearest_in_time_when_none_covers(cb):
    info, covers = cb.release_covering("icd10cm", "2018-05-01")
    assert (info.release, covers) == ("2017", False)
    info, covers = cb.release_covering("hcpcs", "2020-05-01")
    assert (info.release, covers) == ("2020-04", True)


def test_not_installed_system_is_named(cb):
    # 99213 has the shape of CPT Category I; no licensed CPT file is installed in the test store
    v = cb.validate("99213")
    assert (v.system, v.valid) == ("cpt", False) and "pull --cpt" in v.reason
    assert cb.lookup("0DTJ4ZZ", date="1999-01-01").release_covers_date is False


def test_full_records_are_the_same_when_the_release_is_read_whole(home):
    """A release read row by row and one read whole (bulk use) give identical records."""
    from medcodes import Codebook

    codes = ["S72.001A", "E11.6", "E11.65", "O09.A0", "A00", "Z68.41", "T63.441A"]
    with Codebook.open(home) as one, Codebook.open(home) as bulk:
        bulk.db("icd10cm").read_whole()
        for code in codes:
            a, b = one.lookup(code, system="icd10cm").as_dict(), bulk.lookup(code, system="icd10cm").as_dict()
            assert a == b, code
        rec = bulk.lookup("S72.001A", system="icd10cm")
        # the agency's own words: S72's 7th character A, and the notes stated at S72 passed down
        assert rec.details.get("seventh_character", {}).get("meaning") == "initial encounter for closed fracture"
        assert any(n["from"] == "S72" and n["inherited"] for n in rec.notes)
        assert [c["code"] for c in bulk.lookup("E11.6", system="icd10cm").children][:2] == ["E11.61", "E11.62"]
