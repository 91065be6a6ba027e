//! Logging in and out, in a secure deployment; the open deployment (the demo) has nobody to
//! log in, and sends these addresses to the first page.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Extensions, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use contact_contract::web_users::{self, UserName};
use contact_import_client::Client;

use super::PageError;
use crate::session::{self, Session};
use crate::tenant::{Refused, Tenancy};
use crate::throttle;
use crate::views::login::Login;
use crate::{views, AppState};

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// How long a login waits for its turn to have its password checked.
const HASHING_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// A hash of a password nobody has, checked when the name is unknown, so that a wrong name
/// takes as long to refuse as a wrong password and tells nothing of who has an account.
static NOBODY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    web_users::hash_password(&web_users::new_password()).expect("hashing never fails")
});

/// The connection of the account the request acts as (see [`Tenancy`]); a request without
/// a live session in a secure deployment is sent to the login page instead, to come back.
pub struct Tenant(pub Client);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let accounts = match &*state.tenancy {
            Tenancy::Open { client } => return Ok(Self(client.clone())),
            Tenancy::Accounts(accounts) => accounts,
        };
        let login_needed = || PageError::LoginNeeded(back_to(&parts.method, &parts.uri));
        let session = Session::from_headers(&state.signing_key, &parts.headers, session::now())
            .ok_or_else(login_needed)?;
        match accounts.client(&session).await {
            Ok(client) => Ok(Self(client)),
            Err(Refused::LoginNeeded) => Err(login_needed()),
            Err(other) => Err(other.into()),
        }
    }
}

pub async fn show(State(state): State<AppState>, Query(query): Query<LoginQuery>) -> Response {
    if matches!(*state.tenancy, Tenancy::Open { .. }) {
        return Redirect::to("/").into_response();
    }
    page(
        StatusCode::OK,
        &Login {
            user: "",
            next: &query.next,
            error: None,
        },
    )
}

pub async fn log_in(
    State(state): State<AppState>,
    extensions: Extensions,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let Tenancy::Accounts(accounts) = &*state.tenancy else {
        return Ok(Redirect::to("/").into_response());
    };
    let address = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| throttle::client_address(address.ip()))
        .unwrap_or_default();
    let refused = |status: StatusCode, message: &str| {
        page(
            status,
            &Login {
                user: &form.user,
                next: &form.next,
                error: Some(message),
            },
        )
    };
    // Only a name the users file could hold goes into the log, never what was typed.
    let name = UserName::new(&form.user).ok();
    let logged = name.as_ref().map_or("(not a user name)", UserName::as_str);
    if let Err(wait) = state
        .login_throttle
        .begin(&form.user, &address, Instant::now())
    {
        let minutes = wait.as_secs().div_ceil(60);
        tracing::warn!(user = logged, %address, "login held back after repeated attempts");
        return Ok(refused(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many wrong passwords. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
        ));
    }
    let users = accounts.users()?;
    let user = name.as_ref().and_then(|name| users.get(name).cloned());
    let hash = user
        .as_ref()
        .map_or_else(|| NOBODY.clone(), |user| user.password_hash.clone());
    let password = form.password.clone();
    // A few at a time (each takes 19 MiB), and off the threads that serve other requests.
    let Ok(Ok(_permit)) =
        tokio::time::timeout(HASHING_PATIENCE, state.login_throttle.hashing.acquire()).await
    else {
        return Err(PageError::Unavailable(
            "Too many people are logging in right now. Try again in a moment.".to_string(),
        ));
    };
    let matches = tokio::task::spawn_blocking(move || web_users::verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| matches) else {
        tracing::info!(user = logged, %address, "a login was refused");
        return Ok(refused(
            StatusCode::UNAUTHORIZED,
            "The user name or the password is not right.",
        ));
    };
    state.login_throttle.succeeded(&form.user, &address);
    tracing::info!(user = %user.name, account = %user.account, "logged in");
    let cookie = Session::start(&user, session::now()).cookie(&state.signing_key);
    let mut response = Redirect::to(safe_next(&form.next)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

pub async fn log_out() -> Response {
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, Session::ended_cookie());
    response
}

/// Names the logged-in user in every page the request renders (see
/// [`views::signed_in_as`]).
pub async fn name_the_user(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let user = match *state.tenancy {
        Tenancy::Open { .. } => None,
        Tenancy::Accounts(_) => {
            Session::from_headers(&state.signing_key, request.headers(), session::now())
                .map(|session| session.user().to_string())
        }
    };
    match user {
        Some(user) => views::signed_in_as(user, next.run(request)).await,
        None => next.run(request).await,
    }
}

/// Where a page that needs a login sends the browser: the login page, which returns to
/// `back` (a page of this site) afterwards.
pub fn to_login(back: &str) -> Response {
    let back = safe_next(back);
    let address = if back == "/" {
        "/login".to_string()
    } else {
        format!("/login?next={}", percent_encoded(back))
    };
    Redirect::to(&address).into_response()
}

/// Only a path of this site: `//evil.example` or `https://…` would send the person who
/// just logged in somewhere else, and so would `/<tab>/evil.example`, since browsers drop
/// tabs and line breaks from an address (and read `\` as `/`); a control character would
/// not even make a header.
fn safe_next(next: &str) -> &str {
    let odd = |c: char| c.is_control() || c.is_whitespace() || c == '\\';
    if next.starts_with('/') && !next.starts_with("//") && !next.chars().any(odd) {
        next
    } else {
        "/"
    }
}

fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The path and query a GET asked for, to return to after the login; other requests return
/// to the first page (a form sent with an expired session is sent again from its page).
pub fn back_to(method: &axum::http::Method, uri: &axum::http::Uri) -> String {
    if method == axum::http::Method::GET {
        uri.path_and_query()
            .map_or_else(|| "/".to_string(), |path| path.as_str().to_string())
    } else {
        "/".to_string()
    }
}

fn page(status: StatusCode, view: &Login<'_>) -> Response {
    (status, Html(views::login::page(view).into_string())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_path_of_this_site_is_returned_to() {
        assert_eq!(
            safe_next("/imports/7?failed_after=3"),
            "/imports/7?failed_after=3"
        );
        for elsewhere in [
            "//evil.example/x",
            "https://evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nSet-Cookie: x=y",
            "/\u{0}",
            "/ /evil.example",
            "",
        ] {
            assert_eq!(safe_next(elsewhere), "/", "{elsewhere}");
        }
    }

    #[test]
    fn the_login_page_is_told_where_to_return() {
        let response = to_login("/imports?status=failed&before_id=a%20b");
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .expect("a redirect");
        assert_eq!(
            location,
            "/login?next=/imports%3Fstatus%3Dfailed%26before_id%3Da%2520b"
        );
        let response = to_login("//evil.example");
        assert_eq!(
            response
                .headers()
                .get(header::LOCATION)
                .map(|v| v.as_bytes()),
            Some(&b"/login"[..])
        );
    }
}
