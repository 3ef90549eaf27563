-- Who uploaded a file from the page: only they may attach it to a message.
ALTER TABLE {schema}.thread_media ADD COLUMN IF NOT EXISTS uploaded_by TEXT;
