-- What the documents list shows of each document (written when it changes, not per edit),
-- and whether its owners archived it (hidden from the list, never deleted).
CREATE TABLE IF NOT EXISTS document_listing (
    document TEXT PRIMARY KEY,
    student_name TEXT,
    title TEXT,
    last_user_id TEXT,
    archived_at REAL,
    archived_by TEXT
);
