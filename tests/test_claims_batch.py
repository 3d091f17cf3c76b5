"""Batch mode (medcodes.claims.batch): the same findings as the per-claim checker, from vectorised joins.

The claim-lines tables here are SYNTHETIC: generated in the test from real codes of the official files in
../shared/data (read back from the store), with synthetic claim ids, patients and dates. Nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from medcodes.claims import check
from medcodes.claims.batch import BATCH_RULES, check_lines, check_table, summary
from medcodes.claims.model import ClaimFormatError
from medcodes.claims.readers import CSV_COLUMNS, CSV_OPTIONAL_COLUMNS, read_csv

FIX = Path(__file__).parent / "fixtures" / "claims"
D_HCPCS = dt.date(2020, 5, 1)      # HCPCS 2020-04 in effect
D_ICD = dt.date(2026, 1, 15)       # ICD-10-CM / ICD-10-PCS FY2026 in effect


# codes that trigger the rules (each named in tests/test_claims.py with the file that says so)
DX_SPECIAL = ["E11.6", "E11.99", "S52.501", "S52.501Z", "S01.00A", "S30.1XXA", "G0444", "25000", "O03.9",
              "Z38.00", "P29.2", "C61", "W19.XXXA", "G63", "E11.40", "E10.9", "E11.9", "N18.1", "E11.22", "R51.9",
              "G43.909", "O09.521", "I10", "e11.9", "B95.0", "Z3A.01", "Z00.110", "C91.50", "Z00.129", "R40.2242"]
LINE_SPECIAL = ["G9999", "D0120", "3074F", "99213", "0DTJ4ZZ", "ABC", "G9572", "G0299", "0DTJ4Z9", "g0444",
                "J3490", "A4335"]   # NOC codes (NOC codes_JAN2026.xlsx): a warning without description or NDC
MOD_SPECIAL = ["Z9", "50", "LT", "RT", "59", "X"]
DATES = [D_HCPCS, D_ICD, dt.date(2019, 6, 1), dt.date(2015, 12, 1), dt.date(2016, 6, 1), dt.date(2015, 1, 25)]


# rules that only fire when a code system has no release installed (test_partial_stores)
NEED_MISSING_SYSTEM = {"dx-unchecked", "pcs-unchecked", "line-hcpcs-unchecked", "modifier-unchecked"}


def _every(conn: Any, sql: str, step: int) -> list[str]:
    return [r[0] for r in conn.execute(sql).fetchall()][::step]


def make_table(book: Any, n_claims: int, seed: int) -> pl.DataFrame:
    """A SYNTHETIC claim-lines table in the CSV layout, from real codes of the installed releases."""
    rnd = random.Random(seed)
    dx = _every(book.db("icd10cm", D_ICD).conn, "SELECT code FROM concept WHERE kind IN ('code','category') "
                "ORDER BY seq", 250) + DX_SPECIAL
    hc = book.db("hcpcs", D_HCPCS).conn
    codes = _every(hc, "SELECT code FROM concept WHERE kind='code' ORDER BY seq", 40) + LINE_SPECIAL
    mods = _every(hc, "SELECT code FROM concept WHERE kind='modifier' ORDER BY seq", 10) + MOD_SPECIAL
    rows = []
    for i in range(n_claims):
        day = rnd.choice(DATES)
        nd = rnd.randint(0, 4)
        dxs = ";".join(rnd.choice(dx) for _ in range(nd))
        claim = [f"SYN-{i}", rnd.choice(["professional"] * 4 + ["institutional"]), rnd.choice("FMU"),
                 rnd.choice(["1950-06-01", "2004-01-01", day.isoformat(), (day - dt.timedelta(days=40)).isoformat(),
                             ""]), day.isoformat(), dxs, rnd.choice(["", "", "", "0DTJ4ZZ", "0DTJ4Z9;0DT"])]
        n_lines = rnd.randint(0, 3)
        if not n_lines:
            rows.append(claim + [""] * 8)
        for _ in range(n_lines):
            ptrs = ";".join(str(rnd.randint(0, nd + 1)) for _ in range(rnd.choice([0, 1, 1, 2])))
            rows.append(claim + [rnd.choice(codes), ";".join(rnd.sample(mods, rnd.choice([0, 0, 1, 2, 3]))),
                                 rnd.choice(["1", "1", "2", "0", "-1", "1.5"]), ptrs,
                                 rnd.choice(["", "", day.isoformat(), "2020-07-15"]),
                                 rnd.choice(["", "0", "25.00", "0.01"]),
                                 rnd.choice(["", "", "synthetic narrative"]), rnd.choice(["", "", "", "00000000000"])])
    return pl.DataFrame(rows, schema=list(CSV_COLUMNS + CSV_OPTIONAL_COLUMNS), orient="row")


def per_claim(book: Any, path: Path) -> Counter:
    out: Counter = Counter()
    for claim in read_csv(path):
        for f in check(book, claim).findings:
            if f.rule in BATCH_RULES:
                out[claim.id, f.rule, f.severity, f.location, ";".join(f.codes), f.message, f.source] += 1
    return out


def batch(findings: pl.DataFrame) -> Counter:
    return Counter(findings.select("claim_id", "rule", "severity", "location", "codes", "message",
                                   "source").iter_rows())


def test_batch_agrees_with_the_per_claim_checker(book: Any, tmp_path: Path) -> None:
    path = tmp_path / "claim_lines_synthetic.csv"
    make_table(book, 2000, seed=11).write_csv(path)
    want = per_claim(book, path)
    got = batch(check_lines(book, path))
    assert got - want == Counter() and want - got == Counter()
    # every rule batch mode covers is exercised by this table (the NCCI edits of the 2026 Q2 quarter:
    # by tests/test_ncci.py::test_batch_applies_the_same_ncci_edits; here lines get ncci-unchecked); the
    # "unchecked" rules need a store without a system (test_partial_stores_...)
    assert {k[1] for k in want} == set(BATCH_RULES) - {"ncci-mue", "ncci-add-on", "ncci-ptp"} - NEED_MISSING_SYSTEM
    assert sum(want.values()) > 4000


def test_parquet_with_list_and_date_columns_gives_the_same_findings(book: Any, tmp_path: Path) -> None:
    table = make_table(book, 400, seed=5)
    csv_path = tmp_path / "lines_synthetic.csv"
    table.write_csv(csv_path)
    typed = table.with_columns(
        *(pl.col(c).str.split(";").list.eval(pl.element().filter(pl.element() != "")) for c in
          ("diagnoses", "procedures", "modifiers")),
        pl.col("diagnosis_pointers").str.split(";").list.eval(pl.element().filter(pl.element() != "")
                                                                 .cast(pl.Int64)),
        *(pl.col(c).replace("", None).str.to_date() for c in ("service_date", "patient_birth_date", "line_date")),
        pl.col("units").replace("", None).cast(pl.Float64), pl.col("charge").replace("", None).cast(pl.Float64))
    pq = tmp_path / "lines_synthetic.parquet"
    typed.write_parquet(pq)
    a, b = check_lines(book, csv_path), check_lines(book, pq)
    assert a.height > 500 and a.equals(b)


def test_known_findings_on_official_codes(book: Any) -> None:
    rows = [  # SYNTHETIC claims; codes and dates as in tests/test_claims.py
        ["S1", "professional", "F", "1960-04-02", "2026-01-15", "E11.6;E10.9;E11.9", "", "", "", "", "", "", ""],
        ["S2", "professional", "M", "1980-01-01", "2019-06-01", "I10", "", "G9572", "50;LT", "0", "1;3", "", ""],
        ["S3", "professional", "F", "1960-04-02", "2020-05-01", "I10", "", "G0444", "", "1", "1", "", "0"],
    ]
    out = check_lines(book, pl.DataFrame(rows, schema=list(CSV_COLUMNS), orient="row"))
    got = {(r["claim_id"], r["rule"], r["location"]) for r in out.iter_rows(named=True)}
    assert ("S1", "dx-header", "diagnoses[0]") in got
    assert ("S1", "dx-excludes1", "diagnoses[2]") in got           # E10.9 with E11.9 (Excludes1 at E11)
    assert ("S2", "hcpcs-terminated", "lines[0].code") in got        # G9572 terminated 2016-12-31
    assert ("S2", "modifier-bilateral-conflict", "lines[0].modifiers[1]") in got
    assert ("S2", "line-units", "lines[0].units") in got
    assert ("S2", "line-diagnosis-pointer", "lines[0].diagnosis_pointers[1]") in got
    # no FY2020 ICD-10-CM release is installed: I10 is reported as checked against the nearest (info);
    # no NCCI quarter covers 2020 either
    assert {r for r in got if r[0] == "S3"} == {("S3", "dx-release-gap", "diagnoses[0]"),
                                                ("S3", "ncci-unchecked", "lines")}
    term = out.filter(pl.col("rule") == "hcpcs-terminated")["message"][0]
    assert "2016-12-31" in term


def test_fixture_csv_is_clean_in_both_modes(book: Any) -> None:
    # nothing but the note that no installed NCCI quarter covers their dates
    assert set(check_lines(book, FIX / "claims_synthetic.csv")["rule"]) <= {"ncci-unchecked"}
    assert all(check(book, c).ok for c in read_csv(FIX / "claims_synthetic.csv"))


def test_bad_cells_name_the_file_and_row(book: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad_synthetic.csv"
    bad.write_text("claim_id,service_date,diagnoses,line_code,units\nA,2026-01-15,I10,G0444,1\n"
                   "B,2026-01-15,I10,G0444,lots\n")
    with pytest.raises(ClaimFormatError, match=r"bad_synthetic.csv: row 3: units"):
        check_lines(book, bad)
    nodate = tmp_path / "nodate_synthetic.csv"
    nodate.write_text("claim_id,diagnoses\nA,I10\n")
    with pytest.raises(ClaimFormatError, match="missing column"):
        check_lines(book, nodate)


def test_cli_batch_summary_and_out(book: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from medcodes.claims import check_command

    path = tmp_path / "claim_lines_synthetic.csv"
    make_table(book, 300, seed=3).write_csv(path)
    home = str(Path(book.store.home))
    runner = CliRunner()
    res = runner.invoke(check_command, ["--batch", str(path), "--home", home])
    assert res.exit_code == 1, res.output
    assert "300 claims" in res.output and "dx-header" in res.output
    assert "SYN-" not in res.output          # the summary names no claim
    out = tmp_path / "findings.parquet"
    res = runner.invoke(check_command, ["--batch", str(path), "--out", str(out), "--json", "--home", home])
    summary = json.loads(res.output)
    written = pl.read_parquet(out)
    assert summary["claims"] == 300 and written.height == sum(summary["findings"].values())
    assert written.equals(check_table(book, path).findings)
    csv_out = tmp_path / "findings.csv"
    runner.invoke(check_command, ["--batch", str(path), "--out", str(csv_out), "--home", home])
    assert pl.read_csv(csv_out).height == written.height
    clean = runner.invoke(check_command, ["--batch", str(FIX / "claims_synthetic.csv"), "--home", home])
    assert clean.exit_code == 0, clean.output


def test_medcodes_check_batch_through_the_main_cli(book: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "claim_lines_synthetic.csv"
    pl.DataFrame([["S1", "professional", "F", "1960-04-02", "2026-01-15", "E11.6", "", "", "", "", "", "", ""]],
                 schema=list(CSV_COLUMNS), orient="row").write_csv(path)
    env = {**os.environ, "MEDCODES_HOME": str(Path(book.store.home))}
    res = subprocess.run([sys.executable, "-m", "medcodes.cli", "check", "--batch", "--json", str(path)], env=env,
                         capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    assert json.loads(res.stdout)["rules"] == {"dx-header (error)": 1}


# ---------------------------------------------------------------------- realistic lines, streaming, one rule set
def _claimgen() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("claimgen", Path(__file__).parents[1] / "benchmarks" / "claimgen.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture(scope="module")
def realistic(book: Any, tmp_path_factory: Any) -> Path:
    """SYNTHETIC claim lines from benchmarks/claimgen.py: Zipf over all FY2026 billable ICD-10-CM codes and all
    HCPCS codes, dates over FY2025-FY2026 (three ICD-10-CM releases)."""
    path = tmp_path_factory.mktemp("realistic") / "realistic_synthetic.parquet"
    _claimgen().write(book, 6000, parquet=path, seed=3)
    return path


def test_realistic_lines_batch_equals_per_claim(book: Any, realistic: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "realistic_synthetic.csv"
    pl.read_parquet(realistic).write_csv(csv_path)
    want = per_claim(book, csv_path)
    got = batch(check_lines(book, realistic))
    assert got - want == Counter() and want - got == Counter()
    rules = {k[1] for k in want}
    # a realistic file meets codes new in FY2026 on FY2025 dates ("not yet valid"), terminated HCPCS codes, sex
    # and age facts...
    assert {"dx-not-valid-on-date", "hcpcs-terminated", "dx-sex-conflict", "dx-excludes1"} <= rules
    days = pl.read_parquet(realistic)["service_date"].str.to_date()
    assert {book.release_covering("icd10cm", d)[0].release for d in (days.min(), days.max())} >= {"2025", "2026-04"}


def test_streaming_in_small_chunks_gives_the_same_findings(book: Any, realistic: Path, tmp_path: Path) -> None:
    from medcodes.claims.batch import check_file

    whole = check_table(book, realistic)
    out = tmp_path / "findings.parquet"
    seen: list[int] = []
    totals = check_file(book, realistic, out, chunk_rows=700, progress=seen.append)
    assert len(seen) > 5 and sum(seen) == pl.read_parquet(realistic).height     # many chunks, every row once
    written = pl.read_parquet(out)
    assert written.sort(pl.all()).equals(whole.findings.sort(pl.all()))
    assert totals.claims == whole.claims and totals.lines == whole.lines
    assert totals.summary()["rules"] == summary(whole.findings)["rules"]
    csv_out = tmp_path / "findings.csv"
    check_file(book, realistic, csv_out, chunk_rows=1000)
    assert pl.read_csv(csv_out, infer_schema=False).height == whole.findings.height


def test_a_failed_stream_leaves_no_findings_file(book: Any, tmp_path: Path) -> None:
    from medcodes.claims.batch import check_file

    bad = tmp_path / "bad_synthetic.csv"
    bad.write_text("claim_id,service_date,diagnoses,line_code,units\nA,2026-01-15,I10,G0444,1\n"
                   "B,2026-01-15,I10,G0444,lots\n")
    out = tmp_path / "out.parquet"
    with pytest.raises(ClaimFormatError, match=r"bad_synthetic.csv: row 3: units"):
        check_file(book, bad, out, chunk_rows=1)
    assert not out.exists() and not list(tmp_path.glob(".out.parquet*"))


def test_a_claim_spread_over_the_file_is_refused_when_streaming_in_chunks(book: Any, tmp_path: Path) -> None:
    """SYNTHETIC lines; a claim whose lines are not together would be checked as two claims chunk by chunk."""
    from medcodes.claims.batch import check_file, scattered_claims

    head = "claim_id,service_date,diagnoses,line_code,units\n"
    rows = ["A,2026-01-15,I10,G0444,1", "B,2026-01-15,I10,G0444,1", "A,2026-01-15,I10,G0299,1"]
    for suffix in (".csv", ".parquet"):
        spread = tmp_path / f"spread_synthetic{suffix}"
        frame = pl.read_csv((head + "\n".join(rows) + "\n").encode(), infer_schema=False)
        frame.write_csv(spread) if suffix == ".csv" else frame.write_parquet(spread)
        assert scattered_claims(spread) == (3, 1)
        out = tmp_path / f"out{suffix}.parquet"
        refused = rf"spread_synthetic{suffix}: the lines of 1 claim\(s\) are not next"
        with pytest.raises(ClaimFormatError, match=refused):
            check_file(book, spread, out, chunk_rows=1)
        assert not out.exists()
        # in one chunk (or in memory) the claim's lines are found wherever they are
        one = check_file(book, spread, out, chunk_rows=100)
        assert one.claims == 2 and one.lines == 3
        if suffix == ".csv":
            assert batch(check_lines(book, spread)) == per_claim(book, spread)
        together = tmp_path / f"together_synthetic{suffix}"
        frame = frame.sort("claim_id", maintain_order=True)
        frame.write_csv(together) if suffix == ".csv" else frame.write_parquet(together)
        assert scattered_claims(together) == (3, 0)
        assert check_file(book, together, chunk_rows=1).claims == 2


def test_the_pass_before_the_chunks_leaves_bad_cells_to_the_reader(book: Any, tmp_path: Path) -> None:
    """SYNTHETIC lines. Streaming in chunks first reads the file once (are the claims' lines together? which dates
    of service, so their ICD-10-CM facts load before the first chunk): that pass tells a bad file nothing else
    than one chunk would."""
    import datetime as dt

    from medcodes.claims.batch import _scan, check_file

    cases = {
        "no_date_synthetic.csv": ("claim_id,diagnoses,line_code\nA,I10,G0444\nB,I10,G0444\n",
                                  r"no_date_synthetic.csv: missing column\(s\) service_date"),
        "bad_date_synthetic.csv": ("claim_id,service_date,diagnoses,line_code\nA,2026-01-15,I10,G0444\n"
                                   "B,2026-13-40,I10,G0444\n",
                                   r"bad_date_synthetic.csv: row 3: service_date is not a date"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        for chunk_rows in (1, 100):    # chunks (the pass runs first), one chunk
            with pytest.raises(ClaimFormatError, match=message):
                check_file(book, path, tmp_path / "out.parquet", chunk_rows=chunk_rows)
    assert _scan(tmp_path / "bad_date_synthetic.csv")[2].to_list() == [dt.date(2026, 1, 15)]
    assert _scan(tmp_path / "no_date_synthetic.csv")[:2] == (2, 0)


def test_diagnosis_strings_are_numbered_once_and_kept_between_chunks(book: Any) -> None:
    """Batch numbers each distinct diagnosis string once (a private categorical mapping) and keeps its key by
    that number for the next chunks: the numbers must survive between chunks (Polars drops a mapping no data
    uses) and give back each string's own key. E11.9 (type 2 diabetes mellitus without complications) is
    met in three spellings, S52.501A and I10 in two: one key number each."""
    import gc

    from medcodes.claims.batch import _Tables
    from medcodes.claims.check import checker
    from medcodes.model import normalize_key

    tabs = _Tables(checker(book))
    first = pl.Series(["E11.9", " e11.9 ", "S52.501A", "I10"])
    got_first = tabs.dx_strings(first)
    gc.collect()
    second = pl.Series(["Z00.00", "i10", "E119", "S52.501A", "I10"])
    got_second = tabs.dx_strings(second)
    kids: dict[str, set[int]] = {}
    for strings, got in ((first, got_first), (second, got_second)):
        assert got["raw"].to_list() == [s.strip() for s in strings]
        assert got["key"].to_list() == [normalize_key(s) for s in strings]
        for key, kid in zip(got["key"], got["kid"]):
            kids.setdefault(key, set()).add(kid)
    assert set(kids) == {"E119", "S52501A", "I10", "Z0000"}
    assert all(len(k) == 1 for k in kids.values()) and len(set().union(*kids.values())) == 4
    assert got_second["ph"][3] == got_first["ph"][2] and got_second["ph"][4] == got_first["ph"][3]   # met before


def test_every_rule_is_defined_once_for_both_engines() -> None:
    import importlib

    from medcodes.claims import rules

    check_mod = importlib.import_module("medcodes.claims.check")

    # the per-claim checker and batch mode read the same Rule objects
    assert set(BATCH_RULES) == {r.id for r in rules.TABLE_RULES} | set(rules.NCCI_RULES)
    assert set(rules.RULES) == set(BATCH_RULES) | set(rules.CLAIM_RULES)
    assert check_mod.BY_SCOPE is rules.BY_SCOPE
    src = (Path(check_mod.__file__).read_text() + Path(check_mod.__file__).with_name("batch.py").read_text())
    for rule_id in {r.id for r in rules.TABLE_RULES}:   # no table rule's id is spelled out in either engine
        assert f'"{rule_id}"' not in src, rule_id


@pytest.mark.parametrize("systems", [("hcpcs",), ("icd10cm", "icd10pcs")])
def test_partial_stores_say_what_was_not_checked_in_both_modes(book: Any, tmp_path: Path, systems: tuple) -> None:
    """A store with some code systems only: the codes of the others are named as unchecked, per claim and in batch."""
    from medcodes import Codebook

    real = Path(book.store.home)
    home = tmp_path / "partial"
    (home / "store").mkdir(parents=True)
    for system in systems:
        (home / "store" / system).symlink_to(real / "store" / system)
    if (real / "facts").is_dir():
        (home / "facts").symlink_to(real / "facts")
    path = tmp_path / "claim_lines_synthetic.csv"
    make_table(book, 300, seed=17).write_csv(path)
    part = Codebook.open(home=home, embedded=False)
    try:
        want = per_claim(part, path)
        got = batch(check_lines(part, path))
    finally:
        part.close()
    assert got - want == Counter() and want - got == Counter()
    said = {k[1] for k in want}
    if "hcpcs" in systems:
        assert {"dx-unchecked", "pcs-unchecked"} <= said and not said & {"line-hcpcs-unchecked", "modifier-unchecked"}
    else:
        assert {"line-hcpcs-unchecked", "modifier-unchecked"} <= said and not said & {"dx-unchecked", "pcs-unchecked"}
