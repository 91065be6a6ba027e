//! Retention: an import's details (its row errors, its failed rows as the file had them, and
//! its undo records) are kept for a while after it ends, then removed; the import itself, its
//! counters and its contacts stay. The sweep does it in two steps, so that a writer stopping
//! halfway loses nothing it should keep and keeps nothing it should not:
//!
//! 1. it *claims* the imports past the retention: from that commit on their details are
//!    refused by the API with the day they were removed, and they can no longer be undone (an
//!    undo that began first keeps its import until it ends);
//! 2. it deletes what the claimed imports held, as it deletes a dry run's overlay: a batch per
//!    statement and for a bounded time per sweep (`sweep::clear_leftovers`); the next sweep,
//!    on any writer of the namespace, goes on.

use std::time::Duration;

use crate::context::Writer;
use crate::db::imports;

/// Imports claimed per sweep: a backlog (retention turned on over years of imports) drains a
/// hundred imports every few seconds.
const IMPORTS_CLAIMED_PER_SWEEP: i64 = 100;

/// Claims the imports past `writer.retention` (none when it keeps details forever); the
/// sweep then deletes their details as it clears every leftover (`sweep::clear_leftovers`).
pub async fn claim_expired_details(writer: &Writer) -> anyhow::Result<()> {
    if let Some(retention) = writer.retention {
        imports::claim_expired_details(
            &mut *writer.pool.acquire().await?,
            &writer.namespace,
            retention,
            IMPORTS_CLAIMED_PER_SWEEP,
        )
        .await?;
    }
    Ok(())
}

/// The retention `IMPORT_RETENTION_DAYS` asks for: none (details kept forever) at 0.
pub fn retention_of_days(days: u32) -> Option<Duration> {
    (days > 0).then(|| Duration::from_secs(u64::from(days) * 24 * 60 * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_days_keeps_details_forever_and_a_day_is_a_day() {
        assert_eq!(retention_of_days(0), None);
        assert_eq!(retention_of_days(1), Some(Duration::from_secs(86_400)));
        assert_eq!(
            retention_of_days(90),
            Some(Duration::from_secs(90 * 86_400))
        );
    }
}
