-- What disclosure decided per case: one row per case, whatever is redelivered.
CREATE TABLE cases (
    case_id    text        PRIMARY KEY,
    request_id text        NOT NULL,
    authority_id text      NOT NULL,
    kind       text        NOT NULL,     -- disclosure | preservation
    outcome    text        NOT NULL,     -- disclosed | no_data | preserved
    reason     text,                     -- code, for no_data
    decided_at timestamptz NOT NULL
);
CREATE INDEX cases_outcome ON cases (outcome);

-- The sealed package only: no plaintext, no redacted view.
CREATE TABLE packages (
    case_id      text        PRIMARY KEY REFERENCES cases (case_id),
    authority_id text        NOT NULL,
    account_id   text        NOT NULL,
    generated_at timestamptz NOT NULL,
    sealed       text        NOT NULL,   -- base64 sealed box to the authority
    sha256       char(64)    NOT NULL,
    signature    text        NOT NULL
);

-- Preservation holds: while one is active, retention leaves the account's data alone.
CREATE TABLE holds (
    case_id    text        PRIMARY KEY REFERENCES cases (case_id),
    account_id text        NOT NULL,
    hold_until timestamptz NOT NULL,
    placed_at  timestamptz NOT NULL
);
CREATE INDEX holds_active ON holds (account_id, hold_until);

-- User notices: durable schedule, emitted by the notice job when due.
CREATE TABLE notices (
    case_id    text        PRIMARY KEY REFERENCES cases (case_id),
    account_id text        NOT NULL,
    due_at     timestamptz NOT NULL,
    emitted_at timestamptz
);
CREATE INDEX notices_pending ON notices (due_at) WHERE emitted_at IS NULL;

-- The platform disclosure key when none is configured (embedded default only):
-- generated once, so packages stay verifiable across restarts.
CREATE TABLE platform_key (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    private_key text        NOT NULL,
    public_key  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
