//! Checking a file before uploading it: the same header and mapping rules the services apply,
//! so that a wrong mapping fails at once, before anything is sent.

use std::path::Path;

use contact_contract::ImportOptions;
use contact_core::csv_parser::{ParsedRecord, RecordParser};
use contact_core::mapping::{resolve_mapping, AttributeDef, MappingPlan};
use tokio::io::AsyncReadExt;

/// Why a file would be refused.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("cannot read {path}: {detail}")]
    File { path: String, detail: String },
    /// The file or its mapping is wrong; the message names the problem.
    #[error("{0}")]
    Refused(String),
}

/// Reads the file's header (and only as much of the file as that takes) and resolves the
/// mapping against the account's attributes.
pub async fn check_file(
    path: &Path,
    attributes: &[AttributeDef],
    options: &ImportOptions,
) -> Result<MappingPlan, PreflightError> {
    let file_error = |error: std::io::Error| PreflightError::File {
        path: path.display().to_string(),
        detail: error.to_string(),
    };
    let mut file = tokio::fs::File::open(path).await.map_err(file_error)?;
    let mut parser = RecordParser::new(b',', 256 * 1024);
    let mut block = vec![0u8; 64 * 1024];
    let mut parsed = Vec::new();
    let mut first_block = true;
    let header = loop {
        let read = file.read(&mut block).await.map_err(file_error)?;
        if read == 0 {
            parser.finish(&mut parsed);
        } else {
            if first_block && block[..read].contains(&0) {
                return Err(PreflightError::Refused(
                    "the file is not CSV text: it contains NUL bytes (a binary file?)".to_string(),
                ));
            }
            first_block = false;
            parser.feed(&block[..read], &mut parsed);
        }
        match parsed.drain(..).next() {
            Some(ParsedRecord::Record(record)) => break record.fields,
            Some(ParsedRecord::Error(error)) => {
                return Err(PreflightError::Refused(format!(
                    "the header cannot be read: {error}"
                )))
            }
            None if read == 0 || parser.is_stopped() => {
                return Err(PreflightError::Refused("the file is empty".to_string()))
            }
            None => {}
        }
    };
    resolve_mapping(&header, attributes, &options.mappings, &options.match_on)
        .map_err(|errors| PreflightError::Refused(errors.to_string()))
}
