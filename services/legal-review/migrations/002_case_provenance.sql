-- The request as the authority signed it, and the registered key that verified it (pinned to the case:
-- legal review's decisions carry both, and disclosure seals the package to that key).
ALTER TABLE cases ADD COLUMN submitted jsonb, ADD COLUMN authority_key text;
