-- Failed rows as they stood in the file, for the error file a marketer fixes and imports again.
CREATE TABLE failed_rows (
    account_id  text NOT NULL,
    import_id   text NOT NULL,
    line        bigint NOT NULL,
    fields      text[] NOT NULL,
    PRIMARY KEY (account_id, import_id, line)
);

-- A dry run's contacts: what the import would create or change, seen by its later rows as if
-- written, and removed when the dry run ends. The live tables are never touched.
CREATE TABLE dry_run_contacts (
    account_id    text NOT NULL,
    import_id     text NOT NULL,
    contact_id    bigint NOT NULL,
    attributes    jsonb NOT NULL,
    contact_type  text,
    category      text,
    tags          text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (account_id, import_id, contact_id)
);

CREATE TABLE dry_run_keys (
    account_id  text NOT NULL,
    import_id   text NOT NULL,
    attribute   text NOT NULL,
    value       text NOT NULL,
    contact_id  bigint NOT NULL
);
CREATE INDEX dry_run_keys_lookup ON dry_run_keys (account_id, import_id, attribute, value, contact_id);
CREATE INDEX dry_run_keys_by_contact ON dry_run_keys (account_id, import_id, contact_id);
