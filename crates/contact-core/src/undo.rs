//! Undoing an import: what an import changed in a contact it linked (its before-image), and
//! what undoing that change restores, field by field, without overwriting anything that
//! changed after the import.
//!
//! A before-image holds only what the import changed: the attributes it set to a new value
//! (with the value each had before, or none when the contact had none, and the value the
//! import wrote), the type and category when it changed them, and the tags it added. Undo
//! restores a field only while it still holds what the import wrote; a field that something
//! later changed is left as it is and reported.

use std::collections::{BTreeMap, BTreeSet};

use crate::merge::ContactState;

/// What one import changed in one contact it linked: enough to take the change back, and
/// to see whether something changed the same fields since.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportChange {
    /// Attribute → (value before the import, none when it had none; value the import wrote).
    pub values: BTreeMap<String, (Option<String>, String)>,
    /// (before, written), when the import changed the contact's type.
    pub contact_type: Option<(Option<String>, Option<String>)>,
    /// (before, written), when the import changed the contact's category.
    pub category: Option<(Option<String>, Option<String>)>,
    /// Tags the contact did not have before the import.
    pub tags_added: BTreeSet<String>,
}

impl ImportChange {
    /// The change from `before` to `after`. A link only sets values (cells left empty keep
    /// theirs), so a value that `after` lacks is never part of a change.
    pub fn between(before: &ContactState, after: &ContactState) -> Self {
        let values = after
            .values
            .iter()
            .filter(|(key, value)| before.values.get(*key) != Some(*value))
            .map(|(key, value)| {
                (
                    key.clone(),
                    (before.values.get(key).cloned(), value.clone()),
                )
            })
            .collect();
        let changed = |before: &Option<String>, after: &Option<String>| {
            (before != after).then(|| (before.clone(), after.clone()))
        };
        Self {
            values,
            contact_type: changed(&before.contact_type, &after.contact_type),
            category: changed(&before.category, &after.category),
            tags_added: after.tags.difference(&before.tags).cloned().collect(),
        }
    }

    /// True when the import changed nothing (nothing to record).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
            && self.contact_type.is_none()
            && self.category.is_none()
            && self.tags_added.is_empty()
    }
}

/// A field of a contact that undo leaves as it is, because something changed it after the
/// import: what it holds now and what the import had written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptField {
    pub field: ChangedField,
    pub current: Option<String>,
    pub written: Option<String>,
}

/// Which field of a contact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangedField {
    Attribute(String),
    ContactType,
    Category,
}

/// What undoing an import's change makes of a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restoration {
    pub state: ContactState,
    /// Fields left as they are, in field order.
    pub kept: Vec<KeptField>,
}

/// Takes `change` back from `current`: every field that still holds what the import wrote
/// gets its value from before the import; a field that holds anything else is kept and
/// reported; the tags the import added are removed (a tag something removed since stays
/// removed).
pub fn restore(current: &ContactState, change: &ImportChange) -> Restoration {
    let mut state = current.clone();
    let mut kept = Vec::new();
    for (key, (before, written)) in &change.values {
        let now = current.values.get(key);
        if now == Some(written) {
            match before {
                Some(before) => state.values.insert(key.clone(), before.clone()),
                None => state.values.remove(key),
            };
        } else {
            kept.push(KeptField {
                field: ChangedField::Attribute(key.clone()),
                current: now.cloned(),
                written: Some(written.clone()),
            });
        }
    }
    let fields = [
        (
            ChangedField::ContactType,
            &change.contact_type,
            &mut state.contact_type,
        ),
        (
            ChangedField::Category,
            &change.category,
            &mut state.category,
        ),
    ];
    for (field, change, slot) in fields {
        let Some((before, written)) = change else {
            continue;
        };
        if slot == written {
            *slot = before.clone();
        } else {
            kept.push(KeptField {
                field,
                current: slot.clone(),
                written: written.clone(),
            });
        }
    }
    state.tags.retain(|tag| !change.tags_added.contains(tag));
    Restoration { state, kept }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(values: &[(&str, &str)], contact_type: Option<&str>, tags: &[&str]) -> ContactState {
        ContactState {
            values: values
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            contact_type: contact_type.map(str::to_string),
            category: None,
            tags: tags.iter().map(|tag| tag.to_string()).collect(),
        }
    }

    /// Records the change from `before` to `after`, then undoes it on `current`.
    fn check(
        before: &ContactState,
        after: &ContactState,
        current: &ContactState,
        expected: &ContactState,
        expected_kept: &[(ChangedField, Option<&str>, Option<&str>)],
    ) {
        let change = ImportChange::between(before, after);
        let restoration = restore(current, &change);
        assert_eq!(&restoration.state, expected);
        let kept: Vec<KeptField> = expected_kept
            .iter()
            .map(|(field, current, written)| KeptField {
                field: field.clone(),
                current: current.map(str::to_string),
                written: written.map(str::to_string),
            })
            .collect();
        assert_eq!(restoration.kept, kept);
    }

    #[test]
    fn an_untouched_contact_gets_back_exactly_what_it_had() {
        let before = state(&[("email", "a@x.pl"), ("city", "Gdańsk")], None, &["old"]);
        let after = state(
            &[("email", "a@x.pl"), ("city", "Kraków"), ("company", "ACME")],
            Some("customer"),
            &["old", "fair"],
        );
        check(&before, &after, &after, &before, &[]);
    }

    #[test]
    fn a_value_changed_after_the_import_is_kept_and_reported() {
        let before = state(&[("email", "a@x.pl"), ("city", "Gdańsk")], None, &[]);
        let after = state(&[("email", "a@x.pl"), ("city", "Kraków")], None, &[]);
        let later = state(&[("email", "a@x.pl"), ("city", "Poznań")], None, &[]);
        check(
            &before,
            &after,
            &later,
            &later,
            &[(
                ChangedField::Attribute("city".into()),
                Some("Poznań"),
                Some("Kraków"),
            )],
        );
    }

    #[test]
    fn a_value_removed_after_the_import_stays_removed_and_is_reported() {
        let before = state(&[("email", "a@x.pl")], None, &[]);
        let after = state(&[("email", "a@x.pl"), ("city", "Kraków")], None, &[]);
        let later = state(&[("email", "a@x.pl")], None, &[]);
        check(
            &before,
            &after,
            &later,
            &later,
            &[(ChangedField::Attribute("city".into()), None, Some("Kraków"))],
        );
    }

    #[test]
    fn a_value_the_import_added_is_removed_again() {
        let before = state(&[("email", "a@x.pl")], None, &[]);
        let after = state(&[("email", "a@x.pl"), ("city", "Kraków")], None, &[]);
        check(&before, &after, &after, &before, &[]);
    }

    #[test]
    fn a_type_set_later_is_kept_while_values_and_tags_are_restored() {
        let before = state(
            &[("email", "a@x.pl"), ("city", "Gdańsk")],
            Some("lead"),
            &[],
        );
        let after = state(
            &[("email", "a@x.pl"), ("city", "Kraków")],
            Some("customer"),
            &["fair"],
        );
        let later = state(
            &[("email", "a@x.pl"), ("city", "Kraków")],
            Some("partner"),
            &["fair", "vip"],
        );
        let expected = state(
            &[("email", "a@x.pl"), ("city", "Gdańsk")],
            Some("partner"),
            &["vip"],
        );
        check(
            &before,
            &after,
            &later,
            &expected,
            &[(ChangedField::ContactType, Some("partner"), Some("customer"))],
        );
    }

    #[test]
    fn fields_the_import_did_not_change_are_never_touched_by_undo() {
        let before = state(
            &[("email", "a@x.pl"), ("city", "Gdańsk")],
            Some("lead"),
            &["a"],
        );
        let after = state(
            &[("email", "a@x.pl"), ("city", "Kraków")],
            Some("lead"),
            &["a"],
        );
        // Later: the type and a tag the import did not touch changed, and a value was added.
        let later = state(
            &[("email", "a@x.pl"), ("city", "Kraków"), ("company", "ACME")],
            Some("partner"),
            &[],
        );
        let expected = state(
            &[("email", "a@x.pl"), ("city", "Gdańsk"), ("company", "ACME")],
            Some("partner"),
            &[],
        );
        check(&before, &after, &later, &expected, &[]);
    }

    #[test]
    fn a_link_that_changes_nothing_records_nothing() {
        let before = state(&[("email", "a@x.pl")], Some("lead"), &["a"]);
        assert!(ImportChange::between(&before, &before).is_empty());
    }

    #[test]
    fn the_change_holds_only_what_changed() {
        let before = state(
            &[("email", "a@x.pl"), ("city", "Gdańsk")],
            Some("lead"),
            &["a"],
        );
        let after = state(
            &[("email", "a@x.pl"), ("city", "Gdańsk"), ("company", "ACME")],
            Some("lead"),
            &["a", "b"],
        );
        let change = ImportChange::between(&before, &after);
        assert_eq!(
            change,
            ImportChange {
                values: [("company".to_string(), (None, "ACME".to_string()))].into(),
                contact_type: None,
                category: None,
                tags_added: ["b".to_string()].into(),
            }
        );
    }
}
