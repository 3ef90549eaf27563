-- How far each person has read their in-app notifications (the bell's count; all their tabs).
CREATE TABLE IF NOT EXISTS {schema}.inapp_reads (
    user_id TEXT PRIMARY KEY,
    through_id BIGINT NOT NULL
);
