-- A queue row's content row is there before it: score_reports locks or creates the batch's content rows
-- first in the same transaction, the unknown-content sweep queues content its reports refer to, and no
-- content row is ever deleted. The foreign key checked that again, row by row (a lookup and a KEY SHARE
-- lock on a row the transaction may already hold FOR UPDATE), for every item a report queues.
ALTER TABLE queue DROP CONSTRAINT queue_content_id_fkey;
