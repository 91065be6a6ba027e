//! What the page's forms send, read into the contract's options: pure, so that every rule a
//! form follows is tested without a browser. A refused form comes back as it was typed.

use std::collections::BTreeMap;

use contact_contract::{DuplicatePolicy, ImportOptions, ValueMapping};

/// The "New import" form's choices, as typed (kept as text so a refused form shows them again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportChoices {
    pub contact_type: String,
    pub category: String,
    /// Comma-separated.
    pub tags: String,
    /// "link", "duplicate" or "skip".
    pub policy: String,
    /// The identifier attribute duplicates are found by; empty means email.
    pub match_on: String,
}

impl ImportChoices {
    /// Takes one field of the form; unknown fields are left out.
    pub fn set(&mut self, name: &str, value: String) {
        match name {
            "contact_type" => self.contact_type = value,
            "category" => self.category = value,
            "tags" => self.tags = value,
            "policy" => self.policy = value,
            "match_on" => self.match_on = value,
            _ => {}
        }
    }

    /// The import's options, or what is wrong with the choices, in words.
    pub fn options(&self) -> Result<ImportOptions, String> {
        let policy = match self.policy.trim() {
            "" | "link" => DuplicatePolicy::Link,
            "duplicate" => DuplicatePolicy::Duplicate,
            "skip" => DuplicatePolicy::Skip,
            other => return Err(format!("\"{other}\" is not a way to treat duplicates")),
        };
        let text = |value: &str| Some(value.trim().to_string()).filter(|value| !value.is_empty());
        let options = ImportOptions {
            policy,
            contact_type: text(&self.contact_type),
            category: text(&self.category),
            tags: self
                .tags
                .split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_string)
                .collect(),
            match_on: text(&self.match_on).into_iter().collect(),
            ..ImportOptions::default()
        };
        contact_contract::limits::check_options(&options)?;
        Ok(options)
    }

    /// The choices that give `options` (to show a draft's choices again).
    pub fn from_options(options: &ImportOptions) -> Self {
        Self {
            contact_type: options.contact_type.clone().unwrap_or_default(),
            category: options.category.clone().unwrap_or_default(),
            tags: options
                .tags
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            policy: match options.policy {
                DuplicatePolicy::Link => "link",
                DuplicatePolicy::Duplicate => "duplicate",
                DuplicatePolicy::Skip => "skip",
            }
            .to_string(),
            match_on: options.match_on.first().cloned().unwrap_or_default(),
        }
    }
}

/// One row of "Values to map": a value of the file, and the allowed value chosen for it
/// (empty: leave it, and its rows fail).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueChoice {
    pub attribute: String,
    pub value: String,
    pub allowed: String,
}

/// What the "Fields mapping" form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingAction {
    /// Show the preview again with these choices.
    Check,
    Import,
    DryRun,
}

/// The "Fields mapping" form: an attribute (or none) per column, the reading overrides and
/// the button pressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingChoices {
    pub draft: String,
    /// By 0-based column: the attribute key, or empty for "not imported". Columns the form
    /// did not send follow the suggestion.
    pub columns: BTreeMap<usize, String>,
    /// The "Values to map" rows the form showed, by their position in it.
    pub values: BTreeMap<usize, ValueChoice>,
    pub encoding: Option<String>,
    pub delimiter: Option<String>,
    pub action: MappingAction,
}

impl MappingChoices {
    /// Reads the form's fields: `draft`, `column.N`, `value.N.attribute`, `value.N.value`,
    /// `value.N.allowed`, `encoding`, `delimiter`, `action`.
    pub fn from_fields(fields: &[(String, String)]) -> Result<Self, String> {
        let mut choices = Self {
            draft: String::new(),
            columns: BTreeMap::new(),
            values: BTreeMap::new(),
            encoding: None,
            delimiter: None,
            action: MappingAction::Check,
        };
        let chosen = |value: &str| Some(value.trim().to_string()).filter(|value| !value.is_empty());
        let strange = |name: &str| format!("\"{name}\" is not a field of this form");
        for (name, value) in fields {
            match name.as_str() {
                "draft" => choices.draft = value.clone(),
                "encoding" => choices.encoding = chosen(value),
                "delimiter" => choices.delimiter = chosen(value),
                "action" => {
                    choices.action = match value.as_str() {
                        "check" => MappingAction::Check,
                        "import" => MappingAction::Import,
                        "dry_run" => MappingAction::DryRun,
                        other => return Err(format!("\"{other}\" is not a button of this form")),
                    }
                }
                _ => {
                    if let Some(index) = name.strip_prefix("column.") {
                        let index: usize = index.parse().map_err(|_| strange(name))?;
                        choices.columns.insert(index, value.trim().to_string());
                    } else if let Some(rest) = name.strip_prefix("value.") {
                        let (index, part) = rest.split_once('.').ok_or_else(|| strange(name))?;
                        let index: usize = index.parse().map_err(|_| strange(name))?;
                        let row = choices.values.entry(index).or_default();
                        match part {
                            "attribute" => row.attribute = value.trim().to_string(),
                            "value" => row.value = value.clone(),
                            "allowed" => row.allowed = value.trim().to_string(),
                            _ => return Err(strange(name)),
                        }
                    }
                }
            }
        }
        if choices.draft.is_empty() {
            return Err("the form lost its draft; load the file again".to_string());
        }
        Ok(choices)
    }

    /// The values given an allowed value, for the attributes in `filled` (a row left over
    /// from an attribute no column fills any more is dropped: its values were not shown
    /// for the new choice).
    pub fn value_mappings(&self, filled: &[Option<String>]) -> Vec<ValueMapping> {
        self.values
            .values()
            .filter(|row| !row.allowed.is_empty())
            .filter(|row| filled.iter().flatten().any(|key| *key == row.attribute))
            .map(|row| ValueMapping {
                attribute: row.attribute.clone(),
                value: row.value.clone(),
                allowed: row.allowed.clone(),
            })
            .collect()
    }

    /// True when the form showed `value` of `attribute` (whatever was chosen for it).
    pub fn showed_value(&self, attribute: &str, value: &str) -> bool {
        self.values.values().any(|row| {
            row.attribute == attribute
                && row.value.trim().to_lowercase() == value.trim().to_lowercase()
        })
    }
}

/// The "Fix failed rows" form: the cells of one page of failed rows as corrected, and which
/// of them to import again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedRows {
    /// The line the page's rows come after (none: the first page).
    pub after: Option<u64>,
    /// The ticked rows, in the page's order: their cells by 0-based column.
    ticked: Vec<BTreeMap<usize, String>>,
}

impl FixedRows {
    /// Reads `after`, `cell.ROW.COLUMN` and `keep.ROW`: a row is imported only when ticked.
    pub fn from_fields(fields: &[(String, String)]) -> Result<Self, String> {
        let strange = |name: &str| format!("\"{name}\" is not a field of this form");
        let mut after = None;
        let mut cells: BTreeMap<usize, BTreeMap<usize, String>> = BTreeMap::new();
        let mut kept = std::collections::BTreeSet::new();
        for (name, value) in fields {
            if name == "after" {
                after = Some(value.trim())
                    .filter(|value| !value.is_empty())
                    .map(|value| value.parse().map_err(|_| strange(name)))
                    .transpose()?;
            } else if let Some(row) = name.strip_prefix("keep.") {
                kept.insert(row.parse::<usize>().map_err(|_| strange(name))?);
            } else if let Some(rest) = name.strip_prefix("cell.") {
                let (row, column) = rest.split_once('.').ok_or_else(|| strange(name))?;
                let row: usize = row.parse().map_err(|_| strange(name))?;
                let column: usize = column.parse().map_err(|_| strange(name))?;
                cells.entry(row).or_default().insert(column, value.clone());
            } else {
                return Err(strange(name));
            }
        }
        let ticked = cells
            .into_iter()
            .filter(|(row, _)| kept.contains(row))
            .map(|(_, cells)| cells)
            .collect();
        Ok(Self { after, ticked })
    }

    /// The ticked rows as records of the file's `width`: cells the form did not send are
    /// empty, and a row left all blank is dropped (it would be no record at all).
    pub fn records(&self, width: usize) -> Result<Vec<Vec<String>>, String> {
        let mut records = Vec::with_capacity(self.ticked.len());
        for cells in &self.ticked {
            let mut record = vec![String::new(); width];
            for (&column, value) in cells {
                *record
                    .get_mut(column)
                    .ok_or_else(|| format!("the file has no column {}", column + 1))? =
                    value.clone();
            }
            if record.iter().any(|cell| !cell.trim().is_empty()) {
                records.push(record);
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn choices_become_options_with_tags_split_and_blanks_left_out() {
        let mut choices = ImportChoices::default();
        choices.set("contact_type", " lead ".into());
        choices.set("tags", "targi 2026, , vip,vip".into());
        choices.set("policy", "duplicate".into());
        choices.set("unknown", "ignored".into());
        let options = choices.options().expect("valid choices");
        assert_eq!(options.contact_type.as_deref(), Some("lead"));
        assert_eq!(options.category, None);
        assert_eq!(
            options.tags.iter().map(String::as_str).collect::<Vec<_>>(),
            ["targi 2026", "vip"]
        );
        assert_eq!(options.policy, DuplicatePolicy::Duplicate);
        assert!(options.match_on.is_empty());
        assert_eq!(
            ImportChoices::from_options(&options).tags,
            "targi 2026, vip"
        );
    }

    #[test]
    fn an_unknown_policy_or_too_many_tags_is_refused_in_words() {
        let mut choices = ImportChoices {
            policy: "merge".into(),
            ..ImportChoices::default()
        };
        assert_eq!(
            choices.options(),
            Err("\"merge\" is not a way to treat duplicates".to_string())
        );
        choices.policy = "skip".into();
        choices.tags = (0..=contact_contract::limits::MAX_TAGS)
            .map(|tag| format!("tag{tag}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(choices.options().is_err());
    }

    #[test]
    fn the_mapping_form_gives_one_mapping_per_chosen_column() {
        let choices = MappingChoices::from_fields(&fields(&[
            ("draft", "token"),
            ("column.0", "email"),
            ("column.1", ""),
            ("column.2", "city"),
            ("column.9", "phone"),
            ("encoding", ""),
            ("delimiter", ";"),
            ("action", "dry_run"),
        ]))
        .expect("a valid form");
        assert_eq!(choices.action, MappingAction::DryRun);
        assert_eq!(choices.encoding, None);
        assert_eq!(choices.delimiter.as_deref(), Some(";"));
        assert_eq!(
            choices.columns,
            BTreeMap::from([
                (0, "email".to_string()),
                (1, String::new()),
                (2, "city".into()),
                (9, "phone".into())
            ])
        );
    }

    #[test]
    fn value_rows_become_value_mappings_for_the_attributes_still_filled() {
        let choices = MappingChoices::from_fields(&fields(&[
            ("draft", "token"),
            ("value.0.attribute", "gender"),
            ("value.0.value", " K "),
            ("value.0.allowed", "F"),
            ("value.1.attribute", "gender"),
            ("value.1.value", "x"),
            ("value.1.allowed", ""),
            ("value.2.attribute", "segment"),
            ("value.2.value", "VIP"),
            ("value.2.allowed", "premium"),
        ]))
        .expect("a valid form");
        assert_eq!(
            choices.value_mappings(&[Some("email".into()), Some("gender".into()), None]),
            vec![ValueMapping {
                attribute: "gender".into(),
                value: " K ".into(),
                allowed: "F".into()
            }]
        );
        assert!(choices.showed_value("gender", "x"));
        assert!(choices.showed_value("gender", "k"));
        assert!(!choices.showed_value("segment", "gold"));
        assert!(
            MappingChoices::from_fields(&fields(&[("draft", "t"), ("value.0.colour", "red")]))
                .is_err()
        );
    }

    #[test]
    fn a_mapping_form_without_its_draft_or_with_a_strange_field_is_refused() {
        assert!(MappingChoices::from_fields(&fields(&[("column.0", "email")])).is_err());
        assert!(
            MappingChoices::from_fields(&fields(&[("draft", "t"), ("column.x", "email")])).is_err()
        );
        assert!(
            MappingChoices::from_fields(&fields(&[("draft", "t"), ("action", "delete")])).is_err()
        );
    }

    #[test]
    fn only_ticked_rows_are_kept_in_the_order_of_the_page_with_their_corrections() {
        let form = fields(&[
            ("after", "40"),
            ("cell.1.0", "second@example.pl"),
            ("cell.1.1", "Ola"),
            ("cell.0.0", "first@example.pl"),
            ("cell.0.1", "Jan"),
            ("cell.2.0", "+48 501 234 567"),
            ("cell.2.1", "Piotr"),
            ("keep.0", "yes"),
            ("keep.1", "yes"),
        ]);
        let fixed = FixedRows::from_fields(&form).expect("a valid form");
        assert_eq!(fixed.after, Some(40));
        assert_eq!(
            fixed.records(2).expect("within the header"),
            vec![
                vec!["first@example.pl".to_string(), "Jan".to_string()],
                vec!["second@example.pl".to_string(), "Ola".to_string()],
            ]
        );
    }

    #[test]
    fn missing_cells_are_empty_and_blank_rows_are_dropped() {
        let form = fields(&[
            ("after", ""),
            ("cell.0.1", "Jan"),
            ("cell.1.0", " "),
            ("keep.0", "yes"),
            ("keep.1", "yes"),
        ]);
        let fixed = FixedRows::from_fields(&form).expect("a valid form");
        assert_eq!(fixed.after, None);
        assert_eq!(
            fixed.records(3).expect("within the header"),
            vec![vec![String::new(), "Jan".to_string(), String::new()]]
        );
    }

    #[test]
    fn a_cell_outside_the_header_or_a_strange_field_is_refused_in_words() {
        let wide = FixedRows::from_fields(&fields(&[("cell.0.5", "x"), ("keep.0", "yes")]))
            .expect("a valid form");
        assert_eq!(wide.records(2), Err("the file has no column 6".to_string()));
        let strange = FixedRows::from_fields(&fields(&[("cell.x.0", "x")]));
        assert_eq!(
            strange,
            Err("\"cell.x.0\" is not a field of this form".to_string())
        );
        let after = FixedRows::from_fields(&fields(&[("after", "soon")]));
        assert_eq!(
            after,
            Err("\"after\" is not a field of this form".to_string())
        );
    }
}
