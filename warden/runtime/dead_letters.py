"""Dead letters: what goes to `<topic>.dlq` for an event that cannot be handled (DESIGN.md).

The original bytes, unchanged, with the reason in `dlq.*` headers, written to the outbox in
the transaction that claims the event. A record too large to publish again goes as a bounded
prefix, and its original is kept in the service's `dead_letters` table for replay.
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
