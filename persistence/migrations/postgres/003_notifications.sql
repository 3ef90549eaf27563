CREATE TABLE IF NOT EXISTS {schema}.notification_windows (
    document TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    first_at DOUBLE PRECISION NOT NULL,
    last_at DOUBLE PRECISION NOT NULL,
    from_seq BIGINT NOT NULL,
    through_seq BIGINT NOT NULL,
    PRIMARY KEY (document, recipient_id)
);
CREATE TABLE IF NOT EXISTS {schema}.notification_outbox (
    key TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    channels TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    last_error TEXT,
    provider_message_id TEXT,
    delivery_status TEXT,
    use_template BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS notification_outbox_due ON {schema}.notification_outbox (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS notification_outbox_document ON {schema}.notification_outbox (document, created_at);
CREATE INDEX IF NOT EXISTS notification_outbox_provider ON {schema}.notification_outbox (provider_message_id);
CREATE TABLE IF NOT EXISTS {schema}.whatsapp_inbound (
    phone TEXT PRIMARY KEY,
    last_inbound_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.whatsapp_statuses (
    message_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    rank BIGINT NOT NULL,
    error TEXT,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.whatsapp_seen_messages (
    message_id TEXT PRIMARY KEY,
    seen_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.webhook_events (
    id BIGSERIAL PRIMARY KEY,
    body BYTEA NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    processed_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS webhook_events_unprocessed ON {schema}.webhook_events (processed_at, id);
CREATE TABLE IF NOT EXISTS {schema}.inapp_notifications (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    document TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS inapp_notifications_user ON {schema}.inapp_notifications (user_id, id);
CREATE TABLE IF NOT EXISTS {schema}.whatsapp_contacts (
    phone TEXT PRIMARY KEY,
    user_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.whatsapp_opt_outs (
    user_id TEXT PRIMARY KEY,
    opted_out BOOLEAN NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
