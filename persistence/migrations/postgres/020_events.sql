-- The live subscription log (collab_server/events.py). Writers take an advisory lock before
-- inserting (persistence/postgres_events.py), so rows become visible in position order.
CREATE TABLE IF NOT EXISTS {schema}.events (
    position BIGSERIAL PRIMARY KEY,
    topic TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_topic ON {schema}.events (topic, position);
