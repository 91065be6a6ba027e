//! The wire form of the values the core computes with: rows, records, row errors, attributes,
//! mapping plans, the duplicate policy and the preview.
//!
//! The core's types are free to change for the core's sake; these are the contract, and only
//! change with [`crate::SCHEMA_VERSION`]. Each converts to and from its core twin field by
//! field, so renaming a core field breaks the build here instead of silently renaming a JSON
//! key. The conversions move strings and vectors, they do not copy them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use contact_core::{csv_parser, encoding, mapping, merge, preview, suggest, validate, value_map};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ImportId;

/// One CSV record as text fields, before any mapping or validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RawRecord {
    /// The 1-based physical line on which the record starts (the header is line 1).
    pub line: u64,
    pub fields: Vec<String>,
    /// Byte offset in the file just past the record's line end.
    pub end_offset: u64,
}

/// A row whose mapped cells are all valid: attribute key → normalized non-empty value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ValidRecord {
    pub line: u64,
    pub values: BTreeMap<String, String>,
}

/// Why one cell (or a whole row) was rejected, in words the person who made the file reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RowError {
    pub line: u64,
    /// The header name of the bad cell's column; none when the whole row is wrong.
    pub column: Option<String>,
    /// The cell as written in the file.
    pub value: Option<String>,
    pub reason: String,
}

/// The kind of value an attribute holds: decides how its cells are validated and normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttributeDef {
    /// Stable machine name: lower-case letters, digits and `_`, starting with a letter.
    pub key: String,
    /// Human name shown in reports.
    pub label: String,
    pub attribute_type: AttributeType,
    /// Every imported row must have a value for it.
    pub required: bool,
    /// Contacts may be matched on it (its values identify one contact).
    pub identifier: bool,
}

/// The user's choice of attribute for a column (`--map COLUMN=ATTRIBUTE`); an empty attribute
/// keeps the column out of the import, even when it is named like an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ColumnMapping {
    pub column: String,
    pub attribute: String,
}

/// The user's reading of one value of a choice column (`--map-value ATTRIBUTE:VALUE=ALLOWED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ValueMapping {
    /// An enum or boolean attribute's key.
    pub attribute: String,
    /// As the file writes it; compared trimmed and ignoring case.
    pub value: String,
    /// A value the attribute allows.
    pub allowed: String,
}

/// How the columns of one file map to attributes, decided once at the start of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MappingPlan {
    /// The file's header as read (trimmed).
    pub header: Vec<String>,
    /// Index-aligned with `header`; null means the column is ignored.
    pub columns: Vec<Option<AttributeDef>>,
    /// Header names of ignored columns, in file order.
    pub unmapped_columns: Vec<String>,
    /// Attribute keys that rows are matched on.
    pub match_on: Vec<String>,
    /// Per attribute key: the file's values (trimmed, lower-case) and the allowed value each
    /// is read as. Absent when nothing is mapped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value_maps: BTreeMap<String, BTreeMap<String, String>>,
}

/// What to do with a row whose match key already belongs to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
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

/// The encodings a file may be read in, by their WHATWG names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TextEncoding {
    #[serde(rename = "UTF-8")]
    Utf8,
    #[serde(rename = "UTF-16LE")]
    Utf16Le,
    #[serde(rename = "UTF-16BE")]
    Utf16Be,
    #[serde(rename = "windows-1250")]
    Windows1250,
    #[serde(rename = "ISO-8859-2")]
    Iso8859_2,
    #[serde(rename = "windows-1252")]
    Windows1252,
}

/// How the start of a file reads, and what would be imported from it (`import.preview`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Preview {
    pub encoding: TextEncoding,
    /// The delimiter character itself, e.g. ";".
    pub delimiter: String,
    /// "comma", "semicolon", "tab" or "pipe".
    pub delimiter_name: String,
    /// The header names, trimmed.
    pub header: Vec<String>,
    /// The first rows, as parsed (before validation).
    pub rows: Vec<Vec<String>>,
    /// Index-aligned with `header`.
    pub suggested_mapping: Vec<ColumnSuggestion>,
    /// Keys of required attributes that no column is suggested or mapped for.
    pub unmapped_required: Vec<String>,
    pub invalid_columns: Vec<InvalidColumn>,
    /// Enum and boolean columns holding values their attribute does not allow, gathered from
    /// every row of the sample.
    #[serde(default)]
    pub unfit_columns: Vec<UnfitColumn>,
    /// The mapping of the account's latest import of a file with these columns (in any
    /// order), for a client to preset; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remembered: Option<RememberedMapping>,
}

/// An earlier import's column and value choices, as far as today's catalog still allows them:
/// sent back as they are, they make the same mapping again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RememberedMapping {
    pub import_id: ImportId,
    pub file_name: Option<String>,
    pub created_at: DateTime<Utc>,
    /// One per column the import named; an empty attribute is a column it kept out.
    pub mappings: Vec<ColumnMapping>,
    /// Values as folded (trimmed, lower case), with the allowed value each was read as.
    pub value_mappings: Vec<ValueMapping>,
}

/// The values of one choice column that its attribute does not read alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnfitColumn {
    pub column: String,
    pub attribute: String,
    /// What the attribute allows ("true" and "false" for a boolean).
    pub allowed: Vec<String>,
    /// Distinct ignoring case, in the order the sample first holds them; at most 50.
    pub values: Vec<UnfitValue>,
}

/// One distinct value of a choice column that its attribute does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnfitValue {
    /// Trimmed, as first written in the sample.
    pub value: String,
    /// Sampled cells holding it.
    pub cells: u64,
    /// The allowed value the request's value mappings read it as.
    pub mapped_to: Option<String>,
    /// An allowed value it obviously stands for, when there is one.
    pub suggestion: Option<String>,
}

/// The suggested attribute for one column, how sure the guess is, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ColumnSuggestion {
    pub column: String,
    /// The attribute key; null when nothing fits (the column would be ignored).
    pub attribute: Option<String>,
    /// From 0 (no signal) to 1 (the header is the attribute's key).
    pub confidence: f32,
    pub reason: String,
}

/// A column whose sampled cells would fail validation for its suggested attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InvalidColumn {
    pub column: String,
    pub attribute: String,
    /// Sampled cells that would be rejected.
    pub invalid: u64,
    /// Sampled rows that have a cell in this column.
    pub sampled: u64,
    /// The first rejected cell, as written in the file.
    pub example: String,
    /// Why that cell is rejected.
    pub reason: String,
}

/// Converts each element of a vector, reusing its allocation where the layouts agree.
pub fn convert_all<A, B: From<A>>(items: Vec<A>) -> Vec<B> {
    items.into_iter().map(B::from).collect()
}

/// Both directions of a conversion between a struct and its core twin with the same fields.
macro_rules! same_fields {
    ($wire:ident <=> $core:path { $($field:ident),* $(,)? }) => {
        impl From<$core> for $wire {
            fn from(value: $core) -> Self {
                Self { $($field: value.$field.into()),* }
            }
        }

        impl From<$wire> for $core {
            fn from(value: $wire) -> Self {
                Self { $($field: value.$field.into()),* }
            }
        }
    };
}

same_fields!(RawRecord <=> csv_parser::RawRecord { line, fields, end_offset });
same_fields!(ValidRecord <=> validate::ValidRecord { line, values });
same_fields!(RowError <=> validate::RowError { line, column, value, reason });
same_fields!(AttributeDef <=> mapping::AttributeDef {
    key,
    label,
    attribute_type,
    required,
    identifier,
});
same_fields!(ColumnMapping <=> mapping::ColumnMapping { column, attribute });
same_fields!(ValueMapping <=> value_map::ValueMapping { attribute, value, allowed });
same_fields!(ColumnSuggestion <=> suggest::ColumnSuggestion {
    column,
    attribute,
    confidence,
    reason,
});

impl From<mapping::MappingPlan> for MappingPlan {
    fn from(plan: mapping::MappingPlan) -> Self {
        Self {
            header: plan.header,
            columns: plan
                .columns
                .into_iter()
                .map(|column| column.map(AttributeDef::from))
                .collect(),
            unmapped_columns: plan.unmapped_columns,
            match_on: plan.match_on,
            value_maps: plan.value_maps,
        }
    }
}

impl From<MappingPlan> for mapping::MappingPlan {
    fn from(plan: MappingPlan) -> Self {
        Self {
            header: plan.header,
            columns: plan
                .columns
                .into_iter()
                .map(|column| column.map(mapping::AttributeDef::from))
                .collect(),
            unmapped_columns: plan.unmapped_columns,
            match_on: plan.match_on,
            value_maps: plan.value_maps,
        }
    }
}

/// Both directions of a conversion between a field-less enum and its core twin.
macro_rules! same_variants {
    ($wire:ident <=> $core:path { $($variant:ident),* $(,)? }) => {
        impl From<$core> for $wire {
            fn from(value: $core) -> Self {
                use $core as Core;
                match value {
                    $(Core::$variant => Self::$variant),*
                }
            }
        }

        impl From<$wire> for $core {
            fn from(value: $wire) -> Self {
                use $core as Core;
                match value {
                    $($wire::$variant => Core::$variant),*
                }
            }
        }
    };
}

same_variants!(DuplicatePolicy <=> merge::DuplicatePolicy { Link, Duplicate, Skip });
same_variants!(TextEncoding <=> encoding::TextEncoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    Windows1250,
    Iso8859_2,
    Windows1252,
});

impl From<mapping::AttributeType> for AttributeType {
    fn from(value: mapping::AttributeType) -> Self {
        use mapping::AttributeType as Core;
        match value {
            Core::Text => Self::Text,
            Core::Email => Self::Email,
            Core::Phone => Self::Phone,
            Core::Integer => Self::Integer,
            Core::Decimal => Self::Decimal,
            Core::Date => Self::Date,
            Core::Boolean => Self::Boolean,
            Core::Enum { values } => Self::Enum { values },
        }
    }
}

impl From<AttributeType> for mapping::AttributeType {
    fn from(value: AttributeType) -> Self {
        use mapping::AttributeType as Core;
        match value {
            AttributeType::Text => Core::Text,
            AttributeType::Email => Core::Email,
            AttributeType::Phone => Core::Phone,
            AttributeType::Integer => Core::Integer,
            AttributeType::Decimal => Core::Decimal,
            AttributeType::Date => Core::Date,
            AttributeType::Boolean => Core::Boolean,
            AttributeType::Enum { values } => Core::Enum { values },
        }
    }
}

impl From<preview::InvalidColumn> for InvalidColumn {
    fn from(value: preview::InvalidColumn) -> Self {
        Self {
            column: value.column,
            attribute: value.attribute,
            invalid: value.invalid as u64,
            sampled: value.sampled as u64,
            example: value.example,
            reason: value.reason,
        }
    }
}

impl From<preview::Preview> for Preview {
    fn from(value: preview::Preview) -> Self {
        Self {
            encoding: value.encoding.into(),
            delimiter: value.delimiter,
            delimiter_name: value.delimiter_name,
            header: value.header,
            rows: value.rows,
            suggested_mapping: convert_all(value.suggested_mapping),
            unmapped_required: value.unmapped_required,
            invalid_columns: convert_all(value.invalid_columns),
            unfit_columns: convert_all(value.unfit_columns),
            // Found in the account's imports, not in the file: the writer adds it.
            remembered: None,
        }
    }
}

impl From<value_map::UnfitColumn> for UnfitColumn {
    fn from(value: value_map::UnfitColumn) -> Self {
        Self {
            column: value.column,
            attribute: value.attribute,
            allowed: value.allowed,
            values: convert_all(value.values),
        }
    }
}

impl From<value_map::UnfitValue> for UnfitValue {
    fn from(value: value_map::UnfitValue) -> Self {
        Self {
            value: value.value,
            cells: value.cells as u64,
            mapped_to: value.mapped_to,
            suggestion: value.suggestion,
        }
    }
}

impl MappingPlan {
    /// The oldest schema that holds this plan.
    pub fn schema(&self) -> u32 {
        if self.value_maps.is_empty() {
            crate::FIRST_SCHEMA_VERSION
        } else {
            crate::VALUE_MAPS_SCHEMA_VERSION
        }
    }
}

impl DuplicatePolicy {
    pub const ALL: [DuplicatePolicy; 3] = [Self::Link, Self::Duplicate, Self::Skip];

    pub fn as_str(self) -> &'static str {
        merge::DuplicatePolicy::from(self).as_str()
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
        merge::DuplicatePolicy::from_str(text).map(Self::from)
    }
}

/// Reads `COLUMN=ATTRIBUTE`, as `--map` takes it.
impl FromStr for ColumnMapping {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        mapping::ColumnMapping::from_str(text)
            .map(Self::from)
            .map_err(|error| error.to_string())
    }
}

impl FromStr for ValueMapping {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        value_map::ValueMapping::from_str(text).map(Self::from)
    }
}

impl FromStr for AttributeType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        mapping::AttributeType::from_str(text).map(Self::from)
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        mapping::AttributeType::from(self.clone()).fmt(formatter)
    }
}

impl fmt::Display for TextEncoding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        encoding::TextEncoding::from(*self).fmt(formatter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire form keeps the JSON the services wrote before it was separated from the core:
    /// rows stored by an earlier build (mapping plans in PostgreSQL, messages in streams) read
    /// the same.
    #[test]
    fn a_stored_mapping_plan_reads_into_the_wire_form_and_writes_back_unchanged() {
        let stored = r#"{"header":["email","tier"],"columns":[{"key":"email","label":"E-mail","attribute_type":{"type":"email"},"required":true,"identifier":true},{"key":"tier","label":"Tier","attribute_type":{"type":"enum","values":["gold","silver"]},"required":false,"identifier":false}],"unmapped_columns":[],"match_on":["email"]}"#;
        let plan: MappingPlan = serde_json::from_str(stored).expect("reads");
        let core = mapping::MappingPlan::from(plan.clone());
        assert_eq!(
            core.columns[1]
                .as_ref()
                .map(|column| &column.attribute_type),
            Some(&mapping::AttributeType::Enum {
                values: vec!["gold".into(), "silver".into()]
            })
        );
        assert_eq!(MappingPlan::from(core), plan);
        assert_eq!(serde_json::to_string(&plan).expect("writes"), stored);
        assert_eq!(plan.schema(), crate::FIRST_SCHEMA_VERSION);
    }

    #[test]
    fn a_plan_with_value_maps_keeps_them_both_ways_and_needs_the_later_schema() {
        let stored = r#"{"header":["tier"],"columns":[{"key":"tier","label":"Tier","attribute_type":{"type":"enum","values":["gold"]},"required":false,"identifier":false}],"unmapped_columns":[],"match_on":["email"],"value_maps":{"tier":{"gold member":"gold"}}}"#;
        let plan: MappingPlan = serde_json::from_str(stored).expect("reads");
        let core = mapping::MappingPlan::from(plan.clone());
        assert_eq!(core.mapped_value("tier", " Gold Member "), Some("gold"));
        assert_eq!(MappingPlan::from(core), plan);
        assert_eq!(serde_json::to_string(&plan).expect("writes"), stored);
        assert_eq!(plan.schema(), crate::VALUE_MAPS_SCHEMA_VERSION);
        let options = crate::ImportOptions {
            value_mappings: vec![ValueMapping {
                attribute: "tier".into(),
                value: "Gold member".into(),
                allowed: "gold".into(),
            }],
            ..crate::ImportOptions::default()
        };
        assert_eq!(options.schema(), crate::VALUE_MAPS_SCHEMA_VERSION);
        assert_eq!(
            crate::ImportOptions::default().schema(),
            crate::FIRST_SCHEMA_VERSION
        );
    }

    #[test]
    fn policies_read_and_print_as_their_names() {
        for policy in DuplicatePolicy::ALL {
            let json = serde_json::to_string(&policy).expect("writes");
            assert_eq!(json, format!("\"{policy}\""));
            assert_eq!(policy.as_str().parse::<DuplicatePolicy>(), Ok(policy));
        }
        assert!("merge".parse::<DuplicatePolicy>().is_err());
    }

    #[test]
    fn encodings_travel_by_the_names_the_core_reads() {
        for core in encoding::TextEncoding::ALL {
            let json = serde_json::to_string(&TextEncoding::from(core)).expect("writes");
            assert_eq!(json, format!("\"{}\"", core.name()));
            let back: TextEncoding = serde_json::from_str(&json).expect("reads");
            assert_eq!(encoding::TextEncoding::from(back), core);
        }
    }

    #[test]
    fn attribute_types_are_tagged_by_type() {
        let enum_type = AttributeType::Enum {
            values: vec!["gold".into(), "silver".into()],
        };
        let json = serde_json::to_string(&enum_type).expect("writes");
        assert_eq!(json, r#"{"type":"enum","values":["gold","silver"]}"#);
        assert_eq!(
            serde_json::to_string(&AttributeType::Text).expect("writes"),
            r#"{"type":"text"}"#
        );
        assert_eq!(
            serde_json::from_str::<AttributeType>(&json).ok(),
            Some(enum_type)
        );
    }
}
