//! "Import contacts": the sample file, the choices that apply to every row, and the file.

use contact_contract::AttributeDef;
use maud::{html, Markup};

use super::{layout, Section};
use crate::forms::ImportChoices;

pub struct NewImport<'a> {
    pub choices: &'a ImportChoices,
    /// The account's identifier attributes, which duplicates can be found by.
    pub identifiers: Vec<&'a AttributeDef>,
    /// Why the last attempt was refused, when it was.
    pub error: Option<&'a str>,
    pub max_upload_bytes: u64,
}

pub fn page(view: &NewImport<'_>) -> Markup {
    let choices = view.choices;
    let policy =
        |value: &str| choices.policy == value || (choices.policy.is_empty() && value == "link");
    layout(
        "Import contacts",
        Section::NewImport,
        html! {
            @if let Some(error) = view.error {
                div class="notice error" role="alert" id="form-error" {
                    p { (error) }
                    p { "Your choices are kept below; choose the file again." }
                }
            }
            section aria-labelledby="sample-heading" class="card" {
                h2 id="sample-heading" { "1. Start from the sample file" }
                p {
                    "The sample file has one column per contact attribute of your account, with an example row. "
                    "Columns may come in any order; columns named like an attribute are mapped to it."
                }
                p { a class="button secondary" href="/sample.csv" download { "Download the sample file" } }
            }
            form class="card" method="post" action="/uploads" enctype="multipart/form-data"
                data-max-bytes=(view.max_upload_bytes) id="new-import" {
                h2 { "2. Choose how the contacts are added" }
                div class="fields" {
                    label for="contact_type" { "Contact type" }
                    input id="contact_type" name="contact_type" value=(choices.contact_type)
                        placeholder="for instance: lead" aria-describedby="contact_type-help";
                    p class="help" id="contact_type-help" { "Given to every contact this import creates. Optional." }
                    label for="category" { "Category" }
                    input id="category" name="category" value=(choices.category)
                        placeholder="for instance: trade fair" aria-describedby="category-help";
                    p class="help" id="category-help" { "Optional." }
                    label for="tags" { "Tags" }
                    input id="tags" name="tags" value=(choices.tags)
                        placeholder="vip, fair-2026" aria-describedby="tags-help";
                    p class="help" id="tags-help" { "Separate tags with commas. Added to every imported contact." }
                }
                fieldset {
                    legend { "When a contact with the same email already exists" }
                    label class="choice" {
                        input type="radio" name="policy" value="link" checked[policy("link")];
                        span { strong { "Link to the existing contact" } " — its attributes are updated from the file." }
                    }
                    label class="choice" {
                        input type="radio" name="policy" value="duplicate" checked[policy("duplicate")];
                        span { strong { "Create a separate contact" } " — without linking it to the existing one." }
                    }
                    label class="choice" {
                        input type="radio" name="policy" value="skip" checked[policy("skip")];
                        span { strong { "Skip the row" } " — the existing contact stays as it is." }
                    }
                }
                @if view.identifiers.len() > 1 {
                    div class="fields" {
                        label for="match_on" { "Find existing contacts by" }
                        select id="match_on" name="match_on" {
                            @for attribute in &view.identifiers {
                                option value=(attribute.key) selected[choices.match_on == attribute.key] { (attribute.label) }
                            }
                        }
                    }
                }
                h2 { "3. Load your file" }
                div class="drop" {
                    // Filled by the page's script with the chosen file's size.
                    input type="hidden" name="file_size" value="";
                    label for="file" { "CSV file" }
                    input id="file" name="file" type="file" required accept=".csv,.txt,text/csv,text/plain"
                        aria-describedby="file-help";
                    p class="help" id="file-help" {
                        "A CSV file with a header row, in UTF-8, UTF-16, windows-1250 or ISO-8859-2; comma, semicolon, tab or pipe separated. "
                        "At most " (human_bytes(view.max_upload_bytes)) "."
                    }
                    p class="upload-progress" hidden aria-live="polite" {
                        progress max="100" value="0" aria-label="Upload" {}
                        span class="upload-text" {}
                    }
                }
                div class="actions" {
                    button type="submit" class="button" { "Load the file" }
                }
            }
        },
    )
}

/// A size in the largest unit that keeps it above 1.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit]).replace(".0 ", " ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_said_in_the_largest_fitting_unit() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1536), "1.5 KB");
        assert_eq!(human_bytes(2 * 1024 * 1024 * 1024), "2 GB");
    }

    #[test]
    fn a_refused_form_shows_the_reason_and_keeps_the_choices() {
        let choices = ImportChoices {
            contact_type: "lead".into(),
            tags: "vip".into(),
            policy: "skip".into(),
            ..ImportChoices::default()
        };
        let page = page(&NewImport {
            choices: &choices,
            identifiers: Vec::new(),
            error: Some("The file is empty."),
            max_upload_bytes: 1024,
        })
        .into_string();
        assert!(page.contains(r#"role="alert""#));
        assert!(page.contains("The file is empty."));
        assert!(page.contains(r#"value="lead""#));
        assert!(page.contains(r#"name="policy" value="skip" checked"#));
        assert!(!page.contains(r#"name="policy" value="link" checked"#));
    }
}
