-- A report row is written once per report and its outcome later, by a human decision: index the outcome
-- only where there is one (the misuse check reads a reporter's decided reports), and drop the index on
-- (reporter_id, reported_at), which no query needs beyond what the primary key (reporter_id, …) and this
-- partial index serve. Each index left out is one less B-tree insertion per report.
DROP INDEX reports_reporter_reported;
DROP INDEX reports_reporter_outcome;
CREATE INDEX reports_reporter_decided ON reports (reporter_id, outcome_at) WHERE outcome IS NOT NULL;
