//! The sweep: what a crash between a commit and what follows it can leave undone, and the
//! watchdog. Every few seconds each writer completes the imports of its namespace whose lanes
//! are all done, applies the parts parked for lanes that a stopped writer had moved on,
//! publishes summaries a crash held back, clears the overlays of finished dry
//! runs, goes on with undos left halfway, removes the details of imports past the retention
//! (`retention`), and ends the running imports that made no progress for too long, saying what
//! they were waiting for.
//! Each writer sweeps only the imports of its own namespace, since it publishes their events
//! on its own subjects; deployments may share a database.

use std::sync::Arc;
use std::time::Duration;

use contact_runtime::Shutdown;

use contact_contract::{AccountId, ImportId, ImportState};

use crate::api::history;
use crate::closing;
use crate::context::Writer;
use crate::db::imports::Leftover;
use crate::db::{contacts, imports, parking, row_errors, undo};
use crate::pipeline;
use crate::pipeline::chunk::{self, ChunkApplied, ParkedApplied};
use crate::retention;

/// How long a sweep works on an abandoned undo: the rest of the sweep waits meanwhile.
const UNDO_PER_SWEEP: Duration = Duration::from_secs(5);

/// How long a sweep goes on with the parked parts of one lane: the rest of the sweep waits
/// meanwhile, and the next sweep goes on.
const PARKED_PARTS_PER_LANE: Duration = Duration::from_secs(2);

/// Rows of what an ended import left (a dry run's overlay, expired details) deleted per
/// statement and table, so that clearing a large one never holds a long transaction.
const LEFTOVER_ROWS_PER_DELETE: i64 = 10_000;

/// How long a sweep goes on deleting leftovers: the rest of the sweep waits meanwhile.
const LEFTOVERS_PER_SWEEP: Duration = Duration::from_secs(2);

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
    let done = imports::done_but_running(&mut connection, &writer.namespace, 100).await?;
    let unannounced = imports::ended_unannounced(&mut connection, &writer.namespace, 100).await?;
    let stalled = imports::stalled(&mut connection, &writer.namespace, writer.stall, 100).await?;
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
    if let Err(error) = retention::claim_expired_details(writer).await {
        tracing::warn!(
            error = format!("{error:#}"),
            "sweep could not take the details of imports past the retention"
        );
    }
    for leftover in [Leftover::DryRunOverlay, Leftover::ExpiredDetails] {
        if let Err(error) = clear_leftovers(writer, leftover).await {
            tracing::warn!(
                error = format!("{error:#}"),
                ?leftover,
                "sweep could not clear what an ended import left"
            );
        }
    }
    Ok(())
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
                ParkedApplied::Lane {
                    lane_done,
                    progress,
                } => {
                    pipeline::after_progress(writer, &account, &import, progress, lane_done).await?
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
    let abandoned = imports::undo_left_alone(
        &mut *writer.pool.acquire().await?,
        &writer.namespace,
        writer.undo_resume_after,
    )
    .await?;
    if let Some((account, import)) = abandoned {
        let (account, import) = (AccountId::new(account)?, ImportId::new(import)?);
        history::work_on_undo(writer, &account, &import, UNDO_PER_SWEEP).await?;
    }
    Ok(())
}

/// Deletes what ended imports left behind (`leftover`: the overlays of dry runs, or the
/// details retention took), a batch per statement, for at most [`LEFTOVERS_PER_SWEEP`]; the
/// next sweep, on any writer of the namespace, goes on.
async fn clear_leftovers(writer: &Writer, leftover: Leftover) -> anyhow::Result<()> {
    let mut connection = writer.pool.acquire().await?;
    let started = std::time::Instant::now();
    let imports_left =
        imports::with_leftover(&mut connection, &writer.namespace, leftover, 100).await?;
    for (account, import) in imports_left {
        while delete_some(&mut connection, leftover, &account, &import).await? {
            if started.elapsed() >= LEFTOVERS_PER_SWEEP {
                return Ok(());
            }
        }
        if imports::mark_cleared(&mut connection, &account, &import, leftover).await? {
            tracing::info!(
                account,
                import,
                ?leftover,
                "deleted what an ended import left"
            );
        }
    }
    Ok(())
}

/// Deletes up to [`LEFTOVER_ROWS_PER_DELETE`] rows of the import's `leftover` from each of
/// its tables; returns whether more may remain.
async fn delete_some(
    connection: &mut sqlx::PgConnection,
    leftover: Leftover,
    account: &str,
    import: &str,
) -> sqlx::Result<bool> {
    let rows = LEFTOVER_ROWS_PER_DELETE;
    match leftover {
        Leftover::DryRunOverlay => {
            contacts::delete_dry_run_overlay(connection, account, import, rows).await
        }
        Leftover::ExpiredDetails => {
            let more_errors = row_errors::delete_some(connection, account, import, rows).await?;
            let more_records = undo::forget_some(connection, account, import, rows).await?;
            Ok(more_errors || more_records)
        }
    }
}

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
