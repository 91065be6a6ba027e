//! The typed-table load: the same file into a plain table created for the run, one typed
//! column per file column (text, date, boolean, integer), unique on the email. COPY into
//! staging, then one `INSERT … ON CONFLICT`.
//!
//! A lower bound, not a rival: it validates nothing beyond what a cast needs, normalizes no
//! phone, keeps no match keys, history or progress, and writes one narrow row per contact
//! instead of a jsonb document and its keys. What it costs is about the least that loading this
//! file into PostgreSQL can cost on the machine.

use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection};

use crate::files::{Column, ColumnKind, GeneratedFile};
use crate::plain_sql::{copy_into_staging, email_column};
use crate::services::FreshDatabase;

/// Times the load on a database of its own, created (and dropped) like the pipeline's.
pub async fn timed_on_fresh_database(
    database_url: &str,
    file: &GeneratedFile,
) -> anyhow::Result<Duration> {
    FreshDatabase::around(database_url, |url| async move { timed(&url, file).await }).await
}

async fn timed(database_url: &str, file: &GeneratedFile) -> anyhow::Result<Duration> {
    let mut connection = PgConnection::connect(database_url).await?;
    let columns = file.kind.columns();
    let email = email_column(file)?;
    let definitions: Vec<String> = columns
        .iter()
        .map(|column| match column.kind {
            ColumnKind::Email => format!("{} text PRIMARY KEY", column.name),
            ColumnKind::Text => format!("{} text", column.name),
            ColumnKind::Date => format!("{} date", column.name),
            ColumnKind::Boolean => format!("{} boolean", column.name),
            ColumnKind::Integer => format!("{} integer", column.name),
        })
        .collect();
    sqlx::query(&format!(
        "CREATE TABLE typed_contacts ({})",
        definitions.join(", ")
    ))
    .execute(&mut connection)
    .await?;

    let started = Instant::now();
    copy_into_staging(&mut connection, file).await?;
    let names: Vec<&str> = columns.iter().map(|column| column.name).collect();
    let casts: Vec<String> = columns.iter().map(cast_expression).collect();
    let updates: Vec<String> = columns
        .iter()
        .filter(|column| column.kind != ColumnKind::Email)
        .map(|column| format!("{0} = EXCLUDED.{0}", column.name))
        .collect();
    // A date column is first rewritten to ISO text in a lateral subquery, so its cast reads it
    // once; see `cast_expression`.
    let laterals: String = columns
        .iter()
        .filter(|column| column.kind == ColumnKind::Date)
        .map(|column| {
            format!(
                " CROSS JOIN LATERAL (SELECT {} AS iso_{}) AS iso_{1}",
                iso_date_text(column.name),
                column.name
            )
        })
        .collect();
    // One row per email as in the same-tables path, the last occurrence for the same reason:
    // under `link` a later row's values win.
    sqlx::query(&format!(
        "INSERT INTO typed_contacts ({names})
         SELECT DISTINCT ON (lower(trim({email}))) {casts}
         FROM staging{laterals}
         WHERE nullif(trim({email}), '') IS NOT NULL
         ORDER BY lower(trim({email})), line DESC
         ON CONFLICT ({email}) DO UPDATE SET {updates}",
        names = names.join(", "),
        casts = casts.join(", "),
        updates = updates.join(", "),
    ))
    .execute(&mut connection)
    .await?;
    Ok(started.elapsed())
}

/// The value of a staging column in its typed column. A cast that could fail is made only when
/// the text has the shape the cast accepts, else the value is NULL: the load is one statement,
/// and one bad cell must not abort it (row by row with an exception handler would not be
/// set-based). CASE evaluates its branches only when their condition holds, which is what
/// keeps an impossible cast from running.
fn cast_expression(column: &Column) -> String {
    let name = column.name;
    match column.kind {
        ColumnKind::Email => format!("lower(trim({name}))"),
        ColumnKind::Text => name.to_owned(),
        // Nine digits at most always fit an integer.
        ColumnKind::Integer => {
            format!("CASE WHEN {name} ~ '^\\s*[+-]?[0-9]{{1,9}}\\s*$' THEN trim({name})::integer END")
        }
        // The words the core accepts.
        ColumnKind::Boolean => format!(
            "CASE WHEN lower(trim({name})) IN ('1', 'true', 'yes', 'y', 't', 'tak') THEN true
                  WHEN lower(trim({name})) IN ('0', 'false', 'no', 'n', 'f', 'nie') THEN false END"
        ),
        // The shape says month 01-12 and day 01-31; whether the month has that day (no 31st of
        // February) is asked of the month's last day, computed from its first, which always
        // exists.
        ColumnKind::Date => format!(
            "CASE WHEN iso_{name} ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'
                       AND left(iso_{name}, 4) <> '0000'
                  THEN CASE WHEN substr(iso_{name}, 9, 2)::integer <= extract(day FROM
                                 make_date(left(iso_{name}, 4)::integer, substr(iso_{name}, 6, 2)::integer, 1)
                                 + interval '1 month' - interval '1 day')
                            THEN iso_{name}::date END END"
        ),
    }
}

/// The layouts the core accepts (ISO, `YYYYMMDD`, `D.M.YYYY`) rewritten as `YYYY-MM-DD` text,
/// NULL for anything else.
fn iso_date_text(name: &str) -> String {
    format!(
        "CASE WHEN {name} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' THEN {name}
              WHEN {name} ~ '^[0-9]{{8}}$'
                  THEN substr({name}, 1, 4) || '-' || substr({name}, 5, 2) || '-' || substr({name}, 7, 2)
              WHEN {name} ~ '^[0-9]{{1,2}}\\.[0-9]{{1,2}}\\.[0-9]{{4}}$'
                  THEN split_part({name}, '.', 3) || '-' || lpad(split_part({name}, '.', 2), 2, '0')
                       || '-' || lpad(split_part({name}, '.', 1), 2, '0')
         END"
    )
}
