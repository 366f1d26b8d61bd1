-- The identifiers' directory: every stored change point that gives an account a phone number or
-- a username, keyed by the value. A lookup by phone number or username reads it first, by value,
-- for the accounts that ever held the value, then everything else by account (store.lookup_suspects).
-- On Citus it is distributed by `value` (docs/citus.md), so that first read is routed to the one
-- shard holding the value, as every later read is routed to the account's shard.
--
-- It holds exactly the non-NULL change points of phone_changes and username_changes: written by
-- the statement that inserts them, deleted by the statement that purges them.
CREATE TABLE identifier_holders (
    value      text        NOT NULL,    -- E.164 phone number, or normalised username
    kind       text        NOT NULL CHECK (kind IN ('phone_number', 'username')),
    account_id text        NOT NULL,
    changed_at timestamptz NOT NULL,    -- the change point's, in phone_changes or username_changes
    PRIMARY KEY (value, kind, account_id, changed_at)
);

INSERT INTO identifier_holders (value, kind, account_id, changed_at)
SELECT phone_number, 'phone_number', account_id, changed_at FROM phone_changes WHERE phone_number IS NOT NULL
UNION ALL
SELECT username, 'username', account_id, changed_at FROM username_changes WHERE username IS NOT NULL;

-- The histories are read by account only now: their indexes by value served the lookup the
-- directory serves.
DROP INDEX phone_changes_by_number;
DROP INDEX username_changes_by_name;
