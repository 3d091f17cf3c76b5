"""The HTTP service in process (FastAPI TestClient) over the official files in ../shared/data.

Values asserted are the agencies' own: titles and flags as they appear in the
ICD-10-CM tabular XML, the ICD-10-PCS order file, the HCPCS 2020 files and the GEMs.
"""

from __future__ import annotations

import pytest

from medcodes.server.limits import Settings
from server_helpers import HCPCS, HCPCS_HTTPS, ICD9CM, ICD10CM, ICD10PCS, fhir_valid, param, props

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def client(home, cb):
    from fastapi.testclient import TestClient

    from medcodes import search
    from medcodes.server import create_app

    search.prepare(cb)  # build the search index once, outside any request timeout

    with TestClient(create_app(home, Settings(max_body=200_000, max_query=2048, timeout=60)),
                    raise_server_exceptions=False) as c:
        yield c


def fhir_get(client, path: str, status: int = 200, **params):
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    doc = r.json()
    fhir_valid(doc)
    return doc


# ---------------------------------------------------------------- REST
def test_code_record(client):
    d = client.get("/codes/E11.65").json()
    assert d["system"] == "icd10cm" and d["title"] == "Type 2 diabetes mellitus with hyperglycemia"
    assert d["billable"] is True
    assert [a["code"] for a in d["ancestors"]][-2:] == ["E11", "E11.6"]


def test_code_record_pcs_axes_and_hcpcs_fields(client):
    d = client.get("/codes/0DTJ4ZZ", params={"system": "icd10pcs"}).json()
    assert d["title"] == "Resection of Appendix, Percutaneous Endoscopic Approach"
    axes = d["structure"]["axes"]
    assert [a["label"] for a in axes][:4] == ["Medical and Surgical", "Gastrointestinal System", "Resection", "Appendix"]
    h = client.get("/codes/E0130", params={"system": "hcpcs", "date": "2020-05-01"}).json()
    assert h["release"] == "2020-04"
    assert h["short_title"] == "Walker rigid adjust/fixed ht"
    assert h["attrs"]["betos"] == "D1E"


def test_unknown_code_404_with_suggestions(client):
    r = client.get("/codes/E11.657", params={"system": "icd10cm"})
    assert r.status_code == 404
    assert "E11.65" in r.json()["suggestions"]


def test_unknown_system_400(client):
    r = client.get("/codes/E11.65", params={"system": "snomed"})
    assert r.status_code == 400 and "unknown system" in r.json()["error"]


def test_identify_and_prefix(client):
    ids = client.get("/identify", params={"q": "E0130"}).json()
    assert ids[0]["system"] == "hcpcs" and ids[0]["exists"]
    pre = client.get("/codes", params={"prefix": "E11.6", "limit": 3}).json()
    assert [r["code"] for r in pre["results"]] == ["E11.6", "E11.61", "E11.610"]


def test_releases(client):
    rels = client.get("/releases", params={"system": "icd10pcs"}).json()
    fy2026 = [r for r in rels if r["release"] == "2026"][0]
    assert fy2026["counts"]["codes"] == 79115


def test_search(client):
    r = client.get("/search", params={"q": "type 2 diabetes hyperglycemia", "system": "icd10cm", "limit": 5})
    assert r.status_code == 200, r.text
    assert "E11.65" in [h["code"] for h in r.json()["hits"]]
    assert client.get("/search", params={"q": "--"}).status_code == 400


def test_claim_check(client):
    claim = {"id": "synthetic-1", "type": "professional", "service_date": "2026-05-01",
             "patient": {"sex": "F", "birth_date": "1960-01-01"},
             "diagnoses": ["E11.65", "E11"], "lines": [{"code": "E0130", "diagnosis_pointers": [1]}]}
    r = client.post("/claims/check", json=claim)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["ok"] is False
    assert any(f["rule"] == "dx-header" and f["codes"] == ["E11"] for f in res["findings"])
    bad = client.post("/claims/check", json={"id": "x"})
    assert bad.status_code == 400 and "service_date" in bad.json()["error"]
    assert client.post("/claims/check", content=b"{not json").status_code == 400


def test_diff_and_history(client):
    d = client.get("/diff", params={"system": "hcpcs", "from": "2020-07", "to": "2020-10", "limit": 5}).json()
    assert d["from"] == "2020-07" and d["counts"]["added"] >= len(d["added"]) > 0
    h = client.get("/history/E0130", params={"system": "hcpcs"}).json()
    assert [s["release"] for s in h["releases"]][:2] == ["2019-01", "2020-01"]
    assert client.get("/diff", params={"system": "hcpcs", "from": "1999-01"}).status_code == 404


def test_web_page_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "<label for=\"q\"" in r.text
    assert client.get("/web/app.js").status_code == 200
    assert client.get("/docs").status_code == 200
    assert "/fhir/CodeSystem/$lookup" in client.get("/openapi.json").json()["paths"]


# ---------------------------------------------------------------- FHIR
def test_metadata(client):
    cs = fhir_get(client, "/fhir/metadata")
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    ops = {o["name"] for r in cs["rest"][0]["resource"] for o in r.get("operation", [])}
    assert {"lookup", "validate-code", "subsumes", "expand", "translate"} <= ops
    tc = fhir_get(client, "/fhir/metadata", mode="terminology")
    uris = {c["uri"]: [v["code"] for v in c["version"]] for c in tc["codeSystem"]}
    assert "2026" in uris[ICD10PCS] and {"2020-10", "2026-01"} <= set(uris[HCPCS])


def test_lookup(client):
    doc = fhir_get(client, "/fhir/CodeSystem/$lookup", system=ICD10CM, code="E11.65")
    assert param(doc, "display") == "Type 2 diabetes mellitus with hyperglycemia"
    assert param(doc, "name") == "ICD-10-CM"
    assert props(doc, "parent") == ["E11.6"] and props(doc, "billable") == [True]
    hc = fhir_get(client, "/fhir/CodeSystem/$lookup", system=HCPCS_HTTPS, code="E0130", version="2020-01")
    assert param(hc, "version") == "2020-01"
    assert param(hc, "designation")[1]["valueString"] == "Walker rigid adjust/fixed ht"


def test_hcpcs_january_2026_through_fhir_rest_and_the_page(client):
    """A4295 was added in January 2026: FHIR CodeSystem version 2026-01, the REST record the page shows."""
    doc = fhir_get(client, "/fhir/CodeSystem/$lookup", system=HCPCS, code="A4295")
    assert param(doc, "version") == "2026-01"
    assert param(doc, "display") == "Intermittent urinary catheter; straight tip, hydrophilic coating, each"
    bundle = fhir_get(client, "/fhir/CodeSystem", url=HCPCS, version="2026-01")
    assert [e["resource"]["version"] for e in bundle["entry"]] == ["2026-01"]
    j = fhir_get(client, "/fhir/CodeSystem/$lookup", system=HCPCS, code="J3490", version="2026-01")
    assert any(str(n).startswith("NOC: Not otherwise classified") for n in props(j, "note"))
    gap = fhir_get(client, "/fhir/CodeSystem/$lookup", system=HCPCS, code="E1130", date="2023-05-01")
    assert props(gap, "note")[0].startswith("release: No installed HCPCS Level II release covers 2023-05-01")
    v = fhir_get(client, "/fhir/CodeSystem/$validate-code", url=HCPCS, code="E1130", date="2023-05-01")
    assert "No installed HCPCS Level II release covers 2023-05-01" in param(v, "message")
    rec = client.get("/codes/S0189", params={"system": "hcpcs"}).json()   # what the web page renders
    assert rec["release"] == "2026-01" and rec["status"]["corrected"] is True
    assert {"processing note 0088", "corrected"} <= {n["kind"] for n in rec["notes"]}
    d = client.get("/diff", params={"system": "hcpcs", "to": "2026-01", "from": "2025-10", "limit": 3}).json()
    assert d["counts"]["Add"] == 160 and [e["code"] for e in d["changes"]["A"]] == ["A4295", "A4296", "A4297"]


def test_lookup_post_parameters(client):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": ICD10PCS, "code": "0DTJ4ZZ"}},
        {"name": "property", "valueCode": "parent"}]}
    r = client.post("/fhir/CodeSystem/$lookup", json=body, headers={"content-type": "application/fhir+json"})
    assert r.status_code == 200
    doc = fhir_valid(r.json()) and r.json()
    assert param(doc, "display") == "Resection of Appendix, Percutaneous Endoscopic Approach"
    assert props(doc, "parent") == ["0DT"] and props(doc, "child") == []


def test_validate_code(client):
    ok = fhir_get(client, "/fhir/CodeSystem/$validate-code", url=ICD10CM, code="E11.65",
                  display="Type 2 diabetes mellitus with hyperglycemia")
    assert param(ok, "result") is True
    wrong = fhir_get(client, "/fhir/CodeSystem/$validate-code", url=ICD10CM, code="E11.65", display="Asthma")
    assert param(wrong, "result") is False
    missing = fhir_get(client, "/fhir/CodeSystem/$validate-code", url=ICD10CM, code="E11.657")
    assert param(missing, "result") is False
    header = fhir_get(client, "/fhir/ValueSet/$validate-code", url=ICD10CM + "?fhir_vs", code="E11")
    assert param(header, "result") is True and "not billable" in param(header, "message")
    # A4466: discontinued in the HCPCS 2020 file (termination date 2016-12-31)
    gone = fhir_get(client, "/fhir/ValueSet/$validate-code", url=HCPCS + "?fhir_vs", code="A4466",
                    systemVersion="2020-10")
    assert "inactive" in param(gone, "message")
    other = fhir_get(client, "/fhir/ValueSet/$validate-code", url=ICD10CM + "?fhir_vs", system=ICD10PCS,
                     code="0DTJ4ZZ")
    assert param(other, "result") is False


def test_expand(client):
    vs = fhir_get(client, "/fhir/ValueSet/$expand", url=ICD10CM + "?fhir_vs", filter="E11.6", count=3)
    exp = vs["expansion"]
    assert [c["code"] for c in exp["contains"]] == ["E11.6", "E11.61", "E11.610"]
    assert exp["contains"][0].get("abstract") is True and exp["total"] >= 10
    page2 = fhir_get(client, "/fhir/ValueSet/$expand", url=ICD10CM + "?fhir_vs", filter="E11.6", count=3, offset=3)
    assert page2["expansion"]["offset"] == 3 and page2["expansion"]["contains"][0]["code"] not in {"E11.6", "E11.61"}
    words = fhir_get(client, "/fhir/ValueSet/$expand", url=HCPCS + "?fhir_vs", filter="walker rigid", count=50)
    assert "E0130" in [c["code"] for c in words["expansion"]["contains"]]


def test_subsumes(client):
    def outcome(a, b, system=ICD10CM):
        return param(fhir_get(client, "/fhir/CodeSystem/$subsumes", system=system, codeA=a, codeB=b), "outcome")

    assert outcome("E11", "E11.65") == "subsumes"
    assert outcome("E11.65", "E11") == "subsumed-by"
    assert outcome("E11.65", "E11.65") == "equivalent"
    assert outcome("E11.65", "I10") == "not-subsumed"
    assert outcome("0DT", "0DTJ4ZZ", ICD10PCS) == "subsumes"


def test_translate(client):
    doc = fhir_get(client, "/fhir/ConceptMap/$translate", system=ICD9CM, code="250.00", targetsystem=ICD10CM)
    assert param(doc, "result") is True
    match = [p for p in doc["parameter"] if p["name"] == "match"][0]
    parts = {p["name"]: p for p in match["part"]}
    # 2018_I9gem.txt: "25000 E119 10000": approximate flag set
    assert parts["concept"]["valueCoding"]["code"] == "E11.9"
    assert parts["equivalence"]["valueCode"] == "inexact"


def test_code_system_resources(client):
    b = fhir_get(client, "/fhir/CodeSystem", url=ICD10PCS)
    versions = {e["resource"]["version"]: e["resource"] for e in b["entry"]}
    assert versions["2026"]["count"] == 80029 + 17 + 115  # order-file rows + 17 sections + 115 body systems
    one = fhir_get(client, "/fhir/CodeSystem/icd10pcs-2026")
    assert one["url"] == ICD10PCS and one["content"] == "not-present"
    fhir_get(client, "/fhir/CodeSystem/nope-1", status=404)
    assert fhir_get(client, "/fhir/CodeSystem", url=HCPCS_HTTPS)["total"] >= 5


@pytest.mark.parametrize("path,params,status,code", [
    ("/fhir/CodeSystem/$lookup", {"system": "http://snomed.info/sct", "code": "73211009"}, 404, "not-found"),
    ("/fhir/CodeSystem/$lookup", {"system": ICD10CM}, 400, "required"),
    ("/fhir/CodeSystem/$lookup", {"system": ICD10CM, "code": "E11.657"}, 404, "not-found"),
    ("/fhir/CodeSystem/$lookup", {"system": ICD10CM, "code": "E11.65", "version": "1999"}, 404, "not-found"),
    ("/fhir/ValueSet/$expand", {"url": "http://example.org/vs"}, 404, "not-found"),
    ("/fhir/ValueSet/$expand", {"url": ICD10CM + "?fhir_vs", "count": "many"}, 400, "invalid"),
    ("/fhir/CodeSystem/$subsumes", {"system": ICD10CM, "codeA": "E11"}, 400, "required"),
    ("/fhir/Patient/1", {}, 404, "not-found"),
])
def test_fhir_errors(client, path, params, status, code):
    doc = fhir_get(client, path, status=status, **params)
    assert doc["resourceType"] == "OperationOutcome" and doc["issue"][0]["code"] == code


def test_malformed_parameters_and_huge_body(client):
    for body in ({"resourceType": "Patient"}, {"resourceType": "Parameters", "parameter": [{"valueCode": "x"}]},
                 {"resourceType": "Parameters", "parameter": [{"name": "code"}]}):
        r = client.post("/fhir/CodeSystem/$lookup", json=body)
        assert r.status_code == 400, body
        assert fhir_valid(r.json()).issue[0].code == "structure"
    r = client.post("/fhir/CodeSystem/$lookup", content=b"{" * 300_000, headers={"content-type": "application/fhir+json"})
    assert r.status_code == 413 and r.json()["resourceType"] == "OperationOutcome"
    r = client.post("/claims/check", content=b" " * 300_000, headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.get("/identify", params={"q": "E" * 3000})
    assert r.status_code == 414
    r = client.post("/fhir/CodeSystem/$lookup", content=b"<xml/>", headers={"content-type": "application/xml"})
    assert r.status_code == 415
    # and it keeps serving
    assert client.get("/codes/E11.65").status_code == 200


def test_api_key(home):
    from fastapi.testclient import TestClient

    from medcodes.server import create_app

    with TestClient(create_app(home, Settings(api_key="s3cret"))) as c:
        assert c.get("/codes/E11.65").status_code == 401
        r = c.get("/fhir/CodeSystem/$lookup", params={"system": ICD10CM, "code": "E11.65"})
        assert r.status_code == 401 and fhir_valid(r.json()).issue[0].code == "login"
        assert c.get("/codes/E11.65", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/codes/E11.65", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/codes/E11.65", headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get("/fhir/metadata").status_code == 200 and c.get("/").status_code == 200


def test_timeout_returns_503(home):
    import time

    from fastapi.testclient import TestClient

    from medcodes.server import create_app
    from medcodes.server import app as app_mod

    guarded = create_app(home, Settings(timeout=0.2))

    @guarded.api.get("/slow-test")
    async def slow():  # a route that outlives the timeout (added for this test only)
        await app_mod._in_thread(guarded.api.state.books, lambda book: time.sleep(2))

    with TestClient(guarded) as c:
        r = c.get("/slow-test")
        assert r.status_code == 503 and "longer than" in r.json()["error"]
        assert c.get("/codes/E11.65").status_code == 200
