"""`warden dlq list|show|replay TOPIC`: a topic's dead letters, and putting them back once the cause is fixed.

Letters are read from `<TOPIC>.dlq` from its beginning (no consumer group). A replay publishes each
letter's original (key, value and headers, without the `dlq.*` ones) on the partition of the
source topic it was read from, with `replay.*` headers saying who replayed which letter when
(warden/runtime/dead_letters.py). A letter published truncated (`dlq.truncated`) is replayed from
the original its service kept in its `dead_letters` table, read with --database-url. The service
handles a replayed event once: its inbox lets a replay take back the claim of an event it
dead-lettered, once, and drops every other copy (warden/runtime/inbox.py).
"""
from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg
import click
from aiokafka.structs import ConsumerRecord

from warden.cli.common import SINCE, bootstrap_option, bootstrap_servers, read_records, run
from warden.cli.legal import database_option, database_url_of
from warden.cli.redaction import redact, redact_key
from warden.contract.envelope import EventRejected, decode
from warden.contract.topics import DLQ_SUFFIX, TOPICS
from warden.runtime import kafka
from warden.runtime.dead_letters import replay_headers
from warden.runtime.roles import SERVICE_SCHEMAS


@dataclass(frozen=True)
class Letter:
    record: ConsumerRecord  # the record on the DLQ

    def header(self, name: str) -> str | None:
        found = None
        for key, value in self.record.headers or ():
            if key == name:
                found = (value or b"").decode(errors="replace")
        return found

    @property
    def position(self) -> str:
        return f"{self.record.partition}:{self.record.offset}"

    @property
    def at(self) -> str:
        return datetime.fromtimestamp(self.record.timestamp / 1000, timezone.utc).isoformat(timespec="seconds")

    @property
    def source(self) -> tuple[str, int | None, int | None]:
        """The topic, partition and offset the original was read from. The topic is the DLQ's own, whatever
        `dlq.topic` says: a replay never publishes anywhere else."""
        return (self.record.topic.removesuffix(DLQ_SUFFIX), _int(self.header("dlq.partition")),
                _int(self.header("dlq.offset")))

    def summary(self) -> dict:
        topic, partition, offset = self.source
        return {"dlq_topic": self.record.topic, "dlq_partition": self.record.partition,
                "dlq_offset": self.record.offset, "at": self.at, "service": self.header("dlq.service"),
                "reason": self.header("dlq.reason"), "error": self.header("dlq.error"), "topic": topic,
                "partition": partition, "offset": offset, "truncated": self.header("dlq.truncated"),
                "replayed_by": self.header("replay.by")}


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def dlq_of(name: str) -> str:
    """TOPIC may name the source topic or its DLQ."""
    source = name.removesuffix(DLQ_SUFFIX)
    if source not in TOPICS or not TOPICS[source].consumers:
        with_letters = ", ".join(t.name for t in TOPICS.values() if t.consumers)
        raise click.BadParameter(f"{name} has no dead letters; topics that do: {with_letters}", param_hint="TOPIC")
    return TOPICS[source].dlq


async def read_letters(bootstrap: str, topic: str, *, reason: str | None, since: datetime | None,
                       letter: tuple[int, int] | None) -> list[Letter]:
    since_ms = since.timestamp() * 1000 if since else None

    def wanted(record: ConsumerRecord) -> bool:
        return ((letter is None or (record.partition, record.offset) == letter)
                and (since_ms is None or record.timestamp >= since_ms))

    letters = [Letter(r) for r in await read_records(bootstrap, dlq_of(topic), keep=wanted)]
    return [entry for entry in letters if reason is None or entry.header("dlq.reason") == reason]


def _letter_position(ctx, param, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    partition, _, offset = value.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise click.BadParameter("give PARTITION:OFFSET of the letter on the DLQ, as `warden dlq list` prints it")
    return int(partition), int(offset)


def selection(command):
    """The options that choose letters, shared by list, show and replay."""
    for option in reversed([
        click.argument("topic"),
        click.option("--reason", default=None, metavar="R", help="only letters dead-lettered for this reason "
                     "(the dlq.reason header: unknown_authority, bad_signature, undecodable, ...)"),
        click.option("--since", default=None, type=SINCE, metavar="T",
                     help="only letters dead-lettered since T: a time (2026-12-01T08:00Z) or an age (30m, 2h, 7d)"),
        click.option("--letter", "letter", default=None, callback=_letter_position, metavar="PARTITION:OFFSET",
                     help="only this letter of the DLQ"),
        bootstrap_option,
    ]):
        command = option(command)
    return command


@click.group()
def dlq() -> None:
    """Dead letters: list them, show them, replay them once their cause is fixed."""


@dlq.command("list")
@selection
@click.option("--json", "as_json", is_flag=True, help="one JSON object a line")
def list_letters(topic: str, reason: str | None, since: datetime | None, letter, bootstrap: str | None,
                 as_json: bool) -> None:
    """One line per dead letter of TOPIC: where, when, which service, why."""
    dlq_of(topic)
    letters = run(read_letters(bootstrap_servers(bootstrap), topic, reason=reason, since=since, letter=letter))
    for entry in letters:
        summary = entry.summary()
        if as_json:
            click.echo(json.dumps(summary))
            continue
        replayed = "  (a replay)" if summary["replayed_by"] else ""
        click.echo(f"{entry.position:>8}  {summary['at']}  {summary['service'] or '?':<12}  "
                   f"{summary['reason'] or '?':<22}  from {summary['topic']} {summary['partition']}:"
                   f"{summary['offset']}  {summary['error'] or ''}{replayed}")
    if not as_json:
        click.echo(f"{len(letters)} dead letter(s) on {dlq_of(topic)}", err=True)


@dlq.command("show")
@selection
@click.option("--unredacted", is_flag=True, help="print personal data (IP addresses, phone numbers, account ids)")
def show(topic: str, reason: str | None, since: datetime | None, letter, bootstrap: str | None,
         unredacted: bool) -> None:
    """Each dead letter of TOPIC in full: its dlq headers and the decoded original, personal data redacted."""
    dlq_of(topic)
    letters = run(read_letters(bootstrap_servers(bootstrap), topic, reason=reason, since=since, letter=letter))
    for entry in letters:
        click.echo(json.dumps(describe(entry, unredacted), indent=2, ensure_ascii=False))
    click.echo(f"{len(letters)} dead letter(s) on {dlq_of(topic)}", err=True)


def describe(entry: Letter, unredacted: bool) -> dict:
    record = entry.record
    summary = entry.summary()
    summary["key"] = (record.key.decode(errors="replace") if unredacted and record.key is not None
                      else redact_key(record.topic, record.key))
    summary["headers"] = {k: (v or b"").decode(errors="replace") for k, v in record.headers or ()
                          if not k.startswith("dlq.")}
    summary["event"] = decoded_event(record.value, record.headers, unredacted)
    return summary


def decoded_event(value: bytes | None, headers, unredacted: bool) -> dict:
    """The CloudEvent a record holds (data redacted unless asked), or why it does not decode."""
    try:
        envelope = decode(value, headers, allow_binary=True)
    except EventRejected as exc:
        shown = {"undecodable": exc.reason, "error": exc.error, "bytes": len(value or b"")}
        if unredacted:
            shown["value"] = (value or b"")[:4096].decode(errors="replace")
        return shown
    event = {"id": envelope.id, "source": envelope.source, "type": envelope.type,
             "time": envelope.time.isoformat(), "data": envelope.data if unredacted else redact(envelope.data)}
    if envelope.schema_id is not None:
        event["schema_id"] = envelope.schema_id
    return event


@dlq.command("replay")
@selection
@click.option("--dry-run", is_flag=True, help="say what would be replayed, publish nothing")
@click.option("--by", "by", default=None, metavar="NAME",
              help="who replays, recorded in replay.by (default: $WARDEN_OPERATOR, else the login name)")
@database_option
def replay(topic: str, reason: str | None, since: datetime | None, letter, bootstrap: str | None, dry_run: bool,
           by: str | None, database_url: str | None) -> None:
    """Publish the originals of TOPIC's dead letters on TOPIC again, once their cause is fixed.

    Each service handles a replayed event once, however often it is replayed; a service that had
    handled the event drops the replay. Narrow the selection with --reason, --since or --letter,
    and look first with --dry-run.
    """
    dlq_of(topic)
    servers = bootstrap_servers(bootstrap)
    letters = run(read_letters(servers, topic, reason=reason, since=since, letter=letter))
    operator = by or os.environ.get("WARDEN_OPERATOR") or getpass.getuser()
    if dry_run:
        for entry in letters:
            click.echo(f"would replay {entry.record.topic} {entry.position} -> {entry.source[0]} "
                       f"(reason {entry.header('dlq.reason')})")
        click.echo(f"{len(letters)} dead letter(s) would be replayed", err=True)
        return
    originals = run(_kept_originals(letters, database_url))

    def published(entry: Letter, partition: int, offset: int) -> None:  # said at once: a failure may follow
        click.echo(f"replayed {entry.record.topic} {entry.position} -> {entry.source[0]} {partition}:{offset} "
                   f"(reason {entry.header('dlq.reason')})")

    run(_republish(servers, letters, originals, operator, published))
    click.echo(f"{len(letters)} dead letter(s) replayed by {operator}", err=True)


Original = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


async def _kept_originals(letters: list[Letter], database_url: str | None) -> dict[int, Original]:
    """The whole original of each letter published truncated, from its service's `dead_letters` table."""
    truncated = [entry for entry in letters if entry.header("dlq.truncated")]
    if not truncated:
        return {}
    try:
        conn = await asyncpg.connect(database_url_of(database_url), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise click.ClickException(
            f"{len(truncated)} letter(s) were published truncated and are replayed from the database, "
            f"which cannot be reached ({type(exc).__name__}): pass --database-url") from None
    originals: dict[int, Original] = {}
    try:
        for entry in truncated:
            service = entry.header("dlq.service") or ""
            topic, partition, offset = entry.source
            if service not in SERVICE_SCHEMAS or service not in TOPICS[topic].consumers:
                raise click.ClickException(f"letter {entry.position} names {service!r}, which does not consume "
                                           f"{topic}: replay the others with --reason/--letter")
            try:
                row = await conn.fetchrow(
                    f'SELECT key, value, header_names, header_values FROM "{SERVICE_SCHEMAS[service]}".dead_letters'
                    ' WHERE topic = $1 AND partition = $2 AND "offset" = $3', topic, partition, offset)
            except asyncpg.PostgresError as exc:
                raise click.ClickException(
                    f"cannot read {service}'s dead_letters table ({type(exc).__name__}): pass the --database-url "
                    f"of {service}'s database, as a role that may read it") from None
            if row is None:
                raise click.ClickException(
                    f"letter {entry.position} was published truncated and {service} kept no original of "
                    f"{topic} {partition}:{offset}: replay the others with --reason/--letter")
            originals[id(entry)] = (row["key"], row["value"], list(zip(row["header_names"], row["header_values"])))
    finally:
        await conn.close()
    return originals


async def _republish(bootstrap: str, letters: list[Letter], originals: dict[int, Original], operator: str,
                     published) -> None:
    # As large as the largest original (the broker took it once), beyond the services' 2 MiB if need be.
    largest = max((len(value or b"") for _, value, _ in originals.values()), default=0)
    producer = kafka.producer(bootstrap, max_request_size=max(2 * 1024 * 1024, largest + 64 * 1024))
    try:
        await kafka.start_with_retry(producer, "cli", attempts=10)
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for entry in letters:
            record = entry.record
            key, value, headers = originals.get(id(entry), (record.key, record.value, list(record.headers or ())))
            topic, partition, _ = entry.source
            if partition not in await producer.partitions_for(topic):  # the topic has fewer partitions now
                partition = None
            metadata = await producer.send_and_wait(
                topic, value, key=key, partition=partition,
                headers=replay_headers(headers, dlq_topic=record.topic, dlq_partition=record.partition,
                                       dlq_offset=record.offset, by=operator, at=at))
            published(entry, metadata.partition, metadata.offset)
    finally:
        await producer.stop()
