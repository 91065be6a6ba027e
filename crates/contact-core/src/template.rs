//! Owns the sample CSV file users download to see what an import expects, and the guard against
//! formulas in CSV files that people open in a spreadsheet.

use std::borrow::Cow;

use crate::mapping::{AttributeDef, AttributeType};

/// A value valid for the attribute's type, shown in the sample file so users see the expected
/// layout (a date as 1990-04-12, a phone with its country code, ...).
///
/// Text attributes get a plausible value chosen by key (first_name "Jan", city "Kraków", ...),
/// else "example"; an enum gets its first allowed value.
pub fn example_value(attribute: &AttributeDef) -> String {
    let value = match &attribute.attribute_type {
        AttributeType::Email => "jan.kowalski@example.com",
        AttributeType::Phone => "+48 501 234 567",
        AttributeType::Integer => "42",
        AttributeType::Decimal => "12.50",
        AttributeType::Date => "1990-04-12",
        AttributeType::Boolean => "true",
        AttributeType::Enum { values } => values.first().map_or("example", String::as_str),
        AttributeType::Text => example_text_for_key(&attribute.key),
    };
    value.to_owned()
}

/// The sample file for a catalog: the header names every attribute by key, required ones first,
/// then the rest in catalog order, and one example row follows.
///
/// Comma-separated, fields quoted only when needed (RFC 4180), lines end with "\n".
pub fn template_csv(catalog: &[AttributeDef]) -> String {
    let ordered: Vec<&AttributeDef> = catalog
        .iter()
        .filter(|attribute| attribute.required)
        .chain(catalog.iter().filter(|attribute| !attribute.required))
        .collect();
    let header: Vec<String> = ordered
        .iter()
        .map(|attribute| attribute.key.clone())
        .collect();
    let example_row: Vec<String> = ordered
        .iter()
        .map(|attribute| example_value(attribute))
        .collect();
    let mut csv = String::new();
    for fields in [header, example_row] {
        let quoted: Vec<Cow<'_, str>> = fields.iter().map(|field| quote_if_needed(field)).collect();
        csv.push_str(&quoted.join(","));
        csv.push('\n');
    }
    csv
}

/// Guards a cell against CSV injection (OWASP) before it is written to a file people open in a
/// spreadsheet: a cell starting with '=', '+', '-', '@', tab or carriage return gets a leading
/// apostrophe, so the spreadsheet shows it as text instead of running it as a formula.
///
/// A cell that already looks guarded (apostrophes, then one of those characters) gets one more
/// apostrophe, so [`strip_formula_guard`] always gives back exactly the original cell.
pub fn neutralize_formula(cell: &str) -> Cow<'_, str> {
    if needs_formula_guard(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Undoes [`neutralize_formula`] when a guarded file comes back for import (a row from an error
/// file, fixed and uploaded again): a leading apostrophe followed by one of the guarded
/// characters (possibly after further apostrophes) is dropped.
pub fn strip_formula_guard(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_formula_guard(rest) => rest,
        _ => cell,
    }
}

/// Characters that make a spreadsheet read a cell as a formula.
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn needs_formula_guard(cell: &str) -> bool {
    cell.trim_start_matches('\'')
        .starts_with(|character| FORMULA_TRIGGERS.contains(&character))
}

fn example_text_for_key(key: &str) -> &'static str {
    match key {
        "first_name" => "Jan",
        "last_name" => "Kowalski",
        "company" => "Example Sp. z o.o.",
        "city" => "Kraków",
        "street" => "ul. Długa 1",
        "postal_code" => "00-001",
        "external_id" => "CRM-0001",
        _ => "example",
    }
}

/// RFC 4180: a field with a comma, a quote or a line break is quoted, quotes doubled.
fn quote_if_needed(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_parser::{ParsedRecord, RecordParser};
    use crate::mapping::{resolve_mapping, standard_attributes};
    use crate::validate::{validate_record, PhoneRegion};

    fn attribute(key: &str, attribute_type: AttributeType, required: bool) -> AttributeDef {
        AttributeDef {
            key: key.to_owned(),
            label: key.to_owned(),
            attribute_type,
            required,
            identifier: false,
        }
    }

    fn catalog() -> Vec<AttributeDef> {
        let mut catalog = standard_attributes();
        catalog.extend([
            attribute(
                "tier",
                AttributeType::Enum {
                    values: vec!["Gold, plus".to_owned(), "Silver".to_owned()],
                },
                false,
            ),
            attribute("loyalty_points", AttributeType::Integer, true),
            attribute("balance", AttributeType::Decimal, false),
            attribute("newsletter", AttributeType::Boolean, false),
            attribute("nickname", AttributeType::Text, false),
        ]);
        catalog
    }

    fn parse(csv: &str) -> Vec<ParsedRecord> {
        let mut parser = RecordParser::new(b',', 1 << 20);
        let mut records = Vec::new();
        parser.feed(csv.as_bytes(), &mut records);
        parser.finish(&mut records);
        records
    }

    fn check(cell: &str, guarded: &str) {
        assert_eq!(neutralize_formula(cell), guarded, "neutralize {cell:?}");
        assert_eq!(strip_formula_guard(guarded), cell, "strip {guarded:?}");
    }

    #[test]
    fn the_template_lists_required_attributes_first_and_one_example_row() {
        assert_eq!(
            template_csv(&catalog()),
            "email,loyalty_points,mobile,first_name,last_name,company,city,street,postal_code,birthday,external_id,tier,balance,newsletter,nickname\n\
             jan.kowalski@example.com,42,+48 501 234 567,Jan,Kowalski,Example Sp. z o.o.,Kraków,ul. Długa 1,00-001,1990-04-12,CRM-0001,\"Gold, plus\",12.50,true,example\n"
        );
        assert_eq!(template_csv(&[]), "\n\n");
    }

    #[test]
    fn the_template_imports_as_a_valid_record() {
        let catalog = catalog();
        let parsed = parse(&template_csv(&catalog));
        let [ParsedRecord::Record(header), ParsedRecord::Record(row)] = parsed.as_slice() else {
            panic!("expected a header and one row, got {parsed:?}");
        };
        let plan = resolve_mapping(&header.fields, &catalog, &[], &[]).expect("every key maps");
        assert_eq!(plan.mapped_attribute_count(), catalog.len());
        let record = validate_record(&plan, row, PhoneRegion::default()).expect("valid row");
        assert_eq!(record.values.len(), catalog.len());
        assert_eq!(record.values["mobile"], "+48501234567");
        assert_eq!(record.values["tier"], "Gold, plus");
    }

    #[test]
    fn example_values_suit_the_attribute_type() {
        let table = [
            (AttributeType::Email, "jan.kowalski@example.com"),
            (AttributeType::Phone, "+48 501 234 567"),
            (AttributeType::Integer, "42"),
            (AttributeType::Decimal, "12.50"),
            (AttributeType::Date, "1990-04-12"),
            (AttributeType::Boolean, "true"),
            (AttributeType::Enum { values: vec![] }, "example"),
            (AttributeType::Text, "example"),
        ];
        for (attribute_type, expected) in table {
            assert_eq!(
                example_value(&attribute("anything", attribute_type.clone(), false)),
                expected,
                "{attribute_type}"
            );
        }
    }

    #[test]
    fn formula_cells_get_an_apostrophe_that_comes_off_again() {
        check("=SUM(A1:A9)", "'=SUM(A1:A9)");
        check("+48 501 234 567", "'+48 501 234 567");
        check("-5", "'-5");
        check("@cmd", "'@cmd");
        check("\tx", "'\tx");
        check("\rx", "'\rx");
        check("'=already guarded", "''=already guarded");
        check("Jan", "Jan");
        check("'quoted'", "'quoted'");
        check("a=b", "a=b");
        check("", "");
        check("'", "'");
    }
}
