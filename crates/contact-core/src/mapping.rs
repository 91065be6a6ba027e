//! Owns the attribute catalog types and the resolution of a file's columns to attributes.
//!
//! A [`MappingPlan`] is decided once per import from the header row, the account's catalog and
//! the user's `--map COLUMN=ATTRIBUTE` options; every record is then validated against it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The kind of value an attribute holds; decides how cells are validated and normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeType {
    Text,
    Email,
    Phone,
    Integer,
    Decimal,
    Date,
    Boolean,
    /// One of a fixed list of values, stored in the list's own spelling.
    Enum {
        values: Vec<String>,
    },
}

/// One attribute of an account's contact base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    /// Stable machine name, see [`validate_attribute_key`].
    pub key: String,
    /// Human name shown in reports.
    pub label: String,
    pub attribute_type: AttributeType,
    /// Every imported row must have a value for it.
    pub required: bool,
    /// Contacts may be matched on it (its values identify one contact).
    pub identifier: bool,
}

/// One `--map COLUMN=ATTRIBUTE` option: the user's choice of attribute for a column. An empty
/// attribute (`--map COLUMN=`) keeps the column out of the import, even when its name is an
/// attribute's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMapping {
    pub column: String,
    pub attribute: String,
}

/// Per attribute key: a file's value, folded by [`fold_value`], and the allowed value it is
/// read as, already normalized (see [`crate::value_map`]).
pub type ValueMaps = BTreeMap<String, BTreeMap<String, String>>;

/// How the columns of one file map to attributes, decided once before any record is validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingPlan {
    /// The file's header as read (trimmed).
    pub header: Vec<String>,
    /// Index-aligned with `header`; `None` means the column is ignored.
    pub columns: Vec<Option<AttributeDef>>,
    /// Header names of ignored columns, in file order, so the report can list them.
    pub unmapped_columns: Vec<String>,
    /// Attribute keys (as spelled in the catalog) that rows are matched on.
    pub match_on: Vec<String>,
    /// The file's own spellings of choice values; empty for most imports.
    pub value_maps: ValueMaps,
}

/// Every problem found while resolving a mapping, so the user can fix them all in one go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingErrors {
    pub problems: Vec<MappingProblem>,
}

/// One reason a file's columns cannot be mapped; each names the columns and attributes involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingProblem {
    EmptyHeader,
    DuplicateColumn {
        name: String,
        /// 1-based column positions.
        positions: Vec<usize>,
    },
    UnknownAttribute {
        column: String,
        attribute: String,
    },
    ColumnNotInHeader {
        column: String,
    },
    /// One column given two different attributes by `--map` options.
    ColumnMappedTwice {
        column: String,
        attributes: Vec<String>,
    },
    AttributeMappedTwice {
        attribute: String,
        columns: Vec<String>,
    },
    RequiredUnmapped {
        attribute: String,
    },
    UnknownMatchAttribute {
        attribute: String,
    },
    MatchAttributeNotIdentifier {
        attribute: String,
    },
    MatchAttributeUnmapped {
        attribute: String,
    },
    ValueMapUnknownAttribute {
        attribute: String,
    },
    /// Only enum and boolean attributes have a fixed set of values to map onto.
    ValueMapNotChoice {
        attribute: String,
        attribute_type: String,
    },
    ValueMapUnmapped {
        attribute: String,
    },
    ValueMapEmptyValue {
        attribute: String,
    },
    ValueMapTargetNotAllowed {
        attribute: String,
        value: String,
        target: String,
        reason: String,
    },
    ValueMappedTwice {
        attribute: String,
        value: String,
        targets: Vec<String>,
    },
    /// The value is one the attribute allows, mapped onto another.
    ValueMapOfAllowedValue {
        attribute: String,
        value: String,
    },
    /// One column both kept out (`--map COLUMN=`) and given an attribute.
    ColumnKeptOutAndMapped {
        column: String,
        attribute: String,
    },
}

/// The attributes a new account is seeded with, in the order they are shown.
///
/// email (Email, required, identifier), mobile (Phone), first_name, last_name, company, city,
/// street, postal_code (Text), birthday (Date), external_id (Text).
pub fn standard_attributes() -> Vec<AttributeDef> {
    let attribute = |key: &str, label: &str, attribute_type: AttributeType| AttributeDef {
        key: key.to_owned(),
        label: label.to_owned(),
        attribute_type,
        required: false,
        identifier: false,
    };
    vec![
        AttributeDef {
            required: true,
            identifier: true,
            ..attribute("email", "Email", AttributeType::Email)
        },
        attribute("mobile", "Mobile phone", AttributeType::Phone),
        attribute("first_name", "First name", AttributeType::Text),
        attribute("last_name", "Last name", AttributeType::Text),
        attribute("company", "Company", AttributeType::Text),
        attribute("city", "City", AttributeType::Text),
        attribute("street", "Street", AttributeType::Text),
        attribute("postal_code", "Postal code", AttributeType::Text),
        attribute("birthday", "Birthday", AttributeType::Date),
        attribute("external_id", "External ID", AttributeType::Text),
    ]
}

/// Checks a key before an attribute is created: keys become JSON keys and column names in reports,
/// so they are lowercase ASCII letters, digits and '_', start with a letter, at most 64 chars.
pub fn validate_attribute_key(key: &str) -> Result<(), String> {
    const MAX_KEY_LENGTH: usize = 64;
    let Some(first_character) = key.chars().next() else {
        return Err("an attribute key cannot be empty".to_owned());
    };
    if key.len() > MAX_KEY_LENGTH {
        return Err(format!(
            "attribute key \"{key}\" is longer than {MAX_KEY_LENGTH} characters"
        ));
    }
    if !first_character.is_ascii_lowercase() {
        return Err(format!(
            "attribute key \"{key}\" must start with a lowercase letter a-z"
        ));
    }
    if let Some(bad_character) = key.chars().find(|&character| {
        !(character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_')
    }) {
        return Err(format!(
            "attribute key \"{key}\" contains '{bad_character}'; use only lowercase letters a-z, digits and '_'"
        ));
    }
    Ok(())
}

/// An attribute as a user asks to add it, checked and completed: a valid key, an enum with
/// allowed values none of which is blank, and a label (the key when none is given).
pub fn new_attribute(mut attribute: AttributeDef) -> Result<AttributeDef, String> {
    validate_attribute_key(&attribute.key)?;
    if let AttributeType::Enum { values } = &attribute.attribute_type {
        if values.is_empty() || values.iter().any(|value| value.trim().is_empty()) {
            return Err(format!(
                "enum attribute \"{}\" needs non-empty allowed values",
                attribute.key
            ));
        }
    }
    if attribute.label.trim().is_empty() {
        attribute.label = attribute.key.clone();
    }
    Ok(attribute)
}

/// Decides which attribute each column of the file fills and what rows are matched on.
///
/// Columns whose header equals an attribute key (ignoring case) map to it automatically; explicit
/// mappings override that. `match_on` empty means `["email"]`. All problems are collected.
pub fn resolve_mapping(
    header: &[String],
    catalog: &[AttributeDef],
    explicit: &[ColumnMapping],
    match_on: &[String],
) -> Result<MappingPlan, MappingErrors> {
    let header_names: Vec<String> = header.iter().map(|name| name.trim().to_owned()).collect();
    if header_names.iter().all(|name| name.is_empty()) {
        return Err(MappingErrors {
            problems: vec![MappingProblem::EmptyHeader],
        });
    }
    let mut problems = duplicate_column_problems(&header_names);

    // Explicit mappings: the catalog index chosen for each column, and which columns were named.
    let mut explicit_attribute_for_column: Vec<Option<usize>> = vec![None; header_names.len()];
    let mut column_named_explicitly = vec![false; header_names.len()];
    let mut column_kept_out = vec![false; header_names.len()];
    for mapping in explicit {
        let column_name = mapping.column.trim();
        let attribute_name = mapping.attribute.trim();
        let Some(column_index) = header_names
            .iter()
            .position(|name| equal_ignoring_case(name, column_name))
        else {
            problems.push(MappingProblem::ColumnNotInHeader {
                column: column_name.to_owned(),
            });
            continue;
        };
        column_named_explicitly[column_index] = true;
        if attribute_name.is_empty() {
            column_kept_out[column_index] = true;
            continue;
        }
        let Some(catalog_index) = find_attribute(catalog, attribute_name) else {
            problems.push(MappingProblem::UnknownAttribute {
                column: header_names[column_index].clone(),
                attribute: attribute_name.to_owned(),
            });
            continue;
        };
        match explicit_attribute_for_column[column_index] {
            None => explicit_attribute_for_column[column_index] = Some(catalog_index),
            Some(earlier_index) if earlier_index == catalog_index => {}
            Some(earlier_index) => {
                let column = header_names[column_index].clone();
                let attribute = catalog[catalog_index].key.clone();
                let existing_problem = problems.iter_mut().find_map(|problem| match problem {
                    MappingProblem::ColumnMappedTwice {
                        column: named_column,
                        attributes,
                    } if *named_column == column => Some(attributes),
                    _ => None,
                });
                match existing_problem {
                    Some(attributes) => {
                        if !attributes.contains(&attribute) {
                            attributes.push(attribute);
                        }
                    }
                    None => problems.push(MappingProblem::ColumnMappedTwice {
                        column,
                        attributes: vec![catalog[earlier_index].key.clone(), attribute],
                    }),
                }
            }
        }
    }

    for (column_index, kept_out) in column_kept_out.iter().enumerate() {
        if let (true, Some(catalog_index)) =
            (*kept_out, explicit_attribute_for_column[column_index])
        {
            problems.push(MappingProblem::ColumnKeptOutAndMapped {
                column: header_names[column_index].clone(),
                attribute: catalog[catalog_index].key.clone(),
            });
        }
    }

    // Each attribute gets at most one column: explicit mappings first, then automatic ones.
    let mut column_for_attribute: Vec<Option<usize>> = vec![None; catalog.len()];
    for (catalog_index, attribute) in catalog.iter().enumerate() {
        let explicit_columns: Vec<usize> = (0..header_names.len())
            .filter(|&column_index| {
                explicit_attribute_for_column[column_index] == Some(catalog_index)
            })
            .collect();
        if explicit_columns.len() > 1 {
            problems.push(MappingProblem::AttributeMappedTwice {
                attribute: attribute.key.clone(),
                columns: explicit_columns
                    .iter()
                    .map(|&column_index| header_names[column_index].clone())
                    .collect(),
            });
        }
        column_for_attribute[catalog_index] = explicit_columns.first().copied().or_else(|| {
            // Duplicate header names are reported above; the first of them is used here.
            (0..header_names.len()).find(|&column_index| {
                !column_named_explicitly[column_index]
                    && equal_ignoring_case(&header_names[column_index], &attribute.key)
            })
        });
    }

    let mut columns: Vec<Option<AttributeDef>> = vec![None; header_names.len()];
    for (catalog_index, column_index) in column_for_attribute.iter().enumerate() {
        if let Some(column_index) = column_index {
            columns[*column_index] = Some(catalog[catalog_index].clone());
        }
    }
    let unmapped_columns: Vec<String> = header_names
        .iter()
        .zip(&columns)
        .filter(|(_, attribute)| attribute.is_none())
        .map(|(name, _)| name.clone())
        .collect();

    for (catalog_index, attribute) in catalog.iter().enumerate() {
        if attribute.required && column_for_attribute[catalog_index].is_none() {
            problems.push(MappingProblem::RequiredUnmapped {
                attribute: attribute.key.clone(),
            });
        }
    }

    let default_match_on = ["email".to_owned()];
    let requested_match_on = if match_on.is_empty() {
        &default_match_on[..]
    } else {
        match_on
    };
    let mut resolved_match_on: Vec<String> = Vec::new();
    for requested in requested_match_on {
        let requested = requested.trim();
        let Some(catalog_index) = find_attribute(catalog, requested) else {
            problems.push(MappingProblem::UnknownMatchAttribute {
                attribute: requested.to_owned(),
            });
            continue;
        };
        let attribute = &catalog[catalog_index];
        if resolved_match_on.contains(&attribute.key) {
            continue;
        }
        resolved_match_on.push(attribute.key.clone());
        if !attribute.identifier {
            problems.push(MappingProblem::MatchAttributeNotIdentifier {
                attribute: attribute.key.clone(),
            });
        } else if column_for_attribute[catalog_index].is_none() && !attribute.required {
            // A required attribute that is unmapped is already reported as such.
            problems.push(MappingProblem::MatchAttributeUnmapped {
                attribute: attribute.key.clone(),
            });
        }
    }

    if !problems.is_empty() {
        return Err(MappingErrors { problems });
    }
    Ok(MappingPlan {
        header: header_names,
        columns,
        unmapped_columns,
        match_on: resolved_match_on,
        value_maps: ValueMaps::new(),
    })
}

/// A value as value maps compare it: trimmed and lower-cased, as choice values are matched.
pub fn fold_value(value: &str) -> String {
    value.trim().to_lowercase()
}

impl MappingPlan {
    /// How many columns fill an attribute; for the import summary.
    pub fn mapped_attribute_count(&self) -> usize {
        self.columns
            .iter()
            .filter(|column| column.is_some())
            .count()
    }

    /// True when the plan fills the attribute `key` or matches on it: while an import with
    /// this plan runs, the attribute must stay.
    pub fn uses_attribute(&self, key: &str) -> bool {
        self.match_on.iter().any(|matched| matched == key)
            || self
                .columns
                .iter()
                .flatten()
                .any(|attribute| attribute.key == key)
    }

    /// The allowed value a cell of attribute `key` is read as, when the file's spelling of it
    /// is mapped.
    pub fn mapped_value(&self, key: &str, raw: &str) -> Option<&str> {
        if self.value_maps.is_empty() {
            return None;
        }
        self.value_maps
            .get(key)?
            .get(&fold_value(raw))
            .map(String::as_str)
    }

    /// The attribute the column at `index` (0-based) fills; `None` if ignored or out of range.
    pub fn attribute_for_column(&self, index: usize) -> Option<&AttributeDef> {
        self.columns.get(index).and_then(Option::as_ref)
    }
}

impl FromStr for AttributeType {
    type Err = String;

    /// Parses "text|email|phone|integer|decimal|date|boolean|enum"; "enum" has no values yet.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "email" => Ok(Self::Email),
            "phone" => Ok(Self::Phone),
            "integer" => Ok(Self::Integer),
            "decimal" => Ok(Self::Decimal),
            "date" => Ok(Self::Date),
            "boolean" => Ok(Self::Boolean),
            "enum" => Ok(Self::Enum { values: Vec::new() }),
            _ => Err(format!(
                "unknown attribute type \"{}\" (expected one of: text, email, phone, integer, decimal, date, boolean, enum)",
                text.trim()
            )),
        }
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Text => "text",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Integer => "integer",
            Self::Decimal => "decimal",
            Self::Date => "date",
            Self::Boolean => "boolean",
            Self::Enum { .. } => "enum",
        };
        formatter.write_str(name)
    }
}

impl FromStr for ColumnMapping {
    type Err = String;

    /// Parses "COLUMN=ATTRIBUTE", split at the last '=' so column names may contain '=';
    /// "COLUMN=" keeps the column out of the import.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((column, attribute)) = text.rsplit_once('=') else {
            return Err(format!(
                "expected COLUMN=ATTRIBUTE, got \"{text}\" (no '=')"
            ));
        };
        let (column, attribute) = (column.trim(), attribute.trim());
        if column.is_empty() {
            return Err(format!(
                "expected COLUMN=ATTRIBUTE, got \"{text}\" (the column name is empty)"
            ));
        }
        Ok(Self {
            column: column.to_owned(),
            attribute: attribute.to_owned(),
        })
    }
}

impl fmt::Display for MappingErrors {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                formatter.write_str("; ")?;
            }
            write!(formatter, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MappingErrors {}

impl fmt::Display for MappingProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyHeader => formatter.write_str(
                "the header row is empty (the first line of the file must name the columns)",
            ),
            Self::DuplicateColumn { name, positions } => write!(
                formatter,
                "column \"{name}\" appears more than once in the header (positions {})",
                join_displayed(positions)
            ),
            Self::UnknownAttribute { column, attribute } => write!(
                formatter,
                "column \"{column}\" is mapped to unknown attribute \"{attribute}\""
            ),
            Self::ColumnNotInHeader { column } => write!(
                formatter,
                "column \"{column}\" given in --map is not in the file's header"
            ),
            Self::ColumnMappedTwice { column, attributes } => write!(
                formatter,
                "column \"{column}\" is mapped to more than one attribute ({})",
                join_quoted(attributes)
            ),
            Self::AttributeMappedTwice { attribute, columns } => write!(
                formatter,
                "attribute \"{attribute}\" is mapped from more than one column ({})",
                join_quoted(columns)
            ),
            Self::RequiredUnmapped { attribute } => write!(
                formatter,
                "required attribute \"{attribute}\" is not mapped (map a column with --map COLUMN={attribute})"
            ),
            Self::UnknownMatchAttribute { attribute } => write!(
                formatter,
                "contacts cannot be matched on \"{attribute}\": there is no such attribute"
            ),
            Self::MatchAttributeNotIdentifier { attribute } => write!(
                formatter,
                "contacts cannot be matched on \"{attribute}\": it is not an identifier attribute"
            ),
            Self::MatchAttributeUnmapped { attribute } => write!(
                formatter,
                "contacts cannot be matched on \"{attribute}\": no column is mapped to it (map one with --map COLUMN={attribute})"
            ),
            Self::ValueMapUnknownAttribute { attribute } => write!(
                formatter,
                "values are mapped for \"{attribute}\", but there is no such attribute"
            ),
            Self::ValueMapNotChoice {
                attribute,
                attribute_type,
            } => write!(
                formatter,
                "values are mapped for \"{attribute}\", but it is a {attribute_type} attribute: only enum and boolean values can be mapped"
            ),
            Self::ValueMapUnmapped { attribute } => write!(
                formatter,
                "values are mapped for \"{attribute}\", but no column is mapped to it"
            ),
            Self::ValueMapEmptyValue { attribute } => write!(
                formatter,
                "a value mapped for \"{attribute}\" is empty (an empty cell stays empty)"
            ),
            Self::ValueMapTargetNotAllowed {
                attribute,
                value,
                target,
                reason,
            } => write!(
                formatter,
                "\"{value}\" cannot be read as \"{target}\" for \"{attribute}\": {reason}"
            ),
            Self::ValueMappedTwice {
                attribute,
                value,
                targets,
            } => write!(
                formatter,
                "\"{value}\" is mapped to more than one value of \"{attribute}\" ({})",
                join_quoted(targets)
            ),
            Self::ValueMapOfAllowedValue { attribute, value } => write!(
                formatter,
                "\"{value}\" is already a value of \"{attribute}\"; only values it does not allow can be mapped"
            ),
            Self::ColumnKeptOutAndMapped { column, attribute } => write!(
                formatter,
                "column \"{column}\" is both kept out of the import and mapped to \"{attribute}\""
            ),
        }
    }
}

fn equal_ignoring_case(left: &str, right: &str) -> bool {
    left.eq_ignore_ascii_case(right) || left.to_lowercase() == right.to_lowercase()
}

pub(crate) fn find_attribute(catalog: &[AttributeDef], name: &str) -> Option<usize> {
    catalog
        .iter()
        .position(|attribute| equal_ignoring_case(&attribute.key, name))
}

fn duplicate_column_problems(header_names: &[String]) -> Vec<MappingProblem> {
    let mut problems = Vec::new();
    let mut already_reported = vec![false; header_names.len()];
    for (first_index, name) in header_names.iter().enumerate() {
        if name.is_empty() || already_reported[first_index] {
            continue;
        }
        let positions: Vec<usize> = (first_index..header_names.len())
            .filter(|&other_index| equal_ignoring_case(&header_names[other_index], name))
            .collect();
        if positions.len() > 1 {
            for &position in &positions {
                already_reported[position] = true;
            }
            problems.push(MappingProblem::DuplicateColumn {
                name: name.clone(),
                positions: positions.iter().map(|position| position + 1).collect(),
            });
        }
    }
    problems
}

fn join_displayed(values: &[usize]) -> String {
    values
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|value| format!("\"{value}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(key: &str, label: &str, attribute_type: AttributeType) -> AttributeDef {
        AttributeDef {
            key: key.to_owned(),
            label: label.to_owned(),
            attribute_type,
            required: false,
            identifier: false,
        }
    }

    #[test]
    fn a_new_attribute_without_a_label_is_labelled_with_its_key() {
        let attribute = new_attribute(asked("loyalty", "  ", AttributeType::Integer))
            .expect("a valid attribute");
        assert_eq!(attribute.label, "loyalty");
        let labelled = new_attribute(asked("loyalty", "Loyalty", AttributeType::Integer))
            .expect("a valid attribute");
        assert_eq!(labelled.label, "Loyalty");
    }

    #[test]
    fn a_new_attribute_is_refused_for_a_bad_key_or_an_enum_without_real_values() {
        assert!(new_attribute(asked("Loyalty", "", AttributeType::Text))
            .expect_err("refused")
            .contains("lowercase"));
        for values in [vec![], vec!["F".to_owned(), " ".to_owned()]] {
            let error = new_attribute(asked("gender", "", AttributeType::Enum { values }))
                .expect_err("refused");
            assert_eq!(
                error,
                "enum attribute \"gender\" needs non-empty allowed values"
            );
        }
    }

    #[test]
    fn a_plan_uses_the_attributes_it_fills_and_matches_on_and_no_other() {
        let email = asked("email", "Email", AttributeType::Email);
        let plan = MappingPlan {
            header: strings(&["E-mail", "Notes"]),
            columns: vec![Some(email), None],
            unmapped_columns: strings(&["Notes"]),
            match_on: strings(&["external_id"]),
            value_maps: ValueMaps::new(),
        };
        assert!(plan.uses_attribute("email"));
        assert!(plan.uses_attribute("external_id"));
        assert!(!plan.uses_attribute("notes"));
        assert!(!plan.uses_attribute("city"));
    }

    #[test]
    fn a_column_chosen_as_not_imported_stays_out_even_when_named_like_an_attribute() {
        let header = strings(&["email", "city", "Notes"]);
        let plan = resolve_mapping(&header, &standard_attributes(), &mappings(&["city="]), &[])
            .expect("valid");
        assert_eq!(
            plan.attribute_for_column(0).map(|a| a.key.as_str()),
            Some("email")
        );
        assert_eq!(plan.attribute_for_column(1), None);
        assert_eq!(plan.unmapped_columns, strings(&["city", "Notes"]));
        let required =
            resolve_mapping(&header, &standard_attributes(), &mappings(&["email="]), &[])
                .expect_err("email is required");
        assert_eq!(
            required.problems,
            vec![MappingProblem::RequiredUnmapped {
                attribute: "email".into()
            }]
        );
        let both = resolve_mapping(
            &header,
            &standard_attributes(),
            &mappings(&["city=", "City=city"]),
            &[],
        )
        .expect_err("a column cannot be both");
        assert_eq!(
            both.problems,
            vec![MappingProblem::ColumnKeptOutAndMapped {
                column: "city".into(),
                attribute: "city".into()
            }]
        );
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| (*value).to_owned()).collect()
    }

    fn mappings(values: &[&str]) -> Vec<ColumnMapping> {
        values
            .iter()
            .map(|value| value.parse().expect("test mapping is well formed"))
            .collect()
    }

    /// A plan in a compact form: each column as `header→key` or `header→-`, then `match: ...`.
    fn describe_plan(plan: &MappingPlan) -> String {
        let columns: Vec<String> = plan
            .header
            .iter()
            .zip(&plan.columns)
            .map(|(name, attribute)| match attribute {
                Some(attribute) => format!("{name}→{}", attribute.key),
                None => format!("{name}→-"),
            })
            .collect();
        format!("{}; match: {}", columns.join(", "), plan.match_on.join(","))
    }

    fn check(header: &[&str], explicit: &[&str], match_on: &[&str], expected: Result<&str, &str>) {
        check_with_catalog(&standard_attributes(), header, explicit, match_on, expected);
    }

    fn check_with_catalog(
        catalog: &[AttributeDef],
        header: &[&str],
        explicit: &[&str],
        match_on: &[&str],
        expected: Result<&str, &str>,
    ) {
        let actual = resolve_mapping(
            &strings(header),
            catalog,
            &mappings(explicit),
            &strings(match_on),
        );
        let actual = match &actual {
            Ok(plan) => Ok(describe_plan(plan)),
            Err(errors) => Err(errors.to_string()),
        };
        assert_eq!(
            actual,
            expected.map(str::to_owned).map_err(str::to_owned),
            "header {header:?}, explicit {explicit:?}, match on {match_on:?}"
        );
    }

    /// The standard catalog plus a non-required identifier, for match_on tests.
    fn catalog_with_customer_number() -> Vec<AttributeDef> {
        let mut catalog = standard_attributes();
        catalog.push(AttributeDef {
            key: "customer_number".to_owned(),
            label: "Customer number".to_owned(),
            attribute_type: AttributeType::Text,
            required: false,
            identifier: true,
        });
        catalog
    }

    #[test]
    fn columns_named_like_attributes_map_themselves_in_any_order_and_case() {
        check(
            &["First_Name", " EMAIL ", "city"],
            &[],
            &[],
            Ok("First_Name→first_name, EMAIL→email, city→city; match: email"),
        );
        check(
            &["Mobile", "email", "Notes"],
            &[],
            &["EMAIL"],
            Ok("Mobile→mobile, email→email, Notes→-; match: email"),
        );
    }

    #[test]
    fn explicit_mappings_match_columns_and_attributes_ignoring_case() {
        check(
            &["E-mail", "Telefon", "Imię"],
            &["e-mail=Email", "TELEFON=mobile", "imię=first_name"],
            &[],
            Ok("E-mail→email, Telefon→mobile, Imię→first_name; match: email"),
        );
        check(
            &["a=b", "x"],
            &["a=b=email"],
            &[],
            Ok("a=b→email, x→-; match: email"),
        );
    }

    #[test]
    fn an_explicit_mapping_wins_over_an_automatic_one() {
        check(
            &["email", "Work email"],
            &["Work email=email"],
            &[],
            Ok("email→-, Work email→email; match: email"),
        );
        // A column named explicitly does not also map itself automatically.
        check(
            &["email", "city"],
            &["city=company", "email=email"],
            &[],
            Ok("email→email, city→company; match: email"),
        );
    }

    #[test]
    fn the_plan_lists_unmapped_columns_in_file_order() {
        let plan = resolve_mapping(
            &strings(&["Notes", "email", "Source", "city"]),
            &standard_attributes(),
            &[],
            &[],
        )
        .expect("valid mapping");
        assert_eq!(plan.unmapped_columns, strings(&["Notes", "Source"]));
        assert_eq!(plan.mapped_attribute_count(), 2);
        assert_eq!(
            plan.attribute_for_column(1)
                .map(|attribute| attribute.key.as_str()),
            Some("email")
        );
        assert_eq!(plan.attribute_for_column(0), None);
        assert_eq!(plan.attribute_for_column(99), None);
    }

    #[test]
    fn an_empty_header_is_reported_alone() {
        check(
            &[],
            &[],
            &[],
            Err("the header row is empty (the first line of the file must name the columns)"),
        );
        check(
            &["", "  "],
            &["x=email"],
            &[],
            Err("the header row is empty (the first line of the file must name the columns)"),
        );
    }

    #[test]
    fn duplicate_columns_are_reported_with_their_positions() {
        check(
            &["email", "City", "", "", "city", "CITY"],
            &[],
            &[],
            Err("column \"City\" appears more than once in the header (positions 2, 5, 6)"),
        );
    }

    #[test]
    fn unknown_attributes_and_unknown_columns_are_reported() {
        check(
            &["E-mail", "Phone"],
            &["E-mail=emial", "Fax=mobile"],
            &[],
            Err("column \"E-mail\" is mapped to unknown attribute \"emial\"; column \"Fax\" given in --map is not in the file's header; required attribute \"email\" is not mapped (map a column with --map COLUMN=email)"),
        );
    }

    #[test]
    fn one_column_mapped_to_two_attributes_is_reported() {
        check(
            &["email", "Name"],
            &["Name=first_name", "name=last_name", "NAME=first_name"],
            &[],
            Err("column \"Name\" is mapped to more than one attribute (\"first_name\", \"last_name\")"),
        );
    }

    #[test]
    fn two_columns_mapped_to_one_attribute_are_reported() {
        check(
            &["Mail", "E-mail"],
            &["Mail=email", "E-mail=email"],
            &[],
            Err("attribute \"email\" is mapped from more than one column (\"Mail\", \"E-mail\")"),
        );
    }

    #[test]
    fn match_attributes_must_exist_be_identifiers_and_be_mapped() {
        let catalog = catalog_with_customer_number();
        check_with_catalog(
            &catalog,
            &["email"],
            &[],
            &["nope"],
            Err("contacts cannot be matched on \"nope\": there is no such attribute"),
        );
        check_with_catalog(
            &catalog,
            &["email", "city"],
            &[],
            &["city"],
            Err("contacts cannot be matched on \"city\": it is not an identifier attribute"),
        );
        check_with_catalog(&catalog, &["email"], &[], &["Customer_Number"], Err("contacts cannot be matched on \"customer_number\": no column is mapped to it (map one with --map COLUMN=customer_number)"));
        check_with_catalog(
            &catalog,
            &["email", "Nr"],
            &["Nr=customer_number"],
            &["customer_number", "EMAIL", "email"],
            Ok("email→email, Nr→customer_number; match: customer_number,email"),
        );
    }

    #[test]
    fn all_problems_are_collected_together() {
        check(
            &["x", "X", "city"],
            &["city=nope"],
            &["city", "unknown"],
            Err("column \"x\" appears more than once in the header (positions 1, 2); column \"city\" is mapped to unknown attribute \"nope\"; required attribute \"email\" is not mapped (map a column with --map COLUMN=email); contacts cannot be matched on \"city\": it is not an identifier attribute; contacts cannot be matched on \"unknown\": there is no such attribute"),
        );
    }

    #[test]
    fn column_mappings_parse_at_the_last_equals_sign() {
        fn check_parse(input: &str, expected: Result<(&str, &str), &str>) {
            let actual = input
                .parse::<ColumnMapping>()
                .map(|mapping| (mapping.column, mapping.attribute));
            let expected = expected
                .map(|(column, attribute)| (column.to_owned(), attribute.to_owned()))
                .map_err(str::to_owned);
            assert_eq!(actual, expected, "input {input:?}");
        }
        check_parse("E-mail=email", Ok(("E-mail", "email")));
        check_parse(" a=b = email ", Ok(("a=b", "email")));
        check_parse(
            "email",
            Err("expected COLUMN=ATTRIBUTE, got \"email\" (no '=')"),
        );
        check_parse(
            " =email",
            Err("expected COLUMN=ATTRIBUTE, got \" =email\" (the column name is empty)"),
        );
        check_parse("Mail= ", Ok(("Mail", "")));
    }

    #[test]
    fn attribute_keys_are_lowercase_identifiers_of_at_most_64_characters() {
        let long_key = "a".repeat(64);
        let too_long_key = "a".repeat(65);
        let table: [(&str, bool); 9] = [
            ("email", true),
            ("postal_code2", true),
            (&long_key, true),
            (&too_long_key, false),
            ("", false),
            ("2fa", false),
            ("_x", false),
            ("First", false),
            ("e-mail", false),
        ];
        for (key, expected_valid) in table {
            assert_eq!(
                validate_attribute_key(key).is_ok(),
                expected_valid,
                "key {key:?}"
            );
        }
        for attribute in standard_attributes() {
            assert_eq!(validate_attribute_key(&attribute.key), Ok(()));
        }
    }

    #[test]
    fn attribute_types_parse_display_and_travel_as_tagged_json() {
        for name in [
            "text", "email", "phone", "integer", "decimal", "date", "boolean", "enum",
        ] {
            let parsed: AttributeType = name.parse().expect("known type");
            assert_eq!(parsed.to_string(), name);
        }
        assert_eq!("Phone".parse::<AttributeType>(), Ok(AttributeType::Phone));
        assert!("money".parse::<AttributeType>().is_err());
    }

    #[test]
    fn standard_attributes_start_with_the_required_email_identifier() {
        let keys: Vec<String> = standard_attributes()
            .into_iter()
            .map(|attribute| attribute.key)
            .collect();
        assert_eq!(
            keys,
            strings(&[
                "email",
                "mobile",
                "first_name",
                "last_name",
                "company",
                "city",
                "street",
                "postal_code",
                "birthday",
                "external_id"
            ])
        );
        let email = &standard_attributes()[0];
        assert!(email.required && email.identifier);
        assert_eq!(standard_attributes()[1].label, "Mobile phone");
    }
}
