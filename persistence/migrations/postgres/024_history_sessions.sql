-- The per-field changes of closed editing sessions, computed once: a session whose last edit
-- is older than the session gap never changes, so a history page reads it instead of
-- replaying its part of the log.
CREATE TABLE IF NOT EXISTS {schema}.history_sessions (
    document TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    changes TEXT NOT NULL,
    PRIMARY KEY (document, first_seq)
);
