"""Procedure, drug and supply queries searched over every system (issue 13): the code a coder picks.

Each case names the official code and checks its agency title from the installed release.
"""

from __future__ import annotations

from medcodes.search import search
from medcodes.search import text as _text


def _top(cb, query, n=1):
    return [(h.system, h.code, h.title) for h in search(cb, query, limit=10).hits[:n]]


def test_a_drug_named_alone_is_the_drug_not_its_poisoning(cb):
    # HCPCS J0696 "Injection, ceftriaxone sodium, per 250 mg" before the Table of Drugs' T36.1X- codes
    system, code, title = _top(cb, "ceftriaxone")[0]
    assert (system, code) == ("hcpcs", "J0696")
    assert title == cb.lookup("J0696", system="hcpcs").title
    # ... unless the query asks for the poisoning: T36.1X1-T36.1X4 "Poisoning by cephalosporins ..."
    system, code, title = _top(cb, "ceftriaxone poisoning")[0]
    assert system == "icd10cm" and code.startswith("T36.1X") and title.startswith("Poisoning by cephalosporins")


def test_a_brand_name_reads_as_the_generic_hcpcs_uses(cb):
    system, code, title = _top(cb, "botox")[0]
    assert (system, code) == ("hcpcs", "J0585")
    assert "onabotulinumtoxina" in cb.lookup("J0585", system="hcpcs").title.lower()


def test_a_procedure_ranks_above_imaging_of_it(cb):
    # 0TY00Z0 "Transplantation of Right Kidney, Allogeneic, Open Approach", not BT49ZZZ
    # "Ultrasonography of Kidney Transplant" (PCS section B) the words also find
    system, code, title = _top(cb, "kidney transplant")[0]
    assert system == "icd10pcs" and code.startswith("0TY") and title.startswith("Transplantation of")
    assert cb.lookup("BT49ZZZ", system="icd10pcs").title == "Ultrasonography of Kidney Transplant"
    # ... and the study when the query names one
    assert _top(cb, "kidney transplant ultrasound")[0][:2] == ("icd10pcs", "BT49ZZZ")
    assert _text.names_imaging(["ct", "head"]) and _text.names_imaging(["angiogram"])
    assert not _text.names_imaging(["kidney", "transplant"])


def test_without_a_word_pcs_never_negates(cb):
    # "Computerized Tomography (CT Scan) of Head" BW28ZZZ (no contrast) before "... using Other Contrast"
    system, code, title = _top(cb, "ct head without contrast")[0]
    assert system == "icd10pcs" and "contrast" not in title.lower()
    assert title == cb.lookup(code, system="icd10pcs").title and title.startswith("Computerized Tomography")
    # a title that states the negation keeps its literal match
    assert _top(cb, "type 2 diabetes without complications")[0][:2] == ("icd10cm", "E11.9")


def test_extent_words_pcs_never_writes(cb):
    # 0GTK0ZZ "Resection of Thyroid Gland, Open Approach" for "total thyroidectomy" (the Index's
    # "Thyroidectomy, see Resection, Endocrine System" alone leads to 0GT00ZZ, the pituitary, first)
    system, code, title = _top(cb, "total thyroidectomy")[0]
    assert system == "icd10pcs" and code.startswith("0GTK") and "Thyroid Gland" in title


def test_a_verb_reads_as_its_root_operation(cb):
    # "insert" -> "Insertion", "transplant" -> "Transplantation" (the Porter2 family's root operation)
    from medcodes.search.api import engine_for

    eng = engine_for(cb)
    for word, op in (("transplant", "transplantation"), ("insert", "insertion"), ("replace", "replacement")):
        cand = eng.candidate(word, False)
        assert any(lo <= eng.tok_id[op] < hi for lo, hi, _q in cand.groups), word


def test_an_endoscopy_with_what_was_done_through_it(cb):
    # "bronchoscopy with biopsy": an Excision of a bronchus (0BB_8ZX "... Via Natural or Artificial Opening
    # Endoscopic, Diagnostic"), not the Inspection 0BJ08ZZ nor the HCPCS C codes naming the whole service
    system, code, title = _top(cb, "bronchoscopy with biopsy")[0]
    assert system == "icd10pcs" and code.startswith("0BB") and code.endswith("8ZX")
    assert title == cb.lookup(code, system="icd10pcs").title and title.startswith("Excision of")
    assert "Bronchus" in title and title.endswith("Opening Endoscopic, Diagnostic")


def test_partial_reads_as_excision_not_resection(cb):
    # "partial mastectomy" is an Excision of the breast (0HBT0ZZ "Excision of Right Breast, Open
    # Approach"), not its Resection (0HTT0ZZ) that "mastectomy" alone reads as
    hits = [h for h in search(cb, "partial mastectomy", limit=10).hits if h.system == "icd10pcs" and h.billable]
    assert hits and hits[0].code.startswith("0HB") and hits[0].title.startswith("Excision of")
    assert cb.lookup("0HBT0ZZ", system="icd10pcs").title == "Excision of Right Breast, Open Approach"
    top = [h for h in search(cb, "mastectomy", limit=10).hits if h.system == "icd10pcs" and h.billable]
    assert top and top[0].title.startswith("Resection of")
