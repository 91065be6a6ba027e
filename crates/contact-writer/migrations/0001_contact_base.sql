-- The contact base and the import bookkeeping. Every table carries account_id: nothing is
-- shared between accounts.

CREATE TABLE accounts (
    account_id  text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE attributes (
    account_id      text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    key             text NOT NULL,
    label           text NOT NULL,
    attribute_type  text NOT NULL,
    allowed_values  text[] NOT NULL DEFAULT '{}',
    required        boolean NOT NULL DEFAULT false,
    identifier      boolean NOT NULL DEFAULT false,
    position        integer NOT NULL,
    PRIMARY KEY (account_id, key)
);

CREATE TABLE contacts (
    contact_id    bigserial PRIMARY KEY,
    account_id    text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    attributes    jsonb NOT NULL,
    contact_type  text,
    category      text,
    tags          text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- Which import and file line created the contact (none for other sources).
    import_id     text,
    source_line   bigint
);
CREATE INDEX contacts_by_account ON contacts (account_id, contact_id);

-- One row per (identifier attribute, normalized value) of a contact: how duplicates are found.
-- Not unique: the `duplicate` policy stores several contacts with one key, and the oldest
-- (smallest contact_id) is the match.
CREATE TABLE contact_keys (
    account_id  text NOT NULL,
    attribute   text NOT NULL,
    value       text NOT NULL,
    contact_id  bigint NOT NULL REFERENCES contacts ON DELETE CASCADE
);
CREATE INDEX contact_keys_lookup ON contact_keys (account_id, attribute, value, contact_id);
CREATE INDEX contact_keys_by_contact ON contact_keys (contact_id);

CREATE TABLE imports (
    account_id        text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    import_id         text NOT NULL,
    status            text NOT NULL,
    request           jsonb NOT NULL,
    plan              jsonb,
    unmapped_columns  text[] NOT NULL DEFAULT '{}',
    file_name         text,
    bytes_total       bigint,
    bytes_done        bigint NOT NULL DEFAULT 0,
    -- The chunk the writer applies next: chunks are applied strictly in file order.
    next_chunk        integer NOT NULL DEFAULT 0,
    chunks_total      integer,
    rows_in_file      bigint,
    created           bigint NOT NULL DEFAULT 0,
    linked            bigint NOT NULL DEFAULT 0,
    duplicated        bigint NOT NULL DEFAULT 0,
    skipped           bigint NOT NULL DEFAULT 0,
    failed            bigint NOT NULL DEFAULT 0,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    PRIMARY KEY (account_id, import_id)
);
CREATE INDEX imports_running ON imports (status) WHERE status = 'running';

-- Validated chunks that arrived before their turn: a reorder buffer in the database, so that
-- replicas can take chunks in any order and still apply them in file order.
CREATE TABLE pending_chunks (
    account_id   text NOT NULL,
    import_id    text NOT NULL,
    chunk_index  integer NOT NULL,
    payload      bytea NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, import_id, chunk_index)
);

CREATE TABLE row_errors (
    error_id     bigserial PRIMARY KEY,
    account_id   text NOT NULL,
    import_id    text NOT NULL,
    line         bigint NOT NULL,
    column_name  text,
    value        text,
    reason       text NOT NULL
);
CREATE INDEX row_errors_by_import ON row_errors (account_id, import_id, line, error_id);
