-- Clarification and withdrawal (docs/legal-review.md, "Clarification"; docs/authority-api.md).

-- A case may wait for the authority's answer to a reviewer's question, or be withdrawn by it.
ALTER TABLE cases DROP CONSTRAINT cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check
    CHECK (status IN ('pending_review', 'needs_clarification', 'approved', 'rejected', 'withdrawn'));
-- While a question is open the deadline clock is paused: clock_paused_at is when it was asked, and the
-- answer moves the deadline by the time paused. `request` becomes the request as amended (amendments:
-- the authority's signed amendments, as signed, in order; `submitted` keeps the request as first signed).
-- review_round counts the amendments: votes of earlier rounds were on another request and no longer count.
ALTER TABLE cases
    ADD COLUMN clock_paused_at timestamptz,
    ADD COLUMN amendments      jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN review_round    int   NOT NULL DEFAULT 0;

ALTER TABLE reviews ADD COLUMN round int NOT NULL DEFAULT 0;
ALTER TABLE reviews DROP CONSTRAINT reviews_case_id_reviewer_key;
ALTER TABLE reviews ADD CONSTRAINT reviews_case_round_reviewer UNIQUE (case_id, round, reviewer);

-- Each question a reviewer asked, and the authority's answer.
CREATE TABLE clarifications (
    clarification_id uuid        PRIMARY KEY,
    case_id          uuid        NOT NULL REFERENCES cases,
    asked_by         text        NOT NULL,
    question         text        NOT NULL,
    asked_at         timestamptz NOT NULL,
    answer           text,
    answered_at      timestamptz
);
CREATE INDEX clarifications_of_case ON clarifications (case_id, asked_at);
-- At most one open question per case.
CREATE UNIQUE INDEX clarifications_open ON clarifications (case_id) WHERE answered_at IS NULL;
