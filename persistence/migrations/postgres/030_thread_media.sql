-- Photos, PDFs and voice notes parents send on WhatsApp, kept by us (WhatsApp's links expire).
-- A file belongs to the message that carries it: who may read it is who may read that thread.
CREATE TABLE IF NOT EXISTS {schema}.thread_media (
    id BIGSERIAL PRIMARY KEY,
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
ALTER TABLE {schema}.thread_messages ADD COLUMN IF NOT EXISTS media_id BIGINT;
ALTER TABLE {schema}.thread_messages ADD COLUMN IF NOT EXISTS media_mime TEXT;
ALTER TABLE {schema}.thread_held ADD COLUMN IF NOT EXISTS media_id BIGINT;
ALTER TABLE {schema}.thread_held ADD COLUMN IF NOT EXISTS media_mime TEXT;
