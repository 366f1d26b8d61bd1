-- The console shows, beside an item, the decisions on the other content of the same owner.
CREATE INDEX platform_content_owner ON platform_content (owner_account_id) WHERE owner_account_id IS NOT NULL;

-- Every time a moderator reveals one of an item's images in the console (shown blurred until then).
CREATE TABLE media_reveals (
    content_id  text        NOT NULL,
    media_id    text        NOT NULL,
    moderator   text        NOT NULL,
    revealed_at timestamptz NOT NULL
);
CREATE INDEX media_reveals_item ON media_reveals (content_id, moderator, revealed_at);
