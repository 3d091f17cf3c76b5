"""``medcodes search QUERY``: the click command (the lead registers it on the main CLI)."""

from __future__ import annotations

import json

import click

from .api import ALL_SYSTEMS, search


@click.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("--system", "systems", multiple=True, type=click.Choice(ALL_SYSTEMS),
              help="Search only this code system (repeatable).")
@click.option("--billable", is_flag=True, default=False, help="Only codes valid on a claim.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--date", "date", default=None, help="Date of service (YYYY-MM-DD): search the releases in effect then.")
@click.option("--chapter", default=None, help="ICD-10-CM chapter, PCS section or HCPCS letter.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--home", default=None, help="Store home (default MEDCODES_HOME or the user data dir).")
def search_command(query: tuple[str, ...], systems: tuple[str, ...], billable: bool, limit: int, offset: int,
                   date: str | None, chapter: str | None, as_json: bool, home: str | None) -> None:
    """Ranked search over titles, inclusion terms, the official indexes and code prefixes."""
    from ..codebook import Codebook

    cb = Codebook.open(home=home)
    try:
        result = search(cb, " ".join(query), systems=list(systems) or None, billable=True if billable else None,
                        limit=limit, offset=offset, date=date, chapter=chapter)
    finally:
        cb.close()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    if result.error:
        click.echo(f"no results: {result.error}", err=True)
        return
    for hit in result.hits:
        flag = "" if hit.billable is None else (" " if hit.billable else "*")
        click.echo(f"{hit.system:9} {hit.code:9}{flag} {hit.score:5.3f}  {hit.title}")
        click.echo(f"{'':21}matched: {'; '.join(hit.matched)}")
    more = " (more: use --offset)" if result.truncated else ""
    click.echo(f"{len(result.hits)} of {result.total} shown{more}; * = header, not billable")
