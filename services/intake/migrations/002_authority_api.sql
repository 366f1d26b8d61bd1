-- The authority API (docs/authority-api.md).

-- Every HTTP signature accepted, once: a replay answers 401. Rows older than the
-- freshness window are pruned (a signature that old is refused anyway).
CREATE TABLE api_signatures (
    signature_sha256 char(64)    PRIMARY KEY,
    authority_id     text        NOT NULL,
    created          timestamptz NOT NULL
);
CREATE INDEX api_signatures_created ON api_signatures (created);

-- What each authority may read of its own requests: one row per request it submitted
-- (over HTTP, or seen on legal.requests.status), with its latest status ...
CREATE TABLE authority_requests (
    authority_id text        NOT NULL,
    request_id   text        NOT NULL,
    case_id      uuid,
    status       text        NOT NULL,
    submitted_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (authority_id, request_id)
);
CREATE INDEX authority_requests_newest ON authority_requests (authority_id, submitted_at DESC, request_id DESC);

-- ... every status it went through (legal.requests.status) ...
CREATE TABLE request_statuses (
    id           bigserial   PRIMARY KEY,
    authority_id text        NOT NULL,
    request_id   text        NOT NULL,
    case_id      uuid,
    status       text        NOT NULL,
    reasons      jsonb       NOT NULL,
    at           timestamptz NOT NULL,
    deadline     timestamptz
);
CREATE INDEX request_statuses_of_request ON request_statuses (authority_id, request_id, at);

-- ... and its sealed packages (legal.disclosures.issued): only what the authority needs to open them.
CREATE TABLE authority_disclosures (
    case_id      uuid        NOT NULL,
    request_id   text        NOT NULL,
    authority_id text        NOT NULL,
    generated_at timestamptz NOT NULL,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    sealed       text        NOT NULL,
    sha256       char(64)    NOT NULL,
    signature    text        NOT NULL,
    PRIMARY KEY (case_id, sha256)
);
CREATE INDEX authority_disclosures_of_request ON authority_disclosures (authority_id, request_id, generated_at);
