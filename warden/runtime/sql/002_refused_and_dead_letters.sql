-- Outbox rows the broker refused for good (too large, invalid): set aside with the error so that
-- everything behind them flows; kept for an operator to fix and replay.
CREATE TABLE outbox_refused (
    id            bigint      PRIMARY KEY,
    topic         text        NOT NULL,
    key           bytea,
    value         bytea       NOT NULL,
    header_names  text[]      NOT NULL DEFAULT '{}',
    header_values bytea[]     NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    error         text        NOT NULL,
    refused_at    timestamptz NOT NULL DEFAULT now()
);

-- Dead letters too large to publish whole: the DLQ record carries a bounded prefix, the original is kept here.
CREATE TABLE dead_letters (
    topic         text        NOT NULL,
    partition     int         NOT NULL,
    "offset"      bigint      NOT NULL,
    key           bytea,
    value         bytea       NOT NULL,
    header_names  text[]      NOT NULL DEFAULT '{}',
    header_values bytea[]     NOT NULL DEFAULT '{}',
    reason        text        NOT NULL,
    dead_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);
