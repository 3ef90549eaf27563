ALTER TABLE {schema}.people ADD COLUMN IF NOT EXISTS quiet_hours TEXT;
ALTER TABLE {schema}.people ADD COLUMN IF NOT EXISTS channel_order TEXT;
