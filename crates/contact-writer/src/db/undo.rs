//! Undoing an ended import, batch by batch: the contacts it linked get back what it changed
//! (`import_changes`, through `contact_core::undo::restore`), then the contacts it created are
//! removed, and the import becomes `undone`.
//!
//! Each batch is one transaction under the import's row lock and every lane lock of the
//! account (no import writes the account's contacts meanwhile), and commits its work with the
//! record of it: restored changes are deleted, and the cursor of each phase moves on. An undo that
//! stops anywhere (a crash, a lost connection, a call that ran out of time) is therefore
//! resumed by whoever runs the next batch, and a batch run twice finds nothing left to do. No
//! batch holds more than `batch` contacts in memory, whatever the import's size.
//!
//! Retention takes these records away from old imports (`forget_some`); such an import is no
//! longer undone.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use contact_contract::{AccountId, ImportId, ImportState};
use contact_core::merge::{key_changes, ContactState, UpdatedContact};
use contact_core::undo::{restore, ChangedField, ImportChange};
use sqlx::types::Json;
use sqlx::{Acquire as _, PgConnection, PgPool};

use super::imports::{self, UndoCursor};
use super::{accounts, contacts};

/// Contacts one batch restores or removes: small enough for a short transaction.
pub const UNDO_BATCH: i64 = 1000;

/// What one batch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// It did a batch; more may remain.
    Worked,
    /// The import is undone (now or before), or not being undone.
    Finished,
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    contact_id: i64,
    values_before: Json<BTreeMap<String, Option<String>>>,
    values_written: Json<BTreeMap<String, String>>,
    type_changed: bool,
    type_before: Option<String>,
    type_written: Option<String>,
    category_changed: bool,
    category_before: Option<String>,
    category_written: Option<String>,
    tags_added: Vec<String>,
}

impl From<ChangeRow> for ImportChange {
    fn from(row: ChangeRow) -> Self {
        let mut before = row.values_before.0;
        ImportChange {
            values: row
                .values_written
                .0
                .into_iter()
                .map(|(key, written)| {
                    let before = before.remove(&key).flatten();
                    (key, (before, written))
                })
                .collect(),
            contact_type: row
                .type_changed
                .then_some((row.type_before, row.type_written)),
            category: row
                .category_changed
                .then_some((row.category_before, row.category_written)),
            tags_added: row.tags_added.into_iter().collect(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct CurrentContact {
    contact_id: i64,
    attributes: Json<BTreeMap<String, String>>,
    contact_type: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
    /// Changed by something after the import ended.
    changed_since: bool,
}

impl CurrentContact {
    fn state(&self) -> ContactState {
        ContactState {
            values: self.attributes.0.clone(),
            contact_type: self.contact_type.clone(),
            category: self.category.clone(),
            tags: self.tags.iter().cloned().collect(),
        }
    }
}

/// Fields an undo left as they were, as parallel columns for `UNNEST`.
#[derive(Default)]
struct ConflictColumns {
    contact_ids: Vec<i64>,
    fields: Vec<String>,
    current: Vec<Option<String>>,
    imported: Vec<Option<String>>,
}

/// How a kept field is stored in `undo_conflicts.field`.
pub fn stored_field(field: &ChangedField) -> String {
    match field {
        ChangedField::Attribute(key) => format!("attribute:{key}"),
        ChangedField::ContactType => "type".to_string(),
        ChangedField::Category => "category".to_string(),
    }
}

/// The `field` of a created contact an undo kept whole.
pub const KEPT_CONTACT: &str = "contact";

/// Runs one batch of the undo of `import`, if it is being undone.
pub async fn run_batch(
    pool: &PgPool,
    account: &AccountId,
    import: &ImportId,
    batch: i64,
) -> anyhow::Result<BatchOutcome> {
    let mut connection = pool.acquire().await?;
    let mut transaction = connection.begin().await?;
    let Some(state) = imports::lock_undoing(&mut transaction, account, import).await? else {
        return Ok(BatchOutcome::Finished);
    };
    accounts::lock_all_lanes(&mut transaction, account).await?;
    let identifier_keys = accounts::identifier_keys(&mut transaction, account).await?;
    // Linked contacts first, then created ones: each batch does one kind of work.
    let worked = restore_batch(
        &mut transaction,
        account,
        import,
        &state,
        &identifier_keys,
        batch,
    )
    .await?
        || remove_batch(
            &mut transaction,
            account,
            import,
            &state,
            &identifier_keys,
            batch,
        )
        .await?;
    let outcome = if worked {
        BatchOutcome::Worked
    } else {
        imports::mark_undone(&mut transaction, account, import).await?;
        tracing::info!(%account, %import, "import undone");
        BatchOutcome::Finished
    };
    transaction.commit().await?;
    Ok(outcome)
}

/// Gives up to `batch` linked contacts back what the import changed; false when none is left.
async fn restore_batch(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    state: &UndoCursor,
    identifier_keys: &[String],
    batch: i64,
) -> anyhow::Result<bool> {
    let changes: Vec<ChangeRow> = sqlx::query_as(
        "SELECT contact_id, values_before, values_written, type_changed, type_before, type_written,
                category_changed, category_before, category_written, tags_added
         FROM import_changes WHERE account_id = $1 AND import_id = $2 AND contact_id > $4
         ORDER BY contact_id LIMIT $3",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(batch)
    .bind(state.undo_restored_through.unwrap_or(i64::MIN))
    .fetch_all(&mut *connection)
    .await?;
    if changes.is_empty() {
        return Ok(false);
    }
    let ids: Vec<i64> = changes.iter().map(|change| change.contact_id).collect();
    let through = ids.last().copied().unwrap_or(i64::MIN);
    let current = lock_contacts(connection, account, &ids, state.finished_at).await?;
    let mut updated = Vec::new();
    let mut conflicts = ConflictColumns::default();
    for change in changes {
        // A contact removed since (an undo of the import that created it) has nothing to restore.
        let Some(contact) = current.get(&change.contact_id) else {
            continue;
        };
        let before = contact.state();
        let restoration = restore(&before, &ImportChange::from(change));
        for kept in restoration.kept {
            conflicts.contact_ids.push(contact.contact_id);
            conflicts.fields.push(stored_field(&kept.field));
            conflicts.current.push(kept.current);
            conflicts.imported.push(kept.written);
        }
        if restoration.state != before {
            updated.push(UpdatedContact {
                id: contact.contact_id,
                before,
                after: restoration.state,
            });
        }
    }
    contacts::update(
        connection,
        account,
        contacts::Target::Live,
        &updated,
        identifier_keys,
        None,
    )
    .await?;
    insert_conflicts(connection, account, import, &conflicts).await?;
    sqlx::query(
        "DELETE FROM import_changes
         WHERE account_id = $1 AND import_id = $2 AND contact_id = ANY($3)",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(&ids)
    .execute(&mut *connection)
    .await?;
    imports::advance_undo_restore(connection, account, import, updated.len() as i64, through)
        .await?;
    Ok(true)
}

/// Deletes contacts ($2) and their keys ($3-$5).
static REMOVE_CONTACTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH gone AS (
             DELETE FROM contacts WHERE account_id = $1 AND contact_id = ANY($2))
         DELETE FROM contact_keys WHERE ctid = ANY({})",
        contacts::exact_keys("contact_keys", "k.account_id = $1", 3)
    )
});

/// Removes up to `batch` contacts the import created, in id order from the cursor, keeping
/// (and reporting) those something changed after the import; false when none is left.
async fn remove_batch(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    state: &UndoCursor,
    identifier_keys: &[String],
    batch: i64,
) -> anyhow::Result<bool> {
    let Some(first) = state.first_contact_id else {
        // It never ran: it created nothing.
        return Ok(false);
    };
    let end = first.saturating_add(contact_core::merge::IdBlock::ids_needed(
        state.bytes_total.unwrap_or(0).max(0) as u64,
    ));
    let from = state.undo_next_contact.unwrap_or(first).max(first);
    // The import's block, read by primary key from the cursor: a batch reads what it removes.
    let created: Vec<CurrentContact> = sqlx::query_as(
        "SELECT contact_id, attributes, contact_type, category, tags,
                COALESCE(updated_at > $5, false) AS changed_since
         FROM contacts
         WHERE account_id = $1 AND contact_id >= $3 AND contact_id < $4 AND import_id = $2
         ORDER BY contact_id LIMIT $6
         FOR UPDATE",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(from)
    .bind(end)
    .bind(state.finished_at)
    .bind(batch)
    .fetch_all(&mut *connection)
    .await?;
    let Some(last) = created.last().map(|contact| contact.contact_id) else {
        return Ok(false);
    };
    let mut removed = Vec::new();
    let (mut key_ids, mut key_attributes, mut key_values) = (Vec::new(), Vec::new(), Vec::new());
    let mut conflicts = ConflictColumns::default();
    let empty = ContactState::default();
    for contact in &created {
        if contact.changed_since {
            conflicts.contact_ids.push(contact.contact_id);
            conflicts.fields.push(KEPT_CONTACT.to_string());
            conflicts.current.push(None);
            conflicts.imported.push(None);
            continue;
        }
        removed.push(contact.contact_id);
        let (gone, _) = key_changes(&contact.state(), &empty, identifier_keys);
        for key in gone {
            key_ids.push(contact.contact_id);
            key_attributes.push(key.attribute);
            key_values.push(key.value);
        }
    }
    // Keys are reached by their full value, as the lookup index holds them.
    sqlx::query(&REMOVE_CONTACTS)
        .bind(account.as_str())
        .bind(&removed)
        .bind(&key_ids)
        .bind(&key_attributes)
        .bind(&key_values)
        .execute(&mut *connection)
        .await?;
    insert_conflicts(connection, account, import, &conflicts).await?;
    imports::advance_undo_removal(
        connection,
        account,
        import,
        last + 1,
        removed.len() as i64,
        conflicts.contact_ids.len() as i64,
    )
    .await?;
    Ok(true)
}

/// Locks and reads the contacts of `ids` that still exist.
async fn lock_contacts(
    connection: &mut PgConnection,
    account: &AccountId,
    ids: &[i64],
    finished_at: Option<DateTime<Utc>>,
) -> sqlx::Result<BTreeMap<i64, CurrentContact>> {
    let rows: Vec<CurrentContact> = sqlx::query_as(
        "SELECT contact_id, attributes, contact_type, category, tags,
                COALESCE(updated_at > $3, false) AS changed_since
         FROM contacts WHERE account_id = $1 AND contact_id = ANY($2)
         ORDER BY contact_id FOR UPDATE",
    )
    .bind(account.as_str())
    .bind(ids)
    .bind(finished_at)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(|row| (row.contact_id, row)).collect())
}

async fn insert_conflicts(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    conflicts: &ConflictColumns,
) -> sqlx::Result<()> {
    if conflicts.contact_ids.is_empty() {
        return Ok(());
    }
    // A batch run again after a crash reports the same fields once.
    sqlx::query(
        "INSERT INTO undo_conflicts (account_id, import_id, contact_id, field, current_value, imported_value)
         SELECT $1, $2, conflict.contact_id, conflict.field, conflict.current_value, conflict.imported_value
         FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[])
              AS conflict(contact_id, field, current_value, imported_value)
         ON CONFLICT DO NOTHING",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(&conflicts.contact_ids)
    .bind(&conflicts.fields)
    .bind(&conflicts.current)
    .bind(&conflicts.imported)
    .execute(connection)
    .await?;
    Ok(())
}

/// Why an import cannot be undone; the caller turns it into the API's answer.
#[derive(Debug, thiserror::Error)]
pub enum UndoRefused {
    #[error("no import {import} in account {account}")]
    NotFound {
        account: AccountId,
        import: ImportId,
    },
    #[error("import {import} is {state}: {reason}")]
    NotUndoable {
        import: ImportId,
        state: &'static str,
        reason: &'static str,
    },
    /// Retention removed the record of what the import changed.
    #[error(
        "import {import} cannot be undone: the record of what it changed was removed on {}, \
         after the time this deployment keeps it (the contacts it created or linked stay, and \
         an export filtered on the import finds them)",
        .removed_at.format("%Y-%m-%d")
    )]
    RecordRemoved {
        import: ImportId,
        removed_at: DateTime<Utc>,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Marks an ended import as being undone, or finds it being undone already (a resumed undo);
/// refuses a running import, a dry run and an undone import, saying why.
pub async fn begin(
    pool: &PgPool,
    account: &AccountId,
    import: &ImportId,
) -> Result<(), UndoRefused> {
    let mut transaction = pool.begin().await?;
    let Some(row) = imports::load(&mut transaction, account, import).await? else {
        return Err(UndoRefused::NotFound {
            account: account.clone(),
            import: import.clone(),
        });
    };
    let state = row.state();
    let refused = |reason| UndoRefused::NotUndoable {
        import: import.clone(),
        state: state.as_str(),
        reason,
    };
    if row.request.0.options.dry_run {
        return Err(refused(
            "a dry run wrote no contact, so there is nothing to undo",
        ));
    }
    match state {
        ImportState::Queued | ImportState::Running => Err(refused(
            "an import is undone once it has ended (cancel it first)",
        )),
        ImportState::Undone => Err(refused("it was undone already")),
        ImportState::Undoing => Ok(()),
        ImportState::Completed | ImportState::Cancelled | ImportState::Failed => {
            let removed = |removed_at| UndoRefused::RecordRemoved {
                import: import.clone(),
                removed_at,
            };
            if let Some(removed_at) = row.details_removed_at {
                return Err(removed(removed_at));
            }
            if imports::mark_undoing(&mut transaction, account, import).await? {
                transaction.commit().await?;
                return Ok(());
            }
            // Moved meanwhile: by another undo (which this call resumes), or by retention.
            transaction.commit().await?;
            let now = imports::load(&mut *pool.acquire().await?, account, import).await?;
            match now.and_then(|row| row.details_removed_at) {
                Some(removed_at) => Err(removed(removed_at)),
                None => Ok(()),
            }
        }
    }
}

/// Removes up to `rows` of the import's undo records from each of their tables: what an
/// undo kept is deleted, and what the import changed in each contact it linked gives way to
/// the bare link, so that the contact stays findable by the import. Returns whether more may
/// remain.
pub async fn forget_some(
    connection: &mut PgConnection,
    account: &str,
    import: &str,
    rows: i64,
) -> sqlx::Result<bool> {
    let kept_deleted =
        super::delete_some_of_import(connection, "undo_conflicts", account, import, rows).await?;
    let changes_forgotten: i64 = sqlx::query_scalar(
        "WITH forgotten AS (
             DELETE FROM import_changes WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM import_changes WHERE account_id = $1 AND import_id = $2
                 LIMIT $3))
             RETURNING account_id, import_id, contact_id),
         linked AS (
             INSERT INTO import_links (account_id, import_id, contact_id)
             SELECT account_id, import_id, contact_id FROM forgotten
             ON CONFLICT DO NOTHING)
         SELECT count(*) FROM forgotten",
    )
    .bind(account)
    .bind(import)
    .bind(rows)
    .fetch_one(connection)
    .await?;
    Ok(kept_deleted >= rows as u64 || changes_forgotten >= rows)
}

/// Runs up to `max_batches` batches of the undo of `import`; returns whether it is undone.
/// Tests use it to stop an undo halfway, as a crash would.
#[doc(hidden)]
pub async fn run_batches(
    pool: &PgPool,
    account: &AccountId,
    import: &ImportId,
    batch: i64,
    max_batches: usize,
) -> anyhow::Result<bool> {
    for _ in 0..max_batches {
        if run_batch(pool, account, import, batch).await? == BatchOutcome::Finished {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How many fields and contacts the import's undo has kept as they were, so far.
pub async fn conflict_count(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM undo_conflicts WHERE account_id = $1 AND import_id = $2",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_one(connection)
    .await
}

/// Up to `limit` conflicts of the import's undo after `(contact id, field)`, in that order:
/// each a contact id, the field, its value now and the value the import wrote.
pub async fn conflicts_page(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    after: (i64, &str),
    limit: u32,
) -> sqlx::Result<Vec<(i64, String, Option<String>, Option<String>)>> {
    sqlx::query_as(
        "SELECT contact_id, field, current_value, imported_value FROM undo_conflicts
         WHERE account_id = $1 AND import_id = $2 AND (contact_id, field) > ($3, $4::text COLLATE \"C\")
         ORDER BY contact_id, field LIMIT $5",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(after.0)
    .bind(after.1)
    .bind(i64::from(limit))
    .fetch_all(connection)
    .await
}
