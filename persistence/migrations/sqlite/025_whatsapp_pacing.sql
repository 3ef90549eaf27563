-- WhatsApp pacing and stop shared by every process and kept over restarts: when each number
-- may get its next message (Meta's pair limit), and an account-wide stop after error 368.
CREATE TABLE IF NOT EXISTS whatsapp_pacing (
    phone TEXT PRIMARY KEY,
    next_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS whatsapp_halt (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
