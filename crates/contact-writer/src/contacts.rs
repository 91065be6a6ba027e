//! The `contacts` and `contact_keys` tables, written set-based: one statement per step of a
//! chunk, whatever its number of rows.

use std::collections::{BTreeMap, BTreeSet};

use contact_contract::{AccountId, ExportedContact, ImportId};
use contact_core::merge::{ContactState, MatchKey, NewContact, StoredContact};
use sqlx::types::Json;
use sqlx::PgConnection;

#[derive(sqlx::FromRow)]
struct ContactRow {
    contact_id: i64,
    attributes: Json<BTreeMap<String, String>>,
    contact_type: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// Every contact of the account holding any of `keys`, in one query.
pub async fn fetch_by_keys(
    connection: &mut PgConnection,
    account: &AccountId,
    keys: &BTreeSet<MatchKey>,
) -> sqlx::Result<Vec<StoredContact>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (attributes, values): (Vec<&str>, Vec<&str>) = keys
        .iter()
        .map(|key| (key.attribute.as_str(), key.value.as_str()))
        .unzip();
    let rows: Vec<ContactRow> = sqlx::query_as(
        "SELECT c.contact_id, c.attributes, c.contact_type, c.category, c.tags, c.created_at, c.updated_at
         FROM contacts c
         WHERE c.contact_id IN (
             SELECT k.contact_id
             FROM contact_keys k
             JOIN UNNEST($2::text[], $3::text[]) AS wanted(attribute, value)
               ON k.attribute = wanted.attribute AND k.value = wanted.value
             WHERE k.account_id = $1)",
    )
    .bind(account.as_str())
    .bind(attributes)
    .bind(values)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| StoredContact {
            id: row.contact_id,
            state: ContactState {
                values: row.attributes.0,
                contact_type: row.contact_type,
                category: row.category,
                tags: row.tags.into_iter().collect(),
            },
        })
        .collect())
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

/// Inserts the chunk's new contacts and their match keys for every identifier attribute.
pub async fn insert_new(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
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
    sqlx::query(
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
         WHERE new_contacts.attributes ? key",
    )
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
    Ok(())
}

/// One page of the account's contacts after `after_id`, oldest first.
pub async fn export_page(
    connection: &mut PgConnection,
    account: &AccountId,
    after_id: i64,
    limit: u32,
) -> sqlx::Result<Vec<ExportedContact>> {
    let rows: Vec<ContactRow> = sqlx::query_as(
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
