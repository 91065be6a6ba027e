//! The match-key lookup reads what its keys need, and nothing more, whatever the planner
//! knows: on a new database (nothing analyzed), on one that holds many contacts in the same
//! account and in others, analyzed or not, with generic and custom plans. Shown by
//! `EXPLAIN (ANALYZE, BUFFERS)` of the statement exactly as the writer runs it.

use std::collections::BTreeSet;

use contact_contract::{AccountId, ImportId};
use contact_core::merge::MatchKey;
use contact_writer::{explain_fetch_by_keys, KeyHolders, Target};
use serde_json::Value;
use sqlx::{Connection as _, PgConnection};

const CONTACTS_PER_ACCOUNT: i64 = 60_000;
const WANTED: usize = 200;

/// A database of its own, so that its tables are new and never analyzed.
struct FreshDatabase {
    name: String,
    url: String,
}

impl FreshDatabase {
    async fn create() -> Self {
        let server = contact_tests::database_url()
            .rsplit_once('/')
            .expect("a database URL")
            .0
            .to_string();
        let name = format!(
            "lookup_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .expect("connecting to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("creating a database");
        let url = format!("{server}/{name}");
        let mut connection = PgConnection::connect(&url).await.expect("connecting");
        contact_writer::MIGRATOR
            .run(&mut connection)
            .await
            .expect("migrations");
        Self { name, url }
    }

    async fn drop(self) {
        let server = self.url.rsplit_once('/').expect("a database URL").0;
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .expect("connecting to PostgreSQL");
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut admin)
            .await
            .expect("dropping the database");
    }
}

/// Stores `count` contacts with emails p0@x.pl, p1@x.pl… in `account`, ids from `first_id`,
/// and as many in the overlay of dry run `import` when given.
async fn fill(
    connection: &mut PgConnection,
    account: &str,
    first_id: i64,
    count: i64,
    dry_run: Option<&str>,
) {
    let (contacts, keys) = match dry_run {
        None => (
            "INSERT INTO contacts (contact_id, account_id, attributes)
             SELECT $2 + g, $1, jsonb_build_object('email', 'p' || g || '@x.pl')
             FROM generate_series(0, $3 - 1) AS g",
            "INSERT INTO contact_keys (account_id, attribute, value, contact_id)
             SELECT $1, 'email', 'p' || g || '@x.pl', $2 + g FROM generate_series(0, $3 - 1) AS g",
        ),
        Some(_) => (
            "INSERT INTO dry_run_contacts (account_id, import_id, contact_id, attributes)
             SELECT $1, $4, $2 + g, jsonb_build_object('email', 'p' || g || '@x.pl')
             FROM generate_series(0, $3 - 1) AS g",
            "INSERT INTO dry_run_keys (account_id, import_id, attribute, value, contact_id)
             SELECT $1, $4, 'email', 'p' || g || '@x.pl', $2 + g FROM generate_series(0, $3 - 1) AS g",
        ),
    };
    for sql in [contacts, keys] {
        sqlx::query(sql)
            .bind(account)
            .bind(first_id)
            .bind(count)
            .bind(dry_run.unwrap_or_default())
            .execute(&mut *connection)
            .await
            .expect("filling");
    }
}

/// Keys of which half exist in a filled account, spread over its whole range, and half do not.
fn wanted_keys() -> BTreeSet<MatchKey> {
    (0..WANTED)
        .map(|index| MatchKey {
            attribute: "email".to_string(),
            value: if index % 2 == 0 {
                format!(
                    "p{}@x.pl",
                    index as i64 * (CONTACTS_PER_ACCOUNT / WANTED as i64)
                )
            } else {
                format!("nobody{index}@x.pl")
            },
        })
        .collect()
}

/// Every scan node of the plan: (node type, relation, rows it returned over all its loops,
/// rows it read and threw away, buffers it touched).
fn scans(node: &Value, found: &mut Vec<(String, String, f64, f64, f64)>) {
    if let Some(relation) = node.get("Relation Name").and_then(Value::as_str) {
        let number = |key: &str| node.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        found.push((
            node["Node Type"].as_str().unwrap_or_default().to_string(),
            relation.to_string(),
            number("Actual Rows") * number("Actual Loops"),
            number("Rows Removed by Filter") + number("Rows Removed by Index Recheck"),
            number("Shared Hit Blocks") + number("Shared Read Blocks"),
        ));
    }
    for child in node
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        scans(child, found);
    }
}

/// Runs the lookup under `EXPLAIN` with generic and with custom plans, and checks that every
/// table is read by index probes, each returning at most what the wanted keys hold.
async fn check_lookup(url: &str, account: &AccountId, target: Target<'_>, situation: &str) {
    let keys = wanted_keys();
    for plan_mode in ["force_generic_plan", "force_custom_plan"] {
        let mut connection = PgConnection::connect(url).await.expect("connecting");
        sqlx::query(&format!("SET plan_cache_mode = {plan_mode}"))
            .execute(&mut connection)
            .await
            .expect("plan mode");
        for holders in [KeyHolders::Oldest, KeyHolders::All] {
            let explained = explain_fetch_by_keys(&mut connection, account, target, &keys, holders)
                .await
                .expect("explain");
            let mut found = Vec::new();
            scans(&explained[0]["Plan"], &mut found);
            let context = format!("{situation}, {plan_mode}, {holders:?}: {found:?}");
            assert!(!found.is_empty(), "{context}");
            let mut buffers = 0.0;
            for (node_type, relation, rows, discarded, touched) in &found {
                assert!(
                    node_type.starts_with("Index"),
                    "{relation} is read by {node_type}: {context}"
                );
                // One holder per wanted key exists in these tables.
                assert!(
                    *rows <= WANTED as f64,
                    "{relation} returned {rows}: {context}"
                );
                assert_eq!(
                    *discarded, 0.0,
                    "{relation} read rows it threw away: {context}"
                );
                buffers += touched;
            }
            // A probe walks an index of a few levels and reads one heap page.
            let probes = (WANTED * found.len()) as f64;
            assert!(buffers <= 6.0 * probes, "{buffers} buffers: {context}");
        }
    }
}

#[tokio::test]
async fn the_key_lookup_probes_only_the_wanted_keys_on_empty_filled_and_analyzed_tables() {
    let database = FreshDatabase::create().await;
    let mut connection = PgConnection::connect(&database.url)
        .await
        .expect("connecting");
    let account = AccountId::new("acme").expect("valid");
    let dry_run = ImportId::new("dry").expect("valid");
    check_lookup(&database.url, &account, Target::Live, "empty").await;
    check_lookup(
        &database.url,
        &account,
        Target::DryRun(&dry_run),
        "empty, dry run",
    )
    .await;

    fill(&mut connection, "acme", 1, CONTACTS_PER_ACCOUNT, None).await;
    fill(
        &mut connection,
        "other",
        1_000_000,
        CONTACTS_PER_ACCOUNT,
        None,
    )
    .await;
    fill(
        &mut connection,
        "acme",
        2_000_000,
        CONTACTS_PER_ACCOUNT / 2,
        Some("dry"),
    )
    .await;
    check_lookup(
        &database.url,
        &account,
        Target::Live,
        "filled, not analyzed",
    )
    .await;
    check_lookup(
        &database.url,
        &account,
        Target::DryRun(&dry_run),
        "filled, not analyzed, dry run",
    )
    .await;

    sqlx::query("ANALYZE")
        .execute(&mut connection)
        .await
        .expect("analyze");
    check_lookup(&database.url, &account, Target::Live, "filled, analyzed").await;
    check_lookup(
        &database.url,
        &account,
        Target::DryRun(&dry_run),
        "filled, analyzed, dry run",
    )
    .await;
    connection.close().await.expect("closing");
    database.drop().await;
}
