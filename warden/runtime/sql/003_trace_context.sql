-- The trace context (W3C traceparent and tracestate) that an outbox row's event carries, kept
-- beside it so that the relay's publish span joins the event's trace (warden/runtime/tracing.py);
-- NULL for an event derived from none. Rows set aside keep it too.
ALTER TABLE outbox ADD COLUMN traceparent text, ADD COLUMN tracestate text;
ALTER TABLE outbox_refused ADD COLUMN traceparent text, ADD COLUMN tracestate text;
