-- Every key an authority was validly registered with, and when it was revoked: a request is
-- checked against the key pinned to its case, and a revoked key stays revoked whatever comes later.
CREATE TABLE authority_keys (
    authority_id  text        NOT NULL,
    public_key    text        NOT NULL,
    registered_at timestamptz NOT NULL,
    revoked_at    timestamptz,
    PRIMARY KEY (authority_id, public_key)
);
INSERT INTO authority_keys (authority_id, public_key, registered_at, revoked_at)
SELECT authority_id, public_key, updated_at, CASE WHEN status = 'revoked' THEN updated_at END FROM authorities;
