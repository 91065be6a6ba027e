//! "Contacts import": the account's imports, newest first, with their summaries.

use contact_contract::{ImportState, ImportStatus};
use maud::{html, Markup};

use super::{count, file_label, layout, state_label, Section};

pub struct History<'a> {
    pub imports: &'a [ImportStatus],
    pub status: Option<ImportState>,
    /// The address of the next (older) page, when there is one.
    pub older: Option<String>,
}

const FILTERS: [ImportState; 7] = [
    ImportState::Queued,
    ImportState::Running,
    ImportState::Completed,
    ImportState::Failed,
    ImportState::Cancelled,
    ImportState::Undoing,
    ImportState::Undone,
];

pub fn page(view: &History<'_>) -> Markup {
    layout(
        "Contacts import",
        Section::Imports,
        html! {
            form method="get" action="/imports" class="inline-fields card" {
                label for="status" { "Show" }
                select id="status" name="status" {
                    option value="" selected[view.status.is_none()] { "All imports" }
                    @for state in FILTERS {
                        option value=(state.as_str()) selected[view.status == Some(state)] { (state_label(state)) }
                    }
                }
                button type="submit" class="button secondary" { "Filter" }
            }
            @if view.imports.is_empty() {
                p class="card" { "No imports yet. " a href="/" { "Import contacts" } " to start." }
            } @else {
                div class="scroll card" tabindex="0" role="region" aria-label="Imports" {
                    table class="rows" {
                        caption { "Imports, newest first" }
                        thead { tr {
                            th scope="col" { "File" } th scope="col" { "Started" } th scope="col" { "State" }
                            th scope="col" { "Rows" } th scope="col" { "Created" } th scope="col" { "Linked" }
                            th scope="col" { "Duplicated" } th scope="col" { "Skipped" } th scope="col" { "Failed" }
                        } }
                        tbody {
                            @for import in view.imports {
                                tr {
                                    td { a href=(format!("/imports/{}", import.import_id)) { (file_label(import)) }
                                         @if import.dry_run { " " span class="badge" { "dry run" } } }
                                    td { (import.created_at.map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()) }
                                    td { (state_label(import.status)) }
                                    td class="number" { (count(import.rows_total)) }
                                    td class="number" { (count(import.created)) }
                                    td class="number" { (count(import.linked)) }
                                    td class="number" { (count(import.duplicated)) }
                                    td class="number" { (count(import.skipped)) }
                                    td class="number" { (count(import.failed)) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(older) = &view.older {
                nav class="pager" aria-label="Imports pages" { a href=(older) { "Older imports" } }
            }
        },
    )
}
