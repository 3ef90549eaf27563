-- How many messages a person wrote lately (the page's quota) is read from this index.
CREATE INDEX IF NOT EXISTS thread_messages_by_author ON thread_messages (author_id, at);
