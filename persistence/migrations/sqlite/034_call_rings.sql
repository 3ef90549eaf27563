-- Who was rung for a call and how they answered: a ring nobody answered becomes a note in the
-- student's thread. Calls themselves are never stored.
CREATE TABLE IF NOT EXISTS call_rings (
    call_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    student_id TEXT NOT NULL,
    caller_id TEXT NOT NULL,
    at REAL NOT NULL,
    answer TEXT CHECK (answer IN ('joined', 'declined', 'missed')),
    PRIMARY KEY (call_id, user_id)
);
CREATE INDEX IF NOT EXISTS call_rings_unanswered ON call_rings (at) WHERE answer IS NULL;
CREATE INDEX IF NOT EXISTS call_rings_by_caller ON call_rings (caller_id, at);
