"""The routes the web page adds (in process, FastAPI TestClient, over the official files):
an ICD-10-PCS table with every value's definition, the HCPCS modifiers, a release diff as CSV."""

from __future__ import annotations

import csv
import io

import pytest

from medcodes.server.limits import Settings

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def client(home, cb):
    from fastapi.testclient import TestClient

    from medcodes.server import create_app

    with TestClient(create_app(home, Settings(timeout=60))) as c:
        yield c


def test_pcs_table_rows_and_definitions(client):
    r = client.get("/pcs/tables/0DT", params={"date": "2026-01-15"})
    assert r.status_code == 200
    t = r.json()
    assert t["code"] == "0DT" and t["release"] == "2026" and "children" not in t
    # 0DTJ4ZZ is in exactly one row of the table (CMS tables XML)
    rows = [row for row in t["rows"] if any(v["char"] == "J" for a in row["axes"] if a["position"] == 4
                                              for v in a["values"])
            and any(v["char"] == "4" for a in row["axes"] if a["position"] == 5 for v in a["values"])]
    assert len(rows) == 1
    assert sum(row["codes"] for row in t["rows"]) == 106     # the order file's 0DT codes, FY2026
    defs = t["value_definitions"]
    assert defs["3"]["T"]["definition"] == "Cutting out or off, without replacement, all of a body part"
    assert "Vermiform appendix" in defs["4"]["J"]["includes"]
    assert defs["5"]["4"]["definition"].startswith("Entry, by puncture or minor incision")


def test_pcs_table_errors(client):
    r = client.get("/pcs/tables/0DTJ4ZZ")
    assert r.status_code == 404 and "not an ICD-10-PCS table" in r.json()["error"]
    assert client.get("/pcs/tables/ZZZ").status_code == 404


def test_hcpcs_modifiers(client):
    r = client.get("/hcpcs/modifiers", params={"date": "2026-03-01"})
    assert r.status_code == 200
    body = r.json()
    assert body["release"] == "2026-01"
    mods = {m["code"]: m["title"] for m in body["modifiers"]}
    assert len(mods) == 383                                      # the 2026 January file's modifiers
    assert mods["LT"].startswith("Left side")


def test_diff_csv(client):
    counts = client.get("/diff", params={"system": "icd10cm", "from": "2025", "to": "2026",
                                         "limit": 1}).json()["counts"]
    r = client.get("/diff.csv", params={"system": "icd10cm", "from": "2025", "to": "2026"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["change", "code", "kind", "field", "before", "after"]
    added = [x for x in rows[1:] if x[0] == "added"]
    assert len(added) == counts["added"]
    assert ["added", "E11.A", "code", "title", "",
            "Type 2 diabetes mellitus without complications in remission"] in rows
    bad = client.get("/diff.csv", params={"system": "icd10cm", "from": "1999", "to": "2026"})
    assert bad.status_code == 404 and "not installed" in bad.json()["error"]
    assert client.get("/diff.csv", params={"system": "nope", "from": "1", "to": "2"}).status_code == 400
