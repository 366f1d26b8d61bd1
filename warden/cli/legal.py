"""`warden audit verify`, `warden transparency`, `warden policy diff`: legal review's audit chain, quarterly
report, and what a candidate policy would change."""
from __future__ import annotations

import asyncio
import json
import os

import asyncpg
import click

from warden.cli.common import read_stack

database_option = click.option(
    "--database-url", "database_url", default=None, metavar="URL",
    help="PostgreSQL holding the legal_review schema (default: $DATABASE_URL or .warden/stack.json)")


def database_url_of(explicit: str | None) -> str:
    if explicit:
        return explicit
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    stack = read_stack()
    if stack and stack.get("database_url"):
        return stack["database_url"]
    raise click.ClickException(
        "no database to read: start the stack with `make run` (or `warden up`), "
        "or set DATABASE_URL, or pass --database-url")


async def _with_connection(url: str, work):
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise click.ClickException(f"cannot connect to the database ({type(exc).__name__})") from None
    try:
        return await work(conn)
    except asyncpg.UndefinedTableError:
        raise click.ClickException("no legal_review schema in this database: has legal review run?") from None
    finally:
        await conn.close()


@click.group()
def audit() -> None:
    """Legal review's hash-chained audit log."""


@audit.command("verify")
@database_option
def verify(database_url: str | None) -> None:
    """Check the whole audit chain; name the first broken entry (exit 1 when broken)."""
    from legal_review.audit import verify_chain

    count, broken = asyncio.run(_with_connection(database_url_of(database_url), verify_chain))
    if broken is None:
        click.echo(f"audit chain intact: {count} entries verified")
        return
    case = f" (case {broken.case_id})" if broken.case_id else ""
    click.echo(f"audit chain BROKEN at entry {broken.seq}{case}: {broken.problem}", err=True)
    raise SystemExit(1)


@click.command()
@click.option("--quarter", required=True, help="e.g. 2024Q3")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@database_option
def transparency(quarter: str, fmt: str, database_url: str | None) -> None:
    """Quarterly transparency report per country, from legal review's recorded decisions."""
    from legal_review.transparency import (
        INSTRUMENT_COLUMNS, build_report, quarter_bounds, report_csv, report_json, report_rows,
    )

    try:
        quarter_bounds(quarter)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--quarter") from None
    report = asyncio.run(_with_connection(database_url_of(database_url), lambda c: build_report(c, quarter)))
    if fmt == "json":
        click.echo(json.dumps(report_json(report), indent=2))
    elif fmt == "csv":
        click.echo(report_csv(report), nl=False)
    else:
        widths = [max(len(c), 7) for c in INSTRUMENT_COLUMNS]
        widths[1] = max(widths[1], len("preservation_request"))
        click.echo(f"Transparency report {report.quarter}")
        click.echo("  ".join(c.rjust(w) for c, w in zip(INSTRUMENT_COLUMNS, widths)))
        for row in report_rows(report):
            click.echo("  ".join(str(v).rjust(w) for v, w in zip(row, widths)))
        if not report.countries:
            click.echo("(no requests received in this quarter)")
        for note in report.notes:
            click.echo(f"note: {note}")


@click.group()
def policy() -> None:
    """Legal review's policy file."""


@policy.command("diff")
@click.argument("candidate", type=click.Path(exists=True, dir_okay=False))
@click.option("--cases", "which", type=click.Choice(["reference", "recorded"]), default="reference",
              show_default=True, help="the shipped reference set, or the cases recorded in the database")
@click.option("--limit", default=10_000, show_default=True, help="recorded cases: the newest this many")
@database_option
def policy_diff(candidate: str, which: str, limit: int, database_url: str | None) -> None:
    """Which machine decisions would change under CANDIDATE (a policy.yaml), and by which rules."""
    from pathlib import Path

    from legal_review.policy import current_policy, parse_policy
    from legal_review.rules import check_policy
    from legal_review.whatif import compare, load_reference_cases, recorded_facts, reference_facts, render

    try:
        new = parse_policy(Path(candidate).read_text())
        check_policy(new)
    except ValueError as exc:
        raise click.ClickException(f"{candidate}: not a valid policy ({exc})") from None
    current = current_policy()
    if which == "reference":
        cases = [(c.id, reference_facts(c)) for c in load_reference_cases()]
    else:
        cases = asyncio.run(_with_connection(database_url_of(database_url), lambda c: recorded_facts(c, limit)))
    changes = [change for name, facts in cases if (change := compare(name, facts, current, new)) is not None]
    click.echo(render(changes, len(cases), current, new))
