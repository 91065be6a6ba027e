//! One import: its progress while it runs (pushed live to the page through its event stream)
//! and, once it has ended, its summary and its failed rows with their reasons.

use contact_contract::{DuplicatePolicy, FailedRowsPage, ImportId, ImportState, ImportStatus};
use maud::{html, Markup};

use super::{count, file_label, layout, percent_done, state_label, Section};

pub struct ImportView<'a> {
    pub status: &'a ImportStatus,
    /// The first failed rows, once the import has ended with some.
    pub failed_rows: Option<&'a FailedRowsPage>,
    /// Line after which the failed rows shown start (none: from the first).
    pub failed_after: Option<u64>,
    /// The import whose failed rows this one imports, fixed in the page.
    pub fixed_from: Option<FixedFrom<'a>>,
}

pub struct FixedFrom<'a> {
    pub status: &'a ImportStatus,
    /// The line the next page of its failed rows comes after, if there are more.
    pub next: Option<u64>,
}

/// What the page's live part shows, as the event stream sends it: kept small, and built the
/// same way for the first render and for every event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Progress {
    pub state: &'static str,
    pub ended: bool,
    pub percent: Option<u64>,
    /// With its noun: "1 row", "12,000 rows".
    pub rows: String,
    pub failed: String,
    pub created: String,
    pub linked: String,
    pub duplicated: String,
    pub skipped: String,
    pub waiting_for: Option<String>,
    /// Bytes read and in the file, for the page's own rate and time left.
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
}

impl Progress {
    pub fn of(status: &ImportStatus) -> Self {
        Self {
            state: state_label(status.status),
            ended: status.status.is_terminal(),
            percent: percent_done(status),
            rows: match status.rows_total {
                1 => "1 row".to_string(),
                rows => format!("{} rows", count(rows)),
            },
            failed: count(status.failed),
            created: count(status.created),
            linked: count(status.linked),
            duplicated: count(status.duplicated),
            skipped: count(status.skipped),
            waiting_for: status.waiting_for.clone(),
            bytes_done: status.bytes_done,
            bytes_total: status.bytes_total,
        }
    }
}

pub fn page(view: &ImportView<'_>) -> Markup {
    let status = view.status;
    let progress = Progress::of(status);
    let title = if status.dry_run {
        format!("Dry run of {}", file_label(status))
    } else {
        file_label(status)
    };
    let id = &status.import_id;
    layout(
        &title,
        Section::Imports,
        html! {
            section class="card" aria-labelledby="progress-heading" id="progress"
                data-events=(format!("/imports/{id}/events")) data-ended=(progress.ended) {
                h2 id="progress-heading" {
                    span data-field="state" { (progress.state) }
                }
                @if status.dry_run {
                    p class="notice info" { "A dry run changes no contact: it reports what the import would do." }
                }
                div role="status" aria-live="polite" aria-atomic="false" {
                    progress max="100" value=(progress.percent.unwrap_or(0)) aria-label="Share of the file done"
                        data-field="percent" {}
                    p class="numbers" {
                        span data-field="percent-text" { (progress.percent.map(|percent| format!("{percent}% of the file")).unwrap_or_else(|| "Reading the file".to_string())) }
                        " · " span data-field="rows" { (progress.rows) } " · "
                        span data-field="failed" { (progress.failed) } " failed"
                        span data-field="rate" {}
                    }
                    p class="waiting" data-field="waiting_for" hidden[progress.waiting_for.is_none() || progress.ended] {
                        (progress.waiting_for.as_deref().unwrap_or_default())
                    }
                }
                @if !progress.ended {
                    form method="post" action=(format!("/imports/{id}/cancel")) {
                        button type="submit" class="button secondary" { "Cancel the import" }
                    }
                    noscript { p { a href=(format!("/imports/{id}")) { "Refresh" } " to see how far it is." } }
                }
            }
            @if let Some(from) = &view.fixed_from {
                (fixed_from(from))
            }
            @if progress.ended {
                (summary(status))
            }
            @if let Some(page) = view.failed_rows {
                (failed_rows(id, page, view.failed_after))
            }
        },
    )
}

/// Where the rows of an import fixed in the page came from, and the way on to the rest.
fn fixed_from(from: &FixedFrom<'_>) -> Markup {
    let id = &from.status.import_id;
    html! {
        div class="notice info" role="status" {
            p {
                "These are rows you fixed from the import of "
                a href=(format!("/imports/{id}")) { (file_label(from.status)) } "."
                @if let (Some(next), None) = (from.next, from.status.details_removed_at) {
                    " " a href=(format!("/imports/{id}/fix?after={next}")) { "Fix its next failed rows" } "."
                }
            }
        }
    }
}

fn policy_label(policy: DuplicatePolicy) -> &'static str {
    match policy {
        DuplicatePolicy::Link => "linked to the existing contact",
        DuplicatePolicy::Duplicate => "created as separate contacts",
        DuplicatePolicy::Skip => "skipped",
    }
}

fn summary(status: &ImportStatus) -> Markup {
    let id = &status.import_id;
    html! {
        section class="card" aria-labelledby="summary-heading" {
            h2 id="summary-heading" { "Summary" }
            dl class="counters" {
                div { dt { "Rows" } dd { (count(status.rows_total)) } }
                div { dt { "Created" } dd { (count(status.created)) } }
                div { dt { "Linked" } dd { (count(status.linked)) } }
                div { dt { "Duplicated" } dd { (count(status.duplicated)) } }
                div { dt { "Skipped" } dd { (count(status.skipped)) } }
                div { dt { "Failed" } dd { (count(status.failed)) } }
            }
            @if status.status == ImportState::Undone {
                p class="notice info" {
                    "This import was undone: the contacts it created were removed and the contacts it "
                    "linked got back the values they had before it, unless they were changed since."
                }
            } @else if status.status == ImportState::Undoing {
                p class="notice info" { "This import is being undone." }
            }
            @if let Some(removed_at) = status.details_removed_at {
                p class="notice info" {
                    "The failed rows, their reasons and what an undo would need were removed on "
                    time datetime=(removed_at.to_rfc3339()) { (removed_at.format("%Y-%m-%d")) }
                    ": they are kept for a while after an import ends. The counters above and the contacts stay, "
                    "and the import can no longer be undone."
                }
            }
            p { "Duplicates were " (policy_label(status.policy)) "." }
            @if !status.unmapped_columns.is_empty() {
                p { "Columns not imported: " (status.unmapped_columns.join(", ")) }
            }
            @if let Some(error) = &status.error {
                p class=(if status.status == ImportState::Completed { "notice warning" } else { "notice error" }) { (error) }
            }
            @if let Some(earlier) = &status.repeat_of {
                p class="notice warning" {
                    "The same file was imported before: "
                    a href=(format!("/imports/{earlier}")) { "see that import" } "."
                }
            }
            div class="actions" {
                @if !status.dry_run && !matches!(status.status, ImportState::Undoing | ImportState::Undone)
                    && status.created + status.linked + status.duplicated > 0 {
                    a class="button secondary" href=(format!("/contacts?import_id={id}")) { "See its contacts" }
                }
                @if matches!(status.status, ImportState::Completed | ImportState::Cancelled | ImportState::Failed)
                    && !status.dry_run && status.details_removed_at.is_none() {
                    form method="post" action=(format!("/imports/{id}/undo")) class="inline" {
                        button type="submit" class="button secondary" { "Undo this import" }
                    }
                }
                // A large undo goes a batch per step; the writer's sweep carries on one nobody
                // moves on, and this lets her move it on herself.
                @if status.status == ImportState::Undoing {
                    form method="post" action=(format!("/imports/{id}/undo")) class="inline" {
                        button type="submit" class="button secondary" { "Go on with the undo" }
                    }
                }
            }
        }
    }
}

fn failed_rows(id: &ImportId, page: &FailedRowsPage, after: Option<u64>) -> Markup {
    html! {
        section class="card" aria-labelledby="failed-heading" {
            h2 id="failed-heading" { "Failed rows" }
            p {
                "Each failed row as it stands in the file, with the reason. "
                a href=(format!("/imports/{id}/failed-rows.csv")) download { "Download the failed rows" }
                " as a CSV file, fix them, and import that file again with the same mapping, or "
                a href=(format!("/imports/{id}/fix{}", after.map(|line| format!("?after={line}")).unwrap_or_default())) { "fix them here" }
                ", a page at a time."
            }
            div class="scroll" tabindex="0" role="region" aria-label="Failed rows table" {
                table class="rows" {
                    thead {
                        tr {
                            th scope="col" { "Line" }
                            th scope="col" { "Reason" }
                            @for column in &page.header { th scope="col" { (column) } }
                        }
                    }
                    tbody {
                        @for row in &page.rows {
                            tr {
                                td { (row.line) }
                                td class="reason" {
                                    @for error in &row.errors {
                                        div {
                                            @if let Some(column) = &error.column { strong { (column) } ": " }
                                            (error.reason)
                                            @if let Some(value) = &error.value { " (“" (value) "”)" }
                                        }
                                    }
                                }
                                @for (index, cell) in row.fields.iter().enumerate() {
                                    @let bad = row.errors.iter().any(|error| error.column.as_deref() == page.header.get(index).map(String::as_str));
                                    td class=(if bad { "bad" } else { "" }) { (cell) }
                                }
                            }
                        }
                    }
                }
            }
            nav aria-label="Failed rows pages" class="pager" {
                @if after.is_some() {
                    a href=(format!("/imports/{id}")) { "First failed rows" }
                }
                @if let Some(next) = page.next {
                    a href=(format!("/imports/{id}?failed_after={next}")) { "Next failed rows" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::{AccountId, FailedRowReport, RowError};

    fn status(state: ImportState) -> ImportStatus {
        let mut status = ImportStatus::queued(
            AccountId::new("acme").expect("valid"),
            ImportId::new("7c0e").expect("valid"),
        );
        status.status = state;
        status.file_name = Some("kontakty.csv".into());
        status
    }

    #[test]
    fn the_rows_read_say_row_for_one_and_rows_for_any_other_number() {
        let mut running = status(ImportState::Running);
        for (rows, said) in [
            (0, "0 rows"),
            (1, "1 row"),
            (2, "2 rows"),
            (12_000, "12\u{202f}000 rows"),
        ] {
            running.rows_total = rows;
            assert_eq!(Progress::of(&running).rows, said);
        }
    }

    #[test]
    fn a_running_import_offers_cancel_and_listens_to_its_events() {
        let running = status(ImportState::Running);
        let page = page(&ImportView {
            status: &running,
            failed_rows: None,
            failed_after: None,
            fixed_from: None,
        })
        .into_string();
        assert!(page.contains(r#"data-events="/imports/7c0e/events""#));
        assert!(page.contains(r#"action="/imports/7c0e/cancel""#));
        assert!(!page.contains("Summary"));
    }

    #[test]
    fn an_ended_import_shows_its_counters_and_failed_rows_with_reasons() {
        let mut completed = status(ImportState::Completed);
        completed.rows_total = 3;
        completed.created = 2;
        completed.failed = 1;
        let failed = FailedRowsPage {
            header: vec!["email".into(), "city".into()],
            rows: vec![FailedRowReport {
                line: 3,
                fields: vec!["+48 501 234 567".into(), "Kraków".into()],
                errors: vec![RowError {
                    line: 3,
                    column: Some("email".into()),
                    value: Some("+48 501 234 567".into()),
                    reason: "not a valid email address".into(),
                }],
            }],
            next: None,
        };
        let page = page(&ImportView {
            status: &completed,
            failed_rows: Some(&failed),
            failed_after: None,
            fixed_from: None,
        })
        .into_string();
        assert!(page.contains("Summary"));
        assert!(!page.contains("/cancel"));
        assert!(page.contains(r#"action="/imports/7c0e/undo""#));
        assert!(page.contains("<strong>email</strong>: not a valid email address"));
        assert!(page.contains(r#"<td class="bad">+48 501 234 567</td>"#));
        assert!(page.contains(r#"href="/imports/7c0e/failed-rows.csv""#));
    }

    #[test]
    fn an_import_past_the_retention_says_when_its_details_went_and_offers_no_undo() {
        let mut old = status(ImportState::Completed);
        old.rows_total = 3;
        old.created = 2;
        old.failed = 1;
        old.details_removed_at = Some(
            chrono::DateTime::parse_from_rfc3339("2026-03-01T04:05:06Z")
                .expect("a time")
                .to_utc(),
        );
        let page = page(&ImportView {
            status: &old,
            failed_rows: None,
            failed_after: None,
            fixed_from: None,
        })
        .into_string();
        assert!(page.contains("were removed on"), "{page}");
        assert!(page.contains(">2026-03-01</time>"), "{page}");
        assert!(!page.contains(r#"action="/imports/7c0e/undo""#), "{page}");
        assert!(
            page.contains(r#"href="/contacts?import_id=7c0e""#),
            "{page}"
        );
    }

    #[test]
    fn an_undo_says_what_it_did_and_offers_no_contacts_or_second_undo() {
        let view = |state| {
            let mut undone = status(state);
            undone.rows_total = 2;
            undone.created = 2;
            page(&ImportView {
                status: &undone,
                failed_rows: None,
                failed_after: None,
                fixed_from: None,
            })
            .into_string()
        };
        let undone = view(ImportState::Undone);
        assert!(undone.contains("This import was undone"));
        assert!(!undone.contains("See its contacts"));
        assert!(!undone.contains("/undo"));
        let undoing = view(ImportState::Undoing);
        assert!(undoing.contains("This import is being undone"));
        assert!(undoing.contains("Go on with the undo"));
        assert!(!undoing.contains("/cancel"));
    }
}
