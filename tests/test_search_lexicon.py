"""Query understanding: the clinical abbreviation / lay-term lexicon, shorthand and typo tolerance.

Each search test names the official code a coder would pick and checks the hit carries the agency's own
title from the installed release (cb.lookup), not a string written here alone.
"""

from __future__ import annotations

import pytest

from medcodes.search import lexicon, search
from medcodes.search import text as _text
from medcodes.search.api import engine_for


def test_shorthand_spells_out_slashes_and_sides():
    assert lexicon.shorthand(["s", "p", "cabg"]) == ["status", "cabg"]
    assert lexicon.shorthand(["n", "v"]) == ["nausea", "vomiting"]
    assert lexicon.shorthand(["rt", "knee", "oa"]) == ["right", "knee", "oa"]
    assert lexicon.shorthand(["s", "aureus"]) == ["s", "aureus"]       # a lone "s" stays
    assert lexicon.shorthand(["lle", "edema"]) == ["left", "lower", "limb", "edema"]
    assert lexicon.shorthand(["b", "l", "knee"]) == ["bilateral", "knee"]


def test_lexicon_phrases_are_found_in_another_order_or_number():
    assert _text._synonyms("ear ringing") == _text._synonyms("ringing ears")
    assert _text._synonyms("stones kidney") == _text._synonyms("kidney stone")
    assert _text._synonyms("ringing") == ()                             # one word is no phrase


def test_lexicon_readings_are_looked_up_without_stop_words():
    assert _text._synonyms("water knee") == ("effusion knee",)          # "water on the knee"
    assert _text._synonyms("ftt") == ("failure thrive",)                # "failure to thrive", "to" dropped
    assert "aortocoronary bypass graft" in _text._synonyms("cabg")      # the lexicon adds to the base table
    assert _text._synonyms("cabg")[0] == "coronary artery bypass"       # ... after the base table's reading
    assert _text.is_synonym(["mini", "stroke"]) and not _text.is_synonym(["knee"])


def test_lexicon_entries_are_words_not_codes(cb):
    """Every reading is made of words the official texts use (a misspelt reading would find nothing)."""
    eng = engine_for(cb)
    assert len(lexicon.ABBREVIATIONS) >= 300 and len(lexicon.LAY_TERMS) >= 300
    for table in (lexicon.ABBREVIATIONS, lexicon.LAY_TERMS, lexicon.PROCEDURE_TERMS, lexicon.DRUG_NAMES):
        for key, readings in table.items():
            assert readings and key == key.lower().strip(), key
            for reading in readings:
                for w in reading.split():
                    assert not any(ch.isdigit() for ch in w) or w in ("19", "2", "1", "b12", "a1c"), (key, reading)
                    if w not in _text.STOP_WORDS:
                        assert eng.tok_id.get(_text.stem(w)) is not None, (key, reading, w)


def test_lexicon_spelling_mends_a_slip_inside_a_table_phrase():
    toks = {"heart", "hard", "attack", "chicken", "pox", "stone"}
    near = {"hart": ["heart", "hard"], "chiken": ["chicken"]}
    fix = lambda ws: _text.lexicon_spelling(ws, toks.__contains__, lambda w: near.get(w, []))  # noqa: E731
    assert fix(["hart", "attack"]) == ["heart", "attack"]                # only "heart attack" is a table phrase
    assert fix(["chiken", "pox"]) == ["chicken", "pox"]
    assert fix(["gall", "stones"]) == ["gallstones"]                    # the lay table writes it as one word
    assert fix(["hard", "attack"]) == ["hard", "attack"]                # a word of the index is never changed
    assert fix(["ckd3"]) == ["ckd", "3"]                                # letters run into a number


def test_respellings():
    assert "lymphoma" in _text.respellings("lymfoma")
    assert "fetal" in _text.respellings("foetal")
    assert "lymfoma" not in _text.respellings("lymfoma")


def _hit(cb, query, code, within=1, system="icd10cm"):
    hits = search(cb, query, limit=10).hits
    top = [(h.system, h.code) for h in hits[:within]]
    assert (system, code) in top, (query, [(h.code, h.title) for h in hits[:5]])
    hit = next(h for h in hits if h.code == code)
    assert hit.title == cb.lookup(code, system=system).title
    return hit


@pytest.mark.parametrize("query,code,title", [
    ("hcc", "C22.0", "Liver cell carcinoma"),                           # hepatocellular carcinoma
    ("s/p cabg", "Z95.1", "Presence of aortocoronary bypass graft"),   # status post CABG
    ("mini stroke", "G45.9", "Transient cerebral ischemic attack, unspecified"),
    ("nstemi", "I21.4", "Non-ST elevation (NSTEMI) myocardial infarction"),
    ("aicd", "Z95.810", "Presence of automatic (implantable) cardiac defibrillator"),
    ("hemmorhoids", "K64.9", "Unspecified hemorrhoids"),                # two edits
    ("lymfoma", "C85.90", "Non-Hodgkin lymphoma, unspecified, unspecified site"),   # f for ph
    ("low k", "E87.6", "Hypokalemia"),                                  # k: potassium
    ("lle cellulitis", "L03.116", "Cellulitis of left lower limb"),     # left lower extremity: the side is a qualifier
    ("rue dvt", "I82.621", "Acute embolism and thrombosis of deep veins of right upper extremity"),  # limb ~ extremity
    ("b/l knee oa", "M17.0", "Bilateral primary osteoarthritis of knee"),
    ("chiken pox", "B01.9", "Varicella without complication"),         # a slip inside a lay phrase
    ("gall stones", "K80.20", "Calculus of gallbladder without cholecystitis without obstruction"),  # written apart
    ("gi bleeding", "K92.2", "Gastrointestinal hemorrhage, unspecified"),   # gi; bleeding: hemorrhage
    ("cirosis", "K74.60", "Unspecified cirrhosis of liver"),  # two letters left out: cirrhosis (not pyrosis, respelled)
    ("numonia", "J18.9", "Pneumonia, unspecified organism"),  # silent p and an e left out
    ("afib with rvr", "I48.91", "Unspecified atrial fibrillation"),  # "rvr" matches nothing: read without it
    ("oa both knees", "M17.0", "Bilateral primary osteoarthritis of knee"),  # both: the bilateral code
    ("urti", "J06.9", "Acute upper respiratory infection, unspecified"),  # an abbreviation, not "urticaria" being typed
    ("lgib", "K92.2", "Gastrointestinal hemorrhage, unspecified"),   # its reading less "lower" (no code says it)
    ("pvcs", "I49.3", "Ventricular premature depolarization"),      # an abbreviation's plural
    ("dqv", "M65.4", "Radial styloid tenosynovitis [de Quervain]"),
    ("type ii diabetes", "E11.9", "Type 2 diabetes mellitus without complications"),   # roman numeral: the digit
    ("stage iv pressure ulcer sacrum", "L89.154", "Pressure ulcer of sacral region, stage 4"),   # sacrum ~ sacral
])
def test_query_understanding_ranks_the_coders_code_first(cb, query, code, title):
    assert _hit(cb, query, code).title == title


@pytest.mark.parametrize("query,code,within", [
    ("water on the knee", "M25.469", 3),     # Effusion, unspecified knee
    ("artheritis", "M19.90", 1),             # arthritis (1,800 uses) before arteritis (137): both one edit
    ("ercp", "0FJB8ZZ", 10),                 # Inspection of Hepatobiliary Duct, Via Natural or Artificial Opening Endoscopic
    ("thyroidectomy", "0GTK0ZZ", 3),         # Resection of Thyroid Gland, Open Approach
    ("preop exam", "Z01.818", 3),            # Encounter for other preprocedural examination
    ("tmj", "M26.609", 3),                   # Unspecified temporomandibular joint disorder, unspecified side
                                             # (the billable default of the header M26.60)
    ("spine stenosis", "M48.00", 1),         # Spinal stenosis, site unspecified: spine ~ spinal
    ("ckd3", "N18.30", 1),                   # Chronic kidney disease, stage 3 unspecified: ckd3 -> ckd 3
    ("ear ringing", "H93.19", 3),            # Tinnitus, unspecified ear (the header H93.1's billable default):
                                             # the lay phrase "ringing in the ears" in another order
    ("can't breathe", "R06.00", 3),          # Dyspnea, unspecified: can't -> cant, a lay phrase
    ("fractured wrist", "S62.10", 3),        # Fracture of unspecified carpal bone (Index: Fracture, wrist): fractured ~ fracture
    ("laparoscopic gastric bypass", "0D164ZA", 10),  # Bypass Stomach to Jejunum, Percutaneous Endoscopic: gastric ~ stomach
    ("heart muscle disease", "I42.9", 3),    # Cardiomyopathy, unspecified
])
def test_lexicon_and_typos_reach_the_code(cb, query, code, within):
    system = "icd10pcs" if code[0].isdigit() else "icd10cm"
    _hit(cb, query, code, within, system)
