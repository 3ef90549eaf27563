-- Appends no longer keep `documents.last_seq` / `updated_at` current row by row: a document's
-- row is created by its first append and its activity is read from its newest log entry.
DROP TRIGGER IF EXISTS updates_touch_document;
CREATE VIEW IF NOT EXISTS document_activity AS
SELECT
    d.name AS name,
    max(d.last_seq, coalesce(
        (SELECT u.seq FROM updates AS u WHERE u.document = d.name ORDER BY u.seq DESC LIMIT 1),
        0)) AS last_seq,
    max(d.updated_at, coalesce(
        (SELECT u.created_at FROM updates AS u WHERE u.document = d.name
         ORDER BY u.seq DESC LIMIT 1),
        0)) AS updated_at
FROM documents AS d;
