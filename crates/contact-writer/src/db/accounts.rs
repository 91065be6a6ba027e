//! Accounts and their attribute catalogs: an account comes into being on first use, seeded
//! with the standard attributes; attribute flags change the match keys kept for contacts.

use contact_contract::AccountId;
use contact_core::lanes::LANES;
use contact_core::mapping::{standard_attributes, AttributeDef, AttributeType};
use sqlx::{Acquire as _, PgConnection, Row};

/// True when the account exists.
pub async fn exists(connection: &mut PgConnection, account: &AccountId) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE account_id = $1)")
        .bind(account.as_str())
        .fetch_one(connection)
        .await
}

/// How accounts come into being.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccountAdmission {
    /// On first use: for a deployment whose NATS lets each tenant name only its own account,
    /// or a local one.
    Open,
    /// Only through the operator's `accounts.register`.
    Registered,
}

/// Creates the account with the standard attributes unless it exists. Safe under concurrency:
/// the account and its attributes commit together, and the second of two first uses waits on
/// the primary key and then finds the account made, attributes included. (Committed apart,
/// the second could read an account without attributes and refuse a valid import.)
pub async fn ensure_account(
    connection: &mut PgConnection,
    account: &AccountId,
) -> sqlx::Result<()> {
    let mut transaction = connection.begin().await?;
    let created = sqlx::query(
        "INSERT INTO accounts (account_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING account_id",
    )
    .bind(account.as_str())
    .fetch_optional(&mut *transaction)
    .await?;
    if created.is_some() {
        for (position, attribute) in standard_attributes().iter().enumerate() {
            insert_attribute(&mut transaction, account, attribute, position as i32).await?;
        }
        tracing::info!(%account, "account created with the standard attributes");
    }
    transaction.commit().await
}

/// The advisory lock of a lane of an account's contacts, as SQL over the expressions that
/// give the account and the lane: whoever writes a contact whose match key falls in the lane
/// holds it, so that two imports of one account can never both create the same new contact;
/// imports of other accounts, and other lanes, go on.
pub(crate) fn lane_lock(account: &str, lane: &str) -> String {
    format!("hashtextextended('contacts:' || {account} || ':' || {lane}, 0)")
}

/// Waits (within the session's `lock_timeout`) for every lane lock of the account: for
/// changes that touch keys of every lane, such as making an attribute an identifier.
pub async fn lock_all_lanes(
    connection: &mut PgConnection,
    account: &AccountId,
) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "SELECT pg_advisory_xact_lock({}) FROM generate_series(0, $2 - 1) AS lane ORDER BY lane",
        lane_lock("$1", "lane")
    ))
    .bind(account.as_str())
    .bind(LANES as i32)
    .execute(connection)
    .await?;
    Ok(())
}

/// The keys of the account's identifier attributes, in key order.
pub async fn identifier_keys(
    connection: &mut PgConnection,
    account: &AccountId,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT key FROM attributes WHERE account_id = $1 AND identifier ORDER BY key",
    )
    .bind(account.as_str())
    .fetch_all(connection)
    .await
}

pub async fn load_attributes(
    connection: &mut PgConnection,
    account: &AccountId,
) -> sqlx::Result<Vec<AttributeDef>> {
    let rows = sqlx::query(
        "SELECT key, label, attribute_type, allowed_values, required, identifier
         FROM attributes WHERE account_id = $1 ORDER BY position, key",
    )
    .bind(account.as_str())
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|row| {
            let type_name: String = row.try_get("attribute_type")?;
            let allowed_values: Vec<String> = row.try_get("allowed_values")?;
            let attribute_type = match type_name.parse::<AttributeType>() {
                Ok(AttributeType::Enum { .. }) => AttributeType::Enum {
                    values: allowed_values,
                },
                Ok(other) => other,
                Err(error) => return Err(sqlx::Error::Decode(error.into())),
            };
            Ok(AttributeDef {
                key: row.try_get("key")?,
                label: row.try_get("label")?,
                attribute_type,
                required: row.try_get("required")?,
                identifier: row.try_get("identifier")?,
            })
        })
        .collect()
}

/// Whether a new attribute was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// The account has an attribute with that key already.
    KeyTaken,
}

/// Appends an attribute to the account's catalog, after those it has.
pub async fn insert_new_attribute(
    connection: &mut PgConnection,
    account: &AccountId,
    attribute: &AttributeDef,
) -> sqlx::Result<Added> {
    let position: i32 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(position) + 1, 0) FROM attributes WHERE account_id = $1",
    )
    .bind(account.as_str())
    .fetch_one(&mut *connection)
    .await?;
    match insert_attribute(connection, account, attribute, position).await {
        Ok(()) => Ok(Added::Added),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(Added::KeyTaken),
        Err(error) => Err(error),
    }
}

/// Changes the required and identifier flags of attribute `key` (`None`: kept), in the
/// caller's transaction, which holds every lane lock ([`lock_all_lanes`]). Making an attribute
/// an identifier indexes the values existing contacts already hold, so matching on it finds
/// them at once. `None` when the account has no such attribute.
pub async fn set_attribute_flags(
    connection: &mut PgConnection,
    account: &AccountId,
    key: &str,
    required: Option<bool>,
    identifier: Option<bool>,
) -> sqlx::Result<Option<AttributeDef>> {
    let was_identifier: Option<bool> = sqlx::query_scalar(
        "SELECT identifier FROM attributes WHERE account_id = $1 AND key = $2 FOR UPDATE",
    )
    .bind(account.as_str())
    .bind(key)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(was_identifier) = was_identifier else {
        return Ok(None);
    };
    let is_identifier = identifier.unwrap_or(was_identifier);
    sqlx::query(
        "UPDATE attributes SET required = COALESCE($3, required), identifier = $4
         WHERE account_id = $1 AND key = $2",
    )
    .bind(account.as_str())
    .bind(key)
    .bind(required)
    .bind(is_identifier)
    .execute(&mut *connection)
    .await?;
    if is_identifier && !was_identifier {
        sqlx::query(
            "INSERT INTO contact_keys (account_id, attribute, value, contact_id)
             SELECT account_id, $2, attributes ->> $2, contact_id FROM contacts
             WHERE account_id = $1 AND attributes ? $2",
        )
        .bind(account.as_str())
        .bind(key)
        .execute(&mut *connection)
        .await?;
    } else if was_identifier && !is_identifier {
        delete_keys_of(connection, account, key).await?;
    }
    Ok(load_attributes(connection, account)
        .await?
        .into_iter()
        .find(|attribute| attribute.key == key))
}

async fn insert_attribute(
    connection: &mut PgConnection,
    account: &AccountId,
    attribute: &AttributeDef,
    position: i32,
) -> sqlx::Result<()> {
    let allowed_values = match &attribute.attribute_type {
        AttributeType::Enum { values } => values.clone(),
        _ => Vec::new(),
    };
    sqlx::query(
        "INSERT INTO attributes (account_id, key, label, attribute_type, allowed_values, required, identifier, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(account.as_str())
    .bind(&attribute.key)
    .bind(&attribute.label)
    .bind(attribute.attribute_type.to_string())
    .bind(allowed_values)
    .bind(attribute.required)
    .bind(attribute.identifier)
    .bind(position)
    .execute(connection)
    .await?;
    Ok(())
}

/// Removes attribute `key` from the catalog, its values from every contact of the account
/// and its duplicate keys, in the caller's transaction, which holds every lane lock so that
/// no chunk is applied halfway through. False when the account has no such attribute.
pub async fn delete_attribute(
    connection: &mut PgConnection,
    account: &AccountId,
    key: &str,
) -> sqlx::Result<bool> {
    let removed = sqlx::query("DELETE FROM attributes WHERE account_id = $1 AND key = $2")
        .bind(account.as_str())
        .bind(key)
        .execute(&mut *connection)
        .await?;
    if removed.rows_affected() == 0 {
        return Ok(false);
    }
    delete_keys_of(connection, account, key).await?;
    sqlx::query(
        "UPDATE contacts SET attributes = attributes - $2::text
         WHERE account_id = $1 AND attributes ? $2",
    )
    .bind(account.as_str())
    .bind(key)
    .execute(&mut *connection)
    .await?;
    Ok(true)
}

/// Drops the duplicate keys kept for attribute `key`.
async fn delete_keys_of(
    connection: &mut PgConnection,
    account: &AccountId,
    key: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM contact_keys WHERE account_id = $1 AND attribute = $2")
        .bind(account.as_str())
        .bind(key)
        .execute(connection)
        .await?;
    Ok(())
}
