-- The summary event is published after the commit that closes an import; this flag records
-- that it went out, so that the sweep publishes it again after a crash in between.
ALTER TABLE imports ADD COLUMN summary_published boolean NOT NULL DEFAULT false;
CREATE INDEX imports_summary_due ON imports (status) WHERE NOT summary_published AND status <> 'running';
