-- Clarification and withdrawal over the authority API (docs/authority-api.md).

-- A reviewer's question, as legal.requests.progress carries it with a needs_clarification status.
ALTER TABLE request_statuses ADD COLUMN clarification jsonb;

-- What an authority sent about a request over the API, once each: its answer to a question
-- (reference: the clarification id) and its withdrawal (reference: ''). A second sending answers 409.
CREATE TABLE authority_actions (
    authority_id text        NOT NULL,
    request_id   text        NOT NULL,
    action       text        NOT NULL CHECK (action IN ('answer', 'withdraw')),
    reference    text        NOT NULL,
    at           timestamptz NOT NULL,
    PRIMARY KEY (authority_id, request_id, action, reference)
);
