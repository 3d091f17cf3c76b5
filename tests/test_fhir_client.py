"""The running server on 127.0.0.1, driven by a real FHIR client library (fhirpy).

Every response is validated with fhir.resources (R4B models). Also: bad requests
get 4xx and the same server keeps answering; claim bodies never reach the log.
"""

from __future__ import annotations

import httpx
import pytest
from server_helpers import HCPCS, ICD10CM, ICD10PCS, fhir_valid, live_server, param, props

fhirpy = pytest.importorskip("fhirpy")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def server(home, cb, tmp_path_factory):
    from medcodes import search

    search.prepare(cb)  # the compiled search index, built once before the server starts
    log = tmp_path_factory.mktemp("server") / "server.log"
    with live_server(home, log) as base:
        yield base, log


@pytest.fixture(scope="module")
def fc(server):
    base, _log = server
    return fhirpy.SyncFHIRClient(base + "/fhir", extra_headers={"Accept": "application/fhir+json"})


def test_lookup_with_fhirpy(fc):
    doc = fc.execute("CodeSystem/$lookup", method="get", params={"system": ICD10CM, "code": "E11.65"})
    fhir_valid(doc)
    assert param(doc, "display") == "Type 2 diabetes mellitus with hyperglycemia"
    assert props(doc, "parent") == ["E11.6"]
    posted = fc.execute("CodeSystem/$lookup", method="post", data={
        "resourceType": "Parameters",
        "parameter": [{"name": "system", "valueUri": HCPCS}, {"name": "code", "valueCode": "E0130"},
                      {"name": "version", "valueString": "2020-10"}]})
    fhir_valid(posted)
    assert param(posted, "display") == "Walker, rigid (pickup), adjustable or fixed height"


def test_validate_code_with_fhirpy(fc):
    ok = fc.execute("CodeSystem/$validate-code", method="get",
                    params={"url": ICD10PCS, "code": "0DTJ4ZZ"})
    fhir_valid(ok)
    assert param(ok, "result") is True
    assert param(ok, "display") == "Resection of Appendix, Percutaneous Endoscopic Approach"
    bad = fc.execute("ValueSet/$validate-code", method="post", data={
        "resourceType": "Parameters",
        "parameter": [{"name": "url", "valueUri": ICD10CM + "?fhir_vs"},
                      {"name": "coding", "valueCoding": {"system": ICD10CM, "code": "E11.657"}}]})
    fhir_valid(bad)
    assert param(bad, "result") is False


def test_expand_with_fhirpy(fc):
    vs = fc.execute("ValueSet/$expand", method="get",
                    params={"url": ICD10CM + "?fhir_vs", "filter": "E11.65", "count": 5})
    fhir_valid(vs)
    assert vs["expansion"]["total"] == 1
    assert vs["expansion"]["contains"][0]["display"] == "Type 2 diabetes mellitus with hyperglycemia"


def test_subsumes_with_fhirpy(fc):
    doc = fc.execute("CodeSystem/$subsumes", method="post", data={
        "resourceType": "Parameters",
        "parameter": [{"name": "system", "valueUri": ICD10CM},
                      {"name": "codeA", "valueCode": "E11"}, {"name": "codeB", "valueCode": "E11.65"}]})
    fhir_valid(doc)
    assert param(doc, "outcome") == "subsumes"


def test_bad_requests_then_keeps_serving(server):
    base, _log = server
    with httpx.Client(base_url=base, timeout=30) as c:
        cases = [
            c.get("/fhir/CodeSystem/$lookup", params={"system": "http://unknown.example/cs", "code": "X"}),
            c.post("/fhir/CodeSystem/$lookup", content=b'{"resourceType":"Parameters","parameter":{}}',
                   headers={"content-type": "application/fhir+json"}),
            c.get("/fhir/CodeSystem/$lookup", params={"system": ICD10CM}),
            c.post("/fhir/ValueSet/$expand", content=b"[" * 2_000_000, headers={"content-type": "application/fhir+json"}),
            c.post("/claims/check", content=b"x" * 2_000_000),
        ]
        for r in cases:
            assert 400 <= r.status_code < 500, r.text
            doc = r.json()
            if r.request.url.path.startswith("/fhir"):
                assert doc["resourceType"] == "OperationOutcome" and fhir_valid(doc).issue
            else:
                assert "error" in doc
        assert [r.status_code for r in cases] == [404, 400, 400, 413, 413]
        r = c.get("/fhir/CodeSystem/$lookup", params={"system": ICD10CM, "code": "E11.65"})
        assert r.status_code == 200


def test_claim_bodies_not_logged(server):
    base, log = server
    marker = "ZZSYNTHETICMARKER"
    claim = {"id": "synthetic-log-1", "type": "professional", "service_date": "2026-05-01",
             "patient": {"sex": "M"}, "diagnoses": ["E11.65"],
             "lines": [{"code": "E0130", "modifiers": [], "charge": 1.0, "diagnosis_pointers": [1]}],
             "source": marker}
    r = httpx.post(base + "/claims/check", json=claim, timeout=30)
    assert r.status_code == 200
    bad = httpx.post(base + "/claims/check", json={"id": marker}, timeout=30)
    assert bad.status_code == 400
    text = log.read_text(errors="replace")
    assert "POST /claims/check" in text  # the access log is on, and shows only the path
    assert marker not in text and "E0130" not in text
