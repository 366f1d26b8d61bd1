"""Dead letters: what goes to `<topic>.dlq` for an event that cannot be handled (DESIGN.md).

The original bytes, unchanged, with the reason in `dlq.*` headers, written to the outbox in
the transaction that claims the event. A record too large to publish again goes as a bounded
prefix, and its original is kept in the service's `dead_letters` table for replay.

A replay (`warden dlq replay`, warden/cli/dlq.py) puts a letter's original back on its source
topic with `replay.*` headers: who replayed it, when, and which dead letter it was. The event's
inbox row says it was dead-lettered (`mark_dead_lettered`); a replayed copy may take that claim
back once (inbox.py), so the service that dead-lettered it handles it, and every other copy, or a
service that had handled it, drops it as a duplicate.
"""
from __future__ import annotations

import asyncpg
from aiokafka.structs import ConsumerRecord

from warden.contract.envelope import EventRejected
from warden.contract.topics import TOPICS
from warden.runtime import tracing
from warden.runtime.outbox import OutboxRow

# A dead letter must fit the producer's limit whatever arrived (warden/runtime/kafka.py allows 2 MiB):
# past these sizes it carries a prefix, says so, and the original is kept in `dead_letters`.
DLQ_VALUE_LIMIT = 256 * 1024
DLQ_KEY_LIMIT = 1024
DLQ_HEADERS_LIMIT = 16 * 1024

# Headers on a replayed record: `replay.dlq_topic`/`replay.dlq_partition`/`replay.dlq_offset` name the
# dead letter it came from; `replay.by` and `replay.at` (RFC 3339 UTC) who replayed it and when.
REPLAY_PREFIX = "replay."
REPLAY_OFFSET = "replay.dlq_offset"


def is_replay(headers) -> bool:
    """The record is a dead letter's original put back by `warden dlq replay`."""
    return any(name == REPLAY_OFFSET for name, _ in headers or ())


def replay_headers(letter_headers, *, dlq_topic: str, dlq_partition: int, dlq_offset: int, by: str,
                   at: str) -> list[tuple[str, bytes]]:
    """The original's headers (a letter's own `dlq.*` and any earlier `replay.*` removed) and this replay's."""
    kept = [(k, v) for k, v in letter_headers or () if not k.startswith(("dlq.", REPLAY_PREFIX))]
    return kept + [
        ("replay.dlq_topic", dlq_topic.encode()),
        ("replay.dlq_partition", str(dlq_partition).encode()),
        (REPLAY_OFFSET, str(dlq_offset).encode()),
        ("replay.by", by.encode()[:200]),
        ("replay.at", at.encode()),
    ]


def oversized_parts(record: ConsumerRecord) -> list[str]:
    """The parts of a record too large to publish again as a dead letter: value, key, headers."""
    parts = []
    if len(record.value or b"") > DLQ_VALUE_LIMIT:
        parts.append("value")
    if record.key is not None and len(record.key) > DLQ_KEY_LIMIT:
        parts.append("key")
    if sum(len(k) + len(v or b"") for k, v in record.headers or () if not k.startswith("dlq.")) > DLQ_HEADERS_LIMIT:
        parts.append("headers")
    return parts


def dlq_row(service: str, record: ConsumerRecord, rejection: EventRejected) -> OutboxRow:
    """The original bytes, unchanged, with the reason in `dlq.*` headers (DESIGN.md); a record too large
    to publish again goes as a bounded prefix with `dlq.truncated` (the original: keep_dead_letter)."""
    value, key = record.value or b"", record.key
    headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq.")]
    truncated = oversized_parts(record)
    if "value" in truncated:
        value = value[:DLQ_VALUE_LIMIT]
    if "key" in truncated:
        key = key[:DLQ_KEY_LIMIT]
    if "headers" in truncated:
        headers = []
    if truncated:
        headers.append(("dlq.truncated", ",".join(truncated).encode()))
        headers.append(("dlq.original_bytes", str(len(record.value or b"")).encode()))
    headers += [
        ("dlq.reason", rejection.reason.encode()),
        ("dlq.error", rejection.error.encode()[:1000]),
        ("dlq.service", service.encode()),
        ("dlq.topic", record.topic.encode()),
        ("dlq.partition", str(record.partition).encode()),
        ("dlq.offset", str(record.offset).encode()),
    ]
    # The trace of the handling that refused it (tracing.py): its publish span joins the event's trace.
    return OutboxRow(TOPICS[record.topic].dlq, key, value, headers, trace=tracing.current_trace())


async def keep_dead_letter(conn: asyncpg.Connection, record: ConsumerRecord, reason: str) -> None:
    """The whole original of a dead letter published truncated, for replay (in the batch's transaction)."""
    headers = list(record.headers or ())
    await conn.execute(
        """INSERT INTO dead_letters (topic, partition, "offset", key, value, header_names, header_values, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
        record.topic, record.partition, record.offset, record.key, record.value or b"",
        [k for k, _ in headers], [v or b"" for _, v in headers], reason)


async def mark_dead_lettered(conn: asyncpg.Connection, inbox_key: tuple[str, str]) -> None:
    """Say in the event's inbox row that it was dead-lettered, so that a replay of its letter may claim it."""
    await conn.execute("UPDATE inbox SET dead_lettered = true WHERE source = $1 AND event_id = $2", *inbox_key)
