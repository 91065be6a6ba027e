//! The `contacts` and `contact_keys` tables (and a dry run's overlay of them), written
//! set-based: one statement per step of a chunk lane, whatever its number of rows.
//!
//! **A statement of the data path costs what its input costs.** The key lookup probes the
//! index once per wanted key, in a `LATERAL` subquery with a `LIMIT`: PostgreSQL cannot
//! flatten such a subquery into a join, so it cannot choose to read an account's whole key
//! range and hash it, whatever its statistics say and whether the plan is generic or custom.
//! Writes name their rows by primary key.
//!
//! A dry run writes what it would create or change into `dry_run_contacts` and `dry_run_keys`
//! instead; its later rows see those rows in place of the live ones, so its counters and row
//! errors are the ones the real import would produce, and the live tables stay untouched.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::LazyLock;

use contact_contract::{AccountId, ContactFilter, ExportedContact, ImportId};
use contact_core::merge::{
    key_changes, ContactState, MatchKey, NewContact, StoredContact, UpdatedContact,
};
use contact_core::undo::ImportChange;
use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryAs};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres};

use super::imports::LaneAdvance;

/// Where a chunk's contacts go.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Live,
    DryRun(&'a ImportId),
}

/// Where the changes an import makes to contacts it links are recorded (`import_changes`),
/// so that it can be undone: in the statement that changes them.
#[derive(Debug, Clone)]
pub struct ChangeLog<'a> {
    pub import: &'a ImportId,
    /// The import's block of contact ids: contacts it created need no record.
    pub own_ids: Range<i64>,
}

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

/// A group of parallel columns bound as consecutive parameters, in the order its fields are
/// declared: the statements below name each group's first parameter, and the group alone
/// knows the order of the rest, so no call site lists a long run of positional binds.
trait BindColumns {
    fn bind_to<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q>;
}

/// An import's changes as parallel columns for `UNNEST` (ten parameters).
#[derive(Default)]
struct ChangeColumns {
    contact_ids: Vec<i64>,
    values_before: Vec<String>,
    values_written: Vec<String>,
    type_changed: Vec<bool>,
    type_before: Vec<Option<String>>,
    type_written: Vec<Option<String>>,
    category_changed: Vec<bool>,
    category_before: Vec<Option<String>>,
    category_written: Vec<Option<String>>,
    tags_added: Vec<String>,
}

impl ChangeColumns {
    fn push(&mut self, contact_id: i64, change: ImportChange) -> serde_json::Result<()> {
        let (before, written): (BTreeMap<&str, Option<&str>>, BTreeMap<&str, &str>) = change
            .values
            .iter()
            .map(|(key, (before, written))| {
                (
                    (key.as_str(), before.as_deref()),
                    (key.as_str(), written.as_str()),
                )
            })
            .unzip();
        self.contact_ids.push(contact_id);
        self.values_before.push(serde_json::to_string(&before)?);
        self.values_written.push(serde_json::to_string(&written)?);
        let (type_changed, (type_before, type_written)) = match change.contact_type {
            Some(pair) => (true, pair),
            None => (false, (None, None)),
        };
        self.type_changed.push(type_changed);
        self.type_before.push(type_before);
        self.type_written.push(type_written);
        let (category_changed, (category_before, category_written)) = match change.category {
            Some(pair) => (true, pair),
            None => (false, (None, None)),
        };
        self.category_changed.push(category_changed);
        self.category_before.push(category_before);
        self.category_written.push(category_written);
        self.tags_added
            .push(serde_json::to_string(&change.tags_added)?);
        Ok(())
    }
}

impl BindColumns for ChangeColumns {
    fn bind_to<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.contact_ids)
            .bind(&self.values_before)
            .bind(&self.values_written)
            .bind(&self.type_changed)
            .bind(&self.type_before)
            .bind(&self.type_written)
            .bind(&self.category_changed)
            .bind(&self.category_before)
            .bind(&self.category_written)
            .bind(&self.tags_added)
    }
}

/// The new state of changed contacts as parallel columns (five parameters).
#[derive(Default)]
struct StateColumns<'a> {
    contact_ids: Vec<i64>,
    attributes: Vec<String>,
    contact_types: Vec<Option<&'a str>>,
    categories: Vec<Option<&'a str>>,
    tags: Vec<String>,
}

impl<'a> StateColumns<'a> {
    fn push(&mut self, contact_id: i64, state: &'a ContactState) -> serde_json::Result<()> {
        self.contact_ids.push(contact_id);
        self.attributes.push(serde_json::to_string(&state.values)?);
        self.contact_types.push(state.contact_type.as_deref());
        self.categories.push(state.category.as_deref());
        self.tags.push(serde_json::to_string(&state.tags)?);
        Ok(())
    }
}

impl BindColumns for StateColumns<'_> {
    fn bind_to<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.contact_ids)
            .bind(&self.attributes)
            .bind(&self.contact_types)
            .bind(&self.categories)
            .bind(&self.tags)
    }
}

/// Which contacts holding a match key a chunk needs to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHolders {
    /// Every holder: a linked row may change another key of the contact it matches, and the
    /// next holder of the old value becomes the oldest one.
    All,
    /// The oldest holder of each key, which is all the merge rule looks at when stored keys
    /// cannot change within the import. Keeps the lookup small when `duplicate` has made many
    /// contacts share an email.
    Oldest,
}

#[derive(sqlx::FromRow)]
struct ContactRow {
    contact_id: i64,
    attributes: Json<BTreeMap<String, String>>,
    contact_type: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
}

impl From<ContactRow> for StoredContact {
    fn from(row: ContactRow) -> Self {
        StoredContact {
            id: row.contact_id,
            state: ContactState {
                values: row.attributes.0,
                contact_type: row.contact_type,
                category: row.category,
                tags: row.tags.into_iter().collect(),
            },
        }
    }
}

/// The live holders of each wanted key ($2 attributes, $3 values) of account $1: the key
/// index probed once per key, up to $4 holders each (NULL: all), oldest first, and each
/// holder's contact by its id, as `holder` and `c`.
const LIVE_HOLDERS: &str = "
    FROM UNNEST($2::text[], $3::text[]) AS wanted(attribute, value)
    CROSS JOIN LATERAL (
        SELECT k.contact_id FROM contact_keys k
        WHERE k.account_id = $1 AND k.attribute = wanted.attribute AND k.value = wanted.value
        ORDER BY k.contact_id
        LIMIT $4) AS holder
    CROSS JOIN LATERAL (
        SELECT c.contact_id, c.attributes, c.contact_type, c.category, c.tags
        FROM contacts c WHERE c.account_id = $1 AND c.contact_id = holder.contact_id
        LIMIT 1) AS c";

static LIVE_LOOKUP: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT c.contact_id, c.attributes, c.contact_type, c.category, c.tags {LIVE_HOLDERS}")
});

/// The same for a dry run ($5 its import id): the holders in its overlay, then the live
/// holders as the overlay has changed them.
static DRY_RUN_LOOKUP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT d.contact_id, d.attributes, d.contact_type, d.category, d.tags
         FROM UNNEST($2::text[], $3::text[]) AS wanted(attribute, value)
         CROSS JOIN LATERAL (
             SELECT k.contact_id FROM dry_run_keys k
             WHERE k.account_id = $1 AND k.import_id = $5
               AND k.attribute = wanted.attribute AND k.value = wanted.value
             ORDER BY k.contact_id
             LIMIT $4) AS holder
         CROSS JOIN LATERAL (
             SELECT d.contact_id, d.attributes, d.contact_type, d.category, d.tags
             FROM dry_run_contacts d
             WHERE d.account_id = $1 AND d.import_id = $5 AND d.contact_id = holder.contact_id
             LIMIT 1) AS d
         UNION ALL
         SELECT c.contact_id, COALESCE(o.attributes, c.attributes),
                CASE WHEN o.contact_id IS NULL THEN c.contact_type ELSE o.contact_type END,
                CASE WHEN o.contact_id IS NULL THEN c.category ELSE o.category END,
                COALESCE(o.tags, c.tags)
         {LIVE_HOLDERS}
         LEFT JOIN LATERAL (
             SELECT o.contact_id, o.attributes, o.contact_type, o.category, o.tags
             FROM dry_run_contacts o
             WHERE o.account_id = $1 AND o.import_id = $5 AND o.contact_id = holder.contact_id
             LIMIT 1) AS o ON true"
    )
});

fn lookup_query<'q, Row>(
    sql: &'q str,
    account: &'q AccountId,
    target: Target<'q>,
    keys: &BTreeSet<MatchKey>,
    holders: KeyHolders,
) -> QueryAs<'q, Postgres, Row, PgArguments>
where
    Row: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    let (attributes, values): (Vec<String>, Vec<String>) = keys
        .iter()
        .map(|key| (key.attribute.clone(), key.value.clone()))
        .unzip();
    let limit = match holders {
        KeyHolders::Oldest => Some(1_i64),
        KeyHolders::All => None,
    };
    let query = sqlx::query_as(sql)
        .bind(account.as_str())
        .bind(attributes)
        .bind(values)
        .bind(limit);
    match target {
        Target::Live => query,
        Target::DryRun(import) => query.bind(import.as_str()),
    }
}

fn lookup_sql(target: Target<'_>) -> &'static str {
    match target {
        Target::Live => &LIVE_LOOKUP,
        Target::DryRun(_) => &DRY_RUN_LOOKUP,
    }
}

/// The contacts of the account holding any of `keys` (each once). For a dry run, its overlay
/// version of a contact replaces the live one.
pub async fn fetch_by_keys(
    connection: &mut PgConnection,
    account: &AccountId,
    target: Target<'_>,
    keys: &BTreeSet<MatchKey>,
    holders: KeyHolders,
) -> sqlx::Result<Vec<StoredContact>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ContactRow> = lookup_query(lookup_sql(target), account, target, keys, holders)
        .fetch_all(connection)
        .await?;
    // A contact may hold several wanted keys, and a dry run may see one twice (overlay and
    // live): the overlay's version, which comes first, is the one that counts.
    let mut contacts: BTreeMap<i64, StoredContact> = BTreeMap::new();
    for row in rows {
        contacts
            .entry(row.contact_id)
            .or_insert_with(|| StoredContact::from(row));
    }
    Ok(contacts.into_values().collect())
}

/// `EXPLAIN (ANALYZE, FORMAT JSON)` of the lookup [`fetch_by_keys`] runs, with the same
/// parameters: lets a test show what the statement reads on a given database.
#[doc(hidden)]
pub async fn explain_fetch_by_keys(
    connection: &mut PgConnection,
    account: &AccountId,
    target: Target<'_>,
    keys: &BTreeSet<MatchKey>,
    holders: KeyHolders,
) -> sqlx::Result<serde_json::Value> {
    let sql = format!(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
        lookup_sql(target)
    );
    let (plan,): (Json<serde_json::Value>,) = lookup_query(&sql, account, target, keys, holders)
        .fetch_one(connection)
        .await?;
    Ok(plan.0)
}

/// Match keys as three parallel columns for `UNNEST` (three parameters).
#[derive(Default)]
struct KeyColumns {
    contact_ids: Vec<i64>,
    attributes: Vec<String>,
    values: Vec<String>,
}

impl KeyColumns {
    fn push(&mut self, contact_id: i64, key: MatchKey) {
        self.contact_ids.push(contact_id);
        self.attributes.push(key.attribute);
        self.values.push(key.value);
    }
}

impl BindColumns for KeyColumns {
    fn bind_to<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.contact_ids)
            .bind(&self.attributes)
            .bind(&self.values)
    }
}

/// New contacts of one import as parallel columns (three parameters); their type, category
/// and tags are the import's, bound once.
#[derive(Default)]
struct NewColumns {
    contact_ids: Vec<i64>,
    attributes: Vec<String>,
    lines: Vec<i64>,
}

impl BindColumns for NewColumns {
    fn bind_to<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.contact_ids)
            .bind(&self.attributes)
            .bind(&self.lines)
    }
}

/// The lane and its counters, in [`ADVANCE_LANE`]'s order (seven parameters).
impl BindColumns for LaneAdvance {
    fn bind_to<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(self.lane as i32)
            .bind(self.counts.created as i64)
            .bind(self.counts.linked as i64)
            .bind(self.counts.duplicated as i64)
            .bind(self.counts.skipped as i64)
            .bind(self.failed_rows as i64)
            .bind(self.end_offset as i64)
    }
}

/// Moves lane $12 of import $2 of account $1 on, with its counters: the tail of the insert.
const ADVANCE_LANE: &str = "
    UPDATE import_lanes SET next_chunk = next_chunk + 1,
        created = created + $13, linked = linked + $14, duplicated = duplicated + $15,
        skipped = skipped + $16, failed = failed + $17, bytes_done = GREATEST(bytes_done, $18),
        updated_at = now()
    WHERE account_id = $1 AND import_id = $2 AND lane = $12";

static INSERT_NEW_LIVE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH new_contacts AS (
             INSERT INTO contacts (contact_id, account_id, attributes, contact_type, category, tags, import_id, source_line)
             SELECT row.contact_id, $1, row.attributes::jsonb, $6, $7, $8, $2, row.line
             FROM UNNEST($3::bigint[], $4::text[], $5::bigint[]) AS row(contact_id, attributes, line)),
         new_keys AS (
             INSERT INTO contact_keys (account_id, attribute, value, contact_id)
             SELECT $1, key.attribute, key.value, key.contact_id
             FROM UNNEST($9::bigint[], $10::text[], $11::text[]) AS key(contact_id, attribute, value))
         {ADVANCE_LANE}"
    )
});

static INSERT_NEW_DRY_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH new_contacts AS (
             INSERT INTO dry_run_contacts (account_id, import_id, contact_id, attributes, contact_type, category, tags)
             SELECT $1, $2, row.contact_id, row.attributes::jsonb, $6, $7, $8
             FROM UNNEST($3::bigint[], $4::text[], $5::bigint[]) AS row(contact_id, attributes, line)),
         new_keys AS (
             INSERT INTO dry_run_keys (account_id, import_id, attribute, value, contact_id)
             SELECT $1, $2, key.attribute, key.value, key.contact_id
             FROM UNNEST($9::bigint[], $10::text[], $11::text[]) AS key(contact_id, attribute, value))
         {ADVANCE_LANE}"
    )
});

/// Inserts the lane's new contacts with their ids and their keys for every identifier
/// attribute, and moves the lane on with its counters (`advance`): one statement, whatever
/// the number of rows. Contacts of one import share type, category and tags.
pub async fn insert_new_and_advance(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    target: Target<'_>,
    contacts: &[NewContact],
    identifier_keys: &[String],
    advance: &LaneAdvance,
) -> anyhow::Result<()> {
    let mut rows = NewColumns::default();
    let mut keys = KeyColumns::default();
    let empty = ContactState::default();
    for contact in contacts {
        rows.contact_ids.push(contact.id);
        rows.attributes
            .push(serde_json::to_string(&contact.state.values)?);
        rows.lines.push(contact.line as i64);
        let (_, added) = key_changes(&empty, &contact.state, identifier_keys);
        for key in added {
            keys.push(contact.id, key);
        }
    }
    // Rows of one import create contacts with the import's type, category and tags; only
    // their values differ.
    let shared = contacts.first().map(|contact| &contact.state);
    debug_assert!(contacts.iter().all(|contact| {
        shared.is_some_and(|shared| {
            (
                &contact.state.contact_type,
                &contact.state.category,
                &contact.state.tags,
            ) == (&shared.contact_type, &shared.category, &shared.tags)
        })
    }));
    let tags: Vec<&str> = shared
        .map(|state| state.tags.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let sql = match target {
        Target::Live => &INSERT_NEW_LIVE,
        Target::DryRun(_) => &INSERT_NEW_DRY_RUN,
    };
    // $1 account, $2 import, $3-$5 the rows, $6-$8 their shared state, $9-$11 their keys,
    // $12-$18 the lane's advance.
    let query = sqlx::query(sql)
        .bind(account.as_str())
        .bind(import.as_str());
    let query = rows
        .bind_to(query)
        .bind(shared.and_then(|state| state.contact_type.as_deref()))
        .bind(shared.and_then(|state| state.category.as_deref()))
        .bind(tags);
    let query = advance.bind_to(keys.bind_to(query));
    query.execute(connection).await?;
    Ok(())
}

/// Rewrites changed contacts ($2-$6), deletes the keys they lost ($7-$9) and inserts the keys
/// they gained ($10-$12), recording what each link changed for undo ($13 the import, then the
/// change columns). Rows are reached by their physical address, found by index probes:
/// neither a join method nor a stale generic plan can turn the change into a scan.
static UPDATE_LIVE: LazyLock<String> = LazyLock::new(|| {
    let removed_keys = exact_keys("contact_keys", "k.account_id = $1", 7);
    format!(
        "WITH changed AS (
                 UPDATE contacts AS c
                 SET attributes = row.attributes::jsonb, contact_type = row.contact_type,
                     category = row.category,
                     tags = ARRAY(SELECT jsonb_array_elements_text(row.tags::jsonb)),
                     updated_at = now()
                 FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
                      AS row(contact_id, attributes, contact_type, category, tags)
                 WHERE c.ctid = ANY(ARRAY(
                           SELECT found.ctid FROM UNNEST($2::bigint[]) AS wanted(contact_id)
                           CROSS JOIN LATERAL (
                               SELECT c.ctid FROM contacts c
                               WHERE c.account_id = $1 AND c.contact_id = wanted.contact_id LIMIT 1) AS found))
                   AND c.contact_id = row.contact_id),
             recorded AS (
                 INSERT INTO import_changes AS kept (account_id, import_id, contact_id,
                     values_before, values_written, type_changed, type_before, type_written,
                     category_changed, category_before, category_written, tags_added)
                 SELECT $1, $13, change.contact_id, change.values_before::jsonb,
                        change.values_written::jsonb, change.type_changed, change.type_before,
                        change.type_written, change.category_changed, change.category_before,
                        change.category_written,
                        ARRAY(SELECT jsonb_array_elements_text(change.tags_added::jsonb))
                 FROM UNNEST($14::bigint[], $15::text[], $16::text[], $17::boolean[], $18::text[],
                             $19::text[], $20::boolean[], $21::text[], $22::text[], $23::text[])
                      AS change(contact_id, values_before, values_written, type_changed,
                                type_before, type_written, category_changed, category_before,
                                category_written, tags_added)
                 ON CONFLICT (account_id, import_id, contact_id) DO UPDATE SET
                     values_before = EXCLUDED.values_before || kept.values_before,
                     values_written = kept.values_written || EXCLUDED.values_written,
                     type_before = CASE WHEN kept.type_changed THEN kept.type_before ELSE EXCLUDED.type_before END,
                     type_written = CASE WHEN EXCLUDED.type_changed THEN EXCLUDED.type_written ELSE kept.type_written END,
                     type_changed = kept.type_changed OR EXCLUDED.type_changed,
                     category_before = CASE WHEN kept.category_changed THEN kept.category_before ELSE EXCLUDED.category_before END,
                     category_written = CASE WHEN EXCLUDED.category_changed THEN EXCLUDED.category_written ELSE kept.category_written END,
                     category_changed = kept.category_changed OR EXCLUDED.category_changed,
                     tags_added = ARRAY(SELECT DISTINCT tag FROM unnest(kept.tags_added || EXCLUDED.tags_added) AS tag ORDER BY tag)),
             removed AS (
                 DELETE FROM contact_keys
                 WHERE ctid = ANY({removed_keys}))
             INSERT INTO contact_keys (account_id, attribute, value, contact_id)
             SELECT $1, key.attribute, key.value, key.contact_id
             FROM UNNEST($10::bigint[], $11::text[], $12::text[]) AS key(contact_id, attribute, value)"
    )
});

/// The same in a dry run's overlay ($13 its import id).
static UPDATE_DRY_RUN: LazyLock<String> = LazyLock::new(|| {
    let removed_keys = exact_keys("dry_run_keys", "k.account_id = $1 AND k.import_id = $13", 7);
    format!(
        "WITH changed AS (
                 INSERT INTO dry_run_contacts (account_id, import_id, contact_id, attributes, contact_type, category, tags)
                 SELECT $1, $13, row.contact_id, row.attributes::jsonb, row.contact_type, row.category,
                        ARRAY(SELECT jsonb_array_elements_text(row.tags::jsonb))
                 FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
                      AS row(contact_id, attributes, contact_type, category, tags)
                 ON CONFLICT (account_id, import_id, contact_id) DO UPDATE
                 SET attributes = EXCLUDED.attributes, contact_type = EXCLUDED.contact_type,
                     category = EXCLUDED.category, tags = EXCLUDED.tags),
             removed AS (
                 DELETE FROM dry_run_keys
                 WHERE ctid = ANY({removed_keys}))
             INSERT INTO dry_run_keys (account_id, import_id, attribute, value, contact_id)
             SELECT $1, $13, key.attribute, key.value, key.contact_id
             FROM UNNEST($10::bigint[], $11::text[], $12::text[]) AS key(contact_id, attribute, value)"
    )
});

/// The physical addresses of the keys `(contact_id, attribute, value)` given as three arrays,
/// parameters `$first` to `$first + 2`, in `table` (aliased `k`) where `scope` holds: one
/// index probe per key, a `LIMIT 1` each, so that the deletion is exact (one row per key) and
/// never a scan, with no unique index to rely on.
pub(crate) fn exact_keys(table: &str, scope: &str, first: usize) -> String {
    let (ids, attributes, values) = (first, first + 1, first + 2);
    format!(
        "ARRAY(
             SELECT found.ctid
             FROM UNNEST(${ids}::bigint[], ${attributes}::text[], ${values}::text[])
                  AS gone(contact_id, attribute, value)
             CROSS JOIN LATERAL (
                 SELECT k.ctid FROM {table} k
                 WHERE {scope} AND k.attribute = gone.attribute
                   AND k.value = gone.value AND k.contact_id = gone.contact_id
                 LIMIT 1) AS found)"
    )
}

/// Writes the new state of linked contacts that changed, and rewrites only the identifier
/// keys whose values changed, in one statement; with a `change_log`, the same statement
/// records what the import changed in each contact (merged with what its earlier chunks
/// changed: the first value before and the last value written count).
pub async fn update(
    connection: &mut PgConnection,
    account: &AccountId,
    target: Target<'_>,
    contacts: &[UpdatedContact],
    identifier_keys: &[String],
    change_log: Option<ChangeLog<'_>>,
) -> anyhow::Result<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let mut rows = StateColumns::default();
    for contact in contacts {
        rows.push(contact.id, &contact.after)?;
    }
    // The index entries the change removes and adds. A dry run's overlay holds every key of
    // a contact it holds, so a live contact's keys come along the first time it changes one.
    let (mut removed, mut added) = (KeyColumns::default(), KeyColumns::default());
    let empty = ContactState::default();
    for contact in contacts {
        let (gone, new) = match target {
            Target::Live => key_changes(&contact.before, &contact.after, identifier_keys),
            Target::DryRun(_) => (
                key_changes(&empty, &contact.before, identifier_keys).1,
                key_changes(&empty, &contact.after, identifier_keys).1,
            ),
        };
        gone.into_iter()
            .for_each(|key| removed.push(contact.id, key));
        new.into_iter().for_each(|key| added.push(contact.id, key));
    }
    let mut changes = ChangeColumns::default();
    if let Some(log) = &change_log {
        for contact in contacts
            .iter()
            .filter(|contact| !log.own_ids.contains(&contact.id))
        {
            changes.push(
                contact.id,
                ImportChange::between(&contact.before, &contact.after),
            )?;
        }
    }
    let sql = match target {
        Target::Live => UPDATE_LIVE.as_str(),
        Target::DryRun(_) => UPDATE_DRY_RUN.as_str(),
    };
    let import = match (target, &change_log) {
        (Target::DryRun(import), _) => Some(import.as_str()),
        (Target::Live, Some(log)) => Some(log.import.as_str()),
        (Target::Live, None) => None,
    };
    // $1 account, $2-$6 the rows, $7-$9 the keys removed, $10-$12 the keys added, $13 the
    // import, then live only, $14-$23 the changes.
    let query = sqlx::query(sql).bind(account.as_str());
    let query = added
        .bind_to(removed.bind_to(rows.bind_to(query)))
        .bind(import);
    let query = match target {
        Target::Live => changes.bind_to(query),
        Target::DryRun(_) => query,
    };
    query.execute(connection).await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ExportRow {
    contact_id: i64,
    attributes: Json<BTreeMap<String, String>>,
    contact_type: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// The contacts of one import, for an export filtered on it: those it created (which carry
/// its id and lie in its block of ids) and those it linked: by its record of what it changed
/// in them (`import_changes`), or once retention removed that, by the bare link
/// (`import_links`).
#[derive(Debug, Clone)]
pub struct ImportContacts<'a> {
    pub import: &'a ImportId,
    pub own_ids: Range<i64>,
}

/// The other filters, as SQL over `c`; parameters $4 to $6.
const EXPORT_FILTERS: &str = "($4::text IS NULL OR c.tags @> ARRAY[$4::text])
    AND ($5::text IS NULL OR c.contact_type = $5) AND ($6::text IS NULL OR c.category = $6)";

/// One page of the account's contacts after `after_id` that pass `filter`, oldest first.
/// Without an import, the page walks the account's contacts in id order; with one, it reads
/// only the import's block of ids and the contacts it linked.
pub async fn export_page(
    connection: &mut PgConnection,
    account: &AccountId,
    after_id: i64,
    limit: u32,
    filter: &ContactFilter,
    import: Option<ImportContacts<'_>>,
) -> sqlx::Result<Vec<ExportedContact>> {
    const COLUMNS: &str =
        "c.contact_id, c.attributes, c.contact_type, c.category, c.tags, c.created_at, c.updated_at";
    let sql = match import {
        None => format!(
            "SELECT {COLUMNS} FROM contacts c
             WHERE c.account_id = $1 AND c.contact_id > $2 AND {EXPORT_FILTERS}
             ORDER BY c.contact_id LIMIT $3"
        ),
        Some(_) => format!(
            "SELECT * FROM (
                 (SELECT {COLUMNS} FROM contacts c
                  WHERE c.account_id = $1 AND c.contact_id > GREATEST($2, $8 - 1) AND c.contact_id < $9
                    AND c.import_id = $7 AND {EXPORT_FILTERS}
                  ORDER BY c.contact_id LIMIT $3)
                 UNION ALL
                 (SELECT {COLUMNS} FROM (
                      SELECT contact_id FROM import_changes
                      WHERE account_id = $1 AND import_id = $7 AND contact_id > $2
                      UNION ALL
                      SELECT contact_id FROM import_links
                      WHERE account_id = $1 AND import_id = $7 AND contact_id > $2) AS linked
                  CROSS JOIN LATERAL (
                      SELECT * FROM contacts c
                      WHERE c.account_id = $1 AND c.contact_id = linked.contact_id
                      LIMIT 1) AS c
                  WHERE {EXPORT_FILTERS}
                  ORDER BY linked.contact_id LIMIT $3)) AS both_kinds
             ORDER BY contact_id LIMIT $3"
        ),
    };
    let query = sqlx::query_as(&sql)
        .bind(account.as_str())
        .bind(after_id)
        .bind(i64::from(limit))
        .bind(filter.tag.as_deref())
        .bind(filter.contact_type.as_deref())
        .bind(filter.category.as_deref());
    let query = match &import {
        None => query,
        Some(import) => query
            .bind(import.import.as_str())
            .bind(import.own_ids.start)
            .bind(import.own_ids.end),
    };
    let rows: Vec<ExportRow> = query.fetch_all(connection).await?;
    Ok(rows
        .into_iter()
        .map(|row| ExportedContact {
            id: row.contact_id,
            attributes: row.attributes.0,
            contact_type: row.contact_type,
            category: row.category,
            tags: row.tags,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
        .collect())
}

/// Deletes up to `rows` rows of the dry run's overlay from each of its tables; returns whether
/// any table may hold more.
pub async fn delete_dry_run_overlay(
    connection: &mut PgConnection,
    account: &str,
    import: &str,
    rows: i64,
) -> sqlx::Result<bool> {
    let mut more = false;
    for table in ["dry_run_keys", "dry_run_contacts"] {
        more |= super::delete_some_of_import(connection, table, account, import, rows).await?
            >= rows as u64;
    }
    Ok(more)
}
