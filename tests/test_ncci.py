"""NCCI on the real CMS 2026 Q2 files (../shared/data/ncci/2026-q2): parsing, the ``ncci`` release, claims.

Every value asserted is CMS's own, read from those files: MUE tables for the practitioner,
outpatient hospital and DME supplier settings and the add-on code (AOC) edits. The claims
below are SYNTHETIC (made up for the tests) and use official codes; CPT codes appear as
codes only. The only synthetic NCCI data is the PTP fixture (the real PTP files are too
big for ../shared/data), used where a test needs PTP edits.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from medcodes.claims import Checker, Claim, check, load_ncci
from medcodes.claims.batch import NCCI_RULES, check_lines
from medcodes.claims.readers import CSV_COLUMNS, CSV_NCCI_COLUMNS
from medcodes.errors import DataError
from medcodes.sources import Source, scan
from medcodes.systems import ncci

FIX = Path(__file__).parent / "fixtures" / "claims"
DOS = "2026-05-01"          # inside NCCI 2026 Q2 (2026-04-01 .. 2026-06-30) and HCPCS 2026
PRA = "MCR_MUE_PractitionerServices_Eff_04-01-2026"
OPH = "MCR_MUE_OutpatientHospitalServices_Eff_04-01-2026.csv"
DME = "MCR_MUE_DMESupplierServices_Eff_04-01-2026.csv"
AOC = "AOC_V2026Q2-MCR.xlsx"


@pytest.fixture(scope="module")
def q2(shared_data: Path) -> Path:
    return shared_data / "ncci" / "2026-q2"


@pytest.fixture(scope="module")
def mue(q2: Path) -> dict[str, dict[str, ncci.Mue]]:
    return {name: {m.code: m for m in ncci.parse_mue(Source(q2 / name))}
            for name in (PRA + ".csv", PRA + ".xlsx", OPH, DME)}


@pytest.fixture(scope="module")
def aoc(q2: Path) -> list[ncci.AocEdit]:
    return ncci.parse_aoc(Source(q2 / AOC))


# ----------------------------------------------------------------------- the files
def test_mue_tables_row_counts_and_settings(mue: dict[str, dict[str, ncci.Mue]]) -> None:
    assert {k: len(v) for k, v in mue.items()} == {PRA + ".csv": 15095, PRA + ".xlsx": 15095, OPH: 15045, DME: 3083}
    assert {next(iter(v.values())).setting for v in mue.values()} == {"practitioner", "outpatient-hospital",
                                                                     "dme-supplier"}
    assert mue[PRA + ".csv"] == mue[PRA + ".xlsx"]        # the two forms of the practitioner table agree


def test_mue_values_from_the_real_tables(mue: dict[str, dict[str, ncci.Mue]]) -> None:
    g = mue[PRA + ".csv"]["G0444"]
    assert (g.units, g.indicator, g.rationale) == (1, "2", "CMS Policy")
    j = mue[PRA + ".csv"]["J9271"]
    assert (j.units, j.indicator, j.rationale) == (400, "3", "Prescribing Information")
    assert (mue[OPH]["G0018"].units, mue[PRA + ".csv"]["G0018"].units) == (4, 3)
    assert (mue[PRA + ".csv"]["E0110"].units, mue[DME]["E0110"].units, mue[DME]["E0110"].indicator) == (0, 1, "2")
    assert (mue[PRA + ".csv"]["A6460"].units, mue[PRA + ".csv"]["A6460"].indicator) == (1, "1")   # a line edit


def test_the_three_tables_have_their_own_headers(q2: Path) -> None:
    heads = {}
    for name in (PRA + ".csv", OPH, DME):
        with open(q2 / name, encoding="latin-1", newline="") as fh:
            rows = csv.reader(fh)
            notice = next(rows)
            heads[name] = next(rows)
        assert "American Medical Association" in notice[0]          # the AMA notice row comes first
    assert {h[0] for h in heads.values()} == {"HCPCS/\nCPT Code"}    # the header cell breaks across lines
    assert [h[1] for h in heads.values()] == ["Practitioner Services MUE Values",
                                              "Outpatient Hospital Services MUE Values",
                                              "DME Supplier Services MUE Values"]
    assert {tuple(h[2:]) for h in heads.values()} == {("MUE Adjudication Indicator", "MUE Rationale")}


def test_aoc_edits(aoc: list[ncci.AocEdit]) -> None:
    assert len(aoc) == 9000
    assert Counter(e.type for e in aoc) == {"1": 8293, "2": 47, "3": 660}
    (g,) = [e for e in aoc if e.addon == "G0018"]
    assert (g.type, g.primary, g.effective, g.deleted) == ("1", "G0017", dt.date(2024, 7, 1), None)  # 2024183
    (t2,) = [e for e in aoc if e.addon == "0054T"]
    assert (t2.type, t2.primary, t2.effective) == ("2", "CCCCC", dt.date(2013, 4, 1))              # 2013091
    assert t2.notes == "Contractor Defined Primary Codes"
    deleted = [e for e in aoc if e.addon == "0131U"]
    assert {e.deleted for e in deleted} == {dt.date(2025, 12, 31)}                                 # 2025365


def test_julian_dates() -> None:
    src = Source(Path("AOC_test.xlsx"))
    assert ncci.julian("2024183", src, 3, "d") == dt.date(2024, 7, 1)       # a leap year
    assert ncci.julian("2016366", src, 3, "d") == dt.date(2016, 12, 31)
    assert ncci.julian("2025365", src, 3, "d") == dt.date(2025, 12, 31)
    assert ncci.julian("", src, 3, "d") is None
    for bad in ("2025366", "2025000", "20250101", "abc"):
        with pytest.raises(DataError, match="AOC_test.xlsx: line 3: d .* is not a YYYYDDD date"):
            ncci.julian(bad, src, 3, "d")


def test_plan_makes_one_quarter(q2: Path) -> None:
    (p,) = ncci.plan(scan(q2))
    assert (p.system, p.release, len(p.sources)) == ("ncci", "2026-q2", 5)
    assert ncci.quarter_of(Source(Path("ccipra-v322r0-f1.txt"))) == (2026, 3, "ptp")   # SOURCES.md: Q3 = v322
    assert ncci.quarter_of(Source(Path("ccioph-v323r0-f2.txt"))) == (2026, 4, "ptp")


def test_a_damaged_table_is_one_line_error(q2: Path, tmp_path: Path) -> None:
    data = (q2 / DME).read_bytes()
    bad = tmp_path / DME
    bad.write_bytes(data.replace(b"\nE0110,1,2 Date of Service Edit: Policy", b"\nE0110,1,7 Sometimes"))
    with pytest.raises(DataError, match=f"{DME}: line \\d+: adjudication indicator '7 Sometimes'"):
        ncci.parse_mue(Source(bad))
    wrong = tmp_path / "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv"
    wrong.write_bytes(data)                    # a DME table under the practitioner file name
    with pytest.raises(DataError, match="file name says PractitionerServices"):
        ncci.parse_mue(Source(wrong))


# ----------------------------------------------------------------------- the release
def test_release_installed_and_listed(book: Any) -> None:
    (info,) = book.releases("ncci")
    assert (info.release, info.effective_from, info.effective_to) == ("2026-q2", dt.date(2026, 4, 1),
                                                                      dt.date(2026, 6, 30))
    assert info.counts == {"mue_practitioner": 15095, "mue_outpatient_hospital": 15045, "mue_dme_supplier": 3083,
                           "aoc": 9000, "aoc_type1": 8293, "aoc_type2": 47, "aoc_type3": 660, "aoc_addons": 830}
    from medcodes.cli import main

    out = CliRunner().invoke(main, ["--home", str(book.store.home), "releases"])
    assert out.exit_code == 0
    assert any(line.split()[:2] == ["ncci", "2026-q2"] and "2026-04-01 .. 2026-06-30" in line
               for line in out.output.splitlines())


def test_lookup_lists_the_primaries(book: Any) -> None:
    facts = book.lookup("G0018", date=DOS).as_dict()["ncci"]
    assert facts["add_on"]["type"] == "1" and facts["add_on"]["primaries"] == ["G0017"]
    assert facts["mue"]["practitioner"]["units"] == 3 and facts["mue"]["outpatient-hospital"]["units"] == 4
    assert book.lookup("G0017", date=DOS).as_dict()["ncci"]["primary_for"] == ["G0018"]
    from medcodes.cli import main

    # a CPT add-on code without a licensed CPT file: the NCCI facts, codes only
    out = CliRunner().invoke(main, ["--home", str(book.store.home), "lookup", "99292", "--date", DOS])
    assert out.exit_code == 0 and "primary codes (1): 99291" in out.output


# ----------------------------------------------------------------------- claims (SYNTHETIC, official codes)
def claim(lines: list[dict[str, Any]], **kw: Any) -> Claim:
    data: dict[str, Any] = {"id": "SYN", "type": "professional", "service_date": DOS,
                            "patient": {"sex": "F", "birth_date": "1960-04-02"}, "diagnoses": ["I10"],
                            "lines": [{"diagnosis_pointers": [1], **x} for x in lines]}
    data.update(kw)
    return Claim.from_dict(copy.deepcopy(data))


def ncci_of(book: Any, c: Claim, edits: Any = None) -> list[Any]:
    return [f for f in check(book, c, edits).findings if f.rule.startswith("ncci-")]


def test_add_on_without_its_primary(book: Any) -> None:
    (f,) = ncci_of(book, claim([{"code": "G0018"}]))
    assert (f.rule, f.severity, f.location) == ("ncci-add-on", "error", "lines[0]")
    assert "G0017" in f.message and "type 1" in f.source
    assert ncci_of(book, claim([{"code": "G0017"}, {"code": "G0018"}])) == []
    res = check(book, claim([{"code": "G0017"}, {"code": "G0018"}]))
    assert res.releases["ncci"] == "2026-q2"
    # same date of service and same provider, or it does not count
    assert ncci_of(book, claim([{"code": "G0017", "date": "2026-05-02"}, {"code": "G0018"}]))[0].rule == "ncci-add-on"
    assert ncci_of(book, claim([{"code": "G0017", "provider": "1234567893"}, {"code": "G0018"}],
                               provider="1003000126"))[0].rule == "ncci-add-on"
    assert ncci_of(book, claim([{"code": "G0017"}, {"code": "G0018"}], provider="1003000126")) == []
    # 0131U's edits were deleted 2025-12-31 (AOC_Edit_DelDT 2025365): not applied on 2026-05-01
    assert ncci_of(book, claim([{"code": "0131U"}])) == []


def test_type_2_add_on_leaves_the_primary_to_the_payer(book: Any) -> None:
    (alone,) = ncci_of(book, claim([{"code": "0054T"}]))
    assert alone.severity == "warning" and "payer" in alone.message and "type 2" in alone.message
    (other,) = ncci_of(book, claim([{"code": "G0017"}, {"code": "0054T"}]))
    assert other.severity == "info" and "payer" in other.message


def test_mue_date_of_service_edit(book: Any) -> None:
    (f,) = ncci_of(book, claim([{"code": "G0444", "units": 2}]))
    assert f.message.startswith("G0444: 2 units on 2026-05-01, MUE 1 (date of service edit, policy: CMS Policy)")
    assert f.location == "lines[0].units" and "Practitioner Services" in f.source
    (two,) = ncci_of(book, claim([{"code": "G0444"}, {"code": "G0444"}]))    # indicator 2: added across lines
    assert two.message.startswith("G0444: 2 units on 2026-05-01")
    assert ncci_of(book, claim([{"code": "G0444"}])) == []
    assert ncci_of(book, claim([{"code": "J9271", "units": 400}])) == []
    (j,) = ncci_of(book, claim([{"code": "J9271", "units": 300}, {"code": "J9271", "units": 101}]))
    assert j.message.startswith("J9271: 401 units on 2026-05-01, MUE 400 (date of service edit, clinical: "
                                "Prescribing Information)")


def test_mue_line_edit(book: Any) -> None:
    (f,) = ncci_of(book, claim([{"code": "A6460", "units": 2}]))
    assert f.message.startswith("A6460: 2 units on one line, MUE 1 (line edit: Clinical: CMS Workgroup)")
    assert ncci_of(book, claim([{"code": "A6460"}, {"code": "A6460"}])) == []   # indicator 1: per line


def test_mue_by_setting(book: Any) -> None:
    assert ncci_of(book, claim([{"code": "G0017"}, {"code": "G0018", "units": 4}]))[0].rule == "ncci-mue"
    assert ncci_of(book, claim([{"code": "G0017"}, {"code": "G0018", "units": 4}], type="institutional")) == []
    (e,) = ncci_of(book, claim([{"code": "E0110"}]))              # practitioner MUE 0
    assert "MUE 0" in e.message and "DME Supplier Services MUE is 1" in e.message
    assert ncci_of(book, claim([{"code": "E0110"}], setting="dme-supplier")) == []
    assert ncci_of(book, claim([{"code": "E0110", "units": 2}], setting="dme-supplier"))[0].rule == "ncci-mue"
    assert ncci_of(book, claim([{"code": "G0018", "units": 9}], type="institutional", setting="inpatient")) == []


def test_a_date_no_quarter_covers_is_said_once(book: Any) -> None:
    c = claim([{"code": "G0444", "units": 2}, {"code": "G0018", "date": "2026-08-02"}], service_date="2026-08-01")
    (f,) = ncci_of(book, c)
    assert f.rule == "ncci-unchecked" and "2026-08-01, 2026-08-02" in f.message
    mixed = ncci_of(book, claim([{"code": "G0444", "units": 2}, {"code": "G0444", "date": "2026-07-01"}]))
    assert [x.rule for x in mixed] == ["ncci-mue", "ncci-unchecked"]


def test_a_users_own_files_replace_the_installed_quarter(book: Any, q2: Path) -> None:
    edits = load_ncci([q2 / AOC])          # the AOC file alone: its edits carry their own dates
    assert [f.rule for f in ncci_of(book, claim([{"code": "0131U"}], service_date="2025-06-01"), edits)] == \
        ["ncci-add-on"]
    # 0131U's edits (and the code) were deleted 2025-12-31: they do not apply after
    assert ncci_of(book, claim([{"code": "0131U"}]), edits) == []
    assert ncci_of(book, claim([{"code": "G0444", "units": 2}]), edits) == []     # no MUE table given
    from medcodes.claims import check_command

    ptp = str(FIX / "ptp_synthetic_ccipra-v000r0-f1.txt")  # SYNTHETIC PTP edits
    path = Path(book.store.home) / "ncci_claim_synthetic.json"
    path.write_text(json.dumps(claim([{"code": "G0402"}, {"code": "G0444"}]).as_dict()))
    out = CliRunner().invoke(check_command, [str(path), "--ncci", ptp, "--json", "--home", str(book.store.home)])
    assert out.exit_code == 1 and "ncci-ptp" in {f["rule"] for f in json.loads(out.output)[0]["findings"]}


def test_large_claim_is_checked_line_by_line(book: Any) -> None:
    # 3,000 lines (issue 9 item 12: the pairwise loop took seconds); every G0444 unit adds up on its date
    lines = [{"code": "G0444"} for _ in range(1500)] + [{"code": "G0017"}, {"code": "G0018"}] * 750
    got = [(f.rule, f.codes, f.message.split(",")[0]) for f in ncci_of(book, claim(lines))]
    assert got == [("ncci-mue", ("G0444",), "G0444: 1500 units on 2026-05-01"),     # MUE 1
                   ("ncci-mue", ("G0017",), "G0017: 750 units on 2026-05-01"),      # MUE 1
                   ("ncci-mue", ("G0018",), "G0018: 750 units on 2026-05-01")]      # MUE 3


# ----------------------------------------------------------------------- batch == per claim
def _table(seed: int, n: int) -> pl.DataFrame:
    """A SYNTHETIC claim-lines table over NCCI codes of the real tables, dates in and out of the quarter."""
    rnd = random.Random(seed)
    codes = ["G0444", "G0017", "G0018", "J9271", "E0110", "A6460", "0054T", "99291", "99292", "G0402", "G0438",
             "G0439", "36415", "G0513", "G0514", "J1100"]
    rows = []
    for i in range(n):
        ctype = rnd.choice(["professional"] * 3 + ["institutional"])
        setting = rnd.choice(["", "", "dme-supplier"] if ctype == "professional" else ["", "", "inpatient"])
        day = rnd.choice(["2026-04-01", "2026-05-01", "2026-06-30", "2026-07-01", "2026-03-31"])
        prov = rnd.choice(["", "1003000126"])
        for _ in range(rnd.randint(1, 6)):
            rows.append([f"SYN-{i}", ctype, "F", "1960-04-02", day, "I10", "", rnd.choice(codes),
                         rnd.choice(["", "", "59", "25"]), rnd.choice(["1", "1", "2", "3", "400", "401"]), "1",
                         rnd.choice(["", "", "2026-05-02"]), "", setting, prov,
                         rnd.choice(["", "", "", "1234567893"])])
    return pl.DataFrame(rows, schema=list(CSV_COLUMNS + CSV_NCCI_COLUMNS), orient="row")


def _compare(book: Any, path: Path, ck: Checker) -> Counter:
    from medcodes.claims.readers import read_csv

    want: Counter = Counter()
    for c in read_csv(path):
        for f in ck.check(c).findings:
            if f.rule in NCCI_RULES:
                want[c.id, f.rule, f.severity, f.location, ";".join(f.codes), f.message, f.source] += 1
    got = check_lines(book, path, ck).filter(pl.col("rule").is_in(list(NCCI_RULES)))
    have = Counter(got.select("claim_id", "rule", "severity", "location", "codes", "message",
                              "source").iter_rows())
    assert have == want
    return want


def test_batch_applies_the_same_ncci_edits(book: Any, tmp_path: Path) -> None:
    path = tmp_path / "ncci_lines_synthetic.csv"
    _table(3, 600).write_csv(path)
    want = _compare(book, path, Checker(book))
    assert {k[1] for k in want} == {"ncci-mue", "ncci-add-on", "ncci-unchecked"}
    # with a user's PTP file (SYNTHETIC) too
    ptp = _compare(book, path, Checker(book, load_ncci([FIX / "ptp_synthetic_ccipra-v000r0-f1.txt"])))
    assert "ncci-ptp" in {k[1] for k in ptp}


def test_batch_mue_joins_give_the_per_claim_findings_in_order(book: Any, tmp_path: Path) -> None:
    """Claims with no add-on code run the MUE edits as joins in batch mode: the same findings, texts and
    order as the per-claim rule, over several dates and providers per claim, indicator 1 (A6460, one line;
    Practitioner MUE 2026 Q2) and per-date totals (J1100: indicator 3; 0001U: 2), and lines on dates no
    installed quarter covers (the note comes last)."""
    ck = Checker(book)
    edits = ck.ncci_on(dt.date(2026, 5, 1))
    assert edits is not None
    pra = edits.mue["practitioner"]
    assert (pra["A6460"].indicator, pra["J1100"].indicator, pra["0001U"].indicator) == ("1", "3", "2")
    rnd = random.Random(12)
    rows = []
    for i in range(400):
        day = rnd.choice(["2026-05-01", "2026-06-30", "2026-07-01"])
        for _ in range(rnd.randint(1, 6)):
            rows.append([f"SYN-{i}", "professional", "F", "1960-04-02", day, "I10", "",
                         rnd.choice(["A6460", "J1100", "0001U", "G0444", "E0110"]), "",
                         rnd.choice(["1", "2", "3", "400", "401"]), "1",
                         rnd.choice(["", "", "2026-05-02", "2026-03-31"]), "", "", "",
                         rnd.choice(["", "", "1234567893"])])
    path = tmp_path / "mue_lines_synthetic.csv"
    pl.DataFrame(rows, schema=list(CSV_COLUMNS + CSV_NCCI_COLUMNS), orient="row").write_csv(path)
    from medcodes.claims.readers import read_csv

    want = [(c.id, f.rule, f.severity, f.location, ";".join(f.codes), f.message, f.source)
            for c in read_csv(path) for f in ck.check(c).findings if f.rule in NCCI_RULES]
    got = check_lines(book, path, ck).filter(pl.col("rule").is_in(list(NCCI_RULES)))
    assert list(got.select("claim_id", "rule", "severity", "location", "codes", "message", "source")
                .iter_rows()) == want
    messages = " ".join(w[5] for w in want)
    assert "on one line" in messages and "on 2026-05-02" in messages and "ncci-unchecked" in {w[1] for w in want}


def test_ptp_files_pulled_with_a_quarter_apply_from_the_store(q2: Path, tmp_path: Path) -> None:
    """PTP edits installed with the quarter are read from its SQLite table per column 2 code. The PTP file is
    the SYNTHETIC fixture under a 2026 Q2 name (v321; kept in tmp_path only): no real PTP file is available."""
    import shutil

    from medcodes import Codebook
    from medcodes.releases import pull_from_dir
    from medcodes.store import Store

    src = tmp_path / "files"
    shutil.copytree(q2, src)
    shutil.copy(FIX / "ptp_synthetic_ccipra-v000r0-f1.txt", src / "ccipra-v321r0-f1.txt")
    home = tmp_path / "home"
    rep = pull_from_dir(Store(home), src, systems={"ncci"}, jobs=1)
    assert [(s, r) for s, r, _c in rep.installed] == [("ncci", "2026-q2")]
    with Codebook.open(home, embedded=False) as cb:
        (info,) = cb.releases("ncci")
        assert info.counts["ptp_practitioner"] == 4 and info.counts["aoc"] == 9000
        found = ncci_of(cb, claim([{"code": "G0402"}, {"code": "G0444"}]))
        assert [(f.rule, f.codes, f.location) for f in found] == [("ncci-ptp", ("G0402", "G0444"), "lines[1]")]
        assert ncci_of(cb, claim([{"code": "G0438"}, {"code": "G0444", "modifiers": ["59"]}])) == []
        # an outpatient hospital claim: the practitioner PTP file does not apply
        assert ncci_of(cb, claim([{"code": "G0402"}, {"code": "G0444"}], type="institutional")) == []


def test_a_quarter_without_an_add_on_file_uses_the_newest_earlier_one(q2: Path, tmp_path: Path) -> None:
    """CMS publishes an AOC file only when the edits change. A 2026 Q3 made of the Q2 MUE tables under Q3
    names (DERIVED copies in tmp_path only: no real Q3 files are available) has no AOC file."""
    import shutil

    from medcodes import Codebook
    from medcodes.releases import pull_from_dir
    from medcodes.store import Store

    src = tmp_path / "files"
    shutil.copytree(q2, src)
    for name in (PRA + ".csv", OPH, DME):
        shutil.copy(q2 / name, src / name.replace("04-01-2026", "07-01-2026"))
    home = tmp_path / "home"
    pull_from_dir(Store(home), src, systems={"ncci"}, jobs=1)
    with Codebook.open(home, embedded=False) as cb:
        assert [(i.release, i.counts.get("aoc")) for i in cb.releases("ncci")] == [("2026-q2", 9000),
                                                                                  ("2026-q3", None)]
        (f,) = ncci_of(cb, claim([{"code": "G0018"}], service_date="2026-08-03"))
        assert f.rule == "ncci-add-on" and "NCCI 2026 Q2 (Medicare): the newest add-on code file" in f.source
        (m,) = ncci_of(cb, claim([{"code": "G0444", "units": 2}], service_date="2026-08-03"))
        assert "NCCI 2026 Q3 (Medicare)" in m.source
        facts = cb.ncci("G0018", "2026-08-03")
        assert facts["release"] == "2026-q3" and facts["add_on"]["primaries"] == ["G0017"]
        assert facts["add_on"]["from_release"] == "2026-q2"


def test_a_setting_the_claim_type_does_not_allow_is_refused(book: Any, tmp_path: Path) -> None:
    from medcodes.claims import ClaimFormatError

    with pytest.raises(ClaimFormatError, match="'setting' of professional claims is one of practitioner, "
                                               "dme-supplier, not 'inpatient'"):
        claim([{"code": "G0444"}], setting="inpatient")
    path = tmp_path / "bad_setting_synthetic.csv"
    pl.DataFrame([["X1", "institutional", "F", "", DOS, "I10", "", "G0444", "", "1", "1", "", "", "dme-supplier",
                   "", ""]], schema=list(CSV_COLUMNS + CSV_NCCI_COLUMNS), orient="row").write_csv(path)
    with pytest.raises(ClaimFormatError,
                       match="row 2: setting of institutional claims must be one of outpatient-hospital, inpatient"):
        check_lines(book, path)
