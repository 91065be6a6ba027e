//! The merge rule: how a chunk of valid rows becomes new and updated contacts under a duplicate
//! policy, exactly as if the rows were applied one by one in file order.
//!
//! The writer fetches every stored contact that shares a match key with the chunk, hands them
//! here with the rows, and persists the returned plan in one transaction. Because the plan is
//! computed row by row over an in-memory index of those contacts (and of the contacts the chunk
//! itself creates), a key that a row introduces or changes is seen by every later row of the
//! chunk, and the result does not depend on how rows are grouped into chunks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use crate::validate::ValidRecord;

/// What to do with a row whose match key already belongs to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicatePolicy {
    /// Update the matched contact: non-empty cells overwrite, tags are added.
    #[default]
    Link,
    /// Create a separate contact, not linked to the match.
    Duplicate,
    /// Leave the matched contact as it is.
    Skip,
}

impl DuplicatePolicy {
    pub const ALL: [DuplicatePolicy; 3] = [Self::Link, Self::Duplicate, Self::Skip];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Duplicate => "duplicate",
            Self::Skip => "skip",
        }
    }
}

impl fmt::Display for DuplicatePolicy {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for DuplicatePolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|policy| policy.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                format!("unknown duplicate policy \"{text}\" (expected link, duplicate or skip)")
            })
    }
}

/// The import options that the merge rule needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MergeOptions {
    pub policy: DuplicatePolicy,
    /// Attribute keys a row is matched on; a row matches a contact when any of them is equal.
    pub match_on: Vec<String>,
    pub contact_type: Option<String>,
    pub category: Option<String>,
    pub tags: BTreeSet<String>,
}

/// A contact as stored, or as the plan leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactState {
    pub values: BTreeMap<String, String>,
    pub contact_type: Option<String>,
    pub category: Option<String>,
    pub tags: BTreeSet<String>,
}

/// A stored contact the writer fetched because it shares a match key with the chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContact {
    /// Database id; a smaller id is an older contact.
    pub id: i64,
    pub state: ContactState,
}

/// A contact the chunk creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContact {
    /// From the import's [`IdBlock`]: follows file order.
    pub id: i64,
    /// The file line of the row that created it.
    pub line: u64,
    pub state: ContactState,
}

/// A stored contact that linked rows changed: what it was before the chunk and what it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedContact {
    pub id: i64,
    pub before: ContactState,
    pub after: ContactState,
}

/// The ids an import gives the contacts it creates. Every import owns a block of ids, reserved
/// when it starts and larger than any id handed out before; the row on file line `L` creates
/// contact `first + L`. Ids therefore follow file order whatever the lanes, replicas and
/// redeliveries, and "older" means "from an earlier import, or from an earlier line".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdBlock {
    pub first: i64,
}

impl IdBlock {
    /// How many ids an import of a file of `file_bytes` bytes needs: a line holds at least one
    /// byte, so no line number exceeds the file's size plus one.
    pub fn ids_needed(file_bytes: u64) -> i64 {
        i64::try_from(file_bytes)
            .unwrap_or(i64::MAX / 4)
            .saturating_add(2)
    }

    pub fn id_for_line(self, line: u64) -> i64 {
        self.first.saturating_add(line as i64)
    }
}

/// How many rows of a chunk ended each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutcomeCounts {
    /// New contacts from rows without a match.
    pub created: u64,
    /// Rows that updated a matched contact.
    pub linked: u64,
    /// New contacts from rows with a match (policy `duplicate`).
    pub duplicated: u64,
    /// Rows left out because they matched (policy `skip`).
    pub skipped: u64,
}

impl OutcomeCounts {
    pub fn rows(&self) -> u64 {
        self.created + self.linked + self.duplicated + self.skipped
    }
}

/// What persisting a chunk must do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MergePlan {
    /// In creation order (file order, so in id order).
    pub new_contacts: Vec<NewContact>,
    /// Every stored contact whose state linked rows changed, in id order. A link that leaves
    /// a contact as it was (the same file imported again) is counted but writes nothing.
    pub updated_contacts: Vec<UpdatedContact>,
    pub counts: OutcomeCounts,
}

/// One normalized value of a match attribute: what finds a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchKey {
    pub attribute: String,
    pub value: String,
}

/// The match keys of a set of values, in `match_on` order; empty values have none.
pub fn match_keys(values: &BTreeMap<String, String>, match_on: &[String]) -> Vec<MatchKey> {
    match_on
        .iter()
        .filter_map(|attribute| {
            values.get(attribute).map(|value| MatchKey {
                attribute: attribute.clone(),
                value: value.clone(),
            })
        })
        .collect()
}

/// The index entries (identifier attribute, value) a change of a contact removes and adds:
/// only identifier values that changed are written again.
pub fn key_changes(
    before: &ContactState,
    after: &ContactState,
    identifier_keys: &[String],
) -> (Vec<MatchKey>, Vec<MatchKey>) {
    let before_keys = match_keys(&before.values, identifier_keys);
    let after_keys = match_keys(&after.values, identifier_keys);
    let removed = before_keys
        .iter()
        .filter(|key| !after_keys.contains(key))
        .cloned()
        .collect();
    let added = after_keys
        .iter()
        .filter(|key| !before_keys.contains(key))
        .cloned()
        .collect();
    (removed, added)
}

/// Applies one linked row to a contact: non-empty cells overwrite (the row holds only non-empty
/// values), cells the row leaves empty keep the old value, tags are added, and type and category
/// are set when the import gives them.
pub fn link_row(
    contact: &mut ContactState,
    row_values: BTreeMap<String, String>,
    options: &MergeOptions,
) {
    contact.values.extend(row_values);
    if let Some(contact_type) = &options.contact_type {
        contact.contact_type = Some(contact_type.clone());
    }
    if let Some(category) = &options.category {
        contact.category = Some(category.clone());
    }
    contact.tags.extend(options.tags.iter().cloned());
}

/// Plans a chunk: `rows` in file order, `stored` every stored contact sharing a match key with
/// any row (in any order), `ids` the import's id block. Takes the rows, whose values become
/// the contacts' without a copy.
///
/// The oldest contact holding any of a row's match keys (the smallest id, stored or created
/// by an earlier row) is its match, so the plan equals applying the rows one at a time.
pub fn plan_merge(
    rows: Vec<ValidRecord>,
    stored: Vec<StoredContact>,
    options: &MergeOptions,
    ids: IdBlock,
) -> MergePlan {
    let mut index = ContactIndex::default();
    // id → (state as stored, once a row links to it; state as the plan leaves it)
    let mut stored_states: BTreeMap<i64, (Option<ContactState>, ContactState)> = BTreeMap::new();
    for contact in stored {
        index.insert_all(contact.id, &contact.state.values, &options.match_on);
        stored_states.insert(contact.id, (None, contact.state));
    }
    // id → position in new_contacts
    let mut created_positions: HashMap<i64, usize> = HashMap::new();

    let mut new_contacts: Vec<NewContact> = Vec::new();
    let mut counts = OutcomeCounts::default();
    for row in rows {
        let keys = match_keys(&row.values, &options.match_on);
        let matched = index.oldest_match(&keys);
        let create = match (matched, options.policy) {
            (None, _) => {
                counts.created += 1;
                true
            }
            (Some(_), DuplicatePolicy::Duplicate) => {
                counts.duplicated += 1;
                true
            }
            (Some(_), DuplicatePolicy::Skip) => {
                counts.skipped += 1;
                false
            }
            (Some(target), DuplicatePolicy::Link) => {
                let state = match created_positions.get(&target) {
                    Some(&position) => &mut new_contacts[position].state,
                    None => {
                        let (before, state) = stored_states
                            .get_mut(&target)
                            .expect("the index only refers to contacts it was given");
                        before.get_or_insert_with(|| state.clone());
                        state
                    }
                };
                let keys_before = match_keys(&state.values, &options.match_on);
                link_row(state, row.values, options);
                let keys_after = match_keys(&state.values, &options.match_on);
                index.replace(target, &keys_before, &keys_after);
                counts.linked += 1;
                continue;
            }
        };
        if create {
            let id = ids.id_for_line(row.line);
            index.insert_all(id, &row.values, &options.match_on);
            created_positions.insert(id, new_contacts.len());
            new_contacts.push(new_contact(id, row, options));
        }
    }

    let updated_contacts = stored_states
        .into_iter()
        .filter_map(|(id, (before, after))| {
            let before = before?;
            (before != after).then_some(UpdatedContact { id, before, after })
        })
        .collect();
    MergePlan {
        new_contacts,
        updated_contacts,
        counts,
    }
}

fn new_contact(id: i64, row: ValidRecord, options: &MergeOptions) -> NewContact {
    NewContact {
        id,
        line: row.line,
        state: ContactState {
            values: row.values,
            contact_type: options.contact_type.clone(),
            category: options.category.clone(),
            tags: options.tags.clone(),
        },
    }
}

/// Which contacts hold each match key; the first of a set is the oldest.
#[derive(Default)]
struct ContactIndex {
    holders: HashMap<MatchKey, BTreeSet<i64>>,
}

impl ContactIndex {
    fn insert_all(&mut self, contact: i64, values: &BTreeMap<String, String>, match_on: &[String]) {
        for key in match_keys(values, match_on) {
            self.holders.entry(key).or_default().insert(contact);
        }
    }

    fn oldest_match(&self, keys: &[MatchKey]) -> Option<i64> {
        keys.iter()
            .filter_map(|key| {
                self.holders
                    .get(key)
                    .and_then(|holders| holders.first().copied())
            })
            .min()
    }

    fn replace(&mut self, contact: i64, before: &[MatchKey], after: &[MatchKey]) {
        for key in before.iter().filter(|key| !after.contains(key)) {
            if let Some(holders) = self.holders.get_mut(key) {
                holders.remove(&contact);
            }
        }
        for key in after.iter().filter(|key| !before.contains(key)) {
            self.holders.entry(key.clone()).or_default().insert(contact);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn row(line: u64, pairs: &[(&str, &str)]) -> ValidRecord {
        ValidRecord {
            line,
            values: values(pairs),
        }
    }

    fn stored(id: i64, pairs: &[(&str, &str)]) -> StoredContact {
        StoredContact {
            id,
            state: ContactState {
                values: values(pairs),
                ..ContactState::default()
            },
        }
    }

    fn options(policy: DuplicatePolicy, match_on: &[&str]) -> MergeOptions {
        MergeOptions {
            policy,
            match_on: match_on.iter().map(|key| key.to_string()).collect(),
            contact_type: Some("customer".into()),
            category: None,
            tags: ["spring".to_string()].into(),
        }
    }

    const IDS: IdBlock = IdBlock { first: 1000 };

    /// The reference the plan must equal, written without the index: a list of contacts
    /// scanned for each row in file order, the holder with the smallest id winning.
    fn row_by_row(
        rows: &[ValidRecord],
        stored: &[StoredContact],
        options: &MergeOptions,
    ) -> (BTreeMap<i64, ContactState>, OutcomeCounts) {
        let mut contacts: BTreeMap<i64, ContactState> = stored
            .iter()
            .map(|contact| (contact.id, contact.state.clone()))
            .collect();
        let mut totals = OutcomeCounts::default();
        for row in rows {
            let matched = contacts
                .iter()
                .filter(|(_, state)| {
                    options.match_on.iter().any(|attribute| {
                        row.values.contains_key(attribute)
                            && row.values.get(attribute) == state.values.get(attribute)
                    })
                })
                .map(|(id, _)| *id)
                .next();
            let fresh = ContactState {
                values: row.values.clone(),
                contact_type: options.contact_type.clone(),
                category: options.category.clone(),
                tags: options.tags.clone(),
            };
            match (matched, options.policy) {
                (None, _) => {
                    totals.created += 1;
                    contacts.insert(1000 + row.line as i64, fresh);
                }
                (Some(_), DuplicatePolicy::Duplicate) => {
                    totals.duplicated += 1;
                    contacts.insert(1000 + row.line as i64, fresh);
                }
                (Some(_), DuplicatePolicy::Skip) => totals.skipped += 1,
                (Some(id), DuplicatePolicy::Link) => {
                    totals.linked += 1;
                    let contact = contacts.get_mut(&id).expect("matched");
                    for (attribute, value) in &row.values {
                        contact.values.insert(attribute.clone(), value.clone());
                    }
                    if options.contact_type.is_some() {
                        contact.contact_type = options.contact_type.clone();
                    }
                    if options.category.is_some() {
                        contact.category = options.category.clone();
                    }
                    contact.tags.extend(options.tags.iter().cloned());
                }
            }
        }
        (contacts, totals)
    }

    /// The plan's result as the reference shows it: stored contacts with their updates
    /// applied, plus the new ones.
    fn planned(
        rows: &[ValidRecord],
        stored: &[StoredContact],
        options: &MergeOptions,
    ) -> (BTreeMap<i64, ContactState>, OutcomeCounts) {
        let plan = plan_merge(rows.to_vec(), stored.to_vec(), options, IDS);
        let mut contacts: BTreeMap<i64, ContactState> = stored
            .iter()
            .map(|contact| (contact.id, contact.state.clone()))
            .collect();
        for updated in plan.updated_contacts {
            assert_eq!(contacts[&updated.id], updated.before, "before-image");
            contacts.insert(updated.id, updated.after);
        }
        for created in plan.new_contacts {
            assert_eq!(created.id, IDS.id_for_line(created.line));
            assert!(contacts.insert(created.id, created.state).is_none());
        }
        (contacts, plan.counts)
    }

    #[test]
    fn a_row_without_a_match_creates_a_contact_with_the_import_options() {
        let plan = plan_merge(
            vec![row(2, &[("email", "a@x.pl")])],
            vec![],
            &options(DuplicatePolicy::Link, &["email"]),
            IDS,
        );
        assert_eq!(plan.counts.created, 1);
        let created = &plan.new_contacts[0];
        assert_eq!(created.line, 2);
        assert_eq!(created.state.contact_type.as_deref(), Some("customer"));
        assert!(created.state.tags.contains("spring"));
    }

    #[test]
    fn link_overwrites_non_empty_cells_and_keeps_the_rest() {
        let existing = stored(
            7,
            &[("email", "a@x.pl"), ("city", "Kraków"), ("company", "Old")],
        );
        let plan = plan_merge(
            vec![row(2, &[("email", "a@x.pl"), ("company", "New")])],
            vec![existing],
            &options(DuplicatePolicy::Link, &["email"]),
            IDS,
        );
        assert_eq!(plan.counts.linked, 1);
        assert!(plan.new_contacts.is_empty());
        let updated = &plan.updated_contacts[0];
        assert_eq!(updated.id, 7);
        assert_eq!(
            updated.after.values,
            values(&[("email", "a@x.pl"), ("city", "Kraków"), ("company", "New")])
        );
        assert_eq!(updated.after.contact_type.as_deref(), Some("customer"));
        assert!(updated.after.tags.contains("spring"));
    }

    #[test]
    fn link_keeps_type_and_category_when_the_import_gives_none() {
        let mut existing = stored(1, &[("email", "a@x.pl")]);
        existing.state.contact_type = Some("lead".into());
        existing.state.category = Some("b2b".into());
        existing.state.tags = ["old".to_string()].into();
        let mut no_type = options(DuplicatePolicy::Link, &["email"]);
        no_type.contact_type = None;
        let plan = plan_merge(
            vec![row(2, &[("email", "a@x.pl")])],
            vec![existing],
            &no_type,
            IDS,
        );
        let state = &plan.updated_contacts[0].after;
        assert_eq!(state.contact_type.as_deref(), Some("lead"));
        assert_eq!(state.category.as_deref(), Some("b2b"));
        assert_eq!(state.tags, ["old".to_string(), "spring".to_string()].into());
    }

    #[test]
    fn duplicate_creates_a_separate_contact_and_skip_changes_nothing() {
        let existing = || vec![stored(3, &[("email", "a@x.pl"), ("city", "Gdańsk")])];
        let incoming = [row(2, &[("email", "a@x.pl"), ("city", "Poznań")])];

        let duplicated = plan_merge(
            incoming.to_vec(),
            existing(),
            &options(DuplicatePolicy::Duplicate, &["email"]),
            IDS,
        );
        assert_eq!(
            duplicated.counts,
            OutcomeCounts {
                duplicated: 1,
                ..OutcomeCounts::default()
            }
        );
        assert_eq!(duplicated.new_contacts[0].state.values["city"], "Poznań");
        assert!(duplicated.updated_contacts.is_empty());

        let skipped = plan_merge(
            incoming.to_vec(),
            existing(),
            &options(DuplicatePolicy::Skip, &["email"]),
            IDS,
        );
        assert_eq!(
            skipped.counts,
            OutcomeCounts {
                skipped: 1,
                ..OutcomeCounts::default()
            }
        );
        assert!(skipped.new_contacts.is_empty() && skipped.updated_contacts.is_empty());
    }

    #[test]
    fn a_later_row_matches_a_contact_an_earlier_row_of_the_chunk_created() {
        let rows = [
            row(2, &[("email", "a@x.pl"), ("first_name", "Ann")]),
            row(
                3,
                &[
                    ("email", "a@x.pl"),
                    ("first_name", "Anna"),
                    ("city", "Łódź"),
                ],
            ),
        ];
        let plan = plan_merge(
            rows.to_vec(),
            vec![],
            &options(DuplicatePolicy::Link, &["email"]),
            IDS,
        );
        assert_eq!(
            plan.counts,
            OutcomeCounts {
                created: 1,
                linked: 1,
                ..OutcomeCounts::default()
            }
        );
        assert_eq!(plan.new_contacts.len(), 1);
        assert_eq!(plan.new_contacts[0].line, 2);
        assert_eq!(plan.new_contacts[0].state.values["first_name"], "Anna");
        assert_eq!(plan.new_contacts[0].state.values["city"], "Łódź");
    }

    #[test]
    fn where_several_contacts_match_the_oldest_wins() {
        let contacts = vec![
            stored(9, &[("email", "a@x.pl")]),
            stored(4, &[("email", "a@x.pl")]),
        ];
        let plan = plan_merge(
            vec![row(2, &[("email", "a@x.pl"), ("city", "Opole")])],
            contacts,
            &options(DuplicatePolicy::Link, &["email"]),
            IDS,
        );
        assert_eq!(plan.updated_contacts.len(), 1);
        assert_eq!(plan.updated_contacts[0].id, 4);
    }

    #[test]
    fn any_match_attribute_finds_the_contact_and_the_oldest_of_several_wins() {
        let contacts = vec![
            stored(5, &[("email", "b@x.pl"), ("mobile", "+48501234567")]),
            stored(2, &[("email", "a@x.pl")]),
        ];
        let plan = plan_merge(
            vec![row(2, &[("email", "a@x.pl"), ("mobile", "+48501234567")])],
            contacts,
            &options(DuplicatePolicy::Link, &["email", "mobile"]),
            IDS,
        );
        assert_eq!(
            plan.updated_contacts
                .iter()
                .map(|contact| contact.id)
                .collect::<Vec<_>>(),
            vec![2]
        );
    }

    #[test]
    fn a_key_changed_by_a_link_is_seen_by_later_rows() {
        let contacts = vec![stored(
            1,
            &[("email", "a@x.pl"), ("mobile", "+48501234567")],
        )];
        let rows = [
            // Matched by email; its mobile changes, so the old mobile no longer finds it.
            row(2, &[("email", "a@x.pl"), ("mobile", "+48609876543")]),
            row(3, &[("mobile", "+48501234567"), ("city", "Radom")]),
            row(4, &[("mobile", "+48609876543"), ("city", "Sopot")]),
        ];
        let plan = plan_merge(
            rows.to_vec(),
            contacts,
            &options(DuplicatePolicy::Link, &["email", "mobile"]),
            IDS,
        );
        assert_eq!(
            plan.counts,
            OutcomeCounts {
                created: 1,
                linked: 2,
                ..OutcomeCounts::default()
            }
        );
        assert_eq!(plan.new_contacts[0].state.values["city"], "Radom");
        assert_eq!(plan.updated_contacts[0].after.values["city"], "Sopot");
    }

    #[test]
    fn planning_equals_row_by_row_for_every_policy_whatever_the_chunking() {
        let rows = [
            row(2, &[("email", "a@x.pl"), ("first_name", "A1")]),
            row(3, &[("email", "b@x.pl")]),
            row(
                4,
                &[
                    ("email", "a@x.pl"),
                    ("city", "C1"),
                    ("mobile", "+48501234567"),
                ],
            ),
            row(5, &[("mobile", "+48501234567"), ("first_name", "A2")]),
            row(6, &[("email", "b@x.pl"), ("first_name", "B2")]),
            row(7, &[("email", "c@x.pl"), ("mobile", "+48501234567")]),
            row(8, &[("email", "d@x.pl"), ("mobile", "+48609876543")]),
            row(9, &[("city", "Kielce")]),
            row(10, &[("email", "d@x.pl"), ("mobile", "+48700000000")]),
            row(11, &[("mobile", "+48609876543"), ("city", "Radom")]),
        ];
        let stored = [
            stored(17, &[("email", "d@x.pl")]),
            stored(12, &[("mobile", "+48609876543"), ("email", "e@x.pl")]),
        ];
        for policy in DuplicatePolicy::ALL {
            for match_on in [&["email"][..], &["email", "mobile"][..]] {
                let options = options(policy, match_on);
                let expected = row_by_row(&rows, &stored, &options);
                assert_eq!(
                    planned(&rows, &stored, &options),
                    expected,
                    "{policy} on {match_on:?}, one chunk"
                );
                for chunk_rows in 1..rows.len() {
                    let mut contacts = stored.to_vec();
                    let mut totals = OutcomeCounts::default();
                    for chunk in rows.chunks(chunk_rows) {
                        let (after, counts) = planned(chunk, &contacts, &options);
                        contacts = after
                            .into_iter()
                            .map(|(id, state)| StoredContact { id, state })
                            .collect();
                        totals.created += counts.created;
                        totals.linked += counts.linked;
                        totals.duplicated += counts.duplicated;
                        totals.skipped += counts.skipped;
                    }
                    let contacts = contacts
                        .into_iter()
                        .map(|contact| (contact.id, contact.state))
                        .collect();
                    assert_eq!(
                        (contacts, totals),
                        expected,
                        "{policy} on {match_on:?}, chunks of {chunk_rows}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_link_that_changes_nothing_is_counted_but_writes_nothing() {
        let mut existing = stored(4, &[("email", "a@x.pl"), ("city", "Opole")]);
        existing.state.contact_type = Some("customer".into());
        existing.state.tags = ["spring".to_string()].into();
        let plan = plan_merge(
            vec![row(2, &[("email", "a@x.pl"), ("city", "Opole")])],
            vec![existing],
            &options(DuplicatePolicy::Link, &["email"]),
            IDS,
        );
        assert_eq!(plan.counts.linked, 1);
        assert!(plan.updated_contacts.is_empty());
        assert!(plan.new_contacts.is_empty());
    }

    #[test]
    fn new_contacts_take_their_ids_from_the_block_by_line() {
        let plan = plan_merge(
            vec![
                row(5, &[("email", "a@x.pl")]),
                row(9, &[("email", "b@x.pl")]),
            ],
            vec![],
            &options(DuplicatePolicy::Link, &["email"]),
            IdBlock { first: 70 },
        );
        let ids: Vec<i64> = plan.new_contacts.iter().map(|contact| contact.id).collect();
        assert_eq!(ids, vec![75, 79]);
        assert_eq!(IdBlock::ids_needed(100), 102);
    }

    #[test]
    fn the_oldest_holder_is_the_smallest_id_whichever_import_made_it() {
        // An import with a later id block stored the email first (5000); the contact of an
        // earlier import (1002) is still the older one.
        let plan = plan_merge(
            vec![row(2, &[("email", "a@x.pl"), ("city", "A")])],
            vec![
                stored(5000, &[("email", "a@x.pl")]),
                stored(1002, &[("email", "a@x.pl")]),
            ],
            &options(DuplicatePolicy::Link, &["email"]),
            IDS,
        );
        assert_eq!(plan.updated_contacts[0].id, 1002);
    }

    #[test]
    fn key_changes_name_only_the_identifier_values_that_moved() {
        let before = stored(
            1,
            &[
                ("email", "a@x.pl"),
                ("mobile", "+48501234567"),
                ("city", "A"),
            ],
        )
        .state;
        let after = stored(
            1,
            &[
                ("email", "a@x.pl"),
                ("mobile", "+48609876543"),
                ("city", "B"),
            ],
        )
        .state;
        let identifiers = ["email".to_string(), "mobile".to_string()];
        let (removed, added) = key_changes(&before, &after, &identifiers);
        let key = |value: &str| MatchKey {
            attribute: "mobile".into(),
            value: value.into(),
        };
        assert_eq!(removed, vec![key("+48501234567")]);
        assert_eq!(added, vec![key("+48609876543")]);
        assert_eq!(
            key_changes(&before, &before, &identifiers),
            (vec![], vec![])
        );
    }

    #[test]
    fn rows_without_any_match_value_always_create() {
        let rows = [row(2, &[("city", "Kielce")]), row(3, &[("city", "Kielce")])];
        let plan = plan_merge(
            rows.to_vec(),
            vec![],
            &options(DuplicatePolicy::Link, &["email"]),
            IDS,
        );
        assert_eq!(plan.counts.created, 2);
    }

    #[test]
    fn policies_parse_from_their_names_only() {
        for (text, expected) in [
            ("link", Ok(DuplicatePolicy::Link)),
            ("DUPLICATE", Ok(DuplicatePolicy::Duplicate)),
            ("skip", Ok(DuplicatePolicy::Skip)),
        ] {
            assert_eq!(text.parse::<DuplicatePolicy>(), expected);
        }
        let error = "merge"
            .parse::<DuplicatePolicy>()
            .expect_err("not a policy");
        assert!(error.contains("\"merge\""), "{error}");
    }
}
