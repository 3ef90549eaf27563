-- The live subscription log (collab_server/events.py): positions are assigned by insertion
-- and never reused (AUTOINCREMENT), so a client's last position stays meaningful.
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_topic ON events (topic, position);
