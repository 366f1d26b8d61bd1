-- Per input partition, the next offset moderation has handled, written in the same transaction
-- as the events' effects. Faust's own committed offsets can run past events it skipped across a
-- rebalance; the agent checks each batch against this row and reads the skipped events back
-- (services/moderation/continuity.py).
CREATE TABLE stream_progress (
    topic       text    NOT NULL,
    partition   int     NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (topic, partition)
);
