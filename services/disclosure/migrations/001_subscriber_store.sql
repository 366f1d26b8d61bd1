-- The subscriber store, fed only by `platform.subscribers`.

-- Current state of each account (the latest account.updated.v1 wins).
CREATE TABLE accounts (
    account_id text        PRIMARY KEY,
    username   text,                     -- normalised: no leading @, casefolded
    country    text,
    updated_at timestamptz NOT NULL
);

-- Identifier history as change points: from `changed_at` the account held `value`
-- (NULL: none) until its next change point. Order-independent and idempotent, so
-- late or replayed updates land in the right place; intervals are derived on read.
CREATE TABLE phone_changes (
    account_id   text        NOT NULL,
    changed_at   timestamptz NOT NULL,
    phone_number text,                   -- E.164
    PRIMARY KEY (account_id, changed_at)
);
CREATE INDEX phone_changes_by_number ON phone_changes (phone_number, changed_at);

CREATE TABLE username_changes (
    account_id text        NOT NULL,
    changed_at timestamptz NOT NULL,
    username   text,
    PRIMARY KEY (account_id, changed_at)
);
CREATE INDEX username_changes_by_name ON username_changes (username, changed_at);

-- One row per observed session, exact to the instant: a granted period is
-- timestamp-precise, so per-day aggregates could not say which sessions fall inside it.
-- The primary key is the access path: (account_id, observed_at) range scans, with `ip`
-- in the key so a period lookup is an index-only scan; it also makes a re-sent
-- observation a no-op. BRIN on observed_at serves the retention sweep at little cost.
CREATE TABLE sessions (
    account_id  text        NOT NULL,
    observed_at timestamptz NOT NULL,
    ip          inet        NOT NULL,
    PRIMARY KEY (account_id, observed_at, ip)
);
CREATE INDEX sessions_observed_brin ON sessions USING brin (observed_at);
