"""CPT: grammar and structure only (AMA copyright: no real descriptors anywhere), and the licensee CSV loader.

The only CPT "data" here is tests/fixtures/cpt_synthetic.csv: SYNTHETIC made-up descriptors.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pytest

from medcodes.errors import DataError
from medcodes.sources import scan
from medcodes.store import Store
from medcodes.systems import cpt, hcpcs

FIXTURE = Path(__file__).parent / "fixtures" / "cpt_synthetic.csv"


# ------------------------------------------------------------------ grammar
def test_readings_category_i():
    (r,) = cpt.readings("99213")
    assert r.kind == "code" and r.extra["category"] == "I" and r.score >= 0.9
    assert "Evaluation and Management" in r.note


def test_readings_other_categories_and_modifier():
    assert cpt.readings("0001F")[0].extra["category"] == "II"
    assert cpt.readings("0042T")[0].extra["category"] == "III"
    (m,) = cpt.readings("25")
    assert m.kind == "modifier"
    assert cpt.readings("E1130") == []
    assert cpt.readings("LT") == []
    assert cpt.readings("1234") == []
    assert cpt.readings("0001X") == []


@pytest.mark.parametrize("code, title", [
    ("99213", "Evaluation and Management"),
    ("00100", "Anesthesia"),
    ("01999", "Anesthesia"),
    ("10004", "Surgery"),
    ("69990", "Surgery"),
    ("70010", "Radiology"),
    ("80047", "Pathology and Laboratory"),
    ("89398", "Pathology and Laboratory"),
    ("90281", "Medicine"),
    ("99199", "Medicine"),
    ("99500", "Medicine"),
    ("99607", "Medicine"),
])
def test_category_i_sections(code, title):
    s = cpt.structure(code, None)
    assert s["category"] == "I"
    assert s["section"]["title"] == title


def test_structure_categories():
    s2 = cpt.structure("0001F", None)
    assert s2 == {"category": "II", "category_title": cpt.CATEGORY_TITLES["II"]}
    assert "performance measurement" in s2["category_title"]
    s3 = cpt.structure("0042T", None)
    assert s3["category"] == "III" and "emerging technology" in s3["category_title"]
    assert "section" not in s3
    assert cpt.structure("25", None)["kind"] == "modifier"
    assert cpt.structure("99200", None)["section"]["title"] is None  # between published ranges
    assert cpt.structure("A0021", None) == {}


def test_plan_never_uses_agency_folders(shared_data):
    assert cpt.plan(scan(shared_data / "hcpcs")) == []


def test_two_digit_modifier_belongs_to_cpt_not_hcpcs():
    assert hcpcs.readings("59") == []
    assert cpt.readings("59")[0].kind == "modifier"


# ------------------------------------------------------------------ licensee CSV
def test_fixture_says_synthetic():
    assert "SYNTHETIC" in FIXTURE.read_text().splitlines()[0]


def test_load_synthetic_csv(tmp_path):
    b = cpt.load_csv(FIXTURE)
    assert b.system == "cpt"
    assert b.release == "licensed"
    assert b.label == "CPT (licensee file cpt_synthetic.csv)"
    rows = {c.key: c for c in b.concepts}
    assert rows["99213"].title == "SYNTHETIC TEST DESCRIPTOR 1"
    assert rows["99213"].short_title == "SYNTH 1"
    assert rows["99213"].parent == "EM"
    assert rows["00100"].title == "SYNTHETIC TEST DESCRIPTOR 2, with a quoted comma"
    assert rows["10004"].short_title is None
    assert rows["0001F"].attrs["category"] == "II"
    assert rows["0042T"].parent == "CATEGORY-III"
    assert rows["25"].kind == "modifier"
    assert b.counts == {"category_i": 3, "category_ii": 1, "category_iii": 1, "modifiers": 1, "codes": 5}
    info = Store(tmp_path).install(b)
    assert info.label == "CPT (licensee file cpt_synthetic.csv)"


def test_release_from_year_in_name_bom_crlf(tmp_path):
    f = tmp_path / "cpt_2024_synthetic.csv"
    f.write_bytes("\ufeffcode,descriptor\r\n99213,SYNTHETIC TEST DESCRIPTOR 1\r\n".encode("utf-8"))
    b = cpt.load_csv(f)
    assert b.release == "2024"
    assert b.effective_from == _dt.date(2024, 1, 1)
    assert [c.key for c in b.concepts if c.kind == "code"] == ["99213"]


def test_release_given_by_user_no_header(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("0042T,SYNTHETIC TEST DESCRIPTOR 5\n")
    b = cpt.load_csv(f, release="2023")
    assert b.release == "2023" and b.effective_from == _dt.date(2023, 1, 1)


def test_bad_code_names_file_and_line(tmp_path):
    f = tmp_path / "bad_synthetic.csv"
    f.write_text("code,descriptor\n99213,SYNTHETIC TEST DESCRIPTOR 1\n9921,SYNTHETIC TEST DESCRIPTOR 2\n")
    with pytest.raises(DataError, match=r"bad_synthetic.csv: line 3: '9921' is not a CPT code"):
        cpt.load_csv(f)


def test_duplicate_and_empty_descriptor(tmp_path):
    f = tmp_path / "dup_synthetic.csv"
    f.write_text("99213,SYNTHETIC A\n99213,SYNTHETIC B\n")
    with pytest.raises(DataError, match="line 2: 99213 already given on line 1"):
        cpt.load_csv(f)
    g = tmp_path / "empty_synthetic.csv"
    g.write_text("99213,\n")
    with pytest.raises(DataError, match="empty_synthetic.csv: line 1"):
        cpt.load_csv(g)
