-- What became of each approved disclosure, as the disclosure service reports it on
-- legal.disclosures.issued (with the account whose data was disclosed) and
-- legal.requests.status (no_data, cancelled): legal review's own projection, for the
-- transparency report. Never read by any other service.
CREATE TABLE fulfilments (
    case_id    uuid        PRIMARY KEY,
    outcome    text        NOT NULL CHECK (outcome IN ('disclosed', 'no_data', 'cancelled')),
    account_id text,                     -- the account disclosed (disclosed only)
    at         timestamptz NOT NULL
);
