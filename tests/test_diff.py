"""diff and history on the real releases, checked against the agencies' own change lists.

* ICD-10-CM FY2025 -> FY2026 must equal icd10cm_order_addenda_2026.txt exactly.
* ICD-10-PCS FY2025 -> FY2026 must contain order_addenda_2026.txt exactly; the
  addenda were made against the April 1, 2025 order file (its own totals say
  910 headers / 78,986 codes in icd10pcs_order_2025.txt) while the FY2025 file
  here is the October 2024 one (908 / 78,948): the surplus must account for
  exactly that difference.
* HCPCS 2019 -> 2020 must agree with the 2020 file's action codes.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from medcodes import diff as D
from medcodes.sources import Source
from medcodes.store import Store

CM_ZIP = "icd10cm/2026/2026-code-descriptions-tabular-order.zip"
PCS_ZIP = "icd10pcs/2026/2026-icd-10-pcs-order-file-long-and-abbreviated-titles.zip"
HCPCS_2020 = "hcpcs/2020-jan/2020-Alpha-Numeric-HCPCS-File.zip"


@pytest.fixture(scope="module")
def store(home: Path) -> Store:
    return Store(home)


@pytest.fixture(scope="module")
def cm_addenda(shared_data: Path) -> D.Addenda:
    return D.parse_order_addenda(Source(shared_data / CM_ZIP, "icd10cm_order_addenda_2026.txt"))


@pytest.fixture(scope="module")
def pcs_addenda(shared_data: Path) -> D.Addenda:
    return D.parse_order_addenda(Source(shared_data / PCS_ZIP, "order_addenda_2026.txt"))


@pytest.fixture(scope="module")
def cm_diff(store: Store) -> D.Diff:
    return D.diff(store, "icd10cm", "2025", "2026")


# ----------------------------------------------------------------------------- the addenda parsers
def test_cm_addenda_parse_matches_its_own_summary(cm_addenda: D.Addenda) -> None:
    assert cm_addenda.summary == {
        "headers": {"additions": 143, "deletions": 0, "revisions": 7, "both": 6, "long": 1, "short": 0},
        "codes": {"additions": 487, "deletions": 28, "revisions": 38, "both": 38, "long": 0, "short": 0},
    }
    assert cm_addenda.counts() == cm_addenda.summary
    assert cm_addenda.totals["icd10cm_order_2026.txt:codes"] == 74719
    first = cm_addenda.entries[0]
    assert (first.action, first.flag, first.key, first.title) == ("Delete", "1", "B880", "Other acariasis")


def test_pcs_addenda_parse_matches_its_own_summary(pcs_addenda: D.Addenda) -> None:
    assert pcs_addenda.summary["codes"] == {"additions": 156, "deletions": 27, "revisions": 0,
                                           "both": 0, "long": 0, "short": 0}
    assert pcs_addenda.summary["headers"] == {"additions": 4, "deletions": 0, "revisions": 1,
                                             "both": 0, "long": 0, "short": 1}
    rev = [e for e in pcs_addenda.entries if e.action == "Revise"]
    assert [(e.key, e.short_title) for e in rev] == [("6A4", "Extracrp/Syst Therapies, Phys Sys, Hypotherm")]


def test_addenda_with_a_broken_count_is_a_data_error(tmp_path: Path, shared_data: Path) -> None:
    """A SYNTHETIC copy of the addenda with one record removed must not parse."""
    text = Source(shared_data / CM_ZIP, "icd10cm_order_addenda_2026.txt").read_bytes().decode("latin-1")
    lines = text.split("\r\n")
    bad = tmp_path / "icd10cm_order_addenda_2026.txt"
    bad.write_text("\r\n".join(lines[1:]), encoding="latin-1")
    with pytest.raises(D.DataError, match=r"icd10cm_order_addenda_2026.txt: codes records .* disagree"):
        D.parse_order_addenda(Source(bad))


# ----------------------------------------------------------------------------- ICD-10-CM
def test_cm_diff_equals_the_order_addenda_exactly(cm_diff: D.Diff, cm_addenda: D.Addenda) -> None:
    mine, theirs = D.agency_entries(cm_diff), D.addenda_entries(cm_addenda)
    assert mine == theirs
    assert len(mine) == 703     # 143+0+7 header and 487+28+38 code records


def test_cm_diff_counts(cm_diff: D.Diff, cm_addenda: D.Addenda) -> None:
    t = cm_addenda.totals
    assert cm_diff.from_count == t["icd10cm_order_2025.txt:codes"] + t["icd10cm_order_2025.txt:headers"]
    assert cm_diff.to_count == t["icd10cm_order_2026.txt:codes"] + t["icd10cm_order_2026.txt:headers"]
    # the addenda's flag changes (Delete under one flag + Add under the other) are our billable changes
    flips = {e.key for e in cm_addenda.entries if e.action == "Delete"} & \
            {e.key for e in cm_addenda.entries if e.action == "Add"}
    assert {r.key for r in cm_diff.billable_changed} == flips
    assert cm_diff.counts["added"] + len(flips) == 143 + 487
    assert cm_diff.counts["deleted"] + len(flips) == 0 + 28


def test_cm_diff_rows_carry_the_agency_values(cm_diff: D.Diff) -> None:
    flip = {r.key: r for r in cm_diff.billable_changed}["B880"]
    assert (flip.code, flip.before, flip.after) == ("B88.0", True, False)
    added = {e.key: e for e in cm_diff.added}
    assert added["B8801"].title == "Infestation by Demodex mites" and added["B8801"].billable is True
    rev = {r.key: r for r in cm_diff.title_revised}["L02212"]
    assert (rev.before, rev.after) == ("Cutaneous abscess of back [any part, except buttock]",
                                      "Cutaneous abscess of back [any part, except buttock and flank]")
    short = {r.key: r for r in cm_diff.short_title_revised}["L02212"]
    assert (short.before, short.after) == ("Cutaneous abscess of back [any part, except buttock]",
                                          "Cutaneous abscess of back")


def test_diff_as_json_and_csv(cm_diff: D.Diff) -> None:
    doc = json.loads(json.dumps(cm_diff.as_dict()))
    assert doc["counts"] == cm_diff.counts and doc["from"] == "2025" and doc["to"] == "2026"
    rows = list(csv.reader(io.StringIO(_csv(cm_diff))))
    assert rows[0] == list(D.Diff.CSV_HEADER)
    changes = Counter(r[0] for r in rows[1:])
    assert changes == {"added": cm_diff.counts["added"], "deleted": cm_diff.counts["deleted"],
                       "title_revised": cm_diff.counts["title_revised"],
                       "short_title_revised": cm_diff.counts["short_title_revised"],
                       "billable_changed": cm_diff.counts["billable_changed"]}
    assert ["billable_changed", "B88.0", "header", "billable", "1", "0"] in rows


def _csv(d: D.Diff) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(d.csv_rows())
    return buf.getvalue()


# ----------------------------------------------------------------------------- ICD-10-PCS
def test_pcs_diff_agrees_with_the_order_addenda(store: Store, pcs_addenda: D.Addenda) -> None:
    d = D.diff(store, "icd10pcs", "2025", "2026")
    mine, theirs = D.agency_entries(d), D.addenda_entries(pcs_addenda)
    assert theirs <= mine                      # every agency change is in the diff
    t = pcs_addenda.totals
    assert d.to_count == t["icd10pcs_order_2026.txt:codes"] + t["icd10pcs_order_2026.txt:headers"]
    # the surplus is the April 1, 2025 update, which the addenda's "2025" file already had
    info = store.find("icd10pcs", "2025")
    extra = mine - theirs
    for flag, group in (("1", "codes"), ("0", "headers")):
        net = sum(1 for e in extra if e[1] == flag and e[0] == "Add") - \
            sum(1 for e in extra if e[1] == flag and e[0] == "Delete")
        ours = info.counts["codes" if flag == "1" else "tables"]
        assert ours + net == t[f"icd10pcs_order_2025.txt:{group}"], group
    assert {e[0] for e in extra} <= {"Add", "Delete", "Revise"}
    assert len(extra) == 66


# ----------------------------------------------------------------------------- HCPCS
def test_hcpcs_diff_agrees_with_the_2020_action_codes(store: Store, shared_data: Path) -> None:
    d = D.diff(store, "hcpcs", "2019-01", "2020-01")
    acts = D.parse_hcpcs_actions(Source(shared_data / HCPCS_2020, "HCPC2020_ANWEB_w_disclaimer.txt"))
    assert Counter(a.action for a in acts.values()) == {"N": 6648, "A": 250, "D": 99, "C": 70, "P": 10, "S": 2}

    def key(e) -> tuple[str, bool]:
        return (e.code, e.kind == "modifier")

    old = D.code_rows(store.open("hcpcs", "2019-01"))
    in_2019 = {(e.code, e.kind == "modifier") for e in old.values()}
    every_2019 = {(r["code"], r["kind"] == "modifier")
                  for r in store.open("hcpcs", "2019-01").conn.execute("SELECT code, kind FROM concept")}
    by = lambda a: {k for k, v in acts.items() if v.action == a}  # noqa: E731

    added, deleted = {key(e) for e in d.added}, {key(e) for e in d.deleted}
    # A (add): every one is added
    assert by("A") <= added
    # ... the rest of the additions are codes the 2019 file lacks although the agency dates them
    # 2019-01-01 or earlier (action N: nothing changed for 2020)
    for k in added - by("A"):
        assert acts[k].action == "N" and k not in every_2019 and acts[k].added <= "20190101", k
    # D (discontinued): every one in the 2019 file is deleted; the others were added and ended within
    # 2019 (never in the 2019 file)
    assert by("D") & in_2019 <= deleted
    for k in by("D") - deleted:
        assert k not in every_2019 and acts[k].added > "20190101", k
    # ... the rest of the deletions: codes the 2020 file dates as ended before 2019-01-01 (action N),
    # although the 2019 file still listed them as valid
    for k in deleted - by("D"):
        assert acts[k].action == "N" and acts[k].terminated < "20190101" and k in in_2019, k
    # C (long description changed): exactly the long-title revisions
    assert {key(r) for r in d.title_revised} == by("C")
    # S (short description changed) are short-title revisions; C may change the short title too
    shorts = {key(r) for r in d.short_title_revised}
    assert by("S") <= shorts <= by("S") | by("C")
    # P (payment change) and N (no maintenance) change no title
    assert not (by("P") | by("N")) & ({key(r) for r in d.title_revised} | shorts)
    assert d.counts | {} == {**d.counts, "added": 268, "deleted": 89, "title_revised": 70,
                             "short_title_revised": 51, "billable_changed": 0}


# ----------------------------------------------------------------------------- history and errors
def test_history_of_a_code_that_became_a_header(store: Store) -> None:
    steps = {s.release: s for s in D.history(store, "icd10cm", "B88.0")}
    assert steps["2025"].billable is True and steps["2025"].title == "Other acariasis"
    assert steps["2026"].billable is False and steps["2026"].changes == ["billable -> header (not billable)"]


def test_history_of_a_new_code(store: Store) -> None:
    steps = D.history(store, "icd10cm", "B88.01")
    assert steps[0].release == "2026" and steps[0].title == "Infestation by Demodex mites"
    assert all(s.present for s in steps)


def test_history_of_a_revised_title(store: Store) -> None:
    steps = {s.release: s for s in D.history(store, "icd10cm", "L02.212")}
    assert steps["2026"].changes[0] == "title revised (was: Cutaneous abscess of back [any part, except buttock])"
    assert json.loads(json.dumps([s.as_dict() for s in steps.values()]))


def test_history_of_a_deleted_hcpcs_code(store: Store, shared_data: Path) -> None:
    acts = D.parse_hcpcs_actions(Source(shared_data / HCPCS_2020, "HCPC2020_ANWEB_w_disclaimer.txt"))
    old = D.code_rows(store.open("hcpcs", "2019-01"))
    gone = sorted(k[0] for k, a in acts.items() if a.action == "D" and not k[1] and k[0] in old)[0]
    steps = {s.release: s for s in D.history(store, "hcpcs", gone)}
    assert steps["2019-01"].present and not steps["2020-01"].present
    assert steps["2020-01"].changes == ["deleted"]


def test_diff_of_a_release_not_installed(store: Store) -> None:
    with pytest.raises(D.DiffError, match=r"icd10cm 1999 is not installed \(installed: .*2026"):
        D.diff(store, "icd10cm", "1999", "2026")


# ----------------------------------------------------------------------------- date of service
@pytest.fixture(scope="module")
def resolver(store: Store):
    from medcodes.dates import DateResolver

    return DateResolver(store, "icd10cm")


def test_code_valid_until_the_day_before_it_became_a_header(resolver) -> None:
    # April-September 2025: the April 1, 2025 update (icd10cm-tabular-April-2025.xml)
    assert resolver.resolve("B880", date(2025, 9, 30)) == ("2025-04", True)
    assert resolver.resolve("B880", date(2025, 3, 31)) == ("2025", True)
    assert resolver.resolve("B880", date(2025, 10, 1)) == ("2026", False)
    assert resolver.ended("B880", date(2025, 10, 1)) == date(2025, 9, 30)
    assert resolver.ended("B880", date(2025, 9, 30)) is None


def test_new_code_valid_from_its_fiscal_year(resolver) -> None:
    assert resolver.resolve("B8801", date(2025, 9, 30)) == ("2025-04", False)
    assert resolver.starts("B8801", date(2025, 9, 30)) == date(2025, 10, 1)
    assert resolver.resolve("B8801", date(2026, 4, 1)) == ("2026-04", True)
    assert resolver.resolve_many([("B8801", date(2025, 10, 1)), ("B8801", date(2000, 1, 1))]) == \
        [("2026", True), (None, False)]


def test_resolver_agrees_with_the_release_files(resolver, store: Store) -> None:
    """Every key of two releases: valid <=> a non-structural row with billable not 0."""
    for rid, day in (("2025", date(2025, 1, 15)), ("2026", date(2025, 12, 1))):
        db = store.open("icd10cm", rid)
        n = 0
        for key, kind, billable in db.conn.execute("SELECT key, kind, billable FROM concept"):
            want = kind not in D.STRUCTURAL_KINDS and billable != 0
            assert resolver.resolve(key, day) == (rid, want), key
            n += want
        assert n == store.find("icd10cm", rid).counts["order_billable"]
