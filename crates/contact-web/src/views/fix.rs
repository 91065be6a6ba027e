//! "Fix failed rows": one page of an import's failed rows as fields to correct, each bad cell
//! marked and described by its reason, and a tick per row to import it again.

use contact_contract::{FailedRowReport, FailedRowsPage, ImportStatus};
use maud::{html, Markup};

use super::{count, file_label, layout, Section};

pub struct FixView<'a> {
    pub status: &'a ImportStatus,
    pub page: &'a FailedRowsPage,
    /// Line after which the page's rows start (none: from the first).
    pub after: Option<u64>,
}

pub fn page(view: &FixView<'_>) -> Markup {
    let status = view.status;
    let id = &status.import_id;
    let header = &view.page.header;
    layout(
        &format!("Fix the failed rows of {}", file_label(status)),
        Section::Imports,
        html! {
            @if !status.status.is_terminal() {
                section class="card" {
                    p { "This import has not ended yet: its failed rows can be fixed once it has." }
                    p { a href=(format!("/imports/{id}")) { "Back to the import" } }
                }
            } @else if view.page.rows.is_empty() {
                section class="card" {
                    p { "This import has no failed rows to fix here." }
                    p { a href=(format!("/imports/{id}")) { "Back to the import" } }
                }
            } @else {
                form method="post" action=(format!("/imports/{id}/fix")) class="card" aria-labelledby="fix-heading" {
                    h2 id="fix-heading" { (rows_shown(view)) }
                    p {
                        "Correct the cells below; those that failed are marked, with the reason beside them. "
                        "The ticked rows are then imported as a new import, with the mapping, duplicate "
                        "policy, type, category and tags of this one. Rows that still fail are listed there, to fix again."
                    }
                    input type="hidden" name="after" value=(view.after.map(|line| line.to_string()).unwrap_or_default());
                    div class="scroll" tabindex="0" role="region" aria-label="Failed rows to fix" {
                        table class="rows fix" {
                            thead {
                                tr {
                                    th scope="col" { "Line" }
                                    th scope="col" { "Import" }
                                    th scope="col" { "Reason" }
                                    @for column in header { th scope="col" { (column) } }
                                }
                            }
                            tbody {
                                @for (index, row) in view.page.rows.iter().enumerate() {
                                    (fix_row(header, index, row))
                                }
                            }
                        }
                    }
                    div class="actions" {
                        button type="submit" class="button" { "Import the fixed rows" }
                        a class="button secondary" href=(format!("/imports/{id}")) { "Back to the import" }
                    }
                }
                @if let Some(next) = view.page.next {
                    nav aria-label="Failed rows pages" class="pager" {
                        a href=(format!("/imports/{id}/fix?after={next}")) { "Next failed rows (without importing these)" }
                    }
                }
            }
        },
    )
}

fn rows_shown(view: &FixView<'_>) -> String {
    let rows = &view.page.rows;
    let first = rows.first().map_or(0, |row| row.line);
    let last = rows.last().map_or(0, |row| row.line);
    format!(
        "Lines {} to {} of the file · {} failed rows in all",
        count(first),
        count(last),
        count(view.status.failed)
    )
}

/// One failed row: a field per column of the file (a row the parser could not read at all
/// comes with none, to type in), the failing ones invalid and described by the reason.
fn fix_row(header: &[String], index: usize, row: &FailedRowReport) -> Markup {
    let reason_id = format!("fix-{index}-reason");
    html! {
        tr {
            th scope="row" { (row.line) }
            td {
                input type="checkbox" name={"keep." (index)} value="yes" checked
                    aria-label={"Import line " (row.line)};
            }
            td class="reason" id=(reason_id) {
                @for error in &row.errors {
                    div {
                        @if let Some(column) = &error.column { strong { (column) } ": " }
                        (error.reason)
                    }
                }
            }
            @for (column_index, column) in header.iter().enumerate() {
                @let bad = row.errors.iter().any(|error| error.column.as_deref() == Some(column.as_str()));
                td class=(if bad { "bad" } else { "" }) {
                    input type="text" name={"cell." (index) "." (column_index)}
                        value=(row.fields.get(column_index).map(String::as_str).unwrap_or_default())
                        aria-label={(column) ", line " (row.line)}
                        aria-invalid=[bad.then_some("true")]
                        aria-describedby=[bad.then_some(reason_id.as_str())];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::{AccountId, ImportId, ImportState, RowError};

    #[test]
    fn each_failed_cell_is_an_invalid_field_described_by_its_reason() {
        let mut status = ImportStatus::queued(
            AccountId::new("acme").expect("valid"),
            ImportId::new("7c0e").expect("valid"),
        );
        status.status = ImportState::Completed;
        status.failed = 1;
        let page = FailedRowsPage {
            header: vec!["email".to_string(), "first_name".to_string()],
            rows: vec![FailedRowReport {
                line: 3,
                fields: vec!["+48 501 234 567".to_string(), "Piotr".to_string()],
                errors: vec![RowError {
                    line: 3,
                    column: Some("email".to_string()),
                    value: Some("+48 501 234 567".to_string()),
                    reason: "looks like a phone number, not an email address".to_string(),
                }],
            }],
            next: None,
        };
        let html = page_html(&status, &page);
        assert!(html.contains(r#"name="cell.0.0" value="+48 501 234 567" aria-label="email, line 3" aria-invalid="true" aria-describedby="fix-0-reason""#), "{html}");
        assert!(
            html.contains(r#"name="cell.0.1" value="Piotr" aria-label="first_name, line 3">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"name="keep.0" value="yes" checked"#),
            "{html}"
        );
        assert!(!html.contains("Next failed rows"), "{html}");
    }

    fn page_html(status: &ImportStatus, page: &FailedRowsPage) -> String {
        super::page(&FixView {
            status,
            page,
            after: None,
        })
        .into_string()
    }
}
