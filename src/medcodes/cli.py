"""The ``medcodes`` command: a thin layer over :class:`medcodes.Codebook`.

Every command prints text for people or ``--json`` for programs. Errors are
one line on stderr and exit status 2 (1 is kept for "the check found errors").
Heavy modules are imported inside the commands so start-up stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

import click

from .errors import MedcodesError, clip

SYSTEM_CHOICE = click.Choice(["icd10cm", "icd10pcs", "hcpcs", "cpt", "icd9cm"])


class _Group(click.Group):
    """Turns every medcodes error into one line on stderr and exit 2; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MedcodesError as exc:
            _fail(str(exc))
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:  # `medcodes ... | head`: the reader left; not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except Exception as exc:  # noqa: BLE001 - last line of defence for users
            if os.environ.get("MEDCODES_DEBUG"):
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            _fail(f"internal error: {type(exc).__name__}: {first} (set MEDCODES_DEBUG=1 for details)")


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"medcodes: {clip(message)}", err=True)
    sys.exit(code)


def _book(ctx: click.Context) -> Any:
    from .codebook import Codebook

    obj = ctx.ensure_object(dict)
    if "book" not in obj:
        obj["book"] = Codebook.open(obj.get("home"))
        ctx.call_on_close(obj["book"].close)
    return obj["book"]


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), envvar="MEDCODES_HOME",
              help="Store directory (default: $MEDCODES_HOME or the user data dir).")
@click.version_option(package_name="medcodes")
@click.pass_context
def main(ctx: click.Context, home: str | None) -> None:
    """medcodes: US medical billing codes (ICD-10-CM, ICD-10-PCS, HCPCS, CPT, ICD-9-CM), offline."""
    ctx.ensure_object(dict)["home"] = home


# ------------------------------------------------------------------ pull
@main.command()
@click.argument("system", required=False)
@click.argument("release", required=False)
@click.option("--from", "from_dir", type=click.Path(), help="Folder (or zip) of official files you downloaded.")
@click.option("--cpt", "cpt_file", type=click.Path(), help="A licensed AMA CPT file (CSV: code, descriptor[, short]).")
@click.option("--release", "cpt_release", help="Release id for --cpt (default: the year in the file name).")
@click.option("--force", is_flag=True, help="Rebuild releases even if the same files are installed.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None,
              help="Build processes for --from (default: one per core).")
@click.pass_context
def pull(ctx: click.Context, system: str | None, release: str | None, from_dir: str | None,
         cpt_file: str | None, cpt_release: str | None, force: bool, quiet: bool, jobs: int | None) -> None:
    """Install official releases into the store (from the agencies, or --from DIR)."""
    from .releases import pull_from_dir
    from .store import Store

    _stop_on_sigterm()
    store = Store(ctx.obj.get("home"))
    say: Callable[[str], None] = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
    out: Callable[[str], None] = (lambda m: None) if quiet else click.echo
    if cpt_file:
        from .systems import cpt

        build = cpt.load_csv(cpt_file, cpt_release)
        info = store.install(build)
        out(f"installed cpt {info.release}: " + ", ".join(f"{k} {v:,}" for k, v in info.counts.items()))
        _prepare_search(ctx, say)
        return
    if from_dir:
        systems = {system} if system else None
        report = pull_from_dir(store, from_dir, systems=systems, force=force, progress=say, jobs=jobs)
    else:
        report = _pull_official(store, system, release, force, quiet)
    if getattr(report, "cleaned", 0):
        say(f"removed {report.cleaned} temporary file(s) left by an interrupted pull")
    for sys_, rel, counts in report.installed:
        out(f"installed {sys_} {rel}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    for sys_, rel in report.unchanged:
        out(f"unchanged {sys_} {rel} (already installed from the same files)")
    for sys_, rel, why in report.skipped:  # errors: said even with --quiet
        click.echo(f"medcodes: skipped {sys_} {rel}: {why}", err=True)
    if report.installed or report.unchanged:
        _prepare_search(ctx, say)
    if report.skipped:
        ctx.exit(1)


def _stop_on_sigterm() -> None:
    """SIGTERM ends a pull like Ctrl-C: its workers are stopped and its temporary files removed."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (embedded use): leave signals alone
        pass


def _prepare_search(ctx: click.Context, say: Callable[[str], None]) -> None:
    """Compile the search index for the releases now in effect, so the first search is instant, and the
    claim checker's per-release columnar facts (batch mode joins them).

    Nothing to do (and nothing said) when both are already compiled: a no-op re-pull stays one.
    """
    from .claims.codefacts import prepare as prepare_facts
    from .codebook import Codebook
    from .search import prepare
    from .search.api import prepared

    with Codebook.open(ctx.obj.get("home")) as book:
        if any(i.system in ("icd10cm", "icd10pcs", "hcpcs") for i in book.releases()) and not prepared(book):
            say("compiling the search index")
            prepare(book)
        prepare_facts(book, say)


def _pull_official(store: Any, system: str | None, release: str | None, force: bool, quiet: bool) -> Any:
    """Download from cms.gov / cdc.gov: one release, a system's current one, or every system's."""
    from . import catalogue
    from .download import download_release
    from .releases import PullReport

    if release and not system:
        raise MedcodesError("name the system before the release, e.g. medcodes pull icd10cm 2026")
    if system and release:
        wanted = [catalogue.get(system, release)]
    else:
        systems = [system] if system else sorted({e.system for e in catalogue.releases()})
        wanted = [catalogue.latest(s) for s in systems]
    total = PullReport()
    for entry in wanted:
        if not quiet:
            click.echo(f"downloading {entry.system} {entry.release} ({entry.label})", err=True)
        rep = download_release(store, entry.system, entry.release, progress=not quiet, force=force)
        if rep.pull is not None:
            total.installed.extend(rep.pull.installed)
            total.unchanged.extend(rep.pull.unchanged)
            total.skipped.extend(rep.pull.skipped)
    return total


# ------------------------------------------------------------------ releases
@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def releases(ctx: click.Context, as_json: bool) -> None:
    """List the installed releases: system, release, effective dates, sources, counts."""
    infos = _book(ctx).releases()
    if as_json:
        _emit_json([i.as_dict() for i in infos])
        return
    if not infos:
        click.echo("no releases installed: run medcodes pull")
        return
    sw = max(len(i.system) for i in infos)
    rw = max(len(i.release) for i in infos)
    pad = " " * (sw + 1)
    for i in infos:
        to = i.effective_to.isoformat() if i.effective_to else "open"
        click.echo(f"{i.system:{sw}} {i.release:{rw}} {i.effective_from.isoformat()} .. {to:10}  {i.label}")
        click.echo(f"{pad}counts: " + ", ".join(f"{k} {v:,}" for k, v in i.counts.items()))
        click.echo(f"{pad}sources: " + ", ".join(s["name"] for s in i.sources))


# ------------------------------------------------------------------ identify
@main.command()
@click.argument("raw", nargs=-1, required=True)
@click.option("--date", help="Date of service (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def identify(ctx: click.Context, raw: tuple[str, ...], date: str | None, as_json: bool) -> None:
    """What could this string be? Every plausible reading, most likely first."""
    book = _book(ctx)
    _as_day(date)  # a bad date is one mistake for all the codes: said once, exit 2
    results: dict[str, list[Any] | str] = {}
    for r in raw:  # each string gets its own answer: one malformed string does not stop the others
        try:
            results[r] = book.identify(r, date)
        except MedcodesError as exc:
            results[r] = str(exc)
    if as_json:
        def one(got: list[Any] | str) -> Any:
            return {"error": got} if isinstance(got, str) else [i.as_dict() for i in got]
        _emit_json({_short(r): one(got) for r, got in results.items()} if len(raw) > 1 else one(results[raw[0]]))
    else:
        for r, got in results.items():
            click.echo(f"{_short(r)}:")
            if isinstance(got, str):
                click.echo(f"  error: {got}")
                continue
            if not got:
                click.echo("  not a code of any system medcodes knows")
            for i in got:
                click.echo("  " + _ident_line(i))
                for line in _structure_lines(i.structure):
                    click.echo("      " + line)
    if any(isinstance(got, str) for got in results.values()):
        sys.exit(2)


def _short(text: str, limit: int = 40) -> str:
    """A user's input as shown back: cut when long."""
    return text if len(text) <= limit else f"{text[:limit - 1]}… ({len(text):,} characters)"


def _as_day(date: str | None) -> None:
    from .codebook import _as_date

    _as_date(date)


def _ident_line(i: Any) -> str:
    status = {"valid": "valid", "header": "header (not billable)", "deleted": f"deleted (last valid {i.ended})",
              "not-found": "does not exist", "not-installed": "no release installed"}.get(i.status, i.status)
    parts = [f"{i.system_name:14} {i.code:10} {status}"]
    if i.release:
        parts.append(f"[{i.release}]")
    if i.title:
        parts.append(f"- {i.title}")
    line = " ".join(parts) + f"  [maintained by {i.maintainer}]"
    if i.successors:
        line += f"; replaced by {', '.join(i.successors[:10])}"
    if i.note:
        line += f"; {i.note}"
    if getattr(i, "coverage_note", None):
        line += f"\n      NOTE: {i.coverage_note}"
    return line


def _structure_lines(structure: dict[str, Any]) -> list[str]:
    lines = []
    for k, v in structure.items():
        if isinstance(v, dict):
            label = " ".join(str(x) for x in v.values() if isinstance(x, (str, int)))
            lines.append(f"{k}: {label}")
        elif isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    lines.append(" ".join(f"{x}" for x in item.values() if x not in (None, "")))
                else:
                    lines.append(str(item))
        elif v not in (None, ""):
            lines.append(f"{k}: {v}")
    return lines


# ------------------------------------------------------------------ lookup
@main.command()
@click.argument("code")
@click.option("--system", type=SYSTEM_CHOICE)
@click.option("--date", help="Date of service (YYYY-MM-DD): the release in effect then answers.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def lookup(ctx: click.Context, code: str, system: str | None, date: str | None, as_json: bool) -> None:
    """The whole record of a code: title, billable, hierarchy, notes, fields, NCCI edits."""
    try:
        rec = _book(ctx).lookup(code, system=system, date=date)
    except MedcodesError as exc:
        # a CPT code without a licensed CPT file: what NCCI says about it, codes only
        if getattr(exc, "system", None) == "cpt" and _ncci_only(_book(ctx), code, date, as_json, clip(str(exc))):
            return
        if not as_json:
            raise
        # --json asked for JSON: the error is JSON too (on stdout), still exit 2
        err: dict[str, Any] = {"error": clip(str(exc)), "code": _short(code)}
        if getattr(exc, "suggestions", None):
            err["suggestions"] = exc.suggestions
        _emit_json(err)
        sys.exit(2)
    if as_json:
        d = rec.as_dict()
        structure = d.get("structure") or {}
        for k in [k for k, v in d.items() if k in structure and structure[k] == v]:
            del d[k]  # said once, under "structure" (PCS axes)
        _emit_json(d)
        return
    d = rec.as_dict()
    if not rec.release_covers_date:
        click.echo(f"medcodes: note: no installed {d['system_name']} release covers {date}; "
                   f"answering from the nearest, {rec.release} ({rec.effective_from} .. {rec.effective_to})", err=True)
    click.echo(f"{rec.code}  {rec.title}")
    click.echo(f"  system    {d['system_name']}, maintained by {rec.maintainer}")
    click.echo(f"  release   {rec.release} - {rec.release_label}")
    if rec.coverage_note:
        click.echo(f"  NOTE      {rec.coverage_note}")
    billable = {True: "yes", False: "no (header: use a more specific code)", None: "n/a"}[rec.billable]
    status = d.get("status") if isinstance(d.get("status"), dict) else {}
    if status.get("state") == "terminated":   # HCPCS: listed in the file, but discontinued
        billable = "no (terminated" + (f", last valid {status['termination']}" if status.get("termination") else "") + ")"
    click.echo(f"  kind      {rec.kind}; billable {billable}")
    if status.get("corrected"):
        click.echo("  corrected yes: CMS corrected this code in the release (see notes)")
    if rec.short_title:
        click.echo(f"  short     {rec.short_title}")
    if rec.ancestors:
        click.echo("  hierarchy")
        for a in rec.ancestors:
            click.echo(f"    {a['code']:12} {a['title']}")
    for line in _structure_lines(rec.structure):
        click.echo(f"  {line}")
    seventh = d.get("seventh_character")
    if seventh:
        click.echo(f"  7th character {seventh.get('char')}: {seventh.get('meaning')}")
    notes = d.get("notes") or []
    if notes:
        click.echo("  notes")
        for n in notes:
            src = f" (from {n['from']})" if n.get("inherited") else ""
            click.echo(f"    {n['kind']}{src}: {n['text']}")
    fields = d.get("fields")
    if isinstance(fields, dict) and fields:
        click.echo("  fields")
        for k, v in fields.items():
            click.echo(f"    {k}: {v}")
    if rec.children:
        click.echo(f"  children ({len(rec.children)})")
        for c in rec.children[:40]:
            click.echo(f"    {c['code']:12} {c['title']}")
        if len(rec.children) > 40:
            click.echo(f"    ... {len(rec.children) - 40} more")
    _print_ncci(d.get("ncci"))


def _ncci_only(book: Any, code: str, date: str | None, as_json: bool, why: str) -> bool:
    """A CPT code with no licensed CPT file installed: show what NCCI says about it (codes only)."""
    from .model import normalize_key

    facts = book.ncci(code, date)
    if facts is None:
        return False
    key = normalize_key(code)
    if as_json:
        _emit_json({"code": key, "system": "cpt", "note": why, "ncci": facts})
        return True
    click.echo(f"medcodes: note: {why}; showing the NCCI edits only", err=True)
    click.echo(f"{key}  (CPT code: no descriptor without a licensed AMA CPT file)")
    _print_ncci(facts)
    return True


def _print_ncci(facts: dict[str, Any] | None) -> None:
    if not facts:
        return
    when = "" if facts["release_covers_date"] else \
        f"; not in effect on {facts['asked']}: the nearest installed quarter, edits as of {facts['date']}"
    click.echo(f"  NCCI      {facts['label']}{when}")
    names = {"practitioner": "practitioner", "outpatient-hospital": "outpatient hospital",
             "dme-supplier": "DME supplier"}
    for setting, m in facts["mue"].items():
        click.echo(f"    MUE {names.get(setting, setting):20} {m['units']:>5} units  indicator {m['indicator']} "
                   f"({m['adjudication']}); rationale: {m['rationale']}")
    add_on = facts.get("add_on")
    if add_on:
        prims = add_on["primaries"]
        click.echo(f"    add-on code, edit type {add_on['type']} ({add_on['meaning']})")
        if prims:
            click.echo(f"    primary codes ({len(prims)}): {', '.join(prims)}")
        for n in add_on["notes"]:
            click.echo(f"    note: {n}")
    if facts.get("primary_for"):
        click.echo(f"    primary code for add-on codes: {', '.join(facts['primary_for'])}")


# ------------------------------------------------------------------ validate
@main.command()
@click.argument("codes", nargs=-1, required=True)
@click.option("--system", type=SYSTEM_CHOICE)
@click.option("--date", help="Date of service (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def validate(ctx: click.Context, codes: tuple[str, ...], system: str | None, date: str | None,
             as_json: bool) -> None:
    """Is each code valid and billable on the date of service? Exit 1 if any is not."""
    book = _book(ctx)
    results = [book.validate(c, system=system, date=date) for c in codes]
    if as_json:
        _emit_json([v.as_dict() for v in results])
    else:
        marks = {"valid": "ok", "invalid": "BAD", "unknown": "UNKNOWN"}
        width = max(len(marks.get(v.status, v.status)) for v in results)
        for v in results:
            mark = marks.get(v.status, v.status)
            click.echo(f"{mark:{width}} {_short(v.code):10} {v.system or '?':9} {v.reason}")
    if not all(v.valid for v in results):
        sys.exit(1)


# ------------------------------------------------------------------ serve
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes (2 fills 2 cores).")
@click.option("--access-log", is_flag=True, help="Log one line per request (method, path, status; never bodies).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, access_log: bool) -> None:
    """Run the HTTP API, FHIR terminology server and web page (docs at /docs)."""
    import uvicorn

    if ctx.obj.get("home"):
        os.environ["MEDCODES_HOME"] = str(ctx.obj["home"])
    click.echo(f"medcodes: serving on http://{host}:{port}/ (API docs /docs, FHIR /fhir/metadata)", err=True)
    uvicorn.run("medcodes.server.app:create_app", factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_level="info", timeout_keep_alive=30)


# ------------------------------------------------------------------ search
@main.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--system", "systems", multiple=True, type=SYSTEM_CHOICE, help="Only these systems (repeatable).")
@click.option("--billable", is_flag=True, help="Only billable codes.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(0, 500))
@click.option("--offset", default=0, type=click.IntRange(0, None))
@click.option("--date", help="Date of service (YYYY-MM-DD): search the releases in effect then.")
@click.option("--chapter", help="ICD-10-CM chapter or block, PCS section, or HCPCS letter.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def search(ctx: click.Context, query: tuple[str, ...], systems: tuple[str, ...], billable: bool, limit: int,
           offset: int, date: str | None, chapter: str | None, as_json: bool) -> None:
    """Ranked, typo-tolerant search over titles, inclusion terms and the official indexes."""
    res = _book(ctx).search(" ".join(query), systems=list(systems) or None, billable=True if billable else None,
                            limit=limit, offset=offset, date=date, chapter=chapter)
    if as_json:
        _emit_json(res.as_dict())
        if res.error:
            sys.exit(2)  # the JSON says why; the status says it too
        return
    if res.error:
        _fail(res.error)
    for h in res.hits:
        why = "; ".join(h.matched[:2]) if h.matched else ""
        click.echo(f"{h.system:9} {h.code:10} {h.title}" + (f"   [{why}]" if why else ""))
    for note in getattr(res, "notes", []):
        click.echo(f"medcodes: note: {note}", err=True)
    if limit == 0:
        click.echo(f"{res.total:,} results (--limit 0: counted, none listed)", err=True)
        return
    more = " (more: use --offset)" if res.truncated else ""
    click.echo(f"{len(res.hits)} of {res.total:,} results{more}", err=True)


# ------------------------------------------------------------------ code a note
@main.command("code")
@click.argument("source", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--inpatient", is_flag=True, help="Inpatient rules: uncertain diagnoses coded as established; ICD-10-PCS.")
@click.option("--date", help="Date of service (YYYY-MM-DD): code with the releases in effect then.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def code_note(ctx: click.Context, source: str, inpatient: bool, date: str | None, as_json: bool) -> None:
    """Suggest codes for a clinical note (FILE, or - for standard input), with the evidence."""
    from .coding.assistant import MAX_CHARS

    try:
        raw = sys.stdin.buffer.read(MAX_CHARS * 4 + 1) if source == "-" else open(source, "rb").read(MAX_CHARS * 4 + 1)
    except OSError as exc:
        raise MedcodesError(f"{source}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MedcodesError(f"{source}: not UTF-8 text") from None
    res = _book(ctx).code(text, setting="inpatient" if inpatient else "outpatient", date=date)
    if as_json:
        _emit_json(res.as_dict())
        return
    for c in res.codes:
        where = ", ".join(repr(text[a:b]) for a, b in c.spans[:2])
        click.echo(f"{c.role:12} {c.system:9} {c.code:9} {c.title}")
        click.echo(f"{'':12} {c.evidence.get('index', '')}  <- {where}")
        for q in c.queries:
            click.echo(f"{'':12} query: {q}")
    for sk in res.not_coded:
        click.echo(f"not coded    {sk.text!r}: {sk.reason}")
    if not res.codes:
        click.echo("no codes found", err=True)


# ------------------------------------------------------------------ diff / history / map
@main.command()
@click.argument("system", type=SYSTEM_CHOICE)
@click.argument("from_release")
@click.argument("to_release", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.pass_context
def diff(ctx: click.Context, system: str, from_release: str, to_release: str | None, as_json: bool,
         as_csv: bool) -> None:
    """Codes added, deleted, retitled, or changed billable status between two releases.

    HCPCS with one release (or a previous release that is not installed): the changes that
    release states itself, by its action codes.
    """
    if to_release is None:
        from_release, to_release = None, from_release  # type: ignore[assignment]
    d = _book(ctx).diff(system, from_release, to_release)
    if as_json:
        _emit_json(d.as_dict())
        return
    if as_csv:
        import csv

        csv.writer(sys.stdout).writerows(d.csv_rows())
        return
    if hasattr(d, "changes"):   # HCPCS: what the release's own action codes say
        click.echo(f"{system} {d.from_release} -> {d.to_release} ({d.source}): "
                   + ", ".join(f"{k} {v:,}" for k, v in d.counts.items()))
        for action, entries in sorted(d.changes.items()):
            if action != "N":
                for e in entries:
                    click.echo(f"  {action} {d.key.get(action, action)[:28]:28} {e.code:6} {e.title}")
        return
    click.echo(f"{system} {from_release} -> {to_release}: " + ", ".join(f"{k} {v:,}" for k, v in d.counts.items()))
    for label, entries in (("added", d.added), ("deleted", d.deleted)):
        for e in entries:
            click.echo(f"  {label:8} {e.code:10} {e.title}")
    for label, revs in (("retitled", d.title_revised), ("billable", d.billable_changed)):
        for r in revs:
            click.echo(f"  {label:8} {r.code:10} {r.before} -> {r.after}")


@main.command()
@click.argument("code")
@click.option("--system", type=SYSTEM_CHOICE)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history(ctx: click.Context, code: str, system: str | None, as_json: bool) -> None:
    """Every installed release a code appears in, with its title in each and what changed."""
    book = _book(ctx)
    system_, steps = book.history(code, system)
    if as_json:
        _emit_json({"system": system_, "code": code, "releases": [s.as_dict() for s in steps]})
        return
    if not steps:
        _fail(f"{code!r}: in no installed {system_} release")
    for s in steps:
        state = (s.title or "") if s.present else "(not in this release)"
        click.echo(f"{s.release:10} {s.effective_from.isoformat()}  {state}")
        for c in s.changes:
            click.echo(f"{'':22}{c}")


@main.command("map")
@click.argument("code")
@click.option("--to", "to", type=click.Choice(["icd10cm", "icd10pcs", "icd9cm"]))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def map_(ctx: click.Context, code: str, to: str | None, as_json: bool) -> None:
    """ICD-9-CM <-> ICD-10-CM/PCS through the CMS/CDC GEMs (forward and backward)."""
    res = _book(ctx).map(code, to)
    if as_json:
        _emit_json(res.as_dict())
        return
    if not res.found:
        _fail(f"{code!r}: no GEM entry" + (f" ({res.note})" if res.note else ""))
    from .mapping import render

    for line in render(res):
        click.echo(line)


@main.command("check", context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
              add_help_option=False)
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check claims (JSON, CSV, FHIR R4 Claim, CMS RIF) for code errors; exit 1 if any error."""
    if "--batch" in ctx.args:   # before Polars is imported: the allocator keeps freed pages for the next chunk
        from .allocator import for_batch

        for_batch()
    from .claims.cli import check_command

    check_command.main(ctx.args, prog_name="medcodes check", obj=ctx.obj, standalone_mode=False)


@main.command("group", context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
              add_help_option=False)
@click.pass_context
def group(ctx: click.Context) -> None:
    """MS-DRG grouping of inpatient claims (DRG, weight, CC/MCC of each secondary dx, what-if)."""
    from .claims.cli import group_command

    group_command.main(ctx.args, prog_name="medcodes group", obj=ctx.obj, standalone_mode=False)


if __name__ == "__main__":  # pragma: no cover
    main()
