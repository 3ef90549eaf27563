CREATE TABLE IF NOT EXISTS documents (
    name TEXT PRIMARY KEY,
    snapshot BLOB,
    snapshot_seq INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS updates (
    document TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL,
    user_id TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (document, seq)
) WITHOUT ROWID;
