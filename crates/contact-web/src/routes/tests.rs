//! How the contact base's answers become what the person at the page is told.

use std::time::Duration;

use axum::response::IntoResponse;

use super::*;

fn api_error(kind: ApiErrorKind, message: &str) -> ClientError {
    ClientError::Api(CallError::Api(contact_contract::ApiError::new(
        kind, message,
    )))
}

fn status_of(error: ClientError) -> StatusCode {
    PageError::from(error).into_response().status()
}

#[test]
fn the_writers_refusals_keep_their_own_words() {
    let PageError::NotFound(message) = PageError::from(api_error(
        ApiErrorKind::NotFound,
        "no import 7 in this account",
    )) else {
        panic!("a missing import is not found");
    };
    assert_eq!(message, "no import 7 in this account");
    assert_eq!(
        status_of(api_error(ApiErrorKind::InvalidRequest, "bad")),
        StatusCode::BAD_REQUEST
    );
    // Undoing an import that is still running is the asker's mistake, not an outage.
    assert_eq!(
        status_of(api_error(ApiErrorKind::Conflict, "still running")),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(api_error(ApiErrorKind::Unavailable, "busy")),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[test]
fn a_silent_contact_base_is_an_outage_said_in_plain_words() {
    for error in [
        ClientError::Api(CallError::NoResponder {
            subject: "ci.v1.demo.api.imports.get".to_string(),
        }),
        ClientError::Api(CallError::TimedOut {
            subject: "ci.v1.demo.api.imports.get".to_string(),
            timeout: Duration::from_secs(5),
        }),
        ClientError::Unreachable {
            url: "nats://127.0.0.1:4222".to_string(),
            detail: "connection refused".to_string(),
        },
    ] {
        let PageError::Unavailable(message) = PageError::from(error) else {
            panic!("an unanswered call is an outage");
        };
        // The subject and URL are for the logs, not for the marketer.
        assert!(!message.contains("ci.v1"), "{message}");
        assert!(!message.contains("nats://"), "{message}");
        assert!(message.contains("not answering"), "{message}");
    }
}

#[test]
fn an_error_page_says_its_message_with_its_status() {
    let response = PageError::NotFound("There is no such page.".to_string()).into_response();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    assert!(
        content_type.is_some_and(|value| value.starts_with("text/html")),
        "{content_type:?}"
    );
}

#[test]
fn another_accounts_subject_is_not_found_here() {
    let error = ClientError::Api(CallError::Refused {
        subject: "ci.v1.other.api.imports.get".to_string(),
        detail: "permissions violation".to_string(),
    });
    let PageError::NotFound(message) = PageError::from(error) else {
        panic!("a refused subject must not reveal that the import exists elsewhere");
    };
    assert!(!message.contains("other"), "{message}");
}
