CREATE TABLE IF NOT EXISTS {schema}.members (
    document TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    digest BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (document, user_id)
);
CREATE INDEX IF NOT EXISTS members_by_user ON {schema}.members (user_id, document);
CREATE TABLE IF NOT EXISTS {schema}.people (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    phone TEXT,
    email TEXT,
    language TEXT NOT NULL DEFAULT 'en' CHECK (language IN ('ar', 'en')),
    timezone TEXT NOT NULL DEFAULT 'UTC',
    notify_whatsapp BOOLEAN NOT NULL DEFAULT false,
    notify_email BOOLEAN NOT NULL DEFAULT false,
    notify_in_app BOOLEAN NOT NULL DEFAULT true,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
