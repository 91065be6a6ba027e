//! Owns value validation and normalization: turning a raw CSV record into attribute values.
//!
//! Normalized values are canonical (E.164 phones, lower-case emails, ISO dates, ...) so that equal
//! values compare equal when contacts are matched and merged.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::csv_parser::RawRecord;
use crate::mapping::{AttributeType, MappingPlan};
use crate::phone::{self, Shortcut};
use crate::template::strip_formula_guard;

/// The country whose numbering plan applies to phone numbers written without a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhoneRegion(pub phonenumber::country::Id);

/// A record whose mapped cells are all valid, ready to be matched and merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRecord {
    pub line: u64,
    /// Attribute key → normalized non-empty value; empty cells are absent.
    pub values: BTreeMap<String, String>,
}

/// Why one cell (or a whole row) was rejected, in words the person who made the file understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    /// The header name of the bad cell's column; `None` when the whole row is wrong.
    pub column: Option<String>,
    /// The raw cell text.
    pub value: Option<String>,
    pub reason: String,
}

/// Normalizes one cell. Ok(None) when the cell is empty after trimming.
///
/// The error is the reason the value was rejected, ready to show to the user.
pub fn normalize_value(
    attribute_type: &AttributeType,
    raw: &str,
    region: PhoneRegion,
) -> Result<Option<String>, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let normalized = match attribute_type {
        AttributeType::Text => Ok(trimmed.to_owned()),
        AttributeType::Email => normalize_email(trimmed),
        AttributeType::Phone => normalize_phone(trimmed, region),
        AttributeType::Integer => normalize_integer(trimmed),
        AttributeType::Decimal => normalize_decimal(trimmed),
        AttributeType::Date => normalize_date(trimmed),
        AttributeType::Boolean => normalize_boolean(trimmed),
        AttributeType::Enum { values } => normalize_enum(trimmed, values),
    }?;
    Ok(Some(normalized))
}

/// Identifier values are indexed to find duplicates; an index entry has a size limit.
pub const MAX_IDENTIFIER_BYTES: usize = 1000;

/// Control characters have no place in a contact's values; tabs and line breaks do (a quoted
/// note may hold them).
fn is_control(character: char) -> bool {
    character.is_control() && !matches!(character, '\t' | '\n' | '\r')
}

const UNREADABLE_CHARACTERS: &str =
    "contains characters that cannot be read (NUL or undecodable bytes: a wrong encoding?)";

/// Why a cell cannot be taken whatever its attribute (bytes of a wrong encoding, a control
/// character), before anything reads its value.
pub fn unreadable_cell(cell: &str) -> Option<String> {
    if cell.contains(['\0', char::REPLACEMENT_CHARACTER]) {
        return Some(UNREADABLE_CHARACTERS.to_owned());
    }
    cell.chars()
        .find(|&character| is_control(character))
        .map(|control| {
            format!(
                "contains a control character (U+{:04X}) that a text value cannot hold",
                control as u32
            )
        })
}

/// Validates one record against the plan. Err holds one RowError per bad cell (all of them), or
/// one for a field-count mismatch (column None, reason like "the row has 5 fields but the header
/// has 4").
///
/// Cells guarded against spreadsheet formulas (see [`crate::template::neutralize_formula`]) lose
/// the guard before they are normalized, so a fixed error file imports again; a [`RowError`]
/// keeps the raw cell.
pub fn validate_record(
    plan: &MappingPlan,
    record: &RawRecord,
    region: PhoneRegion,
) -> Result<ValidRecord, Vec<RowError>> {
    if record.fields.len() != plan.header.len() {
        return Err(vec![RowError {
            line: record.line,
            column: None,
            value: None,
            reason: format!(
                "the row has {} {} but the header has {}",
                record.fields.len(),
                if record.fields.len() == 1 {
                    "field"
                } else {
                    "fields"
                },
                plan.header.len()
            ),
        }]);
    }
    let mut values = BTreeMap::new();
    let mut row_errors = Vec::new();
    for (column_index, raw_value) in record.fields.iter().enumerate() {
        let Some(attribute) = plan.attribute_for_column(column_index) else {
            continue;
        };
        let cell_error = |reason: String| RowError {
            line: record.line,
            column: plan.header.get(column_index).cloned(),
            value: Some(raw_value.clone()),
            reason,
        };
        // A row from an error file comes back with the apostrophe that guarded it in a
        // spreadsheet; the error, though, shows the cell as it stands in the file.
        let unguarded_value = strip_formula_guard(raw_value);
        if let Some(reason) = unreadable_cell(unguarded_value) {
            row_errors.push(cell_error(reason));
            continue;
        }
        // The user's reading of the file's own spelling comes first.
        let normalized = match plan.mapped_value(&attribute.key, unguarded_value) {
            Some(mapped) => Ok(Some(mapped.to_owned())),
            None => normalize_value(&attribute.attribute_type, unguarded_value, region),
        };
        match normalized {
            Ok(Some(normalized))
                if attribute.identifier && normalized.len() > MAX_IDENTIFIER_BYTES =>
            {
                row_errors.push(cell_error(format!(
                    "too long for an identifier ({} bytes; at most {MAX_IDENTIFIER_BYTES})",
                    normalized.len()
                )));
            }
            Ok(Some(normalized)) => {
                values.insert(attribute.key.clone(), normalized);
            }
            Ok(None) if attribute.required => {
                row_errors.push(cell_error("a value is required".to_owned()));
            }
            Ok(None) => {}
            Err(reason) => row_errors.push(cell_error(reason)),
        }
    }
    if row_errors.is_empty() {
        Ok(ValidRecord {
            line: record.line,
            values,
        })
    } else {
        Err(row_errors)
    }
}

impl Default for PhoneRegion {
    /// Poland: the service's first customers import Polish contact lists.
    fn default() -> Self {
        Self(phonenumber::country::Id::PL)
    }
}

impl FromStr for PhoneRegion {
    type Err = String;

    /// Parses a two-letter country code such as "PL" or "de" (case-insensitive).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let code = text.trim().to_ascii_uppercase();
        phonenumber::country::Id::from_str(&code)
            .map(Self)
            .map_err(|_| {
                format!(
                    "unknown phone region \"{}\" (expected a two-letter country code such as PL)",
                    text.trim()
                )
            })
    }
}

impl fmt::Display for PhoneRegion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.0.as_ref())
    }
}

impl TryFrom<String> for PhoneRegion {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<PhoneRegion> for String {
    fn from(region: PhoneRegion) -> Self {
        region.to_string()
    }
}

fn normalize_email(trimmed: &str) -> Result<String, String> {
    // Checked first: an address copied from a web page or a word processor can carry a
    // character nobody sees, which would make two addresses that look the same match no key.
    if let Some((character, name)) = find_invisible_character(trimmed) {
        return Err(format!(
            "contains an invisible character U+{:04X} ({name})",
            character as u32
        ));
    }
    let lower_cased = trimmed.to_lowercase();
    if is_valid_email(&lower_cased) {
        Ok(lower_cased)
    } else if looks_like_phone_number(trimmed) {
        Err("looks like a phone number, not an email address".to_owned())
    } else {
        Err("not a valid email address".to_owned())
    }
}

/// Characters that print as nothing (or only steer the direction of text) but are not
/// whitespace, so trimming keeps them: the zero-width characters, the byte order mark inside a
/// text (the one that starts a file is gone before cells are read), the bidirectional controls
/// and the soft hyphen. Each with the name its Unicode chart gives it, for the row error.
const INVISIBLE_CHARACTERS: &[(char, &str)] = &[
    ('\u{00AD}', "soft hyphen"),
    ('\u{200B}', "zero width space"),
    ('\u{200C}', "zero width non-joiner"),
    ('\u{200D}', "zero width joiner"),
    ('\u{200E}', "left-to-right mark"),
    ('\u{200F}', "right-to-left mark"),
    ('\u{202A}', "left-to-right embedding"),
    ('\u{202B}', "right-to-left embedding"),
    ('\u{202C}', "pop directional formatting"),
    ('\u{202D}', "left-to-right override"),
    ('\u{202E}', "right-to-left override"),
    ('\u{2060}', "word joiner"),
    ('\u{2066}', "left-to-right isolate"),
    ('\u{2067}', "right-to-left isolate"),
    ('\u{2068}', "first strong isolate"),
    ('\u{2069}', "pop directional isolate"),
    ('\u{FEFF}', "zero width no-break space, the byte order mark"),
];

/// The first invisible character of `text`, with its name.
fn find_invisible_character(text: &str) -> Option<(char, &'static str)> {
    text.chars().find_map(|character| {
        INVISIBLE_CHARACTERS
            .iter()
            .find(|(invisible, _)| *invisible == character)
            .copied()
    })
}

/// RFC 5321 caps a whole address at 254 characters.
const MAX_EMAIL_LENGTH: usize = 254;

fn is_valid_email(email: &str) -> bool {
    if email.chars().count() > MAX_EMAIL_LENGTH {
        return false;
    }
    let mut parts = email.split('@');
    let (Some(local_part), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if local_part.is_empty() || local_part.chars().any(char::is_whitespace) {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let labels_are_valid = labels.iter().all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || character == '-')
    });
    let top_level_domain = labels.last().copied().unwrap_or_default();
    labels_are_valid
        && top_level_domain.len() >= 2
        && top_level_domain
            .chars()
            .all(|character| character.is_ascii_alphabetic())
}

/// Digits with the usual phone punctuation and nothing else: someone put a phone number in the
/// wrong column.
fn looks_like_phone_number(text: &str) -> bool {
    let digit_count = text
        .chars()
        .filter(|character| character.is_ascii_digit())
        .count();
    digit_count >= 6
        && text
            .chars()
            .all(|character| character.is_ascii_digit() || " +-()./".contains(character))
}

fn normalize_phone(trimmed: &str, region: PhoneRegion) -> Result<String, String> {
    if trimmed.contains('@') {
        return Err("looks like an email address, not a phone number".to_owned());
    }
    let invalid = || format!("not a valid phone number for region {region}");
    match phone::polish_number(trimmed, region) {
        Some(Shortcut::Valid(e164)) => return Ok(e164),
        Some(Shortcut::Invalid) => return Err(invalid()),
        None => {}
    }
    match phonenumber::parse(Some(region.0), trimmed) {
        Ok(number) if phonenumber::is_valid(&number) => {
            // E.164 is "+", the country code and the national number (with the leading zeros
            // some countries keep); the library's formatter looks up national formats first,
            // a fifth of the cost of a phone cell, to print the same.
            Ok(format!("+{}{}", number.code().value(), number.national()))
        }
        _ => Err(invalid()),
    }
}

/// Splits an optional leading sign: returns whether it was '-', and the rest.
fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

fn is_ascii_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

fn normalize_integer(trimmed: &str) -> Result<String, String> {
    let (_, digits) = split_sign(trimmed);
    if !is_ascii_digits(digits) {
        return Err("not a whole number".to_owned());
    }
    // i64 parsing accepts the sign and leading zeros; printing gives the canonical form.
    trimmed
        .parse::<i64>()
        .map(|number| number.to_string())
        .map_err(|_| "not a whole number (too large)".to_owned())
}

fn normalize_decimal(trimmed: &str) -> Result<String, String> {
    const REASON: &str = "not a decimal number";
    let (negative, unsigned) = split_sign(trimmed);
    let (whole_digits, fraction_digits) = match unsigned.find(['.', ',']) {
        Some(separator_index) => (
            &unsigned[..separator_index],
            Some(&unsigned[separator_index + 1..]),
        ),
        None => (unsigned, None),
    };
    if !is_ascii_digits(whole_digits) {
        return Err(REASON.to_owned());
    }
    if let Some(fraction_digits) = fraction_digits {
        if !is_ascii_digits(fraction_digits) {
            return Err(REASON.to_owned());
        }
    }
    let whole_without_leading_zeros = match whole_digits.trim_start_matches('0') {
        "" => "0",
        significant => significant,
    };
    let is_zero = whole_without_leading_zeros == "0"
        && fraction_digits.is_none_or(|fraction| fraction.bytes().all(|byte| byte == b'0'));
    let mut canonical = String::with_capacity(trimmed.len());
    if negative && !is_zero {
        canonical.push('-');
    }
    canonical.push_str(whole_without_leading_zeros);
    if let Some(fraction_digits) = fraction_digits {
        canonical.push('.');
        canonical.push_str(fraction_digits);
    }
    Ok(canonical)
}

fn normalize_date(trimmed: &str) -> Result<String, String> {
    parse_date(trimmed)
        .filter(|&(year, month, day)| is_real_calendar_date(year, month, day))
        .map(|(year, month, day)| format!("{year:04}-{month:02}-{day:02}"))
        .ok_or_else(|| "not a date (expected YYYY-MM-DD)".to_owned())
}

/// Reads year, month and day from the accepted layouts, without checking the calendar.
fn parse_date(text: &str) -> Option<(u32, u32, u32)> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = text.get(range)?;
        if is_ascii_digits(digits) {
            digits.parse().ok()
        } else {
            None
        }
    };
    // YYYYMMDD
    if bytes.len() == 8 && is_ascii_digits(text) {
        return Some((number(0..4)?, number(4..6)?, number(6..8)?));
    }
    // YYYY-MM-DD, optionally followed by a time
    if bytes.len() >= 10 && bytes[4] == b'-' && bytes[7] == b'-' {
        let date = (number(0..4)?, number(5..7)?, number(8..10)?);
        let rest = &text[10..];
        return if rest.is_empty() || is_valid_time_suffix(rest) {
            Some(date)
        } else {
            None
        };
    }
    // DD.MM.YYYY (day and month may have one digit)
    let mut parts = text.split('.');
    let (Some(day), Some(month), Some(year), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let short_number = |digits: &str| -> Option<u32> {
        if (1..=2).contains(&digits.len()) && is_ascii_digits(digits) {
            digits.parse().ok()
        } else {
            None
        }
    };
    if year.len() != 4 || !is_ascii_digits(year) {
        return None;
    }
    Some((year.parse().ok()?, short_number(month)?, short_number(day)?))
}

/// `THH:MM[:SS[.fff]][Z|±HH:MM]` after the date (a space is accepted instead of the `T`).
fn is_valid_time_suffix(suffix: &str) -> bool {
    let Some(time_and_zone) = suffix
        .strip_prefix('T')
        .or_else(|| suffix.strip_prefix('t'))
        .or_else(|| suffix.strip_prefix(' '))
    else {
        return false;
    };
    let (time, zone) = match time_and_zone.find(['Z', 'z', '+', '-']) {
        Some(zone_index) => time_and_zone.split_at(zone_index),
        None => (time_and_zone, ""),
    };
    let two_digits_below = |digits: &str, limit: u32| -> bool {
        digits.len() == 2
            && is_ascii_digits(digits)
            && digits.parse::<u32>().is_ok_and(|value| value < limit)
    };
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let clock_parts: Vec<&str> = clock.split(':').collect();
    let clock_is_valid = match clock_parts.as_slice() {
        [hours, minutes] => {
            fraction.is_none() && two_digits_below(hours, 24) && two_digits_below(minutes, 60)
        }
        [hours, minutes, seconds] => {
            two_digits_below(hours, 24)
                && two_digits_below(minutes, 60)
                && two_digits_below(seconds, 61)
                && fraction.is_none_or(is_ascii_digits)
        }
        _ => false,
    };
    let zone_is_valid = match zone {
        "" | "Z" | "z" => true,
        offset => offset[1..].split_once(':').is_some_and(|(hours, minutes)| {
            two_digits_below(hours, 24) && two_digits_below(minutes, 60)
        }),
    };
    clock_is_valid && zone_is_valid
}

fn is_real_calendar_date(year: u32, month: u32, day: u32) -> bool {
    let is_leap_year = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year => 29,
        2 => 28,
        _ => return false,
    };
    year >= 1 && (1..=days_in_month).contains(&day)
}

fn normalize_boolean(trimmed: &str) -> Result<String, String> {
    match trimmed.to_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "t" | "tak" => Ok("true".to_owned()),
        "0" | "false" | "no" | "n" | "f" | "nie" => Ok("false".to_owned()),
        _ => Err("not yes or no (expected true/false, yes/no, 1/0 or tak/nie)".to_owned()),
    }
}

fn normalize_enum(trimmed: &str, allowed_values: &[String]) -> Result<String, String> {
    let lower_cased = trimmed.to_lowercase();
    allowed_values
        .iter()
        .find(|allowed| allowed.trim().to_lowercase() == lower_cased)
        .map(|allowed| allowed.trim().to_owned())
        .ok_or_else(|| format!("not one of: {}", allowed_values.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{resolve_mapping, standard_attributes, AttributeDef};

    fn check_type(attribute_type: &AttributeType, table: &[(&str, Result<Option<&str>, &str>)]) {
        for (raw, expected) in table {
            check(attribute_type, raw, *expected);
        }
    }

    fn check(attribute_type: &AttributeType, raw: &str, expected: Result<Option<&str>, &str>) {
        let actual = normalize_value(attribute_type, raw, PhoneRegion::default());
        let expected = expected
            .map(|value| value.map(str::to_owned))
            .map_err(str::to_owned);
        assert_eq!(actual, expected, "{attribute_type} value {raw:?}");
    }

    #[test]
    fn empty_cells_are_absent_for_every_type() {
        for attribute_type in [
            AttributeType::Text,
            AttributeType::Email,
            AttributeType::Phone,
            AttributeType::Integer,
            AttributeType::Decimal,
            AttributeType::Date,
            AttributeType::Boolean,
            AttributeType::Enum { values: vec![] },
        ] {
            check_type(&attribute_type, &[("", Ok(None)), ("  \t ", Ok(None))]);
        }
    }

    #[test]
    fn text_is_kept_as_written_but_trimmed() {
        check_type(
            &AttributeType::Text,
            &[
                (" Jan ", Ok(Some("Jan"))),
                ("Łódź  Bałuty", Ok(Some("Łódź  Bałuty"))),
            ],
        );
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        const INVALID: &str = "not a valid email address";
        const PHONE: &str = "looks like a phone number, not an email address";
        check_type(
            &AttributeType::Email,
            &[
                (
                    "jan.kowalski@example.com",
                    Ok(Some("jan.kowalski@example.com")),
                ),
                (
                    " Jan.Kowalski@Example.COM ",
                    Ok(Some("jan.kowalski@example.com")),
                ),
                (
                    "a+tag@mail.example-host.pl",
                    Ok(Some("a+tag@mail.example-host.pl")),
                ),
                ("jan@example", Err(INVALID)),
                ("jan@@example.com", Err(INVALID)),
                ("jan@x@example.com", Err(INVALID)),
                ("@example.com", Err(INVALID)),
                ("jan kowalski@example.com", Err(INVALID)),
                ("jan@-example.com", Err(INVALID)),
                ("jan@example-.com", Err(INVALID)),
                ("jan@example..com", Err(INVALID)),
                ("jan@example.c", Err(INVALID)),
                ("jan@example.c0m", Err(INVALID)),
                ("jan@exam_ple.com", Err(INVALID)),
                ("Jan Kowalski", Err(INVALID)),
                ("+48 501 234 567", Err(PHONE)),
                ("(22) 123-45-67", Err(PHONE)),
            ],
        );
    }

    #[test]
    fn an_email_holding_an_invisible_character_is_refused_with_the_character_named() {
        let reason =
            |code_and_name: &str| format!("contains an invisible character {code_and_name}");
        let table: &[(&str, String)] = &[
            (
                "jan\u{200B}@example.com",
                reason("U+200B (zero width space)"),
            ),
            (
                "jan@exam\u{200B}ple.com",
                reason("U+200B (zero width space)"),
            ),
            (
                "ja\u{200C}n@example.com",
                reason("U+200C (zero width non-joiner)"),
            ),
            (
                "ja\u{200D}n@example.com",
                reason("U+200D (zero width joiner)"),
            ),
            ("jan\u{2060}@example.com", reason("U+2060 (word joiner)")),
            (
                "jan@example.com\u{FEFF}",
                reason("U+FEFF (zero width no-break space, the byte order mark)"),
            ),
            (
                "\u{FEFF}jan@example.com",
                reason("U+FEFF (zero width no-break space, the byte order mark)"),
            ),
            (
                "\u{202A}jan@example.com",
                reason("U+202A (left-to-right embedding)"),
            ),
            (
                "\u{202B}jan@example.com",
                reason("U+202B (right-to-left embedding)"),
            ),
            (
                "jan@example.com\u{202C}",
                reason("U+202C (pop directional formatting)"),
            ),
            (
                "\u{202D}jan@example.com",
                reason("U+202D (left-to-right override)"),
            ),
            (
                "moc.elpmaxe@naj\u{202E}",
                reason("U+202E (right-to-left override)"),
            ),
            (
                "\u{2066}jan@example.com",
                reason("U+2066 (left-to-right isolate)"),
            ),
            (
                "\u{2067}jan@example.com",
                reason("U+2067 (right-to-left isolate)"),
            ),
            (
                "\u{2068}jan@example.com",
                reason("U+2068 (first strong isolate)"),
            ),
            (
                "jan@example.com\u{2069}",
                reason("U+2069 (pop directional isolate)"),
            ),
            (
                "\u{200E}jan@example.com",
                reason("U+200E (left-to-right mark)"),
            ),
            (
                "jan@example.com\u{200F}",
                reason("U+200F (right-to-left mark)"),
            ),
            (
                "jan\u{00AD}kowalski@example.com",
                reason("U+00AD (soft hyphen)"),
            ),
            (
                " Jan\u{200B}\u{00AD}@Example.com ",
                reason("U+200B (zero width space)"),
            ),
        ];
        for (raw, expected_reason) in table {
            check(&AttributeType::Email, raw, Err(expected_reason));
        }
    }

    #[test]
    fn an_invisible_character_is_named_in_the_row_error_of_its_cell() {
        check_record(
            &["jan\u{200B}@example.com", "", "", "", ""],
            Err(&[(
                Some("Email"),
                Some("jan\u{200B}@example.com"),
                "contains an invisible character U+200B (zero width space)",
            )]),
        );
    }

    #[test]
    fn visible_non_ascii_letters_in_the_local_part_are_still_accepted() {
        check_type(
            &AttributeType::Email,
            &[("Łukasz@example.com", Ok(Some("łukasz@example.com")))],
        );
    }

    #[test]
    fn phones_become_e164_using_the_default_region() {
        const INVALID: &str = "not a valid phone number for region PL";
        check_type(
            &AttributeType::Phone,
            &[
                ("501 234 567", Ok(Some("+48501234567"))),
                ("+48 501-234-567", Ok(Some("+48501234567"))),
                ("0048501234567", Ok(Some("+48501234567"))),
                ("+48501234567", Ok(Some("+48501234567"))),
                ("+49 30 901820", Ok(Some("+4930901820"))),
                ("12", Err(INVALID)),
                ("501 234", Err(INVALID)),
                ("call me", Err(INVALID)),
                (
                    "jan.kowalski@example.com",
                    Err("looks like an email address, not a phone number"),
                ),
            ],
        );
    }

    #[test]
    fn e164_is_printed_as_the_library_prints_it_leading_zeros_included() {
        for (raw, region) in [
            ("+39 06 6982 1234", "IT"),
            ("06 6982 1234", "IT"),
            ("+44 20 7946 0958", "GB"),
            ("(212) 555-0123", "US"),
            ("501 234 567", "PL"),
            ("+1 684 733 1234", "US"),
        ] {
            let region: PhoneRegion = region.parse().expect("a region");
            let number = phonenumber::parse(Some(region.0), raw).expect("parses");
            let library = number.format().mode(phonenumber::Mode::E164).to_string();
            assert_eq!(
                normalize_value(&AttributeType::Phone, raw, region),
                Ok(Some(library)),
                "{raw}"
            );
        }
    }

    #[test]
    fn phone_region_parses_case_insensitively_and_travels_as_its_code() {
        assert_eq!("pl".parse::<PhoneRegion>(), Ok(PhoneRegion::default()));
        assert_eq!(
            " DE "
                .parse::<PhoneRegion>()
                .map(|region| region.to_string()),
            Ok("DE".to_owned())
        );
        assert!("XX".parse::<PhoneRegion>().is_err());
        assert!("".parse::<PhoneRegion>().is_err());
        assert_eq!(PhoneRegion::default().to_string(), "PL");
        let german = "DE".parse().expect("known region");
        assert_eq!(
            normalize_value(&AttributeType::Phone, "030 901820", german),
            Ok(Some("+4930901820".to_owned()))
        );
    }

    #[test]
    fn integers_are_written_canonically() {
        const INVALID: &str = "not a whole number";
        check_type(
            &AttributeType::Integer,
            &[
                ("42", Ok(Some("42"))),
                ("+42", Ok(Some("42"))),
                ("-007", Ok(Some("-7"))),
                ("-0", Ok(Some("0"))),
                ("000", Ok(Some("0"))),
                ("9223372036854775807", Ok(Some("9223372036854775807"))),
                ("-9223372036854775808", Ok(Some("-9223372036854775808"))),
                ("9223372036854775808", Err("not a whole number (too large)")),
                ("4.2", Err(INVALID)),
                ("1 000", Err(INVALID)),
                ("+", Err(INVALID)),
                ("--1", Err(INVALID)),
                ("١٢", Err(INVALID)),
                ("x", Err(INVALID)),
            ],
        );
    }

    #[test]
    fn decimals_keep_their_fraction_digits_as_written() {
        const INVALID: &str = "not a decimal number";
        check_type(
            &AttributeType::Decimal,
            &[
                ("12.50", Ok(Some("12.50"))),
                ("12,50", Ok(Some("12.50"))),
                ("+0012", Ok(Some("12"))),
                ("-0,5", Ok(Some("-0.5"))),
                ("-0.00", Ok(Some("0.00"))),
                (
                    "0.10000000000000000000001",
                    Ok(Some("0.10000000000000000000001")),
                ),
                (
                    "99999999999999999999999",
                    Ok(Some("99999999999999999999999")),
                ),
                ("1.", Err(INVALID)),
                (".5", Err(INVALID)),
                ("1.2.3", Err(INVALID)),
                ("1,2,3", Err(INVALID)),
                ("1 000,00", Err(INVALID)),
                ("1e5", Err(INVALID)),
                ("abc", Err(INVALID)),
            ],
        );
    }

    #[test]
    fn dates_in_accepted_layouts_become_iso_dates() {
        const INVALID: &str = "not a date (expected YYYY-MM-DD)";
        check_type(
            &AttributeType::Date,
            &[
                ("1990-03-15", Ok(Some("1990-03-15"))),
                ("1990-03-15T10:30", Ok(Some("1990-03-15"))),
                ("1990-03-15T10:30:59", Ok(Some("1990-03-15"))),
                ("1990-03-15T10:30:59.123Z", Ok(Some("1990-03-15"))),
                ("1990-03-15T23:59:00+02:00", Ok(Some("1990-03-15"))),
                ("1990-03-15T00:00-05:30", Ok(Some("1990-03-15"))),
                ("1990-03-15 10:30", Ok(Some("1990-03-15"))),
                ("19900315", Ok(Some("1990-03-15"))),
                ("15.03.1990", Ok(Some("1990-03-15"))),
                ("5.3.1990", Ok(Some("1990-03-05"))),
                ("1990-3-15", Err(INVALID)),
                ("1990-03-15T", Err(INVALID)),
                ("1990-03-15T25:00", Err(INVALID)),
                ("1990-03-15T10:30.5", Err(INVALID)),
                ("1990-03-15T10:30+2", Err(INVALID)),
                ("1990-03-15x", Err(INVALID)),
                ("1990-13-01", Err(INVALID)),
                ("1990-04-31", Err(INVALID)),
                ("1990-00-10", Err(INVALID)),
                ("0000-01-01", Err(INVALID)),
                ("15/03/1990", Err(INVALID)),
                ("15.03.90", Err(INVALID)),
                ("yesterday", Err(INVALID)),
                ("1990-0a-15", Err(INVALID)),
            ],
        );
    }

    #[test]
    fn the_29th_of_february_exists_only_in_leap_years() {
        const INVALID: &str = "not a date (expected YYYY-MM-DD)";
        check_type(
            &AttributeType::Date,
            &[
                ("2024-02-29", Ok(Some("2024-02-29"))),
                ("2000-02-29", Ok(Some("2000-02-29"))),
                ("29.02.2024", Ok(Some("2024-02-29"))),
                ("20240229", Ok(Some("2024-02-29"))),
                ("2023-02-29", Err(INVALID)),
                ("1900-02-29", Err(INVALID)),
                ("29.02.2023", Err(INVALID)),
                ("2024-02-30", Err(INVALID)),
            ],
        );
    }

    #[test]
    fn booleans_accept_english_and_polish_words() {
        let invalid = Err("not yes or no (expected true/false, yes/no, 1/0 or tak/nie)");
        check_type(
            &AttributeType::Boolean,
            &[
                ("1", Ok(Some("true"))),
                ("TRUE", Ok(Some("true"))),
                ("Yes", Ok(Some("true"))),
                ("y", Ok(Some("true"))),
                ("T", Ok(Some("true"))),
                ("Tak", Ok(Some("true"))),
                ("0", Ok(Some("false"))),
                ("false", Ok(Some("false"))),
                ("NO", Ok(Some("false"))),
                ("n", Ok(Some("false"))),
                ("f", Ok(Some("false"))),
                ("nie", Ok(Some("false"))),
                ("2", invalid),
                ("maybe", invalid),
            ],
        );
    }

    #[test]
    fn enum_values_take_the_allowed_spelling() {
        let tiers = AttributeType::Enum {
            values: vec!["Gold".to_owned(), "silver".to_owned(), "Brąz".to_owned()],
        };
        check_type(
            &tiers,
            &[
                ("gold", Ok(Some("Gold"))),
                (" SILVER ", Ok(Some("silver"))),
                ("BRĄZ", Ok(Some("Brąz"))),
                ("platinum", Err("not one of: Gold, silver, Brąz")),
            ],
        );
    }

    fn plan_for(header: &[&str]) -> MappingPlan {
        let mut catalog = standard_attributes();
        catalog.push(AttributeDef {
            key: "loyalty_points".to_owned(),
            label: "Loyalty points".to_owned(),
            attribute_type: AttributeType::Integer,
            required: false,
            identifier: false,
        });
        let header: Vec<String> = header.iter().map(|name| (*name).to_owned()).collect();
        resolve_mapping(&header, &catalog, &[], &[]).expect("valid test mapping")
    }

    fn record(line: u64, fields: &[&str]) -> RawRecord {
        RawRecord {
            line,
            fields: fields.iter().map(|field| (*field).to_owned()).collect(),
            end_offset: 0,
        }
    }

    /// Expected attribute values as (key, value).
    type ExpectedValues<'a> = &'a [(&'a str, &'a str)];
    /// Expected row errors as (column, value, reason).
    type ExpectedErrors<'a> = &'a [(Option<&'a str>, Option<&'a str>, &'a str)];

    fn check_record(fields: &[&str], expected: Result<ExpectedValues, ExpectedErrors>) {
        let plan = plan_for(&["Email", "Mobile", "Notes", "Loyalty_Points", "birthday"]);
        let actual = validate_record(&plan, &record(7, fields), PhoneRegion::default());
        let expected = expected
            .map(|values| ValidRecord {
                line: 7,
                values: values
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                    .collect(),
            })
            .map_err(|errors| {
                errors
                    .iter()
                    .map(|(column, value, reason)| RowError {
                        line: 7,
                        column: column.map(str::to_owned),
                        value: value.map(str::to_owned),
                        reason: (*reason).to_owned(),
                    })
                    .collect::<Vec<_>>()
            });
        assert_eq!(actual, expected, "fields {fields:?}");
    }

    #[test]
    fn a_valid_record_holds_normalized_values_and_skips_empty_and_ignored_cells() {
        check_record(
            &[
                "Jan@Example.com",
                "501 234 567",
                "anything at all",
                "",
                "15.03.1990",
            ],
            Ok(&[
                ("birthday", "1990-03-15"),
                ("email", "jan@example.com"),
                ("mobile", "+48501234567"),
            ]),
        );
    }

    #[test]
    fn an_empty_required_cell_is_an_error() {
        check_record(
            &["  ", "", "", "", ""],
            Err(&[(Some("Email"), Some("  "), "a value is required")]),
        );
    }

    #[test]
    fn every_bad_cell_is_reported_together() {
        check_record(
            &[
                "+48 501 234 567",
                "jan.kowalski@example.com",
                "",
                "many",
                "2023-02-29",
            ],
            Err(&[
                (
                    Some("Email"),
                    Some("+48 501 234 567"),
                    "looks like a phone number, not an email address",
                ),
                (
                    Some("Mobile"),
                    Some("jan.kowalski@example.com"),
                    "looks like an email address, not a phone number",
                ),
                (Some("Loyalty_Points"), Some("many"), "not a whole number"),
                (
                    Some("birthday"),
                    Some("2023-02-29"),
                    "not a date (expected YYYY-MM-DD)",
                ),
            ]),
        );
    }

    #[test]
    fn cells_guarded_against_formulas_import_and_errors_keep_the_raw_cell() {
        check_record(
            &["jan@example.com", "'+48 501 234 567", "'-x", "'-7", ""],
            Ok(&[
                ("email", "jan@example.com"),
                ("loyalty_points", "-7"),
                ("mobile", "+48501234567"),
            ]),
        );
        check_record(
            &["a@example.com", "'+48 12", "", "'-many", ""],
            Err(&[
                (
                    Some("Mobile"),
                    Some("'+48 12"),
                    "not a valid phone number for region PL",
                ),
                (Some("Loyalty_Points"), Some("'-many"), "not a whole number"),
            ]),
        );
    }

    #[test]
    fn a_row_with_the_wrong_number_of_fields_is_one_error() {
        check_record(
            &["a@example.com", "", "", "", "", "extra"],
            Err(&[(None, None, "the row has 6 fields but the header has 5")]),
        );
        check_record(
            &["a@example.com"],
            Err(&[(None, None, "the row has 1 field but the header has 5")]),
        );
    }

    #[test]
    fn unreadable_characters_and_oversized_identifiers_fail_their_cell() {
        let header: Vec<String> = ["email", "external_id", "city"].map(String::from).to_vec();
        let mut catalog = crate::mapping::standard_attributes();
        for attribute in &mut catalog {
            if attribute.key == "external_id" {
                attribute.identifier = true;
            }
        }
        let plan =
            crate::mapping::resolve_mapping(&header, &catalog, &[], &[]).expect("valid mapping");
        let long_email = format!("{}@example.com", "a".repeat(250));
        let cases: [(&[&str], &[&str]); 7] = [
            (&["a@example.com", "E-1", "Kra\0ków"], &["city"]),
            (&["a@example.com", "E-1", "Krak\u{FFFD}w"], &["city"]),
            (&["a@example.com", "E-\u{1}1", "Kraków"], &["external_id"]),
            (&["a@example.com", "E-1", "Kra\u{7f}ków\u{9b}"], &["city"]),
            (&["a@example.com", "E-1", "Kraków\tStare\r\nMiasto"], &[]),
            (
                &[
                    "a@example.com",
                    &"x".repeat(MAX_IDENTIFIER_BYTES + 1),
                    "Kraków",
                ],
                &["external_id"],
            ),
            (&[&long_email, "E-1", "Kraków"], &["email"]),
        ];
        for (fields, bad_columns) in cases {
            let record = RawRecord {
                line: 2,
                fields: fields.iter().map(|field| field.to_string()).collect(),
                end_offset: 0,
            };
            let Err(errors) = validate_record(&plan, &record, PhoneRegion::default()) else {
                assert!(bad_columns.is_empty(), "{fields:?} should fail");
                continue;
            };
            let columns: Vec<&str> = errors
                .iter()
                .filter_map(|error| error.column.as_deref())
                .collect();
            assert_eq!(columns, bad_columns, "{fields:?}");
        }
    }
}
