//! "Contact manager": the account's contacts, a page at a time in id order, filtered by
//! import, tag, type and category, with every attribute of the catalog.

use contact_contract::{AttributeDef, ContactFilter, ExportedContact};
use maud::{html, Markup};

use super::{layout, Section};

pub struct Contacts<'a> {
    pub contacts: &'a [ExportedContact],
    pub attributes: &'a [AttributeDef],
    pub filter: &'a ContactFilter,
    /// The address of the next page, when there is one.
    pub next: Option<String>,
}

pub fn page(view: &Contacts<'_>) -> Markup {
    let filter = view.filter;
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    layout(
        "Contact manager",
        Section::Contacts,
        html! {
            form method="get" action="/contacts" class="card filters" {
                div class="inline-fields" {
                    label for="tag" { "Tag" }
                    input id="tag" name="tag" value=(text(&filter.tag));
                    label for="type" { "Type" }
                    input id="type" name="type" value=(text(&filter.contact_type));
                    label for="category" { "Category" }
                    input id="category" name="category" value=(text(&filter.category));
                    label for="import_id" { "Import" }
                    input id="import_id" name="import_id" value=(filter.import_id.as_ref().map(ToString::to_string).unwrap_or_default());
                    button type="submit" class="button secondary" { "Filter" }
                }
            }
            @if view.contacts.is_empty() {
                p class="card" { "No contact matches." }
            } @else {
                div class="scroll card" tabindex="0" role="region" aria-label="Contacts" {
                    table class="rows" {
                        caption { "Contacts, oldest first" }
                        thead { tr {
                            th scope="col" { "ID" }
                            @for attribute in view.attributes { th scope="col" { (attribute.label) } }
                            th scope="col" { "Type" } th scope="col" { "Category" } th scope="col" { "Tags" }
                        } }
                        tbody {
                            @for contact in view.contacts {
                                tr {
                                    td class="number" { (contact.id) }
                                    @for attribute in view.attributes {
                                        td { (contact.attributes.get(&attribute.key).map(String::as_str).unwrap_or_default()) }
                                    }
                                    td { (text(&contact.contact_type)) }
                                    td { (text(&contact.category)) }
                                    td { (contact.tags.join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = &view.next {
                nav class="pager" aria-label="Contacts pages" { a href=(next) { "Next contacts" } }
            }
        },
    )
}
