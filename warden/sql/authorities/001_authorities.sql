-- Projection of the compacted `legal.authorities` topic, kept by each service that needs it.
CREATE TABLE authorities (
    authority_id text        PRIMARY KEY,
    name         text        NOT NULL,
    country      char(2)     NOT NULL,
    kind         text        NOT NULL,
    public_key   text        NOT NULL,
    status       text        NOT NULL,
    updated_at   timestamptz NOT NULL
);
