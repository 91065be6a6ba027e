//! The plain-SQL path the pipeline is measured against: what an engineer would write by hand
//! on the same tables. COPY the file into a staging table, then one INSERT … ON CONFLICT into
//! contacts (through a unique index on the email of the account) and one INSERT of the match
//! keys. No per-value validation or normalization beyond lower-casing emails.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection};

use crate::services::FreshDatabase;

const ACCOUNT: &str = "plain";

/// Times the path on a database of its own, created (and dropped) like the pipeline's.
pub async fn timed_on_fresh_database(database_url: &str, file: &Path) -> anyhow::Result<Duration> {
    let database = FreshDatabase::create(database_url).await?;
    let elapsed = timed(&database.url, file).await;
    database.drop().await?;
    elapsed
}

async fn timed(database_url: &str, file: &Path) -> anyhow::Result<Duration> {
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
    sqlx::query(
        "CREATE TEMPORARY TABLE staging (email text, first_name text, last_name text, mobile text,
             city text, company text, birthday text)",
    )
    .execute(&mut connection)
    .await?;
    let mut copy = connection
        .copy_in_raw("COPY staging FROM STDIN (FORMAT csv, HEADER true)")
        .await?;
    copy.read_from(tokio::fs::File::open(file).await?).await?;
    let rows = copy.finish().await?;
    // Ids come from the same blocks the writer takes them from.
    sqlx::query(&format!(
        "WITH block AS (
             UPDATE contact_id_blocks SET next_id = next_id + {rows} RETURNING next_id - {rows} AS first_id),
         upserted AS (
             INSERT INTO contacts (contact_id, account_id, attributes)
             SELECT (SELECT first_id FROM block) + row_number() OVER (), '{ACCOUNT}',
                    jsonb_strip_nulls(jsonb_build_object(
                        'email', lower(trim(email)), 'first_name', first_name, 'last_name', last_name,
                        'mobile', '+48' || mobile, 'city', city, 'company', company, 'birthday', birthday))
             FROM staging
             ON CONFLICT ((attributes ->> 'email')) WHERE account_id = '{ACCOUNT}'
             DO UPDATE SET attributes = contacts.attributes || EXCLUDED.attributes, updated_at = now()
             RETURNING contact_id, attributes ->> 'email' AS email)
         INSERT INTO contact_keys (account_id, attribute, value, contact_id)
         SELECT '{ACCOUNT}', 'email', email, contact_id FROM upserted"
    ))
    .execute(&mut connection)
    .await?;
    Ok(started.elapsed())
}
