-- What the platform says each public channel, group or bot is and who owns it (platform.content):
-- the only facts automated matching and ownership use.
CREATE TABLE platform_content (
    content_id        text        PRIMARY KEY,
    kind              text        NOT NULL,
    owner_account_id  text,
    title             text,
    text              text,
    language          text,
    public_in_search  boolean     NOT NULL,
    media             jsonb       NOT NULL DEFAULT '[]',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,   -- the platform's; an older update never overwrites a newer one
    removed_at        timestamptz,
    received_at       timestamptz NOT NULL DEFAULT now()
);

-- Owners used to come from reports (a reporter's claim); ownership is platform_content's now.
ALTER TABLE content DROP COLUMN owner_account_id;
ALTER TABLE content ADD COLUMN violation_account_id text;     -- who the confirmed violation went to
ALTER TABLE content ADD COLUMN violation_decision_id uuid;    -- the decision that confirmed it

-- A report's title, text and owner: the reporter's claim, kept and shown to moderators, never matched.
ALTER TABLE reports ADD COLUMN claimed_kind text;
ALTER TABLE reports ADD COLUMN claimed_title text;
ALTER TABLE reports ADD COLUMN claimed_text text;
ALTER TABLE reports ADD COLUMN claimed_owner text;
ALTER TABLE reports ADD COLUMN comment text;
-- Whether the reporter had established trust when reporting (brigading: fresh accounts do not delist).
ALTER TABLE reports ADD COLUMN established boolean NOT NULL DEFAULT false;
-- Reports of content the platform had not described yet wait; null once scored or handed to humans.
ALTER TABLE reports ADD COLUMN pending_since timestamptz;
CREATE INDEX reports_pending ON reports (pending_since) WHERE pending_since IS NOT NULL;
CREATE INDEX reports_reporter_reported ON reports (reporter_id, reported_at);

-- Reporters start with a low prior (config) and earn weight; first_seen_at for new-account bursts.
ALTER TABLE reporters ADD COLUMN first_seen_at timestamptz NOT NULL DEFAULT now();

-- The queue ranks by severity: `urgent` is a high-severity match, then trusted flaggers, then score.
ALTER TABLE queue ADD COLUMN coordinated boolean NOT NULL DEFAULT false;  -- a burst of unproven reporters
ALTER TABLE queue ADD COLUMN source text;   -- notice | trusted_flagger | proactive | unknown_content

-- Statements of reasons carry the Transparency Database's fields.
ALTER TABLE decisions ADD COLUMN decision_visibility text[] NOT NULL DEFAULT '{}';
ALTER TABLE decisions ADD COLUMN ground_explanation text;
ALTER TABLE decisions ADD COLUMN content_type text[] NOT NULL DEFAULT '{}';
ALTER TABLE decisions ADD COLUMN source_type text;
ALTER TABLE decisions ADD COLUMN content_date date;
ALTER TABLE decisions ADD COLUMN territorial_scope text[] NOT NULL DEFAULT '{}';

-- Appeals: the appellant's statement, the time the client claimed, submitted_at = when Warden received it.
ALTER TABLE appeals ADD COLUMN statement text;
ALTER TABLE appeals ADD COLUMN claimed_submitted_at timestamptz;

-- Bank matches are on the platform's facts now: found when content arrives or changes, replaced when it changes.
DELETE FROM bank_matches;
ALTER TABLE bank_matches ADD COLUMN category text NOT NULL;
ALTER TABLE bank_matches ADD COLUMN high_severity boolean NOT NULL;
