//! The `contacts` and `contact_keys` tables (and a dry run's overlay of them), written
//! set-based: one statement per step of a chunk, whatever its number of rows.
//!
//! A dry run writes what it would create or change into `dry_run_contacts` and `dry_run_keys`
//! instead; its later rows see those rows in place of the live ones, so its counters and row
//! errors are the ones the real import would produce, and the live tables stay untouched.

use std::collections::{BTreeMap, BTreeSet};

use contact_contract::{AccountId, ExportedContact, ImportId};
use contact_core::merge::{ContactState, MatchKey, NewContact, StoredContact};
use sqlx::types::Json;
use sqlx::PgConnection;

/// Where a chunk's contacts go.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Live,
    DryRun(&'a ImportId),
}

#[derive(sqlx::FromRow)]
struct ContactRow {
    contact_id: i64,
    attributes: Json<BTreeMap<String, String>>,
    contact_type: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
}

impl From<ContactRow> for StoredContact {
    fn from(row: ContactRow) -> Self {
        StoredContact {
            id: row.contact_id,
            state: ContactState {
                values: row.attributes.0,
                contact_type: row.contact_type,
                category: row.category,
                tags: row.tags.into_iter().collect(),
            },
        }
    }
}

/// Every contact of the account holding any of `keys`, in one query. For a dry run, its
/// overlay version of a contact replaces the live one.
/// Which contacts holding a match key a chunk needs to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHolders {
    /// Every holder: a linked row may change another key of the contact it matches, and the
    /// next holder of the old value becomes the oldest one.
    All,
    /// The oldest holder of each key, which is all the merge rule looks at when stored keys
    /// cannot change within the chunk. Keeps the lookup small when `duplicate` has made many
    /// contacts share an email.
    Oldest,
}

pub async fn fetch_by_keys(
    connection: &mut PgConnection,
    account: &AccountId,
    target: Target<'_>,
    keys: &BTreeSet<MatchKey>,
    holders: KeyHolders,
) -> sqlx::Result<Vec<StoredContact>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (attributes, values): (Vec<&str>, Vec<&str>) = keys
        .iter()
        .map(|key| (key.attribute.as_str(), key.value.as_str()))
        .unzip();
    let live = match holders {
        KeyHolders::All => {
            "SELECT c.contact_id, c.attributes, c.contact_type, c.category, c.tags
             FROM contacts c
             WHERE c.contact_id IN (
                 SELECT k.contact_id FROM contact_keys k
                 JOIN UNNEST($2::text[], $3::text[]) AS wanted(attribute, value)
                   ON k.attribute = wanted.attribute AND k.value = wanted.value
                 WHERE k.account_id = $1)"
        }
        KeyHolders::Oldest => {
            "SELECT c.contact_id, c.attributes, c.contact_type, c.category, c.tags
             FROM contacts c
             WHERE c.contact_id IN (
                 SELECT DISTINCT ON (k.attribute, k.value) k.contact_id FROM contact_keys k
                 JOIN UNNEST($2::text[], $3::text[]) AS wanted(attribute, value)
                   ON k.attribute = wanted.attribute AND k.value = wanted.value
                 WHERE k.account_id = $1
                 ORDER BY k.attribute, k.value, k.contact_id)"
        }
    };
    let rows: Vec<ContactRow> = match target {
        Target::Live => {
            sqlx::query_as(live)
                .bind(account.as_str())
                .bind(attributes)
                .bind(values)
                .fetch_all(connection)
                .await?
        }
        Target::DryRun(import) => {
            let sql = format!(
                "SELECT d.contact_id, d.attributes, d.contact_type, d.category, d.tags
                 FROM dry_run_contacts d
                 WHERE d.account_id = $1 AND d.import_id = $4 AND d.contact_id IN (
                     SELECT k.contact_id FROM dry_run_keys k
                     JOIN UNNEST($2::text[], $3::text[]) AS wanted(attribute, value)
                       ON k.attribute = wanted.attribute AND k.value = wanted.value
                     WHERE k.account_id = $1 AND k.import_id = $4)
                 UNION ALL
                 SELECT * FROM ({live}) live
                 WHERE NOT EXISTS (SELECT 1 FROM dry_run_contacts d
                                   WHERE d.account_id = $1 AND d.import_id = $4
                                     AND d.contact_id = live.contact_id)"
            );
            sqlx::query_as(&sql)
                .bind(account.as_str())
                .bind(attributes)
                .bind(values)
                .bind(import.as_str())
                .fetch_all(connection)
                .await?
        }
    };
    Ok(rows.into_iter().map(StoredContact::from).collect())
}

/// Columns of a batch of contact states, as arrays for `UNNEST`.
#[derive(Default)]
struct StateColumns {
    attributes: Vec<String>,
    contact_types: Vec<Option<String>>,
    categories: Vec<Option<String>>,
    tags: Vec<String>,
}

impl StateColumns {
    fn push(&mut self, state: &ContactState) -> serde_json::Result<()> {
        self.attributes.push(serde_json::to_string(&state.values)?);
        self.contact_types.push(state.contact_type.clone());
        self.categories.push(state.category.clone());
        self.tags.push(serde_json::to_string(&state.tags)?);
        Ok(())
    }
}

/// Inserts the chunk's new contacts, in file order (ids follow it), and their match keys for
/// every identifier attribute.
pub async fn insert_new(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    target: Target<'_>,
    contacts: &[NewContact],
    identifier_keys: &[String],
) -> anyhow::Result<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let mut columns = StateColumns::default();
    let mut lines = Vec::with_capacity(contacts.len());
    for contact in contacts {
        columns.push(&contact.state)?;
        lines.push(contact.line as i64);
    }
    let sql = match target {
        Target::Live => {
            "WITH new_contacts AS (
                 INSERT INTO contacts (account_id, attributes, contact_type, category, tags, import_id, source_line)
                 SELECT $1, row.attributes::jsonb, row.contact_type, row.category,
                        ARRAY(SELECT jsonb_array_elements_text(row.tags::jsonb)), $2, row.line
                 FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
                      WITH ORDINALITY AS row(attributes, contact_type, category, tags, line, position)
                 ORDER BY row.position
                 RETURNING contact_id, attributes)
             INSERT INTO contact_keys (account_id, attribute, value, contact_id)
             SELECT $1, key, new_contacts.attributes ->> key, new_contacts.contact_id
             FROM new_contacts CROSS JOIN UNNEST($8::text[]) AS key
             WHERE new_contacts.attributes ? key"
        }
        // Ids come from the live sequence, so "oldest" compares the same way as for real.
        Target::DryRun(_) => {
            "WITH new_contacts AS (
                 INSERT INTO dry_run_contacts (account_id, import_id, contact_id, attributes, contact_type, category, tags)
                 SELECT $1, $2, nextval(pg_get_serial_sequence('contacts', 'contact_id')), row.attributes::jsonb,
                        row.contact_type, row.category, ARRAY(SELECT jsonb_array_elements_text(row.tags::jsonb))
                 FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
                      WITH ORDINALITY AS row(attributes, contact_type, category, tags, line, position)
                 ORDER BY row.position
                 RETURNING contact_id, attributes)
             INSERT INTO dry_run_keys (account_id, import_id, attribute, value, contact_id)
             SELECT $1, $2, key, new_contacts.attributes ->> key, new_contacts.contact_id
             FROM new_contacts CROSS JOIN UNNEST($8::text[]) AS key
             WHERE new_contacts.attributes ? key"
        }
    };
    sqlx::query(sql)
        .bind(account.as_str())
        .bind(import.as_str())
        .bind(&columns.attributes)
        .bind(&columns.contact_types)
        .bind(&columns.categories)
        .bind(&columns.tags)
        .bind(&lines)
        .bind(identifier_keys)
        .execute(connection)
        .await?;
    Ok(())
}

/// Writes the final state of linked contacts and re-derives their match keys (a link may
/// have changed an identifier value).
pub async fn update(
    connection: &mut PgConnection,
    account: &AccountId,
    target: Target<'_>,
    contacts: &[StoredContact],
    identifier_keys: &[String],
) -> anyhow::Result<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let mut columns = StateColumns::default();
    let mut ids = Vec::with_capacity(contacts.len());
    for contact in contacts {
        columns.push(&contact.state)?;
        ids.push(contact.id);
    }
    match target {
        Target::Live => {
            sqlx::query(
                "UPDATE contacts AS c
                 SET attributes = row.attributes::jsonb, contact_type = row.contact_type, category = row.category,
                     tags = ARRAY(SELECT jsonb_array_elements_text(row.tags::jsonb)), updated_at = now()
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
                      AS row(contact_id, attributes, contact_type, category, tags)
                 WHERE c.contact_id = row.contact_id",
            )
            .bind(&ids)
            .bind(&columns.attributes)
            .bind(&columns.contact_types)
            .bind(&columns.categories)
            .bind(&columns.tags)
            .execute(&mut *connection)
            .await?;
            sqlx::query("DELETE FROM contact_keys WHERE contact_id = ANY($1)")
                .bind(&ids)
                .execute(&mut *connection)
                .await?;
            sqlx::query(
                "INSERT INTO contact_keys (account_id, attribute, value, contact_id)
                 SELECT c.account_id, key, c.attributes ->> key, c.contact_id
                 FROM contacts c CROSS JOIN UNNEST($2::text[]) AS key
                 WHERE c.contact_id = ANY($1) AND c.attributes ? key",
            )
            .bind(&ids)
            .bind(identifier_keys)
            .execute(connection)
            .await?;
        }
        Target::DryRun(import) => {
            sqlx::query(
                "INSERT INTO dry_run_contacts (account_id, import_id, contact_id, attributes, contact_type, category, tags)
                 SELECT $6, $7, row.contact_id, row.attributes::jsonb, row.contact_type, row.category,
                        ARRAY(SELECT jsonb_array_elements_text(row.tags::jsonb))
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
                      AS row(contact_id, attributes, contact_type, category, tags)
                 ON CONFLICT (account_id, import_id, contact_id) DO UPDATE
                 SET attributes = EXCLUDED.attributes, contact_type = EXCLUDED.contact_type,
                     category = EXCLUDED.category, tags = EXCLUDED.tags",
            )
            .bind(&ids)
            .bind(&columns.attributes)
            .bind(&columns.contact_types)
            .bind(&columns.categories)
            .bind(&columns.tags)
            .bind(account.as_str())
            .bind(import.as_str())
            .execute(&mut *connection)
            .await?;
            sqlx::query("DELETE FROM dry_run_keys WHERE account_id = $1 AND import_id = $2 AND contact_id = ANY($3)")
                .bind(account.as_str())
                .bind(import.as_str())
                .bind(&ids)
                .execute(&mut *connection)
                .await?;
            sqlx::query(
                "INSERT INTO dry_run_keys (account_id, import_id, attribute, value, contact_id)
                 SELECT d.account_id, d.import_id, key, d.attributes ->> key, d.contact_id
                 FROM dry_run_contacts d CROSS JOIN UNNEST($4::text[]) AS key
                 WHERE d.account_id = $1 AND d.import_id = $2 AND d.contact_id = ANY($3) AND d.attributes ? key",
            )
            .bind(account.as_str())
            .bind(import.as_str())
            .bind(&ids)
            .bind(identifier_keys)
            .execute(connection)
            .await?;
        }
    }
    Ok(())
}

/// Forgets a finished dry run's overlay.
pub async fn discard_dry_run(
    connection: &mut PgConnection,
    account: &str,
    import: &str,
) -> sqlx::Result<()> {
    for table in ["dry_run_keys", "dry_run_contacts"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE account_id = $1 AND import_id = $2"
        ))
        .bind(account)
        .bind(import)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ExportRow {
    contact_id: i64,
    attributes: Json<BTreeMap<String, String>>,
    contact_type: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// One page of the account's contacts after `after_id`, oldest first.
pub async fn export_page(
    connection: &mut PgConnection,
    account: &AccountId,
    after_id: i64,
    limit: u32,
) -> sqlx::Result<Vec<ExportedContact>> {
    let rows: Vec<ExportRow> = sqlx::query_as(
        "SELECT contact_id, attributes, contact_type, category, tags, created_at, updated_at
         FROM contacts WHERE account_id = $1 AND contact_id > $2
         ORDER BY contact_id LIMIT $3",
    )
    .bind(account.as_str())
    .bind(after_id)
    .bind(i64::from(limit))
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ExportedContact {
            id: row.contact_id,
            attributes: row.attributes.0,
            contact_type: row.contact_type,
            category: row.category,
            tags: row.tags,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
        .collect())
}
