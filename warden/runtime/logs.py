"""JSON logs. Log records carry ids (event, case, topic/offset, trace), never personal data."""
from __future__ import annotations

import logging
import sys
import time
from datetime import datetime, timezone

from pythonjsonlogger.json import JsonFormatter

from warden.runtime import tracing

# Client libraries log connection chatter at INFO, and repeat the same error many
# times a second while the broker (or the trace collector) is away: warnings only, and each distinct
# message at most once per interval.
CLIENT_LOGGERS = ("aiokafka", "kafka", "asyncio", "uvicorn.access", "opentelemetry")


class RepeatFilter(logging.Filter):
    """Lets a client library's (logger, message template) through at most once per `interval_s`.

    Installed on the handler: filters on a parent logger do not see its children's records.
    """

    def __init__(self, interval_s: float = 10.0):
        super().__init__()
        self.interval_s = interval_s
        self.last_seen: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(CLIENT_LOGGERS):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self.last_seen.get(key, -self.interval_s) < self.interval_s:
            return False
        self.last_seen[key] = now
        return True


class UtcJsonFormatter(JsonFormatter):
    """`time` in UTC with its zone (RFC 3339, milliseconds), whatever the host's time zone."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")


def drop_terminal_colours(record: logging.LogRecord) -> bool:
    """uvicorn adds `color_message`, the message with ANSI escapes for a terminal: not for JSON logs."""
    record.__dict__.pop("color_message", None)
    return True


def name_trace_and_event(record: logging.LogRecord) -> bool:
    """`trace_id` and `event_id` of the event or request being handled (tracing.py), on every record
    logged meanwhile, unless the record names its own."""
    current = tracing.current()
    if current is not None:
        if current.trace is not None and "trace_id" not in record.__dict__:
            record.trace_id = current.trace.trace_id
        if current.event_id is not None and "event_id" not in record.__dict__:
            record.event_id = current.event_id
    return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(UtcJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        static_fields={"service": service},
    ))
    handler.addFilter(RepeatFilter())
    handler.addFilter(drop_terminal_colours)
    handler.addFilter(name_trace_and_event)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def raised_at(exc: BaseException) -> str:
    """Where an exception was raised, "file.py:line (function)": enough to find the bug, and never the
    exception's message, which may quote the data it failed on."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown"
    code = tb.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno} ({code.co_name})"
