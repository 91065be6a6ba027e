//! Owns the import preview: how the start of a file will be read (encoding, delimiter, the first
//! rows) and a suggested mapping, shown before anything is imported.

use std::collections::BTreeMap;

use crate::csv_parser::ParsedRecord;
use crate::encoding::{NotText, TextEncoding};
use crate::file_reader::FileReader;
use crate::mapping::{fold_value, AttributeDef, ColumnMapping};
use crate::sniff::delimiter_name;
use crate::suggest::{suggest_mapping_with_fixed, ColumnSuggestion};
use crate::template::strip_formula_guard;
use crate::validate::{normalize_value, PhoneRegion};
use crate::value_map::{preview_value_maps, unfit_column, UnfitColumn, ValueMapping};

/// How many rows a preview shows unless told otherwise.
pub const DEFAULT_PREVIEW_ROWS: usize = 10;

/// The user's choices for reading the file; `None` means detect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewOptions {
    pub encoding: Option<TextEncoding>,
    pub delimiter: Option<u8>,
    pub region: PhoneRegion,
    /// Rows shown (and sampled for suggestions) after the header.
    pub max_rows: usize,
}

/// A column whose sampled cells would fail validation for its suggested attribute: the mapping
/// or the file needs fixing before the import, not after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidColumn {
    pub column: String,
    pub attribute: String,
    /// Sampled cells that would be rejected.
    pub invalid: usize,
    /// Sampled rows that have a cell in this column.
    pub sampled: usize,
    /// The first rejected cell, as written in the file.
    pub example: String,
    /// Why that cell is rejected.
    pub reason: String,
}

/// How the start of a file reads, and what would be imported from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub encoding: TextEncoding,
    /// The delimiter character itself, e.g. ";".
    pub delimiter: String,
    /// "comma", "semicolon", "tab" or "pipe".
    pub delimiter_name: String,
    /// The header names, trimmed.
    pub header: Vec<String>,
    /// Up to `max_rows` rows, as parsed (before validation).
    pub rows: Vec<Vec<String>>,
    /// Index-aligned with `header`.
    pub suggested_mapping: Vec<ColumnSuggestion>,
    /// Keys of required attributes that no column is suggested or mapped for.
    pub unmapped_required: Vec<String>,
    pub invalid_columns: Vec<InvalidColumn>,
    /// The enum and boolean columns whose values, in all of the sample's rows, include some
    /// their attribute does not allow: the values to map before the import.
    pub unfit_columns: Vec<UnfitColumn>,
}

/// Why there is nothing to preview.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    #[error("{0}")]
    NotText(#[from] NotText),
    #[error("the file is empty: it has no header row")]
    Empty,
    #[error("the header row cannot be read: {0}")]
    Header(String),
}

/// Reads the start of a file (`whole_file` when `sample` is all of it) the way the import will.
///
/// Detects the encoding and delimiter unless `options` sets them, decodes, parses the header and
/// up to `max_rows` rows (when the sample is cut, a last incomplete record is left out), and
/// suggests a mapping; explicit `mappings` win for their columns (confidence 1.0, reason
/// "mapped with --map"; a mapping naming an unknown column or attribute is left to
/// [`crate::mapping::resolve_mapping`] to report). Then lists the required attributes no column
/// maps to, the columns whose sampled cells fail their attribute's validation, and the values
/// of choice columns their attribute does not allow, each with what `value_mappings` reads it
/// as.
pub fn preview(
    sample: &[u8],
    whole_file: bool,
    options: &PreviewOptions,
    catalog: &[AttributeDef],
    mappings: &[ColumnMapping],
    value_mappings: &[ValueMapping],
) -> Result<Preview, PreviewError> {
    let without_mark = sample.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(sample);
    if without_mark.iter().all(u8::is_ascii_whitespace) {
        return Err(PreviewError::Empty);
    }
    let mut parsed = Vec::new();
    let reader = FileReader::open(
        sample,
        whole_file,
        options.encoding,
        options.delimiter,
        &mut parsed,
    )?;
    let (encoding, delimiter) = (reader.encoding(), reader.delimiter());
    let mut parsed = parsed.into_iter();
    let header: Vec<String> = match parsed.next() {
        Some(ParsedRecord::Record(record)) => record
            .fields
            .iter()
            .map(|name| name.trim().to_owned())
            .collect(),
        Some(ParsedRecord::Error(error)) => return Err(PreviewError::Header(error.to_string())),
        None if whole_file => return Err(PreviewError::Empty),
        None => {
            return Err(PreviewError::Header(format!(
                "the first line does not end within the first {} bytes of the file",
                sample.len()
            )))
        }
    };
    if header.iter().all(|name| name.is_empty()) {
        return Err(PreviewError::Header(
            "the first line is empty; it must name the columns".to_owned(),
        ));
    }
    // Every record of the sample: the rows shown are the first, the choice values are
    // gathered from all of them.
    let mut sampled_rows: Vec<Vec<String>> = parsed
        .filter_map(|item| match item {
            ParsedRecord::Record(record) => Some(record.fields),
            // A record that cannot be read is reported by the import itself, with its line.
            ParsedRecord::Error(_) => None,
        })
        .collect();
    let shown = sampled_rows.len().min(options.max_rows);
    let later_rows = sampled_rows.split_off(shown);
    let rows = sampled_rows;

    let fixed = explicit_pairs(&header, catalog, mappings);
    let suggested_mapping =
        suggest_mapping_with_fixed(&header, &rows, catalog, options.region, &fixed);
    let unmapped_required = catalog
        .iter()
        .filter(|attribute| attribute.required)
        .filter(|attribute| {
            !suggested_mapping
                .iter()
                .any(|suggestion| suggestion.attribute.as_deref() == Some(attribute.key.as_str()))
        })
        .map(|attribute| attribute.key.clone())
        .collect();
    let value_maps = preview_value_maps(catalog, value_mappings);
    let invalid_columns = suggested_mapping
        .iter()
        .enumerate()
        .filter_map(|(column_index, suggestion)| {
            let key = suggestion.attribute.as_deref()?;
            let attribute = catalog.iter().find(|attribute| attribute.key == key)?;
            let value_map = value_maps.get(key);
            invalid_column(
                column_index,
                suggestion,
                attribute,
                value_map,
                &rows,
                options.region,
            )
        })
        .collect();
    let unfit_columns = suggested_mapping
        .iter()
        .enumerate()
        .filter_map(|(column_index, suggestion)| {
            let key = suggestion.attribute.as_deref()?;
            let attribute = catalog.iter().find(|attribute| attribute.key == key)?;
            let cells = rows
                .iter()
                .chain(&later_rows)
                .filter_map(|row| row.get(column_index))
                .map(String::as_str);
            unfit_column(&suggestion.column, attribute, cells, &value_maps)
        })
        .collect();

    Ok(Preview {
        encoding,
        delimiter: char::from(delimiter).to_string(),
        delimiter_name: delimiter_name(delimiter).to_owned(),
        header,
        rows,
        suggested_mapping,
        unmapped_required,
        invalid_columns,
        unfit_columns,
    })
}

impl Default for PreviewOptions {
    fn default() -> Self {
        Self {
            encoding: None,
            delimiter: None,
            region: PhoneRegion::default(),
            max_rows: DEFAULT_PREVIEW_ROWS,
        }
    }
}

/// (column index, catalog index) for each explicit mapping whose column and attribute exist,
/// matched ignoring case as [`crate::mapping::resolve_mapping`] does; no catalog index for a
/// column chosen as not imported.
fn explicit_pairs(
    header: &[String],
    catalog: &[AttributeDef],
    mappings: &[ColumnMapping],
) -> Vec<(usize, Option<usize>)> {
    mappings
        .iter()
        .filter_map(|mapping| {
            let column = mapping.column.trim().to_lowercase();
            let attribute = mapping.attribute.trim().to_lowercase();
            let column_index = header
                .iter()
                .position(|name| name.to_lowercase() == column)?;
            if attribute.is_empty() {
                return Some((column_index, None));
            }
            let catalog_index = catalog
                .iter()
                .position(|candidate| candidate.key.to_lowercase() == attribute)?;
            Some((column_index, Some(catalog_index)))
        })
        .collect()
}

/// Checks the column's sampled cells the way [`crate::validate::validate_record`] will: a
/// value the value map reads fits.
fn invalid_column(
    column_index: usize,
    suggestion: &ColumnSuggestion,
    attribute: &AttributeDef,
    value_map: Option<&BTreeMap<String, String>>,
    rows: &[Vec<String>],
    region: PhoneRegion,
) -> Option<InvalidColumn> {
    let mut sampled = 0;
    let mut invalid = 0;
    let mut first_failure: Option<(String, String)> = None;
    for cell in rows.iter().filter_map(|row| row.get(column_index)) {
        sampled += 1;
        let unguarded = strip_formula_guard(cell);
        if value_map.is_some_and(|map| map.contains_key(&fold_value(unguarded))) {
            continue;
        }
        let failure = match normalize_value(&attribute.attribute_type, unguarded, region) {
            Ok(Some(_)) => None,
            Ok(None) if attribute.required => Some("a value is required".to_owned()),
            Ok(None) => None,
            Err(reason) => Some(reason),
        };
        if let Some(reason) = failure {
            invalid += 1;
            first_failure.get_or_insert_with(|| (cell.clone(), reason));
        }
    }
    let (example, reason) = first_failure?;
    Some(InvalidColumn {
        column: suggestion.column.clone(),
        attribute: attribute.key.clone(),
        invalid,
        sampled,
        example,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::standard_attributes;

    const POLISH_SEMICOLON_CSV: &str = "Imię;Nazwisko;Adres e-mail;Telefon;Miasto;Kod pocztowy\r\n\
        Zażółć;Gęślą;jazn@example.pl;501 234 567;Łódź;90-001\r\n\
        Anna;Wiśniewska;anna.w@example.com;602 345 678;Kraków;30-001\r\n\
        Łucja;Kowalczyk;lucja@example.pl;+48 723 456 789;Gdańsk;80-001\r\n\
        Stanisław;Kamiński;stan@example.pl;;Wrocław;50-001\r\n\
        Józef;Zieliński;jozef@example.pl;512 345 678;Białystok;15-001\r\n\
        Agnieszka;Szymańska;aga@example.pl;;Rzeszów;35-001\r\n\
        Jędrzej;Woźniak;jedrek@example.pl;;Kielce;25-001\r\n\
        Bożena;Dąbrowska;bozena@example.pl;;Toruń;87-100\r\n\
        Małgorzata;Wójcik;gosia@example.pl;;Poznań;60-001\r\n\
        Grzegorz;Lewandowski;grzes@example.pl;;Szczecin;70-001\r\n\
        Świętopełk;Ślązak;swiety@example.pl;;Źródła;55-001\r\n";

    fn windows_1250(text: &str) -> Vec<u8> {
        let (bytes, _, had_unmappable) = encoding_rs::WINDOWS_1250.encode(text);
        assert!(!had_unmappable);
        bytes.into_owned()
    }

    fn mapping(column: &str, attribute: &str) -> ColumnMapping {
        ColumnMapping {
            column: column.to_owned(),
            attribute: attribute.to_owned(),
        }
    }

    fn run(csv: &[u8], mappings: &[ColumnMapping]) -> Result<Preview, PreviewError> {
        preview(
            csv,
            true,
            &PreviewOptions::default(),
            &standard_attributes(),
            mappings,
            &[],
        )
    }

    /// Each column's suggested (column, attribute, reason).
    fn mapping_of(preview: &Preview) -> Vec<(&str, Option<&str>, &str)> {
        preview
            .suggested_mapping
            .iter()
            .map(|suggestion| {
                (
                    suggestion.column.as_str(),
                    suggestion.attribute.as_deref(),
                    suggestion.reason.as_str(),
                )
            })
            .collect()
    }

    fn check(result: Result<Preview, PreviewError>, expected_error: &str) {
        assert_eq!(
            result.map_err(|error| error.to_string()).err().as_deref(),
            Some(expected_error)
        );
    }

    #[test]
    fn a_windows_1250_semicolon_file_with_polish_headers_reads_letter_exact() {
        let preview = run(&windows_1250(POLISH_SEMICOLON_CSV), &[]).expect("readable");
        assert_eq!(preview.encoding, TextEncoding::Windows1250);
        assert_eq!(
            (preview.delimiter.as_str(), preview.delimiter_name.as_str()),
            (";", "semicolon")
        );
        assert_eq!(
            preview.header,
            [
                "Imię",
                "Nazwisko",
                "Adres e-mail",
                "Telefon",
                "Miasto",
                "Kod pocztowy"
            ]
        );
        assert_eq!(preview.rows.len(), DEFAULT_PREVIEW_ROWS);
        assert_eq!(
            preview.rows[0],
            [
                "Zażółć",
                "Gęślą",
                "jazn@example.pl",
                "501 234 567",
                "Łódź",
                "90-001"
            ]
        );
        assert_eq!(preview.rows[9][4], "Szczecin");
        assert_eq!(
            mapping_of(&preview),
            [
                ("Imię", Some("first_name"), "synonym"),
                ("Nazwisko", Some("last_name"), "synonym"),
                ("Adres e-mail", Some("email"), "synonym"),
                ("Telefon", Some("mobile"), "synonym"),
                ("Miasto", Some("city"), "synonym"),
                ("Kod pocztowy", Some("postal_code"), "synonym"),
            ]
        );
        assert_eq!(preview.unmapped_required, Vec::<String>::new());
        assert_eq!(preview.invalid_columns, Vec::<InvalidColumn>::new());
    }

    #[test]
    fn a_cut_sample_leaves_out_its_last_incomplete_record() {
        let bytes = windows_1250(POLISH_SEMICOLON_CSV);
        let cut_inside_third_row = POLISH_SEMICOLON_CSV
            .match_indices("\r\n")
            .nth(2)
            .map(|(index, _)| index - 3)
            .expect("three lines");
        let options = PreviewOptions {
            max_rows: 50,
            ..PreviewOptions::default()
        };
        let encoded_cut = windows_1250(&POLISH_SEMICOLON_CSV[..cut_inside_third_row]).len();
        let preview = preview(
            &bytes[..encoded_cut],
            false,
            &options,
            &standard_attributes(),
            &[],
            &[],
        )
        .expect("readable");
        assert_eq!(preview.rows.len(), 1);
        let whole = super::preview(&bytes, true, &options, &standard_attributes(), &[], &[])
            .expect("readable");
        assert_eq!(whole.rows.len(), 11);
    }

    #[test]
    fn an_explicit_mapping_wins_for_its_column() {
        let csv = b"email,mail,name\na@example.com,b@example.com,Jan\n";
        let preview = run(
            csv,
            &[mapping("MAIL", "Email"), mapping("name", "first_name")],
        )
        .expect("readable");
        assert_eq!(
            mapping_of(&preview),
            [
                ("email", None, "no attribute fits"),
                ("mail", Some("email"), "mapped with --map"),
                ("name", Some("first_name"), "mapped with --map"),
            ]
        );
        assert_eq!(preview.suggested_mapping[1].confidence, 1.0);
    }

    #[test]
    fn required_attributes_no_column_can_fill_are_listed() {
        let preview = run(b"name;city\nJan;Warszawa\nAnna;Gdynia\n", &[]).expect("readable");
        assert_eq!(preview.unmapped_required, ["email"]);
        assert_eq!(preview.delimiter_name, "semicolon");
        assert_eq!(mapping_of(&preview)[1], ("city", Some("city"), "exact key"));
    }

    #[test]
    fn columns_whose_values_fail_their_attribute_are_reported_with_an_example() {
        let csv = "email,phone,birthday\n\
            a@example.com,501 234 567,1990-04-12\n\
            b@example.com,call me,31.02.1990\n\
            ,'+48 602 345 678,\n\
            d@example.com,12,\n";
        let preview = run(csv.as_bytes(), &[]).expect("readable");
        assert_eq!(
            preview.invalid_columns,
            [
                InvalidColumn {
                    column: "email".to_owned(),
                    attribute: "email".to_owned(),
                    invalid: 1,
                    sampled: 4,
                    example: String::new(),
                    reason: "a value is required".to_owned(),
                },
                InvalidColumn {
                    column: "phone".to_owned(),
                    attribute: "mobile".to_owned(),
                    invalid: 2,
                    sampled: 4,
                    example: "call me".to_owned(),
                    reason: "not a valid phone number for region PL".to_owned(),
                },
                InvalidColumn {
                    column: "birthday".to_owned(),
                    attribute: "birthday".to_owned(),
                    invalid: 1,
                    sampled: 4,
                    example: "31.02.1990".to_owned(),
                    reason: "not a date (expected YYYY-MM-DD)".to_owned(),
                },
            ]
        );
    }

    #[test]
    fn files_with_nothing_to_preview_say_why() {
        check(run(b"", &[]), "the file is empty: it has no header row");
        check(
            run(b"\r\n\n  \n", &[]),
            "the file is empty: it has no header row",
        );
        check(
            run(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", &[]),
            "the file is not text: 4 of its first 16 bytes are NUL or control bytes (a binary file?)",
        );
        check(
            run(b";;\na;b;c\n", &[]),
            "the header row cannot be read: the first line is empty; it must name the columns",
        );
        check(
            preview(
                b"email,name,city,street",
                false,
                &PreviewOptions::default(),
                &standard_attributes(),
                &[],
                &[],
            ),
            "the header row cannot be read: the first line does not end within the first 22 bytes of the file",
        );
        check(
            run(b"\"email\nx\n", &[]),
            "the header row cannot be read: line 1 opens a quote that is not closed within 256 KiB or before the end of the file: the row fails, and the lines after it are read as rows",
        );
    }

    #[test]
    fn an_excel_unicode_text_file_is_utf16_with_tabs() {
        let text = "E-mail Address\tFirst Name\tCity\r\nanna@example.com\tŚwiętosława\tŁódź\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        let preview = run(&bytes, &[]).expect("readable");
        assert_eq!(preview.encoding, TextEncoding::Utf16Le);
        assert_eq!(preview.delimiter_name, "tab");
        assert_eq!(preview.header, ["E-mail Address", "First Name", "City"]);
        assert_eq!(preview.rows, [["anna@example.com", "Świętosława", "Łódź"]]);
        assert_eq!(
            mapping_of(&preview),
            [
                ("E-mail Address", Some("email"), "synonym"),
                ("First Name", Some("first_name"), "label"),
                ("City", Some("city"), "exact key"),
            ]
        );
    }

    #[test]
    fn forced_encoding_and_delimiter_are_used_as_given() {
        let options = PreviewOptions {
            encoding: Some(TextEncoding::Iso8859_2),
            delimiter: Some(b'|'),
            ..PreviewOptions::default()
        };
        // Letters that windows-1250 and ISO-8859-2 encode alike.
        let bytes = windows_1250("email|miasto\nx@example.com|Łęczyca\n");
        let preview =
            preview(&bytes, true, &options, &standard_attributes(), &[], &[]).expect("readable");
        assert_eq!(preview.encoding, TextEncoding::Iso8859_2);
        assert_eq!(preview.delimiter, "|");
        assert_eq!(preview.rows, [["x@example.com", "Łęczyca"]]);
    }

    #[test]
    fn choice_values_are_gathered_from_every_sampled_row_and_read_with_the_value_map() {
        use crate::mapping::ColumnMapping;
        use crate::value_map::{enum_attribute, ValueMapping};
        let mut catalog = standard_attributes();
        catalog.push(enum_attribute("gender", &["F", "M"]));
        let mut csv = String::from("email,gender,city\n");
        for row in 0..30 {
            let gender = ["K", "M", "F"][row % 3];
            csv.push_str(&format!("p{row}@example.com,{gender},Łódź\n"));
        }
        csv.push_str("late@example.com,kobieta,Łódź\n");
        let options = PreviewOptions {
            max_rows: 5,
            ..PreviewOptions::default()
        };
        let preview = preview(
            csv.as_bytes(),
            true,
            &options,
            &catalog,
            &[ColumnMapping {
                column: "city".into(),
                attribute: String::new(),
            }],
            &[ValueMapping {
                attribute: "gender".into(),
                value: "k".into(),
                allowed: "f".into(),
            }],
        )
        .expect("readable");
        assert_eq!(preview.rows.len(), 5);
        assert_eq!(preview.suggested_mapping[2].attribute, None);
        assert_eq!(
            preview.suggested_mapping[2].reason,
            "chosen as not imported"
        );
        assert_eq!(preview.unfit_columns.len(), 1);
        let gender = &preview.unfit_columns[0];
        assert_eq!(
            (gender.column.as_str(), gender.attribute.as_str()),
            ("gender", "gender")
        );
        let values: Vec<(&str, usize, Option<&str>)> = gender
            .values
            .iter()
            .map(|value| {
                (
                    value.value.as_str(),
                    value.cells,
                    value.mapped_to.as_deref(),
                )
            })
            .collect();
        assert_eq!(values, [("K", 10, Some("F")), ("kobieta", 1, None)]);
        // In the rows shown, every "K" is mapped: the column fits.
        assert!(
            preview.invalid_columns.is_empty(),
            "{:?}",
            preview.invalid_columns
        );
    }
}
