-- Per document, the highest log seq whose change the digests have recorded: on load, log
-- entries after it (committed, but their change hook never ran) are replayed into windows.
CREATE TABLE IF NOT EXISTS notification_watermarks (
    document TEXT PRIMARY KEY,
    through_seq INTEGER NOT NULL
);
