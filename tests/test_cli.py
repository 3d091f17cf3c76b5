"""The CLI as a user runs it: exit codes, one-line errors, JSON, pull atomicity."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MEDCODES = [sys.executable, "-m", "medcodes.cli"]


def run(home, *args, check=False):
    env = dict(os.environ, MEDCODES_HOME=str(home))
    env.pop("MEDCODES_DEBUG", None)
    return subprocess.run([*MEDCODES, *args], env=env, capture_output=True, text=True, check=check)


def test_lookup_json_keys(home):
    out = run(home, "lookup", "E11.65", "--json", check=True)
    data = json.loads(out.stdout)
    assert data["system"] == "icd10cm" and data["code"] == "E11.65"
    assert data["title"] == "Type 2 diabetes mellitus with hyperglycemia"
    assert data["billable"] is True and data["release"]


def test_lookup_text(home):
    out = run(home, "lookup", "0DTJ4ZZ", check=True)
    assert "0DTJ4ZZ" in out.stdout and "Appendix" in out.stdout


def test_unknown_code_exit_2_one_line(home):
    out = run(home, "lookup", "E11.30")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "E11.30" in lines[0] and "nearest" in lines[0]
    assert "Traceback" not in out.stderr


def test_malformed_code_exit_2(home):
    out = run(home, "lookup", "%%%")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_identify_json_order(home):
    out = run(home, "identify", "e1130", "--json", check=True)
    readings = json.loads(out.stdout)
    assert readings[0]["system"] == "hcpcs" and readings[0]["exists"] is True


def test_releases_lists_counts(home):
    out = run(home, "releases", "--json", check=True)
    infos = {(r["system"], r["release"]): r for r in json.loads(out.stdout)}
    fy26 = infos[("icd10cm", "2026")]
    assert fy26["effective_from"] == "2025-10-01"
    assert any("icd10cm_order_2026.txt" in s["name"] for s in fy26["sources"])


def test_embedded_default_with_no_pull(tmp_path):
    """Right after install, no pull, no network: ICD-10-CM from the XML inside simple-icd-10-cm."""
    out = run(tmp_path / "fresh", "lookup", "E11.65", "--json", check=True)
    data = json.loads(out.stdout)
    assert data["title"] == "Type 2 diabetes mellitus with hyperglycemia"
    assert data["release"] == "2026-04"


def test_repull_is_noop_and_bad_file_leaves_store(tmp_path, shared_data):
    src = tmp_path / "files"
    (src / "icd10pcs").mkdir(parents=True)
    good = shared_data / "icd10pcs" / "2026"
    for f in good.iterdir():
        shutil.copy(f, src / "icd10pcs" / f.name)
    home = tmp_path / "home"
    first = run(home, "pull", "--from", str(src), check=True)
    assert "installed icd10pcs 2026" in first.stdout
    again = run(home, "pull", "--from", str(src), check=True)
    assert "unchanged icd10pcs 2026" in again.stdout and "installed icd10pcs" not in again.stdout
    store_file = home / "store" / "icd10pcs" / "2026.sqlite"
    before = store_file.read_bytes()
    # truncate the order-file zip: the pull must fail in one line and leave the store as it was
    z = src / "icd10pcs" / "2026-icd-10-pcs-order-file-long-and-abbreviated-titles.zip"
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    bad = run(home, "pull", "--from", str(src))
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and z.name in bad.stderr
    assert store_file.read_bytes() == before
    assert not [p for p in store_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_missing_dir_is_one_line_error(tmp_path):
    out = run(tmp_path / "h", "pull", "--from", str(tmp_path / "nope"))
    assert out.returncode == 2 and "nope" in out.stderr and "Traceback" not in out.stderr


def test_cpt_licensee_file(tmp_path):
    fixture = Path(__file__).parent / "fixtures" / "cpt_synthetic.csv"
    home = tmp_path / "h"
    run(home, "pull", "--cpt", str(fixture), "--release", "2026", check=True)
    out = run(home, "identify", "99213", "--json", check=True)
    top = json.loads(out.stdout)[0]
    assert top["system"] == "cpt"


@pytest.mark.parametrize("args", [["lookup", "E11.65", "--date", "not-a-date"], ["lookup", "E11.65", "--system", "xyz"]])
def test_bad_options(home, args):
    out = run(home, *args)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_diff_history_map_search_commands(home):
    d = json.loads(run(home, "diff", "icd10cm", "2025", "2026", "--json", check=True).stdout)
    assert d["counts"]["to_codes"] == 98186 and d["counts"]["from_codes"] == 97584
    assert "B88.01" in [e["code"] for e in d["added"]]
    csv_out = run(home, "diff", "hcpcs", "2019-01", "2020-01", "--csv", check=True).stdout
    assert csv_out.splitlines()[0] == "change,code,kind,field,before,after"
    h = json.loads(run(home, "history", "B88.0", "--json", check=True).stdout)
    assert [s["release"] for s in h["releases"]][:3] == ["2017", "2021", "2025"]
    m = json.loads(run(home, "map", "250.00", "--json", check=True).stdout)
    assert "E11.9" in json.dumps(m)
    s = json.loads(run(home, "search", "diabetes", "with", "hyperglycemia", "--json", check=True).stdout)
    assert any(hit["code"] == "E11.65" for hit in s["hits"])


def test_check_exit_status(home, tmp_path):
    claim = {"id": "c1", "type": "professional", "patient": {"sex": "F", "birth_date": "1960-01-01"},
             "service_date": "2026-05-01", "diagnoses": [{"code": "E11"}],
             "setting": "dme-supplier",  # E1130 (a bed): DME supplier MUE 1, practitioner MUE 0 (NCCI 2026 Q2)
             "lines": [{"code": "E1130", "units": 1, "diagnosis_pointers": [1]}]}
    f = tmp_path / "claim.json"
    f.write_text(json.dumps(claim))
    out = run(home, "check", str(f), "--json")
    assert out.returncode == 1  # E11 is a header: an error
    findings = json.loads(out.stdout)[0]["findings"]
    assert any(x["rule"] == "dx-header" for x in findings)
    claim["diagnoses"] = [{"code": "E11.65"}]
    f.write_text(json.dumps(claim))
    assert run(home, "check", str(f)).returncode == 0
