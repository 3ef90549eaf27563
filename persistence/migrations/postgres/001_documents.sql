CREATE TABLE IF NOT EXISTS {schema}.documents (
    name TEXT PRIMARY KEY,
    snapshot BYTEA,
    snapshot_seq BIGINT NOT NULL DEFAULT 0,
    last_seq BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {schema}.updates (
    document TEXT NOT NULL,
    seq BIGINT NOT NULL,
    body BYTEA NOT NULL,
    user_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (document, seq)
);
