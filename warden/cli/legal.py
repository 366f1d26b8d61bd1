"""`warden audit verify`, `warden transparency`, `warden policy diff`: the audit chains, legal review's quarterly
report, and what a candidate policy would change."""
from __future__ import annotations

import asyncio
import json
import os

import asyncpg
import click

from warden.cli.common import KEYS_DIR, bootstrap_option, bootstrap_servers, read_all, read_stack, run

database_option = click.option(
    "--database-url", "database_url", default=None, metavar="URL",
    help="PostgreSQL holding the services' schemas (default: $DATABASE_URL or .warden/stack.json)")


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
    except asyncpg.UndefinedTableError as exc:
        raise click.ClickException(f"a table is missing in this database ({exc}): have the services run?") from None
    finally:
        await conn.close()


@click.group()
def audit() -> None:
    """The signed, hash-chained audit logs of legal review and disclosure."""


CHAINS = {"legal-review": "legal_review", "disclosure": "disclosure"}


@audit.command("verify")
@database_option
@bootstrap_option
@click.option("--service", "services", type=click.Choice(list(CHAINS)), multiple=True,
              help="Check only this service's chain (repeatable; default: every chain in the database)")
@click.option("--public-keys", default=None, metavar="KEYS",
              help="Audit public keys, base64, comma-separated (default: $WARDEN_AUDIT_PUBLIC_KEYS, "
                   "else the development key of .warden/keys/audit.json)")
@click.option("--chain-id", "pinned", multiple=True, metavar="SERVICE=ID",
              help="The chain id this deployment recorded for SERVICE (printed by verify): another one "
                   "in the database means the chain was replaced (repeatable)")
def verify(database_url: str | None, bootstrap: str | None, services: tuple[str, ...],
           public_keys: str | None, pinned: tuple[str, ...]) -> None:
    """Check each audit chain against its latest checkpoint on legal.audit.checkpoints.

    Every entry must be chained to the one before and signed by a configured audit key, and the
    chain must reach the latest genuine checkpoint's entry with its head hash. Names the first break
    (exit 1): entries removed or altered, a truncated or rewritten chain, a forged checkpoint.
    """
    from warden import audit as chains

    keys = _audit_public_keys(public_keys)
    expected = dict(p.split("=", 1) for p in pinned if "=" in p)
    if len(expected) != len(pinned) or set(expected) - set(CHAINS):
        raise click.BadParameter(f"give SERVICE=ID, SERVICE one of {', '.join(CHAINS)}", param_hint="--chain-id")
    checkpoints = chains.parse_checkpoints(run(read_all(bootstrap_servers(bootstrap), chains.CHECKPOINT_TOPIC)))

    async def check_all(conn):
        present = [s for s in CHAINS
                   if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{CHAINS[s]}.audit_chain")]
        missing = [s for s in services if s not in present]
        if missing or not present:
            raise click.ClickException(f"no audit chain of {', '.join(missing or CHAINS)} in this database: "
                                       "has the service run (with its migrations)?")
        return [await _check_chain(conn, s, keys, checkpoints, expected.get(s)) for s in (services or present)]

    results = asyncio.run(_with_connection(database_url_of(database_url), check_all))
    failed = False
    for service, lines in results:
        for ok, line in lines:
            click.echo(f"{service}: {line}", err=not ok)
            failed = failed or not ok
    if failed:
        raise SystemExit(1)


async def _check_chain(conn, service: str, keys: dict[str, str], checkpoints,
                       expected_chain: str | None) -> tuple[str, list[tuple[bool, str]]]:
    from warden import audit as chains

    schema = CHAINS[service]
    chain_id = await chains.chain_id_of(conn, schema)
    if chain_id is None:
        return service, [(False, f"audit chain BROKEN: {schema}.audit_chain has no row (the chain's id was deleted)")]
    if expected_chain is not None and chain_id != expected_chain:
        return service, [(False, f"audit chain BROKEN: the database holds chain {chain_id}, not {expected_chain}: "
                                 "the chain was replaced")]
    anchor = chains.anchor_of(checkpoints, service, chain_id, keys)
    lines = [(False, f"audit chain BROKEN: forged checkpoint on {chains.CHECKPOINT_TOPIC} (claims entry {cp.seq}, "
                     f"{cp.at.isoformat(timespec='seconds')}): {problem}") for cp, problem in anchor.forged]
    walk = chains.ChainWalk(service, chain_id, keys, anchor.latest)
    count, broken = await chains.verify_chain(conn, schema, walk)
    if broken is not None:
        case = f" (case {broken.case_id})" if broken.case_id else ""
        lines.append((False, f"audit chain BROKEN at entry {broken.seq}{case}: {broken.problem}"))
    elif anchor.latest is None and count:
        lines.append((False, f"audit chain NOT ANCHORED: {count} entries verified, but no genuine checkpoint of "
                             f"chain {chain_id} on {chains.CHECKPOINT_TOPIC}, so removed entries at its end "
                             "could not be seen"))
    elif anchor.latest is None and anchor.other_chains:
        lines.append((False, f"audit chain BROKEN: chain {chain_id} is empty and was never checkpointed, while "
                             f"{service} published checkpoints of chain {', '.join(anchor.other_chains[:3])}: "
                             "the chain was replaced"))
    else:
        cp = anchor.latest
        upto = f", up to the checkpoint of entry {cp.seq} ({cp.at.isoformat(timespec='seconds')})" if cp else ""
        lines.append((True, f"audit chain intact: {count} entries verified{upto}; chain {chain_id}"))
    return service, lines


def _audit_public_keys(explicit: str | None) -> dict[str, str]:
    from warden.keys import public_keys, read_key_file

    configured = explicit or os.environ.get("WARDEN_AUDIT_PUBLIC_KEYS", "")
    if not configured.strip() and (KEYS_DIR / "audit.json").exists():
        configured = read_key_file(KEYS_DIR / "audit.json")["public_key"]
    try:
        keys = public_keys(configured)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--public-keys") from None
    if not keys:
        raise click.ClickException("no audit public key to verify with: pass --public-keys or set "
                                   "WARDEN_AUDIT_PUBLIC_KEYS (docs/deployment.md, 'Audit key')")
    return keys


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
