"""ICD-10-CM system module, on the real NCHS/CMS files in shared/data.

Expected values (counts, titles, flags, notes) are the agencies' own, as they
appear in icd10cm_order_2026.txt / icd10cm_order_2025.txt and the tabular XMLs.
"""

from __future__ import annotations

import datetime as dt
import zipfile

import pytest

from medcodes.errors import DataError
from medcodes.sources import Source, scan
from medcodes.store import Store
from medcodes.systems import icd10cm

ORDER_ZIP_2026 = "icd10cm/2026/2026-code-descriptions-tabular-order.zip"
APRIL_XML = "icd10cm/2026-apr/icd10c-tabular-April-1-2026.xml"


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def plans(shared_data):
    return {p.release: p for p in icd10cm.plan(scan(shared_data / "icd10cm"))}


def _materialize(plan):
    build = plan.build()
    concepts = list(build.concepts)
    build.concepts = concepts
    return build, {c.key: c for c in concepts}


@pytest.fixture(scope="module")
def fy2026(plans):
    return _materialize(plans["2026"])


@pytest.fixture(scope="module")
def apr2026(plans):
    return _materialize(plans["2026-04"])


@pytest.fixture(scope="module")
def order2026(shared_data):
    return icd10cm.parse_order(Source(shared_data / ORDER_ZIP_2026, "icd10cm_order_2026.txt"))


@pytest.fixture(scope="module")
def tab2026(shared_data):
    return icd10cm.parse_tabular(Source(shared_data / APRIL_XML))


@pytest.fixture(scope="module")
def db2026(fy2026, tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("icd10cm-home"))
    store.install(fy2026[0])
    db = store.open("icd10cm", "2026")
    yield db
    store.close()


# ------------------------------------------------------------------ order file
def test_order_file_fy2026_counts(order2026):
    assert len(order2026) == 98_186
    assert sum(r.billable for r in order2026) == 74_719
    assert sum(not r.billable for r in order2026) == 23_467
    assert [r.order for r in order2026[:3]] == [1, 2, 3] and order2026[-1].order == 98_186


def test_release_2026_counts_and_dates(fy2026):
    build, _ = fy2026
    assert (build.counts["xml_codes_not_in_order"], build.counts["order_codes_not_in_xml"]) == (0, 0)
    assert build.label == "ICD-10-CM FY2026 (October 1, 2025)"
    assert build.effective_from == dt.date(2025, 10, 1)
    assert build.effective_to == dt.date(2026, 3, 31)  # the April update follows
    assert build.counts["order_rows"] == 98_186
    assert build.counts["billable"] == 74_719
    assert build.counts["chapter"] == 22
    assert any("April 1, 2026" in n for n in build.notes)


def test_named_codes_fy2026(fy2026):
    _, rows = fy2026
    e1165 = rows["E1165"]
    assert (e1165.code, e1165.kind, e1165.billable, e1165.parent) == ("E11.65", "code", True, "E116")
    assert e1165.title == "Type 2 diabetes mellitus with hyperglycemia"
    assert e1165.short_title == "Type 2 diabetes mellitus with hyperglycemia"
    assert e1165.attrs["order"] == 4413
    e11 = rows["E11"]
    assert (e11.kind, e11.billable, e11.title, e11.parent) == (
        "category", False, "Type 2 diabetes mellitus", "E08-E13")
    assert rows["E08-E13"].kind == "block" and rows["E08-E13"].parent == "CHAPTER4"
    ch4 = rows["CHAPTER4"]
    assert ch4.attrs["number"] == 4 and ch4.attrs["range"] == "E00-E89"
    assert ch4.title == "Endocrine, nutritional and metabolic diseases (E00-E89)"
    s72 = rows["S72001A"]
    assert s72.code == "S72.001A" and s72.billable and s72.parent == "S72001"
    assert s72.title == ("Fracture of unspecified part of neck of right femur, "
                         "initial encounter for closed fracture")
    assert s72.short_title == "Fracture of unsp part of neck of right femur, init"


def test_placeholder_x(fy2026):
    _, rows = fy2026
    assert "T814XXA" not in rows          # T81.4 has 5th-character subdivisions in FY2026
    t = rows["T8140XA"]
    assert t.code == "T81.40XA" and t.billable and t.parent == "T8140"
    assert t.title == "Infection following a procedure, unspecified, initial encounter"
    assert t.attrs["seventh"] == {"char": "A", "meaning": "initial encounter", "defined_at": "T81"}


def test_notes_on_categories(fy2026):
    _, rows = fy2026
    e11 = rows["E11"].attrs["notes"]
    assert "type 1 diabetes mellitus (E10.-)" in e11["excludes1"]
    assert "insulin (Z79.4)" in e11["useAdditionalCode"]
    assert "the underlying condition, such as:" in rows["E08"].attrs["notes"]["codeFirst"]
    assert "Parkinson's disease NOS" in rows["G20A1"].attrs["notes"]["inclusionTerm"]
    assert "E1165" in rows and "notes" not in rows["E1165"].attrs  # nothing stated on E11.65 itself


def test_seven_chr_definitions(fy2026):
    _, rows = fy2026
    s72 = rows["S72"].attrs
    assert s72["seven_chr_def"]["A"] == "initial encounter for closed fracture"
    assert s72["seven_chr_def"]["S"] == "sequela"
    assert s72["seven_chr_note"] == "The appropriate 7th character is to be added to all codes from category S72"
    assert rows["S72001P"].attrs["seventh"] == {
        "char": "P", "meaning": "subsequent encounter for closed fracture with malunion", "defined_at": "S72"}
    # a definition at subcategory level (laterality in E08.32-)
    assert rows["E08321"].kind == "header" and rows["E083211"].attrs["seventh"]["defined_at"] == "E08.32"


# ------------------------------------------------- XML expansion vs order file
def test_expansion_reproduces_order_file(order2026, tab2026):
    xml = icd10cm.expanded_codes(tab2026)
    order = {r.key: r.billable for r in order2026}
    assert set(xml) - set(order) == set()
    assert set(order) - set(xml) == set()
    assert {k for k in order if xml[k] != order[k]} == set()
    assert sum(len(v) for v in tab2026.expansions().values()) == 51_305


def test_prose_seventh_character_exception(tab2026):
    """S06: '7th characters D and S do not apply ... with 6th character 7 ... or 8'."""
    assert ("S06", frozenset("78"), frozenset("DS")) in tab2026.exceptions
    xml = icd10cm.expanded_codes(tab2026)
    assert "S061X7A" in xml and "S061X7D" not in xml and "S061X8S" not in xml
    assert "S061X9D" in xml


def test_april_release(apr2026):
    build, rows = apr2026
    assert build.release == "2026-04"
    assert (build.effective_from, build.effective_to) == (dt.date(2026, 4, 1), dt.date(2026, 9, 30))
    assert build.counts["xml_diags"] == 46_881
    assert build.counts["billable"] == 74_719
    s = rows["S72001A"]
    assert s.billable and s.short_title is None
    assert s.title == ("Fracture of unspecified part of neck of right femur, "
                       "initial encounter for closed fracture")
    assert rows["S72001"].billable is False and rows["E1165"].billable is True


# ------------------------------------------------------- other years / plans
def test_plan_releases(plans):
    assert {"2017", "2025", "2026", "2026-04"} <= set(plans)
    assert [s.name for s in plans["2026-04"].sources] == ["icd10c-tabular-April-1-2026.xml"]
    assert {s.name for s in plans["2026"].sources} == {
        "icd10cm_order_2026.txt", "icd10cm_codes_2026.txt", "icd10cm_order_addenda_2026.txt",
        "icd10c-tabular-April-1-2026.xml"}


def test_fy2025_order_file(plans):
    build, rows = _materialize(plans["2025"])
    assert (build.counts["order_rows"], build.counts["order_billable"]) == (97_584, 74_260)
    # the April 1, 2025 update ends the October release on March 31
    assert build.effective_to == dt.date(2025, 3, 31)
    assert rows["E1165"].title == "Type 2 diabetes mellitus with hyperglycemia"
    assert "QA0" not in rows  # chapter 22 (QA0) arrived in FY2026
    # chapters, blocks and notes come from icd10cm-tabular-April-2025.xml, recognised by content
    assert any("icd10cm-tabular-April-2025.xml" in n for n in build.notes)
    assert build.counts["chapter"] == 22
    assert (build.counts["xml_codes_not_in_order"], build.counts["order_codes_not_in_xml"]) == (0, 0)
    assert rows["CHAPTER4"].title == "Endocrine, nutritional and metabolic diseases (E00-E89)"
    assert "E10-E14" not in rows and rows["E1165"].parent == "E1165"[:4]


def test_april_2025_xml_recognised_by_content(plans, shared_data):
    # the agency named it icd10cm-tabular-April-2025.xml (not "-April-1-"): its root element
    # <ICD10CM.tabular> and <version>2025</version> say what it is
    assert [s.name for s in plans["2025-04"].sources] == ["icd10cm-tabular-April-2025.xml"]
    assert "icd10cm-tabular-April-2025.xml" in {s.name for s in plans["2025"].sources}
    src = Source(shared_data / "icd10cm/2025-apr/icd10cm-tabular-April-2025.xml")
    assert src.xml_root() == ("ICD10CM.tabular", "2025")


def test_files_recognised_whatever_their_names(shared_data, tmp_path):
    # the same official files saved under a browser's names: content says what each is;
    # the fiscal year comes from the XML's <version>, or the folder for an order file
    (tmp_path / "2026").mkdir()
    (tmp_path / "april").mkdir()
    (tmp_path / "2026" / "download.txt").write_bytes(_order_bytes(shared_data))
    (tmp_path / "april" / "tabular (1).xml").symlink_to(shared_data / "icd10cm/2025-apr/icd10cm-tabular-April-2025.xml")
    (tmp_path / "april" / "notes.xml").symlink_to(shared_data / APRIL_XML)
    (tmp_path / "readme.txt").write_text("ICD-10-CM 2026 read me\n")
    got = {p.release: [s.display for s in p.sources] for p in icd10cm.plan(scan(tmp_path))}
    assert got == {"2025-04": ["tabular (1).xml"], "2026-04": ["notes.xml"],
                   "2026": ["download.txt", "notes.xml"]}


def test_fy2017_xml_only(plans):
    build, rows = _materialize(plans["2017"])
    assert build.label == "ICD-10-CM FY2017 (October 1, 2016)"
    assert build.counts["chapter"] == 21
    assert build.counts["xml_diags"] == 43_910
    assert rows["E1165"].billable and rows["E1165"].short_title is None
    assert rows["S72001A"].attrs["seventh"]["defined_at"] == "S72"
    assert "U071" not in rows  # COVID-19 arrived in FY2020


# --------------------------------------------------------- damaged files
def _order_bytes(shared_data) -> bytes:
    with zipfile.ZipFile(shared_data / ORDER_ZIP_2026) as zf:
        return zf.read("icd10cm_order_2026.txt")


def test_truncated_order_file_mid_line(shared_data, tmp_path):
    data = _order_bytes(shared_data)
    (tmp_path / "icd10cm_order_2026.txt").write_bytes(data[: len(data) // 2])
    (plan,) = icd10cm.plan(scan(tmp_path))
    with pytest.raises(DataError, match=r"icd10cm_order_2026\.txt"):
        plan.build()


def test_truncated_order_file_at_line_end(shared_data, tmp_path):
    data = _order_bytes(shared_data)
    cut = data.rindex(b"\r\n", 0, len(data) // 2) + 2
    (tmp_path / "icd10cm_order_2026.txt").write_bytes(data[:cut])
    (plan,) = icd10cm.plan(scan(tmp_path))
    with pytest.raises(DataError, match=r"icd10cm_order_2026\.txt: .*98186"):
        plan.build()


def test_order_file_with_gap(shared_data, tmp_path):
    lines = _order_bytes(shared_data).split(b"\r\n")
    del lines[500]
    (tmp_path / "icd10cm_order_2026.txt").write_bytes(b"\r\n".join(lines))
    with pytest.raises(DataError, match=r"icd10cm_order_2026\.txt: line 501 .*expected 501"):
        icd10cm.parse_order(Source(tmp_path / "icd10cm_order_2026.txt"))


def test_truncated_tabular_xml(shared_data, tmp_path):
    data = (shared_data / APRIL_XML).read_bytes()
    (tmp_path / "icd10c-tabular-April-1-2026.xml").write_bytes(data[:100_000])
    (plan,) = icd10cm.plan(scan(tmp_path))
    with pytest.raises(DataError, match=r"icd10c-tabular-April-1-2026\.xml"):
        plan.build()


# ------------------------------------------------------- grammar / structure
def test_readings():
    (r,) = icd10cm.readings("E1165")
    assert r.code == "E11.65" and r.key == "E1165"
    (r2,) = icd10cm.readings("E119")
    assert r.score < r2.score  # E1165 is also a HCPCS Level II shape
    assert icd10cm.readings("T8140XA")[0].code == "T81.40XA"
    assert icd10cm.readings("E11")[0].kind == "category"
    assert icd10cm.readings("U071")[0].code == "U07.1"
    for bad in ("12345", "E1", "E11-", "E1165000", "99213"):
        assert icd10cm.readings(bad) == []


def test_structure_without_db():
    s = icd10cm.structure("E11.65", None)
    assert s["chapter"]["number"] == 4 and s["chapter"]["range"] == "E00-E89"
    assert icd10cm.structure("D50.0", None)["chapter"]["number"] == 3
    assert icd10cm.structure("H60.0", None)["chapter"]["number"] == 8
    assert icd10cm.structure("U07.1", None)["chapter"]["number"] == 22


def test_structure_with_db(db2026):
    s = icd10cm.structure("E11.65", db2026)
    assert s["chapter"] == {"number": 4, "range": "E00-E89",
                            "title": "Endocrine, nutritional and metabolic diseases (E00-E89)"}
    assert s["block"] == {"range": "E08-E13", "title": "Diabetes mellitus (E08-E13)"}
    # nested sections: T20-T32 (burns) is inside T07-T88; the innermost block is reported
    assert icd10cm.structure("T20.011A", db2026)["block"]["range"] == "T20-T25"


def test_enrich(db2026):
    rec: dict = {}
    icd10cm.enrich(rec, db2026.get("E1165"), db2026)
    e11 = [n for n in rec["notes"] if n["from"] == "E11"]
    assert {"kind": "excludes1", "text": "type 1 diabetes mellitus (E10.-)", "from": "E11",
            "inherited": True} in e11
    assert all(n["inherited"] for n in rec["notes"])
    assert not any(n["kind"] == "inclusionTerm" for n in rec["notes"])  # does not inherit
    assert "chapter" not in rec  # chapter and block are the structure's (codebook Record.structure)

    rec = {}
    icd10cm.enrich(rec, db2026.get("S72001A"), db2026)
    assert rec["seventh_character"]["meaning"] == "initial encounter for closed fracture"
    assert any(n["kind"] == "excludes1" and n["from"] == "S72" for n in rec["notes"])

    rec = {}
    icd10cm.enrich(rec, db2026.get("S720"), db2026)
    assert rec["seven_chr_def"]["defined_at"] == "S72" and rec["seven_chr_def"]["inherited"]
    assert rec["seven_chr_def"]["chars"]["S"] == "sequela"

    rec = {}  # notes of a code-less super-section (T20-T32 Burns and corrosions) reach its codes
    icd10cm.enrich(rec, db2026.get("T20011A"), db2026)
    assert {"kind": "includes", "text": "scalds", "from": "T20-T32", "inherited": True} in rec["notes"]
    assert icd10cm.structure("T20.011A", db2026)["block"]["range"] == "T20-T25"  # the innermost block

    rec = {}
    icd10cm.enrich(rec, db2026.get("G20A1"), db2026)
    own = [n for n in rec["notes"] if not n["inherited"]]
    assert {"kind": "inclusionTerm", "text": "Parkinson's disease NOS", "from": "G20.A1",
            "inherited": False} in own


def test_embedded_source():
    src = icd10cm.embedded_source()
    assert "tabular" in src.name and src.path.is_file()
    assert [p.release for p in icd10cm.plan([src])] == ["2026-04"]


# ----------------------------------------------------------------- FY2021 (an agency quirk)
def test_fy2021_misfiled_code_is_refiled_and_noted(shared_data):
    """The FY2021 tabular XML nests H54.512A under H54.511 (line 52695); H54.512 is not in that
    file, so H54.512A goes under its code-prefix parent H54.51 and the build notes say so."""
    src = Source(shared_data / "icd10cm" / "2021" / "icd10cm_tabular_2021.xml")
    tab = icd10cm.parse_tabular(src)
    assert tab.version == "2021"
    assert tab.diags["H54512A"].parent == "H5451"
    assert tab.diags["H54511"].children == 1          # only H54.511A
    assert tab.quirks == ["icd10cm_tabular_2021.xml: H54.512A is nested under H54.511 in the XML; "
                          "filed under its code-prefix parent H54.51."]
    codes = icd10cm.expanded_codes(tab)
    assert codes["H54512A"] is True and codes["H54511"] is False


def test_one_bad_release_is_skipped_the_others_install(tmp_path, shared_data):
    """A release whose file cannot be read is skipped with its reason; the rest install."""
    import shutil

    from medcodes.releases import pull_from_dir

    d = tmp_path / "files"
    d.mkdir()
    shutil.copy(shared_data / "icd10cm" / "2021" / "icd10cm_tabular_2021.xml", d)
    (d / "icd10cm_tabular_2019.xml").write_text("<ICD10CM.tabular><version>2019</version><chapter>")
    store = Store(tmp_path / "home")
    report = pull_from_dir(store, d)
    assert [(s, r) for s, r, _ in report.installed] == [("icd10cm", "2021")]
    assert [(s, r) for s, r, _ in report.skipped] == [("icd10cm", "2019")]
    assert "icd10cm_tabular_2019.xml: not well-formed XML" in report.skipped[0][2]
    assert [i.release for i in store.releases("icd10cm")] == ["2021"]
    assert not list((tmp_path / "home").rglob("*.tmp"))
