//! The writer's only SQL, one file per family of tables. Functions take a connection (or a
//! transaction) and typed values, and return rows as named structs: what to do with them is
//! decided in `pipeline`, `api` and the sweep, which hold no SQL of their own.

pub mod accounts;
pub mod admissions;
pub mod contacts;
pub mod imports;
pub mod lanes;
pub mod parking;
pub mod row_errors;
pub mod schema;
pub mod undo;

#[cfg(test)]
mod tests;

/// Deletes up to `rows` rows of one import from `table` (which has `account_id` and
/// `import_id` columns, leading an index); returns how many went. Large deletions go a batch
/// per statement, so that none holds a long transaction.
async fn delete_some_of_import(
    connection: &mut sqlx::PgConnection,
    table: &str,
    account: &str,
    import: &str,
    rows: i64,
) -> sqlx::Result<u64> {
    Ok(sqlx::query(&format!(
        "DELETE FROM {table} WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM {table} WHERE account_id = $1 AND import_id = $2 LIMIT $3))"
    ))
    .bind(account)
    .bind(import)
    .bind(rows)
    .execute(connection)
    .await?
    .rows_affected())
}

/// A database failure seen by an API caller: worth retrying, details stay in our log.
pub fn unavailable(error: sqlx::Error) -> contact_contract::ApiError {
    tracing::error!(%error, "database error while serving the API");
    contact_contract::ApiError::new(
        contact_contract::ApiErrorKind::Unavailable,
        "the contact base is not available right now",
    )
}

/// True when the statement was refused a lock it asked for with NOWAIT.
pub fn is_lock_not_available(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|database| database.code())
        .is_some_and(|code| code == "55P03")
}

/// True for a failure that repeating cannot cure: the data breaks a limit or a rule of the
/// database (SQLSTATE classes 22, 23 and 54). Anything else (a lost connection, a deadlock,
/// a restart) is tried again.
pub fn can_never_be_written(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .and_then(|database| database.code())
            .is_some_and(|code| matches!(code.get(..2), Some("22" | "23" | "54")))
    })
}
