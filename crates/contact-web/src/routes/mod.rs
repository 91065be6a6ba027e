//! The page's addresses and what answers each; handlers read the request, ask the client
//! library, and hand the answer to a view. No handler renders HTML itself or builds a client.

mod contacts;
mod fix;
mod guard;
mod history;
mod import;
pub(crate) mod login;
mod mapping;
mod new_import;

use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use contact_contract::api::CallError;
use contact_contract::ApiErrorKind;
use contact_import_client::ClientError;

use crate::tenant::Refused;
use crate::{assets, views, AppState};

/// A file of 5M realistic rows is about 1 GB; twice that leaves room for wide files.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(new_import::show))
        .route("/login", get(login::show).post(login::log_in))
        .route("/logout", post(login::log_out))
        .route("/sample.csv", get(new_import::sample))
        // The upload is read as a stream, its size checked by the handler.
        .route(
            "/uploads",
            post(new_import::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/mapping", get(mapping::show).post(mapping::start))
        .route("/imports", get(history::list))
        .route("/imports/{import_id}", get(import::show))
        .route("/imports/{import_id}/events", get(import::events))
        .route("/imports/{import_id}/cancel", post(import::cancel))
        .route("/imports/{import_id}/undo", post(import::undo))
        .route("/imports/{import_id}/fix", get(fix::show).post(fix::start))
        .route(
            "/imports/{import_id}/failed-rows.csv",
            get(import::failed_rows_file),
        )
        .route("/contacts", get(contacts::list))
        .route("/assets/{version}/{name}", get(asset))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            login::name_the_user,
        ))
        .layer(axum::middleware::from_fn(guard::same_origin_writes))
        .layer(axum::middleware::map_response(guard::security_headers))
        .with_state(state)
}

/// The stylesheet or the script; cached for good under its own release's version.
async fn asset(Path((version, name)): Path<(String, String)>) -> Result<Response, PageError> {
    let Some((body, content_type)) = assets::find(&name) else {
        return Err(PageError::NotFound("There is no such file.".to_string()));
    };
    let cache = if version == *assets::VERSION {
        "public, max-age=31536000, immutable"
    } else {
        // An address of another release: serve what there is, but do not keep it.
        "no-cache"
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response())
}

async fn not_found() -> PageError {
    PageError::NotFound("There is no such page.".to_string())
}

/// Whatever stops a page from being shown, in words for the person who asked for it.
#[derive(Debug)]
pub enum PageError {
    /// 404: the import, contact or page does not exist (in this account).
    NotFound(String),
    /// 400: what was sent cannot be used; the message says why.
    BadInput(String),
    /// 503: NATS or the contact-writer does not answer; trying again later may work.
    Unavailable(String),
    /// No live session (a secure deployment): to the login page, then back to this page.
    LoginNeeded(String),
}

impl From<ClientError> for PageError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Api(CallError::Api(error)) => match error.kind {
                ApiErrorKind::NotFound => Self::NotFound(error.message),
                ApiErrorKind::InvalidRequest | ApiErrorKind::Conflict => {
                    Self::BadInput(error.message)
                }
                ApiErrorKind::Unavailable => Self::Unavailable(error.message),
            },
            // Another account's subject: to this account it does not exist.
            ClientError::Api(CallError::Refused { .. }) => {
                Self::NotFound("There is no such import in this account.".to_string())
            }
            other => {
                tracing::warn!(error = %other, "the contact base did not answer the page");
                Self::Unavailable(
                    "The contact base is not answering right now (NATS or the contact-writer is down)."
                        .to_string(),
                )
            }
        }
    }
}

impl From<Refused> for PageError {
    fn from(refused: Refused) -> Self {
        match refused {
            // The extractor knows the page to come back to; elsewhere it is the first one.
            Refused::LoginNeeded => Self::LoginNeeded("/".to_string()),
            Refused::Unavailable(message) => Self::Unavailable(message),
            Refused::Client(error) => error.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::NotFound(message) => (StatusCode::NOT_FOUND, message),
            Self::BadInput(message) => (StatusCode::BAD_REQUEST, message),
            Self::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message),
            Self::LoginNeeded(back) => return login::to_login(&back),
        };
        (
            status,
            Html(views::error::page(status, &message).into_string()),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests;
