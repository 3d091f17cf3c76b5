"""GEMs (2018, dx and PCS), the ICD-10-CM FY2026 conversion table, and medcodes.mapping on top of them."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from medcodes.errors import DataError, NotFound
from medcodes.sources import scan
from medcodes.systems import crosswalk


# ---------------------------------------------------------------- parsers, on the agency files
@pytest.fixture(scope="module")
def gem_build(shared_data):
    plans = [p for p in crosswalk.plan(scan(shared_data / "gems")) if p.release.startswith("gem-")]
    assert [p.release for p in plans] == ["gem-2018"]
    b = plans[0].build()
    b.tables["gem"].rows = list(b.tables["gem"].rows)
    return b


@pytest.fixture(scope="module")
def gem_index(gem_build):
    idx: dict[tuple[str, str], list[tuple]] = {}
    for row in gem_build.tables["gem"].rows:
        idx.setdefault((row[0], row[1]), []).append(row)
    return idx


@pytest.fixture(scope="module")
def conv_build(shared_data):
    plans = crosswalk.plan(scan(shared_data / "icd10cm" / "2026"))
    assert [p.release for p in plans] == ["conversion-2026"]
    b = plans[0].build()
    b.tables["conversion"].rows = list(b.tables["conversion"].rows)
    b.tables["conversion_link"].rows = list(b.tables["conversion_link"].rows)
    return b


def test_gem_release_and_row_counts(gem_build):
    assert gem_build.label == "GEMs 2018 (final)"
    assert (gem_build.effective_from, gem_build.effective_to) == (dt.date(2017, 10, 1), dt.date(2018, 9, 30))
    c = gem_build.counts
    # lines per file, measured (wc -l) and every one parsed
    assert (c["i9-i10cm"], c["i10cm-i9"], c["i9-i10pcs"], c["i10pcs-i9"]) == (24860, 81593, 73593, 101025)
    assert len(gem_build.tables["gem"].rows) == 24860 + 81593 + 73593 + 101025
    # every ICD-9-CM v32 code is a source of its forward GEM
    assert c["i9-i10cm sources"] == 14567 and c["i9-i10pcs sources"] == 3882
    assert (c["i9-i10cm no-map"], c["i10cm-i9 no-map"], c["i9-i10pcs no-map"]) == (422, 731, 210)
    assert gem_build.tables["gem"].columns == crosswalk.GEM_COLUMNS


def test_gem_quirks_kept_as_shipped(gem_build, gem_index):
    # gem_pcsi9.txt: 29 "NoI9" targets with no-map flag 0, plus 8628 -> 0NDB0ZZ "10001"
    assert gem_build.counts["i10pcs-i9 odd flags"] == 30
    assert gem_build.counts["i9-i10pcs odd flags"] == 3
    # 2018_I10gem.txt writes one ICD-9 target in lower case (v5889): stored upper case
    assert not any(r[2] != r[2].upper() and r[2].upper() not in crosswalk.NO_MAP_TARGETS
                   for r in gem_build.tables["gem"].rows)


def test_combination_entry(gem_index):
    # 2018_I9gem.txt: 0730 A70 10111 / 0730 J17 10112 (ornithosis with pneumonia)
    rows = gem_index[("i9-i10cm", "0730")]
    assert [r[2:] for r in rows] == [("A70", 1, 0, 1, 1, 1), ("J17", 1, 0, 1, 1, 2)]


def test_no_map_entry(gem_index):
    assert [r[2:] for r in gem_index[("i9-i10cm", "36570")]] == [("NoDx", 1, 1, 0, 0, 0)]
    assert [r[2:] for r in gem_index[("i9-i10pcs", "0016")]] == [("NoPCS", 1, 1, 0, 0, 0)]


def test_diagnosis_forward_and_backward(gem_index):
    assert [r[2:] for r in gem_index[("i9-i10cm", "25000")]] == [("E119", 1, 0, 0, 0, 0)]
    assert [r[2:] for r in gem_index[("i10cm-i9", "E119")]] == [("25000", 1, 0, 0, 0, 0)]


def test_pcs_gem(gem_index):
    assert [r[2] for r in gem_index[("i9-i10pcs", "8151")]] == [
        "0SR90J9", "0SR90JA", "0SR90JZ", "0SRB0J9", "0SRB0JA", "0SRB0JZ"]
    assert [r[2:] for r in gem_index[("i10pcs-i9", "0SR90J9")]] == [("8151", 1, 0, 0, 0, 0)]


def test_corrupt_gem_line_names_file_and_line(shared_data, tmp_path):
    src = shared_data / "gems" / "2018" / "Dxgem_2018.zip"
    with zipfile.ZipFile(src) as zin:
        data = zin.read("2018_I9gem.txt")
    lines = data.split(b"\r\n")
    lines[9] = b"0173  A1881   1X000"                       # a damaged flag field on line 10
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zout:
        zout.writestr("2018_I9gem.txt", b"\r\n".join(lines))
    (tmp_path / "Dxgem_2018.zip").write_bytes(buf.getvalue())
    plan = crosswalk.plan(scan(tmp_path))[0]
    with pytest.raises(DataError, match=r"Dxgem_2018.zip!2018_I9gem.txt line 10"):
        plan.build()


def test_truncated_gem_file(shared_data, tmp_path):
    data = (shared_data / "gems" / "pcs" / "gem_pcsi9.txt").read_bytes()
    (tmp_path / "gem_pcsi9.txt").write_bytes(data[: len(data) // 2])   # cut mid-line
    with pytest.raises(DataError, match="gem_pcsi9.txt"):
        crosswalk.plan(scan(tmp_path))[0].build()


def test_synthetic_gem_file_parses(tmp_path):
    # synthetic, three hand-written lines in the agency's layout
    (tmp_path / "2018_I9gem.txt").write_bytes(
        b"0730  A70     10111\r\n0730  J17     10112\r\n36570 NoDx    11000\r\n")
    b = crosswalk.plan(scan(tmp_path))[0].build()
    assert b.counts["i9-i10cm"] == 3 and b.counts["i9-i10cm no-map"] == 1
    assert any("i10cm-i9" in n for n in b.notes)   # the missing files are noted


def test_conversion_table(conv_build):
    assert conv_build.release == "conversion-2026"
    assert (conv_build.effective_from, conv_build.effective_to) == (dt.date(2025, 10, 1), dt.date(2026, 9, 30))
    # 5,892 data rows under the header; O44.20..O44.33 appear twice, identically
    assert conv_build.counts["codes"] == 5884 and conv_build.counts["repeated rows"] == 8
    rows = {r[1]: r for r in conv_build.tables["conversion"].rows}
    # the table says T81.4XXA split into T81.40XA..T81.49XA, "Effective 2018" = October 1, 2018
    split = sorted(r[0] for r in rows.values() if r[4] == "T81.4XXA")
    assert split == ["T81.40XA", "T81.41XA", "T81.42XA", "T81.43XA", "T81.44XA", "T81.49XA"]
    assert rows["T8140XA"][2:4] == ("2018-10-01", "2018")
    # an exact date where the table gives one (April 1 and January 1 updates)
    assert rows["J1282"][2] == "2021-01-01"
    assert rows["C50A0"][4] == "C50.919, C50.929"


def test_previous_links():
    assert crosswalk.previous_links("C50.919, C50.929") == [("C50919", None), ("C50929", None)]
    assert crosswalk.previous_links("H02.101-H02.106; H02.109") == [("H02101", "H02106"), ("H02109", None)]
    assert crosswalk.previous_links("None") == []


def test_corrupt_conversion_table(tmp_path):
    (tmp_path / "ICD-10-CM-CONVERSION-TABLE-FY2026.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(DataError, match="ICD-10-CM-CONVERSION-TABLE-FY2026.xlsx"):
        crosswalk.plan(scan(tmp_path))[0].build()


# ---------------------------------------------------------------- mapping, through the Codebook
def test_map_250_00_forward(cb):
    from medcodes.mapping import map_code

    res = map_code(cb, "250.00")
    assert res.release == "gem-2018"
    [m] = res.maps
    assert (m.direction, m.gem, m.source.code) == ("i9-i10cm", "forward", "250.00")
    assert m.source.title.startswith("Diabetes mellitus without mention of complication, type II")
    assert [(t.code, t.approximate, t.no_map) for t in m.targets] == [("E11.9", True, False)]
    assert m.targets[0].title == "Type 2 diabetes mellitus without complications"
    assert m.targets[0].in_release is True
    # the backward GEM maps these ICD-10-CM codes back to 250.00
    assert [t.code for t in m.reverse] == ["E11.9", "E13.9"]
    assert res.as_dict()["maps"][0]["targets"][0]["code"] == "E11.9"


def test_map_e11_9_backward(cb):
    from medcodes.mapping import map_code

    [m] = map_code(cb, "E11.9").maps
    assert (m.direction, m.gem) == ("i10cm-i9", "backward")
    assert [t.code for t in m.targets] == ["250.00"]
    assert m.targets[0].title == ("Diabetes mellitus without mention of complication, type II or unspecified "
                                  "type, not stated as uncontrolled")
    assert [t.code for t in map_code(cb, "E11.9", to="icd9cm").maps[0].targets] == ["250.00"]
    with pytest.raises(NotFound, match="ICD-10-PCS"):
        map_code(cb, "E11.9", to="icd10pcs")


def test_map_combination_and_no_map(cb):
    from medcodes.mapping import map_code

    [m] = map_code(cb, "073.0").maps
    assert m.targets == []
    [scen] = m.scenarios
    assert scen.scenario == 1
    assert [(c.choice_list, [t.code for t in c.targets]) for c in scen.choice_lists] == [(1, ["A70"]), (2, ["J17"])]
    [nm] = map_code(cb, "365.70").maps
    assert nm.no_map and [t.code for t in nm.targets] == ["NoDx"]


def test_map_procedures(cb):
    from medcodes.mapping import map_code

    [m] = map_code(cb, "81.51").maps
    assert m.direction == "i9-i10pcs" and m.source.title == "Total hip replacement"
    assert [t.code for t in m.targets] == ["0SR90J9", "0SR90JA", "0SR90JZ", "0SRB0J9", "0SRB0JA", "0SRB0JZ"]
    [back] = map_code(cb, "0SR90J9").maps
    assert back.direction == "i10pcs-i9" and [t.code for t in back.targets] == ["81.51"]
    # digits only: ICD-9-CM diagnosis 010.1 is a category (no GEM entry), procedure 01.01 maps
    assert [m.direction for m in map_code(cb, "0101").maps] == ["i9-i10pcs"]


def test_successors_and_predecessors(cb):
    from medcodes.mapping import predecessors, successors

    assert successors(cb, "T81.4XXA") == [(c, dt.date(2018, 10, 1)) for c in
                                          ("T81.40XA", "T81.41XA", "T81.42XA", "T81.43XA", "T81.44XA", "T81.49XA")]
    assert predecessors(cb, "T81.41XA") == [("T81.4XXA", dt.date(2018, 10, 1))]
    # not only deletions: FY2026 added E11.A (type 2 diabetes in remission) with E11.9 as its previous code
    assert successors(cb, "E11.9") == [("E11.A", dt.date(2025, 10, 1))]
    assert successors(cb, "A00.0") == []


def test_deleted_target_is_marked(cb):
    from medcodes.mapping import map_code

    [m] = map_code(cb, "998.59").maps
    t81 = [t for t in m.targets if t.code == "T81.4XXA"]
    assert t81, "2018_I9gem.txt maps 998.59 to T81.4XXA"
    newest = max(cb.releases("icd10cm"), key=lambda i: (i.effective_from, i.release))
    assert t81[0].in_release is False and t81[0].release == newest.release
    # deleted in FY2019: its title comes from an older installed release
    assert t81[0].title == "Infection following a procedure, initial encounter"
