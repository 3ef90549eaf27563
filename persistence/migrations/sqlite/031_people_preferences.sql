ALTER TABLE people ADD COLUMN quiet_hours TEXT;
ALTER TABLE people ADD COLUMN channel_order TEXT;
