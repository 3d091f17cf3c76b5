"""HCPCS Level II: the CMS ANWEB files in ../shared/data (fixed-width annual files, Excel quarterly updates).

Values asserted here are read off the agency files themselves.
"""

from __future__ import annotations

import datetime as _dt
import re
import zipfile

import pytest

from medcodes.errors import DataError
from medcodes.model import Concept
from medcodes.sources import Source, scan
from medcodes.store import Store
from medcodes.systems import hcpcs


@pytest.fixture(scope="module")
def plans(shared_data):
    return {p.release: p for p in hcpcs.plan(scan(shared_data / "hcpcs"))}


_built: dict[str, tuple] = {}


def built(plans, release: str) -> tuple[object, dict[str, Concept]]:
    """(ReleaseBuild, concepts by key) for one release, parsed once per test session."""
    if release not in _built:
        b = plans[release].build()
        rows = list(b.concepts)
        b.concepts = rows
        _built[release] = (b, {c.key: c for c in rows})
    return _built[release]


# ------------------------------------------------------------------ plan
def test_plan_releases(plans):
    assert sorted(plans) == ["2019-01", "2020-01", "2020-04", "2020-07", "2020-10", "2026-01"]
    jan = plans["2020-01"]
    assert [s.display for s in jan.sources] == [
        "2020-Alpha-Numeric-HCPCS-File.zip!HCPC2020_ANWEB_w_disclaimer.txt",
        "2019-HCPCS-Record-Layout.zip!HCPCS2019_recordlayout.txt",  # the only layout CMS shipped here
        "2020-Alpha-Numeric-HCPCS-File.zip!proc_notes_2020.txt",     # the processing notes in its zip
    ]
    # 2019: the fixed-width text is used, not the .xlsx copy in the same zip
    assert plans["2019-01"].sources[0].name == "HCPC2019_CONTR_ANWEB.txt"
    assert plans["2020-07"].sources[0].name == "HCPC2020_JUL_ANWEB.xlsx"


def test_release_dates_and_labels(plans):
    b, _ = built(plans, "2020-01")
    assert b.label == "HCPCS Level II 2020 January"
    assert (b.effective_from, b.effective_to) == (_dt.date(2020, 1, 1), _dt.date(2020, 3, 31))
    b19, _ = built(plans, "2019-01")
    # no 2019 quarterly file here: the annual file stands for the whole year
    assert (b19.effective_from, b19.effective_to) == (_dt.date(2019, 1, 1), _dt.date(2019, 12, 31))
    assert plans["2020-10"].release == "2020-10"


# ------------------------------------------------------------------ counts
def test_2020_counts(plans):
    b, rows = built(plans, "2020-01")
    assert b.counts["codes"] == 6710
    assert b.counts["modifiers"] == 369
    assert sum(c.kind == "code" for c in rows.values()) == 6710
    assert sum(c.kind == "modifier" for c in rows.values()) == 369
    assert b.sources[0].name.endswith("HCPC2020_ANWEB_w_disclaimer.txt")


def test_2019_counts(plans):
    b, _ = built(plans, "2019-01")
    assert b.counts["codes"] == 6440
    assert b.counts["modifiers"] == 360
    assert b.counts["sections"] == 16


@pytest.mark.parametrize("release, codes, modifiers", [
    ("2020-04", 6728, 369),
    ("2020-07", 6789, 369),
    ("2020-10", 6825, 371),
])
def test_quarterly_excel_counts(plans, release, codes, modifiers):
    b, rows = built(plans, release)
    assert (b.counts["codes"], b.counts["modifiers"]) == (codes, modifiers)
    y, m = map(int, release.split("-"))
    assert b.effective_from == _dt.date(y, m, 1)


def test_counts_match_record_ids_in_file(shared_data, plans):
    """Independent count: first-line records (id 3 / id 7) straight from the raw bytes."""
    src = plans["2020-01"].sources[0]
    lines = src.read_bytes().split(b"\r\n")
    ids = [ln[10:11] for ln in lines if len(ln) >= 91 and ln[5:10].isdigit()]
    b, _ = built(plans, "2020-01")
    assert ids.count(b"3") == b.counts["codes"]
    assert ids.count(b"7") == b.counts["modifiers"]


# ------------------------------------------------------------------ named codes
def test_e1130_wheelchair(plans):
    _, rows = built(plans, "2020-01")
    c = rows["E1130"]
    assert c.kind == "code" and c.billable is True and c.parent == "E"
    assert c.title == "Standard wheelchair, fixed full length arms, fixed or swing away detachable footrests"
    assert c.short_title == "Whlchr stand fxd arm ft rest"
    a = c.attrs
    assert a["betos"] == "D1D"
    assert a["type_of_service"] == ["R"]
    assert a["pricing_indicator"] == ["00"]
    assert a["coverage"] == "I"
    assert a["cross_reference"] == ["K0001"]
    assert a["coverage_issues_manual"] == ["60-9"]
    assert a["code_added_date"] == "1986-01-01"
    assert a["action_effective_date"] == "2001-04-01"
    assert a["action_code"] == "N"
    assert "termination_date" not in a and "statute" not in a  # empty fields are omitted


def test_a0021_ambulance(plans):
    _, rows = built(plans, "2020-01")
    c = rows["A0021"]
    assert c.title == "Ambulance service, outside state per mile, transport (medicaid only)"
    assert c.short_title == "Outside state ambulance serv"
    assert c.attrs["betos"] == "O1A"
    assert c.attrs["type_of_service"] == ["D"]
    assert c.attrs["code_added_date"] == "1985-01-01"


def test_modifier_lt(plans):
    _, rows = built(plans, "2020-01")
    m = rows["LT"]
    assert m.kind == "modifier" and m.billable is None and m.code == "LT"
    assert m.title == "Left side (used to identify procedures performed on the left side of the body)"
    assert m.short_title == "Left side"


def test_multiple_occurrence_fields(plans):
    _, rows = built(plans, "2020-01")
    a = rows["J9999"].attrs
    assert a["type_of_service"] == ["1", "P"]
    assert a["carriers_manual"] == ["2049"]
    assert a["multiple_pricing_indicator"] == "A"
    assert a["pricing_indicator"] == ["51"]


def test_continuation_join_code(plans):
    """G8891's long description spans three records (ids 3, 4, 4) in both annual files."""
    want = ("Documentation of medical reason(s) for most recent ldl-c not under control "
            "(e.g., patients with palliative goals for whom treatment of hypertension "
            "with standard treatment goals is not clinically appropriate)")
    for rel in ("2019-01", "2020-01"):
        _, rows = built(plans, rel)
        assert rows["G8891"].title == want
        assert rows["G8891"].short_title == "Doc med reas no ldl-c contrl"


def test_continuation_join_modifier(plans):
    _, rows = built(plans, "2020-01")
    assert rows["AD"].title == "Medical supervision by a physician: more than four concurrent anesthesia procedures"


def test_excel_continuation_row(plans):
    """The quarterly Excel splits G0503's very long description into a RECID 4 row."""
    _, rows = built(plans, "2020-04")
    t = rows["G0503"].title
    assert t.startswith("Subsequent psychiatric collaborative care management, first 60 minutes")
    assert t.endswith("and/or other treatment goals and are prepared for discharge from active treatment")


def test_discontinued_codes(plans):
    _, rows = built(plans, "2020-01")
    c = rows["C9035"]  # action code D, terminated 2019-09-30
    assert c.attrs["action_code"] == "D"
    assert c.attrs["termination_date"] == "2019-09-30"
    assert c.billable is False and c.attrs["status"] == "discontinued"
    g = rows["G8891"]  # action code N but terminated 2014-12-31: still not billable in 2020
    assert g.attrs["action_code"] == "N" and g.attrs["termination_date"] == "2014-12-31"
    assert g.billable is False
    assert rows["A4226"].attrs["action_code"] == "A" and rows["A4226"].billable is True


def test_quarterly_adds_u_codes(plans):
    _, jan = built(plans, "2020-01")
    _, apr = built(plans, "2020-04")
    assert "U0001" not in jan and "U" not in jan
    u = apr["U0001"]
    assert u.title == "Cdc 2019 novel coronavirus (2019-ncov) real-time rt-pcr diagnostic panel"
    assert u.attrs["code_added_date"] == "2020-02-04"
    assert u.attrs["action_code"] == "A"
    assert u.attrs["betos"] == "T1H"
    assert apr["U"].kind == "section"
    _, octo = built(plans, "2020-10")
    assert octo["U0003"].parent == "U"


def test_excel_fields_match_fixed_width(plans):
    """Same code, same fields whether the release came from the .txt or the .xlsx."""
    _, jan = built(plans, "2020-01")
    _, apr = built(plans, "2020-04")
    assert apr["E1130"].attrs == jan["E1130"].attrs
    assert apr["LT"].title == jan["LT"].title


def test_sections(plans):
    _, rows = built(plans, "2020-01")
    assert rows["A"].kind == "section"
    assert rows["A"].title.startswith("Transportation Services Including Ambulance")
    assert rows["E"].title == "Durable Medical Equipment"
    assert rows["J"].title.startswith("Drugs Administered Other Than Oral Method")
    assert "D" not in rows  # dental (CDT) codes are not in the CMS file
    letters = sorted(k for k, c in rows.items() if c.kind == "section")
    assert letters == sorted({k[0] for k, c in rows.items() if c.kind == "code"})


# ------------------------------------------------------------------ file handling
def test_disclaimer_and_crlf(plans):
    src = plans["2020-01"].sources[0]
    raw = src.read_bytes()
    assert raw.startswith(b"Note regarding coverage and payment indicators")
    assert b"\r\n" in raw
    entries = hcpcs.parse_fixed(src)
    assert entries[0].code == "A1" and entries[0].is_modifier
    assert not any("\r" in e.long_description for e in entries)


def test_truncated_file(tmp_path, plans):
    raw = plans["2020-01"].sources[0].read_bytes()
    bad = tmp_path / "HCPC2020_ANWEB_w_disclaimer.txt"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="HCPC2020_ANWEB_w_disclaimer.txt"):
        hcpcs.parse_fixed(Source(bad))


def test_truncated_mid_record_with_line_end(tmp_path, plans):
    raw = plans["2020-01"].sources[0].read_bytes()
    lines = raw.split(b"\r\n")
    cut = next(i for i, ln in enumerate(lines) if ln[10:11] == b"3")
    lines[cut] = lines[cut][:200]
    bad = tmp_path / "HCPC2020_ANWEB_w_disclaimer.txt"
    bad.write_bytes(b"\r\n".join(lines))
    with pytest.raises(DataError, match=r"HCPC2020_ANWEB_w_disclaimer.txt: line \d+: record is 200 bytes"):
        hcpcs.parse_fixed(Source(bad))


def test_orphan_continuation(tmp_path, plans):
    raw = plans["2020-01"].sources[0].read_bytes()
    lines = raw.split(b"\r\n")
    first = next(i for i, ln in enumerate(lines) if ln[10:11] == b"4")
    del lines[first - 1]  # drop the parent of a continuation record
    bad = tmp_path / "HCPC2020_ANWEB_w_disclaimer.txt"
    bad.write_bytes(b"\r\n".join(lines))
    with pytest.raises(DataError, match="does not follow its first record"):
        hcpcs.parse_fixed(Source(bad))


def test_layout_positions_match_official_layout(shared_data):
    """Every field position used by the parser is the one printed in HCPCS2019_recordlayout.txt."""
    with zipfile.ZipFile(shared_data / "hcpcs/2019-jan/2019-HCPCS-Record-Layout.zip") as zf:
        text = zf.read("HCPCS2019_recordlayout.txt").decode("latin-1")
    found = {}
    for m in re.finditer(r"^\s+\d+\.\s+(HCPCS[^\n]*?)\s*\n\s+(\d+)\s+(\d+)\s+(\d+)", text, re.M):
        found[m.group(1).strip()] = (int(m.group(3)), int(m.group(4)))
    for f in hcpcs.FIELDS:
        assert found[f.label] == (f.start, f.end), f.label
    assert found["HCPCS Long Description"] == (12, 91)
    assert found["HCPCS Short Description"] == (92, 119)
    assert found["HCPCS Record Identification Code"] == (11, 11)


def test_layout_code_lists(shared_data):
    layout = hcpcs.parse_layout(Source(shared_data / "hcpcs/2019-jan/2019-HCPCS-Record-Layout.zip",
                                       "HCPCS2019_recordlayout.txt"))
    m = layout.meanings
    assert m["betos"]["O1A"] == "Ambulance"
    assert m["type_of_service"]["D"] == "Ambulance (eff 04/95)"
    assert m["action_code"]["D"] == "Discontinue procedure or modifier code"
    assert m["pricing_indicator"]["99"] == "Value not established"
    assert m["lab_certification"]["110"] == "Bacteriology"
    assert m["coverage"]["D"] == "Special coverage instructions apply"  # a tab-indented line in the file
    assert len(m["betos"]) == 106


def test_layout_disagreeing_with_parser(tmp_path, shared_data):
    with zipfile.ZipFile(shared_data / "hcpcs/2019-jan/2019-HCPCS-Record-Layout.zip") as zf:
        text = zf.read("HCPCS2019_recordlayout.txt")
    moved = text.replace(b"3    257    259    CHAR", b"3    258    260    CHAR")
    assert moved != text
    bad = tmp_path / "HCPCS2019_recordlayout.txt"
    bad.write_bytes(moved)
    with pytest.raises(DataError, match="HCPCS2019_recordlayout.txt: HCPCS Berenson-Eggers"):
        hcpcs.parse_layout(Source(bad))


# ------------------------------------------------------------------ grammar, structure, enrich
def test_readings():
    (r,) = hcpcs.readings("E1130")
    assert r.kind == "code" and r.score > 0.9
    (d,) = hcpcs.readings("D0120")
    assert d.note == "CDT (ADA), not in the CMS file" and d.extra["system"] == "cdt"
    assert hcpcs.readings("LT")[0].kind == "modifier"
    assert hcpcs.readings("Q5")[0].kind == "modifier"
    assert hcpcs.readings("1P")[0].kind == "modifier"
    assert hcpcs.readings("25") == []       # two digits: a CPT modifier
    assert hcpcs.readings("99213") == []
    assert hcpcs.readings("W1234") == []    # letters after V are not Level II
    assert hcpcs.readings("E11") == []


def test_structure():
    s = hcpcs.structure("A0021", None)
    assert s["level"] == "II"
    assert s["section"]["letter"] == "A"
    assert s["section"]["range"]["title"] == "Transportation Services Including Ambulance"
    assert hcpcs.structure("J9035", None)["section"]["range"]["title"] == "Chemotherapy Drugs"
    m = hcpcs.structure("LT", None)
    assert m["kind"] == "modifier" and m["level"] == "II"
    assert hcpcs.structure("D0120", None)["maintainer"] == "ADA"


def test_install_and_enrich(tmp_path, plans):
    b, _ = built(plans, "2020-01")
    store = Store(tmp_path)
    info = store.install(b)
    assert info.counts["codes"] == 6710
    db = store.open("hcpcs", "2020-01")
    rec: dict = {}
    hcpcs.enrich(rec, db.get("E1130"), db)
    # code meanings come from the layout file's own code lists (BETOS_TB, CMS_TYPE_SRVC_TB, CODES)
    assert rec["fields"]["BETOS"] == "D1D (Wheelchairs)"
    assert rec["fields"]["Type of service"] == ["R (Rental of DME)"]
    assert rec["fields"]["Action code"] == "N (No maintenance for this code)"
    assert rec["fields"]["Coverage"] == "I (Not payable by Medicare)"
    assert rec["fields"]["Code added"] == "1986-01-01"
    assert rec["status"]["state"] == "active"
    assert rec["status"]["code_added"] == "1986-01-01"
    rec2: dict = {}
    hcpcs.enrich(rec2, db.get("C9035"), db)
    assert rec2["status"]["state"] == "terminated"
    assert rec2["status"]["termination"] == "2019-09-30"
    assert "E1130" in [r["key"] for r in db.children("E")]
    store.close()


# ------------------------------------------------------------------ January 2026 (agency quirks)
def test_2026_counts_despite_long_record_and_blank_tail(plans):
    """CMS's January 2026 ANWEB file (01/12/2026 re-issue): 8,623 codes and 383 modifiers; G9871
    (line 9170) is 546 bytes, blank after byte 320, and the file ends with a blank line."""
    b, rows = built(plans, "2026-01")
    assert b.counts["codes"] == 8623
    assert b.counts["modifiers"] == 383
    g = rows["G9871"]
    assert g.title == "Behavioral counseling for diabetes prevention, online, 60 minutes"
    assert g.short_title == "Bhv couns dm prev, onln 60 m"
    assert any("line 9170 (G9871) is 546 bytes" in n for n in b.notes)
    assert any("blank line" in n for n in b.notes)


def test_long_record_with_data_after_320_bytes_is_refused(tmp_path):
    good = "A0021" + "00010" + "3" + "Ambulance service, outside state per mile, transport (medicaid only)".ljust(80)
    good = good.ljust(320)
    bad = good + "X" * 10
    f = tmp_path / "HCPC2026_JAN_ANWEB.txt"
    f.write_text(bad + "\n")
    with pytest.raises(DataError, match="line 1.*330 bytes"):
        hcpcs.parse_fixed(Source(f))


# ------------------------------------------------------------------ January 2026: every file of the zip
ZIP_2026 = "hcpcs/2026-jan/january-2026-alpha-numeric-hcpcs-file.zip"


def _member(shared_data, name: str) -> Source:
    return Source(shared_data / ZIP_2026, name)


def _sheet(src: Source, sheet: str | None = None) -> list[list]:
    """A sheet read straight with python-calamine (independently of medcodes.xlsx)."""
    import io

    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_filelike(io.BytesIO(src.read_bytes()))
    return wb.get_sheet_by_name(sheet or wb.sheet_names[0]).to_python()


def test_2026_release_uses_every_file_of_the_zip(plans, shared_data):
    with zipfile.ZipFile(shared_data / ZIP_2026) as zf:
        members = set(zf.namelist())
    p = plans["2026-01"]
    assert {s.name for s in p.sources} == members
    assert p.sources[0].name == "HCPC2026_JAN_ANWEB_01122026.txt"          # the fixed-width form is read
    assert p.sources[1].name == "HCPC2026_recordlayout.txt"                # with its own year's layout
    b, _ = built(plans, "2026-01")
    assert len(b.sources) == 7
    assert b.counts["report_action_mismatches"] == 0
    assert (b.counts["noc_codes"], b.counts["corrections"], b.counts["processing_notes"]) == (166, 5, 234)


def test_2026_layout_is_read_from_its_own_file(shared_data):
    """HCPC2026_recordlayout.txt: same positions as 2019, plus code meanings 2019 did not have."""
    lay26 = hcpcs.parse_layout(_member(shared_data, "HCPC2026_recordlayout.txt"))
    lay19 = hcpcs.parse_layout(Source(shared_data / "hcpcs/2019-jan/2019-HCPCS-Record-Layout.zip",
                                      "HCPCS2019_recordlayout.txt"))
    assert lay26.record_length == 320 and lay26.extra == ()
    assert lay26.meanings["pricing_indicator"]["40"] == "Lymphedema Compression Treatment Items (eff 1/1/2024)"
    assert lay26.meanings["betos"]["O1L"] == "Lymphedema Compression Treatment Items (eff 1/1/2024)"
    assert "40" not in lay19.meanings["pricing_indicator"] and "O1L" not in lay19.meanings["betos"]


def test_a_field_the_layout_adds_is_read_and_kept(tmp_path, shared_data):
    """A layout that names a field FIELDS does not know: its values land in attrs (not dropped)."""
    text = _member(shared_data, "HCPC2026_recordlayout.txt").read_bytes().decode("cp1252")
    new_field = ("  31.  HCPCS Example Flag Code\r\n"
                 "                                 1    294    294    CHAR\r\n\r\n"
                 "                                                    A field added for this test.\r\n\r\n")
    head = "  31.  FILLER"
    assert head in text
    layout_file = tmp_path / "HCPC2027_recordlayout.txt"
    layout_file.write_bytes(text.replace(head, new_field + "  32.  FILLER").encode("cp1252"))
    lay = hcpcs.parse_layout(Source(layout_file))
    (f,) = lay.extra
    assert (f.name, f.start, f.end) == ("example_flag_code", 294, 294)
    rec = "A0021" + "00010" + "3" + "Ambulance service, outside state per mile".ljust(80)
    rec = (rec.ljust(293) + "Y").ljust(320)
    data = tmp_path / "HCPC2027_JAN_ANWEB.txt"
    data.write_text(rec + "\n")
    (e,) = hcpcs.parse_fixed(Source(data), fields=lay.fields)
    assert e.fields["example_flag_code"] == "Y"


def test_2026_xlsx_agrees_with_the_txt_code_by_code(shared_data):
    """The .xlsx and .txt forms of the release, record by record: same codes, titles and fields, except
    where CMS's workbook leaves the action effective date empty and C9248's third pricing indicator."""
    txt = {(e.code, e.is_modifier): e for e in hcpcs.parse_fixed(_member(shared_data,
                                                                        "HCPC2026_JAN_ANWEB_01122026.txt"), [])}
    xl = {(e.code, e.is_modifier): e for e in hcpcs.parse_excel(_member(shared_data,
                                                                       "HCPC2026_JAN_ANWEB_01122026.xlsx"))}
    assert len(txt) == len(xl) == 8623 + 383 and txt.keys() == xl.keys()
    no_action_date = []
    for k, a in txt.items():
        b = xl[k]
        assert " ".join(a.long_description.split()) == " ".join(b.long_description.split()), k
        assert a.short_description == b.short_description, k
        fa, fb = dict(a.fields), dict(b.fields)
        if "action_effective_date" in fa and "action_effective_date" not in fb:
            no_action_date.append(k[0])
            fa.pop("action_effective_date")
        if k == ("C9248", False):   # PRICE3 = 11 in the workbook; the .txt has positions 124-125 blank
            assert (fa["pricing_indicator"], fb["pricing_indicator"]) == (["53"], ["53", "11"])
            fa.pop("pricing_indicator"), fb.pop("pricing_indicator")
        assert fa == fb, k
    assert len(no_action_date) == 117 and no_action_date[:3] == ["A0130", "A0180", "A0190"]
    # the workbook's own cells: those rows really are empty there
    rows = {r[0]: r for r in _sheet(_member(shared_data, "HCPC2026_JAN_ANWEB_01122026.xlsx"))}
    head = rows["HCPC"]
    assert rows["A0130"][head.index("ACT EFF DT")] == "" and rows["C9248"][head.index("PRICE3")] == "11"


def _report_actions(shared_data) -> tuple[dict, dict]:
    """(sheet -> {(code, is_modifier): letter}, key) read straight from the Transaction Report."""
    src = _member(shared_data, "HCPC2026_JAN_ANWEB_Transaction Report_12292025.xlsx")
    key = {r[1].lower(): r[0] for r in _sheet(src, "Action Code Key")[1:] if len(r[0]) == 1}
    out = {}
    for sheet in ("Changes by HCPC", "Changes by Action Code"):
        rows = _sheet(src, sheet)
        assert rows[0][:2] == ["HCPC", "ACTION CD"]
        out[sheet] = {(r[0].strip(), r[0].startswith("   ")): key[r[1].lower()] for r in rows[1:] if r[0]}
    return out, key


def test_2026_action_codes_equal_the_transaction_report(shared_data):
    """The action code medcodes reads from the ANWEB file, for every code and modifier, is the
    Transaction Report's (both its sheets)."""
    sheets, key = _report_actions(shared_data)
    assert key["add"] == "A" and key["discontinued"] == "D" and key["no change"] == "N"
    anweb = {(e.code, e.is_modifier): e.fields["action_code"]
             for e in hcpcs.parse_fixed(_member(shared_data, "HCPC2026_JAN_ANWEB_01122026.txt"), [])}
    by_hcpc, by_action = sheets["Changes by HCPC"], sheets["Changes by Action Code"]
    for k, letter in anweb.items():
        assert by_action[k] == letter, k
        if k != ("G9871", False):   # the one record the "Changes by HCPC" sheet leaves out
            assert by_hcpc[k] == letter, k
    assert ("G9871", False) not in by_hcpc and by_action[("G9871", False)] == "A"
    # the report also lists 6 CDT (dental) codes discontinued, which the CMS file does not carry
    assert sorted(k[0] for k in by_action.keys() - anweb.keys()) == [
        "D1352", "D1705", "D1706", "D1707", "D1712", "D9248"]
    assert anweb[("A4295", False)] == anweb[("A4296", False)] == anweb[("A4297", False)] == "A"


def test_2026_corrections_are_reflected(plans, shared_data):
    rows = _sheet(_member(shared_data, "HCPC2026_JAN_ANWEB_Corrections_01122026.xlsx"))
    said = {r[0]: r for r in rows[1:]}
    assert said["S0189"][1] == "Terminate" and said["J1572"][1] == "Do not terminate"
    assert said["J2516"][1] == "Revise TOS" and said["J2516"][5] == "1,P"
    _, c = built(plans, "2026-01")
    s = c["S0189"]  # terminated as of 2026-01-01: last valid 2025-12-31, discontinued in this release
    assert s.billable is False and s.attrs["termination_date"] == "2025-12-31" and s.attrs["action_code"] == "D"
    assert s.attrs["corrections"][0]["action"] == "Terminate" and s.attrs["corrections"][0]["effective"] == "2026-01-01"
    j = c["J1572"]  # not terminated
    assert j.billable is True and "termination_date" not in j.attrs and j.attrs["action_code"] != "D"
    assert j.attrs["corrections"][0]["action"] == "Do not terminate"
    assert c["J2516"].attrs["type_of_service"] == ["1", "P"]
    assert c["G2076"].attrs["code_added_date"] == "2020-01-01"     # "Add date s/b 1/1/2020"
    assert "cross_reference" not in c["J3365"].attrs                 # "The xref code has been removed"
    assert "corrections" not in c["A4295"].attrs


def test_2026_noc_codes(plans, shared_data):
    rows = _sheet(_member(shared_data, "NOC codes_JAN2026.xlsx"))
    listed = {r[0] for r in rows if r[0] and r[0] != "HCPCS"}
    assert len(listed) == 166 and {"J3490", "A4335", "A0999"} <= listed
    _, c = built(plans, "2026-01")
    marked = {k for k, v in c.items() if v.attrs.get("noc")}
    assert marked == listed
    assert c["J3490"].attrs["noc"] == {"added": "1986-01-01", "source": "NOC codes_JAN2026.xlsx"}
    assert c["A9599"].attrs["noc"]["terminated"] == "2017-12-31"
    assert "noc" not in c["A4295"].attrs


def test_2026_processing_notes(tmp_path, plans):
    b, c = built(plans, "2026-01")
    notes = dict(b.tables[hcpcs.NOTE_TABLE].rows)
    assert notes["0088"] == ('"S" CODES ARE UNIQUE TEMPORARY CODES ESTABLISHED BY BCBSA AND HIAA FOR PRIVATE '
                             'PAYOR USE. THEY ARE NOT VALID NOR PAYABLE BY MEDICARE.')
    assert notes["0133"] == "SEE ONLINE MANUAL 100-02.9."                 # a tab-indented note
    used = {v.attrs["processing_note"] for v in c.values() if v.attrs.get("processing_note")}
    assert used <= set(notes)
    assert c["S0189"].attrs["processing_note"] == "0088"


def test_companion_files_that_cannot_be_read_name_the_file(tmp_path):
    from medcodes.systems import hcpcs_files

    notes = tmp_path / "proc_notes_JAN2026.txt"
    notes.write_text("PROCESSING NOTES\nsome text before any numbered note\n")
    with pytest.raises(DataError, match="proc_notes_JAN2026.txt: text before the first numbered note"):
        hcpcs_files.parse_processing_notes(Source(notes))
    empty = tmp_path / "proc_notes_2027.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="proc_notes_2027.txt: no processing notes"):
        hcpcs_files.parse_processing_notes(Source(empty))
    broken = tmp_path / "HCPC2026_JAN_ANWEB_Corrections_01122026.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(DataError, match="HCPC2026_JAN_ANWEB_Corrections_01122026.xlsx: not a readable Excel"):
        hcpcs_files.parse_corrections(Source(broken))
    assert hcpcs_files.companion(Source(broken)) == ("corrections", 2026, 1)
    assert hcpcs_files.companion(Source(tmp_path / "HCPC2026_JAN_ANWEB_Transaction Report_12292025.xlsx")) == (
        "report", 2026, 1)
    assert hcpcs_files.companion(Source(tmp_path / "NOC codes_JAN2026.xlsx")) == ("noc", 2026, 1)
    assert hcpcs_files.companion(Source(tmp_path / "proc_notes_2020.txt")) == ("notes", 2020, None)
    # the re-issue's Corrections workbook is a companion, never a release of its own
    assert hcpcs._release_of(Source(broken)) is None
