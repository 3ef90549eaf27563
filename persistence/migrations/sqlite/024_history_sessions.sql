-- The per-field changes of closed editing sessions, computed once: a session whose last edit
-- is older than the session gap never changes, so a history page reads it instead of
-- replaying its part of the log.
CREATE TABLE IF NOT EXISTS history_sessions (
    document TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    changes TEXT NOT NULL,
    PRIMARY KEY (document, first_seq)
);
