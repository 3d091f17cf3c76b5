"""The per-claim checker's fast path gives the same answers as the slow one it replaces.

* :class:`medcodes.claims.factindex.FactIndex` reads a code's facts back from the per-release Parquet
  tables ``medcodes pull`` compiles; it must say exactly what ``codefacts.classify_dx`` says (which
  reads the Tabular List through the Codebook) for the official codes named here and a sample of every
  release's codes.
* Each rule compiled to one Python function (``Rule.compiled``, ``expr.compile_py``) must give the same
  finding as the rule's node-by-node row functions, on every row the checker builds for SYNTHETIC claims
  over real codes, and on the same rows with columns blanked (null rules); several rules compiled into one
  function (``rules.compile_rules``, what the checker runs) give the same findings in the same order.
"""

from __future__ import annotations

import datetime as dt
import importlib
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from medcodes.claims.check import Checker
from medcodes.claims.codefacts import DX_SCHEMA, classify_dx, read_dx_tables
from medcodes.claims.expr import col, compile_expr, fmt, lit, when
from medcodes.claims.factindex import FactIndex
from medcodes.claims.readers import read_csv
from medcodes.claims.rules import SCOPES, TABLE_RULES, compile_rules

check_mod = importlib.import_module("medcodes.claims.check")   # the module (medcodes.claims.check is also a function)

# official FY2026 codes with each kind of fact (tests/test_claims*.py cite the Tabular List for each)
NAMED = ["E1165",     # E11.65: use additional code (insulin Z79.4 ...), Excludes1 E08/E09/E10/E13/O24.4/P70.2
         "F0280",     # F02.80: manifestation ("in other diseases classified elsewhere"), code first
         "Z3800",     # Z38.00: principal/first-listed only (Guidelines I.C.21.c.16)
         "B9620",     # B96.20: supplementary code, unacceptable as principal
         "Z3A01",     # Z3A.01: secondary only (Guidelines)
         "O09521",    # O09.521: maternal record (ages 9-64), 35 years and older
         "R402242",   # R40.2242: coma scale (no age limit from "(< 2 years of age)")
         "S82001A",   # S82.001A: 7th character code
         "E11",       # header
         "S52501",    # needs a 7th character
         "T360X5A",   # adverse effect: T36-T50's note applies "for adverse effects"
         "P292", "C61", "N181", "Z00110", "W19XXXA", "G63", "I10"]


def signature(code: Any) -> tuple[Any, ...]:
    """Everything the per-claim rules read from a DxCode."""
    row = tuple(code.row[k] for k in DX_SCHEMA)
    f = code.facts
    if f is None:
        return row, None
    probe = ["E1165", "E119", "O244", "P702", "F0280", "G309", "Z794", "Z7984", "I10", "N181", "A419", "Y92009",
             "T360X5A", "O80", "Z3800", "F17210", "E860", "R6520", "B9620", "C61", "M1A9XX0"]

    def idx(i: Any) -> Any:
        if i is None:
            return None
        return tuple((k, None if (n := i.first(k)) is None else (n.text, n.cite())) for k in probe)
    return (row, f.code, f.key, f.title, f.release, f.manifestation, f.principal_only, f.secondary_guideline,
            f.age_limits, bool(f.code_first),
            [([n.text for n in g], refs, cond) for g, refs, cond in f.code_first_groups()],
            [(rule, kind, [n.text for n in g], [n.origin for n in g]) for rule, kind, g, _i in f.groups()],
            [tag for _n, tag, _i in f.group_tags()], idx(f.ex1), idx(f.ex2))


@pytest.mark.parametrize("release", ["2025", "2026"])
def test_precompiled_facts_say_what_classify_dx_says(book: Any, release: str) -> None:
    info = book.store.find("icd10cm", release)
    tables = read_dx_tables(book, info)
    assert tables is not None, "medcodes pull compiles the claim facts of every ICD-10-CM release"
    index = FactIndex(tables, info.label)
    ck = Checker(book)
    guide = ck.guidelines(info.effective_from)
    keys = [r[0] for r in book.store.open("icd10cm", release).conn.execute(
        "SELECT key FROM concept WHERE kind IN ('code','category','header','diagnosis') ORDER BY seq")]
    assert len(index) == len(keys)
    sample = NAMED + keys[::300]
    for key in sample:
        want = classify_dx(book, info, key, ck.is_icd9, guide)
        got = index.get(key)
        assert got is not None, key
        assert signature(got) == signature(want), key
    # what the facts say about named codes, from the Tabular List
    e1165 = index.get("E1165").facts
    assert e1165.ex1.first("E109") is not None and e1165.ex1.first("I10") is None
    assert any("Z79.4" in n.text for _r, _k, g, _i in e1165.groups() for n in g)
    assert index.get("F0280").facts.manifestation
    assert index.get("Z3800").facts.principal_only
    assert [lim.lo for lim in index.get("O09521").facts.age_limits][:1] == [9]
    assert index.get("S52501").row["status"] == "seventh"
    # keys the release does not hold are left to classify_dx (deleted, not yet valid, invalid)
    assert index.get("Z4089" if release == "2025" else "ZZZ99") is None


def test_checker_reads_the_precompiled_facts(book: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim's codes come from the Parquet facts: classify_dx runs only for keys a release does not hold."""
    seen: list[str] = []
    real = check_mod.classify_dx

    def spy(cb: Any, info: Any, key: str, *a: Any) -> Any:
        seen.append(key)
        return real(cb, info, key, *a)
    monkeypatch.setattr(check_mod, "classify_dx", spy)
    ck = Checker(book)
    claim = check_mod.Claim.from_dict({"id": "SYN-1", "type": "professional", "service_date": "2025-06-15",
                                       "patient": {"sex": "F", "birth_date": "1950-01-01"},
                                       "diagnoses": ["E11.65", "F02.80", "Z40.89"]})
    res = ck.check(claim)
    assert seen == ["Z4089"]     # Z40.89 was added 2025-10-01: not in release 2025
    rules = {f.rule for f in res.findings}
    assert "dx-not-valid-on-date" in rules and "dx-manifestation-first" not in rules


# ---------------------------------------------------------------------- compiled rules == row functions
def _outcome(fn: Any, row: dict[str, Any]) -> Any:
    try:
        return fn(row)
    except Exception as e:  # noqa: BLE001  (both paths must fail alike on a row of wrong types)
        return type(e).__name__


def _rows(book: Any, paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every row the checker evaluates rules on, for the claims of ``paths``."""
    rows: list[dict[str, Any]] = []
    seen: dict[int, dict[str, Any]] = {}    # the claim's rows, kept alive so their ids are not reused

    def recording(fns: tuple[Any, ...]) -> tuple[Any, ...]:
        def fn(row: dict[str, Any]) -> Any:
            if id(row) not in seen:     # a row once, however many rules look at it
                seen[id(row)] = row
                rows.append(dict(row))
            return None
        return (fn, *fns)
    real_scope, real_cands = check_mod.scope_fns, check_mod.candidates
    monkeypatch.setattr(check_mod, "scope_fns", lambda scope: recording(real_scope(scope)))
    monkeypatch.setattr(check_mod, "candidates", lambda scope, facts: recording(real_cands(scope, facts)))
    monkeypatch.setattr(check_mod, "scope_run", lambda scope: check_mod.runner(check_mod.scope_fns(scope)))
    ck = Checker(book)
    for path in paths:
        for claim in read_csv(path):
            seen.clear()
            ck.check(claim)
    monkeypatch.undo()
    return rows


def test_compiled_rules_give_the_row_functions_findings(book: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from test_claims_batch import _claimgen, make_table

    special = tmp_path / "special_synthetic.csv"
    make_table(book, 600, seed=5).write_csv(special)
    realistic = tmp_path / "realistic_synthetic.csv"
    _claimgen().generate(book, 3000, seed=4).write_csv(realistic)
    rows = _rows(book, [special, realistic], monkeypatch)
    rnd = random.Random(3)
    fired: set[str] = set()
    merged: dict[tuple[str, ...], Any] = {}
    for row in rows:
        scope = next((s for s, (facts, cols) in SCOPES.items() if set(facts) | set(cols) <= set(row)
                      and len(row) <= len(facts) + len(cols) + 2), None)
        rules = [r for r in TABLE_RULES if r.cols <= set(row)]
        assert rules, row.keys()
        blank = dict(row)
        for k in rnd.sample(sorted(blank), min(3, len(blank))):
            blank[k] = None
        for r in rules:
            for variant in (row, blank):
                want = _outcome(r.finding, variant)
                assert _outcome(r.compiled(), variant) == want, (r.id, scope)
                if r.fact_parts:
                    assert bool(_outcome(r.may_fire, variant)) == all(
                        p.py(variant) is True for p in r.fact_parts), r.id
                if want is not None and not isinstance(want, str) and variant is row:
                    fired.add(r.id)
        # the rules as ONE generated function (what the checker runs): the same findings, in order
        key = tuple(r.id for r in rules)
        run = merged.get(key) or merged.setdefault(key, compile_rules(rules))
        for variant in (row, blank):
            want = [_outcome(r.compiled(), variant) for r in rules]
            if not any(isinstance(w, str) for w in want):
                got: list[Any] = []
                run(variant, got.append)
                assert got == [w for w in want if w is not None], scope
    assert {"dx-not-valid-on-date", "dx-excludes1", "dx-sex-conflict", "hcpcs-terminated", "line-units",
            "modifier-invalid", "line-diagnosis-pointer", "dx-age-conflict"} <= fired


@pytest.mark.parametrize("a", [None, True, False, 1, 0])
@pytest.mark.parametrize("b", [None, True, False])
def test_compiled_expressions_keep_the_null_rules(a: Any, b: Any) -> None:
    row = {"a": a, "b": b, "s": "x", "n": None, "d": dt.date(2025, 10, 1)}
    for e in (col("a") & col("b"), col("a") | col("b"), ~col("a"), ~(col("a") & col("b")) | col("b"),
              (col("a") == 1) & col("b").not_null(), col("a").is_null() | (col("b") != True),  # noqa: E712
              fmt("{} and {} on {}", col("a"), col("s"), col("d")), fmt("{}{}", col("s"), lit("-")),
              fmt("{}", col("n")), when(col("a")).then(lit("y")).when(col("b")).then(col("s")).otherwise(col("n")),
              col("s").is_in(["x", "y"]) & col("a"), col("s").matches(r"^x$") | col("b"),
              col("s").starts_with("x") & ~col("b")):
        assert compile_expr(e)(row) == e.py(row)
        assert bool(eval_t(e, row)) == (e.py(row) is True)


def eval_t(e: Any, row: dict[str, Any]) -> Any:
    from medcodes.claims.expr import compile_py
    return compile_py(lambda g: f"    return {e.t(g)}")(row)


def test_facts_tables_carry_the_sequencing_notes(book: Any) -> None:
    info = book.store.find("icd10cm", "2026")
    t = read_dx_tables(book, info)
    assert t is not None
    notes = t.notes.filter(pl.col("owner") == "F0280")
    # F02.80's category F02 says "Code first the underlying physiological condition, such as: ..."
    assert "codeFirst" in notes["kind"].to_list()
    assert t.notes.filter((pl.col("owner") == "Z3800") & (pl.col("kind") == "principalOnly")).height == 1


# ---------------------------------------------------------------------- the MCE's code-only edits
@pytest.mark.parametrize("key", ["S42309K", "S85169A", "S62116B"])
def test_mce_unspecified_edit_depends_on_the_code_alone(key: str) -> None:
    """S42.309K (unspecified arm), S85.169A (unspecified leg), S62.116B (unspecified wrist): the MCE's UNSPECIFIED
    edit is the same at every age, sex and v43 version, so medcodes locates it once per code (mce.CODE_ONLY)."""
    from medcodes.claims import mce

    eng = mce.engine("mce")
    seen = set()
    for date, version in ((20251115, 430), (20260515, 431)):
        for age in (0, 5, 10, 16, 30, 70, 100):
            for sex in (0, 1, 2):
                data = {"discharge_date": date, "version": version, "age": age, "sex": sex, "discharge_status": 1,
                        "pdx": {"code": key}, "sdx": [], "procedures": []}
                seen.add("UNSPECIFIED" in {e["name"] for e in eng.edit(data).get("edits", ())})
    assert seen == {True}
    assert "UNSPECIFIED" in mce.CODE_ONLY


def test_mce_findings_locate_the_unspecified_code(book: Any) -> None:
    from medcodes.claims import mce

    for age_birth in ("1950-03-01", "2019-03-01"):
        claim = check_mod.Claim.from_dict({
            "id": "SYN-IP", "type": "institutional", "setting": "inpatient", "service_date": "2025-11-15",
            "patient": {"sex": "M", "birth_date": age_birth},
            "diagnoses": [{"code": "I10", "poa": "Y"}, {"code": "S85.169A", "poa": "Y"}]})
        found = [f for f in mce.mce_findings(claim) if f.rule == "mce-unspecified"]
        assert [(f.location, f.codes) for f in found] == [("diagnoses[1]", ("S85.169A",))]


def test_findings_are_the_same_with_or_without_the_precompiled_facts(book: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The same SYNTHETIC claims (claimgen: Zipf over all FY2026 billable codes, FY2025-FY2026 dates) give the same
    findings whether codes come from the Parquet facts or from classify_dx one by one (facts not compiled)."""
    from test_claims_batch import _claimgen

    path = tmp_path / "realistic_synthetic.csv"
    _claimgen().generate(book, 2500, seed=6).write_csv(path)
    claims = list(read_csv(path))
    ck = Checker(book)
    with_facts = [ck.check(c).findings for c in claims]
    assert ck._facts and all(v is not None for v in ck._facts.values())
    monkeypatch.setattr(check_mod, "read_dx_tables", lambda cb, info: None)
    slow = Checker(book)
    without = [slow.check(c).findings for c in claims]
    assert slow._facts and all(v is None for v in slow._facts.values())
    assert with_facts == without
    assert sum(len(x) for x in with_facts) > 1000
