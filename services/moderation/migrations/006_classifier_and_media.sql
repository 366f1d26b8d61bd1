-- The classifier's answer on the platform's current facts, and which banks and model checked them.
ALTER TABLE platform_content ADD COLUMN model_score double precision;   -- 0 to 1: how likely a violation
ALTER TABLE platform_content ADD COLUMN model_label text;               -- benign or a violation category
ALTER TABLE platform_content ADD COLUMN model_version text;
-- A fingerprint of the bank files and the model version the facts were last checked with: content checked
-- with older ones is checked again, in batches, by the retroactive job.
ALTER TABLE platform_content ADD COLUMN checked_with text;
ALTER TABLE platform_content ADD COLUMN checked_at timestamptz;
CREATE INDEX platform_content_public_checked ON platform_content (checked_with, content_id)
    WHERE removed_at IS NULL AND public_in_search;
