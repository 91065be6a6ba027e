//! The error file: each failed row as it stood in the file, followed by `line`, `column` and
//! `reason`, ready to be fixed in a spreadsheet and imported again with the same mapping (the
//! three extra columns are ignored then). Cells a spreadsheet would run as a formula are
//! neutralized (OWASP CSV injection); the importer undoes that when the file comes back.
//! The CLI writes it to a file and the web page serves it: both get the same bytes.

use contact_contract::FailedRowReport;
use contact_core::template::neutralize_formula;

/// A UTF-8 byte order mark: spreadsheets need it to show Polish letters right.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The file's header and the three error columns; an error column whose name the file already
/// uses gets an `error_` prefix, so that the file still imports.
pub fn header_with_error_columns(header: &[String]) -> Vec<String> {
    let mut columns: Vec<String> = header
        .iter()
        .map(|name| neutralize_formula(name).into_owned())
        .collect();
    for name in ["line", "column", "reason"] {
        let taken = header
            .iter()
            .any(|existing| existing.trim().eq_ignore_ascii_case(name));
        columns.push(if taken {
            format!("error_{name}")
        } else {
            name.to_string()
        });
    }
    columns
}

/// One failed row: its cells (padded to the header's width, so the error columns line up),
/// then its line, the columns at fault and the reasons.
pub fn error_file_record(row: &FailedRowReport, width: usize) -> Vec<String> {
    let mut record: Vec<String> = row
        .fields
        .iter()
        .map(|cell| neutralize_formula(cell).into_owned())
        .collect();
    if record.len() < width {
        record.resize(width, String::new());
    }
    let columns: Vec<&str> = row
        .errors
        .iter()
        .filter_map(|error| error.column.as_deref())
        .collect();
    let reasons: Vec<String> = row
        .errors
        .iter()
        .map(|error| match &error.column {
            Some(column) => format!("{column}: {}", error.reason),
            None => error.reason.clone(),
        })
        .collect();
    record.push(row.line.to_string());
    record.push(neutralize_formula(&columns.join("; ")).into_owned());
    record.push(neutralize_formula(&reasons.join("; ")).into_owned());
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::RowError;

    fn error(column: Option<&str>, reason: &str) -> RowError {
        RowError {
            line: 7,
            column: column.map(str::to_string),
            value: None,
            reason: reason.to_string(),
        }
    }

    #[test]
    fn a_failed_row_keeps_its_cells_and_ends_with_line_columns_and_reasons() {
        let row = FailedRowReport {
            line: 7,
            fields: vec!["=HYPERLINK(\"x\")".into(), "+48 501 234 567".into()],
            errors: vec![
                error(Some("email"), "not a valid email address"),
                error(Some("birthday"), "not a date"),
            ],
        };
        let record = error_file_record(&row, 3);
        assert_eq!(
            record,
            vec![
                "'=HYPERLINK(\"x\")",
                "'+48 501 234 567",
                "",
                "7",
                "email; birthday",
                "email: not a valid email address; birthday: not a date"
            ]
        );
    }

    #[test]
    fn error_columns_step_aside_for_file_columns_of_the_same_name() {
        let header = vec![
            "email".to_string(),
            "Line".to_string(),
            "reason".to_string(),
        ];
        assert_eq!(
            header_with_error_columns(&header),
            vec![
                "email",
                "Line",
                "reason",
                "error_line",
                "column",
                "error_reason"
            ]
        );
    }
}
