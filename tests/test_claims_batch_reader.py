"""Batch reader (medcodes.claims.batch.read_lines): the cells read as the per-claim CSV reader reads them, whichever
way a chunk is read (list columns split on ";" when no cell needs the pattern; optional columns without a value in
any cell taken as empty). The tables are SYNTHETIC (ids, dates); the codes are real (ICD-10-CM E11.9, I10;
HCPCS G0444 and modifier LT), only read, not checked: no store is needed."""

from __future__ import annotations

import datetime as dt

import polars as pl

from medcodes.claims.batch import read_lines
from medcodes.claims.readers import _split

CELLS = ["E11.9;I10", "E11.9", "E11.9;;I10", ";I10;", "E11.9, I10", "E11.9 I10", "", " E11.9;I10 ", "E11.9;\tI10",
         "e11.9;i10"]
POINTERS = ["1;2", "2", "1;;2", "1, 2", "1 2", "", " 1;2 "]


def _table(dx: list[str], ptr: list[str], **cols: list[str]) -> pl.DataFrame:
    n = len(dx)
    return pl.DataFrame({"claim_id": [f"SYN-{i}" for i in range(n)], "service_date": ["2026-01-15"] * n,
                         "diagnoses": dx, "line_code": ["G0444"] * n, "modifiers": [c.replace("E11.9", "lt")
                                                                                    for c in dx],
                         "diagnosis_pointers": ptr, **cols})


def test_list_cells_are_split_as_the_per_claim_reader_splits_them() -> None:
    # each cell alone (a column of plain "A;B" cells takes the fast split), then all together (the pattern)
    for dx in [[c] for c in CELLS] + [CELLS]:
        ptr = (POINTERS * len(dx))[:len(dx)]
        claims, lines = read_lines(_table(dx, ptr))
        assert claims["diagnoses"].to_list() == [_split(c) for c in dx]
        assert lines["modifiers"].to_list() == [[m.upper() for m in _split(c.replace("E11.9", "lt"))] for c in dx]
        assert lines["pointers"].to_list() == [[int(p) for p in _split(c)] for c in ptr]
    for ptr in [[c] for c in POINTERS] + [POINTERS]:
        _claims, lines = read_lines(_table(["I10"] * len(ptr), ptr))
        assert lines["pointers"].to_list() == [[int(p) for p in _split(c)] for c in ptr]


def test_blank_optional_columns_read_as_empty_cells() -> None:
    blank = {"line_date": ["", ""], "charge": ["", ""], "units": ["", ""], "procedures": ["", ""],
             "patient_birth_date": ["", ""]}
    _claims, lines = read_lines(_table(["I10", "I10"], ["", ""], **blank))
    claims, _lines = read_lines(_table(["I10", "I10"], ["", ""], **blank))
    assert lines["line_date"].dtype == pl.Date and lines["line_date"].to_list() == [None, None]
    assert lines["charge"].dtype == pl.Float64 and lines["charge"].to_list() == [None, None]
    assert lines["units"].to_list() == [1.0, 1.0] and lines["pointers"].to_list() == [[], []]
    assert claims["procedures"].to_list() == [[], []] and claims["birth_date"].to_list() == [None, None]
    # one value in the column: every cell parsed, the empty ones still empty
    some = {"line_date": ["", "2026-01-14"], "charge": ["", "25.00"], "units": ["", "2"],
            "procedures": ["", "0DTJ4ZZ"], "patient_birth_date": ["", "1950-06-01"]}
    claims, lines = read_lines(_table(["I10", "I10"], ["", "1"], **some))
    assert lines["line_date"].to_list() == [None, dt.date(2026, 1, 14)]
    assert lines["charge"].to_list() == [None, 25.0] and lines["units"].to_list() == [1.0, 2.0]
    assert claims["procedures"].to_list() == [[], ["0DTJ4ZZ"]]
    assert claims["birth_date"].to_list() == [None, dt.date(1950, 6, 1)]
    assert claims.schema == read_lines(_table(["I10", "I10"], ["", ""], **blank))[0].schema
    assert lines.schema == read_lines(_table(["I10", "I10"], ["", ""], **blank))[1].schema


def test_sex_and_claim_type_cells_read_as_the_checker_spells_them() -> None:
    spelled = _table(["I10"] * 3, ["1"] * 3, patient_sex=["F", "M", "U"],
                     claim_type=["professional", "institutional", "professional"])
    claims, _lines = read_lines(spelled)     # every cell as the checker spells it: taken as it is
    assert claims["sex"].to_list() == ["F", "M", "U"]
    assert claims["claim_type"].to_list() == ["professional", "institutional", "professional"]
    loose = _table(["I10"] * 4, ["1"] * 4, patient_sex=["f", " m ", "", None],
                   claim_type=["", " institutional ", None, "professional"])
    claims, _lines = read_lines(loose)
    assert claims["sex"].to_list() == ["F", "M", "U", "U"]
    assert claims["claim_type"].to_list() == ["professional", "institutional", "professional", "professional"]
    assert claims.schema == read_lines(spelled)[0].schema
