-- Messages between a student's family and the team, one thread per student (its IEP).
CREATE TABLE IF NOT EXISTS {schema}.thread_messages (
    id BIGSERIAL PRIMARY KEY,
    student_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    author_name TEXT NOT NULL,
    from_family BOOLEAN NOT NULL,
    body TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('app', 'whatsapp')),
    at DOUBLE PRECISION NOT NULL,
    whatsapp_id TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS thread_messages_by_student ON {schema}.thread_messages (student_id, id);
CREATE TABLE IF NOT EXISTS {schema}.thread_reads (
    student_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    through_id BIGINT NOT NULL,
    PRIMARY KEY (student_id, user_id)
);
-- A parent with several children is asked which one a message is about: held until then,
-- and the answer is remembered for the conversation.
CREATE TABLE IF NOT EXISTS {schema}.thread_held (
    whatsapp_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    body TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS thread_held_by_user ON {schema}.thread_held (user_id, at);
CREATE TABLE IF NOT EXISTS {schema}.thread_choices (
    user_id TEXT PRIMARY KEY,
    student_id TEXT NOT NULL,
    until_at DOUBLE PRECISION NOT NULL
);
