-- Inbox: one row per processed CloudEvent (source + id), so redelivered events are dropped.
CREATE TABLE inbox (
    source       text        NOT NULL,
    event_id     text        NOT NULL,
    topic        text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);

-- Outbox: events written in the same transaction as the state they describe,
-- relayed to Kafka in id order and deleted once the broker acknowledged them.
CREATE TABLE outbox (
    id            bigserial   PRIMARY KEY,
    topic         text        NOT NULL,
    key           bytea,
    value         bytea       NOT NULL,
    header_names  text[]      NOT NULL DEFAULT '{}',
    header_values bytea[]     NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
