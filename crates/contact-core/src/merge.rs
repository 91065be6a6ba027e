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

use serde::{Deserialize, Serialize};

use crate::validate::ValidRecord;

/// What to do with a row whose match key already belongs to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MergeOptions {
    pub policy: DuplicatePolicy,
    /// Attribute keys a row is matched on; a row matches a contact when any of them is equal.
    pub match_on: Vec<String>,
    pub contact_type: Option<String>,
    pub category: Option<String>,
    pub tags: BTreeSet<String>,
}

/// A contact as stored, or as the plan leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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
    /// The file line of the row that created it.
    pub line: u64,
    pub state: ContactState,
}

/// How many rows of a chunk ended each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
    /// In creation order (file order).
    pub new_contacts: Vec<NewContact>,
    /// The final state of every stored contact a row linked to, in id order.
    pub updated_contacts: Vec<StoredContact>,
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

/// Applies one linked row to a contact: non-empty cells overwrite (the row holds only non-empty
/// values), cells the row leaves empty keep the old value, tags are added, and type and category
/// are set when the import gives them.
pub fn link_row(
    contact: &mut ContactState,
    row_values: &BTreeMap<String, String>,
    options: &MergeOptions,
) {
    for (attribute, value) in row_values {
        contact.values.insert(attribute.clone(), value.clone());
    }
    if let Some(contact_type) = &options.contact_type {
        contact.contact_type = Some(contact_type.clone());
    }
    if let Some(category) = &options.category {
        contact.category = Some(category.clone());
    }
    contact.tags.extend(options.tags.iter().cloned());
}

/// Plans a chunk: `rows` in file order, `stored` every stored contact sharing a match key with
/// any row (in any order).
pub fn plan_merge(
    rows: &[ValidRecord],
    stored: Vec<StoredContact>,
    options: &MergeOptions,
) -> MergePlan {
    let mut index = ContactIndex::default();
    let mut stored_states: BTreeMap<i64, (ContactState, bool)> = BTreeMap::new();
    for contact in stored {
        index.insert_all(
            ContactRef::Stored(contact.id),
            &contact.state.values,
            &options.match_on,
        );
        stored_states.insert(contact.id, (contact.state, false));
    }

    let mut new_contacts: Vec<NewContact> = Vec::new();
    let mut counts = OutcomeCounts::default();
    for row in rows {
        let keys = match_keys(&row.values, &options.match_on);
        let Some(target) = index.oldest_match(&keys) else {
            let reference = ContactRef::New(new_contacts.len());
            index.insert_all(reference, &row.values, &options.match_on);
            new_contacts.push(new_contact(row, options));
            counts.created += 1;
            continue;
        };
        match options.policy {
            DuplicatePolicy::Skip => counts.skipped += 1,
            DuplicatePolicy::Duplicate => {
                let reference = ContactRef::New(new_contacts.len());
                index.insert_all(reference, &row.values, &options.match_on);
                new_contacts.push(new_contact(row, options));
                counts.duplicated += 1;
            }
            DuplicatePolicy::Link => {
                let state = match target {
                    ContactRef::Stored(id) => {
                        let (state, changed) = stored_states
                            .get_mut(&id)
                            .expect("the index only refers to stored contacts it was given");
                        *changed = true;
                        state
                    }
                    ContactRef::New(position) => &mut new_contacts[position].state,
                };
                let keys_before = match_keys(&state.values, &options.match_on);
                link_row(state, &row.values, options);
                let keys_after = match_keys(&state.values, &options.match_on);
                index.replace(target, &keys_before, &keys_after);
                counts.linked += 1;
            }
        }
    }

    let updated_contacts = stored_states
        .into_iter()
        .filter(|(_, (_, changed))| *changed)
        .map(|(id, (state, _))| StoredContact { id, state })
        .collect();
    MergePlan {
        new_contacts,
        updated_contacts,
        counts,
    }
}

fn new_contact(row: &ValidRecord, options: &MergeOptions) -> NewContact {
    NewContact {
        line: row.line,
        state: ContactState {
            values: row.values.clone(),
            contact_type: options.contact_type.clone(),
            category: options.category.clone(),
            tags: options.tags.clone(),
        },
    }
}

/// A contact the plan knows. The derived order is age: every stored contact is older than every
/// contact the chunk creates, stored ones by id, new ones by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ContactRef {
    Stored(i64),
    New(usize),
}

#[derive(Default)]
struct ContactIndex {
    holders: HashMap<MatchKey, BTreeSet<ContactRef>>,
}

impl ContactIndex {
    fn insert_all(
        &mut self,
        contact: ContactRef,
        values: &BTreeMap<String, String>,
        match_on: &[String],
    ) {
        for key in match_keys(values, match_on) {
            self.holders.entry(key).or_default().insert(contact);
        }
    }

    fn oldest_match(&self, keys: &[MatchKey]) -> Option<ContactRef> {
        keys.iter()
            .filter_map(|key| {
                self.holders
                    .get(key)
                    .and_then(|holders| holders.first().copied())
            })
            .min()
    }

    fn replace(&mut self, contact: ContactRef, before: &[MatchKey], after: &[MatchKey]) {
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

    /// Applies rows one at a time, each as its own chunk, feeding the previous result back as
    /// stored contacts: the reference the chunked plan must equal.
    fn row_by_row(
        rows: &[ValidRecord],
        options: &MergeOptions,
    ) -> (Vec<ContactState>, OutcomeCounts) {
        let mut contacts: Vec<StoredContact> = Vec::new();
        let mut totals = OutcomeCounts::default();
        for single in rows {
            let plan = plan_merge(std::slice::from_ref(single), contacts.clone(), options);
            for updated in plan.updated_contacts {
                let slot = contacts
                    .iter_mut()
                    .find(|contact| contact.id == updated.id)
                    .expect("known id");
                *slot = updated;
            }
            for created in plan.new_contacts {
                let id = contacts.len() as i64 + 1;
                contacts.push(StoredContact {
                    id,
                    state: created.state,
                });
            }
            totals.created += plan.counts.created;
            totals.linked += plan.counts.linked;
            totals.duplicated += plan.counts.duplicated;
            totals.skipped += plan.counts.skipped;
        }
        (
            contacts.into_iter().map(|contact| contact.state).collect(),
            totals,
        )
    }

    fn chunked(rows: &[ValidRecord], options: &MergeOptions) -> (Vec<ContactState>, OutcomeCounts) {
        let plan = plan_merge(rows, Vec::new(), options);
        (
            plan.new_contacts
                .into_iter()
                .map(|contact| contact.state)
                .collect(),
            plan.counts,
        )
    }

    #[test]
    fn a_row_without_a_match_creates_a_contact_with_the_import_options() {
        let plan = plan_merge(
            &[row(2, &[("email", "a@x.pl")])],
            vec![],
            &options(DuplicatePolicy::Link, &["email"]),
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
            &[row(2, &[("email", "a@x.pl"), ("company", "New")])],
            vec![existing],
            &options(DuplicatePolicy::Link, &["email"]),
        );
        assert_eq!(plan.counts.linked, 1);
        assert!(plan.new_contacts.is_empty());
        let updated = &plan.updated_contacts[0];
        assert_eq!(updated.id, 7);
        assert_eq!(
            updated.state.values,
            values(&[("email", "a@x.pl"), ("city", "Kraków"), ("company", "New")])
        );
        assert_eq!(updated.state.contact_type.as_deref(), Some("customer"));
        assert!(updated.state.tags.contains("spring"));
    }

    #[test]
    fn link_keeps_type_and_category_when_the_import_gives_none() {
        let mut existing = stored(1, &[("email", "a@x.pl")]);
        existing.state.contact_type = Some("lead".into());
        existing.state.category = Some("b2b".into());
        existing.state.tags = ["old".to_string()].into();
        let mut no_type = options(DuplicatePolicy::Link, &["email"]);
        no_type.contact_type = None;
        let plan = plan_merge(&[row(2, &[("email", "a@x.pl")])], vec![existing], &no_type);
        let state = &plan.updated_contacts[0].state;
        assert_eq!(state.contact_type.as_deref(), Some("lead"));
        assert_eq!(state.category.as_deref(), Some("b2b"));
        assert_eq!(state.tags, ["old".to_string(), "spring".to_string()].into());
    }

    #[test]
    fn duplicate_creates_a_separate_contact_and_skip_changes_nothing() {
        let existing = || vec![stored(3, &[("email", "a@x.pl"), ("city", "Gdańsk")])];
        let incoming = [row(2, &[("email", "a@x.pl"), ("city", "Poznań")])];

        let duplicated = plan_merge(
            &incoming,
            existing(),
            &options(DuplicatePolicy::Duplicate, &["email"]),
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
            &incoming,
            existing(),
            &options(DuplicatePolicy::Skip, &["email"]),
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
        let plan = plan_merge(&rows, vec![], &options(DuplicatePolicy::Link, &["email"]));
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
            &[row(2, &[("email", "a@x.pl"), ("city", "Opole")])],
            contacts,
            &options(DuplicatePolicy::Link, &["email"]),
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
            &[row(2, &[("email", "a@x.pl"), ("mobile", "+48501234567")])],
            contacts,
            &options(DuplicatePolicy::Link, &["email", "mobile"]),
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
            &rows,
            contacts,
            &options(DuplicatePolicy::Link, &["email", "mobile"]),
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
        assert_eq!(plan.updated_contacts[0].state.values["city"], "Sopot");
    }

    #[test]
    fn chunked_planning_equals_row_by_row_for_every_policy() {
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
        ];
        for policy in DuplicatePolicy::ALL {
            for match_on in [&["email"][..], &["email", "mobile"][..]] {
                let options = options(policy, match_on);
                assert_eq!(
                    chunked(&rows, &options),
                    row_by_row(&rows, &options),
                    "{policy} on {match_on:?}"
                );
            }
        }
    }

    #[test]
    fn rows_without_any_match_value_always_create() {
        let rows = [row(2, &[("city", "Kielce")]), row(3, &[("city", "Kielce")])];
        let plan = plan_merge(&rows, vec![], &options(DuplicatePolicy::Link, &["email"]));
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
