"""``medcodes check FILE... [--json]``, batch mode (``--batch [--out F]``) and the RIF demo (``--demo-rif DIR``).

The lead's CLI adds :data:`check_command` to the ``medcodes`` group. Exit status
is 1 when any claim has an error finding, 0 otherwise (2 for unreadable input,
via the group's error handling). Output names claims by id and shows codes and
findings only: no patient data is printed or logged.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from ..errors import MedcodesError, shown
from .check import check
from .model import CheckResult
from .ncci import NcciEdits
from .ncci import load as load_ncci
from .readers import read_path, read_rif_dir

_MARK = {"error": "E", "warning": "W", "info": "i"}


def _codebook(ctx: click.Context, home: str | None) -> Any:
    from ..codebook import Codebook

    obj = ctx.ensure_object(dict)
    if obj.get("book") is not None and home is None:
        return obj["book"]
    book = Codebook.open(home or obj.get("home"))
    ctx.call_on_close(book.close)
    obj["book"] = book
    return book


def rif_summary(cb: Any, root: str | Path, edits: NcciEdits | None = None) -> dict[str, Any]:
    """Read and check every claim of a CCW RIF export; counts by file, rule and severity."""
    read = read_rif_dir(root)
    by_rule: Counter = Counter()
    by_sev: Counter = Counter()
    with_errors = 0
    for claim in read.claims:
        res = check(cb, claim, edits)
        with_errors += bool(res.errors)
        for f in res.findings:
            by_rule[f.rule, f.severity] += 1
            by_sev[f.severity] += 1
    return {
        "files": {s.file: {"rows": s.rows, "claims": s.claims, "lines": s.lines,
                           "lines_without_code": s.lines_without_code} for s in read.stats},
        "claims": len(read.claims),
        "claims_with_errors": with_errors,
        "findings": dict(sorted(by_sev.items())),
        "rules": {f"{rule} ({sev})": n for (rule, sev), n in sorted(by_rule.items())},
    }


def _print_summary(summary: dict[str, Any]) -> None:
    click.echo("CCW RIF claims read:")
    for name, st in summary["files"].items():
        click.echo(f"  {name:16} {st['rows']:5} line rows  {st['claims']:4} claims  "
                   f"{st['lines']:5} service lines ({st['lines_without_code']} without a code)")
    click.echo(f"Claims checked: {summary['claims']}   with errors: {summary['claims_with_errors']}")
    click.echo("Findings: " + ", ".join(f"{n} {sev}" for sev, n in summary["findings"].items()))
    for rule, n in summary["rules"].items():
        click.echo(f"  {n:6}  {rule}")


def _print_result(res: CheckResult) -> None:
    status = "OK" if res.ok else f"{len(res.errors)} error(s)"
    click.echo(f"claim {res.claim_id}: {status}, {len(res.findings)} finding(s)")
    for f in res.findings:
        click.echo(f"  [{_MARK[f.severity]}] {f.rule} at {f.location} ({', '.join(f.codes)}): {f.message}")
        click.echo(f"        source: {f.source}")


def _estimate_rows(path: str) -> int:
    """Rows of a claim-lines file: exact for Parquet (footer), estimated from the first 64 KB for CSV."""
    from .batch import total_rows

    n = total_rows(path)
    if n is not None:
        return n
    size = Path(path).stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(65536)
    return max(1, round(size / max(1, len(head) / max(1, head.count(b"\n")))))


def _batch(cb: Any, files: tuple[str, ...], out: str | None, as_json: bool, engine: str,
           edits: NcciEdits | None = None) -> bool:
    """Check claim-lines tables (CSV/Parquet) in batch mode, streaming; print a summary. Any error?"""
    from .batch import Totals, check_file
    from .check import checker

    if out:
        _writable(out)  # before the work, not after it
    if out and len(files) > 1:
        raise click.BadParameter("--out takes one input file at a time", param_hint="--out")
    total = Totals()
    for path in files:
        if engine == "spark":
            if edits is not None:
                raise click.UsageError("--ncci FILE works with the local engine; on Spark the installed NCCI "
                                       "quarters apply")
            from ..spark import check_file as spark_check_file

            got = spark_check_file(cb, path, out)
        else:
            show = sys.stderr.isatty()
            try:
                with open(os.devnull, "w") as devnull, click.progressbar(
                        length=_estimate_rows(path) if show else 1, label=Path(path).name,
                        file=sys.stderr if show else devnull, show_pos=True) as bar:
                    got = check_file(cb, path, out, progress=bar.update, ck=checker(cb, edits))
            except OSError as exc:
                raise MedcodesError(f"--out {shown(out or '')}: cannot be written "
                                    f"({exc.strerror or type(exc).__name__})") from None
        total.claims += got.claims
        total.lines += got.lines
        total.claims_with_errors += got.claims_with_errors
        for k, n in got.by_rule.items():
            total.by_rule[k] = total.by_rule.get(k, 0) + n
    s = total.summary()
    if out:
        s["written"] = str(out)
    if as_json:
        click.echo(json.dumps(s, indent=2))
    else:
        click.echo(f"Batch: {s['claims']} claims, {s['lines']} service lines checked; claims with errors: "
                   f"{s['claims_with_errors']}")
        click.echo("Findings: " + (", ".join(f"{n} {sev}" for sev, n in s["findings"].items()) or "none"))
        for rule, n in s["rules"].items():
            click.echo(f"  {n:8}  {rule}")
        if out:
            click.echo(f"Findings written to {out}")
    return bool(s["findings"].get("error"))


def _writable(out: str) -> None:
    """A one-line error now if the findings could not be written to ``out``."""
    target = Path(out)
    if target.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise click.BadParameter("must end in .parquet or .csv", param_hint="--out")
    folder = target.parent
    if not folder.is_dir():
        raise MedcodesError(f"--out {shown(out)}: folder {shown(str(folder))} does not exist")
    if not os.access(folder, os.W_OK):
        raise MedcodesError(f"--out {shown(out)}: folder {shown(str(folder))} is not writable")


@click.command("check", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("files", nargs=-1, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Findings as JSON.")
@click.option("--ncci", "ncci_files", multiple=True, type=click.Path(exists=True),
              help="Your own NCCI PTP, MUE or add-on code file (repeatable): used instead of the NCCI quarters "
              "installed by `medcodes pull`, which apply by date of service without this option.")
@click.option("--demo-rif", "demo_rif", type=click.Path(exists=True, file_okay=False),
              help="Check every claim of a CMS CCW RIF export folder and print a findings summary.")
@click.option("--batch", is_flag=True, help="Treat FILE as a claim-lines table (CSV or Parquet, one row per service "
              "line) and check it with vectorised joins; prints a summary (see docs/claims.md for the rules covered).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="With --batch: write the findings to this .parquet or .csv file (streamed, chunk by chunk).")
@click.option("--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True,
              help="With --batch: run on this machine (Polars) or on a local Spark (pip install medcodes[spark]).")
@click.option("--home", type=click.Path(file_okay=False), default=None, hidden=True)
@click.pass_context
def check_command(ctx: click.Context, files: tuple[str, ...], as_json: bool, ncci_files: tuple[str, ...],
                  demo_rif: str | None, batch: bool, out: str | None, engine: str, home: str | None) -> None:
    """Check claims (JSON, CSV, FHIR R4 Claim, CMS RIF) for code errors before a payer does."""
    if not files and not demo_rif:
        raise click.UsageError("give claim files, or --demo-rif DIR")
    if out and not batch:
        raise click.UsageError("--out goes with --batch")
    if engine != "local" and not batch:
        raise click.UsageError("--engine goes with --batch")
    if batch and demo_rif:
        raise click.UsageError("--batch does not read RIF folders; check those per claim")
    cb = _codebook(ctx, home)
    edits = load_ncci(ncci_files) if ncci_files else None
    if batch:
        sys.exit(1 if _batch(cb, files, out, as_json, engine, edits) else 0)
    if demo_rif:
        summary = rif_summary(cb, demo_rif, edits)
        if as_json:
            click.echo(json.dumps(summary, indent=2))
        else:
            _print_summary(summary)
        return
    any_error = False
    results = []
    claims = [(path, read_path(path)) for path in files]  # every file read (and checked readable) first
    if not any(got for _path, got in claims):
        names = ", ".join(shown(Path(p).name) for p in files[:3]) + (" ..." if len(files) > 3 else "")
        raise MedcodesError(f"{names}: no claims in the file{'s' if len(files) > 1 else ''} (nothing to check)")
    for _path, got in claims:
        for claim in got:
            res = check(cb, claim, edits)
            any_error |= not res.ok
            if as_json:
                results.append(res.as_dict())
            else:
                _print_result(res)
    if as_json:
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
    sys.exit(1 if any_error else 0)


@click.command("group")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="The grouping as JSON (one object per claim, in a list).")
@click.option("--no-what-if", "no_what_if", is_flag=True, help="Skip regrouping without each secondary diagnosis.")
@click.option("--home", type=click.Path(file_okay=False), default=None, hidden=True)
@click.pass_context
def group_command(ctx: click.Context, files: tuple[str, ...], as_json: bool, no_what_if: bool,
                  home: str | None) -> None:
    """MS-DRG of inpatient claims: DRG, MDC, weight, mean LOS, each secondary dx MCC/CC/non-CC, what-if."""
    from .grouping import group

    cb = _codebook(ctx, home)
    results = []
    for path in files:
        for claim in read_path(path):
            results.append(group(cb, claim, what_if=not no_what_if))   # GroupingError: one line, exit 2
    if as_json:
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
        return
    for g in results:
        click.echo(f"claim {g['claim']}: MS-DRG {g['drg']} {g['title']} (MDC {g['mdc']}, {g['type']}); "
                   f"weight {g['weight']}, GMLOS {g['gmlos']}, AMLOS {g['amlos']}")
        click.echo(f"  principal {g['principal']['code']}")
        for s in g["secondary"]:
            excl = f", excluded by the principal (Table 6K collection {s['exclusion_collection']})" \
                if s["excluded_by_principal"] else ""
            click.echo(f"  secondary {s['code']}: {s['level']}{excl}")
        for w in g["what_if"]:
            click.echo(f"  without {w['remove']}: MS-DRG {w['drg']} {w['title']} (weight {w['weight']}, "
                       f"{w['weight_change']:+})" if w["weight_change"] is not None else
                       f"  without {w['remove']}: MS-DRG {w['drg']} {w['title']}")
        click.echo(f"  source: {g['source']}")
