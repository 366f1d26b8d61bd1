-- A moderator who opens a queued item holds it for a while (WARDEN_MODERATION_CLAIM_MINUTES): others see who
-- holds it and cannot decide it meanwhile. A claim goes with its queue item (decided, or taken off the queue).
CREATE TABLE claims (
    content_id  text        PRIMARY KEY REFERENCES queue ON DELETE CASCADE,
    moderator   text        NOT NULL,
    claimed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Escalated: a moderator handed the item to a senior colleague; it stays queued in its place, marked.
ALTER TABLE queue ADD COLUMN escalated_by text;
ALTER TABLE queue ADD COLUMN escalated_at timestamptz;
ALTER TABLE queue ADD COLUMN escalation_note text;

-- The console's queue is read by keyset: severity first (priority, then oldest), or oldest first.
DROP INDEX queue_order;
CREATE INDEX queue_severity ON queue (priority DESC, queued_at, content_id);
CREATE INDEX queue_oldest ON queue (queued_at, content_id);
