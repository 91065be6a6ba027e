//! Owns mapping suggestions: guessing which attribute each column of a file fills, from its
//! header name and its values, so users confirm a mapping instead of typing one.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::mapping::{AttributeDef, AttributeType};
use crate::template::strip_formula_guard;
use crate::validate::{normalize_value, PhoneRegion};

/// The suggested attribute for one column, with how sure the guess is and why, so a user
/// interface can ask for confirmation of the weak ones.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSuggestion {
    /// The header name, trimmed.
    pub column: String,
    /// The attribute key; `None` when nothing fits (the column would be ignored).
    pub attribute: Option<String>,
    /// From 0 (no signal) to 1 (the header is the attribute's key).
    pub confidence: f32,
    pub reason: String,
}

/// Suggests an attribute for each column (the result is index-aligned with `header`).
///
/// Signals, best first: the header is the key (1.0), the label (0.95), the key or label once
/// case, diacritics, spaces and punctuation are ignored (0.9), a known English or Polish synonym
/// (0.8), or most sampled values are valid for a typed attribute (0.6). Each attribute goes to at
/// most one column: the most confident pair wins, and a column that loses falls back to its next
/// best attribute, or none.
pub fn suggest_mapping(
    header: &[String],
    sample_rows: &[Vec<String>],
    catalog: &[AttributeDef],
    region: PhoneRegion,
) -> Vec<ColumnSuggestion> {
    suggest_mapping_with_fixed(header, sample_rows, catalog, region, &[])
}

/// Like [`suggest_mapping`], with some (column index, catalog index) pairs decided by the user
/// beforehand: they are kept with confidence 1.0 and reason "mapped with --map", or, with no
/// catalog index, kept out (no attribute, confidence 0, reason "chosen as not imported");
/// the rest is suggested around them.
pub(crate) fn suggest_mapping_with_fixed(
    header: &[String],
    sample_rows: &[Vec<String>],
    catalog: &[AttributeDef],
    region: PhoneRegion,
    fixed: &[(usize, Option<usize>)],
) -> Vec<ColumnSuggestion> {
    let mut suggestions: Vec<ColumnSuggestion> = header
        .iter()
        .map(|name| ColumnSuggestion {
            column: name.trim().to_owned(),
            attribute: None,
            confidence: 0.0,
            reason: "no attribute fits".to_owned(),
        })
        .collect();
    let mut column_taken = vec![false; header.len()];
    let mut attribute_taken = vec![false; catalog.len()];
    for &(column_index, catalog_index) in fixed {
        if column_index >= header.len() || column_taken[column_index] {
            continue;
        }
        let Some(catalog_index) = catalog_index else {
            column_taken[column_index] = true;
            suggestions[column_index].reason = "chosen as not imported".to_owned();
            continue;
        };
        if catalog_index >= catalog.len() || attribute_taken[catalog_index] {
            continue;
        }
        column_taken[column_index] = true;
        attribute_taken[catalog_index] = true;
        suggestions[column_index].attribute = Some(catalog[catalog_index].key.clone());
        suggestions[column_index].confidence = 1.0;
        suggestions[column_index].reason = "mapped with --map".to_owned();
    }

    let mut candidates = Vec::new();
    for (column_index, column_name) in header.iter().enumerate() {
        if column_taken[column_index] {
            continue;
        }
        let values: Vec<&str> = sample_rows
            .iter()
            .filter_map(|row| row.get(column_index))
            .map(|value| strip_formula_guard(value))
            .filter(|value| !value.trim().is_empty())
            .collect();
        for (catalog_index, attribute) in catalog.iter().enumerate() {
            if attribute_taken[catalog_index] {
                continue;
            }
            let signal = name_signal(column_name, attribute)
                .or_else(|| value_signal(&values, &attribute.attribute_type, region));
            if let Some(signal) = signal {
                candidates.push(Candidate {
                    column_index,
                    catalog_index,
                    signal,
                });
            }
        }
    }
    // Most confident first; among values-only guesses the stricter type first; then file and
    // catalog order, so the outcome does not depend on sorting details.
    candidates.sort_by(|left, right| {
        right
            .signal
            .confidence
            .total_cmp(&left.signal.confidence)
            .then(left.signal.type_rank.cmp(&right.signal.type_rank))
            .then(left.column_index.cmp(&right.column_index))
            .then(left.catalog_index.cmp(&right.catalog_index))
    });
    for candidate in candidates {
        if column_taken[candidate.column_index] || attribute_taken[candidate.catalog_index] {
            continue;
        }
        column_taken[candidate.column_index] = true;
        attribute_taken[candidate.catalog_index] = true;
        let suggestion = &mut suggestions[candidate.column_index];
        suggestion.attribute = Some(catalog[candidate.catalog_index].key.clone());
        suggestion.confidence = candidate.signal.confidence;
        suggestion.reason = candidate.signal.reason;
    }
    suggestions
}

/// Lower-cases, strips diacritics (ł, đ and ß too, which do not decompose) and drops spaces,
/// '-', '_' and '.', so "E-mail", "e_mail" and "EMAIL" compare equal, and so do "Imię" and "imie".
pub fn normalize_column_name(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    for character in name
        .nfd()
        .filter(|&character| !is_combining_mark(character))
    {
        for lower in character.to_lowercase() {
            match lower {
                ' ' | '-' | '_' | '.' => {}
                'ł' => normalized.push('l'),
                'đ' => normalized.push('d'),
                'ß' => normalized.push_str("ss"),
                _ if lower.is_whitespace() => {}
                _ => normalized.push(lower),
            }
        }
    }
    normalized
}

struct Candidate {
    column_index: usize,
    catalog_index: usize,
    signal: Signal,
}

struct Signal {
    confidence: f32,
    /// Breaks ties between values-only guesses: lower is preferred.
    type_rank: u8,
    reason: String,
}

const EXACT_KEY_CONFIDENCE: f32 = 1.0;
const LABEL_CONFIDENCE: f32 = 0.95;
const NORMALIZED_NAME_CONFIDENCE: f32 = 0.9;
const SYNONYM_CONFIDENCE: f32 = 0.8;
const VALUES_CONFIDENCE: f32 = 0.6;

/// Share of the non-empty sampled values that must be valid for a values-only guess.
const VALID_SHARE_PERCENT: usize = 80;
/// A values-only guess needs at least this many non-empty values.
const MIN_VALUES_SAMPLED: usize = 2;

/// Other names people give the standard attributes' columns, in English and Polish.
const SYNONYMS: &[(&str, &[&str])] = &[
    (
        "email",
        &[
            "e-mail",
            "mail",
            "email address",
            "e-mail address",
            "adres e-mail",
            "adres email",
            "poczta",
            "poczta e-mail",
        ],
    ),
    (
        "mobile",
        &[
            "phone",
            "phone number",
            "mobile phone",
            "mobile number",
            "cell",
            "cell phone",
            "telephone",
            "tel",
            "telefon",
            "telefon komórkowy",
            "komórka",
            "nr telefonu",
            "numer telefonu",
            "nr tel",
        ],
    ),
    (
        "first_name",
        &["first name", "given name", "forename", "imię"],
    ),
    (
        "last_name",
        &["surname", "last name", "family name", "nazwisko"],
    ),
    (
        "company",
        &[
            "company name",
            "organization",
            "organisation",
            "employer",
            "firma",
            "nazwa firmy",
        ],
    ),
    ("city", &["town", "miasto", "miejscowość"]),
    (
        "street",
        &[
            "address",
            "street address",
            "ulica",
            "adres",
            "ulica i numer",
        ],
    ),
    (
        "postal_code",
        &["zip", "zip code", "postcode", "post code", "kod pocztowy"],
    ),
    (
        "birthday",
        &[
            "birth date",
            "date of birth",
            "dob",
            "data urodzenia",
            "urodziny",
        ],
    ),
    (
        "external_id",
        &[
            "customer id",
            "client id",
            "external id",
            "crm id",
            "identyfikator",
            "id klienta",
        ],
    ),
];

/// The strongest signal the column's header gives for the attribute, if any.
fn name_signal(column_name: &str, attribute: &AttributeDef) -> Option<Signal> {
    let trimmed = column_name.trim();
    let signal = |confidence: f32, reason: &str| Signal {
        confidence,
        type_rank: 0,
        reason: reason.to_owned(),
    };
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.to_lowercase() == attribute.key.to_lowercase() {
        return Some(signal(EXACT_KEY_CONFIDENCE, "exact key"));
    }
    if trimmed.to_lowercase() == attribute.label.trim().to_lowercase() {
        return Some(signal(LABEL_CONFIDENCE, "label"));
    }
    let normalized = normalize_column_name(trimmed);
    if normalized.is_empty() {
        return None;
    }
    if normalized == normalize_column_name(&attribute.key)
        || normalized == normalize_column_name(&attribute.label)
    {
        return Some(signal(NORMALIZED_NAME_CONFIDENCE, "normalized name"));
    }
    let is_synonym = SYNONYMS
        .iter()
        .filter(|(key, _)| *key == attribute.key)
        .flat_map(|(_, synonyms)| synonyms.iter())
        .any(|synonym| normalize_column_name(synonym) == normalized);
    is_synonym.then(|| signal(SYNONYM_CONFIDENCE, "synonym"))
}

/// A values-only guess: most sampled values are valid for a typed attribute.
fn value_signal(
    values: &[&str],
    attribute_type: &AttributeType,
    region: PhoneRegion,
) -> Option<Signal> {
    let (type_rank, described_values) = match attribute_type {
        AttributeType::Email => (1, "email addresses"),
        AttributeType::Phone => (2, "phone numbers"),
        AttributeType::Date => (3, "dates"),
        AttributeType::Boolean => (4, "yes/no values"),
        AttributeType::Integer => (5, "whole numbers"),
        AttributeType::Decimal => (6, "decimal numbers"),
        AttributeType::Text | AttributeType::Enum { .. } => return None,
    };
    if values.len() < MIN_VALUES_SAMPLED {
        return None;
    }
    let valid_count = values
        .iter()
        .filter(|value| matches!(normalize_value(attribute_type, value, region), Ok(Some(_))))
        .count();
    if valid_count * 100 < values.len() * VALID_SHARE_PERCENT {
        return None;
    }
    Some(Signal {
        confidence: VALUES_CONFIDENCE,
        type_rank,
        reason: format!(
            "{valid_count} of {} sampled values are valid {described_values}",
            values.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::standard_attributes;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    /// Checks each column's (attribute, reason) against `expected`, index-aligned with `header`.
    fn check(header: &[&str], rows: &[&[&str]], expected: &[(Option<&str>, &str)]) {
        check_with_catalog(&standard_attributes(), header, rows, expected);
    }

    fn check_with_catalog(
        catalog: &[AttributeDef],
        header: &[&str],
        rows: &[&[&str]],
        expected: &[(Option<&str>, &str)],
    ) {
        let rows: Vec<Vec<String>> = rows.iter().map(|row| strings(row)).collect();
        let suggestions = suggest_mapping(&strings(header), &rows, catalog, PhoneRegion::default());
        let actual: Vec<(Option<&str>, &str)> = suggestions
            .iter()
            .map(|suggestion| (suggestion.attribute.as_deref(), suggestion.reason.as_str()))
            .collect();
        assert_eq!(actual, expected, "header {header:?}");
        for (suggestion, column) in suggestions.iter().zip(header) {
            assert_eq!(suggestion.column, column.trim());
        }
    }

    #[test]
    fn english_spreadsheet_headers_map_to_the_standard_attributes() {
        check(
            &[
                "E-mail Address",
                "Mobile Phone",
                "First Name",
                "Last Name",
                "Company Name",
                "ZIP",
                "Notes",
            ],
            &[],
            &[
                (Some("email"), "synonym"),
                (Some("mobile"), "label"),
                (Some("first_name"), "label"),
                (Some("last_name"), "label"),
                (Some("company"), "synonym"),
                (Some("postal_code"), "synonym"),
                (None, "no attribute fits"),
            ],
        );
        check(
            &["EMAIL", "first-name", "External ID", "date of birth"],
            &[],
            &[
                (Some("email"), "exact key"),
                (Some("first_name"), "normalized name"),
                (Some("external_id"), "label"),
                (Some("birthday"), "synonym"),
            ],
        );
    }

    #[test]
    fn polish_headers_map_to_the_standard_attributes() {
        check(
            &[
                "Imię",
                "Nazwisko",
                "Telefon",
                "Miasto",
                "Kod pocztowy",
                "Adres e-mail",
                "Miejscowość",
                "Data urodzenia",
            ],
            &[],
            &[
                (Some("first_name"), "synonym"),
                (Some("last_name"), "synonym"),
                (Some("mobile"), "synonym"),
                (Some("city"), "synonym"),
                (Some("postal_code"), "synonym"),
                (Some("email"), "synonym"),
                (None, "no attribute fits"),
                (Some("birthday"), "synonym"),
            ],
        );
    }

    #[test]
    fn columns_with_unknown_names_are_mapped_from_their_values() {
        check(
            &["kontakt", "nr", "uwagi", "kiedy"],
            &[
                &["jan@example.com", "501 234 567", "x", "1990-04-12"],
                &["anna@example.pl", "+48 602 345 678", "y", "12.05.1985"],
                &["", "0048 723 456 789", "", ""],
                &["not an email", "", "z", "20010101"],
                &["ewa@example.com", "512345678", "", "2000-01-31"],
                &["piotr@example.com", "", "", ""],
            ],
            &[
                (
                    Some("email"),
                    "4 of 5 sampled values are valid email addresses",
                ),
                (
                    Some("mobile"),
                    "4 of 4 sampled values are valid phone numbers",
                ),
                (None, "no attribute fits"),
                (Some("birthday"), "4 of 4 sampled values are valid dates"),
            ],
        );
    }

    #[test]
    fn too_few_or_too_many_bad_values_give_no_guess() {
        check(
            &["a", "b"],
            &[
                &["jan@example.com", "501 234 567"],
                &["", "call me"],
                &["", "later"],
            ],
            &[(None, "no attribute fits"), (None, "no attribute fits")],
        );
    }

    #[test]
    fn an_attribute_wanted_by_two_columns_goes_to_the_better_one() {
        check(
            &["Phone", "Mobile phone", "e-mail", "email"],
            &[],
            &[
                (None, "no attribute fits"),
                (Some("mobile"), "label"),
                (None, "no attribute fits"),
                (Some("email"), "exact key"),
            ],
        );
    }

    #[test]
    fn a_column_that_loses_falls_back_to_its_next_best_attribute() {
        let mut catalog = standard_attributes();
        catalog.push(AttributeDef {
            key: "work_phone".to_owned(),
            label: "Work phone".to_owned(),
            attribute_type: AttributeType::Phone,
            required: false,
            identifier: false,
        });
        check_with_catalog(
            &catalog,
            &["telefon", "mobile"],
            &[
                &["501 234 567", "602 345 678"],
                &["22 123 45 67", "723 456 789"],
            ],
            &[
                (
                    Some("work_phone"),
                    "2 of 2 sampled values are valid phone numbers",
                ),
                (Some("mobile"), "exact key"),
            ],
        );
    }

    #[test]
    fn column_names_normalize_without_case_diacritics_or_punctuation() {
        let table = [
            ("E-mail Address", "emailaddress"),
            ("Imię", "imie"),
            ("Miejscowość", "miejscowosc"),
            ("ŁÓDŹ", "lodz"),
            ("Straße", "strasse"),
            ("Đorđe", "dorde"),
            ("first_name.", "firstname"),
            ("  ", ""),
        ];
        for (name, expected) in table {
            assert_eq!(normalize_column_name(name), expected, "{name:?}");
        }
    }
}
