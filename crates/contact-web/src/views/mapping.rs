//! "Fields mapping": the file's first rows, how it is read, and per column the attribute it
//! fills, preset as the account's last import of the same columns mapped it, else to the
//! suggestion with its reason. IMPORT and DRY RUN stay disabled, with the
//! reason in words, while a required attribute is unmapped (the script keeps that true as
//! the choices change; without it, the server checks on every press).

use contact_contract::{AttributeDef, Preview, RememberedMapping, UnfitColumn, ValueMapping};
use maud::{html, Markup};

use super::new_import::human_bytes;
use super::{count, layout, Section};

pub struct Mapping<'a> {
    pub draft_token: &'a str,
    pub file_name: &'a str,
    pub bytes: u64,
    pub preview: &'a Preview,
    pub attributes: &'a [AttributeDef],
    /// By column: the attribute key it fills, if any.
    pub selected: &'a [Option<String>],
    /// Why the file cannot be imported as mapped, in words (empty when it can).
    pub blocking: &'a [String],
    /// The reason the last press was refused, when it was.
    pub error: Option<&'a str>,
}

const ENCODINGS: [&str; 6] = [
    "UTF-8",
    "UTF-16LE",
    "UTF-16BE",
    "windows-1250",
    "ISO-8859-2",
    "windows-1252",
];
const DELIMITERS: [(&str, &str); 4] = [
    (",", "comma"),
    (";", "semicolon"),
    ("tab", "tab"),
    ("|", "pipe"),
];

pub fn page(view: &Mapping<'_>) -> Markup {
    let preview = view.preview;
    let required: Vec<&str> = view
        .attributes
        .iter()
        .filter(|attribute| attribute.required)
        .map(|attribute| attribute.key.as_str())
        .collect();
    let encoding = preview.encoding.to_string();
    let delimiter_value = if preview.delimiter == "\t" {
        "tab"
    } else {
        preview.delimiter.as_str()
    };
    let blocked = !view.blocking.is_empty();
    layout(
        "Fields mapping",
        Section::NewImport,
        html! {
            @if let Some(error) = view.error {
                div class="notice error" role="alert" { p { (error) } }
            }
            form method="post" action="/mapping" id="mapping" data-required=(required.join(",")) {
                input type="hidden" name="draft" value=(view.draft_token);
                section class="card" aria-labelledby="file-heading" {
                    h2 id="file-heading" { (view.file_name) }
                    p { (human_bytes(view.bytes)) " · " (count(preview.rows.len() as u64)) " rows shown · "
                        (count(preview.header.len() as u64)) " columns" }
                    div class="inline-fields" {
                        label for="encoding" { "Encoding" }
                        select id="encoding" name="encoding" {
                            @for name in ENCODINGS {
                                option value=(name) selected[name == encoding] {
                                    (name) @if name == encoding { " (detected)" }
                                }
                            }
                        }
                        label for="delimiter" { "Separator" }
                        select id="delimiter" name="delimiter" {
                            @for (value, name) in DELIMITERS {
                                option value=(value) selected[value == delimiter_value] {
                                    (name) @if value == delimiter_value { " (detected)" }
                                }
                            }
                        }
                        button type="submit" name="action" value="check" class="button secondary" { "Read again" }
                    }
                }
                @if let Some(remembered) = &preview.remembered {
                    (remembered_notice(view, remembered))
                }
                section class="card" aria-labelledby="columns-heading" {
                    h2 id="columns-heading" { "Columns and attributes" }
                    p { "Choose the attribute each column fills. Columns set to “Not imported” are left out." }
                    table class="columns" {
                        thead { tr { th scope="col" { "Column in the file" } th scope="col" { "First values" } th scope="col" { "Attribute" } th scope="col" { "Note" } } }
                        tbody {
                            @for (index, column) in preview.header.iter().enumerate() {
                                (column_row(view, index, column))
                            }
                        }
                    }
                }
                @if !preview.unfit_columns.is_empty() {
                    (values_to_map(view))
                }
                section class="card" aria-labelledby="rows-heading" {
                    h2 id="rows-heading" { "First rows" }
                    div class="scroll" tabindex="0" role="region" aria-labelledby="rows-heading" {
                        table class="rows" {
                            thead { tr { @for column in &preview.header { th scope="col" { (column) } } } }
                            tbody {
                                @for row in &preview.rows {
                                    tr { @for cell in row { td { (cell) } } }
                                }
                            }
                        }
                    }
                }
                div class="card actions" {
                    div id="blocked-reason" class="notice warning" aria-live="polite" hidden[!blocked] {
                        @for reason in view.blocking { p { (reason) } }
                    }
                    button type="submit" name="action" value="dry_run" class="button secondary"
                        disabled[blocked] aria-describedby="blocked-reason" { "DRY RUN" }
                    button type="submit" name="action" value="import" class="button"
                        disabled[blocked] aria-describedby="blocked-reason" { "IMPORT" }
                    p class="help" { "A dry run goes through the whole file and reports what the import would do, without changing any contact." }
                }
            }
        },
    )
}

fn column_row(view: &Mapping<'_>, index: usize, column: &str) -> Markup {
    let preview = view.preview;
    let selected = view.selected.get(index).cloned().flatten();
    let suggestion = preview.suggested_mapping.get(index);
    let invalid = preview
        .invalid_columns
        .iter()
        .find(|invalid| invalid.column == column);
    let examples: Vec<&str> = preview
        .rows
        .iter()
        .filter_map(|row| row.get(index).map(String::as_str))
        .filter(|cell| !cell.is_empty())
        .take(3)
        .collect();
    // The column is mapped as the account's last import of these columns mapped it.
    let as_remembered = preview.remembered.as_ref().is_some_and(|remembered| {
        remembered.mappings.iter().any(|mapping| {
            mapping.column == column
                && Some(mapping.attribute.as_str()).filter(|key| !key.is_empty())
                    == selected.as_deref()
        })
    });
    let select_id = format!("column-{index}");
    let note_id = format!("column-{index}-note");
    html! {
        tr {
            th scope="row" { label for=(select_id) { (column) } }
            td class="examples" { ul { @for example in &examples { li { (example) } } } }
            td {
                select id=(select_id) name={"column." (index)} aria-describedby=(note_id) {
                    option value="" selected[selected.is_none()] { "Not imported" }
                    @for attribute in view.attributes {
                        option value=(attribute.key) selected[selected.as_deref() == Some(attribute.key.as_str())] {
                            (attribute.label) @if attribute.required { " (required)" }
                        }
                    }
                }
            }
            td id=(note_id) class="note" {
                @if let Some(invalid) = invalid {
                    span class="misfit" {
                        (invalid.invalid) " of " (invalid.sampled) " values do not fit: “" (invalid.example) "” — " (invalid.reason)
                    }
                    br;
                }
                @match suggestion.and_then(|suggestion| suggestion.attribute.as_deref().map(|key| (suggestion, key))) {
                    _ if as_remembered => {
                        span class="why" { "As in your import of " (remembered_file(preview)) "." }
                    }
                    Some((suggestion, key)) if selected.as_deref() == Some(key) => {
                        span class="why" { "Suggested: " (why(&suggestion.reason, column, label_of(view.attributes, key))) }
                    }
                    Some((_, key)) => {
                        span class="why" { "Your choice; the suggestion was " (label_of(view.attributes, key)) "." }
                    }
                    None if selected.is_none() => {
                        span class="why" { "No attribute matches this column's name." }
                    }
                    None => { span class="why" { "Your choice." } }
                }
            }
        }
    }
}

/// Where the preset mapping comes from, and the value maps it carries for values these rows
/// do not hold (the form cannot show them, and the rest of the file may hold them).
fn remembered_notice(view: &Mapping<'_>, remembered: &RememberedMapping) -> Markup {
    let shown = |attribute: &str, value: &str| {
        view.preview.unfit_columns.iter().any(|column| {
            column.attribute == attribute
                && column
                    .values
                    .iter()
                    .any(|shown| shown.value.trim().to_lowercase() == value)
        })
    };
    let filled = |attribute: &str| view.selected.iter().flatten().any(|key| key == attribute);
    let unseen: Vec<&ValueMapping> = remembered
        .value_mappings
        .iter()
        .filter(|mapping| filled(&mapping.attribute) && !shown(&mapping.attribute, &mapping.value))
        .collect();
    html! {
        div class="notice info" role="status" id="remembered" {
            p {
                "You have imported a file with these columns before: the mapping of "
                strong { (remembered_file(view.preview)) }
                " (" (remembered.created_at.format("%Y-%m-%d %H:%M UTC")) ") is preset. Change any column below."
            }
            @if !unseen.is_empty() {
                p { "Its values not in these rows are read as before:" }
                ul {
                    @for mapping in unseen {
                        li { "“" (mapping.value) "” as “" (mapping.allowed) "” (" (label_of(view.attributes, &mapping.attribute)) ")" }
                    }
                }
            }
        }
    }
}

fn remembered_file(preview: &Preview) -> &str {
    preview
        .remembered
        .as_ref()
        .and_then(|remembered| remembered.file_name.as_deref())
        .unwrap_or("your last file")
}

/// "Values to map": each value of a choice column that its attribute does not allow, with a
/// choice of the allowed value it stands for. Rows are numbered across columns (`value.N.*`).
fn values_to_map(view: &Mapping<'_>) -> Markup {
    let mut row_number = 0;
    html! {
        section class="card" aria-labelledby="values-heading" {
            h2 id="values-heading" { "Values to map" }
            p { "These values do not fit their attribute. Choose what each one means, or leave it: rows holding it then fail, and are listed with the reason. Values are compared ignoring case. After changing a column's attribute, press “Read again” to see its values." }
            @for (column_index, column) in view.preview.unfit_columns.iter().enumerate() {
                (unfit_table(view, column_index, column, &mut row_number))
            }
        }
    }
}

fn unfit_table(
    view: &Mapping<'_>,
    column_index: usize,
    column: &UnfitColumn,
    row_number: &mut usize,
) -> Markup {
    let label = label_of(view.attributes, &column.attribute);
    let caption_id = format!("values-{column_index}-caption");
    html! {
        table class="values" aria-labelledby=(caption_id) {
            caption id=(caption_id) { "“" (column.column) "” as " (label) " (allowed: " (column.allowed.join(", ")) ")" }
            thead { tr { th scope="col" { "Value in the file" } th scope="col" { "Cells in the sample" } th scope="col" { "Read as" } } }
            tbody {
                @for value in &column.values {
                    @let number = { let number = *row_number; *row_number += 1; number };
                    @let select_id = format!("value-{number}");
                    @let preset = value.mapped_to.as_deref();
                    tr {
                        th scope="row" {
                            label for=(select_id) { "“" (value.value) "”" }
                            input type="hidden" name={"value." (number) ".attribute"} value=(column.attribute);
                            input type="hidden" name={"value." (number) ".value"} value=(value.value);
                        }
                        td { (value.cells) }
                        td {
                            select id=(select_id) name={"value." (number) ".allowed"} {
                                option value="" selected[preset.is_none()] { "Leave it: these rows fail" }
                                @for allowed in &column.allowed {
                                    option value=(allowed) selected[preset == Some(allowed.as_str())] {
                                        (allowed)
                                        @if value.suggestion.as_deref() == Some(allowed.as_str()) { " (suggested)" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn label_of<'a>(attributes: &'a [AttributeDef], key: &'a str) -> &'a str {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .map_or(key, |attribute| attribute.label.as_str())
}

/// Why a column was suggested for an attribute, in words (the core names its signal).
fn why(reason: &str, column: &str, attribute: &str) -> String {
    match reason {
        "exact key" | "label" | "normalized name" => {
            format!("the column is named like {attribute}.")
        }
        "synonym" => format!("“{column}” is a usual name for {attribute}."),
        "mapped with --map" => "your choice.".to_string(),
        // A guess from the values: "5 of 6 sampled values are valid email addresses".
        other => format!("{other}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::{
        AttributeType, ColumnMapping, ColumnSuggestion, InvalidColumn, TextEncoding,
    };

    fn attribute(key: &str, label: &str, required: bool) -> AttributeDef {
        AttributeDef {
            key: key.into(),
            label: label.into(),
            attribute_type: AttributeType::Text,
            required,
            identifier: required,
        }
    }

    fn preview() -> Preview {
        Preview {
            encoding: TextEncoding::Windows1250,
            delimiter: ";".into(),
            delimiter_name: "semicolon".into(),
            header: vec!["Adres e-mail".into(), "Miasto".into()],
            rows: vec![vec!["+48 501 234 567".into(), "Łódź".into()]],
            suggested_mapping: vec![
                ColumnSuggestion {
                    column: "Adres e-mail".into(),
                    attribute: Some("email".into()),
                    confidence: 0.9,
                    reason: "the header names an email".into(),
                },
                ColumnSuggestion {
                    column: "Miasto".into(),
                    attribute: None,
                    confidence: 0.0,
                    reason: String::new(),
                },
            ],
            unmapped_required: Vec::new(),
            unfit_columns: Vec::new(),
            remembered: None,
            invalid_columns: vec![InvalidColumn {
                column: "Adres e-mail".into(),
                attribute: "email".into(),
                invalid: 1,
                sampled: 1,
                example: "+48 501 234 567".into(),
                reason: "not a valid email address".into(),
            }],
        }
    }

    #[test]
    fn the_buttons_are_disabled_with_the_reason_while_something_blocks() {
        let attributes = [
            attribute("email", "Email", true),
            attribute("city", "City", false),
        ];
        let preview = preview();
        let blocking = ["Email is required: choose the column that holds it.".to_string()];
        let page = page(&Mapping {
            draft_token: "t.s",
            file_name: "kontakty.csv",
            bytes: 2048,
            preview: &preview,
            attributes: &attributes,
            selected: &[None, None],
            blocking: &blocking,
            error: None,
        })
        .into_string();
        assert!(page.contains(r#"value="import" class="button" disabled"#));
        assert!(page.contains(r#"value="dry_run" class="button secondary" disabled"#));
        assert!(page.contains("Email is required: choose the column that holds it."));
        assert!(page.contains(r#"data-required="email""#));
        assert!(page.contains("windows-1250 (detected)"));
        assert!(page.contains("semicolon (detected)"));
        assert!(page
            .contains("1 of 1 values do not fit: “+48 501 234 567” — not a valid email address"));
        assert!(page.contains("Łódź"));
    }

    #[test]
    fn with_nothing_blocking_the_buttons_are_enabled_and_the_choice_is_preset() {
        let attributes = [
            attribute("email", "Email", true),
            attribute("city", "City", false),
        ];
        let preview = preview();
        let page = page(&Mapping {
            draft_token: "t.s",
            file_name: "kontakty.csv",
            bytes: 2048,
            preview: &preview,
            attributes: &attributes,
            selected: &[Some("email".into()), Some("city".into())],
            blocking: &[],
            error: None,
        })
        .into_string();
        assert!(page.contains(r#"value="import" class="button" aria-describedby"#));
        assert_eq!(
            why("synonym", "Adres e-mail", "Email"),
            "“Adres e-mail” is a usual name for Email."
        );
        assert!(page.contains(r#"<option value="email" selected>Email (required)</option>"#));
        assert!(page.contains(r#"<option value="city" selected>City</option>"#));
        assert!(page.contains("Suggested: the header names an email."));
    }

    #[test]
    fn each_unfit_value_gets_a_choice_preset_to_its_reading_and_numbered_across_columns() {
        use contact_contract::{UnfitColumn, UnfitValue};
        let attributes = [
            attribute("email", "Email", true),
            attribute("gender", "Gender", false),
            attribute("newsletter", "Newsletter", false),
        ];
        let unfit = |value: &str, mapped_to: Option<&str>, suggestion: Option<&str>| UnfitValue {
            value: value.into(),
            cells: 2,
            mapped_to: mapped_to.map(Into::into),
            suggestion: suggestion.map(Into::into),
        };
        let mut preview = preview();
        preview.unfit_columns = vec![
            UnfitColumn {
                column: "Płeć".into(),
                attribute: "gender".into(),
                allowed: vec!["F".into(), "M".into()],
                values: vec![unfit("K", Some("F"), None), unfit("x", None, None)],
            },
            UnfitColumn {
                column: "Zgoda".into(),
                attribute: "newsletter".into(),
                allowed: vec!["true".into(), "false".into()],
                values: vec![unfit("ja", Some("true"), Some("true"))],
            },
        ];
        let page = page(&Mapping {
            draft_token: "t.s",
            file_name: "kontakty.csv",
            bytes: 2048,
            preview: &preview,
            attributes: &attributes,
            selected: &[Some("email".into()), None],
            blocking: &[],
            error: None,
        })
        .into_string();
        assert!(page.contains("Values to map"));
        assert!(page.contains("“Płeć” as Gender (allowed: F, M)"));
        assert!(page.contains(r#"name="value.0.value" value="K""#));
        assert!(page.contains(r#"name="value.2.attribute" value="newsletter""#));
        let second = &page[page.find(r#"id="value-1""#).expect("second row")..];
        assert!(
            second.starts_with(r#"id="value-1" name="value.1.allowed"><option value="" selected>"#)
        );
        assert!(page.contains(r#"<option value="true" selected>true (suggested)</option>"#));
        assert!(page.contains(r#"<option value="F" selected>F</option>"#));
    }

    #[test]
    fn a_remembered_mapping_is_announced_with_the_value_maps_the_rows_do_not_show() {
        let attributes = [
            attribute("email", "Email", true),
            attribute("city", "City", false),
            attribute("segment", "Segment", false),
        ];
        let mut preview = preview();
        preview.remembered = Some(RememberedMapping {
            import_id: contact_contract::ImportId::new("imp-7").expect("valid"),
            file_name: Some("march.csv".into()),
            created_at: "2026-03-02T10:15:00Z".parse().expect("a time"),
            mappings: vec![
                ColumnMapping {
                    column: "Adres e-mail".into(),
                    attribute: "email".into(),
                },
                ColumnMapping {
                    column: "Miasto".into(),
                    attribute: "city".into(),
                },
            ],
            value_mappings: vec![ValueMapping {
                attribute: "segment".into(),
                value: "vip".into(),
                allowed: "premium".into(),
            }],
        });
        let page_with = |selected: &[Option<String>]| {
            page(&Mapping {
                draft_token: "t.s",
                file_name: "april.csv",
                bytes: 2048,
                preview: &preview,
                attributes: &attributes,
                selected,
                blocking: &[],
                error: None,
            })
            .into_string()
        };
        let as_remembered = page_with(&[Some("email".into()), Some("city".into())]);
        assert!(as_remembered.contains(
            "the mapping of <strong>march.csv</strong> (2026-03-02 10:15 UTC) is preset"
        ));
        assert_eq!(
            as_remembered
                .matches("As in your import of march.csv.")
                .count(),
            2
        );
        // No column fills the segment: its value map is not in force, so not listed.
        assert!(!as_remembered.contains("“vip”"));

        let changed = page_with(&[Some("email".into()), Some("segment".into())]);
        assert_eq!(
            changed.matches("As in your import of march.csv.").count(),
            1
        );
        assert!(changed.contains("“vip” as “premium” (Segment)"));
    }
}
