-- Disclosure's audit chain (warden/audit.py): packages issued, holds placed, cases closed
-- without data, user notices emitted, retention purges. Each entry is hash-chained to the one
-- before and signed by the audit key, which is not in the database; appends are serialised by
-- an advisory lock. The chain's id is random, made here once; signatures and checkpoints bind it.
CREATE TABLE audit_log (
    seq        bigint      PRIMARY KEY,
    case_id    text,
    action     text        NOT NULL,
    actor      text        NOT NULL,
    at         timestamptz NOT NULL,
    detail     jsonb       NOT NULL,
    prev_hash  char(64)    NOT NULL,
    hash       char(64)    NOT NULL UNIQUE,
    key_id     text,
    signature  text
);
CREATE INDEX audit_log_case ON audit_log (case_id);

CREATE TABLE audit_chain (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    chain_id   uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO audit_chain DEFAULT VALUES;
