-- Retention: an import's row errors, failed rows and undo records (what it changed in the
-- contacts it linked, what an undo kept) are removed once it ended longer ago than the
-- deployment keeps them. The import itself, its counters and its contacts stay.
ALTER TABLE imports
    -- When the sweep took the import's details away: from then on they are not served and
    -- the import cannot be undone.
    ADD COLUMN details_removed_at timestamptz,
    -- Details still to delete, a batch at a time (a sweep may stop halfway).
    ADD COLUMN details_pending boolean NOT NULL DEFAULT false;

-- Ended imports whose details are still kept, by the time they ended: the sweep reads only
-- those past the retention.
CREATE INDEX imports_details_kept ON imports (finished_at)
    WHERE details_removed_at IS NULL AND finished_at IS NOT NULL;
CREATE INDEX imports_details_pending ON imports (namespace) WHERE details_pending;

-- The contacts an import linked, once its record of what it changed in them is removed: the
-- export filtered by import still finds them.
CREATE TABLE import_links (
    account_id  text COLLATE "C" NOT NULL,
    import_id   text COLLATE "C" NOT NULL,
    contact_id  bigint NOT NULL,
    PRIMARY KEY (account_id, import_id, contact_id)
);
