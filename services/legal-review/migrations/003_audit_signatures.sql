-- Audit entries are signed by the audit key, which is not in the database (warden/audit.py):
-- key_id names the key, signature is over {service, chain_id, seq, hash}. The chain's id is
-- random, made here once; every entry's signature binds it, and checkpoints name it.
ALTER TABLE audit_log ADD COLUMN key_id text, ADD COLUMN signature text;

CREATE TABLE audit_chain (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    chain_id   uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO audit_chain DEFAULT VALUES;
