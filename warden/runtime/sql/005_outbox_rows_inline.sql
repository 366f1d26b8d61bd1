-- Outbox rows live for milliseconds: an event up to a page long stays in the row, uncompressed, instead of
-- being compressed (sealed packages do not compress) and moved to the TOAST table, which an insert and a
-- delete then each paid for again. Rows past a page still go to TOAST.
ALTER TABLE outbox SET (toast_tuple_target = 8160);
