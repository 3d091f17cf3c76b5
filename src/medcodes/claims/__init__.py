"""The claim checker: read claims (JSON, CSV, FHIR R4, CMS CCW RIF) and find what is wrong with their codes.

    >>> from medcodes import Codebook
    >>> from medcodes.claims import Claim, check
    >>> result = check(Codebook.open(), Claim.from_dict({...}))
    >>> [f.rule for f in result.findings]

See docs/claims.md for the claim format, the rules and their sources.
"""

from __future__ import annotations

from typing import Any

from .check import RULES, Checker, check, checker
from .model import CheckResult, Claim, ClaimFormatError, Diagnosis, Finding, Line, Patient, Procedure
from .ncci import NcciEdits
from .ncci import load as load_ncci
from .readers import read_path, read_rif_dir

__all__ = ["Claim", "Diagnosis", "Procedure", "Line", "Patient", "Finding", "CheckResult",
           "ClaimFormatError", "RULES", "Checker", "check", "checker", "read_path", "read_rif_dir",
           "NcciEdits", "load_ncci", "check_command"]


def __getattr__(name: str) -> Any:
    if name == "check_command":   # click is only imported for the CLI
        from .cli import check_command

        return check_command
    raise AttributeError(name)
