-- Sessions partitioned by week, so that retention drops a week's partition instead of
-- deleting rows one batch at a time; sessions of held accounts are copied aside first.

-- Weekly ranges aligned on Monday 00:00 UTC, each partition named after its first day
-- (sessions_20261130 holds [2026-11-30, 2026-12-07)). `sessions_default` takes what has no
-- partition yet or any more (a clock far off, a session older than the oldest week): it is
-- kept small, because attaching a partition scans it.
ALTER TABLE sessions RENAME TO sessions_v1;
ALTER INDEX sessions_pkey RENAME TO sessions_v1_pkey;
DROP INDEX sessions_observed_brin;

-- The primary key is the access path, as before: (account_id, observed_at) range scans that
-- are index-only, in each partition the period touches. It includes the partition key, as
-- PostgreSQL requires of a partitioned table's unique constraints, and the distribution
-- column account_id, as Citus requires (docs/citus.md).
CREATE TABLE sessions (
    account_id  text        NOT NULL,
    observed_at timestamptz NOT NULL,
    ip          inet        NOT NULL,
    PRIMARY KEY (account_id, observed_at, ip)
) PARTITION BY RANGE (observed_at);
CREATE TABLE sessions_default PARTITION OF sessions DEFAULT;

-- Sessions that retention would have dropped while their account was under a preservation
-- hold: copied here before the drop, read by every lookup beside `sessions`, deleted once
-- no hold on the account is in force.
CREATE TABLE held_sessions (
    account_id  text        NOT NULL,
    observed_at timestamptz NOT NULL,
    ip          inet        NOT NULL,
    PRIMARY KEY (account_id, observed_at, ip)
);

-- Creates the weekly partitions that meet [first_at, last_at] and do not exist yet; returns
-- how many. Sessions of such a week already in the default partition are moved into it.
-- Attaching (rather than CREATE ... PARTITION OF) takes only a SHARE UPDATE EXCLUSIVE lock
-- on `sessions`: the feed keeps writing while the job runs.
CREATE FUNCTION create_session_partitions(first_at timestamptz, last_at timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    week    timestamptz := date_trunc('week', first_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    name    text;
    created integer := 0;
BEGIN
    -- Replicas run the job at once: one creates, the others then find the weeks there.
    PERFORM pg_advisory_xact_lock(hashtext('disclosure.create_session_partitions'));
    WHILE week <= last_at LOOP
        name := 'sessions_' || to_char(week AT TIME ZONE 'UTC', 'YYYYMMDD');
        IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relname = name AND n.nspname = current_schema()) THEN
            EXECUTE format('CREATE TABLE %I (LIKE sessions INCLUDING DEFAULTS)', name);
            EXECUTE format('WITH moved AS (DELETE FROM sessions_default WHERE observed_at >= $1'
                           ' AND observed_at < $2 RETURNING account_id, observed_at, ip)'
                           ' INSERT INTO %I SELECT * FROM moved', name)
                USING week, week + interval '7 days';
            EXECUTE format('ALTER TABLE sessions ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           name, week, week + interval '7 days');
            created := created + 1;
        END IF;
        week := week + interval '7 days';
    END LOOP;
    RETURN created;
END $$;

-- The weeks from the oldest session of a v1 store (none: this week) to four weeks ahead, then
-- its rows. Past weeks within retention that are still missing are the retention job's.
SELECT create_session_partitions(coalesce((SELECT min(observed_at) FROM sessions_v1), now()),
                                 now() + interval '4 weeks');
INSERT INTO sessions SELECT account_id, observed_at, ip FROM sessions_v1;
DROP TABLE sessions_v1;

-- Holds keyed by account: on Citus they are distributed with the account's sessions, so the
-- retention job's copy of held sessions stays on each shard, and a distributed table's unique
-- constraints must include the distribution column. One hold per case still: a hold is only
-- inserted from its case's new row (store.record_hold), and cases.case_id is unique.
ALTER TABLE holds DROP CONSTRAINT holds_pkey;
ALTER TABLE holds ADD PRIMARY KEY (account_id, case_id);
