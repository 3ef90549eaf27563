-- Therapy sessions (integrations/sessions). Times are epoch seconds, UTC.
CREATE TABLE IF NOT EXISTS {schema}.sessions (
    id TEXT PRIMARY KEY,
    student_id TEXT NOT NULL,
    therapists TEXT NOT NULL,
    starts_at DOUBLE PRECISION NOT NULL,
    duration_minutes BIGINT NOT NULL,
    place_kind TEXT NOT NULL,
    place TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    goals TEXT NOT NULL,
    note TEXT NOT NULL,
    measurements TEXT NOT NULL,
    attention TEXT,
    version BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_student ON {schema}.sessions (student_id, starts_at);
-- One row per therapist of a session that occupies them: the overlap rule's index.
CREATE TABLE IF NOT EXISTS {schema}.session_therapists (
    session_id TEXT NOT NULL,
    therapist_id TEXT NOT NULL,
    starts_at DOUBLE PRECISION NOT NULL,
    ends_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (session_id, therapist_id)
);
CREATE INDEX IF NOT EXISTS session_therapists_by_time ON {schema}.session_therapists (therapist_id, starts_at);
CREATE TABLE IF NOT EXISTS {schema}.session_measurements (
    session_id TEXT NOT NULL,
    student_id TEXT NOT NULL,
    goal_id TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    unit TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS session_measurements_by_student ON {schema}.session_measurements (student_id, at);
CREATE TABLE IF NOT EXISTS {schema}.session_jobs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    student_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    slot TEXT NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    claimed_until DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (kind, student_id, session_id, recipient_id, slot)
);
CREATE INDEX IF NOT EXISTS session_jobs_due ON {schema}.session_jobs (state, due_at);
CREATE INDEX IF NOT EXISTS session_jobs_by_session ON {schema}.session_jobs (session_id);
