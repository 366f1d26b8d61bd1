-- A reviewer may take a case for a while (WARDEN_REVIEW_CLAIM_MINUTES): others see who holds it and cannot
-- decide it or ask about it meanwhile. The holder's own vote or question ends the hold, as does releasing
-- it; an expired hold passes to whoever takes the case next. Coordination, not a case state: not audited.
CREATE TABLE case_claims (
    case_id     uuid        PRIMARY KEY REFERENCES cases,
    reviewer    text        NOT NULL,
    claimed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Reviewers' internal notes on a case: never sent to the authority nor put on any topic. The audit chain
-- records that a note was added, by whom, and the sha256 of its text (case.note_added), not the text.
CREATE TABLE case_notes (
    note_id  uuid        PRIMARY KEY,
    case_id  uuid        NOT NULL REFERENCES cases,
    author   text        NOT NULL,
    note     text        NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX case_notes_of_case ON case_notes (case_id, at);
