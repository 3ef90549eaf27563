-- Therapy sessions (integrations/sessions). Times are epoch seconds, UTC.
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    student_id TEXT NOT NULL,
    therapists TEXT NOT NULL,
    starts_at REAL NOT NULL,
    duration_minutes INTEGER NOT NULL,
    place_kind TEXT NOT NULL,
    place TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    goals TEXT NOT NULL,
    note TEXT NOT NULL,
    measurements TEXT NOT NULL,
    attention TEXT,
    version INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_student ON sessions (student_id, starts_at);
-- One row per therapist of a session that occupies them: the overlap rule's index.
CREATE TABLE IF NOT EXISTS session_therapists (
    session_id TEXT NOT NULL,
    therapist_id TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    PRIMARY KEY (session_id, therapist_id)
);
CREATE INDEX IF NOT EXISTS session_therapists_by_time ON session_therapists (therapist_id, starts_at);
CREATE TABLE IF NOT EXISTS session_measurements (
    session_id TEXT NOT NULL,
    student_id TEXT NOT NULL,
    goal_id TEXT NOT NULL,
    value REAL NOT NULL,
    unit TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS session_measurements_by_student ON session_measurements (student_id, at);
CREATE TABLE IF NOT EXISTS session_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    student_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    slot TEXT NOT NULL,
    due_at REAL NOT NULL,
    state TEXT NOT NULL,
    claimed_until REAL,
    created_at REAL NOT NULL,
    UNIQUE (kind, student_id, session_id, recipient_id, slot)
);
CREATE INDEX IF NOT EXISTS session_jobs_due ON session_jobs (state, due_at);
CREATE INDEX IF NOT EXISTS session_jobs_by_session ON session_jobs (session_id);
