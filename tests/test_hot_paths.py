"""The fast paths of full records and search give the same answers as the plain ones.

Walking every code reads a release whole (rows as tuples, wrapped when asked); the search
engine holds its display texts whole once read often, and checks a word in many fields
through a per-thread table of fields. Each is compared here with the path it replaces, on
the real releases, and checked against the agencies' own words.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from medcodes import Codebook
from medcodes.search import api
from medcodes.search.engine import Engine


def test_a_walk_in_code_order_is_read_whole_early_and_scattered_lookups_are_not(home):
    with Codebook.open(home) as walk, Codebook.open(home) as scattered, Codebook.open(home) as one:
        codes = list(walk.codes("icd10cm", billable=True))
        for code in codes[:300]:
            walk.lookup(code, system="icd10cm")
        assert walk.db("icd10cm")._whole is not None          # seen as a walk after 256 reads
        for code in random.Random(13).sample(codes, 150):
            scattered.lookup(code, system="icd10cm")
        db = scattered.db("icd10cm")
        assert db._reads > 256 and db._whole is None            # random lookups stay row by row
        for code in ["A00.0", "E11.65", "S72.001A", "O09.A0", "Z68.41"] + codes[300:340]:
            a = walk.lookup(code, system="icd10cm").as_dict()
            assert a == scattered.lookup(code, system="icd10cm").as_dict() == \
                one.lookup(code, system="icd10cm").as_dict(), code
        rec = walk.lookup("A00.0", system="icd10cm")
        assert rec.title == "Cholera due to Vibrio cholerae 01, biovar cholerae"
        assert [a["code"] for a in rec.ancestors][-2:] == ["A00-A09", "A00"]
        assert rec.structure["block"]["range"] == "A00-A09"
        # children in the release's order, from the parent -> children lists read whole
        assert [c["code"] for c in walk.lookup("E11.6", system="icd10cm").children][:2] == ["E11.61", "E11.62"]


@pytest.fixture(scope="module")
def fresh_engine(cb):
    eng = Engine(api.engine_for(cb).path)   # its own display-text caches, read chunk by chunk
    yield eng
    eng.close()


def test_display_texts_held_whole_are_the_texts_read_chunk_by_chunk(fresh_engine):
    eng = fresh_engine
    rng = random.Random(7)
    codes = sorted({0, eng.chunk - 1, eng.chunk, eng.n_codes - 1, *rng.sample(range(eng.n_codes), 100)})
    n_fields = int(eng.f_kind.size)
    fields = sorted({0, eng.chunk, n_fields - 1, *rng.sample(range(n_fields), 100)})
    by_chunk = eng.codes_info(codes), eng.fields_info(fields)
    assert eng._whole == {}
    eng._read_whole("code_text")
    eng._read_whole("field_text")
    assert set(eng._whole) == {"code_text", "field_text"}
    assert (eng.codes_info(codes), eng.fields_info(fields)) == by_chunk
    e1165 = [i for i, info in eng.codes_info(list(range(eng.n_codes))).items() if info[1] == "E11.65"]
    assert eng.codes_info(e1165)[e1165[0]][2] == "Type 2 diabetes mellitus with hyperglycemia"


def test_a_word_in_many_fields_reads_the_same_qualities_every_way(fresh_engine):
    eng = fresh_engine
    fields = np.arange(0, int(eng.f_kind.size), 5, dtype=np.int64)
    toks, offs = eng.field_tokens(fields)
    for word, prefix in (("left", False), ("fractur", True), ("diabetes", False)):
        cand = eng.candidate(word, prefix)
        by_tokens = np.maximum.reduceat(eng.lut(cand)[toks], offs)   # every token of every field
        assert by_tokens.max() > 0, word
        assert np.array_equal(eng.in_fields(cand, fields), by_tokens), word          # field table
        few = fields[np.flatnonzero(by_tokens)[:5]]
        assert np.array_equal(eng.in_fields(cand, few), by_tokens[np.flatnonzero(by_tokens)[:5]]), word


def test_search_gives_the_same_hits_once_the_texts_are_held_whole(cb):
    queries = ["type 2 diabetes mellitus with hyperglycemia", "fracture of left femur initial",
               "laparoscopic appendectomy", "wheelchair", "E11.6"]
    before = [api.search(cb, q, limit=10).as_dict() for q in queries]
    eng = api.engine_for(cb)
    eng._read_whole("code_text")
    eng._read_whole("field_text")
    assert [api.search(cb, q, limit=10).as_dict() for q in queries] == before
    assert before[0]["hits"][0]["code"] == "E11.65"
    assert before[0]["hits"][0]["title"] == "Type 2 diabetes mellitus with hyperglycemia"
