"""`warden events tail TOPIC`: a topic's latest events, decoded, personal data redacted unless asked."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import click
from aiokafka.structs import ConsumerRecord

from warden.cli.common import bootstrap_option, bootstrap_servers, fetch_to_end, run, topic_partitions
from warden.cli.dlq import decoded_event
from warden.cli.redaction import redact_key
from warden.contract.topics import all_topic_names
from warden.runtime import kafka


@click.group()
def events() -> None:
    """Read the events on a topic."""


@events.command("tail")
@click.argument("topic")
@click.option("-n", "--lines", "count", default=10, show_default=True, type=click.IntRange(0),
              help="how many of the latest events to print first")
@click.option("-f", "--follow", is_flag=True, help="keep printing events as they arrive (Ctrl-C stops)")
@click.option("--unredacted", is_flag=True, help="print personal data (IP addresses, phone numbers, account ids)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object a line")
@bootstrap_option
def tail(topic: str, count: int, follow: bool, unredacted: bool, as_json: bool, bootstrap: str | None) -> None:
    """Print the latest events of TOPIC, decoded: time, type, id, key and data.

    Account ids, usernames, phone numbers and IP addresses are redacted, in fields and in free
    text, unless --unredacted is given.
    """
    if topic not in all_topic_names():
        raise click.BadParameter(f"{topic} is not a Warden topic; `warden topics plan` lists them", param_hint="TOPIC")

    def show(record: ConsumerRecord) -> None:
        click.echo(render(record, unredacted, as_json))

    try:
        run(_tail(bootstrap_servers(bootstrap), topic, count, follow, show))
    except KeyboardInterrupt:
        pass


def render(record: ConsumerRecord, unredacted: bool, as_json: bool) -> str:
    key = record.key.decode(errors="replace") if unredacted and record.key is not None \
        else redact_key(record.topic, record.key)
    event = decoded_event(record.value, record.headers, unredacted)
    at = datetime.fromtimestamp(record.timestamp / 1000, timezone.utc).isoformat(timespec="milliseconds")
    if as_json:
        return json.dumps({"topic": record.topic, "partition": record.partition, "offset": record.offset,
                           "timestamp": at, "key": key, "event": event}, ensure_ascii=False)
    if "undecodable" in event:
        return f"{at}  {record.partition}:{record.offset}  undecodable ({event['undecodable']}: {event['error']})"
    framed = f"  schema_id={event['schema_id']}" if "schema_id" in event else ""
    return (f"{at}  {record.partition}:{record.offset}  {event['type']}  id={event['id']}  key={key}{framed}\n"
            f"    {json.dumps(event['data'], ensure_ascii=False, sort_keys=True)}")


async def _tail(bootstrap: str, topic: str, count: int, follow: bool, show) -> None:
    consumer = kafka.consumer(bootstrap, None)
    try:
        await kafka.start_with_retry(consumer, "cli", attempts=10)
        partitions = await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:  # the last `count` of each partition hold the last `count` of the topic
            consumer.seek(tp, max(starts[tp], ends[tp] - count))
        latest = [r for batch in await fetch_to_end(consumer, partitions) for r in batch]
        latest.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
        for record in latest[-count:] if count else []:
            show(record)
        if not follow:
            return
        while True:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    show(record)
    except asyncio.CancelledError:
        pass
    finally:
        await consumer.stop()
