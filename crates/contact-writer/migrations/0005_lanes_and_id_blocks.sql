-- Lanes: an import that matches on one attribute is applied in several lanes at once, each
-- in file order (contact_core::lanes). Each lane keeps its own cursor and counters, so lanes
-- never write the same row; an import's counters are the sums of its lanes.
CREATE TABLE import_lanes (
    account_id  text NOT NULL,
    import_id   text NOT NULL,
    lane        integer NOT NULL,
    -- The chunk whose part of this lane is applied next.
    next_chunk  integer NOT NULL DEFAULT 0,
    created     bigint NOT NULL DEFAULT 0,
    linked      bigint NOT NULL DEFAULT 0,
    duplicated  bigint NOT NULL DEFAULT 0,
    skipped     bigint NOT NULL DEFAULT 0,
    failed      bigint NOT NULL DEFAULT 0,
    -- How far into the file this lane has applied.
    bytes_done  bigint NOT NULL DEFAULT 0,
    -- Turned off, under the lane's row lock, by whatever ends the import: a lane is written
    -- only while it is open.
    open        boolean NOT NULL DEFAULT true,
    PRIMARY KEY (account_id, import_id, lane)
);

-- Imports recorded before lanes existed become imports of one lane.
INSERT INTO import_lanes (account_id, import_id, lane, next_chunk, created, linked, duplicated, skipped, failed, bytes_done)
SELECT account_id, import_id, 0, next_chunk, created, linked, duplicated, skipped, failed, bytes_done
FROM imports;

ALTER TABLE imports
    ADD COLUMN lanes integer NOT NULL DEFAULT 1,
    -- The import's block of contact ids: the row on line L creates contact first_contact_id + L.
    ADD COLUMN first_contact_id bigint,
    -- A dry run's overlay waits here until the sweep has cleared it, after the dry run ends.
    ADD COLUMN overlay_pending boolean NOT NULL DEFAULT false,
    DROP COLUMN next_chunk,
    DROP COLUMN created,
    DROP COLUMN linked,
    DROP COLUMN duplicated,
    DROP COLUMN skipped,
    DROP COLUMN failed,
    DROP COLUMN bytes_done;

CREATE INDEX imports_overlays_to_clear ON imports (namespace) WHERE overlay_pending;

-- Chunks wait for their turn in JetStream now, not here.
DROP TABLE pending_chunks;

-- Contact ids are handed out in blocks, one per import, from this single row. The block
-- decides which contact is older, so it is taken once, when the import starts.
CREATE TABLE contact_id_blocks (
    single     boolean PRIMARY KEY DEFAULT true CHECK (single),
    next_id    bigint NOT NULL
);
INSERT INTO contact_id_blocks (next_id)
SELECT GREATEST((SELECT COALESCE(max(contact_id), 0) FROM contacts),
                (SELECT last_value FROM contacts_contact_id_seq)) + 1;
ALTER TABLE contacts ALTER COLUMN contact_id DROP DEFAULT;

-- Per-row checks inside set-based inserts: each inserted contact looked up its account, each
-- key its contact. The writer creates the account before any of its contacts and writes a
-- contact's keys in the statement that writes the contact.
ALTER TABLE contacts DROP CONSTRAINT contacts_account_id_fkey;
ALTER TABLE contact_keys DROP CONSTRAINT contact_keys_contact_id_fkey;

-- The lookup index (account, attribute, value, contact_id) must be the only index that can
-- give a key's holders in id order: with an index by contact id beside it, a generic plan may
-- walk that one in id order to serve "oldest holder first" and filter its way to the key,
-- reading an account's whole range for one probe. Keys are removed by their full value.
DROP INDEX contact_keys_by_contact;
DROP INDEX dry_run_keys_by_contact;

-- Keys are compared byte by byte: equality is all the data path asks of them, and a
-- linguistic collation would make every index step of the lookup and of each insert call the
-- C library's string collation.
ALTER TABLE contact_keys
    ALTER COLUMN account_id TYPE text COLLATE "C",
    ALTER COLUMN attribute TYPE text COLLATE "C",
    ALTER COLUMN value TYPE text COLLATE "C";
ALTER TABLE dry_run_keys
    ALTER COLUMN account_id TYPE text COLLATE "C",
    ALTER COLUMN import_id TYPE text COLLATE "C",
    ALTER COLUMN attribute TYPE text COLLATE "C",
    ALTER COLUMN value TYPE text COLLATE "C";
ALTER TABLE contacts ALTER COLUMN account_id TYPE text COLLATE "C";
ALTER TABLE dry_run_contacts
    ALTER COLUMN account_id TYPE text COLLATE "C",
    ALTER COLUMN import_id TYPE text COLLATE "C";

-- A contact is found by its account and id: one index serves both the probes by id and the
-- pages of an account's contacts, instead of two indexes written for every new contact.
ALTER TABLE contacts DROP CONSTRAINT contacts_pkey;
DROP INDEX contacts_by_account;
ALTER TABLE contacts ADD PRIMARY KEY (account_id, contact_id);
