-- Incoming WhatsApp messages find their sender by number in people (newest record first):
-- the separate phone -> user table of 003 is no longer read or written.
CREATE INDEX IF NOT EXISTS people_by_phone ON {schema}.people (phone, updated_at)
    WHERE phone IS NOT NULL;
DROP TABLE IF EXISTS {schema}.whatsapp_contacts;
