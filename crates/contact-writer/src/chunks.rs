//! Applying validated chunks strictly in file order, whichever replica receives them and in
//! whatever order they arrive.
//!
//! A chunk whose turn has come is applied at once; any other waits in `pending_chunks`. Only
//! the holder of the import's *turn* (a session-level advisory lock) applies chunks and
//! publishes the import's events, so events come out in order and each is published after
//! the commit it describes: a client that sees the summary finds every contact written. The
//! holder looks for more work once more after giving the turn back, so a chunk stashed while
//! it held the turn is never left behind; a replica that dies mid-drain is covered by the
//! sweep (its turn ends with its connection).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use contact_contract::{
    AccountId, FailedRow, ImportEventKind, ImportId, ImportState, ValidatedChunk,
};
use contact_core::merge::{match_keys, plan_merge, DuplicatePolicy, MergeOptions};
use contact_core::validate::RowError;
use contact_runtime::Shutdown;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire as _, PgConnection, Postgres};

use crate::contacts::{KeyHolders, Target};
use crate::imports::{self, ImportRow};
use crate::{accounts, contacts, events, Writer};

/// What became of a received chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkDisposition {
    Applied,
    /// Arrived before its turn (or while another replica held the turn): it waits in the table.
    Stashed,
    /// Applied before: a redelivery.
    AlreadyApplied,
    /// The import is over (completed, failed or cancelled): nothing more is written.
    ImportClosed,
    /// The chunk can never be written (its data breaks a database rule): its import failed.
    ImportFailed,
}

/// The right to apply an import's chunks and publish its events: a session-level advisory
/// lock held on a dedicated connection. Dropped without [`ImportTurn::give_back`] (an error
/// path), it closes the connection, which ends the lock.
pub struct ImportTurn {
    connection: Option<PoolConnection<Postgres>>,
    account: AccountId,
    import: ImportId,
}

const TURN_KEY: &str = "hashtextextended('import-turn:' || $1 || '/' || $2, 0)";

impl ImportTurn {
    /// Takes the turn if nobody holds it.
    pub async fn try_take(
        writer: &Writer,
        account: &AccountId,
        import: &ImportId,
    ) -> anyhow::Result<Option<Self>> {
        let mut connection = writer.pool.acquire().await?;
        let taken: bool = sqlx::query_scalar(&format!("SELECT pg_try_advisory_lock({TURN_KEY})"))
            .bind(account.as_str())
            .bind(import.as_str())
            .fetch_one(&mut *connection)
            .await?;
        Ok(taken.then(|| Self::holding(connection, account, import)))
    }

    /// Waits for the turn.
    pub async fn take(
        writer: &Writer,
        account: &AccountId,
        import: &ImportId,
    ) -> anyhow::Result<Self> {
        let mut connection = writer.pool.acquire().await?;
        sqlx::query(&format!("SELECT pg_advisory_lock({TURN_KEY})"))
            .bind(account.as_str())
            .bind(import.as_str())
            .execute(&mut *connection)
            .await?;
        Ok(Self::holding(connection, account, import))
    }

    fn holding(
        connection: PoolConnection<Postgres>,
        account: &AccountId,
        import: &ImportId,
    ) -> Self {
        Self {
            connection: Some(connection),
            account: account.clone(),
            import: import.clone(),
        }
    }

    pub(crate) fn connection(&mut self) -> &mut PgConnection {
        self.connection
            .as_mut()
            .expect("a turn holds its connection until given back")
    }

    pub async fn give_back(mut self) -> anyhow::Result<()> {
        let mut connection = self.connection.take().expect("a turn is given back once");
        sqlx::query(&format!("SELECT pg_advisory_unlock({TURN_KEY})"))
            .bind(self.account.as_str())
            .bind(self.import.as_str())
            .execute(&mut *connection)
            .await?;
        Ok(())
    }
}

impl Drop for ImportTurn {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // Not given back: close the session so that PostgreSQL ends the lock.
            drop(connection.detach());
        }
    }
}

/// Takes one validated chunk: applies it if its turn has come, stashes it otherwise, then
/// applies whatever has become ready. `payload` is the message body, kept for stashing.
pub async fn receive(
    writer: &Writer,
    chunk: &ValidatedChunk,
    payload: &[u8],
) -> anyhow::Result<ChunkDisposition> {
    let (account, import) = (&chunk.account, &chunk.import_id);
    if let Some(row) = imports::load(&mut *writer.pool.acquire().await?, account, import).await? {
        if row.state().is_terminal() {
            return Ok(ChunkDisposition::ImportClosed);
        }
        if i64::from(chunk.chunk_index) < i64::from(row.next_chunk) {
            return Ok(ChunkDisposition::AlreadyApplied);
        }
    }
    let Some(mut turn) = ImportTurn::try_take(writer, account, import).await? else {
        // Another replica is applying this import's chunks; it will find this one.
        stash(&mut *writer.pool.acquire().await?, chunk, payload).await?;
        drain(writer, account, import).await?;
        return Ok(ChunkDisposition::Stashed);
    };
    let disposition = apply_or_stash(writer, &mut turn, chunk, payload).await?;
    drain_holding(writer, &mut turn).await?;
    turn.give_back().await?;
    drain(writer, account, import).await?;
    Ok(disposition)
}

async fn apply_or_stash(
    writer: &Writer,
    turn: &mut ImportTurn,
    chunk: &ValidatedChunk,
    payload: &[u8],
) -> anyhow::Result<ChunkDisposition> {
    let mut transaction = turn.connection().begin().await?;
    let row = imports::lock(&mut transaction, &chunk.account, &chunk.import_id).await?;
    let turn_index = i64::from(chunk.chunk_index);
    match row {
        Some(row) if row.state().is_terminal() => Ok(ChunkDisposition::ImportClosed),
        Some(row) if turn_index < i64::from(row.next_chunk) => Ok(ChunkDisposition::AlreadyApplied),
        Some(row) if turn_index == i64::from(row.next_chunk) => {
            match apply(&mut transaction, &row, chunk).await {
                Ok(applied) => {
                    transaction.commit().await.context("committing the chunk")?;
                    announce(writer, turn.connection(), &applied).await?;
                    Ok(ChunkDisposition::Applied)
                }
                Err(error) if can_never_be_written(&error) => {
                    drop(transaction);
                    fail_for_unwritable_chunk(writer, turn, chunk.chunk_index, &error).await?;
                    Ok(ChunkDisposition::ImportFailed)
                }
                Err(error) => Err(error),
            }
        }
        // Not its turn yet, or the import is not registered yet.
        _ => {
            stash(&mut transaction, chunk, payload).await?;
            transaction.commit().await.context("stashing the chunk")?;
            Ok(ChunkDisposition::Stashed)
        }
    }
}

/// Applies what is ready for the import, if no other replica is doing it already.
pub async fn drain(writer: &Writer, account: &AccountId, import: &ImportId) -> anyhow::Result<()> {
    loop {
        let Some(mut turn) = ImportTurn::try_take(writer, account, import).await? else {
            return Ok(());
        };
        drain_holding(writer, &mut turn).await?;
        turn.give_back().await?;
        // Work may have arrived while we held the turn and its sender found it taken.
        if !work_is_waiting(writer, account, import).await? {
            return Ok(());
        }
    }
}

/// While holding the turn: applies stashed chunks in order, and closes the import when the
/// last one is in.
pub async fn drain_holding(writer: &Writer, turn: &mut ImportTurn) -> anyhow::Result<()> {
    let (account, import) = (turn.account.clone(), turn.import.clone());
    loop {
        let mut transaction = turn.connection().begin().await?;
        let Some(row) = imports::lock(&mut transaction, &account, &import).await? else {
            return Ok(());
        };
        if row.state() != ImportState::Running {
            return Ok(());
        }
        let waiting: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM pending_chunks WHERE account_id = $1 AND import_id = $2 AND chunk_index = $3",
        )
        .bind(account.as_str())
        .bind(import.as_str())
        .bind(row.next_chunk)
        .fetch_optional(&mut *transaction)
        .await?;
        if let Some(payload) = waiting {
            let applied = match read_and_apply(&mut transaction, &row, &payload).await {
                Ok(applied) => applied,
                Err(error) if can_never_be_written(&error) => {
                    drop(transaction);
                    fail_for_unwritable_chunk(writer, turn, row.next_chunk as u32, &error).await?;
                    return Ok(());
                }
                Err(error) => return Err(error),
            };
            sqlx::query("DELETE FROM pending_chunks WHERE account_id = $1 AND import_id = $2 AND chunk_index = $3")
                .bind(account.as_str())
                .bind(import.as_str())
                .bind(row.next_chunk)
                .execute(&mut *transaction)
                .await?;
            transaction
                .commit()
                .await
                .context("committing a stashed chunk")?;
            announce(writer, turn.connection(), &applied).await?;
            continue;
        }
        if row.all_chunks_applied() {
            let completed = finish(&mut transaction, &row, ImportState::Completed, None).await?;
            transaction.commit().await.context("closing the import")?;
            announce(writer, turn.connection(), &completed).await?;
        }
        return Ok(());
    }
}

async fn read_and_apply(
    transaction: &mut PgConnection,
    row: &ImportRow,
    payload: &[u8],
) -> anyhow::Result<ImportRow> {
    let chunk: ValidatedChunk =
        serde_json::from_slice(payload).context("reading a stashed chunk")?;
    apply(transaction, row, &chunk).await
}

/// True for a failure that repeating cannot cure: the chunk's data breaks a limit or a rule
/// of the database (SQLSTATE classes 22, 23 and 54), or a stashed chunk no longer reads.
/// Anything else (a lost connection, a deadlock, a restart) is tried again.
fn can_never_be_written(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if cause.is::<serde_json::Error>() {
            return true;
        }
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .and_then(|database| database.code())
            .is_some_and(|code| matches!(code.get(..2), Some("22" | "23" | "54")))
    })
}

/// Fails the import whose chunk `chunk_index` can never be written, instead of trying it
/// forever while the import waits: what earlier chunks wrote stays, and the reason says
/// which chunk and why.
async fn fail_for_unwritable_chunk(
    writer: &Writer,
    turn: &mut ImportTurn,
    chunk_index: u32,
    error: &anyhow::Error,
) -> anyhow::Result<()> {
    let reason = format!("chunk {chunk_index} of the file could not be written: {error:#}");
    tracing::error!(account = %turn.account, import = %turn.import, reason, "import failed");
    let (account, import) = (turn.account.clone(), turn.import.clone());
    let mut transaction = turn.connection().begin().await?;
    let Some(row) = imports::lock(&mut transaction, &account, &import).await? else {
        return Ok(());
    };
    if row.state() != ImportState::Running {
        return Ok(());
    }
    let failed = finish(&mut transaction, &row, ImportState::Failed, Some(&reason)).await?;
    transaction.commit().await.context("failing the import")?;
    announce(writer, turn.connection(), &failed).await
}

async fn work_is_waiting(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM imports i
             WHERE i.account_id = $1 AND i.import_id = $2 AND i.status = 'running'
               AND (i.next_chunk >= i.chunks_total
                    OR EXISTS (SELECT 1 FROM pending_chunks p
                               WHERE p.account_id = i.account_id AND p.import_id = i.import_id
                                 AND p.chunk_index = i.next_chunk)))",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_one(&writer.pool)
    .await
}

/// Publishes the event for a committed change: the summary once the import is over,
/// progress otherwise. Called only by the turn's holder, after the commit, on the turn's
/// connection: a holder never waits for another connection of the pool.
async fn announce(
    writer: &Writer,
    connection: &mut PgConnection,
    row: &ImportRow,
) -> anyhow::Result<()> {
    if row.state().is_terminal() {
        tracing::info!(account = %row.account_id, import = %row.import_id, rows = row.to_status().rows_total, "import finished");
        publish_summary(writer, connection, row).await
    } else {
        let what = format!("chunk.{}", row.next_chunk - 1);
        events::publish(writer, row, ImportEventKind::Progress, &what).await
    }
}

/// Publishes the summary of a closed import and records that it went out. Safe to repeat:
/// JetStream drops a second summary of the same import.
pub async fn publish_summary(
    writer: &Writer,
    connection: &mut PgConnection,
    row: &ImportRow,
) -> anyhow::Result<()> {
    events::publish(writer, row, ImportEventKind::Summary, "summary").await?;
    imports::mark_summary_published(connection, row).await?;
    Ok(())
}

async fn stash(
    connection: &mut PgConnection,
    chunk: &ValidatedChunk,
    payload: &[u8],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO pending_chunks (account_id, import_id, chunk_index, payload) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(chunk.account.as_str())
    .bind(chunk.import_id.as_str())
    .bind(chunk.chunk_index as i32)
    .bind(payload)
    .execute(connection)
    .await?;
    Ok(())
}

/// Applies one chunk inside the caller's transaction, which holds the import's row lock and
/// is the chunk's turn: contacts, row errors, counters and the next chunk number commit
/// together; when it was the last chunk, the import is closed in the same transaction.
/// Returns the import as it will be after the commit.
async fn apply(
    transaction: &mut PgConnection,
    row: &ImportRow,
    chunk: &ValidatedChunk,
) -> anyhow::Result<ImportRow> {
    let (account, import) = (&chunk.account, &chunk.import_id);
    let request = &row.request.0;
    let match_on = match &row.plan {
        Some(plan) => plan.0.match_on.clone(),
        None => anyhow::bail!("import {import} runs without a mapping plan"),
    };
    let options = MergeOptions {
        policy: request.options.policy,
        match_on,
        contact_type: request.options.contact_type.clone(),
        category: request.options.category.clone(),
        tags: request.options.tags.clone(),
    };
    let target = if request.options.dry_run {
        Target::DryRun(import)
    } else {
        Target::Live
    };
    accounts::lock_account_contacts(transaction, account).await?;
    let identifier_keys = accounts::identifier_keys(transaction, account).await?;
    let keys: BTreeSet<_> = chunk
        .records
        .iter()
        .flat_map(|record| match_keys(&record.values, &options.match_on))
        .collect();
    // Keys of stored contacts change only when a linked row overwrites one matched on another.
    let holders = if options.policy == DuplicatePolicy::Link && options.match_on.len() > 1 {
        KeyHolders::All
    } else {
        KeyHolders::Oldest
    };
    let stored = contacts::fetch_by_keys(transaction, account, target, &keys, holders).await?;
    let merge = plan_merge(&chunk.records, stored, &options);
    contacts::insert_new(
        transaction,
        account,
        import,
        target,
        &merge.new_contacts,
        &identifier_keys,
    )
    .await?;
    contacts::update(
        transaction,
        account,
        target,
        &merge.updated_contacts,
        &identifier_keys,
    )
    .await?;
    insert_row_errors(transaction, account, import, &chunk.errors).await?;
    insert_failed_rows(transaction, account, import, &chunk.failed).await?;
    let applied = imports::record_chunk_applied(
        transaction,
        row,
        &merge.counts,
        chunk.failed.len(),
        chunk.end_offset,
    )
    .await?;
    if applied.all_chunks_applied() {
        Ok(finish(transaction, &applied, ImportState::Completed, None).await?)
    } else {
        Ok(applied)
    }
}

/// Ends a running import (completed, cancelled, or failed for `reason`) in the caller's
/// transaction.
pub async fn finish(
    transaction: &mut PgConnection,
    row: &ImportRow,
    state: ImportState,
    reason: Option<&str>,
) -> sqlx::Result<ImportRow> {
    let finished = imports::finish(transaction, row, state, reason).await?;
    if finished.request.0.options.dry_run {
        contacts::discard_dry_run(transaction, &row.account_id, &row.import_id).await?;
    }
    Ok(finished)
}

async fn insert_failed_rows(
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

async fn insert_row_errors(
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

/// Every `every`, applies chunks left waiting (their receiver stopped before draining),
/// publishes summaries a crash held back, and removes stashed chunks that can never be applied (a redelivery of an applied chunk, or a
/// chunk of a closed import).
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
    let namespace = writer.namespace.name();
    sqlx::query(
        "DELETE FROM pending_chunks p USING imports i
         WHERE p.account_id = i.account_id AND p.import_id = i.import_id AND (i.namespace = $1 OR i.namespace IS NULL)
           AND (i.status <> 'running' OR p.chunk_index < i.next_chunk)",
    )
    .bind(namespace)
    .execute(&writer.pool)
    .await?;
    let ready: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.account_id, i.import_id FROM imports i
         WHERE (i.namespace = $1 OR i.namespace IS NULL) AND i.status = 'running'
           AND (i.next_chunk >= i.chunks_total
                OR EXISTS (SELECT 1 FROM pending_chunks p
                           WHERE p.account_id = i.account_id AND p.import_id = i.import_id
                             AND p.chunk_index = i.next_chunk))",
    )
    .bind(namespace)
    .fetch_all(&writer.pool)
    .await?;
    // One import that cannot be handled now must not hold back the others.
    for (account, import) in ready {
        let (account, import) = (AccountId::new(account)?, ImportId::new(import)?);
        if let Err(error) = drain(writer, &account, &import).await {
            tracing::warn!(%account, %import, error = format!("{error:#}"), "sweep could not apply waiting chunks");
        }
    }
    // Summaries that a crash kept from going out after their commit.
    let unannounced: Vec<ImportRow> = sqlx::query_as(
        "SELECT * FROM imports
         WHERE (namespace = $1 OR namespace IS NULL) AND status <> 'running' AND NOT summary_published
         ORDER BY finished_at LIMIT 100",
    )
    .bind(namespace)
    .fetch_all(&writer.pool)
    .await?;
    for row in unannounced {
        if let Err(error) = republish_summary(writer, &row).await {
            tracing::warn!(account = %row.account_id, import = %row.import_id, error = format!("{error:#}"), "sweep could not publish a summary");
        }
    }
    Ok(())
}

/// Publishes a summary held back by a crash, unless the turn's holder is about to publish it
/// itself (it closed the import a moment ago): the summary must stay the import's last event.
async fn republish_summary(writer: &Writer, row: &ImportRow) -> anyhow::Result<()> {
    let account = AccountId::new(row.account_id.clone())?;
    let import = ImportId::new(row.import_id.clone())?;
    let Some(mut turn) = ImportTurn::try_take(writer, &account, &import).await? else {
        return Ok(());
    };
    let still_due: bool = sqlx::query_scalar(
        "SELECT NOT summary_published FROM imports WHERE account_id = $1 AND import_id = $2",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_one(turn.connection())
    .await?;
    if still_due {
        publish_summary(writer, turn.connection(), row).await?;
    }
    turn.give_back().await
}
