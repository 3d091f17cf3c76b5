"""Search over the store pulled from the official files (the session `cb` fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcodes.model import normalize_key
from medcodes.search import search
from medcodes.search.build import Builder, Resolver
from medcodes.search.evaluate import load_cases, score

TUNING = Path(__file__).parent / "relevance" / "tuning.tsv"
HELDOUT = Path(__file__).parent / "relevance" / "heldout.tsv"
CONTEXT = {"pcs": ["icd10pcs"], "hcpcs": ["hcpcs"]}


def codes(result):
    return [h.code for h in result.hits]


def pairs(result):
    return [(h.system, h.code) for h in result.hits]


# ------------------------------------------------------------------ resolution (synthetic, no store)
def test_index_codes_are_redirected_or_dropped():
    # synthetic mini code list (real ICD-10-CM shapes), not read from any file
    b = Builder()
    for key, code, bill in [("E11", "E11", False), ("E119", "E11.9", True), ("E1165", "E11.65", True),
                            ("H9329", "H93.29", False), ("H93291", "H93.291", True)]:
        b.add_code("icd10cm", key, code, code, bill, "4")
    res = Resolver(b, "icd10cm")
    ids = {cid: code for code, cid in ((k[1], v) for k, v in b.code_ids.items())}
    assert [ids[c] for c, _w in res.resolve("E11.65")] == ["E1165"]
    assert sorted(ids[c] for c, _w in res.resolve("E11.-")) == ["E11", "E1165", "E119"]
    assert sorted(ids[c] for c, _w in res.resolve("H93.29-")) == ["H9329", "H93291"]
    assert res.resolve("E11.69") == []                    # not in this release: dropped
    assert b.stats["index_codes_dropped"] == 1


# ------------------------------------------------------------------ real store
def test_relevance_sets_are_large_distinct_and_every_code_exists(cb):
    tuning, heldout = load_cases(TUNING), load_cases(HELDOUT)
    assert len(tuning) >= 300 and len(heldout) >= 150
    # a count only: a failure must not print held-out queries (nobody reads them)
    shared = len({c.query for c in tuning} & {c.query for c in heldout})
    assert shared == 0, f"{shared} queries are in both the tuning and the held-out set"
    kinds = {c.kind for c in heldout}
    assert {"typo", "lay", "abbrev", "laterality", "encounter", "pcs", "hcpcs"} <= kinds
    from medcodes.search.api import engine_for

    conn = engine_for(cb).conn
    for case in tuning + heldout:
        assert case.accepted, case.query
        for code in case.accepted:
            system, code = code.split(":", 1) if ":" in code else (case.system, code)
            key = normalize_key(code.rstrip("*"))
            where, args = ("key >= ? AND key < ?", [key, key + "\uffff"]) if code.endswith("*") else ("key = ?", [key])
            if system:
                where, args = where + " AND system = ?", [*args, system]
            row = conn.execute(f"SELECT 1 FROM code WHERE {where}", args).fetchone()
            assert row is not None, f"{case.query!r}: {code} is in no installed {system or ''} release"


def _scores(cb, path):
    cases = load_cases(path)
    by = {c.query: c for c in cases}
    overall = score(cases, lambda q: pairs(search(cb, q, limit=20)))
    ctx = score(cases, lambda q: pairs(search(cb, q, limit=20, systems=CONTEXT.get(by[q].kind))))
    return overall, ctx


def test_relevance_regression_tuning(cb):
    overall, ctx = _scores(cb, TUNING)
    # measured (694 queries: 195 written in session 9 and 163 abbreviation / lay / typo queries in session 10,
    # each before any engine answered them): all systems r@1 0.922 r@10 0.984 MRR 0.949; with context
    # r@1 0.938 r@10 0.987 MRR 0.959 (session 9, 531 queries: 0.832 / 0.915 / 0.864); with find13b's 120
    # laterality / encounter / pcs / hcpcs / index queries (814): 0.905 / 0.975 / 0.935, context 0.923 / 0.979 / 0.946;
    # with find13c's 37 procedure / supply queries (851): before procedure / supply intent 0.898 / 0.971 / 0.928,
    # after 0.906 / 0.971 / 0.933 (pcs r@1 0.664 -> 0.726); context 0.914 / 0.974 / 0.939 (unchanged)
    # with find13e's 81 typo / lay / abbreviation queries (932): before query understanding (main 3471f93) 0.902 / 0.966 /
    # 0.928, context 0.910 / 0.969 / 0.934; after 0.912 / 0.973 / 0.938, context 0.920 / 0.976 / 0.943
    # with find13d's 89 procedure / supply / device queries (1166 with find13f's): before procedure / drug / supply
    # reading 0.888 / 0.966 / 0.918, context 0.897 / 0.967 / 0.925; after 0.903 / 0.979 / 0.933, context 0.910 /
    # 0.979 / 0.937 (pcs r@1 0.673 -> 0.755, r@10 0.868 -> 0.950; hcpcs r@1 0.729 -> 0.764)
    assert overall.recall1 >= 0.895 and overall.recall10 >= 0.975 and overall.mrr >= 0.928, overall.line()
    assert ctx.recall1 >= 0.905 and ctx.recall10 >= 0.975 and ctx.mrr >= 0.932, ctx.line()


def test_relevance_heldout(cb):
    """Scored only: no ranking change is tuned on these queries (tests/relevance/heldout.tsv).

    The issue's recall@10 target (>= 0.95) is not met yet (recall@1 >= 0.75 is); these
    thresholds only keep what was measured from getting worse.
    """
    overall, ctx = _scores(cb, HELDOUT)
    # measured (session 10, find13a: query lexicon and typos): all systems r@1 0.776 r@10 0.910 MRR 0.827;
    # with context r@1 0.801 r@10 0.945 MRR 0.859 (session 9: 0.682 / 0.836 / 0.733 and 0.706 / 0.871 / 0.766);
    # find13c (procedure / supply intent, 201 queries): all systems 0.776 / 0.915 / 0.832, context 0.796 / 0.945 / 0.856
    # find13e (query understanding, measured once at the end, under load): all systems 0.776 / 0.915 / 0.831, context
    # 0.796 / 0.940 / 0.855
    assert overall.recall1 >= 0.75 and overall.recall10 >= 0.89 and overall.mrr >= 0.80, overall.line()
    assert ctx.recall1 >= 0.78 and ctx.recall10 >= 0.92 and ctx.mrr >= 0.83, ctx.line()


@pytest.mark.parametrize("query,first", [
    ("ibs", "K58"),                                   # initials of the agency's "Irritable bowel syndrome"
    ("uti", "N39.0"),                                 # Urinary tract infection, site not specified
    ("cataract extraction with lens implant", "08R"),  # Replacement of Right/Left Lens with Synthetic Substitute
    ("mechanical ventilation over 96 hours", "5A1955Z"),  # Respiratory Ventilation, Greater than 96 Consecutive Hours
    ("hip replacement left", "0SRB"),                 # Replacement of Left Hip Joint (not hip muscles, tendons)
    ("stomach flu", "A08.4"),                         # Index: Flu > intestinal NEC (not Fluoroscopy of Stomach)
])
def test_issue_13_misses_rank_first(cb, query, first):
    assert codes(search(cb, query, limit=10))[0].startswith(first), codes(search(cb, query, limit=5))


def test_laterality_words_choose_the_lateral_code(cb):
    got = search(cb, "total knee replacement right", systems="icd10pcs", limit=10).hits
    assert got and all(h.code.startswith("0SRC") for h in got)   # Right Knee Joint, every one
    assert "Right Knee Joint" in got[0].title


def test_gem_procedure_titles_say_why(cb):
    hit = search(cb, "thoracentesis", systems="icd10pcs", limit=10).hits
    assert any(h.matched[0].startswith("ICD-9-CM procedure (GEMs): Thoracentesis") and h.code == "0W993ZZ"
               for h in hit)


def test_acronyms_from_official_names():
    from medcodes.search.text import acronyms

    got = acronyms(["Irritable bowel syndrome with diarrhea", "Irritable bowel syndrome, unspecified",
                    "Iliotibial band syndrome, right leg", "Generalized anxiety disorder", "Body mass index 19"])
    assert got["ibs"][0] == "irritable bowel syndrome" and got["gad"] == ["generalized anxiety disorder"]
    assert got["bmi"] == ["body mass index"]
    assert "bsw" not in got and "idb" not in got       # names must end in a head noun


def test_abbreviations_defined_in_parentheses():
    from medcodes.search.text import definitions

    got = definitions(["Patients with inflammatory bowel disease (ibd)", "Extracorporeal membrane oxygenation (ECMO)",
                       "TURP (transurethral resection of prostate)", "Injury involving roller skating (inline)",
                       "Fracture (traumatic)", "C-section (see Extraction, products of conception)"])
    assert got == {"ibd": ["inflammatory bowel disease"], "ecmo": ["extracorporeal membrane oxygenation"],
                   "turp": ["transurethral resection of prostate"]}


def test_query_words_the_texts_write_otherwise():
    from medcodes.search.text import family, qualifiers, stem, synonym_variants

    assert stem("feet") == "foot" and stem("teeth") == "tooth"
    # a singular ending in "s" keeps it, and its plural in "es" reads as it (was "lense" / "len", "sinuse")
    assert stem("lenses") == stem("lens") == "lens" and stem("sinuses") == "sinus" == stem("sinus")
    assert stem("herpesviruses") == "herpesvirus" and stem("causes") == "cause" and stem("abuses") == "abuse"
    assert stem("testes") == "testis" and stem("vertebrae") == "vertebra" and stem("calculi") == "calculus"
    assert family("dislocated") == family("dislocation") and family("collapsed") == family("collapse")
    tokens = {"chickenpox", "non", "emergency"}
    got = [v for v, _f in synonym_variants(["chicken", "pox"], is_token=tokens.__contains__)]
    assert ["chickenpox"] in got
    got = [v for v, _f in synonym_variants(["nonemergency", "ambulance"], known=tokens.__contains__,
                                           is_token=tokens.__contains__)]
    assert ["non", "emergency", "ambulance"] in got
    assert qualifiers(["flu", "vaccine", "encounter"]) == []          # "Encounter for immunization" is a word to match
    assert qualifiers(["sprain", "left", "subsequent", "encounter"]) == ["left", "subsequent", "encounter"]


@pytest.mark.parametrize("query,system,first", [
    ("urticaria", None, "L50.9"),            # Urticaria, unspecified; not "Other urticaria" (L50.8)
    ("hypothyroidism", None, "E03.9"),       # Hypothyroidism, unspecified; not "Other specified hypothyroidism"
    ("diabetic retinopathy", None, "E11.319"),  # Index: Retinopathy, diabetic -> see Diabetes, retinopathy (under "with")
    ("history of breast cancer", None, "Z85.3"),  # Personal history (Z85.3) before Family history (Z80.3)
    ("chicken pox", None, "B01.9"),          # Index: Chickenpox B01.9
    ("dislocated shoulder", None, "S43.0"),  # Index: Dislocation, shoulder S43.00-
    ("flat feet", None, "Q66.5"),            # Index: Flat, foot (congenital) Q66.5-
    ("ecmo", "icd10pcs", "5A1522F"),         # PCS Index: ECMO -> Extracorporeal Oxygenation, Membrane, Central
    ("hip fx", None, "S72.0"),               # fx: fracture; Index: Fracture, hip -> see Fracture, femur, neck
    ("liver transplant", None, "0FY00Z"),    # Transplantation of Liver; "Liver transplant status" (Z94.4) below
    ("nuemonia", None, "J18.9"),             # "p" left out and two letters swapped: Pneumonia, unspecified organism
    ("hypertenshun", None, "I10"),           # spelled as it sounds ("-shun" for "-sion"): Essential hypertension
    ("oedema", None, "R60.9"),               # a word that only starts a rare token ("oedematien") is also a typo
    ("anaemia in ckd", None, "D63.1"),       # British spelling read as the texts' (anemia), then ckd: Anemia in CKD
])
def test_coder_first_pick(cb, query, system, first):
    assert codes(search(cb, query, systems=system, limit=10))[0].startswith(first), codes(search(cb, query, limit=5))


def test_british_spellings_read_as_the_official_texts_american_ones(cb):
    for british, american in [("oesophageal varices", "esophageal varices"), ("haemorrhoids", "hemorrhoids"),
                              ("paediatric immunisation", "pediatric immunization"), ("nebuliser", "nebulizer")]:
        assert codes(search(cb, british, limit=10)) == codes(search(cb, american, limit=10)), british
    assert codes(search(cb, "haemorrhoids", limit=1))[0] == "K64.9"          # Unspecified hemorrhoids
    from medcodes.search.text import american as am

    assert am("toe", lambda w: w in {"toe", "te"}) == "toe"                 # a word of the index stays


def test_a_procedure_ranks_above_the_diagnoses_that_mention_it(cb):
    got = codes(search(cb, "cholecystectomy", limit=50))
    assert got[0].startswith("0FT4") and got.index("Z90.49") > 5   # Resection of Gallbladder; the status code below
    assert codes(search(cb, "liver transplant", limit=3))[0] == "0FY00Z0"      # Transplantation of Liver, Allogeneic


def test_procedure_and_supply_words_rank_their_codes_above_conditions(cb):
    # all systems: "ligation" names a procedure -> 0UL50ZZ Occlusion of Right Fallopian Tube, Open Approach
    # (not N97.1 Female infertility of tubal origin); "-gram" -> B24 Imaging, Heart, Ultrasonography
    top = search(cb, "tubal ligation", limit=3).hits[0]
    assert (top.system, top.code, top.title) == ("icd10pcs", "0UL50ZZ", cb.lookup("0UL50ZZ", system="icd10pcs").title)
    top = search(cb, "echocardiogram", limit=3).hits[0]
    assert (top.system, top.code) == ("icd10pcs", "B24")
    # "injection" and a dose name a drug: J1940 Injection, furosemide, up to 20 mg
    top = search(cb, "injection furosemide", limit=3).hits[0]
    assert (top.system, top.code, top.title) == ("hcpcs", "J1940", cb.lookup("J1940", system="hcpcs").title)
    # a condition still ranks its diagnosis first
    assert [(h.system, h.code) for h in search(cb, "cataract", limit=1).hits] == [("icd10cm", "H26.9")]
    # (the header O00.1 "Tubal pregnancy" gives its place to the billable code the Tabular names unspecified)
    assert [(h.system, h.code) for h in search(cb, "tubal pregnancy", limit=1).hits] == [("icd10cm", "O00.109")]
    assert search(cb, "fracture of femur", limit=1).hits[0].code.startswith("S72")


def test_a_query_no_code_has_all_words_but_one_of_still_answers(cb):
    # no code's texts hold four of "catheter associated urinary tract infection": all words but two
    # find N39.0 Urinary tract infection, site not specified (it returned no hits before)
    hits = search(cb, "catheter associated urinary tract infection", limit=5).hits
    assert ("icd10cm", "N39.0", cb.lookup("N39.0").title) in [(h.system, h.code, h.title) for h in hits]


def test_a_hcpcs_only_search_keeps_its_temporary_procedure_codes(cb):
    # C and G codes rank below the ICD-10-PCS procedure only when the search covers ICD-10-PCS; searching
    # HCPCS alone, G0289 "Arthroscopy, knee, surgical, ..." ranks above knee braces (E1812, L1810)
    hits = search(cb, "knee arthroscopy", systems=["hcpcs"], limit=3).hits
    g0289 = next(h for h in hits if h.code == "G0289")
    assert g0289.title == cb.lookup("G0289", system="hcpcs").title


def test_laterality_and_encounter_words_reach_the_codes_below(cb):
    # Index: Varix, leg -> I83.90 (unspecified side); "left" picks I83.92 under the same parent
    assert codes(search(cb, "varicose veins of left leg", limit=5))[0] == "I83.92"
    # the inclusion term "Fracture of distal end of radius" is on the header S52.5
    assert codes(search(cb, "left distal radius fracture", limit=5))[0] == "S52.502A"
    assert codes(search(cb, "fracture of left hip subsequent encounter", limit=5))[0] == "S72.002D"
    assert codes(search(cb, "concussion sequela", limit=5))[0] == "S06.0X0S"
    # a code without laterality stays when the query states one
    assert codes(search(cb, "plantar fasciitis left", limit=5))[0] == "M72.2"


def test_a_side_word_reaches_the_unilateral_code(cb):
    # K40.90 "Unilateral inguinal hernia, without obstruction or gangrene, not specified as recurrent":
    # ICD-10-CM codes the side of an inguinal hernia as "unilateral"
    top = search(cb, "right inguinal hernia", limit=5).hits[0]
    assert (top.code, top.title) == ("K40.90", cb.lookup("K40.90").title) and "Unilateral" in top.title
    # a billable code stating the other side is not a "unilateral" answer (M17.12 is the left knee)
    got = codes(search(cb, "primary osteoarthritis right knee", limit=10))
    assert got[0] == "M17.11" and "M17.12" not in got
    # the Index's "Hernia, inguinal, bilateral" -> K40.20, the code without obstruction or gangrene
    assert codes(search(cb, "bilateral inguinal hernia", limit=5))[0] == "K40.20"


def test_a_dashed_index_code_prefers_the_codes_its_term_names(cb):
    # Index: Cellulitis, lower limb L03.11- (L03.111 right axilla ... L03.115 right lower limb);
    # "leg" is "see Cellulitis, lower limb", "arm" is "see Cellulitis, upper limb"
    assert codes(search(cb, "right leg cellulitis", limit=3))[0] == "L03.115"
    assert codes(search(cb, "cellulitis left arm", limit=3))[0] == "L03.114"


def test_encounter_words_prefer_codes_with_a_7th_character(cb):
    # T63.441A Toxic effect of venom of bees, accidental (unintentional), initial encounter; not the
    # Index's "Bee sting > fava bean" (D55.0, no encounter axis)
    got = codes(search(cb, "bee sting initial encounter", limit=10))
    assert got[0] == "T63.441A" and ("D55.0" not in got or got.index("D55.0") > 0)


def test_temporary_hcpcs_procedure_codes_rank_below_the_procedure(cb):
    # "colonoscopy with biopsy": 0DB?8ZX Excision of <colon part>, Via Natural or Artificial Opening
    # Endoscopic, Diagnostic; C2613 (Lung biopsy plug with delivery system) and C7542 are OPPS codes
    got = codes(search(cb, "colonoscopy with biopsy", limit=20))
    pcs = next(i for i, c in enumerate(got) if c[:3] == "0DB" and c.endswith("8ZX"))
    assert pcs < 5 and all(got.index(c) > pcs for c in ("C2613", "C7542") if c in got), got


def test_status_codes_rank_below_the_procedure(cb):
    # Z94.4 "Liver transplant status" is for a patient who had one; the transplant is ICD-10-PCS 0FY00Z*
    got = search(cb, "liver transplant", limit=10).hits
    assert got[0].system == "icd10pcs" and got[0].code.startswith("0FY00Z")
    assert "Z94.4" not in codes(search(cb, "liver transplant", limit=1))
    # ... and first when asked for
    assert codes(search(cb, "liver transplant status", limit=1)) == ["Z94.4"]


def test_pcs_scope_and_biopsy_words_read_the_axes(cb):
    from medcodes.search.build import _pcs_words

    # 0DBN8ZX: Excision of Sigmoid Colon, Via Natural or Artificial Opening Endoscopic, Diagnostic
    words = _pcs_words("0DBN8ZX", cb.lookup("0DBN8ZX", system="icd10pcs").title)
    assert words and "colonoscopy" in words.split() and "biopsy" in words.split()
    assert _pcs_words("0DBN0ZZ", cb.lookup("0DBN0ZZ", system="icd10pcs").title) is None   # open, not diagnostic
    top = search(cb, "colonoscopy with biopsy", systems="icd10pcs", limit=5).hits[0]
    assert top.code[:3] == "0DB" and top.code[4:] == "8ZX", top     # Excision, endoscopic, Diagnostic
    top = search(cb, "bronchoscopy with biopsy", systems="icd10pcs", limit=5).hits[0]
    assert top.code[:3] == "0BB" and top.code[4:] == "8ZX", top


def test_an_index_term_naming_a_table_reaches_the_body_part(cb):
    # PCS Index "Colectomy, see Excision / Resection, Gastrointestinal System": N is the sigmoid colon
    got = codes(search(cb, "sigmoid colectomy", systems="icd10pcs", limit=10))
    assert got and all(c[:3] in ("0DB", "0DT") and c[3] == "N" for c in got[:5]), got


def test_report_only_hcpcs_codes_rank_below_payable_ones(cb):
    got = codes(search(cb, "removal of sutures", limit=10))
    assert got.index("Z48.02") < got.index("S0630")    # S0630 is BETOS Z2 (not payable by Medicare)


@pytest.mark.parametrize("query,code", [
    ("diabetes type 2 with hyperglycemia", "E11.65"),
    ("hives", "L50.9"),
    ("pnuemonia", "J18.9"),
    ("diabtes", "E11.9"),
])
def test_top_hit(cb, query, code):
    assert codes(search(cb, query))[0] == code


def test_every_hit_says_why(cb):
    hit = search(cb, "hives").hits[0]
    assert hit.code == "L50.9" and hit.system == "icd10cm" and hit.billable is True
    assert hit.matched and "Alphabetic Index" in hit.matched[0] and "Hives" in hit.matched[0]
    assert search(cb, "Type 2 diabetes mellitus with hyperglycemia").hits[0].matched


def test_lay_terms_and_procedures(cb):
    assert any(c.startswith("I21") for c in codes(search(cb, "heart attack", limit=5)))
    assert any(c.startswith("S72") for c in codes(search(cb, "broken hip", limit=10)))
    assert "0DTJ4ZZ" in codes(search(cb, "appendectomy laparoscopic", systems="icd10pcs", limit=10))
    assert {"E1130", "K0001"} & set(codes(search(cb, "wheelchair", systems=["hcpcs"])))


def test_autocomplete_partial_words_any_order(cb):
    got = codes(search(cb, "diab mel", limit=20))
    assert any(c.startswith(("E10", "E11", "E13")) for c in got)
    assert codes(search(cb, "mellitus diabetes type 2 hyperglycemia"))[0] == "E11.65"


def test_code_prefix_lists_codes_in_order(cb):
    res = search(cb, "E11.", limit=5)
    assert codes(res)[:3] == ["E11", "E11.0", "E11.00"]
    assert res.truncated and res.total > 5
    assert all(h.system == "icd10cm" for h in res.hits)
    assert codes(search(cb, "0DT", limit=2)) == ["0DT", "0DT10ZZ"]


def test_filters_and_paging(cb):
    full = search(cb, "wheelchair", limit=1000)
    page = search(cb, "wheelchair", limit=5, offset=5)
    assert codes(page) == codes(full)[5:10] and page.total == full.total and page.truncated
    assert all(h.system == "hcpcs" for h in search(cb, "wheelchair", systems=["hcpcs"]).hits)
    bill = search(cb, "diabetes", billable=True, limit=50)
    assert bill.hits and all(h.billable for h in bill.hits)
    assert all(h.system == "icd9cm" for h in search(cb, "diabetes", systems="icd9cm").hits)
    ch = search(cb, "fracture", chapter="19", limit=20)
    assert ch.hits and all(h.code.startswith(("S", "T")) for h in ch.hits)


@pytest.mark.parametrize("query", [
    "", "   ", "x" * 10000, "!!!???...", '"unbalanced', "diabetes AND (", "NEAR(a b", "col:title*",
    "'; DROP TABLE code; --", "\x00\x01", "*", "-", "E11.-", None, 12345,
])
def test_bad_queries_never_raise(cb, query):
    res = search(cb, query)
    assert isinstance(res.total, int) and res.total >= 0
    json.dumps(res.as_dict())


def test_empty_and_long_queries_say_why(cb):
    assert search(cb, "").error and search(cb, "").hits == []
    assert "too long" in search(cb, "x" * 10000).error
    assert "unknown system" in search(cb, "diabetes", systems=["cdt"]).error


def test_as_dict_and_cli(cb, home):
    from click.testing import CliRunner

    from medcodes.cli import main

    d = search(cb, "hives", limit=3).as_dict()
    assert set(d["hits"][0]) >= {"system", "code", "title", "billable", "score", "matched"}
    out = CliRunner().invoke(main, ["--home", str(home), "search", "hives", "--json", "--limit", "2"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["hits"][0]["code"] == "L50.9" and len(data["hits"]) == 2
    out = CliRunner().invoke(main, ["--home", str(home), "search", "wheelchair", "--system", "hcpcs", "--billable"])
    assert out.exit_code == 0 and "K0001" in out.output


def test_index_codes_shown_exist_in_the_release(cb):
    for q in ("hives", "heart attack", "acetaminophen poisoning", "neoplasm breast malignant"):
        for h in search(cb, q, systems="icd10cm", limit=20).hits:
            assert cb.validate(h.code, system="icd10cm").exists, (q, h.code)


def test_prepare_loads_the_cached_index_and_typos_use_the_compiled_neighbourhood(cb):
    from medcodes.search import prepare
    from medcodes.search.api import engine_for
    from medcodes.search.engine import Engine

    path = prepare(cb, prune=False)
    assert path.exists() and engine_for(cb).path == path
    eng = Engine(path)                      # a fresh load from the cache file
    try:
        near = {eng.vocab[t] for t in eng.near("pnuemonia")}
        assert "pneumonia" in near
        assert all(len(eng.vocab[t]) >= 3 for t in eng.near("diabte"))
    finally:
        eng.close()


def test_see_reference_is_read_under_the_referring_main_term(cb):
    """The 2017 Alphabetic Index says "Fracture, traumatic > jaw - see Fracture, mandible": the
    target is "Fracture, traumatic > mandible" (S02.609), not the first "Fracture ..." main term;
    "talus - see Fracture, tarsal, talus" reaches "Fracture, traumatic > tarsal bone > talus"."""
    import sqlite3

    from medcodes.search.build import SeeIndex, _root, load_terms

    info = max(cb.store.releases("icd10cm_index"), key=lambda i: i.release == "2017")
    conn = sqlite3.connect(cb.store.path_for(info.system, info.release))
    try:
        terms = load_terms(conn, {"index"})
    finally:
        conn.close()
    see = SeeIndex(terms, "index")
    jaw = next(t for t in terms.values() if t.path == "Fracture, traumatic > jaw")
    assert see.find(jaw.see, through_with=True, home=_root(jaw, terms)).path == "Fracture, traumatic > mandible"
    talus = next(t for t in terms.values() if t.path == "Fracture, traumatic > talus")
    assert see.find(talus.see, home=_root(talus, terms)).path.startswith("Fracture, traumatic > tarsal bone > talus")
    hits = [h.code for h in search(cb, "jaw fracture", systems="icd10cm", limit=10).hits]
    assert any(c.startswith("S02.609") for c in hits[:3]), hits    # Fracture of mandible, unspecified


@pytest.mark.parametrize("query, header, child", [
    ("umbilical hernia", "K42", "K42.9"),        # K42.9 Umbilical hernia without obstruction or gangrene
    ("nausea and vomiting", "R11", "R11.2"),     # R11.2 Nausea with vomiting, unspecified
    ("tubal pregnancy", "O00.1", "O00.109"),     # O00.109 Unspecified tubal pregnancy without intrauterine pregnancy
])
def test_a_header_gives_its_place_to_its_default_billable_child(cb, query, header, child):
    assert cb.lookup(header, system="icd10cm", ncci=False).billable is False
    assert cb.lookup(child, system="icd10cm", ncci=False).billable is True
    got = codes(search(cb, query, systems="icd10cm", limit=10))
    assert got[0] == child, got
    assert header not in got[:1]


def test_injury_family_defaults_to_the_initial_encounter_for_a_closed_fracture(cb):
    # S02.609A Fracture of mandible, unspecified, initial encounter for closed fracture
    assert "initial encounter for closed fracture" in cb.lookup("S02.609A", system="icd10cm", ncci=False).title
    got = codes(search(cb, "jaw fracture", systems="icd10cm", limit=20))
    assert got[0] == "S02.609A", got
    # the open fracture and the later encounters of the same family rank below it
    for later in ("S02.609B", "S02.609D", "S02.609S"):
        if later in got:
            assert got.index(later) > got.index("S02.609A")
    # a query that says so gets them: the subsequent encounter, routine healing first
    sub = codes(search(cb, "jaw fracture subsequent encounter", systems="icd10cm", limit=10))
    assert sub[0] == "S02.609D", sub


def test_one_family_does_not_fill_the_page():
    """Beyond three codes under one parent, the next rank a little lower (structure.diversify)."""
    import numpy as np

    from medcodes.search.engine import Board
    from medcodes.search.structure import SIBLINGS_KEPT, diversify

    class Eng:      # five codes under parent 0 (ids 1-5), one under parent 6 (id 7)
        c_up = np.array([0, 0, 0, 0, 0, 0, 6, 6])

    board = Board(np.full(8, -1.0), np.zeros(8, dtype=np.int64))
    ranked = np.array([1, 2, 3, 4, 5, 7])
    board.offer(ranked, np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.8]), np.zeros(6, dtype=np.int64))
    out = diversify(Eng(), board, ranked, 6).tolist()
    assert out[:SIBLINGS_KEPT] == [1, 2, 3] and out[SIBLINGS_KEPT] == 7 and sorted(out) == sorted(ranked.tolist())


def test_a_side_word_is_read_in_the_code_own_texts_not_in_index_paths(cb):
    """T16.9XXA "Foreign body in ear, unspecified ear" is reached by Index paths such as "Foreign body >
    inadvertently left in operation wound > auditory canal": that "left" is no side. "left" chooses
    T16.2XXA "Foreign body in left ear, initial encounter"."""
    assert "left ear" in cb.lookup("T16.2XXA", system="icd10cm", ncci=False).title
    got = codes(search(cb, "foreign body left ear initial", systems="icd10cm", limit=10))
    assert got[0] == "T16.2XXA", got


def test_a_fracture_is_traumatic_and_displaced_unless_the_query_says_otherwise(cb):
    """The Index's "Fracture" is "Fracture, traumatic" (a stress or pathological fracture is said so),
    and a fracture not stated as displaced or not is coded displaced (guideline I.C.19.c)."""
    got = codes(search(cb, "left tibia fracture delayed healing", systems="icd10cm", limit=10))
    assert got[0] == "S82.202G", got     # Unspecified fracture of shaft of left tibia, ... delayed healing
    stress = codes(search(cb, "stress fracture left tibia", systems="icd10cm", limit=5))
    assert stress[0].startswith("M84.362"), stress   # Stress fracture, left tibia
    displaced = codes(search(cb, "fracture of neck of fifth metacarpal right hand initial", systems="icd10cm", limit=10))
    assert "S62.336A" in displaced and "S62.366A" in displaced, displaced
    assert displaced.index("S62.336A") < displaced.index("S62.366A")   # Displaced before Nondisplaced


@pytest.mark.parametrize("query", ["concussion sequelae", "late effect of concussion"])
def test_sequela_spelled_as_users_write_it_chooses_the_7th_character_s(cb, query):
    # S06.0X0S Concussion without loss of consciousness, sequela
    assert cb.lookup("S06.0X0S", system="icd10cm", ncci=False).title.endswith("sequela")
    got = codes(search(cb, query, systems="icd10cm", limit=5))
    assert got[0].startswith("S06.0X") and got[0].endswith("S"), got


def test_bilateral_without_a_bilateral_code_gives_the_right_and_left_codes(cb):
    """Guideline I.B.13: when no bilateral code is provided, the right and the left codes are assigned.
    M25.56- Pain in knee has right (M25.561), left (M25.562) and unspecified (M25.569) knee only; a
    bilateral code, where there is one, still ranks first (H93.13 Tinnitus, bilateral)."""
    assert [c["code"] for c in cb.lookup("M25.56", system="icd10cm", ncci=False).children] == ["M25.561", "M25.562", "M25.569"]
    got = codes(search(cb, "bilateral knee pain", systems="icd10cm", limit=10))
    assert {"M25.561", "M25.562"} <= set(got[:3]), got
    assert codes(search(cb, "bilateral tinnitus", systems="icd10cm", limit=3))[0] == "H93.13"


def test_a_residual_category_ranks_below_the_unspecified_code_for_a_bare_term(cb):
    """L89.8 "Pressure ulcer of other site" is a residual category (its "other" anywhere in the title,
    not only at the start): a bare "pressure ulcer" is L89.90, unspecified site and stage."""
    assert cb.lookup("L89.90", system="icd10cm", ncci=False).title == "Pressure ulcer of unspecified site, unspecified stage"
    got = codes(search(cb, "pressure ulcer", systems="icd10cm", limit=5))
    assert got[0] == "L89.90", got
