CREATE TABLE IF NOT EXISTS notification_windows (
    document TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    first_at REAL NOT NULL,
    last_at REAL NOT NULL,
    from_seq INTEGER NOT NULL,
    through_seq INTEGER NOT NULL,
    PRIMARY KEY (document, recipient_id)
);
CREATE TABLE IF NOT EXISTS notification_outbox (
    key TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    channels TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    provider_message_id TEXT,
    delivery_status TEXT,
    use_template INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS notification_outbox_due ON notification_outbox (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS notification_outbox_document ON notification_outbox (document, created_at);
CREATE INDEX IF NOT EXISTS notification_outbox_provider ON notification_outbox (provider_message_id);
CREATE TABLE IF NOT EXISTS whatsapp_inbound (
    phone TEXT PRIMARY KEY,
    last_inbound_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS whatsapp_statuses (
    message_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    rank INTEGER NOT NULL,
    error TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS whatsapp_seen_messages (
    message_id TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    processed_at REAL
);
CREATE INDEX IF NOT EXISTS webhook_events_unprocessed ON webhook_events (processed_at, id);
CREATE TABLE IF NOT EXISTS inapp_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    document TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS inapp_notifications_user ON inapp_notifications (user_id, id);
CREATE TABLE IF NOT EXISTS whatsapp_contacts (
    phone TEXT PRIMARY KEY,
    user_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS whatsapp_opt_outs (
    user_id TEXT PRIMARY KEY,
    opted_out INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
