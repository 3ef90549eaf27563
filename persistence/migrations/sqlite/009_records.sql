-- The IEP as a legal record: named and automatic versions (each with its exact state, so a
-- version rebuilds whatever compaction does later), parents' acknowledgements with their
-- reminder schedule, and the append-only audit trail.
CREATE TABLE IF NOT EXISTS versions (
    id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL CHECK (kind IN ('named', 'auto')),
    author_id TEXT,
    author_name TEXT NOT NULL,
    created_at REAL NOT NULL,
    state BLOB NOT NULL,
    content_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_by_document ON versions (document, seq);
CREATE TABLE IF NOT EXISTS acknowledgements (
    id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    version_id TEXT NOT NULL REFERENCES versions (id),
    recipient_id TEXT NOT NULL,
    requested_by TEXT,
    requested_at REAL NOT NULL,
    content_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'acknowledged', 'question')),
    answered_at REAL,
    channel TEXT,
    comment TEXT,
    reminders_sent INTEGER NOT NULL DEFAULT 0,
    next_reminder_at REAL,
    UNIQUE (version_id, recipient_id)
);
CREATE INDEX IF NOT EXISTS acknowledgements_by_document ON acknowledgements (document, recipient_id);
CREATE INDEX IF NOT EXISTS acknowledgements_due ON acknowledgements (next_reminder_at)
    WHERE next_reminder_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_id TEXT,
    actor_name TEXT,
    address TEXT,
    at REAL NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_events_by_document ON audit_events (document, id);
CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
