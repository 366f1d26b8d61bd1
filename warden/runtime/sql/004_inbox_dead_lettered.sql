-- An inbox row whose event was dead-lettered, not handled: a replay of its dead letter (`warden dlq replay`)
-- may take the claim back once; any other redelivery of the event is still dropped.
ALTER TABLE inbox ADD COLUMN dead_lettered boolean NOT NULL DEFAULT false;
