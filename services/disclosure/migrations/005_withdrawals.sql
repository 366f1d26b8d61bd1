-- The authorities' signed withdrawals (legal.requests.withdrawn), verified against disclosure's own
-- registry copy: no package is built for a withdrawn case, whenever its approval arrives.
CREATE TABLE withdrawals (
    case_id      text        PRIMARY KEY,
    request_id   text        NOT NULL,
    authority_id text        NOT NULL,
    withdrawn_at timestamptz NOT NULL,
    received_at  timestamptz NOT NULL
);
