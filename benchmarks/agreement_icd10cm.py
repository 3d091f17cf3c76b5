"""Agreement of medcodes' ICD-10-CM parser with the simple-icd-10-cm package.

Builds, in memory, the ``2026-04`` release from the tabular XML that
simple-icd-10-cm carries (medcodes.systems.icd10cm.embedded_source) and the
FY2026 October release (CMS order file + the same XML), then compares every
item with the package's own API: exists, leaf/billable, parent, title.
Prints each category of difference with its count and a few examples.

Usage:  python benchmarks/agreement_icd10cm.py [SHARED_DATA_DIR]
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from medcodes.model import Concept, normalize_key
from medcodes.sources import scan
from medcodes.systems import icd10cm

EXAMPLES = 5


def build(plan: Any) -> dict[str, Concept]:
    b = plan.build()
    return {c.key: c for c in b.concepts}


def their_items(blocks: dict[str, str]) -> dict[str, tuple[str, str, bool, str | None]]:
    """Every item of simple-icd-10-cm keyed like medcodes: key -> (name, kind, leaf, parent key).

    The package names chapters '1'..'22' and sections by their XML id; a one-category
    section ('B10') shares its name with its category and comes first in get_all_codes(),
    its own data being reached with prioritize_blocks=True.
    """
    import simple_icd_10_cm as cm

    out: dict[str, tuple[str, str, bool, str | None]] = {}
    seen: set[str] = set()
    for name in cm.get_all_codes(with_dots=True):
        section_view = name not in seen and (("-" in name) or (name in blocks and name in seen_twice()))
        seen.add(name)
        if cm.is_chapter(name):
            key, kind = f"CHAPTER{name}", "chapter"
        elif section_view or "-" in name:
            key, kind = blocks.get(name, normalize_key(name)), "block"
        else:
            key, kind = normalize_key(name), "code"
        parent = cm.get_parent(name, prioritize_blocks=kind == "block") or None
        if parent is not None:
            if parent.isdigit():
                parent = f"CHAPTER{parent}"
            elif kind == "block" or len(key) == 3:
                parent = blocks.get(parent, normalize_key(parent))
            else:
                parent = normalize_key(parent)
        leaf = cm.is_leaf(name, prioritize_blocks=kind == "block")
        out[key] = (name, kind, leaf, parent)
    return out


_TWICE: set[str] = set()


def seen_twice() -> set[str]:
    """Names that get_all_codes() lists twice (a one-category section and its category)."""
    if not _TWICE:
        import collections

        import simple_icd_10_cm as cm

        _TWICE.update(n for n, k in collections.Counter(cm.get_all_codes(True)).items() if k > 1)
    return _TWICE


def our_blocks(ours: dict[str, Concept]) -> dict[str, str]:
    """Section ids ('B10', 'A00-A09') -> medcodes block keys ('B10-B10', 'A00-A09')."""
    return {c.attrs.get("id", c.code): c.key for c in ours.values() if c.kind == "block"}


class Diffs:
    def __init__(self) -> None:
        self.cats: dict[str, list[str]] = defaultdict(list)

    def add(self, cat: str, example: str) -> None:
        self.cats[cat].append(example)

    def report(self, title: str) -> None:
        print(f"\n== {title}")
        if not self.cats:
            print("   no differences")
        for cat, items in sorted(self.cats.items(), key=lambda kv: -len(kv[1])):
            print(f"   {len(items):>7,}  {cat}")
            for ex in items[:EXAMPLES]:
                print(f"            e.g. {ex}")


def compare(ours: dict[str, Concept], label: str) -> None:
    import simple_icd_10_cm as cm

    theirs = their_items(our_blocks(ours))
    d = Diffs()
    print(f"\n{label}: medcodes {len(ours):,} rows; simple-icd-10-cm {len(theirs):,} items")
    for key in ours.keys() - theirs.keys():
        d.add(f"only in medcodes ({ours[key].kind})", ours[key].code)
    for key in theirs.keys() - ours.keys():
        d.add("only in simple-icd-10-cm", theirs[key][0])
    for key in sorted(ours.keys() & theirs.keys()):
        c = ours[key]
        name, kind, leaf, parent = theirs[key]
        is_group = c.kind in ("chapter", "block")
        if is_group != (kind != "code"):
            d.add("kind differs", f"{c.code}: medcodes {c.kind} / package {kind}")
        if not is_group and bool(c.billable) != leaf:
            d.add(f"billable={c.billable} vs is_leaf={leaf}", c.code)
        if (c.parent or None) != parent:
            d.add(f"parent differs ({c.kind})", f"{c.code}: medcodes {c.parent} / package {parent}")
        desc = cm.get_description(name, prioritize_blocks=kind == "block")
        if desc != c.title:
            if " ".join(desc.split()) == c.title:
                cat = "title differs only in whitespace"
            elif "seventh" in c.attrs and "/" in desc:
                cat = "title differs: package appends the sevenChrDef <note> after '/'"
            else:
                cat = "title differs"
            if "seventh" in c.attrs:
                cat += " (7th-character code)"
            d.add(cat, f"{c.code}: medcodes {c.title!r} / package {desc!r}")
    d.report(label)


def main(argv: list[str]) -> None:
    shared = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    t0 = time.time()
    emb = icd10cm.embedded_source()
    print(f"embedded XML: {emb.path}  sha256 {hashlib.sha256(emb.read_bytes()).hexdigest()[:16]}")
    shared_xml = shared / "icd10cm/2026-apr/icd10c-tabular-April-1-2026.xml"
    if shared_xml.is_file():
        same = shared_xml.read_bytes() == emb.read_bytes()
        print(f"shared/data copy {'is byte-identical' if same else 'DIFFERS'}")
    (apr_plan,) = [p for p in icd10cm.plan([emb]) if p.release == "2026-04"]
    apr = build(apr_plan)
    oct_plans = [p for p in icd10cm.plan(scan(shared / "icd10cm/2026") + [emb]) if p.release == "2026"]
    octo = build(oct_plans[0]) if oct_plans else {}
    print(f"built in {time.time() - t0:.1f}s")

    t1 = time.time()
    import simple_icd_10_cm  # noqa: F401  (loads its data at import)
    print(f"simple-icd-10-cm {getattr(simple_icd_10_cm, '__version__', '')} loaded in {time.time() - t1:.1f}s")

    compare(apr, "2026-04 (embedded XML) vs simple-icd-10-cm")
    if octo:
        compare(octo, "2026 (CMS order file Oct 2025 + XML) vs simple-icd-10-cm")
        d = Diffs()
        for key in apr.keys() & octo.keys():
            a, o = apr[key], octo[key]
            if a.kind in ("chapter", "block"):
                continue
            if a.billable != o.billable:
                d.add("billable differs", a.code)
            if a.title != o.title:
                import unicodedata

                plain = unicodedata.normalize("NFKD", a.title).encode("ascii", "ignore").decode()
                cat = "accents only (XML accented, order file ASCII)" if plain == o.title else "wording"
                if "seventh" in a.attrs:
                    cat += ", 7th-character code"
                d.add(f"title: {cat}", f"{a.code}: XML {a.title!r} / order {o.title!r}")
        for key in apr.keys() ^ octo.keys():
            d.add("code in one release only", key)
        d.report("2026-04 (April XML) vs 2026 (October order file): titles and flags")


if __name__ == "__main__":
    main(sys.argv)
