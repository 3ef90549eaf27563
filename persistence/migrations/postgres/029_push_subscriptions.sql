-- Browsers that allowed Web Push: where to send, and the keys to encrypt for them.
CREATE TABLE IF NOT EXISTS {schema}.push_subscriptions (
    endpoint TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS push_subscriptions_by_user
    ON {schema}.push_subscriptions (user_id, created_at);
