//! Writes the error file (its format is the client library's `error_file`) to a file or to
//! standard output.

use std::io::Write;

use anyhow::Context as _;
use contact_contract::ImportId;
use contact_import_client::error_file::{error_file_record, header_with_error_columns, UTF8_BOM};
use contact_import_client::{Client, FailedRowsItem};

use crate::output::Output;

/// Writes the import's error file; a file gets the byte order mark, standard output (a pipe
/// into another program) does not.
pub async fn write(client: &Client, import_id: &ImportId, output: &Output) -> anyhow::Result<()> {
    let mut sink = output.open()?;
    if output.is_file() {
        sink.write_all(UTF8_BOM)?;
    }
    let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(sink);
    let mut width = 0;
    let mut failure: Option<anyhow::Error> = None;
    client
        .failed_rows(import_id, |item| {
            if failure.is_some() {
                return;
            }
            let written = match item {
                FailedRowsItem::Header(header) => {
                    width = header.len();
                    writer.write_record(header_with_error_columns(&header))
                }
                FailedRowsItem::Row(row) => writer.write_record(error_file_record(&row, width)),
            };
            if let Err(error) = written {
                failure = Some(error.into());
            }
        })
        .await?;
    if let Some(error) = failure {
        return Err(error.context("writing the error file"));
    }
    writer.flush().context("writing the error file")?;
    Ok(())
}
