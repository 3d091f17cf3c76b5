"""Claim readers (JSON, CSV, FHIR R4, CMS CCW RIF) and the NCCI PTP/MUE loaders. No store needed."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from medcodes.claims import ClaimFormatError, read_path, read_rif_dir
from medcodes.claims.ncci import load as load_ncci
from medcodes.claims.readers import read_rif, schema
from medcodes.errors import DataError

FIX = Path(__file__).parent / "fixtures" / "claims"


@pytest.fixture(scope="module")
def rif_dir(shared_data: Path) -> Path:
    return shared_data / "claims" / "cms-bfd-rif-synthea"


def test_json_claims_follow_the_schema() -> None:
    claims = read_path(FIX / "claims_synthetic.json")
    assert [c.id for c in claims] == ["SYN-CLEAN-1", "SYN-ERR-1"]
    c = claims[0]
    assert c.type == "professional" and c.service_date == dt.date(2026, 1, 15)
    assert [d.code for d in c.diagnoses] == ["E11.9", "I10"]
    assert c.lines[0].diagnosis_pointers == [1, 2] and c.lines[0].charge == 25.0
    assert claims[1].lines[0].modifiers == ["50", "LT"]


def test_json_schema_rejects_bad_claims(tmp_path: Path) -> None:
    assert schema()["required"] == ["id", "type", "service_date"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "x", "type": "dental", "service_date": "2026-01-01"}')
    with pytest.raises(ClaimFormatError, match="bad.json"):
        read_path(bad)


def test_csv_one_row_per_line() -> None:
    claims = read_path(FIX / "claims_synthetic.csv")
    assert [c.id for c in claims] == ["SYN-CSV-1", "SYN-CSV-2"]
    assert [ln.code for ln in claims[0].lines] == ["G0444", "A9900"]
    assert claims[0].lines[1].modifiers == ["LT"]
    assert claims[1].type == "institutional" and claims[1].lines == []
    assert [p.code for p in claims[1].procedures] == ["0DTJ4ZZ"]


def test_fhir_bundle_claim_with_patient() -> None:
    (c,) = read_path(FIX / "claim_synthetic_fhir.json")
    assert c.id == "SYN-FHIR-1" and c.patient.sex == "M" and c.patient.birth_date == dt.date(1958, 2, 11)
    assert [d.code for d in c.diagnoses] == ["C61", "I10"]
    assert c.lines[0].code == "G0444" and c.lines[0].diagnosis_pointers == [1]


def test_rif_every_claim_read_and_counted(rif_dir: Path) -> None:
    read = read_rif_dir(rif_dir)   # checks per-beneficiary claim counts against export_summary.csv
    got = {s.file: (s.rows, s.claims) for s in read.stats}
    assert got == {"carrier.csv": (221, 37), "dme.csv": (1, 1), "inpatient.csv": (16, 16),
                   "outpatient.csv": (19, 19), "hha.csv": (15, 14), "hospice.csv": (8, 1), "snf.csv": (67, 1)}
    assert len(read.claims) == 89
    inpatient = next(c for c in read.claims if c.id == "-100001674")
    assert inpatient.type == "institutional" and inpatient.service_date == dt.date(2017, 3, 19)
    assert inpatient.diagnoses[0].code == "C188"            # PRNCPAL_DGNS_CD first, repeats dropped
    assert inpatient.patient.sex == "M" and inpatient.patient.birth_date == dt.date(1945, 11, 11)
    snf = next(c for c in read.claims if c.id.startswith("-") and c.source.startswith("snf.csv"))
    assert len(snf.lines) == 67 and "5A1945Z" in [p.code for p in snf.procedures]


def test_rif_truncated_file_is_a_data_error(rif_dir: Path, tmp_path: Path) -> None:
    text = (rif_dir / "carrier.csv").read_text()
    (tmp_path / "carrier.csv").write_text(text[: len(text) - 400])
    shutil.copy(rif_dir / "beneficiary_2021.csv", tmp_path)
    with pytest.raises(DataError, match="carrier.csv"):
        read_rif(tmp_path / "carrier.csv")


def test_rif_claim_count_checked_against_export_summary(rif_dir: Path, tmp_path: Path) -> None:
    for name in ("hha.csv", "beneficiary_2021.csv", "export_summary.csv"):
        shutil.copy(rif_dir / name, tmp_path)
    lines = (tmp_path / "hha.csv").read_text().splitlines(keepends=True)
    (tmp_path / "hha.csv").write_text("".join(lines[:-1]))   # one whole claim row missing
    with pytest.raises(DataError, match="export_summary.csv"):
        read_rif_dir(tmp_path)


def test_ncci_loaders_read_the_official_layouts(shared_data: Path) -> None:
    # PTP: a SYNTHETIC file in the official layout (../shared/data has no PTP files); MUE: the real CMS table
    mue_csv = shared_data / "ncci" / "2026-q2" / "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv"
    edits = load_ncci([FIX / "ptp_synthetic_ccipra-v000r0-f1.txt", mue_csv])
    assert sum(len(v) for v in edits.ptp.values()) == 4
    (e,) = edits.pairs("G0402", "G0444", dt.date(2020, 5, 1))
    assert e.modifier_indicator == "0" and e.deleted is None and not e.prior_1996
    assert e.setting == "practitioner"                                        # ccipra = practitioner
    assert edits.pairs("G0439", "G0444", dt.date(2020, 5, 1)) == []          # deleted 2015-12-31
    assert edits.pairs("G0439", "G0444", dt.date(2015, 6, 1))[0].deleted == dt.date(2015, 12, 31)
    assert edits.pairs("99213", "36415", dt.date(2020, 5, 1))[0].prior_1996
    assert len(edits.mue["practitioner"]) == 15095
    g = edits.mue["practitioner"]["G0444"]
    assert (g.units, g.indicator, g.rationale) == (1, "2", "CMS Policy")


def test_ncci_malformed_rows_are_data_errors(tmp_path: Path, shared_data: Path) -> None:
    ptp = (FIX / "ptp_synthetic_ccipra-v000r0-f1.txt").read_text()
    bad = tmp_path / "ccipra-bad.txt"
    bad.write_text(ptp.replace("20150101\t*\t0", "2015-01-01\t*\t0"))
    with pytest.raises(DataError, match="ccipra-bad.txt: line 7"):
        load_ncci([bad])
    cut = tmp_path / "ccipra-cut.txt"
    cut.write_text(ptp.rstrip("\r\n").rsplit("\t", 4)[0])
    with pytest.raises(DataError, match="truncated"):
        load_ncci([cut])
    # a damaged copy of the real MUE table (kept in tmp_path only)
    mue = (shared_data / "ncci" / "2026-q2" / "MCR_MUE_DMESupplierServices_Eff_04-01-2026.csv").read_bytes()
    badm = tmp_path / "MCR_MUE_bad.csv"
    badm.write_bytes(mue.replace(b"\nE0110,1,", b"\nE0110,one,"))
    with pytest.raises(DataError, match="MCR_MUE_bad.csv: line .*'one' is not a whole number"):
        load_ncci([badm])
