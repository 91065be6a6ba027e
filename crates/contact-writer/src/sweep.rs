//! The sweep: what a crash between a commit and what follows it can leave undone, and the
//! watchdog. Every few seconds each writer completes the imports of its namespace whose lanes
//! are all done, applies the parts parked for lanes that a stopped writer had moved on,
//! publishes summaries a crash held back, clears the overlays of finished dry
//! runs, goes on with undos left halfway, and ends the running imports that made no progress
//! for too long, saying what they were waiting for.
//! Each writer sweeps only the imports of its own namespace, since it publishes their events
//! on its own subjects; deployments may share a database.

use std::sync::Arc;
use std::time::Duration;

use contact_runtime::Shutdown;

use contact_contract::{AccountId, ImportId, ImportState};

use crate::chunk::{self, ChunkApplied, ParkedApplied};
use crate::{closing, history, imports, parking, pipeline, Writer};

/// How long a sweep works on an abandoned undo: the rest of the sweep waits meanwhile.
const UNDO_PER_SWEEP: Duration = Duration::from_secs(5);

/// How long a sweep goes on with the parked parts of one lane: the rest of the sweep waits
/// meanwhile, and the next sweep goes on.
const PARKED_PARTS_PER_LANE: Duration = Duration::from_secs(2);

/// Rows of a finished dry run's overlay deleted per statement, so that clearing a large one
/// never holds a long transaction.
const OVERLAY_ROWS_PER_DELETE: i64 = 10_000;

pub async fn sweep_forever(writer: Arc<Writer>, every: Duration, shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.triggered() => return,
        }
        if let Err(error) = sweep_once(&writer).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "sweep failed; trying again later"
            );
        }
    }
}

async fn sweep_once(writer: &Writer) -> anyhow::Result<()> {
    let mut connection = writer.pool.acquire().await?;
    // Imports whose last part committed but whose completion a crash interrupted.
    let done = imports::select_in_namespace(
        &mut connection,
        &writer.namespace,
        "i.status = 'running' AND i.chunks_total IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM import_lanes l
                         WHERE l.account_id = i.account_id AND l.import_id = i.import_id
                           AND l.next_chunk < i.chunks_total)",
        100,
    )
    .await?;
    // Summaries that a crash kept from going out after their commit.
    let unannounced = imports::select_in_namespace(
        &mut connection,
        &writer.namespace,
        "i.status <> 'running' AND NOT i.summary_published",
        100,
    )
    .await?;
    // The watchdog's.
    let stalled = imports::select_in_namespace(
        &mut connection,
        &writer.namespace,
        &format!(
            "i.status = 'running'
             AND GREATEST(i.updated_at, lanes.updated_at) < now() - interval '{} seconds'",
            writer.stall.as_secs()
        ),
        100,
    )
    .await?;
    drop(connection);
    for row in stalled {
        let reason = format!(
            "no progress for {} while waiting for {}: are the services running?",
            spoken_duration(writer.stall),
            row.waiting_for().unwrap_or_default()
        );
        let ended = async {
            closing::close_running(
                writer,
                &row.account()?,
                &row.import()?,
                ImportState::Failed,
                Some(&reason),
            )
            .await
        };
        if let Err(error) = ended.await {
            tracing::warn!(
                account = row.account_id,
                import = row.import_id,
                error = format!("{error:#}"),
                "the watchdog could not end an import"
            );
        }
    }
    // One import that cannot be handled now must not hold back the others.
    for row in done {
        let completed =
            async { closing::try_complete(writer, &row.account()?, &row.import()?).await };
        if let Err(error) = completed.await {
            tracing::warn!(
                account = row.account_id,
                import = row.import_id,
                error = format!("{error:#}"),
                "sweep could not complete an import"
            );
        }
    }
    for row in unannounced {
        let published = async {
            let mut connection = writer.pool.acquire().await?;
            closing::publish_summary(writer, &mut connection, &row).await
        };
        if let Err(error) = published.await {
            tracing::warn!(
                account = row.account_id,
                import = row.import_id,
                error = format!("{error:#}"),
                "sweep could not publish a summary"
            );
        }
    }
    apply_parked_parts_left_behind(writer).await;
    // An undo that cannot go on now must not keep the overlays from being cleared.
    if let Err(error) = resume_undo(writer).await {
        tracing::warn!(
            error = format!("{error:#}"),
            "sweep could not go on with an undo"
        );
    }
    clear_finished_dry_runs(writer).await
}

/// Applies the parts parked for lanes that have reached them and stood still for a moment: a
/// writer that moved such a lane on stopped before it went on with them, or left them at the
/// end of its time.
async fn apply_parked_parts_left_behind(writer: &Writer) {
    let ready = async {
        let mut connection = writer.pool.acquire().await?;
        anyhow::Ok(
            parking::lanes_with_their_next_part_parked(&mut connection, &writer.namespace, 100)
                .await?,
        )
    };
    let ready = match ready.await {
        Ok(ready) => ready,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "sweep could not look for parked parts"
            );
            return;
        }
    };
    for (account_id, import_id, lane) in ready {
        let applied = async {
            let (account, import) = (
                AccountId::new(account_id.clone())?,
                ImportId::new(import_id.clone())?,
            );
            let lane = lane.max(0) as u32;
            match chunk::apply_parked_parts(writer, &account, &import, lane, PARKED_PARTS_PER_LANE)
                .await?
            {
                ParkedApplied::Lane { lane_done } => {
                    pipeline::after_progress(writer, &account, &import, lane_done).await?
                }
                ParkedApplied::Ended(ChunkApplied::Unwritable(reason)) => {
                    closing::close_running(
                        writer,
                        &account,
                        &import,
                        ImportState::Failed,
                        Some(&reason),
                    )
                    .await?;
                }
                ParkedApplied::Ended(_) => {}
            }
            anyhow::Ok(())
        };
        if let Err(error) = applied.await {
            tracing::warn!(
                account = account_id,
                import = import_id,
                error = format!("{error:#}"),
                "sweep could not apply the parts parked for a lane"
            );
        }
    }
}

/// An undo nobody has moved on for a while (the client that started it went away, or a
/// writer stopped during a batch) goes on here for a bounded time; the one left longest
/// first, the others at later sweeps.
async fn resume_undo(writer: &Writer) -> anyhow::Result<()> {
    let abandoned: Option<(String, String)> = sqlx::query_as(
        "SELECT account_id, import_id FROM imports
         WHERE status = 'undoing' AND (namespace = $1 OR namespace IS NULL)
           AND updated_at < now() - make_interval(secs => $2)
         ORDER BY updated_at LIMIT 1",
    )
    .bind(writer.namespace.name())
    .bind(writer.undo_resume_after.as_secs_f64())
    .fetch_optional(&writer.pool)
    .await?;
    if let Some((account, import)) = abandoned {
        let (account, import) = (AccountId::new(account)?, ImportId::new(import)?);
        history::work_on_undo(writer, &account, &import, UNDO_PER_SWEEP).await?;
    }
    Ok(())
}

/// Deletes the overlays of dry runs that ended, a batch at a time.
async fn clear_finished_dry_runs(writer: &Writer) -> anyhow::Result<()> {
    let finished: Vec<(String, String)> = sqlx::query_as(
        "SELECT account_id, import_id FROM imports
         WHERE overlay_pending AND status <> 'running' AND (namespace = $1 OR namespace IS NULL)
         LIMIT 100",
    )
    .bind(writer.namespace.name())
    .fetch_all(&writer.pool)
    .await?;
    for (account, import) in finished {
        for table in ["dry_run_keys", "dry_run_contacts"] {
            loop {
                let deleted = sqlx::query(&format!(
                    "DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                         SELECT ctid FROM {table} WHERE account_id = $1 AND import_id = $2 LIMIT $3))"
                ))
                .bind(&account)
                .bind(&import)
                .bind(OVERLAY_ROWS_PER_DELETE)
                .execute(&writer.pool)
                .await?
                .rows_affected();
                if deleted < OVERLAY_ROWS_PER_DELETE as u64 {
                    break;
                }
            }
        }
        sqlx::query(
            "UPDATE imports SET overlay_pending = false WHERE account_id = $1 AND import_id = $2",
        )
        .bind(&account)
        .bind(&import)
        .execute(&writer.pool)
        .await?;
    }
    Ok(())
}

/// "90 seconds", "10 minutes": how long, in the words of a failure reason.
fn spoken_duration(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    if seconds < 120 {
        format!("{seconds} seconds")
    } else {
        format!("{} minutes", seconds.div_ceil(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_waits_are_said_in_seconds_and_long_ones_in_minutes() {
        use std::time::Duration;
        assert_eq!(spoken_duration(Duration::from_secs(2)), "2 seconds");
        assert_eq!(spoken_duration(Duration::from_secs(119)), "119 seconds");
        assert_eq!(spoken_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(spoken_duration(Duration::from_secs(610)), "11 minutes");
    }
}
