-- A request's status is kept once however often its event arrives: the same status of the same request
-- at the same instant is one history entry. legal.requests.progress is read with no inbox claim
-- (Subscription.deduplicates): a redelivered status is dropped here.
DELETE FROM request_statuses AS later USING request_statuses AS earlier
 WHERE later.id > earlier.id AND later.authority_id = earlier.authority_id
   AND later.request_id = earlier.request_id AND later.at = earlier.at AND later.status = earlier.status;
DROP INDEX request_statuses_of_request;
CREATE UNIQUE INDEX request_statuses_of_request ON request_statuses (authority_id, request_id, at, status);
