-- One row per accepted request: dedupes (authority_id, request_id) and detects changed replays.
CREATE TABLE submissions (
    authority_id text        NOT NULL,
    request_id   text        NOT NULL,
    fingerprint  char(64)    NOT NULL,
    case_id      uuid        NOT NULL UNIQUE,
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (authority_id, request_id)
);
