-- Photos, PDFs and voice notes parents send on WhatsApp, kept by us (WhatsApp's links expire).
-- A file belongs to the message that carries it: who may read it is who may read that thread.
CREATE TABLE IF NOT EXISTS thread_media (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at REAL NOT NULL
);
ALTER TABLE thread_messages ADD COLUMN media_id INTEGER;
ALTER TABLE thread_messages ADD COLUMN media_mime TEXT;
ALTER TABLE thread_held ADD COLUMN media_id INTEGER;
ALTER TABLE thread_held ADD COLUMN media_mime TEXT;
