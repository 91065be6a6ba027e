//! Ending imports: completing one whose every lane is done, failing one for a reason,
//! cancelling one, and announcing the end with the summary. The one place that fails an
//! import: ingest's rejections, unreadable messages and unwritable parts all end here.
//!
//! Closing takes the import's row lock and marks every lane closed, which waits for the lane
//! parts being applied (each holds its lane's row while it commits) and keeps new ones out; the counters read after it are
//! therefore exactly what was written. Completing is tried after every lane's last part and
//! after ingest's `finished`: whichever commits last sees every lane done.

use contact_contract::{AccountId, ImportEventKind, ImportId, ImportRequest, ImportState};
use sqlx::{Acquire as _, PgConnection};

use crate::context::Writer;
use crate::db::imports::{self, ImportRow};
use crate::db::parking;
use crate::db::{accounts, lanes};
use crate::events;

/// Completes the import if every lane has applied every chunk; otherwise does nothing.
pub async fn try_complete(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
) -> anyhow::Result<()> {
    let mut connection = writer.pool.acquire().await?;
    let closed = {
        let mut transaction = connection.begin().await?;
        match imports::lock(&mut transaction, account, import).await? {
            Some(row)
                if row.state() == ImportState::Running
                    && lanes::all_lanes_done(&mut transaction, account, import).await? =>
            {
                imports::set_closed(
                    &mut transaction,
                    account,
                    import,
                    ImportState::Completed,
                    None,
                )
                .await?;
                parking::discard(&mut transaction, account, import).await?;
                transaction.commit().await?;
                true
            }
            _ => false,
        }
    };
    if closed {
        announce(writer, &mut connection, account, import).await?;
    }
    Ok(())
}

/// Ends a running import as `state` (failed for `reason`, or cancelled); what its applied
/// parts wrote stays. Returns the import as it ended, or none when it was not running.
pub async fn close_running(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
    state: ImportState,
    reason: Option<&str>,
) -> anyhow::Result<Option<ImportRow>> {
    let mut connection = writer.pool.acquire().await?;
    {
        let mut transaction = connection.begin().await?;
        match imports::lock(&mut transaction, account, import).await? {
            Some(row) if row.state() == ImportState::Running => {
                imports::set_closed(&mut transaction, account, import, state, reason).await?;
                parking::discard(&mut transaction, account, import).await?;
                transaction.commit().await?;
            }
            _ => return Ok(None),
        }
    }
    if let Some(reason) = reason {
        tracing::warn!(%account, %import, reason, "import ended as {}", state.as_str());
    }
    announce(writer, &mut connection, account, import).await
}

/// Fails the import of `request` for `reason`, whether it runs already or not yet (then it is
/// recorded as failed, and a request that comes later finds it over). An import that is
/// already over stays as it is.
pub async fn fail(writer: &Writer, request: &ImportRequest, reason: &str) -> anyhow::Result<()> {
    let (account, import) = (&request.account, &request.import_id);
    let mut connection = writer.pool.acquire().await?;
    let recorded = {
        let mut transaction = connection.begin().await?;
        accounts::ensure_account(&mut transaction, account).await?;
        let recorded = imports::insert_closed(
            &mut transaction,
            &writer.namespace,
            request,
            ImportState::Failed,
            Some(reason),
        )
        .await?;
        transaction.commit().await?;
        recorded
    };
    if recorded {
        tracing::warn!(%account, %import, reason, "import failed before it ran");
        announce(writer, &mut connection, account, import).await?;
    } else {
        drop(connection);
        close_running(writer, account, import, ImportState::Failed, Some(reason)).await?;
    }
    Ok(())
}

/// Publishes the summary of a closed import and records that it went out. Safe to repeat:
/// JetStream drops a second summary of the same import, and the sweep publishes one that a
/// crash held back.
pub async fn publish_summary(
    writer: &Writer,
    connection: &mut PgConnection,
    row: &ImportRow,
) -> anyhow::Result<()> {
    events::publish(writer, row, ImportEventKind::Summary).await?;
    imports::mark_summary_published(connection, row).await?;
    Ok(())
}

async fn announce(
    writer: &Writer,
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> anyhow::Result<Option<ImportRow>> {
    let Some(row) = imports::load(connection, account, import).await? else {
        return Ok(None);
    };
    tracing::info!(%account, %import, status = row.status, rows = row.to_status().rows_total, "import finished");
    publish_summary(writer, connection, &row).await?;
    Ok(Some(row))
}
