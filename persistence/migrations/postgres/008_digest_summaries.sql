-- Digests read the stored log: each open window keeps its merged digest (no log replay to
-- close it), and the digests keep their own copy of a document at a log position
-- (a checkpoint) so catching up never reads the log from its start.
ALTER TABLE {schema}.notification_windows ADD COLUMN IF NOT EXISTS summary TEXT;
CREATE TABLE IF NOT EXISTS {schema}.digest_checkpoints (
    document TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    state BYTEA NOT NULL
);
-- Documents that predate this: their past is not news. A document without a watermark is
-- new, and all of its log is.
INSERT INTO {schema}.notification_watermarks (document, through_seq)
SELECT name, last_seq FROM {schema}.documents
ON CONFLICT (document) DO NOTHING;
