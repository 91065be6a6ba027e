//! `row_errors` and `failed_rows`: why rows of an import could not be imported, and those rows
//! as the file had them. Written with the lane part that carries them (lane 0 of each chunk),
//! read in pages by the API, deleted by retention.

use contact_contract::{AccountId, FailedRow, ImportId, RowError};
use sqlx::PgConnection;

pub async fn insert_failed_rows(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    failed: &[FailedRow],
) -> anyhow::Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = failed.iter().map(|row| row.line as i64).collect();
    // One JSON array per row: UNNEST cannot take an array of arrays of different lengths.
    let fields: Vec<String> = failed
        .iter()
        .map(|row| serde_json::to_string(&row.fields))
        .collect::<Result<_, _>>()?;
    sqlx::query(
        "INSERT INTO failed_rows (account_id, import_id, line, fields)
         SELECT $1, $2, row.line, ARRAY(SELECT jsonb_array_elements_text(row.fields::jsonb))
         FROM UNNEST($3::bigint[], $4::text[]) AS row(line, fields)
         ON CONFLICT DO NOTHING",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(lines)
    .bind(fields)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn insert_row_errors(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    errors: &[RowError],
) -> sqlx::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = errors.iter().map(|error| error.line as i64).collect();
    let columns: Vec<Option<&str>> = errors.iter().map(|error| error.column.as_deref()).collect();
    let values: Vec<Option<&str>> = errors.iter().map(|error| error.value.as_deref()).collect();
    let reasons: Vec<&str> = errors.iter().map(|error| error.reason.as_str()).collect();
    sqlx::query(
        "INSERT INTO row_errors (account_id, import_id, line, column_name, value, reason)
         SELECT $1, $2, error.line, error.column_name, error.value, error.reason
         FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[])
              WITH ORDINALITY AS error(line, column_name, value, reason, position)
         ORDER BY error.position",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(lines)
    .bind(columns)
    .bind(values)
    .bind(reasons)
    .execute(connection)
    .await?;
    Ok(())
}

/// A row error as stored; `error_id` follows file order (chunks are applied in order, each
/// chunk's errors by line), so it pages the errors.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredRowError {
    pub error_id: i64,
    pub line: i64,
    pub column_name: Option<String>,
    pub value: Option<String>,
    pub reason: String,
}

impl StoredRowError {
    pub fn into_row_error(self) -> RowError {
        RowError {
            line: self.line.max(0) as u64,
            column: self.column_name,
            value: self.value,
            reason: self.reason,
        }
    }
}

/// A failed row as the file had it.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredFailedRow {
    pub line: i64,
    pub fields: Vec<String>,
}

/// Up to `limit` row errors of the import after error `after`, in file order.
pub async fn errors_page(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    after: i64,
    limit: u32,
) -> sqlx::Result<Vec<StoredRowError>> {
    sqlx::query_as(
        "SELECT error_id, line, column_name, value, reason FROM row_errors
         WHERE account_id = $1 AND import_id = $2 AND error_id > $3
         ORDER BY error_id LIMIT $4",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(connection)
    .await
}

/// Up to `limit` failed rows of the import after line `after`, in file order.
pub async fn failed_rows_page(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    after: i64,
    limit: u32,
) -> sqlx::Result<Vec<StoredFailedRow>> {
    sqlx::query_as(
        "SELECT line, fields FROM failed_rows
         WHERE account_id = $1 AND import_id = $2 AND line > $3
         ORDER BY line LIMIT $4",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(connection)
    .await
}

/// Every row error of the import on these lines, in file order.
pub async fn errors_on_lines(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    lines: &[i64],
) -> sqlx::Result<Vec<StoredRowError>> {
    sqlx::query_as(
        "SELECT error_id, line, column_name, value, reason FROM row_errors
         WHERE account_id = $1 AND import_id = $2 AND line = ANY($3)
         ORDER BY error_id",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(lines)
    .fetch_all(connection)
    .await
}

/// Deletes up to `rows` of the import's row errors and as many of its failed rows; returns
/// whether either may hold more.
pub async fn delete_some(
    connection: &mut PgConnection,
    account: &str,
    import: &str,
    rows: i64,
) -> sqlx::Result<bool> {
    let mut more = false;
    for table in ["row_errors", "failed_rows"] {
        more |= super::delete_some_of_import(connection, table, account, import, rows).await?
            >= rows as u64;
    }
    Ok(more)
}
