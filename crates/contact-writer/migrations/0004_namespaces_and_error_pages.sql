-- Deployments (namespaces) may share one database. Each writer sweeps only the imports that
-- came through its own namespace, since it publishes their events on its own subjects. Imports
-- recorded before this column existed have none, and any writer may sweep them.
ALTER TABLE imports ADD COLUMN namespace text;
DROP INDEX imports_summary_due;
CREATE INDEX imports_summary_due ON imports (namespace, finished_at)
    WHERE NOT summary_published AND status <> 'running';
DROP INDEX imports_running;
CREATE INDEX imports_running ON imports (namespace) WHERE status = 'running';

-- Row errors are read a page at a time in error_id order.
CREATE INDEX row_errors_pages ON row_errors (account_id, import_id, error_id);
