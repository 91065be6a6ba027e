//! The account's queue of imports (`import_admissions`): whether a new import of an account
//! starts now, waits its turn, or is refused, decided by `contact_core::admission::turn` under
//! a per-account lock, so that requests prepared at the same moment cannot together pass the
//! limit.

use std::time::Duration;

use contact_contract::{AccountId, Admission, ImportId};
use contact_core::admission::{turn, AccountLoad, AdmissionLimits, Turn};
use sqlx::{Acquire as _, PgConnection};

/// A request that has not asked again for this long is forgotten: ingest asks again every few
/// seconds while it waits (`contact_runtime::Outcome::Queued`), so only a request cancelled
/// or ended elsewhere stays away this long.
pub(crate) const FORGOTTEN_AFTER: Duration = Duration::from_secs(120);

/// Decides the turn of `import` of `account`, recording it: an admitted import holds its
/// running place until it runs (or is forgotten), a waiting one its place in the queue.
pub(crate) async fn admit(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    limits: AdmissionLimits,
) -> sqlx::Result<Admission> {
    let mut transaction = connection.begin().await?;
    // One account's admissions one at a time; other accounts are not held up.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('import admission ' || $1, 0))")
        .bind(account.as_str())
        .execute(&mut *transaction)
        .await?;
    sqlx::query(
        "DELETE FROM import_admissions a
         WHERE a.account_id = $1
           AND (a.seen_at < now() - make_interval(secs => $2)
                OR EXISTS (SELECT 1 FROM imports i
                           WHERE i.account_id = a.account_id AND i.import_id = a.import_id))",
    )
    .bind(account.as_str())
    .bind(FORGOTTEN_AFTER.as_secs_f64())
    .execute(&mut *transaction)
    .await?;
    let own: Option<(bool,)> = sqlx::query_as(
        "UPDATE import_admissions SET seen_at = now()
         WHERE account_id = $1 AND import_id = $2
         RETURNING admitted_at IS NOT NULL",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_optional(&mut *transaction)
    .await?;
    if let Some((true,)) = own {
        transaction.commit().await?;
        return Ok(Admission::Start);
    }
    // One statement, so one snapshot: the writers insert running imports without this lock,
    // and an import that began to run between two statements would be counted twice (as
    // running, and as admitted to run), taking a place that is free.
    let (running, admitted, waiting, ahead): (i64, i64, i64, i64) = sqlx::query_as(
        "WITH pending AS (
             SELECT a.import_id, a.requested_at, a.admitted_at
             FROM import_admissions a
             WHERE a.account_id = $1
               AND NOT EXISTS (SELECT 1 FROM imports i
                               WHERE i.account_id = a.account_id AND i.import_id = a.import_id))
         SELECT (SELECT count(*) FROM imports WHERE account_id = $1 AND status = 'running'),
                count(*) FILTER (WHERE admitted_at IS NOT NULL),
                count(*) FILTER (WHERE admitted_at IS NULL AND import_id <> $2),
                count(*) FILTER (WHERE admitted_at IS NULL AND import_id <> $2
                                 AND (requested_at, import_id) < (
                                     SELECT coalesce(max(requested_at), clock_timestamp()), $2
                                     FROM pending WHERE import_id = $2))
         FROM pending",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_one(&mut *transaction)
    .await?;
    let load = AccountLoad {
        running: count(running + admitted),
        waiting: count(waiting),
        ahead: count(ahead),
        queued: own.is_some(),
    };
    let admission = match turn(load, limits) {
        Turn::Start => {
            record(&mut transaction, account, import, true).await?;
            Admission::Start
        }
        Turn::Wait { position } => {
            record(&mut transaction, account, import, false).await?;
            Admission::Queued {
                position,
                reason: format!(
                    "account {account} runs as many imports as it may at once ({}); this one \
                     is number {position} in its queue",
                    limits.running
                ),
            }
        }
        Turn::QueueFull => Admission::Refused {
            reason: format!(
                "account {account} already runs {} imports, as many as it may at once, and \
                 {} more wait, as many as may wait; start this one again when one of them ends",
                limits.running, limits.queued
            ),
        },
    };
    transaction.commit().await?;
    Ok(admission)
}

/// Where `import` stands in its account's queue (1 is next), when it waits there.
pub(crate) async fn position(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM import_admissions o
                 WHERE o.account_id = a.account_id AND o.admitted_at IS NULL
                   AND (o.requested_at, o.import_id) < (a.requested_at, a.import_id)) + 1
         FROM import_admissions a
         WHERE a.account_id = $1 AND a.import_id = $2 AND a.admitted_at IS NULL
           AND a.seen_at >= now() - make_interval(secs => $3)",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(FORGOTTEN_AFTER.as_secs_f64())
    .fetch_optional(connection)
    .await
}

async fn record(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    admitted: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO import_admissions (account_id, import_id, requested_at, seen_at, admitted_at)
         VALUES ($1, $2, clock_timestamp(), now(), CASE WHEN $3 THEN now() END)
         ON CONFLICT (account_id, import_id)
         DO UPDATE SET seen_at = now(),
                       admitted_at = coalesce(import_admissions.admitted_at, EXCLUDED.admitted_at)",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(admitted)
    .execute(connection)
    .await?;
    Ok(())
}

fn count(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}
