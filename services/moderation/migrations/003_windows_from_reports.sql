-- Each item's window is read from the reports themselves (reports.py): per reporter, the first
-- report recorded inside the window counts, so reports keep the order they were recorded in.
ALTER TABLE reports ADD COLUMN seq bigserial;

-- Automated matches count like one more reporter per bank inside the window: the match that counts now.
CREATE TABLE bank_matches (
    content_id    text             NOT NULL REFERENCES content,
    bank_id       text             NOT NULL,
    contribution  double precision NOT NULL,
    matched_at    timestamptz      NOT NULL,
    PRIMARY KEY (content_id, bank_id)
);

DROP TABLE stream_progress;
