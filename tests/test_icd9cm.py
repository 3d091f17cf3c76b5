"""ICD-9-CM v32 (CMS title files in shared/data/icd9cm/v32): counts, titles, keys, readings, structure."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from medcodes.errors import DataError
from medcodes.sources import scan
from medcodes.store import Store
from medcodes.systems import icd9cm


@pytest.fixture(scope="module")
def build(shared_data):
    plans = icd9cm.plan(scan(shared_data / "icd9cm"))
    assert [p.release for p in plans] == ["v32"]
    b = plans[0].build()
    b.concepts = list(b.concepts)
    return b


@pytest.fixture(scope="module")
def db(build, tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("icd9home"))
    store.install(build)
    d = store.open("icd9cm", "v32")
    yield d
    store.close()


def test_release_and_counts(build):
    assert build.label == "ICD-9-CM v32 (final, FY2015)"
    assert (build.effective_from, build.effective_to) == (dt.date(2014, 10, 1), dt.date(2015, 9, 30))
    # measured: every line of the long files is a code (the short files list the same codes)
    assert build.counts == {"diagnoses": 14567, "procedures": 3882}
    assert len(build.concepts) == 14567 + 3882
    assert all(c.billable is True for c in build.concepts)
    assert {c.kind for c in build.concepts} == {"diagnosis", "procedure"}


def test_titles_as_in_the_files(db):
    dx = db.get("25000")
    assert dx["code"] == "250.00" and dx["kind"] == "diagnosis"
    assert dx["title"] == ("Diabetes mellitus without mention of complication, type II or unspecified type, "
                           "not stated as uncontrolled")
    assert dx["short_title"] == "DMII wo cmp nt st uncntr"
    proc = db.get("P:8151")
    assert proc["code"] == "81.51" and proc["kind"] == "procedure"
    assert proc["title"] == "Total hip replacement"
    # latin-1 bytes in the agency file
    assert db.get("0413")["title"].startswith("Friedländer's bacillus infection")
    assert db.get("E8801")["code"] == "E880.1"
    assert db.get("V4511")["title"] == "Renal dialysis status"


def test_colliding_keys_are_kept_apart(db):
    # dx 010.10 and procedure 01.01 share digits; procedure keys carry the P: prefix
    assert db.get("P:0101")["title"] == "Cisternal puncture"
    assert db.get("P:0101")["code"] == "01.01"
    assert db.get("01010")["code"] == "010.10"


def test_readings():
    both = icd9cm.readings("0101")
    assert [(r.kind, r.code, r.key) for r in both] == [("diagnosis", "010.1", "0101"),
                                                       ("procedure", "01.01", "P:0101")]
    assert [(r.kind, r.key) for r in icd9cm.readings("250.00")] == [("diagnosis", "25000")]
    assert [(r.kind, r.key) for r in icd9cm.readings("81.51")] == [("procedure", "P:8151")]
    assert [(r.kind, r.code) for r in icd9cm.readings("E880.1")] == [("diagnosis", "E880.1")]
    assert [(r.kind, r.code) for r in icd9cm.readings("V4511")] == [("diagnosis", "V45.11")]
    assert [r.kind for r in icd9cm.readings("25000")] == ["diagnosis"]
    assert icd9cm.readings("E11.9") == []      # an ICD-10-CM shape (dot after 3 on an E code)
    assert icd9cm.readings("0SR90J9") == []


def test_structure_chapters(db):
    s = icd9cm.structure("250.00", db)
    assert s["kind"] == "diagnosis" and s["chapter"]["range"] == "240-279"
    assert icd9cm.structure("81.51", db)["chapter"] == {
        "range": "76-84", "title": "Operations on the musculoskeletal system"}
    assert icd9cm.structure("V45.11", None)["chapter"]["range"] == "V01-V91"
    assert icd9cm.structure("E880.1", None)["chapter"]["range"] == "E000-E999"
    # with a release, a digits-only code is read as what exists
    assert icd9cm.structure("0101", db)["kind"] == "procedure"


def test_enrich_says_replaced(db):
    rec: dict = {}
    icd9cm.enrich(rec, db.get("25000"), db)
    assert rec["replaced_on"] == "2015-10-01"
    assert any("2015-10-01" in n["text"] for n in rec["notes"])


def _copy_v32(shared_data: Path, dest: Path) -> Path:
    for f in (shared_data / "icd9cm" / "v32").iterdir():
        shutil.copy(f, dest / f.name)
    return dest


def test_short_file_missing_a_line_is_a_data_error(shared_data, tmp_path):
    d = _copy_v32(shared_data, tmp_path)
    short = d / "CMS32_DESC_SHORT_SG.txt"
    lines = short.read_bytes().splitlines(keepends=True)
    (d / "CMS32_DESC_SHORT_SG.txt").write_bytes(b"".join(lines[:-1]))  # drop the last code
    with pytest.raises(DataError, match="CMS32_DESC_SHORT_SG.txt"):
        icd9cm.plan(scan(d))[0].build()


def test_corrupt_line_is_a_data_error(shared_data, tmp_path):
    d = _copy_v32(shared_data, tmp_path)
    p = d / "CMS32_DESC_LONG_DX.txt"
    data = p.read_bytes()
    p.write_bytes(data[:500] + b"\n???? broken\n" + data[500:])
    with pytest.raises(DataError, match="CMS32_DESC_LONG_DX.txt"):
        icd9cm.plan(scan(d))[0].build()


def test_missing_partner_file(tmp_path):
    # synthetic two-line file, without its SHORT partner
    (tmp_path / "CMS32_DESC_LONG_DX.txt").write_text("0010  Synthetic title\n0011  Another\n")
    with pytest.raises(DataError, match="SHORT_DX"):
        icd9cm.plan(scan(tmp_path))
