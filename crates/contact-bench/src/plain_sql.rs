//! The plain-SQL path into the project's own tables, which the pipeline is measured against:
//! what an engineer would write by hand. COPY the file into a staging table, then one
//! statement that inserts one contact per distinct email into `contacts` (through a unique
//! index on the email of the account) and its match key into `contact_keys`. No validation,
//! no normalization beyond lower-casing and trimming emails. Also owns the staging COPY that
//! the typed-table load shares.

use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection};

use crate::files::{ColumnKind, GeneratedFile};
use crate::services::FreshDatabase;

const ACCOUNT: &str = "plain";

/// Times the path on a database of its own, created (and dropped) like the pipeline's.
pub async fn timed_on_fresh_database(
    database_url: &str,
    file: &GeneratedFile,
) -> anyhow::Result<Duration> {
    FreshDatabase::around(database_url, |url| async move { timed(&url, file).await }).await
}

/// Creates the temporary table `staging` (every column text, plus the file line so the order
/// of the file is known) and copies the file into it; returns the rows copied.
pub async fn copy_into_staging(
    connection: &mut PgConnection,
    file: &GeneratedFile,
) -> anyhow::Result<u64> {
    let columns = file.kind.columns();
    let column_definitions: Vec<String> = columns
        .iter()
        .map(|column| format!("{} text", column.name))
        .collect();
    let column_names: Vec<&str> = columns.iter().map(|column| column.name).collect();
    sqlx::query(&format!(
        "CREATE TEMPORARY TABLE staging (line bigint GENERATED ALWAYS AS IDENTITY, {})",
        column_definitions.join(", ")
    ))
    .execute(&mut *connection)
    .await?;
    let mut copy = connection
        .copy_in_raw(&format!(
            "COPY staging ({}) FROM STDIN (FORMAT csv, HEADER true)",
            column_names.join(", ")
        ))
        .await?;
    copy.read_from(tokio::fs::File::open(&file.path).await?)
        .await?;
    Ok(copy.finish().await?)
}

/// The email column of the file, by which both plain paths keep one row per contact.
pub fn email_column(file: &GeneratedFile) -> anyhow::Result<&'static str> {
    file.kind
        .columns()
        .iter()
        .find(|column| column.kind == ColumnKind::Email)
        .map(|column| column.name)
        .ok_or_else(|| anyhow::anyhow!("the {} file has no email column", file.kind.name()))
}

async fn timed(database_url: &str, file: &GeneratedFile) -> anyhow::Result<Duration> {
    let mut connection = PgConnection::connect(database_url).await?;
    sqlx::query("INSERT INTO accounts (account_id) VALUES ($1)")
        .bind(ACCOUNT)
        .execute(&mut connection)
        .await?;
    sqlx::query(&format!(
        "CREATE UNIQUE INDEX plain_email ON contacts ((attributes ->> 'email')) WHERE account_id = '{ACCOUNT}'"
    ))
    .execute(&mut connection)
    .await?;
    let started = Instant::now();
    let rows = copy_into_staging(&mut connection, file).await?;
    let email = email_column(file)?;
    let attributes: Vec<String> = file
        .kind
        .columns()
        .iter()
        .map(|column| match column.kind {
            ColumnKind::Email => format!("'{0}', lower(trim({0}))", column.name),
            _ => format!("'{0}', {0}", column.name),
        })
        .collect();
    // One row per email, because one INSERT … ON CONFLICT cannot touch a row twice. The LAST
    // occurrence is kept: under the pipeline's default `link` policy a later row's values
    // overwrite an earlier one's, so the last row is what a contact ends up closest to (it
    // misses only cells the last row left empty and an earlier one filled).
    // Ids come from the same blocks the writer takes them from.
    sqlx::query(&format!(
        "WITH block AS (
             UPDATE contact_id_blocks SET next_id = next_id + {rows} RETURNING next_id - {rows} AS first_id),
         last_occurrences AS (
             SELECT DISTINCT ON (lower(trim({email}))) *
             FROM staging
             WHERE nullif(trim({email}), '') IS NOT NULL
             ORDER BY lower(trim({email})), line DESC),
         upserted AS (
             INSERT INTO contacts (contact_id, account_id, attributes)
             SELECT (SELECT first_id FROM block) + row_number() OVER (), '{ACCOUNT}',
                    jsonb_strip_nulls(jsonb_build_object({attributes}))
             FROM last_occurrences
             ON CONFLICT ((attributes ->> 'email')) WHERE account_id = '{ACCOUNT}'
             DO UPDATE SET attributes = contacts.attributes || EXCLUDED.attributes, updated_at = now()
             RETURNING contact_id, attributes ->> 'email' AS email)
         INSERT INTO contact_keys (account_id, attribute, value, contact_id)
         SELECT '{ACCOUNT}', 'email', email, contact_id FROM upserted",
        attributes = attributes.join(", ")
    ))
    .execute(&mut connection)
    .await?;
    Ok(started.elapsed())
}
