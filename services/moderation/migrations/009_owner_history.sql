-- The console shows, beside an item, the decisions on the other content of the same owner.
CREATE INDEX platform_content_owner ON platform_content (owner_account_id) WHERE owner_account_id IS NOT NULL;
