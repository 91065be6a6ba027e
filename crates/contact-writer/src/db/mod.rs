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
