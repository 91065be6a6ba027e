//! The `db/` functions against PostgreSQL, each test on a fresh database with the writer's
//! migrations applied (`#[sqlx::test]`; the server is the one `DATABASE_URL` names).

use contact_contract::{
    AccountId, FailedRow, ImportId, ImportRequest, ImportState, MappingPlan, Namespace, RowError,
};
use contact_core::merge::OutcomeCounts;
use sqlx::{Acquire as _, PgConnection, PgPool};

use super::contacts::{self, Target};
use super::imports::{self, LaneAdvance};
use super::{accounts, lanes, row_errors};

fn ids() -> (AccountId, ImportId) {
    (
        AccountId::new("acme").expect("valid account"),
        ImportId::new("imp-1").expect("valid import"),
    )
}

fn namespace() -> Namespace {
    Namespace::new("ci").expect("valid namespace")
}

fn plan() -> MappingPlan {
    MappingPlan {
        header: vec!["email".into()],
        columns: vec![None],
        unmapped_columns: vec!["email".into()],
        match_on: Vec::new(),
        value_maps: Default::default(),
    }
}

/// The request of the test's import, its account created.
async fn account_with_request(connection: &mut PgConnection) -> ImportRequest {
    let (account, import) = ids();
    accounts::ensure_account(connection, &account)
        .await
        .expect("account");
    ImportRequest::known_by_subject(account, import)
}

/// An account with a running import of `lanes` lanes whose file ingest has read to the end,
/// in `chunks_total` chunks.
async fn running_import(pool: &PgPool, lanes: u32, chunks_total: Option<u32>) -> ImportRequest {
    let (account, import) = ids();
    let mut connection = pool.acquire().await.expect("a connection");
    let request = account_with_request(&mut connection).await;
    let new = imports::insert_running(
        &mut connection,
        &namespace(),
        &request,
        &plan(),
        4096,
        lanes,
    )
    .await
    .expect("insert");
    assert!(new);
    if let Some(chunks) = chunks_total {
        imports::set_file_totals(&mut connection, &account, &import, chunks, 10, None)
            .await
            .expect("totals");
    }
    request
}

/// Moves `lane` on by one chunk the way a lane part does, with no contacts, `counts` and
/// `failed_rows` rows that failed.
async fn apply_empty_part(pool: &PgPool, lane: u32, counts: OutcomeCounts, failed_rows: usize) {
    let mut connection = pool.acquire().await.expect("a connection");
    advance_empty(&mut connection, lane, counts, failed_rows).await;
}

/// [`apply_empty_part`] in the caller's connection (or transaction).
async fn advance_empty(
    connection: &mut PgConnection,
    lane: u32,
    counts: OutcomeCounts,
    failed_rows: usize,
) {
    let (account, import) = ids();
    let advance = LaneAdvance {
        lane,
        counts,
        failed_rows,
        end_offset: 100,
    };
    contacts::insert_new_and_advance(
        connection,
        &account,
        &import,
        Target::Live,
        &[],
        &[],
        &advance,
    )
    .await
    .expect("advance");
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn an_import_that_ends_before_it_runs_is_recorded_once(pool: PgPool) {
    let (account, import) = ids();
    let mut connection = pool.acquire().await.expect("a connection");
    let request = account_with_request(&mut connection).await;
    let first = imports::insert_closed(
        &mut connection,
        &namespace(),
        &request,
        ImportState::Failed,
        Some("the header names no column"),
    )
    .await
    .expect("insert");
    let repeat = imports::insert_closed(
        &mut connection,
        &namespace(),
        &request,
        ImportState::Cancelled,
        None,
    )
    .await
    .expect("insert again");
    assert!(first && !repeat);
    let row = imports::load(&mut connection, &account, &import)
        .await
        .expect("load")
        .expect("recorded");
    assert_eq!(row.state(), ImportState::Failed);
    assert_eq!(row.error.as_deref(), Some("the header names no column"));
    assert!(row.finished_at.is_some());
    assert_eq!((row.to_status().rows_total, row.event_sequence()), (0, 1));
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn an_import_is_done_only_once_every_lane_applied_every_chunk(pool: PgPool) {
    let (account, import) = ids();
    running_import(&pool, 2, None).await;
    let done = || async {
        let mut connection = pool.acquire().await.expect("a connection");
        lanes::all_lanes_done(&mut connection, &account, &import)
            .await
            .expect("query")
    };
    assert!(
        !done().await,
        "ingest has not said how many chunks there are"
    );
    imports::set_file_totals(
        &mut pool.acquire().await.expect("a connection"),
        &account,
        &import,
        1,
        3,
        None,
    )
    .await
    .expect("totals");
    assert!(!done().await);
    apply_empty_part(&pool, 0, OutcomeCounts::default(), 0).await;
    assert!(!done().await, "lane 1 has not applied chunk 0");
    apply_empty_part(&pool, 1, OutcomeCounts::default(), 0).await;
    assert!(done().await);
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn an_imports_counters_are_the_sums_of_its_lanes(pool: PgPool) {
    let (account, import) = ids();
    running_import(&pool, 2, Some(2)).await;
    let counts = |created, linked| OutcomeCounts {
        created,
        linked,
        ..OutcomeCounts::default()
    };
    apply_empty_part(&pool, 0, counts(3, 1), 1).await;
    apply_empty_part(&pool, 1, counts(2, 0), 0).await;
    apply_empty_part(&pool, 1, counts(0, 4), 0).await;
    let row = imports::load(
        &mut pool.acquire().await.expect("a connection"),
        &account,
        &import,
    )
    .await
    .expect("load")
    .expect("recorded");
    let status = row.to_status();
    assert_eq!(
        (
            status.created,
            status.linked,
            status.failed,
            status.rows_total
        ),
        (5, 5, 1, 11)
    );
    assert_eq!(row.lane_cursors, [1, 2]);
    assert_eq!(row.event_sequence(), 3, "three lane parts applied");
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn a_lane_part_reads_the_progress_it_commits_and_the_next_reader_of_its_lane_waits(
    pool: PgPool,
) {
    let (account, import) = ids();
    running_import(&pool, 2, Some(4)).await;
    let created = |created| OutcomeCounts {
        created,
        ..OutcomeCounts::default()
    };
    apply_empty_part(&pool, 1, created(2), 0).await;
    let mut connection = pool.acquire().await.expect("a connection");
    let mut transaction = connection.begin().await.expect("begin");
    lanes::lock_lane(&mut transaction, &account, &import, 0)
        .await
        .expect("gate")
        .expect("an open lane");
    advance_empty(&mut transaction, 0, created(3), 1).await;
    let seen = imports::progress_before_commit(&mut transaction, &account, &import)
        .await
        .expect("progress")
        .expect("the import");
    let status = seen.to_status();
    assert_eq!(
        (status.created, status.failed, seen.event_sequence()),
        (5, 1, 2),
        "its own part and the committed one of the other lane"
    );
    assert!(seen.plan.is_none(), "no event shows the plan");
    // Another writer's part of the same lane is turned away until this one commits, so its
    // read comes after this commit and sees it.
    let mut other = pool.acquire().await.expect("a connection");
    let mut waiting = other.begin().await.expect("begin");
    let refused = lanes::lock_lane(&mut waiting, &account, &import, 0).await;
    assert!(
        matches!(&refused, Err(error) if super::is_lock_not_available(error)),
        "{:?}",
        refused.map(|gate| gate.is_some())
    );
    drop(waiting);
    // Nor can a handler borrow the lane's row to read the progress meanwhile.
    let mut borrowing = other.begin().await.expect("begin");
    assert!(
        !lanes::try_lock_lane_row(&mut borrowing, &account, &import, 0)
            .await
            .expect("try")
    );
    drop(borrowing);
    transaction.commit().await.expect("commit");
    let mut borrowing = other.begin().await.expect("begin");
    assert!(
        lanes::try_lock_lane_row(&mut borrowing, &account, &import, 0)
            .await
            .expect("try"),
        "free once the lane's part committed"
    );
    drop(borrowing);
    let after = imports::load(&mut other, &account, &import)
        .await
        .expect("load")
        .expect("the import");
    assert_eq!(after.to_status().created, 5);
    assert_eq!(after.event_sequence(), seen.event_sequence());
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn locking_an_import_closes_its_lanes_to_every_later_part(pool: PgPool) {
    let (account, import) = ids();
    running_import(&pool, 1, Some(3)).await;
    let mut connection = pool.acquire().await.expect("a connection");
    {
        let mut transaction = connection.begin().await.expect("begin");
        let gate = lanes::lock_lane(&mut transaction, &account, &import, 0)
            .await
            .expect("gate")
            .expect("an open lane");
        assert_eq!(gate.next_chunk(), 0);
        assert!(!gate.import_closed());
    }
    {
        let mut transaction = connection.begin().await.expect("begin");
        imports::lock(&mut transaction, &account, &import)
            .await
            .expect("lock")
            .expect("the import");
        imports::set_closed(
            &mut transaction,
            &account,
            &import,
            ImportState::Cancelled,
            None,
        )
        .await
        .expect("close");
        transaction.commit().await.expect("commit");
    }
    let mut transaction = connection.begin().await.expect("begin");
    let gate = lanes::lock_lane(&mut transaction, &account, &import, 0)
        .await
        .expect("gate");
    assert!(gate.is_none(), "a closed import's lane takes no part");
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn row_errors_and_failed_rows_come_back_in_pages_in_file_order(pool: PgPool) {
    let (account, import) = ids();
    running_import(&pool, 1, Some(1)).await;
    let mut connection = pool.acquire().await.expect("a connection");
    let errors: Vec<RowError> = [7u64, 3, 9]
        .into_iter()
        .map(|line| RowError {
            line,
            column: Some("email".into()),
            value: Some(format!("+48 600 000 00{line}")),
            reason: "not an email address".into(),
        })
        .collect();
    row_errors::insert_row_errors(&mut connection, &account, &import, &errors)
        .await
        .expect("errors");
    let first = row_errors::errors_page(&mut connection, &account, &import, 0, 2)
        .await
        .expect("page");
    assert_eq!(first.len(), 2);
    let after = first.last().map(|error| error.error_id).expect("a last");
    let second = row_errors::errors_page(&mut connection, &account, &import, after, 2)
        .await
        .expect("page");
    let lines: Vec<u64> = first
        .into_iter()
        .chain(second)
        .map(|stored| stored.into_row_error().line)
        .collect();
    assert_eq!(lines, [7, 3, 9], "in the order the chunk reported them");

    let failed: Vec<FailedRow> = [5u64, 2]
        .into_iter()
        .map(|line| FailedRow {
            line,
            fields: vec![format!("row {line}"), String::new()],
        })
        .collect();
    row_errors::insert_failed_rows(&mut connection, &account, &import, &failed)
        .await
        .expect("failed rows");
    // A redelivered part writes its failed rows again: they are kept once.
    row_errors::insert_failed_rows(&mut connection, &account, &import, &failed)
        .await
        .expect("failed rows again");
    let page = row_errors::failed_rows_page(&mut connection, &account, &import, 0, 10)
        .await
        .expect("page");
    let lines: Vec<i64> = page.iter().map(|row| row.line).collect();
    assert_eq!(lines, [2, 5]);
    assert_eq!(page[0].fields, ["row 2", ""]);
}

fn text_attribute(key: &str) -> contact_core::mapping::AttributeDef {
    contact_core::mapping::AttributeDef {
        key: key.into(),
        label: key.into(),
        attribute_type: contact_core::mapping::AttributeType::Text,
        required: false,
        identifier: false,
    }
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn an_attribute_is_added_once_flagged_and_removed_with_its_keys(pool: PgPool) {
    let (account, _) = ids();
    let mut connection = pool.acquire().await.expect("a connection");
    let _ = account_with_request(&mut connection).await;
    let loyalty = text_attribute("loyalty");
    let first = accounts::insert_new_attribute(&mut connection, &account, &loyalty).await;
    let again = accounts::insert_new_attribute(&mut connection, &account, &loyalty).await;
    assert_eq!(first.expect("insert"), accounts::Added::Added);
    assert_eq!(again.expect("insert"), accounts::Added::KeyTaken);
    let catalog = accounts::load_attributes(&mut connection, &account)
        .await
        .expect("catalog");
    assert_eq!(
        catalog.last().map(|last| last.key.as_str()),
        Some("loyalty")
    );

    let flagged =
        accounts::set_attribute_flags(&mut connection, &account, "loyalty", None, Some(true))
            .await
            .expect("flags")
            .expect("the attribute exists");
    assert!(flagged.identifier && !flagged.required);
    let identifiers = accounts::identifier_keys(&mut connection, &account)
        .await
        .expect("identifiers");
    assert_eq!(identifiers, ["email", "loyalty"]);
    let missing =
        accounts::set_attribute_flags(&mut connection, &account, "nope", Some(true), None)
            .await
            .expect("flags");
    assert!(missing.is_none());

    assert!(
        accounts::delete_attribute(&mut connection, &account, "loyalty")
            .await
            .expect("delete")
    );
    assert!(
        !accounts::delete_attribute(&mut connection, &account, "loyalty")
            .await
            .expect("delete")
    );
    let identifiers = accounts::identifier_keys(&mut connection, &account)
        .await
        .expect("identifiers");
    assert_eq!(identifiers, ["email"]);
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn an_undo_cursor_exists_only_while_the_import_is_being_undone(pool: PgPool) {
    let request = running_import(&pool, 1, Some(0)).await;
    let (account, import) = (&request.account, &request.import_id);
    let mut connection = pool.acquire().await.expect("a connection");
    assert!(imports::lock_undoing(&mut connection, account, import)
        .await
        .expect("lock")
        .is_none());
    // A running import is not moved to undoing.
    assert!(!imports::mark_undoing(&mut connection, account, import)
        .await
        .expect("mark"));
    let counters = imports::undo_counters(&mut connection, account, import)
        .await
        .expect("counters")
        .expect("the import");
    assert_eq!(counters.status, "running");

    let mut transaction = connection.begin().await.expect("begin");
    imports::lock(&mut transaction, account, import)
        .await
        .expect("lock")
        .expect("the import");
    imports::set_closed(
        &mut transaction,
        account,
        import,
        ImportState::Completed,
        None,
    )
    .await
    .expect("close");
    transaction.commit().await.expect("commit");
    assert!(imports::mark_undoing(&mut connection, account, import)
        .await
        .expect("mark"));
    let cursor = imports::lock_undoing(&mut connection, account, import)
        .await
        .expect("lock")
        .expect("being undone");
    assert_eq!(
        (cursor.undo_restored_through, cursor.undo_next_contact),
        (None, None)
    );
    imports::advance_undo_restore(&mut connection, account, import, 3, 41)
        .await
        .expect("restore");
    imports::advance_undo_removal(&mut connection, account, import, 90, 5, 2)
        .await
        .expect("removal");
    imports::advance_undo_removal(&mut connection, account, import, 95, 4, 0)
        .await
        .expect("removal");
    let cursor = imports::lock_undoing(&mut connection, account, import)
        .await
        .expect("lock")
        .expect("being undone");
    assert_eq!(
        (cursor.undo_restored_through, cursor.undo_next_contact),
        (Some(41), Some(95))
    );
    imports::mark_undone(&mut connection, account, import)
        .await
        .expect("undone");
    let counters = imports::undo_counters(&mut connection, account, import)
        .await
        .expect("counters")
        .expect("the import");
    assert_eq!(
        (
            counters.status.as_str(),
            counters.undo_restored,
            counters.undo_removed,
            counters.undo_kept
        ),
        ("undone", 3, 9, 2)
    );
    assert!(imports::lock_undoing(&mut connection, account, import)
        .await
        .expect("lock")
        .is_none());
}

fn plan_of_header(names: &[&str]) -> MappingPlan {
    MappingPlan {
        header: names.iter().map(|name| (*name).to_owned()).collect(),
        columns: vec![None; names.len()],
        unmapped_columns: names.iter().map(|name| (*name).to_owned()).collect(),
        match_on: Vec::new(),
        value_maps: Default::default(),
    }
}

/// Starts import `import` of `account` (created when new) with `plan`.
async fn start_import(
    connection: &mut PgConnection,
    account: &str,
    import: &str,
    plan: &MappingPlan,
) -> (AccountId, ImportId) {
    let (account, import) = (
        AccountId::new(account).expect("valid account"),
        ImportId::new(import).expect("valid import"),
    );
    accounts::ensure_account(connection, &account)
        .await
        .expect("account");
    let request = ImportRequest::known_by_subject(account.clone(), import.clone());
    let new = imports::insert_running(connection, &namespace(), &request, plan, 4096, 1)
        .await
        .expect("insert");
    assert!(new);
    (account, import)
}

/// The id of the import `latest_with_header` finds for `account` and `names`.
async fn latest_of_header(
    connection: &mut PgConnection,
    account: &str,
    names: &[&str],
) -> Option<String> {
    let account = AccountId::new(account).expect("valid account");
    let header: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    imports::latest_with_header(connection, &account, &header)
        .await
        .expect("query")
        .map(|earlier| earlier.import_id)
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn the_latest_import_of_the_same_columns_is_found_in_any_order(pool: PgPool) {
    let mut connection = pool.acquire().await.expect("a connection");
    let columns = ["email", "Phone", "city"];
    let (acme, first) =
        start_import(&mut connection, "acme", "first", &plan_of_header(&columns)).await;
    let (_, second) =
        start_import(&mut connection, "acme", "second", &plan_of_header(&columns)).await;
    start_import(
        &mut connection,
        "acme",
        "other",
        &plan_of_header(&["email"]),
    )
    .await;
    start_import(
        &mut connection,
        "globex",
        "theirs",
        &plan_of_header(&columns),
    )
    .await;

    let latest = latest_of_header(&mut connection, "acme", &["city", "email", "Phone"]).await;
    assert_eq!(
        latest.as_deref(),
        Some("second"),
        "the latest, whatever the order of the columns"
    );
    for other_columns in [
        &["email", "phone", "city"][..],
        &["email", "Phone"],
        &["email", "Phone", "city", "zip"],
    ] {
        let latest = latest_of_header(&mut connection, "acme", other_columns).await;
        assert_eq!(
            latest, None,
            "names are compared as written: {other_columns:?}"
        );
    }
    assert_eq!(
        latest_of_header(&mut connection, "initech", &columns).await,
        None
    );
    let theirs = latest_of_header(&mut connection, "globex", &columns).await;
    assert_eq!(
        theirs.as_deref(),
        Some("theirs"),
        "each account finds its own"
    );

    // A mapping taken back is not offered again: the one before it is.
    imports::mark_undone(&mut connection, &acme, &second)
        .await
        .expect("undone");
    let latest = latest_of_header(&mut connection, "acme", &columns).await;
    assert_eq!(latest.as_deref(), Some("first"));
    imports::set_closed(&mut connection, &acme, &first, ImportState::Cancelled, None)
        .await
        .expect("cancelled");
    assert_eq!(
        latest_of_header(&mut connection, "acme", &columns).await,
        None
    );
}

/// `migrate` on a database never migrated applies every migration, once; a writer that
/// requires them refuses the database before and starts on it after.
#[sqlx::test(migrations = false)]
async fn migrate_brings_a_fresh_database_to_what_writers_require(
    pool_options: sqlx::postgres::PgPoolOptions,
    connect_options: sqlx::postgres::PgConnectOptions,
) {
    use super::schema::{self, MigrateTimeouts, SchemaState};
    use std::time::Duration;
    let pool = pool_options
        .connect_with(connect_options.clone())
        .await
        .expect("pool");
    let mut connection = pool.acquire().await.expect("connection");
    let state = SchemaState::of(
        &crate::MIGRATOR,
        &schema::applied(&mut connection).await.expect("applied"),
    );
    let SchemaState::Behind { missing } = &state else {
        panic!("a fresh database is behind, got {state:?}");
    };
    assert_eq!(missing.len(), crate::MIGRATOR.iter().count());
    assert!(
        crate::ensure_schema(&pool, crate::MigrationsAtStart::Require)
            .await
            .expect_err("refused")
            .to_string()
            .contains("contact-writer migrate")
    );

    let timeouts = MigrateTimeouts {
        lock: Duration::from_secs(5),
        statement: Duration::from_secs(60),
    };
    let applied = schema::migrate(&crate::MIGRATOR, connect_options.clone(), timeouts)
        .await
        .expect("migrated");
    let every: Vec<i64> = crate::MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .collect();
    assert_eq!(applied, every);
    let again = schema::migrate(&crate::MIGRATOR, connect_options, timeouts)
        .await
        .expect("migrated again");
    assert!(again.is_empty(), "{again:?}");
    crate::ensure_schema(&pool, crate::MigrationsAtStart::Require)
        .await
        .expect("a current schema is accepted");

    // One migration forgotten: refused again, naming it.
    let last = *every.last().expect("migrations");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(last)
        .execute(&mut *connection)
        .await
        .expect("deleted");
    let refusal = crate::ensure_schema(&pool, crate::MigrationsAtStart::Require)
        .await
        .expect_err("refused")
        .to_string();
    assert!(refusal.contains(&last.to_string()), "{refusal}");
}

/// Closes the test's running import as `state`, the way a closer does.
async fn close_import(pool: &PgPool, state: ImportState) {
    let (account, import) = ids();
    let mut transaction = pool.begin().await.expect("begin");
    imports::lock(&mut transaction, &account, &import)
        .await
        .expect("lock")
        .expect("the import");
    imports::set_closed(&mut transaction, &account, &import, state, None)
        .await
        .expect("close");
    transaction.commit().await.expect("commit");
}

/// Moves the import's end (and its undo, when it had one) `hours` into the past.
async fn age_import(pool: &PgPool, hours: i32) {
    let (account, import) = ids();
    sqlx::query(
        "UPDATE imports SET finished_at = finished_at - make_interval(hours => $3),
                undone_at = undone_at - make_interval(hours => $3)
         WHERE account_id = $1 AND import_id = $2",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(hours)
    .execute(pool)
    .await
    .expect("aged");
}

/// Rows the test's import holds in `table`.
async fn rows_of_import(pool: &PgPool, table: &str) -> i64 {
    let (account, import) = ids();
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE account_id = $1 AND import_id = $2"
    ))
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_one(pool)
    .await
    .expect("count")
}

const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

/// The imports whose expired details are still to delete.
async fn details_pending(connection: &mut PgConnection) -> Vec<(String, String)> {
    imports::with_leftover(
        connection,
        &namespace(),
        imports::Leftover::ExpiredDetails,
        10,
    )
    .await
    .expect("pending")
}

/// Marks the test import's expired details deleted, if they are; returns whether it did.
async fn mark_details_cleared(connection: &mut PgConnection) -> bool {
    let (account, import) = ids();
    imports::mark_cleared(
        connection,
        account.as_str(),
        import.as_str(),
        imports::Leftover::ExpiredDetails,
    )
    .await
    .expect("marked")
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn retention_takes_an_old_imports_details_in_batches_and_keeps_its_links(pool: PgPool) {
    let (account, import) = ids();
    running_import(&pool, 1, Some(1)).await;
    let mut connection = pool.acquire().await.expect("a connection");
    let errors: Vec<RowError> = (1..=3u64)
        .map(|line| RowError {
            line,
            column: Some("email".into()),
            value: Some("+48 600 000 000".into()),
            reason: "not an email address".into(),
        })
        .collect();
    row_errors::insert_row_errors(&mut connection, &account, &import, &errors)
        .await
        .expect("errors");
    let failed: Vec<FailedRow> = (1..=3u64)
        .map(|line| FailedRow {
            line,
            fields: vec!["+48 600 000 000".into()],
        })
        .collect();
    row_errors::insert_failed_rows(&mut connection, &account, &import, &failed)
        .await
        .expect("failed rows");
    // What the import changed in two contacts it linked, and a field an undo kept.
    sqlx::query(
        "INSERT INTO import_changes (account_id, import_id, contact_id, values_before,
             values_written, type_changed, category_changed, tags_added)
         SELECT $1, $2, id, '{\"city\": \"Gdańsk\"}', '{\"city\": \"Sopot\"}', false, false, '{}'
         FROM UNNEST(ARRAY[11, 12]::bigint[]) AS id",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .execute(&mut *connection)
    .await
    .expect("changes");
    sqlx::query(
        "INSERT INTO undo_conflicts (account_id, import_id, contact_id, field)
         VALUES ($1, $2, 11, 'type')",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .execute(&mut *connection)
    .await
    .expect("a kept field");
    close_import(&pool, ImportState::Completed).await;

    // Ended just now: kept.
    let claimed = imports::claim_expired_details(&mut connection, &namespace(), HOUR, 10)
        .await
        .expect("claim");
    assert_eq!(claimed, 0);
    age_import(&pool, 2).await;
    // Another namespace's writers keep it: they sweep only their own imports.
    let elsewhere = Namespace::new("elsewhere").expect("valid namespace");
    let claimed = imports::claim_expired_details(&mut connection, &elsewhere, HOUR, 10)
        .await
        .expect("claim");
    assert_eq!(claimed, 0);
    let claimed = imports::claim_expired_details(&mut connection, &namespace(), HOUR, 10)
        .await
        .expect("claim");
    assert_eq!(claimed, 1);
    let row = imports::load(&mut connection, &account, &import)
        .await
        .expect("load")
        .expect("the import stays");
    assert!(row.details_removed_at.is_some());
    assert_eq!(row.state(), ImportState::Completed);
    // Once claimed, it is neither claimed again nor undone.
    let again = imports::claim_expired_details(&mut connection, &namespace(), HOUR, 10)
        .await
        .expect("claim");
    assert_eq!(again, 0);
    assert!(!imports::mark_undoing(&mut connection, &account, &import)
        .await
        .expect("mark"));
    let refusal = super::undo::begin(&pool, &account, &import)
        .await
        .expect_err("refused");
    assert!(
        matches!(refusal, super::undo::UndoRefused::RecordRemoved { .. }),
        "{refusal:?}"
    );
    assert!(refusal.to_string().contains("removed on"), "{refusal}");

    let pending = details_pending(&mut connection).await;
    assert_eq!(pending, [(account.to_string(), import.to_string())]);
    // Marked done too early (another writer's batch came back short): it stays pending.
    assert!(
        !mark_details_cleared(&mut connection).await,
        "rows are left"
    );
    let still = details_pending(&mut connection).await;
    assert_eq!(still.len(), 1, "rows are left: still pending");
    // Two rows per statement: the first batches report more to come.
    let mut batches = 0;
    loop {
        batches += 1;
        let more_errors =
            row_errors::delete_some(&mut connection, account.as_str(), import.as_str(), 2)
                .await
                .expect("delete");
        let more_records =
            super::undo::forget_some(&mut connection, account.as_str(), import.as_str(), 2)
                .await
                .expect("forget");
        if !more_errors && !more_records {
            break;
        }
        assert!(batches < 10, "the deletion ends");
    }
    assert_eq!(batches, 2, "3 rows at 2 a statement");
    for table in [
        "row_errors",
        "failed_rows",
        "import_changes",
        "undo_conflicts",
    ] {
        assert_eq!(rows_of_import(&pool, table).await, 0, "{table}");
    }
    let links: Vec<i64> = sqlx::query_scalar(
        "SELECT contact_id FROM import_links WHERE account_id = $1 AND import_id = $2
         ORDER BY contact_id",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_all(&mut *connection)
    .await
    .expect("links");
    assert_eq!(links, [11, 12], "the contacts it linked stay findable");
    assert!(mark_details_cleared(&mut connection).await);
    let pending = details_pending(&mut connection).await;
    assert!(pending.is_empty());
}

#[sqlx::test(migrator = "crate::MIGRATOR")]
async fn retention_waits_for_an_undo_to_end_and_counts_from_its_end(pool: PgPool) {
    let (account, import) = ids();
    running_import(&pool, 1, Some(1)).await;
    let mut connection = pool.acquire().await.expect("a connection");
    close_import(&pool, ImportState::Completed).await;
    assert!(imports::mark_undoing(&mut connection, &account, &import)
        .await
        .expect("mark"));
    age_import(&pool, 2).await;
    let claimed = imports::claim_expired_details(&mut connection, &namespace(), HOUR, 10)
        .await
        .expect("claim");
    assert_eq!(claimed, 0, "an undo under way keeps its records");

    imports::mark_undone(&mut connection, &account, &import)
        .await
        .expect("undone");
    let claimed = imports::claim_expired_details(&mut connection, &namespace(), HOUR, 10)
        .await
        .expect("claim");
    assert_eq!(claimed, 0, "undone just now: what it kept is still shown");
    age_import(&pool, 2).await;
    let claimed = imports::claim_expired_details(&mut connection, &namespace(), HOUR, 10)
        .await
        .expect("claim");
    assert_eq!(claimed, 1);
}
