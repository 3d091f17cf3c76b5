"""The service under bad, huge and slow requests (issue 9 items 4-7 and 11).

Every client mistake is a 4xx with a one-line message (never a 500, a traceback in the log
or a dropped connection); the response cache is bounded in bytes and keyed on the parsed
request; a timed-out request stops its work; the code runs on Python 3.10 as declared.
Codes and titles asserted are the agencies' own (ICD-10-CM FY2026 tabular, the synthetic
FHIR claim fixture's codes).
"""

from __future__ import annotations

import copy
import http.client
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from medcodes.server.limits import ResponseCache, Settings
from server_helpers import ICD10CM, fhir_valid, live_server, param

pytest.importorskip("fastapi")

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures" / "claims"
VS = ICD10CM + "?fhir_vs"


@pytest.fixture(scope="module")
def guarded(home, cb):
    from medcodes import search
    from medcodes.server import create_app

    search.prepare(cb)
    return create_app(home, Settings(max_body=2_000_000, timeout=60))


@pytest.fixture(scope="module")
def client(guarded):
    from fastapi.testclient import TestClient

    with TestClient(guarded, raise_server_exceptions=False) as c:
        yield c


def one_line_400(r: httpx.Response, *words: str) -> str:
    assert r.status_code == 400, r.text
    doc = r.json()
    msg = doc["issue"][0]["diagnostics"] if doc.get("resourceType") == "OperationOutcome" else doc["error"]
    assert "\n" not in msg and len(msg) < 300, msg
    for w in words:
        assert w in msg, msg
    return msg


# ---------------------------------------------------------------- item 4: Python 3.10
def test_source_needs_nothing_newer_than_python_310():
    """vermin reads every module under src/ and names any API newer than requires-python (3.10)."""
    vermin = shutil.which("vermin") or str(Path(sys.executable).parent / "vermin")
    if not Path(vermin).exists():
        pytest.fail("vermin is needed (pip install -e '.[dev]')")
    out = subprocess.run([vermin, "--target=3.10-", "--violations", "--no-tips", "--eval-annotations",
                          str(ROOT / "src")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:]


def test_timeout_works_without_asyncio_timeout(home, monkeypatch):
    """As on Python 3.10 (no asyncio.timeout): requests are answered and slow ones get their 503."""
    import asyncio

    from fastapi.testclient import TestClient

    from medcodes.server import app as app_mod
    from medcodes.server import create_app

    monkeypatch.delattr(asyncio, "timeout", raising=False)
    guarded = create_app(home, Settings(timeout=0.3))

    @guarded.api.get("/slow-test-310")
    async def slow():
        await app_mod._in_thread(guarded.api.state.books, lambda book: time.sleep(1.5))

    with TestClient(guarded, raise_server_exceptions=False) as c:
        r = c.get("/codes/E11.65")
        assert r.status_code == 200 and r.json()["title"] == "Type 2 diabetes mellitus with hyperglycemia"
        assert c.get("/slow-test-310").status_code == 503


# ---------------------------------------------------------------- item 7: client mistakes are 400s
@pytest.mark.parametrize("date", ["2026-13-45", "garbage", "2026-02-30", "20260101"])
def test_search_bad_date_is_400(client, date):
    one_line_400(client.get("/search", params={"q": "diabetes", "date": date}), "date", repr(date))


def test_huge_offsets_are_400(client):
    one_line_400(client.get("/search", params={"q": "diabetes", "offset": str(10 ** 23)}), "offset")
    one_line_400(client.get("/fhir/ValueSet/$expand", params={"url": VS, "offset": str(10 ** 23)}), "offset")
    one_line_400(client.get("/fhir/ValueSet/$expand", params={"url": VS, "offset": "2000000"}), "offset")
    doc = client.get("/fhir/ValueSet/$expand", params={"url": VS, "filter": "E11.6", "offset": "1"}).json()
    assert doc["expansion"]["contains"][0]["code"] == "E11.61"  # E11.6 is first, offset 1 skips it


def test_deep_nesting_is_400(client):
    deep = b"[" * 50_000
    one_line_400(client.post("/claims/check", content=deep, headers={"content-type": "application/json"}),
                 "nests")
    one_line_400(client.post("/fhir/CodeSystem/$lookup", content=deep,
                             headers={"content-type": "application/fhir+json"}), "nests")
    nested = {"id": "x"}
    for _ in range(200):  # valid JSON, deeper than any claim
        nested = {"a": nested}
    one_line_400(client.post("/claims/check", json=nested), "nests")


def test_live_server_client_mistakes_no_traceback_no_dropped_connection(home, tmp_path):
    log = tmp_path / "server.log"
    with live_server(home, log) as base, httpx.Client(base_url=base, timeout=30) as c:
        asks = [
            ("GET", "/search", {"params": {"q": "diabetes", "date": "2026-13-45"}}),
            ("GET", "/search", {"params": {"q": "diabetes", "date": "garbage"}}),
            ("GET", "/search", {"params": {"q": "diabetes", "offset": str(10 ** 23)}}),
            ("GET", "/fhir/ValueSet/$expand", {"params": {"url": VS, "offset": str(10 ** 23)}}),
            ("POST", "/claims/check", {"content": b"[" * 50_000, "headers": {"content-type": "application/json"}}),
            ("POST", "/fhir/ValueSet/$expand", {"json": {"resourceType": "Parameters", "parameter": [
                {"name": "url", "valueUri": VS}, {"name": "filter", "valueString": " ".join(["a"] * 990)}]}}),
        ]
        for method, path, kw in asks:
            r = c.request(method, path, **kw)
            assert r.status_code == 400, (path, r.status_code, r.text[:200])
        # on one socket: each mistake answered, then the same connection answers the next request
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            for raw in (b"GET /search?q=diabetes&date=2026-13-45 HTTP/1.1\r\nHost: x\r\n\r\n",
                        b"GET /search?q=diabetes&offset=" + b"1" + b"0" * 23 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                        b"POST /claims/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 50000\r\n\r\n" + b"[" * 50_000):
                for request, status in ((raw, 400), (b"GET /codes/E11.65 HTTP/1.1\r\nHost: x\r\n\r\n", 200)):
                    sock.sendall(request)
                    resp = http.client.HTTPResponse(sock)
                    resp.begin()
                    resp.read()
                    assert resp.status == status and not resp.will_close, (request[:60], resp.status)
    text = log.read_text()
    assert "Traceback" not in text and "Exception in ASGI" not in text, text[-3000:]
    assert " 500" not in text


# ---------------------------------------------------------------- item 5: the response cache
def test_cache_is_bounded_in_bytes():
    cache = ResponseCache(max_bytes=100_000)
    for i in range(1000):
        cache.put(ResponseCache.key("/codes/X", f"code={i}".encode()), (200, b"application/json", b"x" * 1000))
    assert cache.bytes <= 100_000 and 50 < len(cache) < 100
    assert cache.get(ResponseCache.key("/codes/X", b"code=999")) is not None   # the newest kept
    assert cache.get(ResponseCache.key("/codes/X", b"code=0")) is None         # the oldest dropped
    cache.put(("big",), (200, b"application/json", b"y" * (ResponseCache.MAX_ENTRY + 1)))
    assert cache.get(("big",)) is None
    off = ResponseCache(max_bytes=0)
    off.put(("k",), (200, b"", b"v"))
    assert len(off) == 0


def test_cache_keys_on_the_parsed_request_not_the_body(client, guarded):
    cache = guarded.cache
    body = {"resourceType": "Parameters", "parameter": [{"name": "system", "valueUri": ICD10CM},
                                                        {"name": "code", "valueCode": "E11.65"}]}
    before = len(cache)
    r1 = client.post("/fhir/CodeSystem/$lookup", json=body)
    r2 = client.post("/fhir/CodeSystem/$lookup", content=json.dumps(body, indent=4).encode(),
                     headers={"content-type": "application/fhir+json"})
    assert r1.status_code == r2.status_code == 200 and r1.content == r2.content
    assert param(r1.json(), "display") == "Type 2 diabetes mellitus with hyperglycemia"
    assert len(cache) == before + 1  # one entry for both spellings
    junk = copy.deepcopy(body)
    junk["parameter"].append({"name": "junk", "valueString": "z" * 900_000})
    used = cache.bytes
    for _ in range(3):
        assert client.post("/fhir/CodeSystem/$lookup", json=junk).status_code == 200
    assert cache.bytes - used < 10_000  # a 0.9 MB parameter is never kept


# ---------------------------------------------------------------- item 6: $expand cost
def test_expand_filter_bounded(client):
    many = " ".join(f"w{i}" for i in range(13))
    r = client.get("/fhir/ValueSet/$expand", params={"url": VS, "filter": many})
    assert one_line_400(r, "13 words") and r.json()["issue"][0]["code"] == "too-costly"
    r = client.post("/fhir/ValueSet/$expand", json={"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": VS}, {"name": "filter", "valueString": "diabetes " * 120}]})
    one_line_400(r, "characters")
    # repeated words count once: still answered, with the agency's title
    doc = client.get("/fhir/ValueSet/$expand", params={"url": VS, "filter": "hyperglycemia " * 10 + "type 2",
                                                       "count": "200"}).json()
    assert {"code": "E11.65", "display": "Type 2 diabetes mellitus with hyperglycemia"}.items() <= \
        next(c for c in doc["expansion"]["contains"] if c["code"] == "E11.65").items()


def test_timeout_stops_the_sql_work(home):
    """A request past its timeout gets 503 at once and its thread's SQLite statement is interrupted."""
    from fastapi.testclient import TestClient

    from medcodes.server import app as app_mod
    from medcodes.server import create_app

    guarded = create_app(home, Settings(timeout=0.5))
    finished = threading.Event()
    outcome: list[str] = []

    def endless(book):
        info = book.releases("icd10cm")[-1]
        conn = book.store.open("icd10cm", info.release).conn
        try:  # minutes of work unless interrupted
            conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000000) "
                         "SELECT count(*) FROM n").fetchone()
            outcome.append("ran to the end")
        except Exception as exc:  # noqa: BLE001
            outcome.append(type(exc).__name__)
            raise
        finally:
            finished.set()

    @guarded.api.get("/endless-test")
    async def endless_route():
        await app_mod._in_thread(guarded.api.state.books, endless)

    with TestClient(guarded, raise_server_exceptions=False) as c:
        r = c.get("/endless-test")
        assert r.status_code == 503
        assert finished.wait(20), "the worker thread kept running after the 503"
        assert outcome and outcome[0] != "ran to the end"


# ---------------------------------------------------------------- item 11: FHIR claims
def _fhir_claim() -> dict:
    bundle = json.loads((FIX / "claim_synthetic_fhir.json").read_text())
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim")


def test_claims_check_accepts_a_bundle_of_claims(client):
    bundle = json.loads((FIX / "claim_synthetic_fhir.json").read_text())
    second = copy.deepcopy(_fhir_claim())
    second["id"] = "SYN-FHIR-2"
    bundle["entry"].append({"fullUrl": "urn:uuid:claim-2", "resource": second})
    r = client.post("/claims/check", json=bundle)
    assert r.status_code == 200, r.text
    results = r.json()
    assert [res["claim"] for res in results] == ["SYN-FHIR-1", "SYN-FHIR-2"]
    one = client.post("/claims/check", json=_fhir_claim())
    assert one.status_code == 200 and one.json()["claim"] == "SYN-FHIR-1"


def test_claims_check_names_the_resource_type_expected(client):
    msg = one_line_400(client.post("/claims/check", json={"resourceType": "Patient", "id": "p1",
                                                          "gender": "male"}), "Claim", "Patient")
    assert "service_date" not in msg
    empty = {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]}
    one_line_400(client.post("/claims/check", json=empty), "Claim", "Patient")


def test_claims_check_lists_the_validation_errors(client):
    bad = {"resourceType": "Claim", "id": "c1"}
    msg = one_line_400(client.post("/claims/check", json=bad), "5 validation errors")
    for field in ("insurance", "patient", "priority", "provider"):
        assert field in msg, msg


def test_validation_errors_never_echo_values():
    from medcodes.claims.model import ClaimFormatError
    from medcodes.claims.readers import claims_from_json

    claim = _fhir_claim()
    claim["billablePeriod"] = {"start": "SECRET-NOT-A-DATE"}
    with pytest.raises(ClaimFormatError) as err:
        claims_from_json(claim, "c.json")
    assert "billablePeriod" in str(err.value) and "SECRET" not in str(err.value)


# ---------------------------------------------------------------- fast paths answer as the routes do
def test_fast_paths_match_the_routes(client, guarded):
    from medcodes.server.limits import Guard

    plain = Guard(guarded.api, guarded.settings, None)  # same app, no fast paths, no cache
    from fastapi.testclient import TestClient

    with TestClient(plain, raise_server_exceptions=False) as slow:
        for path, params in (("/search", {"q": "type 2 diabetes hyperglycemia", "limit": "5"}),
                             ("/fhir/CodeSystem/$lookup", {"system": ICD10CM, "code": "E11.65"}),
                             ("/fhir/CodeSystem/$lookup", {"system": ICD10CM, "code": "E11.657"})):
            a, b = client.get(path, params=params), slow.get(path, params=params)
            assert a.status_code == b.status_code and a.json() == b.json(), path
    hits = client.get("/search", params={"q": "type 2 diabetes hyperglycemia", "limit": "5"}).json()["hits"]
    assert "E11.65" in [h["code"] for h in hits]
    fhir_valid(client.get("/fhir/CodeSystem/$lookup", params={"system": ICD10CM, "code": "E11.65"}).json())
