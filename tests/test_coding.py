"""The coding assistant (``cb.code``): the note set's scores as regression thresholds, the
guidelines it applies, each on official codes, and bad input.

The notes (tests/coding/notes.jsonl) were written, and their codes checked against the FY2026
titles, before any engine's answer was looked at.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from medcodes.coding.evaluate import load, score
from medcodes.errors import MedcodesError

NOTES = Path(__file__).resolve().parent / "coding" / "notes.jsonl"
DAY = "2026-05-01"


@pytest.fixture(scope="module")
def notes():
    return load(NOTES)


def codes(cb, text, setting="outpatient", **kw):
    return [c.code for c in cb.code(text, setting=setting, date=DAY, **kw).codes]


# ------------------------------------------------------------------ the note set
def test_note_set_shape(notes, cb):
    assert len(notes) >= 200
    assert {n.setting for n in notes} == {"outpatient", "inpatient"}
    assert sum(len(n.not_coded) for n in notes) >= 60       # the 2% target is measured on 60+ mentions
    # every expected code is a valid, billable code on the date the set is scored on
    for n in notes:
        for slot in n.codes:
            assert any(cb.validate(c, date=DAY).billable for c in slot), (n.id, slot)


def test_note_set_scores_and_baseline(notes, cb):
    """Regression thresholds (measured on 262 notes: recall@5 0.906, recall@1 0.897, precision@5 0.867,
    0 of 65 must-not mentions coded); the assistant must beat
    cb.search run over each sentence of the note by a wide margin."""
    ours = score(notes, lambda n: codes(cb, n.text, n.setting))
    assert ours.recall5 >= 0.85, ours.misses[:20]
    assert ours.recall1 >= 0.80
    assert ours.precision5 >= 0.75
    assert ours.must_not_rate <= 0.02, [m for m in ours.misses if any(x.startswith("!") for x in m[1])]

    def baseline(n):
        got: list[str] = []
        for sent in n.text.replace(";", ".").split("."):
            if sent.strip():
                hits = cb.search(sent, limit=1, date=DAY).hits
                got.extend(h.code for h in hits if h.code not in got)
        return got

    base = score(notes, baseline)
    # the margin shrank when search improved (issue 13: on the 215 first notes its baseline went from
    # recall@5 0.587 to 0.664; on all 262 from 0.541 to 0.610)
    assert ours.recall5 >= base.recall5 + 0.2, (ours.as_dict(), base.as_dict())


# ------------------------------------------------------------------ how a coder works
def test_index_path_and_combination_code(cb):
    """E11.65 through Diabetes, type 2, with, hyperglycemia; hyperglycemia alone (R73.9) is part of
    the combination code; metformin -> Long-term (current) drug therapy, oral, hypoglycemic Z79.84."""
    res = cb.code("58-year-old man with type 2 diabetes, poorly controlled with hyperglycemia, on metformin.",
                  date=DAY)
    got = {c.code: c for c in res.codes}
    assert list(got)[:2] == ["E11.65", "Z79.84"]
    e = got["E11.65"]
    assert e.evidence["index"] == "Diabetes, type 2, with, hyperglycemia"
    assert e.role == "first-listed" and e.billable
    assert e.title == "Type 2 diabetes mellitus with hyperglycemia"
    assert any(n["kind"] == "useAdditionalCode" and "Z79.84" in n["text"] for n in e.evidence["notes"])
    text = "58-year-old man with type 2 diabetes, poorly controlled with hyperglycemia, on metformin."
    a, b = e.spans[0]
    assert "type 2 diabetes" in text[a:b]
    skipped = {s.would_be: s.reason for s in res.not_coded}
    assert "combination code E11.65" in skipped["R73.9"]


@pytest.mark.parametrize("text, prefix, reason", [
    ("Hyperlipidemia. No history of diabetes.", "E11", "negated"),
    ("Patient denies fever. Acute pharyngitis.", "R50", "negated"),
    ("Chest pain. Myocardial infarction ruled out.", "I21", "negated"),
    ("Mother has type 2 diabetes. Patient presents with fatigue.", "E11", "family history"),
    ("Periumbilical abdominal pain today. If symptoms worsen, consider evaluation for appendicitis.", "K35", "hypothetical"),
    ("Epigastric pain. Rule out peptic ulcer.", "K27", "uncertain diagnosis in the outpatient setting"),
])
def test_mentions_not_coded(cb, text, prefix, reason):
    res = cb.code(text, date=DAY)
    assert not any(c.code.replace(".", "").startswith(prefix) for c in res.codes)
    assert any(reason in s.reason for s in res.not_coded), [s.as_dict() for s in res.not_coded]


def test_family_history_becomes_its_z_code(cb):
    """A relative's diabetes: History, family (of), diabetes mellitus -> Z83.3."""
    assert "Z83.3" in codes(cb, "Mother has type 2 diabetes. Patient presents with fatigue.")


def test_uncertain_diagnosis_by_setting(cb):
    """Guidelines IV.H (outpatient: code the symptom, R30.0 dysuria) and II.H (inpatient: as established, N39.0)."""
    text = "Rule out urinary tract infection. Dysuria."
    assert codes(cb, text) == ["R30.0"]
    inp = cb.code(text, setting="inpatient", date=DAY)
    assert inp.codes[0].code == "N39.0" and inp.codes[0].role == "principal"
    assert "Section II.H" in inp.codes[0].evidence["guideline"]


def test_laterality_encounter_and_queries(cb):
    """M17.1- needs laterality: right -> M17.11; unstated -> M17.10 with a query; 7th character A."""
    assert codes(cb, "Primary osteoarthritis of the right knee.") == ["M17.11"]
    res = cb.code("Primary osteoarthritis of the knee.", date=DAY)
    assert res.codes[0].code == "M17.10"
    assert any("left" in q and "right" in q for q in res.codes[0].queries)
    assert codes(cb, "Sprain of the right ankle, initial encounter.") == ["S93.401A"]


def test_with_alone_is_not_evidence_for_a_title(cb):
    """'Admitted with myocardial infarction': the I21 title that has a 'with' (I21.B, Myocardial
    infarction with coronary microvascular dysfunction) is not chosen for the connective alone;
    'smoker with nicotine dependence' -> F17.210 (cigarettes), not F17.219 (with unspecified
    nicotine-induced disorders)."""
    got = codes(cb, "Patient admitted with myocardial infarction.")
    assert got and got[0].startswith("I21.") and "I21.B" not in got
    assert "F17.210" in codes(cb, "Chronic obstructive pulmonary disease. Cigarette smoker with nicotine dependence.")


def test_use_additional_code_companions(cb):
    """E11.22's Tabular notes: 'use additional code to identify stage of chronic kidney disease
    (N18.1-N18.6)' -> N18.4 stated; E11 'insulin (Z79.4)' -> Z79.4 when the note says insulin;
    N18.6 'code to identify dialysis status (Z99.2)'; N40.1 'nocturia (R35.1)'."""
    res = cb.code("Type 2 diabetes mellitus with diabetic chronic kidney disease. CKD stage 4. Takes insulin daily.",
                  date=DAY)
    got = {c.code: c for c in res.codes}
    assert {"E11.22", "N18.4", "Z79.4"} <= set(got)
    z = got["Z79.4"]
    assert z.title == "Long term (current) use of insulin"
    assert z.evidence["companion_of"] == "E11.22" and "insulin (Z79.4)" in z.evidence["index"]
    res = cb.code("End stage renal disease on hemodialysis three times a week.", date=DAY)
    dial = next(c for c in res.codes if c.code == "Z99.2")
    assert dial.title == "Dependence on renal dialysis" and dial.evidence["companion_of"] == "N18.6"
    assert {"N40.1", "R35.1"} <= set(codes(cb, "Benign prostatic hyperplasia with lower urinary tract symptoms: nocturia."))
    # not when the note does not support it, or negates it
    assert "Z79.4" not in codes(cb, "Type 2 diabetes mellitus without complications. No insulin.")
    assert "Z79.4" not in codes(cb, "Type 2 diabetes mellitus without complications.")


def test_laterality_from_the_nearest_mention_of_the_same_site(cb):
    """'Osteoarthritis of the knee. Right knee aches.': the side is in the next sentence, about the
    knee -> M17.11, saying where it came from; a side stated for another site is not taken."""
    text = "Primary osteoarthritis of the knee. Right knee aches after walking."
    res = cb.code(text, date=DAY)
    m = next(c for c in res.codes if c.code.startswith("M17"))
    assert m.code == "M17.11" and m.title == "Unilateral primary osteoarthritis, right knee"
    assert "Right" in m.evidence["laterality"]
    assert "M17.10" in codes(cb, "Primary osteoarthritis of the knee. Left hip pain.")
    assert "H66.92" in codes(cb, "Otitis media. Bulging red left ear drum.")


def test_tables_of_neoplasms_and_drugs(cb):
    """Neoplasm table: sigmoid colon primary C18.7, liver secondary C78.7; drug table: ibuprofen,
    intentional self-harm T39.312A."""
    got = codes(cb, "Colon cancer of the sigmoid colon with metastasis to the liver.")
    assert got[:2] == ["C18.7", "C78.7"] or set(got[:2]) == {"C18.7", "C78.7"}
    assert codes(cb, "Poisoning by ibuprofen, intentional self-harm, initial encounter.", "inpatient")[0] == "T39.312A"


def test_excludes1_pairs_never_together(cb, notes):
    """No suggestion set holds two codes one of whose Excludes1 notes names the other."""
    import re

    ref = re.compile(r"\b([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)")
    for n in notes[:80]:
        res = cb.code(n.text, setting=n.setting, date=DAY)
        cm = [c for c in res.codes if c.system == "icd10cm"]
        for a in cm:
            ex = [k.replace(".", "") for note in a.evidence.get("notes", []) if note["kind"] == "excludes1"
                  for k in ref.findall(note["text"])]
            for b in cm:
                if b is not a:
                    key = b.code.replace(".", "")
                    assert not any(key == k or (len(k) < 7 and key.startswith(k)) for k in ex), (n.id, a.code, b.code)


def test_procedures_complete_only_when_every_axis_is_stated(cb):
    """ICD-10-PCS: laparoscopic appendectomy -> 0DTJ4ZZ (Resection, Appendix, Percutaneous
    Endoscopic); no approach stated -> the table row 0DTJ with the approach still open."""
    got = cb.code("Laparoscopic appendectomy for acute appendicitis.", setting="inpatient", date=DAY).codes
    assert [c.code for c in got] == ["K35.80", "0DTJ4ZZ"]
    assert got[1].role == "procedure" and got[1].billable
    open_ = cb.code("Appendectomy for acute appendicitis.", setting="inpatient", date=DAY).codes
    pcs = [c for c in open_ if c.system == "icd10pcs"][0]
    assert pcs.code == "0DTJ" and not pcs.billable and pcs.queries
    # outpatient: no ICD-10-PCS (CPT is not invented)
    assert codes(cb, "Laparoscopic appendectomy for acute appendicitis.") == ["K35.80"]


def test_supplies_through_hcpcs_titles(cb):
    """J0696 Injection, ceftriaxone sodium, per 250 mg; K0001 Standard wheelchair."""
    res = cb.code("Ceftriaxone 250 mg injection given.", date=DAY)
    assert [(c.code, c.role) for c in res.codes] == [("J0696", "supply")]
    assert codes(cb, "Standard wheelchair supplied.") == ["K0001"]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("text", ["", "   \n", "12345 678 90", "Le patient a une douleur.", "!!!???"])
def test_nothing_to_code_is_an_empty_coding(cb, text):
    res = cb.code(text, date=DAY)
    assert res.codes == [] or all(c.system for c in res.codes)
    assert res.as_dict()["codes"] == [c.as_dict() for c in res.codes]


@pytest.mark.parametrize("text, message", [
    ("x" * 1_000_001, "at most 100,000 are read"),
    ("\x00\x01binary", "not text"),
])
def test_bad_input_is_a_clear_error(cb, text, message):
    with pytest.raises(MedcodesError, match=message):
        cb.code(text, date=DAY)
    with pytest.raises(MedcodesError, match="setting"):
        cb.code("Gout.", setting="emergency")


def test_the_note_is_never_logged(cb, caplog, capfd):
    secret = "Zebulon Quartermaine has type 2 diabetes with hyperglycemia"
    with caplog.at_level(logging.DEBUG):
        cb.code(secret, date=DAY)
    out, err = capfd.readouterr()
    assert "Zebulon" not in caplog.text and "Zebulon" not in out and "Zebulon" not in err


# ------------------------------------------------------------------ CLI and REST
def test_cli_code_json_and_errors(home, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("Hypertension, type 2 diabetes and hyperlipidemia. Denies chest pain.\n")
    import os

    env = {**os.environ, "MEDCODES_HOME": str(home)}
    run = lambda *a, **kw: subprocess.run([sys.executable, "-m", "medcodes.cli", *a], capture_output=True,  # noqa: E731
                                          text=True, env=env, **kw)
    out = run("code", str(note), "--date", DAY, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [c["code"] for c in doc["codes"]] == ["I10", "E11.9", "E78.5"]
    for c in doc["codes"]:
        assert {"system", "code", "title", "billable", "score", "role", "spans", "evidence"} <= set(c)
    assert doc["not_coded"][0]["text"] == "chest pain" and doc["not_coded"][0]["reason"] == "negated"
    stdin = run("code", "-", "--inpatient", "--date", DAY, input="Acute kidney injury.")
    assert stdin.returncode == 0 and "N17.9" in stdin.stdout and "principal" in stdin.stdout
    bad = run("code", str(tmp_path / "missing.txt"))
    assert bad.returncode == 2 and "cannot read" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x00garbage")
    binary = run("code", str(tmp_path / "bin.txt"))
    assert binary.returncode == 2 and "not UTF-8 text" in binary.stderr


def test_rest_code(home, monkeypatch):
    from fastapi.testclient import TestClient

    from medcodes.server.app import create_app

    with TestClient(create_app(home)) as client:
        r = client.post("/code", json={"text": "Acute kidney injury.", "setting": "inpatient", "date": DAY})
        assert r.status_code == 200
        assert r.json()["codes"][0]["code"] == "N17.9"
        assert client.post("/code", json={"note": "x"}).status_code == 400
        assert client.post("/code", json={"text": "Gout.", "setting": "er"}).status_code == 400


def test_rest_code_first_note_waits_for_the_books_not_for_the_timeout(home, monkeypatch):
    """Loading the books takes seconds (once): the server can start it in the background
    (MEDCODES_WARM_CODER=1), and a first POST /code that arrives meanwhile, or finds nothing loaded,
    waits for it outside its per-request timeout (here 1 s)."""
    from fastapi.testclient import TestClient

    from medcodes.coding import assistant
    from medcodes.server.app import create_app

    monkeypatch.setattr(assistant, "_coders", {})       # a cold process: nothing loaded yet
    monkeypatch.setenv("MEDCODES_TIMEOUT", "1")
    monkeypatch.setenv("MEDCODES_WARM_CODER", "1")
    with TestClient(create_app(home)) as client:
        r = client.post("/code", json={"text": "Acute kidney injury.", "setting": "inpatient", "date": DAY})
        assert r.status_code == 200, r.text
        assert r.json()["codes"][0]["code"] == "N17.9"
        assert client.post("/code", json={"text": "Gout.", "date": "May 1"}).status_code == 400
    monkeypatch.setattr(assistant, "_coders", {})       # cold again, no warm-up: the first note loads them
    monkeypatch.delenv("MEDCODES_WARM_CODER")
    with TestClient(create_app(home)) as client:
        r = client.post("/code", json={"text": "Acute kidney injury.", "date": DAY})
        assert r.status_code == 200 and r.json()["codes"][0]["code"] == "N17.9"
