-- A sealed package is kept as its bytes, not their base64: a quarter less to write and to store for
-- every package (a sealed box does not compress). Its event carries it in base64.
ALTER TABLE packages ALTER COLUMN sealed TYPE bytea USING decode(sealed, 'base64');
