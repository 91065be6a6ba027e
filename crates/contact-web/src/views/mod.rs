//! The page's HTML, one file per page, compiled in and escaped by `maud`. Views take what the
//! handlers found and return markup; they ask nothing of the contact base themselves.

pub mod contacts;
pub mod error;
pub mod fix;
pub mod history;
pub mod import;
pub mod login;
pub mod mapping;
pub mod new_import;

use contact_contract::{ImportState, ImportStatus};
use maud::{html, Markup, DOCTYPE};

use crate::assets;

/// Where a page sits in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    NewImport,
    Imports,
    Contacts,
    /// The login page: no navigation, it would only lead back to it.
    Login,
    None,
}

tokio::task_local! {
    /// Who is logged in while a page is rendered, for the header to name; unset in the open
    /// deployment, where nobody logs in. Set around a request by [`signed_in_as`], so that
    /// no view needs it passed down.
    static SIGNED_IN: String;
}

/// Renders whatever `page` renders with `user` named in the header, and a way to log out.
pub async fn signed_in_as<F: std::future::Future>(user: String, page: F) -> F::Output {
    SIGNED_IN.scope(user, page).await
}

/// Every page: its title, the navigation (the current section marked for screen readers
/// too), and a main region a skip link leads to.
pub fn layout(title: &str, section: Section, body: Markup) -> Markup {
    let link = |href: &str, label: &str, own: Section| {
        html! {
            @if section == own {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    let signed_in = SIGNED_IN.try_with(Clone::clone).ok();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Contact import" }
                link rel="stylesheet" href=(assets::address("app.css"));
                script src=(assets::address("app.js")) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    span class="brand" { "Contacts" }
                    @if section != Section::Login {
                        nav aria-label="Main" {
                            (link("/", "Import contacts", Section::NewImport))
                            (link("/imports", "Contacts import", Section::Imports))
                            (link("/contacts", "Contact manager", Section::Contacts))
                        }
                    }
                    @if let Some(user) = signed_in.filter(|_| section != Section::Login) {
                        form class="who" method="post" action="/logout" {
                            span { "Signed in as " strong { (user) } }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An import's state in words.
pub fn state_label(state: ImportState) -> &'static str {
    match state {
        ImportState::Queued => "Waiting to start",
        ImportState::Running => "Importing",
        ImportState::Completed => "Completed",
        ImportState::Failed => "Failed",
        ImportState::Cancelled => "Cancelled",
        ImportState::Undoing => "Being undone",
        ImportState::Undone => "Undone",
    }
}

/// A count with thin groups of thousands: 1 234 567.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push('\u{202f}');
        }
        grouped.push(digit);
    }
    grouped
}

/// The share of the file read, 0 to 100, once its size is known.
pub fn percent_done(status: &ImportStatus) -> Option<u64> {
    if status.status.is_terminal() && status.status != ImportState::Undoing {
        return Some(100);
    }
    let total = status.bytes_total.filter(|total| *total > 0)?;
    Some((status.bytes_done.min(total) * 100) / total)
}

/// The file's name for people, or the import id when it has none.
pub fn file_label(status: &ImportStatus) -> String {
    status
        .file_name
        .clone()
        .unwrap_or_else(|| format!("import {}", status.import_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::{AccountId, ImportId};

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1\u{202f}000");
        assert_eq!(count(1_234_567), "1\u{202f}234\u{202f}567");
    }

    #[test]
    fn the_share_done_is_known_once_the_file_size_is_and_full_at_the_end() {
        let mut status = ImportStatus::queued(
            AccountId::new("acme").expect("valid"),
            ImportId::new("1").expect("valid"),
        );
        assert_eq!(percent_done(&status), None);
        status.status = ImportState::Running;
        status.bytes_total = Some(200);
        status.bytes_done = 50;
        assert_eq!(percent_done(&status), Some(25));
        status.status = ImportState::Completed;
        assert_eq!(percent_done(&status), Some(100));
    }

    #[test]
    fn the_layout_marks_the_current_section_and_escapes_the_title() {
        let page = layout("<b>x</b>", Section::Imports, html! { p { "body" } }).into_string();
        assert!(page.contains("<title>&lt;b&gt;x&lt;/b&gt; · Contact import</title>"));
        assert!(page.contains(r#"<a href="/imports" aria-current="page">Contacts import</a>"#));
        assert!(page.contains(r#"<a href="/contacts">Contact manager</a>"#));
        assert!(!page.contains("Log out"), "nobody is logged in");
    }

    #[tokio::test]
    async fn a_signed_in_user_is_named_with_a_way_out_and_the_login_page_has_no_navigation() {
        let page = signed_in_as("anna<b>".to_string(), async {
            layout("Imports", Section::Imports, html! {}).into_string()
        })
        .await;
        assert!(
            page.contains("Signed in as <strong>anna&lt;b&gt;</strong>"),
            "{page}"
        );
        assert!(page.contains(r#"<form class="who" method="post" action="/logout">"#));
        let login = layout("Log in", Section::Login, html! {}).into_string();
        assert!(!login.contains("<nav"));
    }
}
