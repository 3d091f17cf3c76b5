"""Issue 9, the CLI under bad and odd input: every mistake a one-line answer, every code its own
result, no "ok" for a date no release covers (items 7, 8, 9, 10, 11, 13)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MEDCODES = [sys.executable, "-m", "medcodes.cli"]


def run(home, *args, cwd=None):
    env = dict(os.environ, MEDCODES_HOME=str(home))
    env.pop("MEDCODES_DEBUG", None)
    return subprocess.run([*MEDCODES, *args], env=env, capture_output=True, text=True, cwd=cwd, timeout=600)


def one_line_error(out, *words):
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr and "internal error" not in out.stderr, out.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def write_claim(path: Path, dx: str, day: str, line: str, **extra) -> Path:
    claim = {"id": "SYN-1", "type": "professional", "service_date": day,
             "patient": {"sex": "F", "birth_date": "1960-01-01"}, "diagnoses": [{"code": dx}],
             "lines": [{"code": line, "units": 1, "diagnosis_pointers": [1], **extra}]}
    path.write_text(json.dumps(claim))
    return path


# ------------------------------------------------------------------ item 8: dates no release covers
@pytest.mark.parametrize("code,day,words", [
    ("250.00", "2026-01-01", ["ICD-9-CM was replaced", "2015-10-01"]),     # ICD-9 after the switch
    ("E11.65", "2014-01-01", ["applies to services from 2015-10-01"]),     # ICD-10 before it
    ("J1100", "2030-01-01", ["no installed HCPCS Level II release covers 2030-01-01"]),
])
def test_validate_is_not_ok_outside_the_releases(home, code, day, words):
    out = run(home, "validate", code, "--date", day)
    assert out.returncode == 1 and not out.stdout.startswith("ok")
    for w in words:
        assert w in out.stdout
    v = json.loads(run(home, "validate", code, "--date", day, "--json").stdout)[0]
    assert v["valid"] is False
    assert v["status"] == ("unknown" if code == "J1100" else "invalid")


def test_validate_ok_inside_the_releases(home):
    out = run(home, "validate", "250.00", "--date", "2015-01-01")  # ICD-9-CM v32 (FY2015)
    assert out.returncode == 0 and out.stdout.startswith("ok")
    assert run(home, "validate", "J1100", "--date", "2026-03-01").returncode == 0


def test_check_agrees_with_validate(home, tmp_path):
    # ICD-9 after 2015-10-01 and ICD-10 before: errors; a date no release covers: said, not "OK" silently
    for dx, day, rule in (("250.00", "2026-01-01", "icd9-after-icd10"),
                          ("E11.65", "2014-01-01", "icd10-before-icd10")):
        out = run(home, "check", "--json", str(write_claim(tmp_path / "c.json", dx, day, "99213")))
        assert out.returncode == 1
        assert rule in {f["rule"] for f in json.loads(out.stdout)[0]["findings"]}
    out = run(home, "check", "--json", str(write_claim(tmp_path / "c.json", "E11.65", "2030-01-01", "J1100")))
    rules = {f["rule"]: f for f in json.loads(out.stdout)[0]["findings"]}
    assert "2030-01-01" in rules["dx-release-gap"]["message"] and "2030-01-01" in rules["hcpcs-release-gap"]["message"]


# ------------------------------------------------------------------ item 10: each code its own answer
def test_validate_reports_each_code(home):
    out = run(home, "validate", "E11.65", "$$$", "J1100")
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("ok") and lines[2].startswith("ok")
    assert lines[1].startswith("BAD") and "'$$$': not a code" in lines[1]


def test_identify_reports_each_code(home):
    out = run(home, "identify", "E11.65", "@@@", "J1100", "--json")
    assert out.returncode == 2
    got = json.loads(out.stdout)
    assert got["E11.65"][0]["title"] == "Type 2 diabetes mellitus with hyperglycemia"
    assert "not a code" in got["@@@"]["error"]
    assert got["J1100"][0]["title"] == "Injection, dexamethasone sodium phosphate, 1 mg"


# ------------------------------------------------------------------ item 9: no HCPCS / PCS release
@pytest.fixture(scope="module")
def cm_only(home, tmp_path_factory):
    """A store with only ICD-10-CM FY2026 (its file linked from the session store)."""
    h = tmp_path_factory.mktemp("cm-only")
    (h / "store" / "icd10cm").mkdir(parents=True)
    (h / "store" / "icd10cm" / "2026.sqlite").symlink_to(Path(home) / "store" / "icd10cm" / "2026.sqlite")
    return h


def test_check_says_what_it_could_not_check(cm_only, tmp_path):
    claim = {"id": "SYN-2", "type": "institutional", "service_date": "2026-01-15",
             "patient": {"sex": "F", "birth_date": "1960-01-01"}, "diagnoses": [{"code": "E11.65"}],
             "procedures": [{"code": "0DTJ4ZZ"}],
             "lines": [{"code": "A0000", "units": 1, "modifiers": ["ZZ"], "diagnosis_pointers": [1]}]}
    (tmp_path / "c.json").write_text(json.dumps(claim))
    out = run(cm_only, "check", "--json", str(tmp_path / "c.json"))
    found = {(f["rule"], f["location"]): f for f in json.loads(out.stdout)[0]["findings"]}
    assert "A0000" in found[("line-hcpcs-unchecked", "lines[0].code")]["message"]
    assert "ZZ" in found[("modifier-unchecked", "lines[0].modifiers[0]")]["message"]
    assert "0DTJ4ZZ" in found[("pcs-unchecked", "procedures[0]")]["message"]
    assert all(f["severity"] == "info" for k, f in found.items() if k[0].endswith("unchecked"))


# ------------------------------------------------------------------ item 7 (CLI): the user's mistakes
def test_search_bad_date(home):
    one_line_error(run(home, "search", "diabetes", "--date", "2026-02-30"), "2026-02-30", "not a date")


def test_check_deeply_nested_json(home, tmp_path):
    (tmp_path / "deep.json").write_text("[" * 50_000 + "]" * 50_000)
    one_line_error(run(home, "check", str(tmp_path / "deep.json")), "deep.json", "nested too deeply")


def test_check_batch_out_to_a_missing_folder(home, tmp_path):
    (tmp_path / "lines.csv").write_text("claim_id,service_date,line_code\nc1,2026-01-15,J1100\n")
    one_line_error(run(home, "check", "--batch", "--out", "/nonexistent/x.csv", str(tmp_path / "lines.csv")),
                   "/nonexistent", "does not exist")


# ------------------------------------------------------------------ item 11 (CLI): list the validation errors
def test_fhir_claim_validation_errors_listed(home, tmp_path):
    (tmp_path / "f.json").write_text(json.dumps({"resourceType": "Claim", "id": "x"}))
    line = one_line_error(run(home, "check", str(tmp_path / "f.json")), "5 validation errors for Claim")
    for field in ("insurance", "patient", "priority", "provider", "type"):
        assert f"{field}: Field required" in line


# ------------------------------------------------------------------ item 13
def test_check_help(home):
    out = run(home, "check", "-h")
    assert out.returncode == 0 and "--batch" in out.stdout


def test_check_empty_list(home, tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    one_line_error(run(home, "check", str(tmp_path / "empty.json")), "no claims")


def test_search_error_json_exit_2(home):
    out = run(home, "search", "!!!", "--json")
    assert out.returncode == 2 and json.loads(out.stdout)["error"]


def test_search_limit_0(home):
    out = run(home, "search", "diabetes", "--limit", "0")
    assert out.returncode == 0 and out.stdout == "" and "more" not in out.stderr and "results" in out.stderr


def test_lookup_json_error_is_json(home):
    out = run(home, "lookup", "XYZ", "--json")
    assert out.returncode == 2
    err = json.loads(out.stdout)
    assert "XYZ" in err["error"] and err["code"] == "XYZ"


def test_lookup_json_axes_once(home):
    d = json.loads(run(home, "lookup", "0DTJ4ZZ", "--json").stdout)
    assert "axes" not in d and [a["label"] for a in d["structure"]["axes"]][3] == "Appendix"


def test_full_width_code(home):
    out = run(home, "validate", "E\uff11\uff11.\uff16\uff15")   # E１１.６５
    assert out.returncode == 0 and "E11.65" in out.stdout
    assert json.loads(run(home, "lookup", "E\uff11\uff11\uff0e\uff16\uff15", "--json").stdout)["code"] == "E11.65"


def test_long_input_cut_in_messages(home):
    big = "A" * 100_000
    out = run(home, "lookup", big)
    line = one_line_error(out)
    assert len(line) < 300 and "100,000 characters" in line
    out = run(home, "validate", big, "E11.65")
    assert len(out.stdout) < 1000 and out.returncode == 1


def test_history_wording(home):
    out = run(home, "history", "B88.0")
    assert "billable -> header (not billable)" in out.stdout and "1 -> 0" not in out.stdout


def test_releases_columns_align(home):
    lines = run(home, "releases").stdout.splitlines()
    heads = [ln for ln in lines if not ln.startswith(" ")]
    starts = {ln.index(" .. ") for ln in heads}
    assert len(heads) > 10 and len(starts) == 1  # the dates line up whatever the system/release width
    sub = {ln.index("counts:") for ln in lines if "counts:" in ln}
    assert len(sub) == 1


def test_store_files_readable_by_others(tmp_path, shared_data):
    # a service account must be able to read a store its admin pulled (umask 022: 0644, not 0600)
    old = os.umask(0o022)
    try:
        assert run(tmp_path, "pull", "--from", str(shared_data / "icd9cm"), "-q").returncode == 0
    finally:
        os.umask(old)
    files = list((tmp_path / "store").glob("*/*.sqlite"))
    assert files
    for f in files:
        mode = f.stat().st_mode
        assert mode & stat.S_IRGRP and mode & stat.S_IROTH, f"{f}: {oct(mode)}"


def test_gitignore_has_ci_venv():
    assert ".venv-ci/" in (REPO / ".gitignore").read_text().splitlines()


def test_readme_example_claim_ships(home):
    assert "medcodes check examples/claim.json" in (REPO / "README.md").read_text()
    out = run(home, "check", "--json", "examples/claim.json", cwd=REPO)
    assert out.returncode == 1  # E11 is a category heading
    assert "dx-header" in {f["rule"] for f in json.loads(out.stdout)[0]["findings"]}


def test_quiet_noop_repull(home, shared_data):
    # the session store is already pulled from these files: a re-pull changes nothing, says
    # nothing with --quiet, and does not compile (or touch) the search index again
    before = {p: p.stat().st_mtime_ns for p in (Path(home) / "search").glob("*.sqlite")}
    out = run(home, "pull", "--from", str(shared_data / "icd9cm"), "--quiet")
    assert out.returncode == 0 and out.stdout == "" and out.stderr == ""
    out = run(home, "pull", "--from", str(shared_data / "icd9cm"))
    assert "unchanged icd9cm v32" in out.stdout and "compiling" not in out.stderr
    assert {p: p.stat().st_mtime_ns for p in (Path(home) / "search").glob("*.sqlite")} == before
