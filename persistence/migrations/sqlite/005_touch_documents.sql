-- Keep each document's last_seq/updated_at current from inside the insert of its log entries,
-- so appending a batch is one statement (one trip to the database thread, one transaction).
CREATE TRIGGER IF NOT EXISTS updates_touch_document AFTER INSERT ON updates
BEGIN
    INSERT INTO documents (name, last_seq, created_at, updated_at)
    VALUES (NEW.document, NEW.seq, NEW.created_at, NEW.created_at)
    ON CONFLICT (name) DO UPDATE SET
        last_seq = max(last_seq, excluded.last_seq),
        updated_at = max(updated_at, excluded.updated_at);
END;
