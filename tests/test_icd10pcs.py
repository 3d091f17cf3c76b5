"""ICD-10-PCS on the real CMS files in shared/data/icd10pcs (FY2026 and FY2025).

Expected values are the agency's own: the counts CMS prints in
order_addenda_YYYY.txt, titles as they appear in icd10pcs_order_YYYY.txt,
labels from icd10pcs_tables_YYYY.xml and definitions from
icd10pcs_definitions_2026.xml. Broken-file tests write damaged copies (or
tiny synthetic files, marked as such) to pytest's tmp_path, never to the repo.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import pytest

from medcodes.errors import DataError
from medcodes.sources import scan
from medcodes.store import Store
from medcodes.systems import icd10pcs as pcs

ORDER_ZIP_2026 = "icd10pcs/2026/2026-icd-10-pcs-order-file-long-and-abbreviated-titles.zip"


@pytest.fixture(scope="module")
def plans(shared_data):
    return {p.release: p for p in pcs.plan(scan(shared_data / "icd10pcs"))}


@pytest.fixture(scope="module")
def builds(plans):
    return {year: plan.build() for year, plan in plans.items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory, builds):
    st = Store(tmp_path_factory.mktemp("pcs-home"))
    with st.transaction() as txn:
        for build in builds.values():
            txn.stage(build)
    yield st
    st.close()


@pytest.fixture(scope="module")
def db26(store):
    return store.open("icd10pcs", "2026")


@pytest.fixture(scope="module")
def db25(store):
    return store.open("icd10pcs", "2025")


def _record(db, key):
    row = db.get(key)
    assert row is not None, key
    record: dict = {}
    pcs.enrich(record, row, db)
    return row, record


# ------------------------------------------------------------------ plans and counts
def test_plan_finds_both_years_and_their_files(plans):
    assert sorted(plans) == ["2025", "2026"]
    names26 = [s.name for s in plans["2026"].sources]
    assert names26 == ["icd10pcs_order_2026.txt", "order_addenda_2026.txt",
                       "icd10pcs_tables_2026.xml", "icd10pcs_definitions_2026.xml"]
    # the FY2025 index XML belongs to the search work, not to this module
    assert "icd10pcs_index_2025.xml" not in [s.name for s in plans["2025"].sources]


def test_fy2026_counts(builds):
    b = builds["2026"]
    assert b.label == "ICD-10-PCS FY2026"
    assert (b.effective_from, b.effective_to) == (dt.date(2025, 10, 1), dt.date(2026, 9, 30))
    assert b.counts["order_rows"] == 80029
    assert b.counts["codes"] == 79115
    assert b.counts["tables"] == 914
    assert b.counts["xml_tables"] == 914          # one pcsTable per order-file header
    assert b.counts["xml_codes"] == 79115         # pcsRow expansion == the valid codes
    assert b.counts["xml_rows"] == 2733
    assert b.counts["sections"] == 17
    # order_addenda_2026.txt: 160 "Add:" lines (156 codes + 4 headers), 27 "Delete:"
    assert (b.counts["addenda_added"], b.counts["addenda_deleted"]) == (160, 27)
    assert b.counts["definition_terms"] == 1090
    assert b.notes == []


def test_fy2025_counts(builds):
    b = builds["2025"]
    assert b.label == "ICD-10-PCS FY2025"
    assert b.counts["order_rows"] == 79856
    assert b.counts["codes"] == 78948   # "78948 codes in icd10pcs_order_2025.txt" (order_addenda_2025.txt)
    assert b.counts["tables"] == 908    # "908 headers in icd10pcs_order_2025.txt"
    assert b.counts["xml_tables"] == 908
    assert b.counts["xml_codes"] == 78948
    assert "definition_terms" not in b.counts  # no definitions XML for FY2025 here


def test_expansion_equals_order_file(shared_data):
    """Recomputed here from the parsers: every pcsRow expanded == the order file's codes."""
    found = {s.name: s for s in scan(shared_data / "icd10pcs" / "2026")}
    rows = pcs.parse_order(found["icd10pcs_order_2026.txt"])
    tables = pcs.parse_tables(found["icd10pcs_tables_2026.xml"], "2026")
    expanded = [c for t in tables for c in t.expand()]
    assert len(expanded) == len(set(expanded)) == 79115
    assert set(expanded) == {r.code for r in rows if r.valid}
    assert {t.key for t in tables} == {r.code for r in rows if not r.valid}


# ------------------------------------------------------------------ concepts
def test_appendix_resection_code(db26):
    row = db26.get("0DTJ4ZZ")
    assert row["kind"] == "code" and row["billable"] == 1
    assert row["title"] == "Resection of Appendix, Percutaneous Endoscopic Approach"
    assert row["short_title"] == "Resection of Appendix, Percutaneous Endoscopic Approach"
    assert [r["key"] for r in db26.ancestors(row)] == ["0", "0D", "0DT"]
    endo = db26.get("0DTJ8ZZ")
    assert endo["short_title"] == "Resection of Appendix, Endo"
    assert endo["title"] == "Resection of Appendix, Via Natural or Artificial Opening Endoscopic"


def test_hierarchy_rows(db26):
    table = db26.get("0DT")
    assert (table["kind"], table["billable"]) == ("table", 0)
    assert table["title"] == "Gastrointestinal System, Resection"
    body = db26.get("0D")
    assert (body["kind"], body["title"], body["parent"]) == ("body_system", "Gastrointestinal System", "0")
    section = db26.get("0")
    assert (section["kind"], section["title"]) == ("section", "Medical and Surgical")
    assert db26.get("X")["title"] == "New Technology"


def test_code_added_in_fy2026(db26, db25):
    # order_addenda_2026.txt: "Add:         00H033J ..."
    assert db26.get("00H033J")["title"] == (
        "Insertion of Infusion Device into Brain, Temporary, Percutaneous Approach")
    assert db25.get("00H033J") is None


# ------------------------------------------------------------------ structure / enrich
def test_structure_axes_of_0DTJ4ZZ(db26):
    info = pcs.structure("0DTJ4ZZ", db26)
    got = [(a["position"], a["name"], a["char"], a["label"]) for a in info["axes"]]
    assert got == [
        (1, "Section", "0", "Medical and Surgical"),
        (2, "Body System", "D", "Gastrointestinal System"),
        (3, "Operation", "T", "Resection"),
        (4, "Body Part", "J", "Appendix"),
        (5, "Approach", "4", "Percutaneous Endoscopic"),
        (6, "Device", "Z", "No Device"),
        (7, "Qualifier", "Z", "No Qualifier"),
    ]
    assert info["valid_combination"] is True


def test_structure_without_db_gives_positions_only():
    info = pcs.structure("0DTJ4ZZ", None)
    assert [(a["position"], a["char"]) for a in info["axes"]] == list(enumerate("0DTJ4ZZ", 1))
    assert all(a["label"] is None for a in info["axes"])


def test_structure_of_invalid_combination(db26):
    info = pcs.structure("0DTJ4ZX", db26)  # X is no qualifier of table 0DT
    assert info["valid_combination"] is False
    assert info["axes"][3]["label"] == "Appendix"
    assert info["axes"][6]["label"] is None


def test_axis_names_outside_medical_surgical(db26):
    info = pcs.structure("B020ZZZ", db26)  # Imaging
    assert [a["name"] for a in info["axes"]][:5] == [
        "Section", "Body System", "Type", "Body Part", "Contrast"]
    assert info["axes"][2]["label"] == "Computerized Tomography (CT Scan)"


def test_structure_of_body_system_rows(db26):
    got = [(a["name"], a["label"]) for a in pcs.structure("0D", db26)["axes"]]
    assert got == [("Section", "Medical and Surgical"), ("Body System", "Gastrointestinal System")]
    # section F calls its second axis "Section Qualifier" in the tables XML
    got = [(a["name"], a["label"]) for a in pcs.structure("F0", db26)["axes"]]
    assert got == [("Section", "Physical Rehabilitation and Diagnostic Audiology"),
                   ("Section Qualifier", "Rehabilitation")]


def test_enrich_code_definitions(db26):
    _row, rec = _record(db26, "0DTJ4ZZ")
    assert rec["axes"][3]["label"] == "Appendix"
    defs = {d["position"]: d for d in rec["definitions"]}
    # icd10pcs_definitions_2026.xml, section 0, axis 3 "Resection"
    assert defs[3]["definition"] == "Cutting out or off, without replacement, all of a body part"
    assert defs[5]["definition"] == (
        "Entry, by puncture or minor incision, of instrumentation through the skin or mucous "
        "membrane and any other body layers necessary to reach and visualize the site of the procedure")
    assert defs[4]["includes"] == ["Appendiceal orifice", "Vermiform appendix"]


def test_enrich_device_key_and_aggregation(db26):
    _row, rec = _record(db26, "04U007Z")  # Supplement Abdominal Aorta with Autologous Tissue Substitute
    device = {d["position"]: d for d in rec["definitions"]}[6]
    assert device["label"] == "Autologous Tissue Substitute"
    # deviceAggregation: Autologous Arterial Tissue -> parent 7 in Lower Arteries (All applicable)
    assert "Autologous Arterial Tissue" in device["aggregates"]


def test_enrich_new_technology_substance_key(db26):
    _row, rec = _record(db26, "XW033A7")
    device = {d["position"]: d for d in rec["definitions"]}[6]
    assert device["name"] == "Device / Substance / Technology"
    assert device["includes"] == ["CARVYKTI(tm)", "cilta-cel"]


def test_enrich_table_rows(db26):
    _row, rec = _record(db26, "0DT")
    assert [a["label"] for a in rec["axes"]] == ["Medical and Surgical", "Gastrointestinal System", "Resection"]
    assert rec["definition"] == "Cutting out or off, without replacement, all of a body part"
    assert sum(r["codes"] for r in rec["rows"]) == len(db26.children("0DT"))
    appendix_rows = [r for r in rec["rows"]
                     if {"char": "J", "label": "Appendix"} in r["axes"][0]["values"]]
    assert appendix_rows
    approaches = {v["label"] for r in appendix_rows for v in r["axes"][1]["values"]}
    assert "Percutaneous Endoscopic" in approaches


def test_fy2025_root_operation_definition_from_tables_xml(db25):
    # no definitions XML for FY2025: the tables XML's own <definition> of axis 3 is used
    _row, rec = _record(db25, "0DTJ4ZZ")
    defs = {d["position"]: d for d in rec["definitions"]}
    assert defs[3]["definition"] == "Cutting out or off, without replacement, all of a body part"


# ------------------------------------------------------------------ readings
def test_readings():
    (r,) = pcs.readings("0DTJ4ZZ")
    assert r.code == "0DTJ4ZZ" and r.score >= 0.8
    assert pcs.readings("BW03ZZZ")[0].score > 0.5        # imaging section letter
    assert pcs.readings("E1165ZZ")[0].score < 0.5        # E is no PCS section
    assert pcs.readings("0DTJ4ZI") == []                 # I is never used
    assert pcs.readings("0DTJ4Z") == []                  # 6 characters
    assert pcs.readings("0DT")[0].kind == "table"


# ------------------------------------------------------------------ broken files
def _order_bytes(shared_data: Path) -> bytes:
    with zipfile.ZipFile(shared_data / ORDER_ZIP_2026) as zf:
        return zf.read("icd10pcs_order_2026.txt")


def _build_all(folder: Path) -> None:
    for plan in pcs.plan(scan(folder)):
        plan.build()


def test_truncated_order_file(tmp_path, shared_data):
    data = _order_bytes(shared_data)
    (tmp_path / "icd10pcs_order_2026.txt").write_bytes(data[: len(data) // 2])  # cut mid-record
    with pytest.raises(DataError, match="icd10pcs_order_2026.txt"):
        _build_all(tmp_path)


def test_order_file_cut_at_a_line_end_misses_the_agency_count(tmp_path, shared_data):
    data = _order_bytes(shared_data)
    cut = data.rfind(b"\n", 0, len(data) - 1) + 1            # drop the last record cleanly
    with zipfile.ZipFile(tmp_path / "order.zip", "w") as zf:
        zf.writestr("icd10pcs_order_2026.txt", data[:cut])
        with zipfile.ZipFile(shared_data / ORDER_ZIP_2026) as src:
            zf.writestr("order_addenda_2026.txt", src.read("order_addenda_2026.txt"))
    with pytest.raises(DataError, match=r"order\.zip!icd10pcs_order_2026\.txt: 79114 codes"):
        _build_all(tmp_path)


def test_truncated_tables_xml(tmp_path, shared_data):
    (tmp_path / "order.zip").symlink_to(shared_data / ORDER_ZIP_2026)
    xml = (shared_data / "icd10pcs/2026/icd10pcs_tables_2026.xml").read_bytes()
    (tmp_path / "icd10pcs_tables_2026.xml").write_bytes(xml[: len(xml) * 2 // 3])
    with pytest.raises(DataError, match="icd10pcs_tables_2026.xml"):
        _build_all(tmp_path)


def test_tables_xml_missing_a_row_fails_the_expansion_check(tmp_path, shared_data):
    (tmp_path / "order.zip").symlink_to(shared_data / ORDER_ZIP_2026)
    xml = (shared_data / "icd10pcs/2026/icd10pcs_tables_2026.xml").read_text(encoding="utf-8")
    damaged = re.sub(r"<pcsRow .*?</pcsRow>", "", xml, count=1, flags=re.S)
    (tmp_path / "icd10pcs_tables_2026.xml").write_text(damaged, encoding="utf-8")
    with pytest.raises(DataError, match=r"icd10pcs_tables_2026\.xml: expands to"):
        _build_all(tmp_path)


def test_corrupt_zip(tmp_path, shared_data):
    data = (shared_data / ORDER_ZIP_2026).read_bytes()
    bad = tmp_path / "2026-icd-10-pcs-order-file-long-and-abbreviated-titles.zip"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="2026-icd-10-pcs-order-file"):
        _build_all(tmp_path)


def _synthetic_line(number: int, code: str, flag: str, title: str) -> str:
    """A SYNTHETIC order-file record in the CMS layout (not agency data)."""
    return f"{number:05d} {code:<7} {flag} {title:<60} {title}\r\n"


def test_synthetic_gap_in_order_numbers(tmp_path):
    lines = [
        _synthetic_line(1, "0DT", "0", "Synthetic header"),
        _synthetic_line(2, "0DTJ4ZZ", "1", "Synthetic code"),
        _synthetic_line(4, "0DTJ0ZZ", "1", "Synthetic code after a gap"),
    ]
    (tmp_path / "icd10pcs_order_2099.txt").write_text("".join(lines), newline="")
    with pytest.raises(DataError, match=r"icd10pcs_order_2099\.txt: line 3: order number 4"):
        _build_all(tmp_path)


def test_synthetic_order_file_alone_makes_a_release_without_axes(tmp_path):
    lines = [
        _synthetic_line(1, "0DT", "0", "Synthetic header"),
        _synthetic_line(2, "0DTJ4ZZ", "1", "Synthetic code"),
    ]
    (tmp_path / "icd10pcs_order_2099.txt").write_text("".join(lines), newline="")
    (plan,) = pcs.plan(scan(tmp_path))
    build = plan.build()
    assert build.counts["codes"] == 1 and build.counts["tables"] == 1
    assert "pcs_axis" not in build.tables
    concepts = {c.key: c for c in build.concepts}
    assert concepts["0DTJ4ZZ"].parent == "0DT" and concepts["0DT"].parent is None
