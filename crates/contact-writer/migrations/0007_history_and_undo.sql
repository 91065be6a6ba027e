-- Import history, repeated files and undo.
ALTER TABLE imports
    -- The SHA-256 of the file's bytes (hex) as the client computed it while uploading, and
    -- the latest earlier import of the account with the same content.
    ADD COLUMN file_sha256 text,
    ADD COLUMN repeat_of text,
    -- Undo: the last contact whose change it restored and the next contact id of the
    -- import's block the removal looks at (none before it starts), and what it has done so
    -- far. Each batch commits them with its work; the cursors keep a batch from reading past
    -- the index entries of the rows earlier batches deleted.
    ADD COLUMN undo_restored_through bigint,
    ADD COLUMN undo_next_contact bigint,
    ADD COLUMN undo_removed bigint NOT NULL DEFAULT 0,
    ADD COLUMN undo_restored bigint NOT NULL DEFAULT 0,
    ADD COLUMN undo_kept bigint NOT NULL DEFAULT 0,
    ADD COLUMN undone_at timestamptz;

-- `imports list`: an account's imports, newest first.
CREATE INDEX imports_newest ON imports (account_id, created_at DESC, import_id DESC);
-- Repeated files: the account's imports of one content.
CREATE INDEX imports_by_file ON imports (account_id, file_sha256, created_at DESC)
    WHERE file_sha256 IS NOT NULL;
-- Undos a crash interrupted, for the sweep to finish.
CREATE INDEX imports_undoing ON imports (namespace) WHERE status = 'undoing';

-- What an import changed in each contact it linked (contact_core::undo::ImportChange), written
-- in the transaction that changes the contact: only the attributes it set to another value
-- (JSON objects attribute -> value before, null when the contact had none; attribute -> value
-- written), the type and category when it changed them, and the tags it added. Contacts an
-- import creates need no row: the contacts table records their import, and their ids lie in the
-- import's block.
CREATE TABLE import_changes (
    account_id        text COLLATE "C" NOT NULL,
    import_id         text COLLATE "C" NOT NULL,
    contact_id        bigint NOT NULL,
    values_before     jsonb NOT NULL,
    values_written    jsonb NOT NULL,
    type_changed      boolean NOT NULL,
    type_before       text,
    type_written      text,
    category_changed  boolean NOT NULL,
    category_before   text,
    category_written  text,
    tags_added        text[] NOT NULL,
    PRIMARY KEY (account_id, import_id, contact_id)
);

-- Fields an undo left as they were because something changed them after the import, with
-- what they hold and what the import wrote; `field` is `attribute:<key>`, `type`, `category`,
-- or `contact` for a contact the import created and something changed since (kept whole).
CREATE TABLE undo_conflicts (
    account_id      text COLLATE "C" NOT NULL,
    import_id       text COLLATE "C" NOT NULL,
    contact_id      bigint NOT NULL,
    field           text COLLATE "C" NOT NULL,
    current_value   text,
    imported_value  text,
    PRIMARY KEY (account_id, import_id, contact_id, field)
);
