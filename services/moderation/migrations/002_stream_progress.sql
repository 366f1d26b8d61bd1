-- Per input partition, the next offset moderation had handled, written in the same transaction
-- as the events' effects (dropped by 003: the shared runtime's inbox and offsets do this job).
CREATE TABLE stream_progress (
    topic       text    NOT NULL,
    partition   int     NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (topic, partition)
);
