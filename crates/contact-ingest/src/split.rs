//! Streaming an uploaded file into chunk messages: read through the core's `FileReader` (the
//! preview reads the same way), the header checked against the mapping first, then the rows
//! cut by the core's `Chunker` and published, never more than a window of rows ahead of the
//! writers. Memory stays flat whatever the file's size, and every record of the file is either
//! published or reported as a row error with its line.

use async_nats::jetstream;
use contact_contract::{
    convert_all, ImportRequest, Namespace, CHUNK_TARGET_BYTES, CHUNK_TARGET_ROWS,
};
use contact_core::chunking::{ChunkLimits, Chunker};
use contact_core::csv_parser::ParsedRecord;
use contact_core::encoding::TextEncoding;
use contact_core::file_reader::FileReader;
use contact_core::mapping::{AttributeDef, MappingPlan};
use contact_core::sniff::{delimiter_name, parse_delimiter};
use contact_core::validate::PhoneRegion;
use contact_core::value_map::resolve_plan;
use contact_runtime::Shutdown;

use crate::publisher::ChunkPublisher;
use crate::upload::UploadReader;
use crate::window::ApplyWindow;

/// Why a file could not be split.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// The file or its header cannot be imported; the reason is for the person who sent it.
    #[error("{0}")]
    Rejected(String),
    /// NATS or the object store failed; trying again later may work.
    #[error(transparent)]
    Transient(#[from] anyhow::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitReport {
    pub chunks_total: u32,
    pub rows_in_file: u64,
}

/// What splitting needs besides the file and the request.
pub struct SplitContext<'a> {
    pub client: &'a async_nats::Client,
    pub jetstream: &'a jetstream::Context,
    pub namespace: &'a Namespace,
    pub phone_region: PhoneRegion,
    pub shutdown: &'a Shutdown,
}

/// Reads `file` to the end and publishes its chunks, then the `Finished` control message.
/// `started_with` is the mapping of an import that already started (a redelivered request):
/// it is kept rather than resolved again.
pub async fn split_file(
    file: &mut UploadReader,
    request: &ImportRequest,
    attributes: &[AttributeDef],
    started_with: Option<&MappingPlan>,
    context: &SplitContext<'_>,
) -> Result<SplitReport, SplitError> {
    let file_bytes = file.size();
    let Some(first_block) = file.next_block().await? else {
        return Err(SplitError::Rejected("the file is empty".to_string()));
    };
    let encoding = request
        .options
        .encoding
        .as_deref()
        .map(str::parse::<TextEncoding>)
        .transpose()
        .map_err(SplitError::Rejected)?;
    let delimiter = request
        .options
        .delimiter
        .as_deref()
        .map(parse_delimiter)
        .transpose()
        .map_err(SplitError::Rejected)?;
    let mut parsed = Vec::new();
    let whole_file = first_block.len() as u64 >= file_bytes;
    let mut reader = FileReader::open(&first_block, whole_file, encoding, delimiter, &mut parsed)
        .map_err(|not_text| SplitError::Rejected(not_text.to_string()))?;
    tracing::debug!(
        encoding = %reader.encoding(),
        delimiter = delimiter_name(reader.delimiter()),
        "reading the file"
    );
    let mut window = ApplyWindow::open(context.client, context.namespace, request).await?;
    let mut publisher = ChunkPublisher::new(
        context.jetstream,
        context.namespace,
        request,
        context.phone_region.to_string(),
        file_bytes,
    );
    let mut raw_bytes_read = first_block.len() as u64;
    let mut plan: Option<MappingPlan> = None;
    let mut chunker: Option<Chunker> = None;
    let mut rows_in_file: u64 = 0;
    let mut at_end = whole_file;
    loop {
        for item in parsed.drain(..) {
            let (Some(plan), Some(chunker)) = (&plan, chunker.as_mut()) else {
                let read = read_header(item, attributes, started_with, request)?;
                chunker = Some(Chunker::new(chunk_limits(context.jetstream, &read)));
                plan = Some(read);
                continue;
            };
            rows_in_file += 1;
            chunker.push(item, plan);
            if chunker.is_full() {
                if let Some(chunk) = chunker.take() {
                    publisher.publish(chunk, plan, raw_bytes_read).await?;
                }
                window.wait_for_room(rows_in_file, context.shutdown).await?;
                if window.import_ended() {
                    publisher.wait_for_all().await?;
                    tracing::info!(
                        chunks = publisher.chunks_published(),
                        "import ended while its file was read: reading stopped"
                    );
                    return Ok(SplitReport {
                        chunks_total: publisher.chunks_published(),
                        rows_in_file,
                    });
                }
            }
        }
        if at_end {
            break;
        }
        match file.next_block().await? {
            Some(block) => {
                raw_bytes_read += block.len() as u64;
                reader.read(&block, &mut parsed);
            }
            None => {
                reader.finish(&mut parsed);
                at_end = true;
            }
        }
    }
    let (Some(plan), Some(mut chunker)) = (plan, chunker) else {
        return Err(SplitError::Rejected("the file is empty".to_string()));
    };
    if rows_in_file == 0 {
        return Err(SplitError::Rejected(
            "the file has a header but no rows".to_string(),
        ));
    }
    if let Some(chunk) = chunker.take() {
        publisher.publish(chunk, &plan, file_bytes).await?;
    }
    publisher.finish(rows_in_file).await?;
    Ok(SplitReport {
        chunks_total: publisher.chunks_published(),
        rows_in_file,
    })
}

/// A chunk's rows weigh at most `CHUNK_TARGET_BYTES` as JSON, and less when the server's
/// payload limit is smaller: the raw chunk carries the mapping plan too, and a validated chunk
/// of failing rows carries their cells twice (the row as it stood, and the errors).
fn chunk_limits(jetstream: &jetstream::Context, plan: &MappingPlan) -> ChunkLimits {
    const MARGIN: usize = 16 * 1024;
    let max_payload = jetstream.client().server_info().max_payload;
    let wire_plan = contact_contract::MappingPlan::from(plan.clone());
    let plan_bytes = serde_json::to_vec(&wire_plan).map_or(0, |plan| plan.len());
    let room = max_payload.saturating_sub(plan_bytes + MARGIN) / 3;
    ChunkLimits {
        rows: CHUNK_TARGET_ROWS,
        encoded_bytes: CHUNK_TARGET_BYTES.min(room).max(1024),
    }
}

fn read_header(
    item: ParsedRecord,
    attributes: &[AttributeDef],
    started_with: Option<&MappingPlan>,
    request: &ImportRequest,
) -> Result<MappingPlan, SplitError> {
    let header = match item {
        ParsedRecord::Record(record) => record.fields,
        ParsedRecord::Error(error) => {
            return Err(SplitError::Rejected(format!(
                "the header cannot be read: {error}"
            )))
        }
    };
    if let Some(plan) = started_with {
        // The plan keeps the header's names trimmed, as mapping reads them.
        if !plan
            .header
            .iter()
            .map(String::as_str)
            .eq(header.iter().map(|name| name.trim()))
        {
            return Err(SplitError::Rejected(
                "the file's header differs from the one the import started with".to_string(),
            ));
        }
        return Ok(plan.clone());
    }
    resolve_plan(
        &header,
        attributes,
        &convert_all(request.options.mappings.clone()),
        &convert_all(request.options.value_mappings.clone()),
        &request.options.match_on,
    )
    .map_err(|errors| SplitError::Rejected(errors.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::{AccountId, ImportId};
    use contact_core::csv_parser::RawRecord;

    fn header(names: &[&str]) -> ParsedRecord {
        ParsedRecord::Record(RawRecord {
            line: 1,
            fields: names.iter().map(|name| name.to_string()).collect(),
            end_offset: 0,
        })
    }

    #[test]
    fn a_request_read_again_keeps_the_plan_it_started_with() {
        let request = ImportRequest::known_by_subject(
            AccountId::new("acme").expect("account"),
            ImportId::new("i1").expect("import id"),
        );
        let attributes = contact_core::mapping::standard_attributes();
        let started =
            read_header(header(&["email", " city "]), &attributes, None, &request).expect("plan");
        // The catalog lost `city` since, yet the import goes on as it began.
        let fewer: Vec<_> = attributes
            .into_iter()
            .filter(|attribute| attribute.key != "city")
            .collect();
        let again = read_header(
            header(&["email", " city "]),
            &fewer,
            Some(&started),
            &request,
        )
        .expect("the same header");
        assert_eq!(again, started);
        let changed = read_header(header(&["email", "town"]), &fewer, Some(&started), &request);
        assert!(
            matches!(&changed, Err(SplitError::Rejected(reason)) if reason.contains("header differs")),
            "{:?}",
            changed.map(|plan| plan.header)
        );
    }
}
