"""Property tests (hypothesis) for the FHIR parameter parsing and the operations over it.

Whatever a client sends -- any query-string pairs, any JSON as a ``Parameters`` body, any
JSON to /claims/check -- the service answers with its own errors (FhirError -> 4xx
OperationOutcome, ClaimFormatError -> 400), never another exception (a 500).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medcodes.errors import MedcodesError
from medcodes.server import fhir
from server_helpers import HCPCS, ICD9CM, ICD10CM, ICD10PCS

NAMES = ["code", "system", "version", "coding", "codingA", "codingB", "codeA", "codeB", "url", "filter",
         "count", "offset", "date", "display", "property", "activeOnly", "systemVersion", "valueSet",
         "codeableConcept", "targetsystem", "reverse", "junk"]
URIS = [ICD10CM, ICD10PCS, HCPCS, ICD9CM, ICD10CM + "?fhir_vs", HCPCS + "?fhir_vs", "urn:x", ""]
CODES = ["E11.65", "E11", "E1165", "0DTJ4ZZ", "E0130", "250.00", "S72.001A", "Chapter 4", "!!", "", "e11.65 "]

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10 ** 25, max_value=10 ** 25),
                    st.floats(allow_nan=True), st.sampled_from(URIS + CODES + ["2026-13-45", "garbage", "10" * 30]),
                    st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.sampled_from(
                                                                ["system", "code", "coding", "version", "display",
                                                                 "name", "valueCode", "resourceType"]), inner,
                                                                max_size=4)), max_leaves=12)
value_keys = st.sampled_from(["valueCode", "valueString", "valueUri", "valueCoding", "valueCodeableConcept",
                              "valueInteger", "valueBoolean", "valueDate", "valueFoo", "resource", "part"])
parameter = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(NAMES)}, optional={"x": json_values}).map(
        lambda d: {"name": d["name"], **({} if "x" not in d else {"valueString": d["x"]})}),
    st.dictionaries(st.one_of(st.just("name"), value_keys), json_values, max_size=3),
    st.builds(lambda n, k, v: {"name": n, k: v}, st.sampled_from(NAMES), value_keys, json_values),
    json_values,
)
bodies = st.one_of(
    st.builds(lambda ps: {"resourceType": "Parameters", "parameter": ps}, st.lists(parameter, max_size=6)),
    st.dictionaries(st.sampled_from(["resourceType", "parameter", "id"]), json_values, max_size=3),
    json_values,
)
query_pairs = st.lists(st.tuples(st.sampled_from(NAMES), st.one_of(st.sampled_from(URIS + CODES),
                                                                   st.text(max_size=30))), max_size=6)

OPS = [fhir.lookup, lambda b, p: fhir.validate_code(b, p, valueset=False),
       lambda b, p: fhir.validate_code(b, p, valueset=True), fhir.subsumes, fhir.expand]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(bodies)
def test_parameters_resource_parsing_raises_only_fhir_errors(body):
    try:
        p = fhir.Params.from_resource(body)
    except fhir.FhirError as exc:
        assert 400 <= exc.status < 500 and "\n" not in exc.message
        return
    for name in NAMES:
        for call in (lambda: p.str(name), lambda: p.int(name, 0, 0, 1000), lambda: p.bool(name),
                     lambda: p.coding(name), lambda: fhir._code_and_system(p), lambda: fhir.check_expand(p),
                     p.canonical):
            try:
                call()
            except fhir.FhirError as exc:
                assert 400 <= exc.status < 500


@FAST
@given(query_pairs)
def test_query_parsing_raises_only_fhir_errors(pairs):
    p = fhir.Params.from_query(pairs)
    for name in NAMES:
        try:
            p.int(name, 0, 0, 1_000_000, clamp=False)
            p.bool(name)
            p.str(name)
        except fhir.FhirError as exc:
            assert exc.status == 400


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(bodies.map(lambda b: ("body", b)), query_pairs.map(lambda q: ("query", q))),
       st.integers(min_value=0, max_value=len(OPS) - 1))
def test_operations_answer_or_raise_fhir_errors(cb, given_input, op):
    kind, raw = given_input
    try:
        p = fhir.Params.from_resource(raw) if kind == "body" else fhir.Params.from_query(raw)
    except fhir.FhirError:
        return
    try:
        doc = OPS[op](cb, p)
    except fhir.FhirError as exc:
        assert 400 <= exc.status < 600 and exc.status != 500 and "\n" not in exc.message
        return
    assert doc["resourceType"] in ("Parameters", "ValueSet")
    json.dumps(doc)


claim_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["resourceType", "entry", "resource", "id", "type", "status", "patient", "diagnosis", "item",
         "billablePeriod", "contained", "claims", "service_date", "lines", "diagnoses", "code"]), inner, max_size=5)),
    max_leaves=15)


@settings(max_examples=100, deadline=None)
@given(st.one_of(claim_like, st.builds(lambda e: {"resourceType": "Bundle", "type": "collection", "entry": e},
                                       st.lists(claim_like, max_size=3)),
               st.builds(lambda d: {"resourceType": "Claim", **d}, st.dictionaries(st.sampled_from(
                   ["id", "status", "type", "patient", "diagnosis", "item", "contained", "billablePeriod"]),
                   claim_like, max_size=5))))
def test_claims_endpoint_reader_raises_only_claim_errors(doc):
    """What /claims/check does with a parsed body: read it as claims (native or FHIR)."""
    from medcodes.claims.readers import claims_from_json

    try:
        claims_from_json(doc if isinstance(doc, dict) and "resourceType" in doc else
                         (doc if isinstance(doc, list) else [doc]), "body", validate=False)
    except MedcodesError as exc:
        assert "\n" not in str(exc)


def test_claims_route_never_500s_on_fhir_shapes(cb, home):
    """A few hand-made shapes through the HTTP route itself (hypothesis covers the reader)."""
    from fastapi.testclient import TestClient

    from medcodes.server import create_app

    shapes = [{"resourceType": "Bundle", "entry": "x"}, {"resourceType": "Bundle", "entry": [1, None, "a"]},
              {"resourceType": "Bundle", "entry": [{"resource": []}]}, {"resourceType": "Claim", "contained": 5},
              {"resourceType": 7}, {"resourceType": None}, [], [1], {"claims": "x"}, {"claims": [None]}]
    with TestClient(create_app(home), raise_server_exceptions=False) as c:
        for shape in shapes:
            r = c.post("/claims/check", json=shape)
            assert 400 <= r.status_code < 500, (shape, r.status_code, r.text)
            assert "\n" not in r.json()["error"]


@pytest.mark.parametrize("raw", ["1e5", "٣", "+5", " 7 ", "9" * 25, "-1"])
def test_integer_parameters_in_range_or_400(raw):
    p = fhir.Params.from_query([("offset", raw)])
    try:
        n = p.int("offset", 0, 0, fhir.MAX_OFFSET, clamp=False)
    except fhir.FhirError as exc:
        assert exc.status == 400 and "offset" in exc.message
    else:
        assert 0 <= n <= fhir.MAX_OFFSET


@pytest.mark.parametrize("coding", [1, "E11.65", {"code": "E11.65"}, [], [1]])
def test_codeable_concept_whose_coding_is_not_a_list_of_codings_is_a_400(coding):
    """Found by hypothesis: ``{"coding": 1}`` raised TypeError (a 500) instead of a 400."""
    body = {"resourceType": "Parameters",
            "parameter": [{"name": "codeableConcept", "valueCodeableConcept": {"coding": coding}}]}
    with pytest.raises(fhir.FhirError) as info:
        fhir.Params.from_resource(body).coding("codeableConcept")
    assert info.value.status == 400 and "coding" in info.value.message


def test_an_echoed_control_character_keeps_the_error_one_line(cb):
    """Found by hypothesis: system "\\n" was echoed into the 404 message, making it two lines."""
    p = fhir.Params.from_query([("system", "\n"), ("code", "E11.65")])
    with pytest.raises(fhir.FhirError) as info:
        fhir.lookup(cb, p)
    assert 400 <= info.value.status < 500 and "\n" not in info.value.message and "\\n" in info.value.message
