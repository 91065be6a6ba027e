//! The CLI's exit codes, defined once: the numbers, their meaning (shown by `--help`; the
//! README's table says the same), and which error ends in which.

use std::process::ExitCode;

use contact_contract::api::CallError;
use contact_contract::{ApiErrorKind, InvalidName};
use contact_import_client::{ClientError, PreflightError};

/// How a `contact-import` run ended, as scripts see it. The numbers are a contract: never
/// renumber one, only add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    /// The system answered and refused, or something else went wrong (writing the output).
    Failure = 1,
    /// The command line or its input is wrong; clap's own usage errors exit with this too.
    Usage = 2,
    /// `import --follow` saw the import end, and not completed.
    ImportNotCompleted = 3,
    /// NATS or contact-writer could not be reached or did not answer: trying again later
    /// may succeed.
    Unavailable = 4,
}

impl ExitStatus {
    pub const ALL: [ExitStatus; 5] = [
        Self::Success,
        Self::Failure,
        Self::Usage,
        Self::ImportNotCompleted,
        Self::Unavailable,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the code tells a script, in the words of `--help` and the README.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Success => "done (an import that completed with row errors included)",
            Self::Failure => {
                "the system refused the request (a conflict, credentials NATS refuses) or the output could not be written"
            }
            Self::Usage => {
                "usage or input: a wrong flag or value, an unreadable file, a file or mapping refused before upload, an unknown import or attribute"
            }
            Self::ImportNotCompleted => "import --follow: the import ended failed or cancelled",
            Self::Unavailable => {
                "the system could not be reached: NATS unreachable, or no reply from contact-writer or JetStream (try again later)"
            }
        }
    }

    /// The exit codes section of `--help`.
    pub fn help() -> String {
        let mut text = String::from("Exit codes:\n");
        for status in Self::ALL {
            text.push_str(&format!("  {}  {}\n", status.code(), status.meaning()));
        }
        text
    }

    /// The status a failed command ends with: the first cause in the error's chain that says
    /// which kind of failure it is decides; anything else is [`ExitStatus::Failure`].
    pub fn of_error(error: &anyhow::Error) -> Self {
        error
            .chain()
            .find_map(Self::of_cause)
            .unwrap_or(Self::Failure)
    }

    fn of_cause(cause: &(dyn std::error::Error + 'static)) -> Option<Self> {
        if cause.is::<UsageError>() || cause.is::<InvalidName>() {
            return Some(Self::Usage);
        }
        if let Some(error) = cause.downcast_ref::<PreflightError>() {
            return Some(match error {
                PreflightError::Refused(_) => Self::Usage,
                PreflightError::Client(error) => Self::of_client_error(error),
            });
        }
        if let Some(error) = cause.downcast_ref::<ClientError>() {
            return Some(Self::of_client_error(error));
        }
        cause.downcast_ref::<CallError>().map(Self::of_call_error)
    }

    fn of_client_error(error: &ClientError) -> Self {
        match error {
            ClientError::Unreachable { .. } | ClientError::Nats(_) => Self::Unavailable,
            ClientError::File { .. } => Self::Usage,
            ClientError::Api(error) => Self::of_call_error(error),
        }
    }

    fn of_call_error(error: &CallError) -> Self {
        match error {
            CallError::Api(error) => match error.kind {
                ApiErrorKind::InvalidRequest | ApiErrorKind::NotFound => Self::Usage,
                ApiErrorKind::Unavailable => Self::Unavailable,
                ApiErrorKind::Conflict => Self::Failure,
            },
            CallError::Decode { .. } | CallError::Refused { .. } => Self::Failure,
            CallError::NoResponder { .. }
            | CallError::TimedOut { .. }
            | CallError::Transport(_) => Self::Unavailable,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

/// A command line the CLI refuses after parsing it (clap refuses the others itself).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::ApiError;
    use std::time::Duration;

    fn check(error: anyhow::Error, expected: ExitStatus) {
        assert_eq!(ExitStatus::of_error(&error), expected, "{error:#}");
    }

    fn api(kind: ApiErrorKind) -> ClientError {
        ClientError::Api(CallError::Api(ApiError::new(kind, "refused")))
    }

    #[test]
    fn the_numbers_are_the_documented_ones() {
        let codes: Vec<u8> = ExitStatus::ALL.iter().map(|status| status.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn an_unreachable_nats_or_a_missing_reply_is_unavailable() {
        let subject = "ci.v1.a.api.import.status".to_string();
        let unavailable = [
            anyhow::Error::from(ClientError::Unreachable {
                url: "nats://127.0.0.1:1".into(),
                detail: "connection refused".into(),
            }),
            ClientError::Nats("storing the import request: timed out".into()).into(),
            ClientError::Api(CallError::NoResponder {
                subject: subject.clone(),
            })
            .into(),
            ClientError::Api(CallError::TimedOut {
                subject,
                timeout: Duration::from_secs(30),
            })
            .into(),
            ClientError::Api(CallError::Transport("gone".into())).into(),
            api(ApiErrorKind::Unavailable).into(),
            PreflightError::Client(ClientError::Unreachable {
                url: "nats://127.0.0.1:1".into(),
                detail: "refused".into(),
            })
            .into(),
        ];
        for error in unavailable {
            check(error, ExitStatus::Unavailable);
        }
    }

    #[test]
    fn wrong_input_is_a_usage_error_even_under_context() {
        let usage = [
            anyhow::Error::from(PreflightError::Refused("no column maps to email".into())),
            ClientError::File {
                path: "leads.csv".into(),
                detail: "not found".into(),
            }
            .into(),
            api(ApiErrorKind::NotFound).into(),
            api(ApiErrorKind::InvalidRequest).into(),
            UsageError("nothing to change".into()).into(),
            anyhow::Error::from(
                contact_contract::ImportId::new("a b").expect_err("a space is not allowed"),
            ),
            anyhow::Error::from(api(ApiErrorKind::NotFound)).context("exporting contacts"),
        ];
        for error in usage {
            check(error, ExitStatus::Usage);
        }
    }

    #[test]
    fn a_refusal_by_the_system_or_anything_else_is_a_failure() {
        check(api(ApiErrorKind::Conflict).into(), ExitStatus::Failure);
        check(
            ClientError::Api(CallError::Refused {
                subject: "ci.v1.b.api.import.status".into(),
                detail: "permissions violation".into(),
            })
            .into(),
            ExitStatus::Failure,
        );
        check(
            std::io::Error::from(std::io::ErrorKind::BrokenPipe).into(),
            ExitStatus::Failure,
        );
        check(anyhow::anyhow!("writing the export"), ExitStatus::Failure);
    }

    #[test]
    fn the_help_lists_every_code_with_its_meaning() {
        let help = ExitStatus::help();
        for status in ExitStatus::ALL {
            assert!(
                help.contains(&format!("  {}  {}\n", status.code(), status.meaning())),
                "{help}"
            );
        }
    }

    /// The README's table of exit codes says what `--help` says, row for row.
    #[test]
    fn the_readme_table_agrees_with_the_codes() {
        let readme = include_str!("../../../README.md");
        let rows: Vec<(String, String)> = readme
            .lines()
            .skip_while(|line| !line.starts_with("| exit code |"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
                (
                    cells[0].trim().trim_matches('`').to_string(),
                    cells[1].trim().replace('`', ""),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = ExitStatus::ALL
            .iter()
            .map(|status| (status.code().to_string(), status.meaning().to_string()))
            .collect();
        assert_eq!(rows, expected);
    }

    #[test]
    fn clap_refuses_a_wrong_command_line_with_the_usage_code() {
        use clap::Parser as _;
        let refused = crate::args::Cli::try_parse_from(["contact-import", "import", "--nope"])
            .expect_err("an unknown flag");
        assert_eq!(refused.exit_code(), i32::from(ExitStatus::Usage.code()));
    }
}
