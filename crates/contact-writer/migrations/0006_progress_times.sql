-- When each lane last moved on: an import makes progress when any lane does. The watchdog
-- ends an import that has made none for too long, with what it was waiting for.
ALTER TABLE import_lanes ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
