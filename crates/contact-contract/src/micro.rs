//! The API as a NATS service, after the services ("micro") convention: the writers answer
//! `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` for one service, each operation an endpoint of
//! it, so that `nats micro ls|info|stats` and any language's micro client see them. The
//! subjects and bodies of the operations stay the contract's own; an error reply also carries
//! the convention's two headers.

use crate::{ApiErrorKind, ApiOperation, OperatorOperation};

/// The service the writers register, in every namespace: its metadata says which.
pub const SERVICE_NAME: &str = "contact-import";

/// The service metadata key naming the deployment's namespace.
pub const NAMESPACE_METADATA: &str = "namespace";

/// The convention's header with the error's description.
pub const ERROR_HEADER: &str = "Nats-Service-Error";

/// The convention's header with the error's code (HTTP-like).
pub const ERROR_CODE_HEADER: &str = "Nats-Service-Error-Code";

/// The longest description put in [`ERROR_HEADER`]; the body holds the whole message.
const LONGEST_HEADER_MESSAGE: usize = 512;

/// What a service of the convention subscribes to, to be found: the discovery requests to
/// every service, and those to [`SERVICE_NAME`] and to one of its instances.
pub fn discovery_subjects() -> Vec<String> {
    ["PING", "INFO", "STATS"]
        .into_iter()
        .flat_map(|verb| {
            [
                format!("$SRV.{verb}"),
                format!("$SRV.{verb}.{SERVICE_NAME}"),
                format!("$SRV.{verb}.{SERVICE_NAME}.*"),
            ]
        })
        .collect()
}

/// Every discovery request: what an operator's tools (`nats micro`) publish.
pub const DISCOVERY_REQUESTS: &str = "$SRV.>";

impl ApiOperation {
    /// The operation's endpoint name: its subject tokens, `_` for `.` (endpoint names allow
    /// no dot).
    pub fn endpoint_name(self) -> String {
        self.as_str().replace('.', "_")
    }
}

impl OperatorOperation {
    pub fn endpoint_name(self) -> String {
        format!("admin_{}", self.as_str().replace('.', "_"))
    }
}

impl ApiErrorKind {
    /// The kind as the reply body spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Unavailable => "unavailable",
        }
    }

    /// The code of [`ERROR_CODE_HEADER`], as HTTP would have it.
    pub fn service_error_code(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Unavailable => 503,
        }
    }
}

/// `message` as one header value: no line breaks or control characters, and at most
/// [`LONGEST_HEADER_MESSAGE`] bytes (cut at a character's boundary).
pub fn header_message(message: &str) -> String {
    let mut value = String::with_capacity(message.len().min(LONGEST_HEADER_MESSAGE));
    for character in message.chars() {
        let character = if character.is_control() {
            ' '
        } else {
            character
        };
        if value.len() + character.len_utf8() > LONGEST_HEADER_MESSAGE {
            break;
        }
        value.push(character);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_name_is_one_the_convention_allows_and_they_differ() {
        let mut names: Vec<String> = ApiOperation::ALL
            .iter()
            .map(|operation| operation.endpoint_name())
            .chain(
                OperatorOperation::ALL
                    .iter()
                    .map(|operation| operation.endpoint_name()),
            )
            .collect();
        for name in &names {
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{name}"
            );
        }
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
        assert_eq!(
            ApiOperation::ALL
                .iter()
                .find(|operation| operation.as_str() == "import.failed_rows")
                .map(|operation| operation.endpoint_name()),
            Some("import_failed_rows".to_string())
        );
    }

    #[test]
    fn the_kind_is_spelled_as_in_the_body() {
        for kind in [
            ApiErrorKind::InvalidRequest,
            ApiErrorKind::NotFound,
            ApiErrorKind::Conflict,
            ApiErrorKind::Unavailable,
        ] {
            let spelled = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(spelled, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(ApiErrorKind::NotFound.service_error_code(), 404);
    }

    #[test]
    fn a_header_message_has_no_line_break_and_a_bounded_length() {
        assert_eq!(
            header_message("no import x\nin acme\r"),
            "no import x in acme "
        );
        let long = "ł".repeat(400);
        let cut = header_message(&long);
        assert!(cut.len() <= LONGEST_HEADER_MESSAGE && cut.len() % 2 == 0);
        assert!(long.starts_with(&cut));
    }
}
