//! "Log in": the name and password of a web user of the deployment.

use maud::{html, Markup};

use super::{layout, Section};

pub struct Login<'a> {
    /// The name typed last time, kept when the password was wrong.
    pub user: &'a str,
    /// The page to return to once logged in.
    pub next: &'a str,
    /// Why the last attempt did not log in, when it did not.
    pub error: Option<&'a str>,
}

pub fn page(view: &Login<'_>) -> Markup {
    layout(
        "Log in",
        Section::Login,
        html! {
            @if let Some(error) = view.error {
                div class="notice error" role="alert" id="login-error" {
                    p { (error) }
                }
            }
            form class="card narrow" method="post" action="/login" aria-labelledby="login-heading" {
                h2 id="login-heading" { "Log in to import contacts" }
                input type="hidden" name="next" value=(view.next);
                div class="fields" {
                    label for="user" { "User name" }
                    input id="user" name="user" value=(view.user) autocomplete="username"
                        autocapitalize="none" spellcheck="false" required autofocus[view.user.is_empty()];
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password"
                        required autofocus[!view.user.is_empty()];
                }
                p class="help" { "Ask whoever runs contact import for an account if you have none." }
                div class="actions" {
                    button class="button" type="submit" { "Log in" }
                }
            }
        },
    )
}
