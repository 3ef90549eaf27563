-- How far each person has read their in-app notifications (the bell's count; all their tabs).
CREATE TABLE IF NOT EXISTS inapp_reads (
    user_id TEXT PRIMARY KEY,
    through_id INTEGER NOT NULL
);
