-- Who uploaded a file from the page: only they may attach it to a message.
ALTER TABLE thread_media ADD COLUMN uploaded_by TEXT;
