"""Agency files are recognised by their content (issue 9 item 2), whatever they are called.

The real files of ../shared/data are saved under neutral names (as a browser or a colleague
might), and the plan must still find every release: XML by root element and <version>,
fixed-width text by its record layout; the year, where the content states none, from the
folder. Only planning is tested here (no builds): the builds are tested per system.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from medcodes.releases import plans_in
from medcodes.sources import Source, scan


def _member(shared: Path, zip_path: str, member: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(shared / zip_path) as zf:
        out.write_bytes(zf.read(member))


def _link(shared: Path, path: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.symlink_to(shared / path)


@pytest.fixture(scope="module")
def renamed(shared_data, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("renamed")
    s = shared_data
    _member(s, "icd10pcs/2026/2026-icd-10-pcs-order-file-long-and-abbreviated-titles.zip",
            "icd10pcs_order_2026.txt", d / "pcs-2026" / "order.txt")
    _link(s, "icd10pcs/2026/icd10pcs_tables_2026.xml", d / "pcs-2026" / "tables (1).xml")
    _link(s, "icd10pcs/2026/icd10pcs_definitions_2026.xml", d / "pcs-2026" / "defs.xml")
    _link(s, "icd10pcs/2025/icd10pcs_index_2025.xml", d / "pcs-index" / "download.xml")
    for i, name in enumerate(("CMS32_DESC_LONG_DX.txt", "CMS32_DESC_SHORT_DX.txt",
                              "CMS32_DESC_LONG_SG.txt", "CMS32_DESC_SHORT_SG.txt")):
        _link(s, f"icd9cm/v32/{name}", d / "icd9-v32" / f"titles{i}.txt")
    _member(s, "gems/2018/Dxgem_2018.zip", "2018_I9gem.txt", d / "gems-2018" / "a.txt")
    _member(s, "gems/2018/Dxgem_2018.zip", "2018_I10gem.txt", d / "gems-2018" / "b.txt")
    _link(s, "gems/pcs/gem_i9pcs.txt", d / "gems-2018" / "c.txt")
    _link(s, "gems/pcs/gem_pcsi9.txt", d / "gems-2018" / "d.txt")
    _member(s, "hcpcs/2026-jan/january-2026-alpha-numeric-hcpcs-file.zip",
            "HCPC2026_JAN_ANWEB_01122026.txt", d / "hcpcs-2026-jan" / "codes.txt")
    _member(s, "hcpcs/2026-jan/january-2026-alpha-numeric-hcpcs-file.zip",
            "HCPC2026_recordlayout.txt", d / "hcpcs-2026-jan" / "layout.txt")
    for book in ("drug", "eindex", "neoplasm"):
        _link(s, f"icd10cm/2026-apr/icd10cm-{book}-April-1-2026-XML.xml", d / "cm-april" / f"{book[0]}.xml")
    _link(s, "icd10cm/2025-apr/icd10cm-tabular-April-2025.xml", d / "cm-april" / "tabular.xml")
    (d / "notes.txt").write_text("HCPCS 2026 notes, not a release file\n")
    (d / "empty.xml").write_bytes(b"")
    return d


@pytest.fixture(scope="module")
def planned(renamed):
    return {(p.system, p.release): [s.display for s in p.sources] for p in plans_in(scan(renamed))}


def test_every_system_by_content(planned):
    assert planned == {
        ("icd10pcs", "2026"): ["order.txt", "tables (1).xml", "defs.xml"],
        ("icd10pcs_index", "2025"): ["download.xml"],
        # long and short, diagnoses (5-character code field) and procedures (4-character)
        ("icd9cm", "v32"): ["titles0.txt", "titles1.txt", "titles2.txt", "titles3.txt"],
        # directions by their records: ICD-9 -> CM, CM -> ICD-9, ICD-9 -> PCS, PCS -> ICD-9
        ("crosswalk", "gem-2018"): ["a.txt", "b.txt", "c.txt", "d.txt"],
        # the ANWEB record layout; the 2026 layout file by its title "HCPCS Contractor Record - 2026"
        ("hcpcs", "2026-01"): ["codes.txt", "layout.txt"],
        # <ICD10CM.index> books by their headings / title; April from the folder name
        ("icd10cm_index", "2026-04"): ["e.xml", "d.xml", "n.xml"],
        ("icd10cm", "2025-04"): ["tabular.xml"],
    }


def test_content_not_name_decides(renamed):
    # an order file is not taken for an ICD-9 title file nor a GEM (all are "code  text" lines)
    from medcodes.systems import crosswalk, icd9cm, icd10pcs
    from medcodes.sources import recognise

    order = Source(renamed / "pcs-2026" / "order.txt")
    assert [f.kind for f in recognise([order], icd10pcs.FILES)] == ["order"]
    assert recognise([order], icd9cm.FILES) == []
    assert crosswalk._gem_direction(order) is None
    gem = Source(renamed / "gems-2018" / "b.txt")
    assert crosswalk._gem_direction(gem) == ("i10cm-i9", 2018)
    assert recognise([gem], icd9cm.FILES) == []


def test_xml_root_and_version(shared_data, tmp_path):
    assert Source(shared_data / "icd10pcs/2026/icd10pcs_tables_2026.xml").xml_root() == ("ICD10PCS.tabular", "2026")
    p = tmp_path / "x.xml"
    p.write_bytes(b"\xef\xbb\xbf<?xml version='1.0'?>\n<!-- c -->\n<ICD10CM.tabular><version>2024</version>")
    assert Source(p).xml_root() == ("ICD10CM.tabular", "2024")
    p.write_bytes(b"not xml")
    assert Source(p).xml_root() is None
