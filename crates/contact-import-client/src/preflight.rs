//! Checking a file before uploading it: the service previews its start (encoding, delimiter,
//! header), the mapping is resolved with the same rules the services apply, and a wrong
//! mapping fails at once, before anything is sent.

use std::path::Path;

use contact_contract::api::CallError;
use contact_contract::{convert_all, ApiErrorKind, ColumnMapping, ImportOptions};
use contact_core::value_map::resolve_plan;

use crate::{Client, ClientError};

/// Why a file would be refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The file or its mapping is wrong; the message names the problem.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Returns the options to import `path` with: the encoding and delimiter the preview found are
/// pinned (the import reads the file exactly as previewed) and, with `auto_map`, the suggested
/// mapping fills in every column and attribute that `--map` left open.
pub async fn preflight(
    client: &Client,
    path: &Path,
    mut options: ImportOptions,
    auto_map: bool,
) -> Result<ImportOptions, PreflightError> {
    let preview = match client.preview(path, &options).await {
        Ok(preview) => preview,
        Err(ClientError::Api(CallError::Api(error)))
            if error.kind == ApiErrorKind::InvalidRequest =>
        {
            return Err(PreflightError::Refused(error.message))
        }
        Err(error) => return Err(error.into()),
    };
    if auto_map {
        let explicit = options.mappings.clone();
        let taken = |suggested_column: &str, attribute: &str| {
            explicit.iter().any(|mapping| {
                mapping.column.eq_ignore_ascii_case(suggested_column)
                    || mapping.attribute.eq_ignore_ascii_case(attribute)
            })
        };
        for suggestion in &preview.suggested_mapping {
            if let Some(attribute) = &suggestion.attribute {
                if !taken(&suggestion.column, attribute) {
                    options.mappings.push(ColumnMapping {
                        column: suggestion.column.clone(),
                        attribute: attribute.clone(),
                    });
                }
            }
        }
    }
    let attributes = convert_all(client.attributes().await?);
    resolve_plan(
        &preview.header,
        &attributes,
        &convert_all(options.mappings.clone()),
        &convert_all(options.value_mappings.clone()),
        &options.match_on,
    )
    .map_err(|errors| PreflightError::Refused(errors.to_string()))?;
    options.encoding = Some(preview.encoding.to_string());
    options.delimiter = Some(preview.delimiter.clone());
    Ok(options)
}
