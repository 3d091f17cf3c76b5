"""Property-based tests (issue 9, Proof): whatever the input, code normalisation, identify,
validate and the claim readers answer or raise medcodes' own errors (MedcodesError), never
anything else. Examples are bounded so the suite stays quick."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from medcodes.claims.model import Claim
from medcodes.claims.readers import CSV_COLUMNS, claims_from_fhir, claims_from_json, claims_from_rows, read_path
from medcodes.errors import MedcodesError
from medcodes.model import normalize_key

FAST = settings(max_examples=int(__import__("os").environ.get("MEDCODES_PROPERTY_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# strings that look like codes (letters, digits, dots, spaces, full-width forms) and arbitrary text
code_chars = st.sampled_from(list(string.ascii_letters + string.digits + ". -")
                             + ["\uff0e", "\u3000"] + [chr(0xFF10 + i) for i in range(10)]
                             + [chr(0xFF21 + i) for i in range(26)])
codeish = st.text(code_chars, max_size=12)
anything = st.one_of(codeish, st.text(max_size=40))


@FAST
@given(anything)
@example("E\uff11\uff11\uff0e\uff16\uff15")
def test_normalize_key_is_stable(raw: str) -> None:
    key = normalize_key(raw)
    assert normalize_key(key) == key              # idempotent
    assert "." not in key and " " not in key
    if raw.isascii():
        assert key == raw.strip().upper().replace(".", "").replace(" ", "")


@given(st.text(st.sampled_from("EeJj0123456789."), min_size=1, max_size=8))
@settings(max_examples=100, deadline=None)
def test_full_width_normalises_like_ascii(raw: str) -> None:
    wide = "".join(chr(ord(c) + 0xFEE0) for c in raw)   # the full-width form of each ASCII character
    assert normalize_key(wide) == normalize_key(raw)


@FAST
@given(anything, st.sampled_from([None, "2026-01-15", "2014-01-01", "2030-06-30"]))
@example("A" * 5000, None)
def test_identify_only_raises_medcodes_errors(cb: Any, raw: str, day: str | None) -> None:
    try:
        got = cb.identify(raw, day)
    except MedcodesError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    for ident in got:
        assert ident.status in ("valid", "header", "deleted", "not-found", "not-installed")


@FAST
@given(anything, st.sampled_from([None, "icd10cm", "hcpcs", "icd10pcs", "icd9cm"]),
       st.sampled_from([None, "2026-01-15", "2014-01-01", "2030-06-30"]))
def test_validate_answers_every_code(cb: Any, raw: str, system: str | None, day: str | None) -> None:
    try:
        v = cb.validate(raw, system=system, date=day)
    except MedcodesError as exc:   # only: no release of that system at all
        assert "no release installed" in str(exc)
        return
    assert v.status in ("valid", "invalid", "unknown") and (v.status == "valid") == v.valid
    assert len(v.reason) < 600


# ------------------------------------------------------------------ claim readers
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20)

claim_like = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=5), st.integers()),
     "service_date": st.one_of(st.sampled_from(["2026-01-15", "2026-02-30", "", "x"]), json_values)},
    optional={"type": st.sampled_from(["professional", "institutional", "collection", 3]),
              "patient": st.one_of(json_values, st.fixed_dictionaries(
                  {"sex": st.sampled_from(["F", "M", "U", "X", 1]),
                   "birth_date": st.sampled_from(["1960-01-01", "1960-13-01", None])})),
              "diagnoses": st.lists(st.one_of(anything, st.fixed_dictionaries({"code": anything}), json_values),
                                    max_size=3),
              "procedures": st.lists(st.one_of(anything, json_values), max_size=2),
              "lines": st.lists(st.one_of(json_values, st.fixed_dictionaries(
                  {"code": anything},
                  optional={"units": st.one_of(st.floats(allow_nan=True), st.text(max_size=4), json_values),
                            "modifiers": st.lists(anything, max_size=3),
                            "diagnosis_pointers": st.lists(st.one_of(st.integers(), anything), max_size=3),
                            "charge": st.one_of(st.floats(), st.text(max_size=4))})), max_size=3)})


def _only_our_errors(fn, *args) -> Any:
    try:
        return fn(*args)
    except MedcodesError as exc:
        assert "\n" not in str(exc).strip()
        return None


@FAST
@given(st.one_of(json_values, claim_like, st.lists(claim_like, max_size=3)))
def test_json_reader(data: Any) -> None:
    _only_our_errors(claims_from_json, data, "synthetic.json")
    _only_our_errors(claims_from_json, data, "synthetic.json", False)


@FAST
@given(claim_like)
def test_checking_what_the_reader_accepts(cb: Any, data: dict[str, Any]) -> None:
    claims = _only_our_errors(claims_from_json, data, "synthetic.json")
    for claim in claims or []:
        assert isinstance(claim, Claim)
        _only_our_errors(cb.check, claim)


fhir_claim = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Claim", "Bundle", "Patient"])},
    optional={"id": st.text(max_size=4), "entry": st.lists(st.fixed_dictionaries({"resource": json_values}), max_size=2),
              "diagnosis": st.lists(json_values, max_size=2), "item": st.lists(json_values, max_size=2),
              "type": json_values, "patient": json_values, "contained": st.lists(json_values, max_size=2)})


@FAST
@given(fhir_claim)
def test_fhir_reader(data: dict[str, Any]) -> None:
    _only_our_errors(claims_from_fhir, data, "synthetic-fhir.json")


@FAST
@given(st.lists(st.dictionaries(st.sampled_from(CSV_COLUMNS), st.text(max_size=12), max_size=8), max_size=4))
def test_csv_rows_reader(rows: list[dict[str, str]]) -> None:
    _only_our_errors(claims_from_rows, rows, "synthetic.csv")


@FAST
@given(st.binary(max_size=300), st.sampled_from(["x.json", "x.csv", "x.txt"]))
def test_read_path_any_bytes(tmp_path_factory: Any, data: bytes, name: str) -> None:
    p = Path(tmp_path_factory.mktemp("prop")) / name
    p.write_bytes(data)
    _only_our_errors(read_path, p)
