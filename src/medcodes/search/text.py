"""Text normalisation shared by the index builder and the query parser.

Both sides must turn text into the same tokens: lower case, accents
dropped, split on anything that is not a letter or digit, a light plural
stemmer (``fractures`` -> ``fracture``, ``injuries`` -> ``injury``), and a
few stop words dropped (``of``, ``the``... but never ``with``/``without``/
``not``, which change the code in ICD-10-CM).

Also here: the small, hand-written table of coders' abbreviations and lay
phrases (``MI``, ``lap``, ``heart attack``...) used to expand a query; what
is read from the official texts at build time to expand it further (the
initials of their multi-word names, the abbreviations they define in
parentheses, Porter2 word families); the laterality / encounter words and
what makes a query name a procedure; and edit-distance-1 variants for typo
tolerance (checked against the vocabulary only, never against documents).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Iterable

from . import lexicon as _lexicon

_SPLIT = re.compile(r"[^a-z0-9]+")

STOP_WORDS = frozenset({
    "a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "is", "of", "on", "or",
    "s", "the", "to", "other", "nos",
})

_ALPHABET = "abcdefghijklmnopqrstuvwxyz"

#: Laterality and encounter words: ICD-10-CM states them in the 6th/7th characters' titles, never
#: in the index, so a query's qualifiers select among codes rather than match an index entry.
QUALIFIERS = frozenset({"left", "right", "bilateral", "unilateral", "initial", "subsequent", "sequela",
                        "encounter"})
_SIDES = ("left", "right", "bilateral", "unilateral")
_ENCOUNTERS = ("initial", "subsequent", "sequela", "encounter")
#: each qualifier -> the words of its axis (a code stating none of them has no such axis)
QUALIFIER_GROUPS = {q: (_SIDES if q in _SIDES else _ENCOUNTERS) for q in QUALIFIERS}


def qualifiers(words: list[str]) -> list[str]:
    """The laterality / encounter words of a query; "encounter" only beside initial, subsequent or
    sequela (alone it is the "Encounter for ..." of a Z code, a word to match)."""
    quals = [w for w in words if w in QUALIFIERS and w != "encounter"]
    if any(w in _ENCOUNTERS for w in quals):
        quals += [w for w in words if w == "encounter"]
    return quals


#: What makes a query name a procedure, besides the ICD-10-PCS root operations (read from the
#: tables' headers at build time): the suffixes of surgical terms and a few plain words.
PROCEDURE_SUFFIXES = ("ectomy", "otomy", "ostomy", "plasty", "scopy", "graphy", "gram", "pexy", "rrhaphy",
                      "centesis", "cision", "tripsy", "desis", "lysis")
PROCEDURE_WORDS = frozenset({"surgery", "surgical", "biopsy", "transplant", "implant", "implantation",
                             "procedure", "operation", "placement", "scan", "ct", "mri", "ultrasound", "xray",
                             "angioplasty", "catheterization", "intubation", "ventilation", "dialysis",
                             "ligation", "stent", "cardioversion", "infusion", "transfusion", "cesarean",
                             "caesarean"})
#: Words of a procedure's extent or setting that ICD-10-PCS never writes in a title (it says "total"
#: with the root operation: Resection, not Excision).
PROCEDURE_MODIFIERS = frozenset({
    "total", "complete", "completely", "partial", "partially", "subtotal", "simple", "radical", "modified", "elective", "emergency",
    "emergent", "urgent", "routine", "primary", "standard", "conventional", "minimally", "invasive",
    "outpatient", "inpatient", "bedside", "procedure", "surgery", "surgical", "operation", "operative"})
#: ... of them, those that make a removal partial: ICD-10-PCS Excision (cutting out a portion), not
#: Resection (all of a body part).
PARTIAL_WORDS = frozenset({"partial", "partially", "subtotal"})
#: What makes a query ask for a supply, drug or piece of equipment (HCPCS Level II): dose and
#: packaging words and the common durable medical equipment and supply nouns.
SUPPLY_WORDS = frozenset({"injection", "mg", "mcg", "ml", "per", "kit", "supply", "supplies", "tray",
                          "wheelchair", "catheter", "walker", "crutches", "commode", "cushion", "orthosis",
                          "prosthesis", "nebulizer", "concentrator", "oximeter", "lancets", "syringe", "strips",
                          "dressing", "gauze", "pouch", "tubing", "dme", "brace", "boot", "stockings", "shoes",
                          "monitor", "mask", "pump", "bag", "meter", "scooter"})
#: Root operations that are also the words of conditions ("spontaneous abortion", "normal delivery",
#: "change in bowel habit", "compression fracture"): not taken as naming a procedure.
NOT_PROCEDURE = frozenset({"abortion", "delivery", "change", "control", "compression", "release", "division",
                           "performance", "restoration", "supplement", "map", "plain", "magnetic", "dressing",
                           "packing", "traction", "creation", "detachment", "introduction"})
#: ... unless it asks for the diagnosis side of one (a status, a history, a complication).
DIAGNOSIS_WORDS = frozenset({"status", "history", "complication", "complications", "failure", "rejection",
                             "infection", "following", "after", "post", "presence", "absence", "encounter",
                             "screening", "aftercare", "fitting", "adjustment", "mechanical", "malfunction",
                             "dependence", "dependent", "fall", "fell", "accident", "injury"})


#: What makes a query ask for imaging or nuclear medicine (ICD-10-PCS sections B and C: the "Ultrasonography
#: of Kidney Transplant" a plain "kidney transplant" does not ask for): the modalities' words and the
#: suffixes of their studies ("angiogram", "venography").
IMAGING_WORDS = frozenset({
    "ct", "cat", "cta", "mri", "mra", "mr", "xray", "x", "ray", "rays", "radiograph", "radiography", "radiographic",
    "film", "films", "fluoroscopy", "fluoroscopic", "fluoro", "ultrasound", "ultrasonography", "ultrasonic",
    "sonogram", "sonography", "us", "echo", "doppler", "duplex", "scan", "imaging", "image", "images",
    "tomography", "tomographic", "resonance", "magnetic", "computerized", "contrast", "pet", "spect",
    "nuclear", "scintigraphy", "radionuclide", "dexa", "densitometry", "imaging", "study", "view", "views"})
IMAGING_SUFFIXES = ("gram", "graphy", "graph")


#: What makes a query ask for the poisoning side of a drug (the Table of Drugs and Chemicals' columns:
#: poisoning by intent, adverse effect, underdosing), not the drug itself.
POISONING_WORDS = frozenset({
    "poisoning", "poison", "poisoned", "overdose", "overdosed", "od", "adverse", "effect", "effects", "reaction",
    "underdosing", "underdose", "underdosed", "toxicity", "toxic", "intoxication", "intoxicated", "ingestion",
    "ingested", "accidental", "intentional", "self", "harm", "suicide", "suicidal", "attempt", "assault",
    "undetermined", "allergic", "allergy", "side", "exposure", "exposed", "contact"})


def names_imaging(words: list[str]) -> bool:
    """Does a query (its words) ask for an imaging or nuclear medicine study?"""
    return any(w in IMAGING_WORDS or w.endswith(IMAGING_SUFFIXES) for w in words)


def names_supply(words: list[str]) -> bool:
    """Does a query (its words) ask for a supply, drug dose or equipment rather than a condition?"""
    return not any(w in DIAGNOSIS_WORDS for w in words) and any(w in SUPPLY_WORDS for w in words)


def names_procedure(words: list[str], operations: frozenset[str] | set[str]) -> bool:
    """Does a query (its words) name a procedure rather than a condition?"""
    if any(w in DIAGNOSIS_WORDS for w in words):
        return False
    return any(w in PROCEDURE_WORDS or (w in operations and w not in NOT_PROCEDURE) or w.endswith(PROCEDURE_SUFFIXES)
               for w in words)


def fold(text: str) -> str:
    """Lower case with accents removed (``Ménière`` -> ``meniere``)."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).lower()


#: English plurals no suffix rule reaches (``flat feet`` is the Index's ``Flat, foot``).
IRREGULAR = {"feet": "foot", "teeth": "tooth", "lice": "louse", "children": "child", "women": "woman",
             "men": "man", "mice": "mouse", "geese": "goose"}
#: Singular nouns that end in "s" (``lens``, ``sinus``): the plural adds "es" (``lenses`` is ``lens``,
#: not ``lense``; ``herpesviruses`` is ``herpesvirus``) and the singular keeps its "s" (``lens`` is no
#: plural of ``len``). General English and anatomical vocabulary, not words of particular queries.
S_SINGULARS = ("lens", "sinus", "virus", "fetus", "foetus", "callus", "plexus", "uterus", "meatus", "hiatus",
               "status", "apparatus", "iris", "pancreas", "atlas", "bias", "gas", "thrombus", "embolus",
               "fungus", "nevus", "naevus", "bolus", "humerus", "ramus", "sulcus", "villus", "tinnitus",
               "tetanus", "stratus", "torus", "conus", "bronchus", "calculus", "meniscus", "nucleus", "alveolus",
               "bacillus", "glomerulus", "canthus", "fundus", "rhesus")
_ES_PLURALS = {s + "es": s for s in S_SINGULARS}
IRREGULAR.update({s: s for s in S_SINGULARS})
IRREGULAR.update(_ES_PLURALS)
#: Latin and Greek plurals of anatomical and clinical nouns (``testes``, ``vertebrae``, ``calculi``).
IRREGULAR.update({
    "testes": "testis", "pelves": "pelvis", "diagnoses": "diagnosis", "prostheses": "prosthesis",
    "metastases": "metastasis", "anastomoses": "anastomosis", "stenoses": "stenosis", "psychoses": "psychosis",
    "neuroses": "neurosis", "epiphyses": "epiphysis", "diaphyses": "diaphysis", "metaphyses": "metaphysis",
    "apophyses": "apophysis", "symphyses": "symphysis", "thromboses": "thrombosis", "fistulae": "fistula",
    "vertebrae": "vertebra", "bursae": "bursa", "scapulae": "scapula", "tibiae": "tibia", "fibulae": "fibula",
    "ulnae": "ulna", "patellae": "patella", "conjunctivae": "conjunctiva", "maculae": "macula",
    "mucosae": "mucosa", "ampullae": "ampulla", "calculi": "calculus", "bronchi": "bronchus", "fungi": "fungus",
    "menisci": "meniscus", "nuclei": "nucleus", "thrombi": "thrombus", "emboli": "embolus", "nevi": "nevus",
    "naevi": "nevus", "alveoli": "alveolus", "bacilli": "bacillus", "villi": "villus", "sulci": "sulcus",
    "glomeruli": "glomerulus", "phalanges": "phalanx", "ganglia": "ganglion", "appendices": "appendix",
    "apices": "apex", "cervices": "cervix", "foramina": "foramen", "labia": "labium", "bacteria": "bacterium",
    "ova": "ovum", "crura": "crus", "cornua": "cornu", "stomata": "stoma", "carcinomata": "carcinoma",
})
_ES_ENDS = tuple(_ES_PLURALS)


def stem(token: str) -> str:
    """Light plural stemming; the same function runs at build and query time."""
    if len(token) <= 3 or token.isdigit():
        return IRREGULAR.get(token, token)
    if token in IRREGULAR:
        return IRREGULAR[token]
    if token.endswith(_ES_ENDS):                            # "herpesviruses", "rotaviruses"
        return token[:-2]
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "xes", "ches", "shes")):
        return token[:-2]
    if token.endswith("s") and not token.endswith(("ss", "us", "is", "ys")):
        return token[:-1]
    return token


# ASCII fast path: upper -> lower, everything that is not a letter or digit -> space.
_ASCII = str.maketrans({chr(c): (chr(c).lower() if chr(c).isalnum() else " ") for c in range(128)})


def raw_tokens(text: str) -> list[str]:
    """Folded words, before stop words and stemming."""
    if text.isascii():
        return text.translate(_ASCII).split()
    return [t for t in _SPLIT.split(fold(text)) if t]


_STEMS: dict[str, str] = {}


def tokens(text: str) -> list[str]:
    """Index tokens of a text: folded, split, stop words dropped, stemmed."""
    out = []
    for t in raw_tokens(text):
        if t not in STOP_WORDS:
            s = _STEMS.get(t)
            if s is None:
                s = stem(t)
                if len(_STEMS) < 200000:
                    _STEMS[t] = s
            out.append(s)
    return out


# Coders' abbreviations and lay phrases -> the words the official files use.
# Keys and values are plain words (folded); a key may be several words.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "mi": ("myocardial infarction",),
    "ami": ("acute myocardial infarction",),
    "stemi": ("st elevation myocardial infarction",),
    "nstemi": ("non st elevation myocardial infarction",),
    "heart attack": ("myocardial infarction",),
    "htn": ("hypertension",),
    "high blood pressure": ("hypertension",),
    "low blood pressure": ("hypotension",),
    "dm": ("diabetes mellitus",),
    "t2dm": ("type 2 diabetes mellitus",),
    "t1dm": ("type 1 diabetes mellitus",),
    "dm2": ("type 2 diabetes mellitus",),
    "dm1": ("type 1 diabetes mellitus",),
    "iddm": ("type 1 diabetes mellitus",),
    "niddm": ("type 2 diabetes mellitus",),
    "sugar": ("diabetes",),
    "chf": ("congestive heart failure",),
    "copd": ("chronic obstructive pulmonary disease",),
    "cad": ("coronary artery disease",),
    "ckd": ("chronic kidney disease",),
    "esrd": ("end stage renal disease",),
    "aki": ("acute kidney failure",),
    "uti": ("urinary tract infection",),
    "uri": ("upper respiratory infection",),
    "dvt": ("deep vein thrombosis",),
    "pe": ("pulmonary embolism",),
    "afib": ("atrial fibrillation",),
    "a fib": ("atrial fibrillation",),
    "gerd": ("gastro esophageal reflux disease",),
    "adhd": ("attention deficit hyperactivity disorder",),
    "tia": ("transient ischemic attack",),
    "cva": ("cerebral infarction",),
    "stroke": ("cerebral infarction",),
    "bph": ("benign prostatic hyperplasia",),
    "osa": ("obstructive sleep apnea",),
    "ra": ("rheumatoid arthritis",),
    "oa": ("osteoarthritis",),
    "hiv": ("human immunodeficiency virus",),
    "mrsa": ("methicillin resistant staphylococcus aureus",),
    "ptsd": ("post traumatic stress disorder",),
    "lbp": ("low back pain",),
    "sob": ("shortness of breath",),
    "cabg": ("coronary artery bypass",),
    "bka": ("below knee amputation",),
    "aka": ("above knee amputation",),
    "lap": ("laparoscopic",),
    "laparoscopic": ("percutaneous endoscopic",),
    "lap chole": ("laparoscopic cholecystectomy",),
    "cholecystectomy": ("resection gallbladder",),
    "appendectomy": ("resection appendix",),
    "tonsillectomy": ("resection tonsils",),
    "c section": ("cesarean section",),
    "csection": ("cesarean section",),
    "cancer": ("malignant neoplasm",),
    "tumor": ("neoplasm",),
    "overdose": ("poisoning",),
    "vaccine": ("immunization",),
    "shot": ("vaccine",),
    "arthroscopy": ("inspection percutaneous endoscopic",),
    "upper endoscopy": ("inspection upper intestinal tract endoscopic",),
    "egd": ("inspection upper intestinal tract endoscopic",),
    "tubal ligation": ("occlusion fallopian tube",),
    "welcome to medicare": ("initial preventive physical examination",),
    "ekg": ("electrocardiogram",),
    "ecg": ("electrocardiogram",),
    "broken": ("fracture",),
    "break": ("fracture",),
    "hip": ("femur neck",),
    "flu": ("influenza",),
    "pink eye": ("conjunctivitis",),
    "hives": ("urticaria",),
    "shingles": ("zoster",),
    "sore throat": ("pharyngitis",),
    "strep throat": ("streptococcal pharyngitis",),
    "heartburn": ("esophageal reflux",),
    "high cholesterol": ("hypercholesterolemia",),
    "kidney stone": ("calculus kidney",),
    "nosebleed": ("epistaxis",),
    "chest pain": ("chest pain",),
    "covid": ("covid 19",),
    "cpap": ("continuous positive airway pressure",),
    "o2": ("oxygen",),
    "iv": ("intravenous",),
    "im": ("intramuscular",),
    "inj": ("injection",),
    "w": ("with",),
    "wo": ("without",),
    "w o": ("without",),
}


#: Query-only readings (not used by the coding assistant): clinicians' shorthand for the words the
#: official titles use, and the lay sense of "removal" (an organ taken out: ICD-10-PCS Resection;
#: the PCS root operation Removal is taking a device out, which stays the literal reading).
QUERY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "fx": ("fracture",),
    "hx": ("history",),
    "removal": ("resection",),
}


_MERGED: dict[str, tuple[str, ...]] = {}


def _synonyms(key: str) -> tuple[str, ...]:
    """Readings of a phrase: this module's tables first, then the general lexicon's (search/lexicon.py)."""
    got = _MERGED.get(key)
    if got is None:
        own = SYNONYMS.get(key) or QUERY_SYNONYMS.get(key, ())
        got = own + tuple(r for r in _lexicon_readings(key) if r not in own)
        # stop words never match (the index drops them): "failure to thrive" reads as "failure thrive"
        got = tuple(" ".join(w for w in r.split() if w not in STOP_WORDS) or r for r in got)
        if len(_MERGED) < 100000:
            _MERGED[key] = got
    return got


_LEXICON: dict[str, tuple[str, ...]] | None = None


def _lexicon_readings(key: str) -> tuple[str, ...]:
    """The lexicon's readings, its keys taken without stop words as queries are ("water on the knee" is
    looked up as "water knee"); the table is keyed once, on first use (built whole, then published, so a
    server thread never reads it half-built)."""
    global _LEXICON
    table = _LEXICON
    if table is None:
        table = {}
        bags: dict[str, tuple[str, ...]] = {}
        for source in (_lexicon.DRUG_NAMES, _lexicon.PROCEDURE_TERMS, _lexicon.LAY_TERMS, _lexicon.ABBREVIATIONS):  # the last wins a clash
            for k, v in source.items():
                table[" ".join(w for w in k.split() if w not in STOP_WORDS) or k] = v
                if " " in k:
                    bags[_bag(k)] = v
        # a phrase of several words is also found in another order or number ("ear ringing" for "ringing in
        # the ears", "stone kidney"), unless that is a phrase of its own
        for k, v in bags.items():
            table.setdefault(k, v)
        _LEXICON = table
    got = table.get(key)
    if got is None:
        got = _OTHER_FORM.get(key)
        if got is None:
            got = table.get(_bag(key), ()) if " " in key else ()
            if not got and len(key) >= 4 and key[-1] == "s" and key[:-1] in _lexicon.ABBREVIATIONS:
                got = _lexicon.ABBREVIATIONS[key[:-1]]      # an abbreviation's plural: "pvcs", "utis", "tias"
            if len(_OTHER_FORM) < 100000:
                _OTHER_FORM[key] = got
    return got


_OTHER_FORM: dict[str, tuple[str, ...]] = {}


def _bag(phrase: str) -> str:
    """A phrase's words without stop words, stemmed and sorted, marked so it is never a plain phrase."""
    return "\x00" + " ".join(sorted(stem(w) for w in phrase.split() if w not in STOP_WORDS))


def is_synonym(words: list[str]) -> bool:
    """Is the whole query one entry of the abbreviation / lay phrase tables?"""
    key = " ".join(words)
    return key in SYNONYMS or bool(_lexicon_readings(key))


def _replace_all(words: list[str]) -> list[str]:
    """Every synonym applied at once, longest phrase first (two rounds, for ``lap`` -> ``laparoscopic`` -> ...)."""
    for _round in range(2):
        out: list[str] = []
        i, changed = 0, False
        while i < len(words):
            for size in (3, 2, 1):
                key = " ".join(words[i:i + size])
                if len(words[i:i + size]) == size and _synonyms(key):
                    out.extend(_synonyms(key)[0].split())
                    i += size
                    changed = True
                    break
            else:
                out.append(words[i])
                i += 1
        words = out
        if not changed:
            break
    return words


#: Words a number follows ("type 2", "stage 3", "grade 2"), and the roman numerals and number words people
#: write there; the official titles write the digit ("Type 2 diabetes mellitus", "Chronic kidney disease, stage 3").
_NUMBERED = frozenset({"type", "stage", "grade", "class", "phase", "level", "dm", "diabetes", "mellitus"})
_NUMERALS = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "one": "1", "two": "2", "three": "3",
             "four": "4", "five": "5", "six": "6"}


def numerals(words: list[str]) -> list[str]:
    """``type ii diabetes`` -> ``type 2 diabetes``, ``stage three ckd`` -> ``stage 3 ckd``: a roman numeral
    or number word right after a word that takes a number, as the digit."""
    if not any(w in _NUMERALS for w in words[1:]):
        return words
    return [_NUMERALS[w] if i and w in _NUMERALS and words[i - 1] in _NUMBERED else w for i, w in enumerate(words)]


_RUN_IN = re.compile(r"^([a-z]{2,})(\d{1,2})$")


def lexicon_spelling(words: list[str], is_token: Callable[[str], bool],
                     near: Callable[[str], Iterable[str]]) -> list[str]:
    """Query words mended so an abbreviation / lay phrase of the tables is found despite a slip: two words
    the tables write as one (``gall stones`` -> ``gallstones``), and a word that is no word of the index
    read as the word one edit away that makes a table phrase with its neighbour or alone (``hart attack``
    -> ``heart attack``, ``chiken pox`` -> ``chicken pox``); letters run into a number are two words
    (``ckd3`` -> ``ckd 3``). Words of the index are never changed."""
    out = []
    for w in words:        # letters run into a number: "ckd3", "stage4" (not a word of the index, nor a phrase)
        m = _RUN_IN.match(w)
        if m and not is_token(w) and not _synonyms(w) and (is_token(m.group(1)) or _synonyms(m.group(1))):
            out.extend(m.groups())
        else:
            out.append(w)
    i = 0
    while i < len(out) - 1:
        a, b = out[i], out[i + 1]
        if _synonyms(a + b) and a.isalpha() and b.isalpha() and not _synonyms(f"{a} {b}"):
            out[i:i + 2] = [a + b]
        i += 1
    for i, w in enumerate(out):
        if len(w) < 3 or not w.isalpha() or is_token(w) or _synonyms(w):
            continue
        before = out[i - 1] if i else None
        after = out[i + 1] if i + 1 < len(out) else None
        fixes = sorted(c for c in near(w) if (after and _synonyms(f"{c} {after}")) or
                       (before and _synonyms(f"{before} {c}")) or (len(c) >= 5 and _synonyms(c)))
        if len(fixes) == 1:
            out[i] = fixes[0]
    return out


#: Words a multi-word name must end with to be read as the meaning of its initials
#: ("irritable bowel syndrome" for IBS, "generalized anxiety disorder" for GAD).
HEAD_NOUNS = frozenset({
    "disease", "diseases", "disorder", "syndrome", "infection", "failure", "injury", "virus", "block",
    "thrombosis", "embolism", "sclerosis", "leukemia", "aneurysm", "lymphoma", "arthritis", "index",
    "erythematosus", "fibrillation", "hypertension", "deficiency", "hemorrhage", "obstruction", "pneumonia",
    "carcinoma", "tachycardia", "ketoacidosis", "neuropathy", "retinopathy", "nephropathy", "fever", "ulcer",
    "stenosis", "insufficiency", "attack", "dysfunction", "anemia", "palsy", "dystrophy", "fracture",
    "infarction", "apnea", "arrest", "cancer",
})


def acronyms(texts: Iterable[str], keep: int = 2) -> dict[str, list[str]]:
    """Initials -> the names of 3-5 words (ending in a head noun) the official texts use most.

    Built from titles, inclusion terms and index entries at compile time, so an
    abbreviation the hand-written table lacks (``ibs``, ``gad``) still finds its
    condition when the agencies spell the name out.
    """
    counts: dict[str, dict[str, int]] = {}
    for text in texts:
        words = [w for w in raw_tokens(text.replace("-", " ")) if w not in STOP_WORDS]
        if HEAD_NOUNS.isdisjoint(words):
            continue
        for n in (3, 4, 5):
            for i in range(len(words) - n + 1):
                if words[i + n - 1] not in HEAD_NOUNS:
                    continue
                phrase = words[i:i + n]
                if all(w.isalpha() for w in phrase):
                    by = counts.setdefault("".join(w[0] for w in phrase), {})
                    name = " ".join(phrase)
                    by[name] = by.get(name, 0) + 1
    return {a: [p for p, _n in sorted(by.items(), key=lambda x: (-x[1], x[0]))[:keep]]
            for a, by in counts.items()}


#: The score factor of the readings when the whole query is a table entry (as for a part of a query).
WHOLE_READING_FACTOR = 0.9


def synonym_variants(words: list[str], initials: dict[str, list[str]] | None = None,
                     known: Callable[[str], bool] | None = None,
                     defined: dict[str, list[str]] | None = None,
                     is_token: Callable[[str], bool] | None = None) -> list[tuple[list[str], float]]:
    """Alternative word lists for a query, each with a score factor (<= 1).

    The original first, then every synonym applied at once, then each
    single replacement (longest phrases first); then two words written
    apart that the official texts write as one (``chicken pox`` ->
    ``chickenpox``, ``is_token``); then the long form the official texts
    give an abbreviation in parentheses (``defined``: ``IBD``, ``ECMO``);
    then, for a word that is no entry of the table and either no word of the
    index (``known``) or one without a vowel (``mdd``, ``cll``), the names its
    letters are the initials of (``initials``); at most six.
    """
    variants: list[tuple[list[str], float]] = [(words, 1.0)]
    seen = {tuple(words)}

    def add(new: list[str], factor: float) -> None:
        if tuple(new) not in seen and len(variants) < 6:
            seen.add(tuple(new))
            variants.append((new, factor))

    n = len(words)
    whole = _synonyms(" ".join(words)) if n <= 4 else ()
    if whole:
        # the whole query is an abbreviation or lay phrase ("hcc", "mini stroke"): every reading is
        # tried first (before the six variants run out); the words as typed keep the lead on a tie, so
        # an Index entry "Hives" still says why (a factor of 1.0 gained 2 of 694 tuning queries at recall@1
        # but showed the title, not the Index entry, as the reason)
        for repl in whole:
            add(repl.split(), WHOLE_READING_FACTOR)
    add(_replace_all(words), 0.9)
    for size in (3, 2, 1):
        for i in range(n - size + 1):
            key = " ".join(words[i:i + size])
            for repl in _synonyms(key):
                add(words[:i] + repl.split() + words[i + size:], 0.9)
    if is_token:
        for i in range(n - 1):
            joined = words[i] + words[i + 1]
            if words[i].isalpha() and words[i + 1].isalpha() and is_token(joined):
                add(words[:i] + [joined] + words[i + 2:], 0.95)
        for i, w in enumerate(words):       # and one the official texts write as two ("non-emergency")
            if len(w) >= 7 and w.isalpha() and not is_token(w) and known is not None:
                for k in range(3, len(w) - 2):
                    if known(w[:k]) and known(w[k:]):
                        add(words[:i] + [w[:k], w[k:]] + words[i + 1:], 0.95)
                        break
    if defined:
        for i, w in enumerate(words):
            for name in defined.get(w, ())[:1]:
                add(words[:i] + name.split() + words[i + 1:], 0.9)
    if initials:
        for i, w in enumerate(words):
            if (3 <= len(w) <= 5 and w.isalpha() and not _synonyms(w)
                    and not (known and known(w) and _VOWELS.intersection(w))):
                for name in initials.get(w, ()):
                    add(words[:i] + name.split() + words[i + 1:], 0.85)
    return variants


_VOWELS = frozenset("aeiou")


def comma_variant(head: str, part: str) -> bool:
    """``Diabetes, diabetic`` / ``myocardium, myocardial``: one word, the same word's other form
    (an alternative, not a modifier like ``Fracture, pathological``)."""
    h, p = head.strip().lower(), part.strip().lower()
    return " " not in h and " " not in p and len(h) >= 4 and len(p) >= 4 and h[:4] == p[:4]


_PAREN = re.compile(r"([^()]*?)\s*\(([^()]{1,80})\)")
_WORDS = re.compile(r"[A-Za-z0-9'-]+")


def _long_form(short: str, words: list[str]) -> str | None:
    """Schwartz & Hearst (2003): the shortest run of ``words`` ending the text whose letters spell ``short``
    in order, the first letter starting a word."""
    s, text = short.lower(), " ".join(words).lower()
    si, li = len(s) - 1, len(text) - 1
    while si >= 0:
        ch = s[si]
        if not ch.isalnum():
            si -= 1
            continue
        while li >= 0 and (text[li] != ch or (si == 0 and li > 0 and text[li - 1].isalnum())):
            li -= 1
        if li < 0:
            return None
        si -= 1
        li -= 1
    return text[text.rfind(" ", 0, li + 1) + 1:]


def _defines(short: str, long: str | None, strict: bool) -> bool:
    if not long or len(long.split()) < 2 or len(long) <= len(short) or " see " in f" {long} ":
        return False
    # an abbreviation written in capitals (ECMO, TURP), or plain initials (ibd: inflammatory bowel disease)
    return not strict or "".join(w[0] for w in long.split()) == short.lower()


def definitions(texts: Iterable[str], keep: int = 2) -> dict[str, list[str]]:
    """Abbreviations the official texts define in parentheses -> their long forms, most used first.

    ``inflammatory bowel disease (ibd)``, ``Extracorporeal membrane oxygenation (ECMO)`` and
    ``TURP (transurethral resection of prostate)``, found with the Schwartz-Hearst algorithm.
    """
    counts: dict[str, dict[str, int]] = {}
    for text in texts:
        if "(" not in text:
            continue
        for m in _PAREN.finditer(text):
            before, inside = m.group(1), m.group(2).strip()
            iw = inside.split()
            found: tuple[str, str | None, bool] | None = None
            if len(iw) == 1 and 2 <= len(inside) <= 10 and inside[0].isalnum() and any(c.isalpha() for c in inside):
                n = len(inside.replace("-", ""))
                words = _WORDS.findall(before)[-min(n + 5, 2 * n):]
                if words:
                    found = (inside, _long_form(inside, words), sum(c.isupper() for c in inside) < 2)
            elif len(iw) >= 2:
                words = _WORDS.findall(before)
                inner = _WORDS.findall(inside)
                if words and inner and words[-1].isalpha() and words[-1].isupper() and 2 <= len(words[-1]) <= 10:
                    long = _long_form(words[-1], inner)
                    if long and long.split()[0] == inner[0].lower():
                        found = (words[-1], long, False)
            if found and _defines(found[0], found[1], found[2]):
                short = " ".join(raw_tokens(found[0]))
                long = " ".join(raw_tokens(found[1] or ""))
                if " " not in short and long:
                    by = counts.setdefault(short, {})
                    by[long] = by.get(long, 0) + 1
    return {a: [p for p, _n in sorted(by.items(), key=lambda x: (-x[1], x[0]))[:keep]]
            for a, by in counts.items()}


_PORTER: list = []


def family(word: str) -> str:
    """The Porter2 (Snowball English) stem: ``dislocated``, ``dislocation`` -> ``disloc``. Used only to
    relate words of one family at a lower quality; tokens themselves keep the light :func:`stem`."""
    got = _FAMILY.get(word)
    if got is None:
        if not _PORTER:
            import snowballstemmer

            _PORTER.append(snowballstemmer.stemmer("english"))
        got = _PORTER[0].stemWord(word)
        if len(_FAMILY) < 200000:
            _FAMILY[word] = got
    return got


_FAMILY: dict[str, str] = {}


#: Words that name one body part, the noun and its adjectives (``kidney``, ``renal``): the official texts say
#: "Calculus of kidney" but "Acute renal failure", "Spinal stenosis" but "Fracture of spine". General
#: anatomical vocabulary (each group's words are plain dictionary forms, not words of particular queries).
BODY_FORMS: tuple[tuple[str, ...], ...] = (
    ("kidney", "renal"), ("liver", "hepatic"), ("heart", "cardiac"), ("lung", "pulmonary"),
    ("stomach", "gastric"), ("brain", "cerebral"), ("bowel", "intestine", "intestinal"), ("spine", "spinal"),
    ("skin", "cutaneous"), ("eye", "ocular"), ("mouth", "oral"), ("tooth", "dental"), ("nose", "nasal"),
    ("bladder", "vesical"), ("uterus", "uterine", "womb"), ("breast", "mammary"), ("chest", "thoracic"),
    ("belly", "abdomen", "abdominal"), ("muscle", "muscular"), ("vein", "venous"), ("artery", "arterial"),
    ("throat", "pharynx", "pharyngeal"), ("larynx", "laryngeal"), ("bone", "osseous"), ("gum", "gingival"),
    ("tongue", "lingual"), ("jaw", "mandible", "mandibular"), ("testicle", "testis", "testicular"),
    ("ovary", "ovarian"), ("colon", "colonic"), ("rectum", "rectal"), ("anus", "anal"),
    ("esophagus", "esophageal"), ("gallbladder", "biliary"), ("pancreas", "pancreatic"), ("spleen", "splenic"),
    ("prostate", "prostatic"), ("pelvis", "pelvic"), ("groin", "inguinal"), ("armpit", "axilla", "axillary"),
    ("navel", "umbilicus", "umbilical"), ("heel", "calcaneus", "calcaneal"), ("kneecap", "patella", "patellar"),
    ("sacrum", "sacral"), ("coccyx", "coccygeal"), ("femur", "femoral"), ("tibia", "tibial"), ("fibula", "fibular"),
    ("humerus", "humeral"), ("ulna", "ulnar"), ("clavicle", "clavicular"), ("scapula", "scapular"),
    ("vertebra", "vertebral"), ("cranium", "cranial"), ("face", "facial"), ("buttock", "gluteal"),
    ("vagina", "vaginal"), ("vulva", "vulvar"), ("penis", "penile"), ("scrotum", "scrotal"), ("urethra", "urethral"),
    ("ureter", "ureteral"), ("cornea", "corneal"), ("retina", "retinal"), ("trachea", "tracheal"),
    ("bronchus", "bronchial"), ("aorta", "aortic"), ("duodenum", "duodenal"), ("jejunum", "jejunal"),
    ("ileum", "ileal"), ("cecum", "cecal"), ("appendix", "appendiceal"), ("tonsil", "tonsillar"),
    ("sternum", "sternal"), ("rib", "costal"),
)
_BODY: dict[str, tuple[str, ...]] = {w: tuple(o for o in g if o != w) for g in BODY_FORMS for w in g}


def body_forms(word: str) -> tuple[str, ...]:
    """The other words for the body part ``word`` names (``kidney`` -> ``renal``), or ()."""
    return _BODY.get(word, ())


def families(vocab: list[str]) -> dict[str, list[int]]:
    """Porter2 stem -> ids of the vocabulary tokens (4+ letters) that share it, when 2 or more do."""
    groups: dict[str, list[int]] = {}
    for t, tok in enumerate(vocab):
        if len(tok) >= 4 and tok.isalpha():
            groups.setdefault(family(tok), []).append(t)
    return {k: v for k, v in groups.items() if len(v) > 1}


def edits1(word: str) -> set[str]:
    """Every string one edit away (delete, transpose, replace, insert)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    transposes = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in _ALPHABET}
    inserts = {a + c + b for a, b in splits for c in _ALPHABET}
    return deletes | transposes | replaces | inserts


#: British spellings -> American, the official texts' (``tumour``, ``anaemia``, ``oedema``, ``oesophagus``,
#: ``centre``, ``immunisation``, ``paralysed``, ``sulphate``): whole-word rewrites, applied only to a query word
#: the index does not know, when the rewritten word is one it does (so "toe" and "shoe" never change).
_BRITISH = tuple((re.compile(a), b) for a, b in (
    (r"our(s?)$", r"or\1"), (r"ae", "e"), (r"(?<=[^aeiou])oe", "e"), (r"^oe", "e"), (r"([bt])re(s?)$", r"\1er\2"),
    (r"is(e|ed|es|er|ers|ing|ation|ations)$", r"iz\1"), (r"ys(e|ed|es|er|ers|ing)$", r"yz\1"), (r"ogue$", "og"),
    (r"sulph", "sulf"), (r"grey", "gray"), (r"mould", "mold"), (r"amme$", "am"),
))
_BRITISH_HINT = re.compile(r"our|ae|oe|[bt]res?$|is|ys|ogue|sulph|grey|mould|amme")


def american(word: str, is_token: Callable[[str], bool]) -> str:
    """``word`` in the American spelling the official texts use, when it is British and that is a word of
    the index (``tumour`` -> ``tumor``, ``haemorrhage`` -> ``hemorrhage``); else ``word`` unchanged."""
    if not _BRITISH_HINT.search(word) or is_token(word):
        return word
    new = word
    for pat, repl in _BRITISH:
        new = pat.sub(repl, new)
    return new if new != word and is_token(new) else word


#: Spellings that sound alike, for typo tolerance beyond one edit (each respelling then gets one edit).
_RESPELL = (("ph", "f"), ("f", "ph"), ("ae", "e"), ("oe", "e"), ("k", "c"), ("c", "k"), ("z", "s"), ("y", "i"),
            ("i", "y"), ("ee", "ea"), ("ea", "ee"), ("sh", "ti"), ("x", "cs"), ("shun", "tion"), ("shun", "sion"),
            ("ou", "o"), ("ie", "ei"), ("ei", "ie"))
#: Silent first letters a speller leaves out ("neumonia", "soriasis", "rheumatism" as "reumatism").
_SILENT_START = (("n", "pn"), ("n", "kn"), ("n", "gn"), ("s", "ps"), ("r", "rh"), ("t", "pt"), ("m", "mn"))


def respellings(word: str) -> set[str]:
    """``word`` with one sound-alike spelling swapped (``lymfoma`` -> ``lymphoma``), at every place it occurs."""
    out = set()
    for a, b in _RESPELL:
        start = word.find(a)
        while start >= 0:
            out.add(word[:start] + b + word[start + len(a):])
            start = word.find(a, start + 1)
    for a, b in _SILENT_START:
        if word.startswith(a):
            out.add(b + word[len(a):])
    out.discard(word)
    return out
