-- Each account's imports between their start request and their running import: waiting in
-- the order they asked, or admitted to one of the account's running places until the import
-- runs. A row nobody has asked about for a while is forgotten (its request was cancelled or
-- ended), and one whose import exists is done; both are removed as the account's next
-- request is admitted. (Numbered 0008: 0007 belongs to import history.)
CREATE TABLE import_admissions (
    account_id   text        NOT NULL,
    import_id    text        NOT NULL,
    requested_at timestamptz NOT NULL,
    seen_at      timestamptz NOT NULL,
    admitted_at  timestamptz,
    PRIMARY KEY (account_id, import_id)
);
