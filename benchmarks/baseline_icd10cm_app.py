"""Baseline for benchmarks/server.py: a plain FastAPI app over simple-icd-10-cm answering FHIR $lookup.

What a developer would write in an afternoon: one FastAPI route (``async def``: the faster choice for CPU-bound work), the dict returned as
is (FastAPI's own JSON encoding), served by uvicorn with one worker. It returns the same
content as medcodes' ``CodeSystem/$lookup``: display, parent, children, billable (leaf),
and every note of the code and of its ancestors (inclusion terms, includes, excludes1/2,
use additional code, code first, code also, notes) as ``note`` properties. (7th-character
meanings are left out: medcodes' $lookup does not list them either.)

Run: uvicorn --factory benchmarks.baseline_icd10cm_app:create_app --port 8001
(benchmarks/server.py starts it itself).
"""

from __future__ import annotations

from typing import Any

NOTE_KINDS = ("inclusion_term", "includes", "excludes1", "excludes2", "use_additional_code",
              "code_first", "code_also", "notes")


def create_app() -> Any:
    import simple_icd_10_cm as cm
    from fastapi import FastAPI, HTTPException

    app = FastAPI()
    getters = [(k, getattr(cm, f"get_{k}")) for k in NOTE_KINDS]

    @app.get("/fhir/CodeSystem/$lookup")
    async def lookup(code: str, system: str = "http://hl7.org/fhir/sid/icd-10-cm") -> dict[str, Any]:
        if not cm.is_valid_item(code):
            raise HTTPException(404, f"{code}: not found")
        props: list[dict[str, Any]] = []
        parent = cm.get_parent(code)
        if parent:
            props.append({"name": "property", "part": [{"name": "code", "valueCode": "parent"},
                                                        {"name": "value", "valueCode": parent}]})
        for child in cm.get_children(code):
            props.append({"name": "property", "part": [{"name": "code", "valueCode": "child"},
                                                        {"name": "value", "valueCode": child}]})
        props.append({"name": "property", "part": [{"name": "code", "valueCode": "billable"},
                                                    {"name": "value", "valueBoolean": cm.is_leaf(code)}]})
        for item in [code, *cm.get_ancestors(code)]:
            for kind, get in getters:
                notes = get(item)
                for text in [notes] if isinstance(notes, str) else notes:  # some getters give one string
                    props.append({"name": "property", "part": [{"name": "code", "valueCode": "note"},
                                                                {"name": "value", "valueString": f"{kind}: {text}"}]})
        return {"resourceType": "Parameters", "parameter": [
            {"name": "name", "valueString": "ICD-10-CM"},
            {"name": "display", "valueString": cm.get_description(code)}, *props]}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
