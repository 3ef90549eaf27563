-- The IEP as a legal record: named and automatic versions (each with its exact state, so a
-- version rebuilds whatever compaction does later), parents' acknowledgements with their
-- reminder schedule, and the append-only audit trail.
CREATE TABLE IF NOT EXISTS {schema}.versions (
    id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL CHECK (kind IN ('named', 'auto')),
    author_id TEXT,
    author_name TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    state BYTEA NOT NULL,
    content_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_by_document ON {schema}.versions (document, seq);
CREATE TABLE IF NOT EXISTS {schema}.acknowledgements (
    id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    version_id TEXT NOT NULL REFERENCES {schema}.versions (id),
    recipient_id TEXT NOT NULL,
    requested_by TEXT,
    requested_at DOUBLE PRECISION NOT NULL,
    content_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'acknowledged', 'question')),
    answered_at DOUBLE PRECISION,
    channel TEXT,
    comment TEXT,
    reminders_sent BIGINT NOT NULL DEFAULT 0,
    next_reminder_at DOUBLE PRECISION,
    UNIQUE (version_id, recipient_id)
);
CREATE INDEX IF NOT EXISTS acknowledgements_by_document
    ON {schema}.acknowledgements (document, recipient_id);
CREATE INDEX IF NOT EXISTS acknowledgements_due ON {schema}.acknowledgements (next_reminder_at)
    WHERE next_reminder_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS {schema}.audit_events (
    id BIGSERIAL PRIMARY KEY,
    document TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_id TEXT,
    actor_name TEXT,
    address TEXT,
    at DOUBLE PRECISION NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_events_by_document ON {schema}.audit_events (document, id);
-- Nobody edits the trail, not even a client holding the table owner's credentials by mistake
-- through our own code paths: the database itself refuses.
CREATE OR REPLACE FUNCTION {schema}.audit_events_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
DROP TRIGGER IF EXISTS audit_events_append_only ON {schema}.audit_events;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON {schema}.audit_events FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.audit_events_append_only();
