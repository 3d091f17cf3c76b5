"""medcodes.spark on a local Spark (local[1]): the same findings as batch mode, annotations from the store.

Few and fast: one session for the module, small SYNTHETIC tables made from real codes of ../shared/data
(tests/test_claims_batch.make_table). CI installs the [spark] extra and a Java runtime (.ci/run).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

pytest.importorskip("pyspark")

from medcodes import spark as mspark  # noqa: E402
from medcodes.claims.batch import check_lines  # noqa: E402

from test_claims_batch import make_table  # noqa: E402


@pytest.fixture(scope="module")
def spark() -> Any:
    s = mspark.session("local[1]")
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def table(book: Any, tmp_path_factory: Any) -> Path:
    path = tmp_path_factory.mktemp("spark") / "claim_lines_synthetic.parquet"
    make_table(book, 600, seed=21).write_parquet(path)
    return path


def test_check_lines_on_spark_equals_the_single_machine_batch(book: Any, spark: Any, table: Path) -> None:
    df = spark.read.parquet(str(table))
    got = pl.from_arrow(mspark.check_lines(df, home=book.store.home, partitions=3).toArrow())
    want = check_lines(book, table)
    assert want.height > 500
    assert got.sort(pl.all()).equals(want.sort(pl.all()))


def test_annotate_gives_validity_billability_and_title_on_each_rows_date(book: Any, spark: Any) -> None:
    rows = [("E11.9", "2026-01-15"), ("E11", "2026-01-15"), ("Z40.89", "2025-06-15"), ("Z40.89", "2026-01-15"),
            ("NOPE", "2026-01-15")]
    df = spark.createDataFrame(rows, "dx string, service_date string")
    got = {(r["dx"], r["service_date"]): r for r in mspark.annotate(df, "dx", "icd10cm", home=book.store.home)
           .collect()}
    for code, day in rows:   # the codebook's own answer on that date (CDC order files)
        v = book.validate(code, system="icd10cm", date=dt.date.fromisoformat(day))
        r = got[code, day]
        assert r["dx_billable"] == bool(v.valid), (code, day)
    assert got["E11.9", "2026-01-15"]["dx_title"] == "Type 2 diabetes mellitus without complications"
    assert got["E11", "2026-01-15"]["dx_valid"] and not got["E11", "2026-01-15"]["dx_billable"]   # a header
    assert not got["Z40.89", "2025-06-15"]["dx_valid"]      # added 2025-10-01 (FY2026)
    assert got["Z40.89", "2026-01-15"]["dx_billable"]
    assert not got["NOPE", "2026-01-15"]["dx_valid"] and got["NOPE", "2026-01-15"]["dx_title"] is None
    hc = spark.createDataFrame([("G9572", "2019-06-01"), ("G0444", "2020-05-01")], "code string, service_date string")
    ann = {r["code"]: r for r in mspark.annotate(hc, "code", "hcpcs", home=book.store.home).collect()}
    assert not ann["G9572"]["code_valid"]                   # terminated 2016-12-31 (HCPCS file)
    assert ann["G0444"]["code_valid"] and ann["G0444"]["code_title"]


def test_cli_engine_spark_writes_the_same_findings(book: Any, spark: Any, table: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from medcodes.claims import check_command

    out = tmp_path / "findings_spark.parquet"
    res = CliRunner().invoke(check_command, ["--batch", "--engine", "spark", str(table), "--out", str(out), "--json",
                                             "--home", str(book.store.home)])
    assert res.exit_code == 1, res.output
    summary = json.loads(res.output)
    written = pl.read_parquet(out)
    assert written.sort(pl.all()).equals(check_lines(book, table).sort(pl.all()))
    assert summary["claims"] == 600 and sum(summary["findings"].values()) == written.height
