//! A page that could not be shown: what happened, and what to do next.

use axum::http::StatusCode;
use maud::{html, Markup};

use super::{layout, Section};

pub fn page(status: StatusCode, message: &str) -> Markup {
    let (title, next) = match status {
        StatusCode::NOT_FOUND => ("Not found", "Check the address, or start from the list of imports."),
        StatusCode::SERVICE_UNAVAILABLE => (
            "Not available right now",
            "Nothing you sent was lost. Try again in a moment; if it lasts, tell whoever runs contact import.",
        ),
        StatusCode::FORBIDDEN => ("Refused", "Open the page again and send the form from there."),
        _ => ("Cannot do that", "Go back, change what the message names, and try again."),
    };
    layout(
        title,
        Section::None,
        html! {
            div class="notice error" role="alert" {
                p { (message) }
            }
            p { (next) }
            p { a href="/" { "Import contacts" } " · " a href="/imports" { "Contacts import" } }
        },
    )
}
