//! What the CLI prints, as text: for people (lines, a tab-separated table) and for scripts
//! (one JSON document per `--json`). No IO here: the commands print what these return.

use contact_contract::{
    AttributeDef, AttributeType, ImportStatus, Preview, UndoConflict, UndoField, UndoReport,
};
use serde::Serialize;

/// One JSON document on one line.
pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("wire types always serialize")
}

/// An import's state and counters, and what to do next, one line each.
pub fn status(status: &ImportStatus) -> String {
    let mut lines = vec![format!(
        "{}import {} {}: {} rows: {} created, {} linked, {} duplicated, {} skipped, {} failed",
        if status.dry_run { "dry run: " } else { "" },
        status.import_id,
        status.status.as_str(),
        status.rows_total,
        status.created,
        status.linked,
        status.duplicated,
        status.skipped,
        status.failed
    )];
    if !status.unmapped_columns.is_empty() {
        lines.push(format!(
            "columns not imported: {}",
            status.unmapped_columns.join(", ")
        ));
    }
    if let Some(error) = &status.error {
        lines.push(format!("note: {error}"));
    }
    if let Some(repeat_of) = &status.repeat_of {
        lines.push(format!(
            "the same file content was imported before as import {repeat_of}"
        ));
    }
    match status.details_removed_at {
        Some(removed_at) => lines.push(format!(
            "its failed rows, their reasons and its undo records were removed on {} (retention)",
            removed_at.format("%Y-%m-%d")
        )),
        None if status.failed > 0 => lines.push(format!(
            "failed rows: contact-import errors {} -o failed-rows.csv",
            status.import_id
        )),
        None => {}
    }
    lines.join("\n")
}

/// The one line on stderr saying why an import did not complete.
pub fn not_completed(status: &ImportStatus) -> String {
    format!(
        "contact-import: import {} {}: {}",
        status.import_id,
        status.status.as_str(),
        status.error.as_deref().unwrap_or("no reason given")
    )
}

/// The account's imports as a tab-separated table with a header line.
pub fn imports_table(imports: &[ImportStatus]) -> String {
    let time = |time: Option<chrono::DateTime<chrono::Utc>>| {
        time.map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".to_string())
    };
    let mut lines = vec![
        "import_id\tfile_name\tstatus\trows_total\tcreated\tlinked\tduplicated\tskipped\tfailed\tdry_run\tstarted\tfinished\trepeat_of"
            .to_string(),
    ];
    for import in imports {
        lines.push(format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            import.import_id,
            import.file_name.as_deref().unwrap_or("-"),
            import.status.as_str(),
            import.rows_total,
            import.created,
            import.linked,
            import.duplicated,
            import.skipped,
            import.failed,
            import.dry_run,
            time(import.created_at),
            time(import.finished_at),
            import
                .repeat_of
                .as_ref()
                .map_or("-", |repeat_of| repeat_of.as_str()),
        ));
    }
    lines.join("\n")
}

/// How a file will be read: encoding, delimiter, the suggested mapping, what is wrong, and
/// the first rows.
pub fn preview(preview: &Preview) -> String {
    let mut lines = vec![
        format!("encoding: {}", preview.encoding),
        format!(
            "delimiter: {} ({})",
            preview.delimiter_name,
            preview.delimiter.escape_debug()
        ),
        "columns:".to_string(),
    ];
    for suggestion in &preview.suggested_mapping {
        lines.push(match &suggestion.attribute {
            Some(attribute) => format!(
                "  {:<24} -> {:<14} {:>3.0}%  {}",
                suggestion.column,
                attribute,
                suggestion.confidence * 100.0,
                suggestion.reason
            ),
            None => format!(
                "  {:<24} (not imported: {})",
                suggestion.column, suggestion.reason
            ),
        });
    }
    if !preview.unmapped_required.is_empty() {
        lines.push(format!(
            "required attributes no column maps to: {}",
            preview.unmapped_required.join(", ")
        ));
    }
    for column in &preview.invalid_columns {
        lines.push(format!(
            "column {:?} as {}: {} of {} sampled values fail, e.g. {:?} ({})",
            column.column,
            column.attribute,
            column.invalid,
            column.sampled,
            column.example,
            column.reason
        ));
    }
    for column in &preview.unfit_columns {
        lines.push(format!(
            "column {:?} as {} holds values it does not allow (allowed: {}):",
            column.column,
            column.attribute,
            column.allowed.join(", ")
        ));
        for value in &column.values {
            let reading = match (&value.mapped_to, &value.suggestion) {
                (Some(mapped), _) => format!("read as {mapped:?}"),
                (None, Some(suggestion)) => format!(
                    "fails; map it with --map-value '{}:{}={}'",
                    column.attribute, value.value, suggestion
                ),
                (None, None) => format!(
                    "fails; map it with --map-value '{}:{}=ALLOWED'",
                    column.attribute, value.value
                ),
            };
            lines.push(format!(
                "  {:?} ({} sampled {}): {reading}",
                value.value,
                value.cells,
                if value.cells == 1 { "cell" } else { "cells" }
            ));
        }
    }
    if let Some(remembered) = &preview.remembered {
        lines.push(format!(
            "import {} of {} ({}) had these columns; its mapping, as options:",
            remembered.import_id,
            remembered
                .file_name
                .as_deref()
                .map_or_else(|| "a file".to_string(), |name| format!("{name:?}")),
            remembered.created_at.format("%Y-%m-%d %H:%M UTC"),
        ));
        let options: Vec<String> = remembered
            .mappings
            .iter()
            .map(|mapping| {
                let text = format!("{}={}", mapping.column, mapping.attribute);
                format!("--map {}", shell_quoted(&text))
            })
            .chain(remembered.value_mappings.iter().map(|mapping| {
                let text = format!(
                    "{}:{}={}",
                    mapping.attribute, mapping.value, mapping.allowed
                );
                format!("--map-value {}", shell_quoted(&text))
            }))
            .collect();
        lines.push(format!("  {}", options.join(" ")));
    }
    lines.push("first rows as they will be imported:".to_string());
    lines.push(format!("  {}", preview.header.join(" | ")));
    for row in &preview.rows {
        lines.push(format!("  {}", row.join(" | ")));
    }
    lines.join("\n")
}

/// `text` as one word of a POSIX shell: in single quotes, each of its own closed around `\'`.
fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// An attribute as one tab-separated line: key, type, flags, label.
pub fn attribute(attribute: &AttributeDef) -> String {
    let mut flags = Vec::new();
    if attribute.required {
        flags.push("required");
    }
    if attribute.identifier {
        flags.push("identifier");
    }
    let kind = match &attribute.attribute_type {
        AttributeType::Enum { values } => format!("enum({})", values.join(",")),
        other => other.to_string(),
    };
    format!(
        "{}\t{}\t{}\t{}",
        attribute.key,
        kind,
        flags.join(","),
        attribute.label
    )
}

/// What an undo did, in one line.
pub fn undo(report: &UndoReport) -> String {
    format!(
        "import {} {}: {} contacts removed, {} restored, {} kept because they changed after the import",
        report.import_id,
        report.status.as_str(),
        report.contacts_removed,
        report.contacts_restored,
        report.contacts_kept
    )
}

/// One field (or contact) an undo left as it was, and why.
pub fn conflict(conflict: &UndoConflict) -> String {
    let shown = |value: &Option<String>| match value {
        Some(value) => format!("{value:?}"),
        None => "nothing".to_string(),
    };
    let field = match (conflict.field, &conflict.attribute) {
        (UndoField::Attribute, Some(attribute)) => attribute.clone(),
        (UndoField::Attribute, None) => "an attribute".to_string(),
        (UndoField::Type, _) => "type".to_string(),
        (UndoField::Category, _) => "category".to_string(),
        (UndoField::Contact, _) => {
            return format!(
                "contact {}: kept, it changed after the import created it",
                conflict.contact_id
            )
        }
    };
    format!(
        "contact {} {field}: left as {} (changed after the import, which wrote {})",
        conflict.contact_id,
        shown(&conflict.current),
        shown(&conflict.imported)
    )
}

/// The undo's JSON document is written as the kept fields' pages come: the report's fields,
/// then `"kept":[`, each conflict ([`undo_json_kept`]), and [`UNDO_JSON_END`].
pub fn undo_json_start(report: &UndoReport) -> String {
    let report = json(report);
    let fields = report
        .strip_suffix('}')
        .expect("a report serializes as a JSON object");
    format!("{fields},\"kept\":[")
}

/// One entry of `kept`, with the comma that separates it from the one before.
pub fn undo_json_kept(conflict: &UndoConflict, first: bool) -> String {
    let separator = if first { "" } else { "," };
    format!("{separator}{}", json(conflict))
}

pub const UNDO_JSON_END: &str = "]}";

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::{
        AccountId, ColumnMapping, ColumnSuggestion, ImportId, ImportState, InvalidColumn,
        RememberedMapping, TextEncoding, UnfitColumn, UnfitValue, ValueMapping,
    };

    fn import(state: ImportState) -> ImportStatus {
        let mut status = ImportStatus::queued(
            AccountId::new("acme").expect("valid"),
            ImportId::new("7c0e").expect("valid"),
        );
        status.status = state;
        status
    }

    fn report() -> UndoReport {
        UndoReport {
            import_id: ImportId::new("7c0e").expect("valid"),
            status: ImportState::Undone,
            contacts_removed: 2,
            contacts_restored: 1,
            contacts_kept: 1,
            conflicts: 2,
        }
    }

    fn kept(field: UndoField, attribute: Option<&str>) -> UndoConflict {
        UndoConflict {
            contact_id: 42,
            field,
            attribute: attribute.map(str::to_string),
            current: Some("Poznań".to_string()),
            imported: None,
        }
    }

    #[test]
    fn a_completed_import_is_one_line_of_counters() {
        let mut completed = import(ImportState::Completed);
        completed.rows_total = 3;
        completed.created = 2;
        completed.linked = 1;
        assert_eq!(
            status(&completed),
            "import 7c0e completed: 3 rows: 2 created, 1 linked, 0 duplicated, 0 skipped, 0 failed"
        );
    }

    #[test]
    fn failed_rows_unmapped_columns_and_a_repeat_each_get_a_line() {
        let mut dry_run = import(ImportState::Completed);
        dry_run.dry_run = true;
        dry_run.rows_total = 1;
        dry_run.failed = 1;
        dry_run.unmapped_columns = vec!["Notes".to_string(), "Fax".to_string()];
        dry_run.error = Some("1 row failed".to_string());
        dry_run.repeat_of = Some(ImportId::new("5a1b").expect("valid"));
        assert_eq!(
            status(&dry_run),
            "dry run: import 7c0e completed: 1 rows: 0 created, 0 linked, 0 duplicated, 0 skipped, 1 failed\n\
             columns not imported: Notes, Fax\n\
             note: 1 row failed\n\
             the same file content was imported before as import 5a1b\n\
             failed rows: contact-import errors 7c0e -o failed-rows.csv"
        );
    }

    #[test]
    fn an_import_past_the_retention_says_when_its_details_went_instead_of_where_they_are() {
        let mut old = import(ImportState::Completed);
        old.rows_total = 1;
        old.failed = 1;
        old.details_removed_at = Some(
            chrono::DateTime::parse_from_rfc3339("2026-03-01T04:05:06Z")
                .expect("a time")
                .to_utc(),
        );
        assert_eq!(
            status(&old),
            "import 7c0e completed: 1 rows: 0 created, 0 linked, 0 duplicated, 0 skipped, 1 failed\n\
             its failed rows, their reasons and its undo records were removed on 2026-03-01 (retention)"
        );
    }

    #[test]
    fn an_import_that_did_not_complete_says_why_in_one_line() {
        let mut failed = import(ImportState::Failed);
        assert_eq!(
            not_completed(&failed),
            "contact-import: import 7c0e failed: no reason given"
        );
        failed.error = Some("the file is not CSV".to_string());
        assert_eq!(
            not_completed(&failed),
            "contact-import: import 7c0e failed: the file is not CSV"
        );
    }

    #[test]
    fn the_imports_table_has_a_header_and_dashes_for_what_is_unknown() {
        let table = imports_table(&[import(ImportState::Queued)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("import_id\tfile_name\tstatus\t"));
        assert_eq!(
            lines[1],
            "7c0e\t-\tqueued\t0\t0\t0\t0\t0\t0\tfalse\t-\t-\t-"
        );
        assert_eq!(lines[0].split('\t').count(), lines[1].split('\t').count());
    }

    #[test]
    fn a_preview_shows_the_reading_the_mapping_and_the_first_rows() {
        let preview = Preview {
            encoding: TextEncoding::Utf8,
            delimiter: ";".to_string(),
            delimiter_name: "semicolon".to_string(),
            header: vec!["Imię".to_string(), "Coś".to_string()],
            rows: vec![vec!["Anna".to_string(), "x".to_string()]],
            suggested_mapping: vec![
                ColumnSuggestion {
                    column: "Imię".to_string(),
                    attribute: Some("first_name".to_string()),
                    confidence: 0.9,
                    reason: "synonym".to_string(),
                },
                ColumnSuggestion {
                    column: "Coś".to_string(),
                    attribute: None,
                    confidence: 0.0,
                    reason: "no attribute fits".to_string(),
                },
            ],
            unmapped_required: vec!["email".to_string()],
            invalid_columns: vec![InvalidColumn {
                column: "Imię".to_string(),
                attribute: "first_name".to_string(),
                invalid: 1,
                sampled: 1,
                example: "\u{7}".to_string(),
                reason: "a control character".to_string(),
            }],
            unfit_columns: vec![UnfitColumn {
                column: "Coś".to_string(),
                attribute: "gender".to_string(),
                allowed: vec!["F".to_string(), "M".to_string()],
                values: vec![
                    UnfitValue {
                        value: "K".to_string(),
                        cells: 2,
                        mapped_to: Some("F".to_string()),
                        suggestion: None,
                    },
                    UnfitValue {
                        value: "x".to_string(),
                        cells: 1,
                        mapped_to: None,
                        suggestion: None,
                    },
                ],
            }],
            remembered: None,
        };
        let expected = [
            "encoding: UTF-8",
            "delimiter: semicolon (;)",
            "columns:",
            "  Imię                     -> first_name      90%  synonym",
            "  Coś                      (not imported: no attribute fits)",
            "required attributes no column maps to: email",
            "column \"Imię\" as first_name: 1 of 1 sampled values fail, e.g. \"\\u{7}\" (a control character)",
            "column \"Coś\" as gender holds values it does not allow (allowed: F, M):",
            "  \"K\" (2 sampled cells): read as \"F\"",
            "  \"x\" (1 sampled cell): fails; map it with --map-value 'gender:x=ALLOWED'",
            "first rows as they will be imported:",
            "  Imię | Coś",
            "  Anna | x",
        ];
        assert_eq!(render_lines(&super::preview(&preview)), expected);
    }

    #[test]
    fn a_remembered_mapping_is_shown_as_the_options_that_repeat_it() {
        let preview = Preview {
            encoding: TextEncoding::Utf8,
            delimiter: ",".to_string(),
            delimiter_name: "comma".to_string(),
            header: vec!["Mail".to_string(), "Kid's name".to_string()],
            rows: Vec::new(),
            suggested_mapping: Vec::new(),
            unmapped_required: Vec::new(),
            invalid_columns: Vec::new(),
            unfit_columns: Vec::new(),
            remembered: Some(RememberedMapping {
                import_id: ImportId::new("imp-7").expect("valid"),
                file_name: Some("march.csv".to_string()),
                created_at: "2026-03-02T10:15:00Z".parse().expect("a time"),
                mappings: vec![
                    ColumnMapping {
                        column: "Mail".to_string(),
                        attribute: "email".to_string(),
                    },
                    ColumnMapping {
                        column: "Kid's name".to_string(),
                        attribute: String::new(),
                    },
                ],
                value_mappings: vec![ValueMapping {
                    attribute: "segment".to_string(),
                    value: "vip".to_string(),
                    allowed: "premium".to_string(),
                }],
            }),
        };
        let lines = render_lines(&super::preview(&preview)).join("\n");
        assert!(lines.contains(
            "import imp-7 of \"march.csv\" (2026-03-02 10:15 UTC) had these columns; its mapping, as options:\n  \
             --map 'Mail=email' --map 'Kid'\\''s name=' --map-value 'segment:vip=premium'\n"
        ), "{lines}");
    }

    fn render_lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn an_attribute_line_names_its_type_flags_and_label() {
        let segment = AttributeDef {
            key: "segment".to_string(),
            label: "Segment".to_string(),
            attribute_type: AttributeType::Enum {
                values: vec!["A".to_string(), "B".to_string()],
            },
            required: true,
            identifier: true,
        };
        assert_eq!(
            attribute(&segment),
            "segment\tenum(A,B)\trequired,identifier\tSegment"
        );
    }

    #[test]
    fn an_undo_and_what_it_kept_read_as_sentences() {
        assert_eq!(
            undo(&report()),
            "import 7c0e undone: 2 contacts removed, 1 restored, 1 kept because they changed after the import"
        );
        assert_eq!(
            conflict(&kept(UndoField::Attribute, Some("city"))),
            "contact 42 city: left as \"Poznań\" (changed after the import, which wrote nothing)"
        );
        assert_eq!(
            conflict(&kept(UndoField::Contact, None)),
            "contact 42: kept, it changed after the import created it"
        );
    }

    #[test]
    fn the_undo_json_pieces_make_one_object_with_every_kept_field() {
        for conflicts in [
            vec![],
            vec![
                kept(UndoField::Attribute, Some("city")),
                kept(UndoField::Type, None),
            ],
        ] {
            let mut text = undo_json_start(&report());
            for (index, conflict) in conflicts.iter().enumerate() {
                text.push_str(&undo_json_kept(conflict, index == 0));
            }
            text.push_str(UNDO_JSON_END);
            let value: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
            assert_eq!(value["import_id"], "7c0e");
            assert_eq!(value["contacts_removed"], 2);
            assert_eq!(
                value["kept"],
                serde_json::to_value(&conflicts).expect("serializes")
            );
        }
    }
}
