-- One row per received request: the machine's assessment and the case's current state.
CREATE TABLE cases (
    case_id             uuid        PRIMARY KEY,
    request_id          text        NOT NULL,
    authority_id        text        NOT NULL,
    country             char(2),                 -- the authority's, at receipt; null if unknown
    received_at         timestamptz NOT NULL,
    deadline            timestamptz NOT NULL,
    emergency           boolean     NOT NULL,
    kind                text        NOT NULL CHECK (kind IN ('disclosure', 'preservation')),
    status              text        NOT NULL CHECK (status IN ('pending_review', 'approved', 'rejected')),
    flags               text[]      NOT NULL DEFAULT '{}',
    request             jsonb       NOT NULL,    -- the verified request as received
    assessment          jsonb       NOT NULL,    -- rule results as the machine saw them
    suspect_key         char(64)    NOT NULL,    -- sha256 of the suspect identifiers (counting users)
    suspect_account_id  text,                    -- to show confirmed violations to reviewers
    granted_categories  text[]      NOT NULL,
    period_start        timestamptz,
    period_end          timestamptz,
    hold_until          timestamptz,
    extensions          int         NOT NULL DEFAULT 0,  -- times this hold was extended
    approvals_required  int         NOT NULL,
    supervisor_required boolean     NOT NULL,
    confirmation_due    timestamptz,             -- non-judicial emergency: confirming order due
    confirmed_by        uuid,                    -- the case of the confirming judicial order
    policy_version      text        NOT NULL,
    decided_at          timestamptz,
    decided_by          text[]      NOT NULL DEFAULT '{}',
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (authority_id, request_id)
);
CREATE INDEX cases_status_deadline ON cases (status, deadline);
CREATE INDEX cases_received_at ON cases (received_at);
CREATE INDEX cases_request_id ON cases (request_id);

-- The review queue: open cases, emergencies first, then by deadline.
CREATE VIEW review_queue AS
    SELECT case_id, authority_id, country, emergency, flags, deadline, approvals_required, received_at
    FROM cases WHERE status = 'pending_review'
    ORDER BY emergency DESC, deadline;

-- Each human decision on a case (an approval may wait for a second reviewer).
CREATE TABLE reviews (
    id                 bigserial   PRIMARY KEY,
    case_id            uuid        NOT NULL REFERENCES cases,
    reviewer           text        NOT NULL,
    role               text        NOT NULL,
    action             text        NOT NULL CHECK (action IN ('approve', 'reject', 'narrow')),
    reason             text        NOT NULL,
    data_categories    text[],
    period_start       timestamptz,
    period_end         timestamptz,
    at                 timestamptz NOT NULL,
    UNIQUE (case_id, reviewer)
);

-- Final decisions, as emitted on legal.requests.decided.
CREATE TABLE decisions (
    case_id     uuid        PRIMARY KEY REFERENCES cases,
    outcome     text        NOT NULL CHECK (outcome IN ('approved', 'rejected')),
    decided_by  text[]      NOT NULL,
    event       jsonb       NOT NULL,
    decided_at  timestamptz NOT NULL
);

-- Confirmed moderation violations per account (projection of moderation.violations).
CREATE TABLE violations (
    account_id  text        NOT NULL,
    content_id  text        NOT NULL,
    category    text        NOT NULL,
    decided_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, content_id, category)
);

-- Hash-chained audit log of every case state change: hash = sha256(canonical JSON of the
-- entry including prev_hash). Appends are serialised by an advisory lock.
CREATE TABLE audit_log (
    seq        bigint      PRIMARY KEY,
    case_id    uuid,
    action     text        NOT NULL,
    actor      text        NOT NULL,
    at         timestamptz NOT NULL,
    detail     jsonb       NOT NULL,
    prev_hash  char(64)    NOT NULL,
    hash       char(64)    NOT NULL UNIQUE
);
CREATE INDEX audit_log_case ON audit_log (case_id);
