-- Content items as moderation sees them: listed or delisted, and since when reports count.
CREATE TABLE content (
    content_id        text        PRIMARY KEY,
    kind              text        NOT NULL,
    owner_account_id  text,
    state             text        NOT NULL DEFAULT 'listed',   -- listed | delisted
    category          text,                                     -- the report reason behind the last action
    first_reported_at timestamptz NOT NULL,
    cleared_at        timestamptz,                              -- reports before this no longer count
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Every report, kept for trust, misuse and appeals; contribution 0 when the reporter is suspended.
CREATE TABLE reports (
    report_id     text        NOT NULL,
    reporter_id   text        NOT NULL,
    content_id    text        NOT NULL REFERENCES content,
    reason        text        NOT NULL,
    surface       text        NOT NULL,
    reported_at   timestamptz NOT NULL,
    contribution  double precision NOT NULL,
    trusted       boolean     NOT NULL DEFAULT false,
    suspended     boolean     NOT NULL DEFAULT false,
    outcome       text,                                          -- upheld | unfounded, once a human decided
    outcome_at    timestamptz,
    PRIMARY KEY (reporter_id, report_id)
);
CREATE INDEX reports_content ON reports (content_id, reported_at);
CREATE INDEX reports_reporter_outcome ON reports (reporter_id, outcome_at);

CREATE TABLE reporters (
    reporter_id     text        PRIMARY KEY,
    trust           double precision NOT NULL,
    warned_at       timestamptz,
    suspended_until timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- DSA Art. 23 actions against misuse, recorded.
CREATE TABLE misuse_actions (
    id          bigserial   PRIMARY KEY,
    reporter_id text        NOT NULL,
    step        text        NOT NULL,   -- warn | suspend
    unfounded   int         NOT NULL,
    total       int         NOT NULL,
    until       timestamptz,
    at          timestamptz NOT NULL DEFAULT now()
);

-- The human review queue: one open item per content.
CREATE TABLE queue (
    content_id  text        PRIMARY KEY REFERENCES content,
    priority    double precision NOT NULL,
    urgent      boolean     NOT NULL,
    trusted     boolean     NOT NULL,
    score       double precision NOT NULL,
    reason      text        NOT NULL,
    automated   text,                    -- the bank that matched, if any
    queued_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_order ON queue (priority DESC, queued_at);

-- Statements of reasons, as emitted (DSA Art. 17).
CREATE TABLE decisions (
    decision_id         uuid        PRIMARY KEY,
    content_id          text        NOT NULL REFERENCES content,
    action              text        NOT NULL,
    ground              text        NOT NULL,
    category            text        NOT NULL,
    automated_detection boolean     NOT NULL,
    automated_decision  text        NOT NULL,
    facts               text        NOT NULL,
    decided_by          text,                   -- moderator name, null when automated
    decided_at          timestamptz NOT NULL,
    appealable_until    timestamptz NOT NULL
);
CREATE INDEX decisions_content ON decisions (content_id, decided_at);

CREATE TABLE appeals (
    appeal_id     text        PRIMARY KEY,
    content_id    text        NOT NULL,
    account_id    text        NOT NULL,
    decision_id   uuid,
    submitted_at  timestamptz NOT NULL,
    status        text        NOT NULL,   -- open | refused | upheld | overturned
    reason        text,                   -- why refused
    decided_by    text,
    decided_at    timestamptz
);

ALTER TABLE content ADD COLUMN violation_confirmed_at timestamptz;  -- moderation.violations sent once per delisting
